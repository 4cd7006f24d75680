"""CoDreamMarket v2 on a real anvil chain through brownie: one named test per property of
spec/protocol-v2.md (1-9), the attack checklist items that still apply, and full-round
accounting to the wei. Commitments and the seat assignment come from codream.protocol."""
import random

import pytest

pytest.importorskip("brownie")
from brownie import accounts, chain, network, project, web3  # noqa: E402

from tests.conftest import REPO  # noqa: E402
from tests.market_helpers import (BOND, BOUNTY, INVALID, NO_EVAL, STAKE, WINDOWS, Phase, Round,  # noqa: E402
                                  Stage, Status, books, draw_seats, eval_commitment, miner_commitment, rank,
                                  patient_receipts, registry_info, reverts, salt, score_commitment, seat_submissions,
                                  transact)

SEAT_SLASH = 2 * 10**16
OWNER = 0
MINERS = range(1, 10)
VERIFIERS = range(10, 20)


@pytest.fixture(scope="module")
def p():
    import os

    from brownie._config import CONFIG

    from tests.conftest import free_port

    os.environ["PATH"] = f"{REPO / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"
    proj = project.load(str(REPO), name="CoDreamTest")
    dev = CONFIG.networks["development"]
    dev["host"] = "http://127.0.0.1"
    dev["cmd_settings"].update(port=free_port(), accounts=30, gas_limit=30_000_000)  # never collide with a devnet
    network.connect("development")
    patient_receipts(web3)
    market = proj.CoDreamMarket.deploy({"from": accounts[0]})
    proj.deployed = (market, proj.StakeRegistry.at(market.registry()))
    yield proj
    network.disconnect()
    proj.close()


@pytest.fixture
def m(p):
    chain.snapshot()
    yield p.deployed[0]
    chain.revert()


@pytest.fixture
def reg(p, m):
    return p.deployed[1]


def a(i):
    return accounts[i]


def stake(reg, idx, amount=STAKE):
    for i in idx:
        reg.stake({"from": a(i), "value": amount})
    chain.mine(1)


def mine(blocks: int):
    """many empty blocks in one RPC call"""
    web3.provider.make_request("anvil_mine", [hex(blocks)])


def everyone(*extra):
    return [*accounts, *extra]


def round_with_committee(m, reg, truth, k=5, r=3, n_verifiers=5, unrevealed=(), **kw) -> Round:
    """verifiers staked, submissions by distinct miners (truth[s] = honest score), eval revealed,
    committee drawn"""
    stake(reg, VERIFIERS[:n_verifiers])
    rd = Round(m, reg, a(OWNER), k=k, r=r, **kw)
    rd.truth = dict(enumerate(truth))
    rd.submit([a(i) for i in MINERS[:len(truth)]], unrevealed=unrevealed)
    rd.reveal_eval()
    rd.draw()
    return rd


# ============================================================================ property 1
def test_split_stake_gains_nothing(m, reg, p):
    """Seats follow stake, not addresses. Chain A: X stakes S, then Y stakes S. Chain B: S split
    across 4 addresses in the same slot order, then Y. The cumulative weight ranges coincide, so
    every seed gives X in A exactly the seats the group gets in B. (v1 drew without replacement:
    X could hold one seat, the split group up to four.)"""
    probe = p.DrawProbe.deploy({"from": a(20)})
    seeds = [salt(f"seed-{i}") for i in range(300)]
    k = 16
    chain.snapshot()
    reg.stake({"from": a(10), "value": 4 * STAKE})  # X
    reg.stake({"from": a(15), "value": 4 * STAKE})  # Y
    chain.mine(1)
    seats_a = list(probe.groupSeats(reg, chain.height - 1, seeds, 1, k, [a(10)]))
    chain.revert()
    group = [a(i) for i in (11, 12, 13, 14)]
    for g in group:
        reg.stake({"from": g, "value": STAKE})
    reg.stake({"from": a(15), "value": 4 * STAKE})
    chain.mine(1)
    seats_b = list(probe.groupSeats(reg, chain.height - 1, seeds, 1, k, group))
    assert seats_a == seats_b
    assert 0.4 < sum(seats_a) / (k * len(seeds)) < 0.6  # half the stake: about half the seats
    assert max(seats_a) >= 2  # with replacement: several seats per verifier

    # the market draws exactly this way: its committee equals the formula at its seed
    rd = Round(m, reg, a(OWNER), k=k, r=3)
    rd.submit([a(1)])
    rd.reveal_eval()
    rd.request()
    chain.mine(3)
    rd.m.drawCommittee(rd.id, {"from": a(OWNER)})
    t = rd.task()
    seed = chain[t["seedBlock"]]["hash"]
    assert rd.seats() == draw_seats(reg, bytes(seed), rd.id, k, t["snapshotBlock"])


