"""CoDreamMarket on a real anvil chain through brownie: every settlement rule and one
negative test per item of the attack checklist (shared/reference/anchors.md)."""
import pytest

pytest.importorskip("brownie")
from brownie import accounts, chain, network, project  # noqa: E402
from brownie.exceptions import VirtualMachineError  # noqa: E402

from tests.conftest import REPO  # noqa: E402
from tests.market_helpers import (INVALID, WINDOWS, eval_commitment, miner_commitment, salt,  # noqa: E402
                                  score_commitment)

BOUNTY = 10**18
BOND = 10**16
STAKE = 10**18


@pytest.fixture(scope="module")
def p():
    import os

    from brownie._config import CONFIG

    from tests.conftest import free_port

    os.environ["PATH"] = f"{REPO / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"
    proj = project.load(str(REPO), name="CoDreamTest")
    port = free_port()  # never collide with a devnet on 8545
    dev = CONFIG.networks["development"]
    dev["host"] = "http://127.0.0.1"
    dev["cmd_settings"].update(port=port, accounts=20, gas_limit=30_000_000)
    network.connect("development")
    yield proj
    network.disconnect()
    proj.close()


@pytest.fixture
def m(p):
    chain.snapshot()
    market = p.CoDreamMarket.deploy({"from": accounts[0]})
    yield market
    chain.revert()


def reverts(name, fn, *args):
    with pytest.raises(VirtualMachineError) as exc:
        fn(*args)
    assert name in (exc.value.revert_msg or ""), exc.value.revert_msg


def balance_invariant(m, others=()):
    """balance == Σ claimable + Σ stakes + open bounties + open bonds"""
    owed = sum(m.claimable(a) + m.stakeOf(a) for a in [*accounts, *others])
    for t in range(1, m.taskCount() + 1):
        task = m.getTask(t)
        if task["phase"] != 3:  # not Finalized
            owed += task["bounty"] + task["submissionCount"] * task["minerBond"]
    assert m.balance() == owed


class Round:
    """Drives one task through the protocol with named actors."""

    def __init__(self, m, owner=None, k=3, min_gain=100, tolerance=150, fee_bps=1000, n_verifiers=4):
        self.m, self.owner, self.k = m, owner or accounts[0], k
        self.miners = list(accounts[1:4])
        self.verifiers = list(accounts[10:10 + n_verifiers])
        for v in self.verifiers:
            if m.stakeOf(v) == 0:
                m.stake({"from": v, "value": STAKE})
        chain.mine(1)
        tx = m.createTask("bafyspec", eval_commitment("bafyeval", salt(0)), BOND, k, min_gain, tolerance, fee_bps,
                          WINDOWS, {"from": self.owner, "value": BOUNTY})
        self.id = tx.return_value
        self.cids = {}

    def commit(self, miner, cid, i=1):
        c = miner_commitment(cid, salt(i), miner.address, self.id, chain.id, self.m.address)
        tx = self.m.commit(self.id, c, {"from": miner, "value": BOND})
        self.cids[miner.address] = (cid, salt(i), tx.events["Committed"]["index"])

    def reveal(self, miner):
        cid, s, index = self.cids[miner.address]
        self.m.reveal(self.id, index, cid, s, {"from": miner})

    def one_revealed(self):
        """miners[0] commits and reveals; the eval-reveal window opens."""
        self.commit(self.miners[0], "bafyA", 1)
        self.to_reveal()
        self.reveal(self.miners[0])
        self.to_eval()

    def to_reveal(self):
        chain.sleep(WINDOWS[0] + 1)
        chain.mine(1)

    def to_eval(self):
        chain.sleep(WINDOWS[1] + 1)
        chain.mine(1)

    def reveal_eval_and_draw(self):
        self.m.revealEval(self.id, "bafyeval", salt(0), {"from": self.owner})
        self.m.requestDraw(self.id, {"from": accounts[0]})
        chain.mine(3)
        self.m.drawCommittee(self.id, {"from": accounts[0]})
        return [mem[0] for mem in self.m.getCommittee(self.id)]

    def scores(self, by_member: dict):
        members = [mem[0] for mem in self.m.getCommittee(self.id)]
        for a, sc in by_member.items():
            self.m.commitScores(self.id, members.index(a),
                                score_commitment(sc, salt(99), a, self.id, chain.id, self.m.address), {"from": a})
        chain.sleep(WINDOWS[3] + 1)
        chain.mine(1)
        for a, sc in by_member.items():
            self.m.revealScores(self.id, members.index(a), sc, salt(99), {"from": a})
        chain.sleep(WINDOWS[4] + 1)
        chain.mine(1)
        return members