def test_seats_are_drawn_with_replacement_one_verifier_fills_the_committee(m, reg):
    stake(reg, [10])  # v1 reverted TooFewVerifiers(1, 5)
    rd = Round(m, reg, a(OWNER), k=5, r=3)
    rd.submit([a(1)])
    rd.reveal_eval()
    seats = rd.draw()
    assert seats == [str(a(10))] * 5
    assert list(m.seatsOf(rd.id, a(10))) == [0, 1, 2, 3, 4]
    assert registry_info(reg, a(10))["lockedSeats"] == 5


# ============================================================================ property 2
def test_stake_change_after_request_does_not_change_draw(m, reg):
    stake(reg, VERIFIERS[:4])
    rd = Round(m, reg, a(OWNER), k=8, r=3)
    rd.submit([a(1), a(2)])
    rd.reveal_eval()
    rd.request()
    snap = rd.task()["snapshotBlock"]
    total = reg.totalAt(snap)
    reg.stake({"from": a(20), "value": 100 * STAKE})  # a whale arrives after the request
    reg.stake({"from": a(10), "value": 5 * STAKE})  # a verifier adds stake
    reg.requestUnbond({"from": a(11)})  # another leaves
    chain.mine(3)
    m.drawCommittee(rd.id, {"from": a(OWNER)})
    t = rd.task()
    assert reg.totalAt(snap) == total
    assert str(a(20)) not in rd.seats()
    assert rd.seats() == draw_seats(reg, bytes(chain[t["seedBlock"]]["hash"]), rd.id, 8, snap)


def test_request_while_seed_pending_reverts_no_reroll(m, reg):
    stake(reg, VERIFIERS[:3])
    rd = Round(m, reg, a(OWNER))
    rd.submit([a(1)])
    rd.reveal_eval()
    rd.request()
    reverts("DrawPending", m.requestDraw, rd.id, {"from": a(2)})
    reverts("SeedNotMined", m.drawCommittee, rd.id, {"from": a(2)})  # seed block not mined yet
    mine(100)
    reverts("DrawPending", m.requestDraw, rd.id, {"from": a(2)})  # its hash still exists


def test_rerequest_after_expiry_keeps_snapshot(m, reg):
    stake(reg, VERIFIERS[:3])
    rd = Round(m, reg, a(OWNER), k=8, r=3)
    rd.submit([a(1)])
    rd.reveal_eval()
    rd.request()
    snap = rd.task()["snapshotBlock"]
    seed_block = rd.task()["seedBlock"]
    mine(260)
    reverts("SeedExpired", m.drawCommittee, rd.id, {"from": a(OWNER)})
    reg.stake({"from": a(20), "value": 100 * STAKE})  # arrives between the requests
    rd.request()
    assert rd.task()["snapshotBlock"] == snap and rd.task()["seedBlock"] > seed_block
    chain.mine(3)
    m.drawCommittee(rd.id, {"from": a(OWNER)})
    assert str(a(20)) not in rd.seats()


def test_rerequest_after_snapshot_ttl_takes_a_fresh_snapshot(m, reg):
    stake(reg, VERIFIERS[:3])
    rd = Round(m, reg, a(OWNER), k=8, r=3)
    rd.submit([a(1)])
    rd.reveal_eval()
    rd.request()
    snap = rd.task()["snapshotBlock"]
    mine(260)
    chain.sleep(m.SNAPSHOT_TTL() + 1)
    reg.stake({"from": a(20), "value": 1000 * STAKE})
    chain.mine(1)
    rd.request()
    assert rd.task()["snapshotBlock"] > snap
    assert reg.weightAt(a(20), rd.task()["snapshotBlock"]) == 1000 * STAKE


def test_interested_party_cannot_make_the_draw_impossible(m, reg):
    """every verifier unbonds after the request (v1: TooFewVerifiers); the snapshot still draws"""
    stake(reg, VERIFIERS[:3])
    rd = Round(m, reg, a(OWNER))
    rd.submit([a(1)])
    rd.reveal_eval()
    rd.request()
    for i in VERIFIERS[:3]:
        reg.requestUnbond({"from": a(i)})
    chain.mine(1)
    assert reg.totalAt(chain.height - 1) == 0
    chain.mine(3)
    m.drawCommittee(rd.id, {"from": a(OWNER)})
    assert set(rd.seats()) <= {str(a(i)) for i in VERIFIERS[:3]}
    assert m.phaseOf(rd.id) == Phase.SCORE_COMMIT


def test_cancel_unbond_not_possible(m, reg):
    stake(reg, [10])
    reg.requestUnbond({"from": a(10)})
    reverts("Unbonding", reg.stake, {"from": a(10), "value": STAKE})
    reverts("Unbonding", reg.requestUnbond, {"from": a(10)})


# ============================================================================ property 3
def majority_round(m, reg, behaviour, silent=(), truth=(4000,), tolerance=150):
    rd = round_with_committee(m, reg, list(truth), k=5, r=5, tolerance=tolerance)
    rd.score(behaviour, silent=silent)
    rd.settle()
    return rd


def test_majority_minority_invalid_cannot_force_invalid(m, reg):
    rd = majority_round(m, reg, lambda seat, s: INVALID if seat < 2 else 4000)
    assert rd.results() == [(4000, Status.ACCEPTED)]
    seats = rd.seats()
    for j in (0, 1):
        assert tuple(m.seatStats(rd.id, j)) == (0, 1)  # disagreed: faulty
    assert all(tuple(m.seatStats(rd.id, j)) == (1, 0) for j in (2, 3, 4))
    slashed = {v: seats[:2].count(v) * SEAT_SLASH for v in seats}
    for v in set(seats):
        assert reg.stakeOf(v) == STAKE - slashed[v]
    books(m, everyone())


def test_minority_extreme_scores_cannot_move_result_outside_honest_scores(m, reg):
    honest = {2: 4000, 3: 4050, 4: 4100}
    rd = majority_round(m, reg, lambda seat, s: {0: -10000, 1: 10000}.get(seat, honest.get(seat)))
    (result, status), = rd.results()
    assert status == Status.ACCEPTED and min(honest.values()) <= result <= max(honest.values())


def test_silent_minority_cannot_force_invalid(m, reg):
    rd = majority_round(m, reg, lambda seat, s: 4000, silent=(0, 1))
    assert rd.results() == [(4000, Status.ACCEPTED)]


def test_without_majority_result_is_unresolved(m, reg):
    rd = majority_round(m, reg, lambda seat, s: INVALID, silent=(2, 3, 4))  # 2 INVALID of 5 seats
    assert rd.results()[0][1] == Status.UNRESOLVED
    rd2 = majority_round(m, reg, lambda seat, s: INVALID if seat < 2 else 4000, silent=(4,))  # 2 vs 2
    assert rd2.results()[0][1] == Status.UNRESOLVED


# ============================================================================ property 4
def test_unhosted_eval_owner_gets_nothing_back_miners_paid(m, reg):
    """a majority of seats reports NO_EVAL: the submissions are unresolved, the miners share the
    miner pot, the NO_EVAL majority is paid, the numeric minority is slashed, the owner gets 0"""
    rd = round_with_committee(m, reg, [4000, 3000], k=5, r=5)
    rd.score(lambda seat, s: NO_EVAL if seat < 3 else 4000)
    rd.settle()
    assert [st for _, st in rd.results()] == [Status.UNRESOLVED] * 2
    fee = BOUNTY // 10
    for i in (1, 2):
        assert m.claimable(a(i)) == (BOUNTY - fee) // 2 + BOND
    assert m.claimable(a(OWNER)) == 0
    seats = rd.seats()
    assert all(m.seatStats(rd.id, j)[1] == 2 for j in (3, 4))  # the minority disagreed twice
    pot = fee + 2 * SEAT_SLASH
    assert sum(m.claimable(v) for v in set(seats)) == pot
    books(m, everyone())


def test_no_eval_reveal_bounty_to_revealed_miners(m, reg):
    stake(reg, VERIFIERS[:3])
    rd = Round(m, reg, a(OWNER))
    rd.submit([a(1), a(2), a(3)], unrevealed=(2,))
    assert m.phaseOf(rd.id) == Phase.EVAL_REVEAL
    rd.to_eval_end()
    assert m.phaseOf(rd.id) == Phase.AWAITING_SETTLEMENT
    reverts("WrongPhase", m.requestDraw, rd.id, {"from": a(1)})
    rd.settle(batch=1)
    share = (BOUNTY + BOND) // 2
    assert m.claimable(a(1)) == share + BOND and m.claimable(a(2)) == share + BOND
    assert m.claimable(a(3)) == 0 and m.claimable(a(OWNER)) == 0
    books(m, everyone())


def test_no_committee_by_timeout_bounty_to_revealed_miners(m, reg):
    rd = Round(m, reg, a(OWNER))
    rd.submit([a(1), a(2)])
    rd.reveal_eval()
    reverts("NoEligibleStake", m.requestDraw, rd.id, {"from": a(1)})
    rd.sleep_past(rd.task()["evalRevealEnd"] + m.DRAW_TIMEOUT())
    assert m.phaseOf(rd.id) == Phase.AWAITING_SETTLEMENT
    rd.settle()
    assert m.claimable(a(1)) == BOUNTY // 2 + BOND == m.claimable(a(2))
    assert m.claimable(a(OWNER)) == 0
    books(m, everyone())


def test_no_revealed_submission_refunds_owners_pro_rata(m, reg):
    rd = Round(m, reg, a(OWNER), bounty=10**18)
    rd.join(a(20), 3 * 10**18)
    rd.commit(a(1))
    rd.commit(a(2))
    rd.to_eval()
    assert m.phaseOf(rd.id) == Phase.AWAITING_SETTLEMENT
    tx = rd.settle()[0]
    assert tx.events["Finalized"]["ownersRefund"] == 4 * 10**18 + 2 * BOND
    assert m.claimable(a(20)) == 3 * 10**18 + 2 * BOND * 3 // 4
    assert m.claimable(a(OWNER)) == 10**18 + 2 * BOND - 2 * BOND * 3 // 4
    assert [st for _, st in rd.results()] == [Status.UNREVEALED] * 2
    books(m, everyone())