def full_round(m, scores_for, fee_bps=1000):
    r = Round(m, fee_bps=fee_bps)
    for i, miner in enumerate(r.miners):
        r.commit(miner, f"bafycid{i}", i + 1)
    r.to_reveal()
    for miner in r.miners:
        r.reveal(miner)
    r.to_eval()
    members = r.reveal_eval_and_draw()
    r.scores({a: scores_for(j, a) for j, a in enumerate(members)})
    return r, members


# ----------------------------------------------------------------------------- settlement
def test_full_round_pays_pro_rata_to_median_gain_and_returns_bonds(m):
    # submissions: honest 6000 bps, noise 0 bps, INVALID
    r, members = full_round(m, lambda j, a: [6000 + 10 * j, 0, INVALID])
    before = {a: m.claimable(a) for a in [*r.miners, *members, r.owner]}
    m.finalize(r.id, {"from": accounts[5]})
    fee = BOUNTY * 1000 // 10000
    assert list(m.getMedians(r.id)) == [6010, 0, INVALID]
    assert m.claimable(r.miners[0]) - before[r.miners[0]] == (BOUNTY - fee) + BOND  # only accepted gain
    assert m.claimable(r.miners[1]) - before[r.miners[1]] == BOND  # below min gain: bond back, no reward
    assert m.claimable(r.miners[2]) == 0  # INVALID: bond forfeited
    per_verifier = (fee + BOND) // 3
    for a in members:
        assert m.claimable(a) == per_verifier
    assert m.claimable(r.owner) == fee + BOND - 3 * per_verifier  # rounding dust
    balance_invariant(m)


def test_outlier_verifier_is_slashed_and_median_resists_a_minority(m):
    # member 0 under-scores the honest miner; the median (two honest) wins
    r, members = full_round(m, lambda j, a: [100 if j == 0 else 6000, 0, 0])
    m.finalize(r.id, {"from": accounts[5]})
    assert m.getMedians(r.id)[0] == 6000
    assert m.stakeOf(members[0]) == STAKE * 8 // 10
    assert m.claimable(members[0]) == 0
    assert m.claimable(members[1]) > 0 and m.stakeOf(members[1]) == STAKE
    balance_invariant(m)


def test_withdraw_pays_out_and_zeroes_the_balance(m):
    r, _ = full_round(m, lambda j, a: [5000, 5000, 5000])
    m.finalize(r.id, {"from": accounts[5]})
    owed = m.claimable(r.miners[0])
    bal = r.miners[0].balance()
    tx = m.withdraw({"from": r.miners[0], "gas_price": 0})
    assert r.miners[0].balance() == bal + owed and m.claimable(r.miners[0]) == 0
    assert tx.events["Withdrawn"]["amount"] == owed
    reverts("NothingToWithdraw", m.withdraw, {"from": r.miners[0]})
    balance_invariant(m)


def test_owner_who_never_reveals_eval_pays_the_bounty_to_revealed_miners(m):
    r = Round(m)
    r.commit(r.miners[0], "bafyA", 1)
    r.commit(r.miners[1], "bafyB", 2)
    r.to_reveal()
    r.reveal(r.miners[0])  # miners[1] never reveals
    chain.sleep(WINDOWS[1] + WINDOWS[2] + 2)
    chain.mine(1)
    reverts("draw: eval set not revealed", m.requestDraw, r.id, {"from": accounts[0]})
    m.finalize(r.id, {"from": accounts[5]})
    assert m.claimable(r.miners[0]) == BOUNTY + BOND
    assert m.claimable(r.miners[1]) == 0
    assert m.claimable(r.owner) == BOND  # the unrevealed bond
    balance_invariant(m)


def test_too_few_revealed_verifiers_redraws_once_then_refunds(m):
    r = Round(m, n_verifiers=4)
    r.one_revealed()
    members = r.reveal_eval_and_draw()
    r.scores({members[0]: [5000]})  # 1 of 3 reveals: no quorum
    m.finalize(r.id, {"from": accounts[5]})
    assert m.getTask(r.id)["phase"] == 1 and m.getTask(r.id)["redraws"] == 1  # Open again
    assert m.stakeOf(members[1]) == STAKE * 8 // 10  # silent members slashed
    m.requestDraw(r.id, {"from": accounts[0]})
    chain.mine(3)
    m.drawCommittee(r.id, {"from": accounts[0]})
    chain.sleep(WINDOWS[3] + WINDOWS[4] + 2)
    chain.mine(1)
    m.finalize(r.id, {"from": accounts[5]})  # nobody revealed again: refund
    assert m.getTask(r.id)["phase"] == 3  # Finalized
    assert m.claimable(r.miners[0]) == BOND
    assert m.claimable(r.owner) >= BOUNTY
    balance_invariant(m)