def test_slashes_never_reach_an_owner(m, reg):
    """every seat silent: the 3 seats that had to score the submission are slashed (seats 3 and 4
    were assigned nothing), no seat earned; the pot (fee + slashes) goes to the revealed miner,
    the owner keeps nothing"""
    rd = round_with_committee(m, reg, [4000], k=5, r=3)
    rd.score(silent=range(5))
    txs = rd.settle(batch=2)
    assert rd.results() == [(NO_EVAL, Status.UNRESOLVED)]
    assert m.claimable(a(OWNER)) == 0
    assert m.claimable(a(1)) == BOUNTY + 3 * SEAT_SLASH + BOND
    assert txs[-1].events["Finalized"]["potToMiners"] is True
    books(m, everyone())


# ============================================================================ property 5
def test_below_min_gain_loses_half_the_bond_invalid_all(m, reg):
    rd = round_with_committee(m, reg, [6000, 50, INVALID], min_gain=100)
    rd.score()
    rd.settle()
    assert [st for _, st in rd.results()] == [Status.ACCEPTED, Status.REJECTED, Status.INVALID]
    assert m.claimable(a(2)) == BOND // 2
    assert m.claimable(a(3)) == 0
    assert m.claimable(a(1)) == BOUNTY * 9 // 10 + BOND


def test_min_bond_enforced(m, reg):
    floor = m.MIN_BOND()
    reverts("MinBond", m.createTask, "s", b"\x01" * 32, floor - 1, 5, 3, 100, 150, 1000, WINDOWS,
            {"from": a(OWNER), "value": BOUNTY})
    rd = Round(m, reg, a(OWNER), bond=floor)
    reverts("WrongBond", m.commit, rd.id, b"\x01" * 32, {"from": a(1), "value": floor - 1})
    reverts("WrongBond", m.commit, rd.id, b"\x01" * 32, {"from": a(1), "value": floor + 1})


def test_filling_slots_with_noise_loses_money(m, reg, p):
    """a spammer fills 1,024 slots with noise (scored below min gain) next to one honest miner:
    it gets half of each bond back and no reward; the honest miner takes the whole miner pot"""
    stake(reg, VERIFIERS[:5])
    rd = Round(m, reg, a(OWNER), k=5, r=1)
    spam = [p.BulkMiner.deploy(m, {"from": a(20 + i)}) for i in range(4)]
    rd.commit(a(1))
    for b in spam:
        transact(b, "commitMany", rd.id, 256, sender=a(20), value=256 * BOND)
    rd.to_reveal()
    rd.reveal(0)
    for b in spam:
        transact(b, "revealMany", rd.id, 0, 256, sender=a(20))
    rd.to_eval()
    rd.reveal_eval()
    rd.draw()
    rd.score(lambda seat, s: 6000 if s == 0 else 0)  # noise gains nothing: below min gain
    rd.settle(batch=256)
    paid, back = 1024 * BOND, sum(m.claimable(b) for b in spam)
    assert back == paid // 2 < paid
    assert m.claimable(a(1)) == BOUNTY * 9 // 10 + BOND
    books(m, everyone(*spam))


# ============================================================================ property 6
def test_scale_1024_submissions_32_seats_settle_in_batches_under_5m_gas(m, reg, p):
    stake(reg, VERIFIERS)
    rd = Round(m, reg, a(OWNER), k=32, r=5, bounty=10 * BOUNTY)
    bulk = [p.BulkMiner.deploy(m, {"from": a(20 + i)}) for i in range(4)]
    for b in bulk:
        transact(b, "commitMany", rd.id, 256, sender=a(20), value=256 * BOND)
    rd.to_reveal()
    for b in bulk:
        transact(b, "revealMany", rd.id, 0, 256, sender=a(20))
    rd.to_eval()
    rd.reveal_eval()
    rd.draw()
    n = 1024
    assert rd.task()["submissionCount"] == n
    rd.score(lambda seat, s: 3000 + s % 7 if s % 4 else 0)  # every 4th submission is noise
    txs = rd.settle(batch=128)
    gas = [tx.gas_used for tx in txs]
    assert max(gas) < 5_000_000, gas
    assert sum(gas) / n < 60_000
    results = rd.results()
    assert all(st == (Status.REJECTED if s % 4 == 0 else Status.ACCEPTED) for s, (_, st) in enumerate(results))
    books(m, everyone(*bulk))


def test_no_verifier_cap(m, reg, p):
    factory = p.StakerFactory.deploy({"from": a(20)})
    for _ in range(2):
        transact(factory, "make", reg.address, 40, sender=a(20), value=40 * 10**17)
    assert reg.verifierCount() == 80 > 64  # v1: MAX_VERIFIERS = 64
    assert reg.balance() == 80 * 10**17


# ============================================================================ property 7
def test_tolerance_above_max_reverts(m):
    top = m.MAX_TOLERANCE_BPS()
    assert top == 300
    reverts("ToleranceTooHigh", m.createTask, "s", b"\x01" * 32, BOND, 5, 3, 100, top + 1, 1000, WINDOWS,
            {"from": a(OWNER), "value": BOUNTY})
    m.createTask("s", b"\x01" * 32, BOND, 5, 3, 100, top, 1000, WINDOWS, {"from": a(OWNER), "value": BOUNTY})


# ============================================================================ property 8
def test_reveal_during_commit_window_reverts(m, reg):
    rd = Round(m, reg, a(OWNER))
    rd.commit(a(1))
    chain.mine(1)
    msg = reverts("WrongPhase", rd.reveal, 0)
    assert msg.endswith(f"{int(Phase.REVEAL)}, {int(Phase.COMMIT)}")
    rd.to_reveal()
    rd.reveal(0)


def test_reveal_after_reveal_window_reverts(m, reg):
    rd = Round(m, reg, a(OWNER))
    rd.commit(a(1))
    rd.to_eval()
    reverts("WrongPhase", rd.reveal, 0)


# ============================================================================ property 9
def test_unbonding_takes_days(m, reg):
    stake(reg, [10])
    assert reg.UNBONDING_DELAY() == 3 * 86400
    reverts("NotUnbonding", reg.withdrawStake, {"from": a(10)})
    reg.requestUnbond({"from": a(10)})
    assert reg.weightAt(a(10), chain.height) == 0
    chain.sleep(3 * 86400 - 60)
    chain.mine(1)
    reverts("UnbondingNotOver", reg.withdrawStake, {"from": a(10)})
    chain.sleep(61)
    chain.mine(1)
    before = a(10).balance()
    reg.withdrawStake({"from": a(10), "gas_price": 0})
    assert a(10).balance() == before + STAKE and reg.stakeOf(a(10)) == 0
    reg.stake({"from": a(10), "value": STAKE})  # staking again after the withdrawal
    assert registry_info(reg, a(10))["slot"] == 1


def test_locked_seats_block_withdrawal(m, reg):
    rd = round_with_committee(m, reg, [4000], n_verifiers=1)
    v = rd.seats()[0]
    reg.requestUnbond({"from": v})
    rd.score()  # an unbonding verifier still serves its seats
    chain.sleep(reg.UNBONDING_DELAY() + 1)
    chain.mine(1)
    reverts("StakeLocked", reg.withdrawStake, {"from": v})  # settlement has not released the seats
    rd.settle()
    assert registry_info(reg, v)["lockedSeats"] == 0
    reg.withdrawStake({"from": v})
    assert reg.stakeOf(v) == 0 and reg.balance() == 0


# ============================================================================ attack checklist
def test_same_cid_twice_reverts(m, reg):
    rd = Round(m, reg, a(OWNER))
    rd.commit(a(1), "bafySame")
    rd.commit(a(2), "bafySame")
    rd.to_reveal()
    rd.reveal(0)
    reverts("DuplicateCid", rd.reveal, 1)


def test_commit_after_window_or_unknown_task_reverts(m, reg):
    rd = Round(m, reg, a(OWNER))
    reverts("UnknownTask", m.commit, rd.id + 1, b"\x01" * 32, {"from": a(1), "value": BOND})
    rd.to_reveal()
    reverts("WrongPhase", m.commit, rd.id, b"\x01" * 32, {"from": a(1), "value": BOND})


def test_reveal_in_commit_block_wrong_salt_or_someone_elses_commitment_reverts(m, reg, p):
    rd = Round(m, reg, a(OWNER))
    attacker = p.SameBlockRevealer.deploy({"from": a(20)})
    reverts("WrongPhase", attacker.attack, m, rd.id, "bafyX", salt(5), {"from": a(20), "value": BOND})
    rd.commit(a(1), "bafyA")
    rd.to_reveal()
    reverts("BadReveal", m.reveal, rd.id, 0, "bafyA", salt("wrong"), {"from": a(1)})
    reverts("BadReveal", m.reveal, rd.id, 0, "bafyA", salt("bafyA"), {"from": a(2)})  # another's
    reverts("UnknownSubmission", m.reveal, rd.id, 5, "bafyA", salt("bafyA"), {"from": a(1)})
    rd.reveal(0)
    reverts("AlreadyRevealed", rd.reveal, 0)


def test_copying_a_commitment_is_useless(m, reg):
    rd = Round(m, reg, a(OWNER))
    c = miner_commitment("bafyA", salt(1), str(a(1)), rd.id, chain.id, m.address)
    m.commit(rd.id, c, {"from": a(1), "value": BOND})
    m.commit(rd.id, c, {"from": a(2), "value": BOND})  # the same bytes, index 1
    rd.to_reveal()
    reverts("BadReveal", m.reveal, rd.id, 1, "bafyA", salt(1), {"from": a(2)})  # sender is in the hash
    m.reveal(rd.id, 0, "bafyA", salt(1), {"from": a(1)})