# ----------------------------------------------------------------------------- attack checklist
def test_reveal_records_the_miner_and_the_cid_in_the_event(m):
    r = Round(m)
    r.commit(r.miners[0], "bafyA", 1)
    r.to_reveal()
    tx = m.reveal(r.id, 0, "bafyA", salt(1), {"from": r.miners[0]})
    assert tx.events["Revealed"]["cid"] == "bafyA"
    miners, revealed = m.getSubmissions(r.id)
    assert list(miners) == [r.miners[0]] and list(revealed) == [True]


def test_RevertWhen_same_cid_is_revealed_twice(m):  # 1
    r = Round(m)
    r.commit(r.miners[0], "bafySame", 1)
    r.commit(r.miners[1], "bafySame", 2)
    r.to_reveal()
    r.reveal(r.miners[0])
    reverts("DuplicateCid", r.reveal, r.miners[1])


def test_RevertWhen_commit_after_window_or_for_unknown_task(m):  # 2
    r = Round(m)
    reverts("UnknownTask", m.commit, r.id + 1, b"\x01" * 32, {"from": r.miners[0], "value": BOND})
    r.to_reveal()
    reverts("WindowClosed: commit", m.commit, r.id, b"\x01" * 32, {"from": r.miners[0], "value": BOND})


def test_RevertWhen_reveal_in_commit_block_late_wrong_salt_or_for_another(m, p):  # 3
    r = Round(m)
    attacker = p.SameBlockRevealer.deploy({"from": accounts[0]})
    reverts("SameBlock", attacker.attack, m, r.id, 0, "bafyX", salt(5), {"from": accounts[0], "value": BOND})
    r.commit(r.miners[0], "bafyA", 1)
    r.to_reveal()
    reverts("BadReveal", m.reveal, r.id, 0, "bafyA", salt(2), {"from": r.miners[0]})  # wrong salt
    reverts("BadReveal", m.reveal, r.id, 0, "bafyA", salt(1), {"from": r.miners[1]})  # another's commitment
    reverts("NotSubmitted", m.reveal, r.id, 5, "bafyA", salt(1), {"from": r.miners[0]})  # no such index
    chain.sleep(WINDOWS[1] + 1)
    reverts("WindowClosed: reveal", r.reveal, r.miners[0])


def test_RevertWhen_a_copied_commitment_is_revealed_by_the_copier(m):  # 4
    r = Round(m)
    honest, copier = r.miners[0], r.miners[1]
    c = miner_commitment("bafyA", salt(1), honest.address, r.id, chain.id, m.address)
    m.commit(r.id, c, {"from": honest, "value": BOND})
    m.commit(r.id, c, {"from": copier, "value": BOND})  # the same bytes, index 1
    r.to_reveal()
    reverts("BadReveal", m.reveal, r.id, 1, "bafyA", salt(1), {"from": copier})  # sender is in the hash
    m.reveal(r.id, 0, "bafyA", salt(1), {"from": honest})


def test_not_revealing_forfeits_the_bond(m):  # 5
    r, members = full_round(m, lambda j, a: [5000, 5000, 5000])
    m.finalize(r.id, {"from": accounts[5]})
    r2 = Round(m)
    r2.commit(r2.miners[0], "bafyZ", 1)
    r2.to_reveal()
    r2.to_eval()
    m.revealEval(r2.id, "bafyeval", salt(0), {"from": r2.owner})
    chain.sleep(WINDOWS[2] + 1)
    m.requestDraw(r2.id, {"from": accounts[0]})
    chain.mine(3)
    m.drawCommittee(r2.id, {"from": accounts[0]})
    committee = [x[0] for x in m.getCommittee(r2.id)]
    r2.scores({a: [0] for a in committee})
    before = m.claimable(r2.miners[0])
    m.finalize(r2.id, {"from": accounts[5]})
    assert m.claimable(r2.miners[0]) == before  # no bond back
    balance_invariant(m)


def test_a_verifier_is_never_drawn_for_a_task_it_mined(m):  # 6
    r = Round(m, n_verifiers=3, k=3)
    dual = r.verifiers[0]
    c = miner_commitment("bafyDual", salt(7), dual.address, r.id, chain.id, m.address)
    m.commit(r.id, c, {"from": dual, "value": BOND})
    r.to_reveal()
    m.reveal(r.id, 0, "bafyDual", salt(7), {"from": dual})
    r.to_eval()
    m.revealEval(r.id, "bafyeval", salt(0), {"from": r.owner})
    m.requestDraw(r.id, {"from": accounts[0]})
    chain.mine(3)
    reverts("TooFewVerifiers", m.drawCommittee, r.id, {"from": accounts[0]})  # 2 eligible < 3


def test_stake_changed_after_the_draw_request_does_not_count(m):  # 7
    r = Round(m, n_verifiers=3, k=3)
    r.one_revealed()
    m.revealEval(r.id, "bafyeval", salt(0), {"from": r.owner})
    m.requestDraw(r.id, {"from": accounts[0]})
    m.stake({"from": r.verifiers[0], "value": STAKE})  # after the request: excluded
    chain.mine(3)
    reverts("TooFewVerifiers", m.drawCommittee, r.id, {"from": accounts[0]})
    reverts("draw requested", m.requestDraw, r.id, {"from": accounts[0]})  # no re-roll of the seed


def test_RevertWhen_draw_in_the_seed_block(m):  # 7 (same-block prediction)
    r = Round(m)
    r.one_revealed()
    m.revealEval(r.id, "bafyeval", salt(0), {"from": r.owner})
    m.requestDraw(r.id, {"from": accounts[0]})
    reverts("seed block not mined", m.drawCommittee, r.id, {"from": accounts[0]})


def test_RevertWhen_unstaking_from_a_committee_or_before_unbonding(m):  # 8, 12
    r = Round(m)
    r.one_revealed()
    members = r.reveal_eval_and_draw()
    member = accounts.at(members[0], force=True)
    m.requestUnbond({"from": member})
    reverts("StakeFrozen: unbonding", m.withdrawStake, {"from": member})
    chain.sleep(m.UNBONDING_DELAY() + 1)
    chain.mine(1)
    reverts("StakeFrozen: in a committee", m.withdrawStake, {"from": member})


def test_settlement_loops_are_bounded(m):  # 9
    assert m.MAX_SUBMISSIONS() == 32 and m.MAX_COMMITTEE() == 15 and m.MAX_VERIFIERS() == 64
    reverts("BadParams: committeeSize", m.createTask, "s", b"\x01" * 32, BOND, 16, 0, 0, 0, WINDOWS,
            {"from": accounts[0], "value": 1})


def test_a_recipient_that_rejects_eth_hurts_only_itself_and_reentrancy_fails(m, p):  # 10, 11
    hostile = p.HostileMiner.deploy(m, {"from": accounts[0]})
    r = Round(m)
    c = miner_commitment("bafyH", salt(3), hostile.address, r.id, chain.id, m.address)
    hostile.commit(r.id, c, {"from": accounts[0], "value": BOND})
    r.commit(r.miners[0], "bafyA", 1)
    r.to_reveal()
    hostile.reveal(r.id, 0, "bafyH", salt(3), {"from": accounts[0]})
    r.reveal(r.miners[0])
    r.to_eval()
    members = r.reveal_eval_and_draw()
    r.scores({a: [4000, 4000] for a in members})
    m.finalize(r.id, {"from": accounts[5]})  # settlement does not call the hostile contract
    owed = m.claimable(hostile)
    assert owed > 0 and m.claimable(r.miners[0]) > 0
    hostile.setMode(False, True, {"from": accounts[0]})
    reverts("TransferFailed", hostile.pull, {"from": accounts[0]})
    assert m.claimable(hostile) == owed  # nothing lost
    hostile.setMode(True, False, {"from": accounts[0]})
    reverts("TransferFailed", hostile.pull, {"from": accounts[0]})  # re-entry reverts the payout
    assert m.claimable(hostile) == owed
    m.withdraw({"from": r.miners[0]})  # others are unaffected
    balance_invariant(m, [hostile])


def test_score_copying_is_useless_without_the_salt_and_sender(m):  # 14
    r = Round(m)
    r.one_revealed()
    members = r.reveal_eval_and_draw()
    a, b = members[0], members[1]
    c = score_commitment([5000], salt(99), a, r.id, chain.id, m.address)
    m.commitScores(r.id, 0, c, {"from": a})
    m.commitScores(r.id, 1, c, {"from": b})  # copied commitment
    reverts("NotMember", m.commitScores, r.id, 2, c, {"from": r.miners[1]})
    reverts("NotMember", m.commitScores, r.id, 0, c, {"from": b})  # another member's slot
    chain.sleep(WINDOWS[3] + 1)
    chain.mine(1)
    m.revealScores(r.id, 0, [5000], salt(99), {"from": a})
    reverts("BadReveal", m.revealScores, r.id, 1, [5000], salt(99), {"from": b})
    assert list(m.getScores(r.id, 0)) == [5000] and list(m.getScores(r.id, 1)) == []


def test_views_report_phase_and_state(m):
    r = Round(m)
    assert m.phaseOf(r.id) == 1
    r.to_reveal()
    assert m.phaseOf(r.id) == 2
    assert m.phaseOf(r.id + 5) == 0