def test_verifier_scoring_own_submission_abstains(m, reg):
    """verifier V mines too. Alone on the committee it holds every seat of its own submission:
    nobody can judge it (Unscored: bond back, no share) while the honest miner is paid."""
    stake(reg, [10])
    v = a(10)
    rd = Round(m, reg, a(OWNER), k=3, r=3)
    rd.commit(a(1))
    rd.commit(v)
    rd.to_reveal()
    rd.reveal(0)
    rd.reveal(1)
    rd.to_eval()
    rd.reveal_eval()
    rd.draw()
    rd.score(lambda seat, s: 5000 if s == 0 else 9999)  # V scores its own junk 9999: ignored
    rd.settle()
    assert rd.results() == [(5000, Status.ACCEPTED), (NO_EVAL, Status.UNSCORED)]
    assert all(tuple(m.seatStats(rd.id, j)) == (1, 0) for j in range(3))  # only s0 judged
    assert m.claimable(a(1)) == BOUNTY * 9 // 10 + BOND
    assert m.claimable(v) == BOUNTY // 10 + BOND  # the fee as verifier, its bond as miner


def test_reentrancy_in_withdraw_and_reverting_recipient(m, reg, p):
    hostile = p.HostileMiner.deploy(m, {"from": a(20)})
    stake(reg, VERIFIERS[:3])
    rd = Round(m, reg, a(OWNER))
    c = miner_commitment("bafyH", salt(3), hostile.address, rd.id, chain.id, m.address)
    hostile.commit(rd.id, c, {"from": a(20), "value": BOND})
    rd.subs.append((hostile, "bafyH", salt(3)))
    rd.commit(a(1))
    rd.to_reveal()
    hostile.reveal(rd.id, 0, "bafyH", salt(3), {"from": a(20)})
    rd.reveal(1)
    rd.to_eval()
    rd.reveal_eval()
    rd.draw()
    rd.score(lambda seat, s: 4000)
    rd.settle()  # settlement never calls the hostile contract
    owed = m.claimable(hostile)
    assert owed == (BOUNTY * 9 // 10) // 2 + BOND
    hostile.setMode(False, True, {"from": a(20)})
    reverts("TransferFailed", hostile.pull, {"from": a(20)})
    assert m.claimable(hostile) == owed  # nothing lost
    hostile.setMode(True, False, {"from": a(20)})
    reverts("TransferFailed", hostile.pull, {"from": a(20)})  # the re-entry reverts the payout
    assert m.claimable(hostile) == owed
    m.withdraw({"from": a(1)})  # others are unaffected
    assert m.claimable(a(1)) == 0
    books(m, everyone(hostile))


def test_reentrant_stake_withdrawal_fails(m, reg, p):
    hv = p.HostileVerifier.deploy(reg, {"from": a(20)})
    hv.stake({"from": a(20), "value": STAKE})
    hv.requestUnbond({"from": a(20)})
    chain.sleep(reg.UNBONDING_DELAY() + 1)
    chain.mine(1)
    reverts("TransferFailed", hv.withdrawStake, {"from": a(20)})
    assert reg.stakeOf(hv) == STAKE and reg.balance() == STAKE


def test_score_copying_and_bad_scores_revert(m, reg):
    rd = round_with_committee(m, reg, [4000, 5000], k=2, r=2, n_verifiers=2)
    seats = rd.seats()
    v0 = rd.vector(0, lambda seat, s: rd.truth[s])
    c0 = score_commitment(v0, salt(9), seats[0], rd.id, 0, chain.id, m.address)
    m.commitScores(rd.id, 0, c0, {"from": seats[0]})
    m.commitScores(rd.id, 1, c0, {"from": seats[1]})  # copies seat 0's commitment
    reverts("NotSeatHolder", m.commitScores, rd.id, 0, c0, {"from": a(1)})
    reverts("ScoresAlreadyCommitted", m.commitScores, rd.id, 0, c0, {"from": seats[0]})
    reverts("WrongPhase", m.revealScores, rd.id, 0, v0, salt(9), {"from": seats[0]})  # still committing
    rd.sleep_past(rd.task()["scoreCommitEnd"])
    reverts("BadScoreReveal", m.revealScores, rd.id, 1, v0, salt(9), {"from": seats[1]})  # sender and seat
    reverts("WrongScoreCount", m.revealScores, rd.id, 0, v0[:1], salt(9), {"from": seats[0]})
    m.revealScores(rd.id, 0, v0, salt(9), {"from": seats[0]})
    assert list(m.getScores(rd.id, 0)) == v0 and list(m.getScores(rd.id, 1)) == []
    bad = [10001, 0]  # out of range and not a sentinel: BadScore at reveal
    rd2 = round_with_committee(m, reg, [4000, 5000], k=2, r=2, n_verifiers=0)
    s2 = rd2.seats()
    m.commitScores(rd2.id, 0, score_commitment(bad, salt(9), s2[0], rd2.id, 0, chain.id, m.address),
                   {"from": s2[0]})
    rd2.sleep_past(rd2.task()["scoreCommitEnd"])
    reverts("BadScore", m.revealScores, rd2.id, 0, bad, salt(9), {"from": s2[0]})


# ============================================================================ accounting
def test_full_round_exact_payouts(m, reg):
    rd = round_with_committee(m, reg, [6000, 2000, 50, INVALID, 4000, 0], unrevealed=(5,))
    rd.score()
    txs = rd.settle(batch=3)
    assert [st for _, st in rd.results()] == [Status.ACCEPTED, Status.ACCEPTED, Status.REJECTED, Status.INVALID,
                                              Status.ACCEPTED, Status.UNREVEALED]
    fee = BOUNTY // 10
    miner_pot = BOUNTY - fee
    expected = {1: miner_pot * 6000 // 12000 + BOND, 2: miner_pot * 2000 // 12000 + BOND, 3: BOND // 2, 4: 0,
                5: miner_pot * 4000 // 12000 + BOND, 6: 0}
    for i, want in expected.items():
        assert m.claimable(a(i)) == want, i
    pot = fee + BOND // 2 + BOND + BOND  # fee, rejected half bond, INVALID bond, unrevealed bond
    seats = rd.seats()
    agree = [len([s for s in seat_submissions(j, 6, 5, 3) if s != 5]) for j in range(5)]
    assert [m.seatStats(rd.id, j)[0] for j in range(5)] == agree
    assert sum(m.claimable(v) for v in set(seats)) == pot
    assert m.claimable(a(OWNER)) == 0
    fin = txs[-1].events["Finalized"]
    assert fin["minersPaid"] == miner_pot and fin["potPaid"] == pot and fin["ownersRefund"] == 0
    settled = [e["index"] for tx in txs if "SubmissionSettled" in tx.events for e in tx.events["SubmissionSettled"]]
    assert settled == [0, 1, 2, 3, 4]
    assert m.getSettlement(rd.id)["stage"] == Stage.FINALIZED and rd.task()["escrow"] == 0
    books(m, everyone())


def test_verifier_pot_pro_rata_to_agreements_and_dust_to_last_paid_seat(m, reg):
    bounty = 999_999_999_999_999_999
    rd = round_with_committee(m, reg, [5000] * 4, k=3, r=2, n_verifiers=3, fee_bps=333, bounty=bounty)
    rd.score()
    rd.settle()
    fee = bounty * 333 // 10000
    agree = [len(seat_submissions(j, 4, 3, 2)) for j in range(3)]  # [3, 3, 2]
    assert [m.seatStats(rd.id, j)[0] for j in range(3)] == agree
    per_seat = [fee * x // sum(agree) for x in agree[:2]]
    per_seat.append(fee - sum(per_seat))  # dust to the last paid seat
    assert per_seat[2] > fee * agree[2] // sum(agree)  # there is dust
    want: dict = {}
    for j, v in enumerate(rd.seats()):
        want[v] = want.get(v, 0) + per_seat[j]
    for v, amount in want.items():
        assert m.claimable(v) == amount
    miner_pot = bounty - fee
    reward = miner_pot * 5000 // 20000
    assert all(m.claimable(a(i)) == reward + BOND for i in MINERS[:4])
    assert m.claimable(a(OWNER)) == miner_pot - 4 * reward  # the miners' rounding dust
    books(m, everyone())


def test_unresolved_submissions_share_equally(m, reg):
    split = [1000, 1000, 3000, 5000, 5000]  # no value has a majority within tolerance
    rd = round_with_committee(m, reg, [4000, 0, 0], k=5, r=5)
    rd.score(lambda seat, s: 4000 if s == 0 else split[seat])
    rd.settle()
    assert [st for _, st in rd.results()] == [Status.ACCEPTED, Status.UNRESOLVED, Status.UNRESOLVED]
    miner_pot = BOUNTY * 9 // 10
    unresolved_pot = miner_pot * 2 // 3
    assert m.claimable(a(2)) == unresolved_pot // 2 + BOND == m.claimable(a(3))
    assert m.claimable(a(1)) == miner_pot - unresolved_pot + BOND
    assert m.claimable(a(OWNER)) == 0
    books(m, everyone())


def test_co_owned_task_refund_pro_rata(m, reg):
    """nothing accepted: the miner pot goes back to the owners pro rata (dust to owner 0); the
    verifiers keep the pot (fee + forfeited half bonds)"""
    stake(reg, VERIFIERS[:5])
    rd = Round(m, reg, a(OWNER), bounty=10**18 + 1)
    rd.join(a(20), 2 * 10**18)
    rd.join(a(21), 5 * 10**17)
    reverts("AlreadyOwner", m.joinTask, rd.id, b"\x02" * 32, {"from": a(20), "value": 1})
    rd.submit([a(1), a(2)])
    rd.reveal_eval(0)
    reverts("EvalAlreadyRevealed", rd.reveal_eval, 0)
    rd.reveal_eval(2)
    assert m.phaseOf(rd.id) == Phase.EVAL_REVEAL  # owner 1 has not revealed yet
    rd.reveal_eval(1)
    assert m.phaseOf(rd.id) == Phase.AWAITING_DRAW  # all revealed: no need to wait
    rd.draw()
    rd.score(lambda seat, s: 20)  # below min gain: rejected
    rd.settle()
    bounty = 35 * 10**17 + 1
    miner_pot = bounty - bounty // 10
    shares = [miner_pot * 2 * 10**18 // bounty, miner_pot * 5 * 10**17 // bounty]
    assert m.claimable(a(20)) == shares[0] and m.claimable(a(21)) == shares[1]
    assert m.claimable(a(OWNER)) == miner_pot - sum(shares)
    assert [o[3] for o in m.owners(rd.id)] == [True, True, True]
    assert m.claimable(a(1)) == BOND // 2
    books(m, everyone())


def test_withdraw_pays_out_and_zeroes_the_balance(m, reg):
    rd = round_with_committee(m, reg, [5000])
    rd.score()
    rd.settle()
    owed = m.claimable(a(1))
    before = a(1).balance()
    tx = m.withdraw({"from": a(1), "gas_price": 0})
    assert a(1).balance() == before + owed and m.claimable(a(1)) == 0
    assert tx.events["Withdrawn"]["amount"] == owed
    reverts("NothingToWithdraw", m.withdraw, {"from": a(1)})
    books(m, everyone())


# ============================================================================ Python mirror
def test_python_assignment_matches_contract(m, reg, p):
    for n, k, r in [(1, 1, 1), (7, 3, 2), (12, 5, 5), (20, 8, 3), (9, 16, 4)]:
        rd = Round(m, reg, a(OWNER), k=k, r=r)
        for i in range(n):
            rd.commit(a(1 + i % 9))
        for seat in range(k):
            assert list(m.assigned(rd.id, seat)) == seat_submissions(seat, n, k, r), (n, k, r, seat)
    harness = p.ScoresHarness.deploy({"from": a(20)})
    rng = random.Random(7)
    for n, k, r in [(1024, 32, 5), (4096, 64, 7), (1000, 7, 7), (333, 64, 1)]:
        for seat in rng.sample(range(k), min(k, 4)):
            assert list(harness.seatSubmissions(seat, n, k, r)) == seat_submissions(seat, n, k, r)
            for s in rng.sample(range(n), 5):
                assert harness.rank(seat, s, k, r) == rank(seat, s, k, r)


def test_phase_enum_mirrors_contract(m, reg):
    stake(reg, [10])
    rd = Round(m, reg, a(OWNER))
    assert m.phaseOf(rd.id) == Phase.COMMIT and m.phaseOf(rd.id + 1) == Phase.NONE
    rd.commit(a(1))
    rd.to_reveal()
    assert m.phaseOf(rd.id) == Phase.REVEAL
    rd.reveal(0)
    rd.to_eval()
    assert m.phaseOf(rd.id) == Phase.EVAL_REVEAL
    rd.reveal_eval()
    assert m.phaseOf(rd.id) == Phase.AWAITING_DRAW
    rd.draw()
    assert m.phaseOf(rd.id) == Phase.SCORE_COMMIT
    rd.sleep_past(rd.task()["scoreCommitEnd"])
    assert m.phaseOf(rd.id) == Phase.SCORE_REVEAL
    rd.sleep_past(rd.task()["scoreRevealEnd"])
    assert m.phaseOf(rd.id) == Phase.AWAITING_SETTLEMENT
    m.settle(rd.id, 1, {"from": a(1)})
    assert m.phaseOf(rd.id) == Phase.SETTLING
    assert m.getSettlement(rd.id)["stage"] == Stage.SEATS  # the one submission's result is in
    rd.settle()
    assert m.phaseOf(rd.id) == Phase.FINALIZED
    reverts("WrongPhase", m.settle, rd.id, 1, {"from": a(1)})


def test_eval_commitment_and_views(m, reg):
    rd = Round(m, reg, a(OWNER))
    assert bytes(m.owners(rd.id)[0][2]) == eval_commitment("bafyeval-0", salt("eval-0"))
    for i in range(3):
        rd.commit(a(1 + i))
    rd.to_reveal()
    rd.reveal(1)
    miners, revealed = m.getSubmissions(rd.id, 1, 10)
    assert list(miners) == [str(a(2)), "0x" + "0" * 40] and list(revealed) == [True, False]
    rd.to_eval()
    reverts("NotOwner", m.revealEval, rd.id, 0, "bafyeval-0", salt("eval-0"), {"from": a(1)})
    reverts("BadEvalReveal", m.revealEval, rd.id, 0, "bafyeval-x", salt("eval-0"), {"from": a(OWNER)})
    rd.reveal_eval()
    reverts("WrongPhase", rd.reveal_eval)  # every owner revealed: the task awaits its draw
