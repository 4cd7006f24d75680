"""CoDreamMarket v3 on a real anvil chain through brownie: the Python mirror of every encoding and
rule (codream/protocol.py) checked against the contracts, one test per property of
docs/protocol-v3.md that the Python side relies on, the attack checklist items that still apply,
and the core read model and accounting (codream/market.py) on settled rounds. The money rules and
the issue-22 attacks are proved in forge (tests/forge/, run by test_toolchain.py)."""
import json
import random

import pytest

pytest.importorskip("brownie")
from brownie import accounts, chain, network, project, web3  # noqa: E402
from eth_abi import encode  # noqa: E402
from eth_utils import keccak  # noqa: E402

from codream import protocol as P  # noqa: E402
from tests.conftest import REPO  # noqa: E402
from tests.market_helpers import (BOND, BOUNTY, INVALID, NO_EVAL, STAKE, EvalVerdict, Phase, Round, Status,  # noqa: E402
                                  appeal_commitment, books, miner_commitment, patient_receipts, registry_info,
                                  reverts, salt, score_commitment, seat_submissions, stake_active, load_test_contracts)

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
    market = proj.CoDreamMarket.deploy(P.PRODUCTION_PARAMS.as_tuple(), {"from": accounts[0]})
    lens = proj.CoDreamLens.deploy(market.address, {"from": accounts[0]})
    proj.deployed = (market, proj.StakeRegistry.at(market.registry()), lens, proj.CoDreamAppeals.at(market.appeals()))
    proj.tests = load_test_contracts()
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


@pytest.fixture
def lens(p, m):
    return p.deployed[2]


@pytest.fixture
def ap(p, m):
    return p.deployed[3]


def a(i):
    return accounts[i]


def everyone(*extra):
    return [*accounts, *extra]


def round_with_committee(m, reg, lens, truth, k=5, r=5, n_verifiers=5, unrevealed=(), **kw) -> Round:
    """verifiers staked and warm, submissions by distinct miners (truth[s] = honest score), eval
    revealed, committee drawn, bundles revealed: ends in the score-commit window"""
    stake_active(reg, [a(i) for i in VERIFIERS[:n_verifiers]])
    rd = Round(m, reg, lens, a(OWNER), k=k, r=r, **kw)
    rd.truth = dict(enumerate(truth))
    rd.submit([a(i) for i in MINERS[:len(truth)]], unrevealed=unrevealed)
    return rd


# ============================================================================ the Python mirror
def test_production_params_and_enums_mirror_the_contracts(m, p, reg):
    h = p.tests.RulesHarness.deploy({"from": a(20)})
    assert tuple(h.production()) == P.PRODUCTION_PARAMS.as_tuple()
    assert tuple(m.params()) == P.PRODUCTION_PARAMS.as_tuple()  # the devnet deploys the production set
    assert reg.WARMUP() == P.PRODUCTION_PARAMS.warmup and reg.UNBONDING_DELAY() == P.PRODUCTION_PARAMS.unbonding_delay
    abi = {i["name"]: i for i in m.abi if i.get("type") == "function"}
    assert abi["phaseOf"]["outputs"][0]["internalType"] == "enum ICoDreamMarket.Phase"
    # the enums: their member counts on chain (the largest value a view can return)
    assert h.statusOf(INVALID, 0) == P.Status.INVALID and h.statusOf(NO_EVAL, 0) == P.Status.UNRESOLVED
    assert h.ownerVerdict(3, 0, 5) == P.Verdict.GOOD and h.ownerVerdict(0, 3, 5) == P.Verdict.FAULTY
    assert h.ownerVerdict(2, 2, 5) == P.Verdict.UNJUDGED


def test_python_rules_match_the_library(p):
    """statusOf, bondBack, proRata, ownerVerdict, decide and the recipe seed's encoding, on random
    inputs (the settlement maths has one home in Solidity and one mirror in Python)."""
    h = p.tests.RulesHarness.deploy({"from": a(20)})
    rng = random.Random(7)
    sentinels = [INVALID, NO_EVAL]
    for _ in range(40):
        m_, g = rng.choice([*sentinels, rng.randint(-10_000, 10_000)]), rng.randint(-10_000, 10_000)
        assert h.statusOf(m_, g) == P.status_of(m_, g)
        st, bond = rng.choice(list(P.Status)), rng.randint(0, 10**18)
        assert h.bondBack(st, bond) == P.bond_back(st, bond)
        amount, whole = rng.randint(0, 10**21), rng.randint(0, 10**20)
        part = rng.randint(0, whole)
        assert h.proRata(amount, part, whole) == P.pro_rata(amount, part, whole)
        k = rng.randint(1, 64)
        ok, nok = rng.randint(0, k), rng.randint(0, k)
        assert h.ownerVerdict(ok, nok, k) == P.owner_verdict(ok, nok, k)
        n = rng.randint(0, 9)
        scores = [rng.choice([*sentinels, rng.randint(-300, 300), rng.randint(-10_000, 10_000)]) for _ in range(n)]
        eligible, tol = n + rng.randint(0, 3), rng.randint(0, 300)
        assert tuple(h.decide(scores, eligible, tol)) == P.decide(scores, eligible, tol), (scores, eligible, tol)
    seed, cid = keccak(text="draw"), "bafkreiabc"
    digest = keccak(encode(["bytes32", "string"], [seed, cid]))
    assert P.recipe_seed(seed, cid) == int.from_bytes(digest[:4], "big") & 0x7FFFFFFF < 2**31


def test_python_assignment_matches_contract(p):
    h = p.tests.ScoresHarness.deploy({"from": a(20)})
    for n, k, r in [(7, 5, 5), (100, 32, 5), (64, 64, 31), (33, 15, 15)]:
        for j in {0, 1, k // 2, k - 1}:
            assert list(h.seatSubmissions(j, n, k, r)) == seat_submissions(j, n, k, r)
            assert h.count(j, n, k, r) == P.count(j, n, k, r)
            for s in (0, n // 3, n - 1):
                assert h.rank(j, s, k, r) == P.rank(j, s, k, r)


def test_a_round_with_python_encodings_and_the_lens(m, reg, lens):
    """Every commitment is computed in Python; the draw's seed, the seats, the lens's views and
    judgements equal what codream.protocol computes."""
    rd = round_with_committee(m, reg, lens, [6000, 2000, 50, INVALID, 4000, 0], unrevealed=(5,))
    t = rd.task()
    block = web3.eth.get_block(rd.draw_tx.block_number)
    seed = P.draw_seed(bytes(block["mixHash"]), rd.id, t["snapshotBlock"])
    assert bytes(t["seed"]) == seed  # the seed is the drawing block's prevrandao, mixed with the task
    total = reg.totalAt(t["snapshotBlock"])
    assert rd.seats() == [str(reg.sampleAt(t["snapshotBlock"], P.seat_target(seed, j, total))) for j in range(5)]
    rd.score()
    j = lens.judge(rd.id, 0)
    assert (j[0], j[1], j[2]) == (6000, True, Status.ACCEPTED)
    assert list(lens.getScores(rd.id, 0))[0] == EvalVerdict.OK  # the vector opens with the owner verdicts
    verdicts, ok, not_ok = lens.ownerVerdicts(rd.id)
    assert list(verdicts) == [P.Verdict.GOOD] and list(ok) == [5]
    rd.settle(batch=2)
    assert [st for _, st in rd.results()] == [Status.ACCEPTED, Status.ACCEPTED, Status.REJECTED, Status.INVALID,
                                              Status.ACCEPTED, Status.UNREVEALED]
    miner_pot = BOUNTY - BOUNTY // 10
    assert m.claimable(a(1)) == miner_pot * 6000 // 12000 + BOND
    assert m.claimable(a(3)) == BOND // 2 and m.claimable(a(4)) == 0
    books(m, everyone())


def test_appeal_overturns_with_the_python_commitments(m, reg, lens, ap, tmp_path, monkeypatch):
    """The only active verifier holds every seat and calls an honest bundle INVALID, then leaves
    (unbonds); three other verifiers, warm by then, activate after the draw: the appeal's fresh
    snapshot holds only them. The miner appeals; the appeal committee, scoring with
    appeal_commitment, overturns; the overturned seats are slashed, the appellant repaid."""
    wrong, honest = a(10), [a(i) for i in (11, 12, 13)]
    for v in [wrong, *honest]:
        reg.stake({"from": v, "value": STAKE})
    chain.sleep(reg.WARMUP() + 1)
    reg.activate(wrong, {"from": wrong})
    chain.mine(1)
    rd = Round(m, reg, lens, a(OWNER))
    rd.truth = {0: 6000}
    rd.submit([a(1)])
    assert set(rd.seats()) == {str(wrong)}
    rd.score(lambda seat, s: INVALID)
    assert lens.judge(rd.id, 0)[2] == Status.INVALID
    reg.requestUnbond({"from": wrong})
    for v in honest:
        reg.activate(v, {"from": v})
    chain.mine(1)
    deposit = ap.depositFor(rd.id)
    ap.appeal(rd.id, 0, {"from": a(1), "value": deposit})
    chain.mine(max(0, ap.getAppeal(rd.id, 0)["seedBlock"] - chain.height))
    ap.drawAppeal(rd.id, 0, {"from": a(1)})
    verifiers, _, _, _ = ap.getAppealSeats(rd.id, 0)
    assert len(verifiers) == 11 and str(wrong) not in set(map(str, verifiers))
    for j, v in enumerate(verifiers):
        ap.commitAppealScore(rd.id, 0, j, appeal_commitment(6000, salt(j), str(v), rd.id, 0, j, chain.id, ap.address),
                             {"from": v})
    rd.sleep_past(ap.getAppeal(rd.id, 0)["commitEnd"])
    for j, v in enumerate(verifiers):
        ap.revealAppealScore(rd.id, 0, j, 6000, salt(j), {"from": v})
    rd.sleep_past(ap.getAppeal(rd.id, 0)["revealEnd"])
    before = reg.stakeOf(wrong)
    while ap.getAppeal(rd.id, 0)["stage"] != P.AppealStage.RESOLVED:
        ap.resolveAppeal(rd.id, 0, 100, {"from": a(1)})
    assert ap.getAppeal(rd.id, 0)["outcome"] == P.Outcome.OVERTURNED
    assert before - reg.stakeOf(wrong) >= 5 * 10**17 - 1  # 5 seats x max(10 % of the stake, 0.1 ETH)
    assert m.claimable(a(1)) == deposit + (before - reg.stakeOf(wrong)) // 2  # deposit back + half the slashes
    on_appeal = before - reg.stakeOf(wrong)
    rd.settle()
    assert rd.results()[0] == (6000, Status.ACCEPTED)
    books(m, everyone())
    # the accounting read model: the appellant's deposit back and its share of the slashes, the
    # overturned verifier's slashes with the reason, every credit explained
    c = read_chain(m, reg, lens, ap, tmp_path, monkeypatch)
    st = accounts_agree_with_the_chain(c, m, everyone())
    miner = st[str(a(1))]
    kinds = {(e["kind"], e["reason"].split(":")[0]) for t in miner["tasks"] for e in t["entries"]}
    assert ("returned", "appeal 0 overturned") in kinds and ("paid", "appeal 0 deposit (submission 0)") in kinds
    share = sum(e["wei"] for t in miner["tasks"] for e in t["entries"] if "share of its slash" in e["reason"])
    assert share == on_appeal // 2
    lost = [e for t in st[str(wrong)]["tasks"] for e in t["entries"] if e["kind"] == "lost"]
    assert sum(e["wei"] for e in lost if "overturned" in e["reason"]) == on_appeal
    assert sum(e["wei"] for e in lost) == before - reg.stakeOf(wrong)  # and its seats' slashes at settlement
    assert st[str(wrong)]["net_wei"] == -(before - reg.stakeOf(wrong))


def test_failed_round_burns_the_withholding_owner_and_refunds_bonds(m, reg, lens):
    stake_active(reg, [a(10)])
    rd = Round(m, reg, lens, a(OWNER))
    rd.join(a(2), BOUNTY // 10)
    for i in (1, 3):
        rd.commit(a(i))
    rd.to_eval()
    rd.reveal_eval(1)  # the creator never reveals
    reverts("WrongPhase", rd.reveal, 0)  # no bundle is public before the draw
    rd.sleep_past(rd.task()["evalRevealEnd"] + P.PRODUCTION_PARAMS.draw_timeout)  # and nobody draws
    rd.settle()
    assert [o["verdict"] for o in m.owners(rd.id)] == [P.Verdict.FAULTY, P.Verdict.UNJUDGED]
    assert m.claimable(a(OWNER)) == 0 and m.claimable(a(2)) == BOUNTY // 10
    assert m.burned() == BOUNTY
    rd.reclaim(0)
    rd.reclaim(1)
    assert m.claimable(a(1)) == BOND and m.claimable(a(3)) == BOND
    reverts("AlreadyRevealed", rd.reclaim, 0)
    books(m, everyone())


def test_warmup_activation_and_unbonding(m, reg):
    v = a(10)
    reg.stake({"from": v, "value": STAKE})
    chain.mine(1)
    assert reg.weightAt(v, chain.height - 1) == 0 and reg.stakeOf(v) == STAKE
    reverts("WarmingUp", reg.activate, v, {"from": a(11)})
    chain.sleep(reg.WARMUP() + 1)
    reg.activate(v, {"from": a(11)})  # anyone
    chain.mine(1)
    assert reg.weightAt(v, chain.height - 1) == STAKE
    reverts("BelowMinStake", reg.stake, {"from": a(12), "value": 10**16})
    reg.requestUnbond({"from": v})
    reverts("Unbonding", reg.stake, {"from": v, "value": STAKE})  # an unbonding cannot be cancelled
    reverts("UnbondingNotOver", reg.withdrawStake, {"from": v})
    chain.sleep(reg.UNBONDING_DELAY() + 1)
    chain.mine(1)
    reg.withdrawStake({"from": v})
    assert reg.stakeOf(v) == 0 and reg.balance() == 0


# ============================================================================ parameters
def test_windows_seats_and_co_owners_have_floors(m, reg, lens):
    args = ("bafyspec", b"\x01" * 32, 9500, BOND)
    reverts("BadWindow", m.createTask, *args, 5, 5, 100, 150, 1000, [1, 3600, 3600, 3600, 3600],
            {"from": a(0), "value": BOUNTY})
    reverts("BadSeats", m.createTask, *args, 5, 4, 100, 150, 1000, [3600] * 5, {"from": a(0), "value": BOUNTY})
    reverts("BadSeats", m.createTask, *args, 5, 3, 100, 150, 1000, [3600] * 5, {"from": a(0), "value": BOUNTY})
    reverts("BadAccuracy", m.createTask, "bafyspec", b"\x01" * 32, 0, BOND, 5, 5, 100, 150, 1000, [3600] * 5,
            {"from": a(0), "value": BOUNTY})
    reverts("ToleranceTooHigh", m.createTask, *args, 5, 5, 100, 301, 1000, [3600] * 5, {"from": a(0), "value": BOUNTY})
    reverts("MinBond", m.createTask, "bafyspec", b"\x01" * 32, 9500, 10**14, 5, 5, 100, 150, 1000, [3600] * 5,
            {"from": a(0), "value": BOUNTY})
    rd = Round(m, reg, lens, a(OWNER))
    reverts("ContributionTooLow", rd.join, a(1), 1)  # 1 wei: refused
    rd.join(a(1), BOUNTY // 10)


# ============================================================================ attack checklist
def test_same_cid_twice_reverts(m, reg, lens):
    stake_active(reg, [a(10)])
    rd = Round(m, reg, lens, a(OWNER))
    rd.commit(a(1), "bafySame")
    rd.commit(a(2), "bafySame")
    rd.to_eval()
    rd.reveal_eval()
    rd.draw()
    rd.reveal(0)
    reverts("DuplicateCid", rd.reveal, 1)


def test_commit_after_window_or_unknown_task_reverts(m, reg, lens):
    rd = Round(m, reg, lens, a(OWNER))
    reverts("UnknownTask", m.commit, rd.id + 1, b"\x01" * 32, {"from": a(1), "value": BOND})
    rd.to_eval()
    reverts("WrongPhase", m.commit, rd.id, b"\x01" * 32, {"from": a(1), "value": BOND})


def test_reveal_before_the_draw_wrong_salt_or_someone_elses_commitment_reverts(m, reg, lens, p):
    stake_active(reg, [a(10)])
    rd = Round(m, reg, lens, a(OWNER))
    attacker = p.tests.SameBlockRevealer.deploy({"from": a(20)})
    reverts("WrongPhase", attacker.attack, m, rd.id, "bafyX", salt(5), {"from": a(20), "value": BOND})
    rd.commit(a(1), "bafyA")
    rd.to_eval()
    reverts("WrongPhase", rd.reveal, 0)
    rd.reveal_eval()
    rd.draw()
    reverts("BadReveal", m.reveal, rd.id, 0, "bafyA", salt("wrong"), {"from": a(1)})
    reverts("BadReveal", m.reveal, rd.id, 0, "bafyA", salt("bafyA"), {"from": a(2)})  # another's
    reverts("UnknownSubmission", m.reveal, rd.id, 5, "bafyA", salt("bafyA"), {"from": a(1)})
    rd.reveal(0)
    reverts("AlreadyRevealed", rd.reveal, 0)


def test_copying_a_commitment_is_useless(m, reg, lens):
    stake_active(reg, [a(10)])
    rd = Round(m, reg, lens, a(OWNER))
    c = miner_commitment("bafyA", salt(1), str(a(1)), rd.id, chain.id, m.address)
    m.commit(rd.id, c, {"from": a(1), "value": BOND})
    m.commit(rd.id, c, {"from": a(2), "value": BOND})  # the same bytes, index 1
    rd.to_eval()
    rd.reveal_eval()
    rd.draw()
    reverts("BadReveal", m.reveal, rd.id, 1, "bafyA", salt(1), {"from": a(2)})  # sender is in the hash
    m.reveal(rd.id, 0, "bafyA", salt(1), {"from": a(1)})


def test_reentrancy_in_withdraw_and_reverting_recipient(m, reg, lens, p):
    hostile = p.tests.HostileMiner.deploy(m, {"from": a(20)})
    stake_active(reg, [a(i) for i in VERIFIERS[:3]])
    rd = Round(m, reg, lens, a(OWNER))
    c = miner_commitment("bafyH", salt(3), hostile.address, rd.id, chain.id, m.address)
    hostile.commit(rd.id, c, {"from": a(20), "value": BOND})
    rd.subs.append((hostile, "bafyH", salt(3)))
    rd.commit(a(1))
    rd.to_eval()
    rd.reveal_eval()
    rd.draw()
    hostile.reveal(rd.id, 0, "bafyH", salt(3), {"from": a(20)})
    rd.reveal(1)
    rd.sleep_past(rd.task()["revealEnd"])
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
    hv = p.tests.HostileVerifier.deploy(reg, {"from": a(20)})
    hv.stake({"from": a(20), "value": STAKE})
    hv.requestUnbond({"from": a(20)})
    chain.sleep(reg.UNBONDING_DELAY() + 1)
    chain.mine(1)
    reverts("TransferFailed", hv.withdrawStake, {"from": a(20)})
    assert reg.stakeOf(hv) == STAKE and reg.balance() == STAKE


def test_score_copying_and_bad_vectors_revert(m, reg, lens):
    rd = round_with_committee(m, reg, lens, [4000, 5000], n_verifiers=2)
    seats = rd.seats()
    v0 = rd.vector(0, lambda seat, s: rd.truth[s])
    c0 = score_commitment(v0, salt(9), seats[0], rd.id, 0, chain.id, m.address)
    m.commitScores(rd.id, 0, c0, {"from": seats[0]})
    m.commitScores(rd.id, 1, c0, {"from": seats[1]})  # copies seat 0's commitment
    reverts("NotSeatHolder", m.commitScores, rd.id, 0, c0, {"from": a(1)})
    reverts("ScoresAlreadyCommitted", m.commitScores, rd.id, 0, c0, {"from": seats[0]})
    reverts("WrongPhase", m.revealScores, rd.id, 0, v0, salt(9), {"from": seats[0]})  # still committing
    bad_verdict = [7, *v0[1:]]
    m.commitScores(rd.id, 2, score_commitment(bad_verdict, salt(9), seats[2], rd.id, 2, chain.id, m.address),
                   {"from": seats[2]})
    rd.sleep_past(rd.task()["scoreCommitEnd"])
    reverts("BadScoreReveal", m.revealScores, rd.id, 1, v0, salt(9), {"from": seats[1]})  # sender and seat
    reverts("WrongScoreCount", m.revealScores, rd.id, 0, v0[:1], salt(9), {"from": seats[0]})
    reverts("BadVerdict", m.revealScores, rd.id, 2, bad_verdict, salt(9), {"from": seats[2]})
    m.revealScores(rd.id, 0, v0, salt(9), {"from": seats[0]})
    assert list(lens.getScores(rd.id, 0)) == v0 and list(lens.getScores(rd.id, 1)) == []


def test_split_stake_gains_nothing(m, reg, p):
    """Seats follow stake, not addresses: X's stake S and the same S split across 4 addresses (in
    the same slot order) get the same seats for every seed."""
    probe = p.tests.DrawProbe.deploy({"from": a(20)})
    seeds = [salt(f"seed-{i}") for i in range(200)]
    k = 16
    chain.snapshot()
    stake_active(reg, [a(10), a(15)], 4 * STAKE)
    seats_a = list(probe.groupSeats(reg, chain.height - 1, seeds, k, [a(10)]))
    chain.revert()
    group = [a(i) for i in (11, 12, 13, 14)]
    for g in group:
        reg.stake({"from": g, "value": STAKE})
    reg.stake({"from": a(15), "value": 4 * STAKE})
    chain.sleep(reg.WARMUP() + 1)
    for g in [*group, a(15)]:
        reg.activate(g, {"from": g})
    chain.mine(1)
    seats_b = list(probe.groupSeats(reg, chain.height - 1, seeds, k, group))
    assert seats_a == seats_b
    assert 0.4 < sum(seats_a) / (k * len(seeds)) < 0.6  # half the stake: about half the seats


# ============================================================================ the core read model
def read_chain(m, reg, lens, ap, tmp_path, monkeypatch):
    """codream's chain client over this brownie chain (a deployment record pointing at this market)."""
    from codream.chain import Chain, ChainConfig
    from codream.deployment import write_record

    monkeypatch.setenv("CODREAM_HOME", str(tmp_path))
    rec = write_record("brownie-test", chain.id, {
        "CoDreamMarket": {"address": m.address, "abi": m.abi, "block": 0, "tx": "0x"},
        "StakeRegistry": {"address": reg.address, "abi": reg.abi},
        "CoDreamAppeals": {"address": ap.address, "abi": ap.abi},
        "CoDreamLens": {"address": lens.address, "abi": lens.abi}}, str(a(0)), web3.provider.endpoint_uri,
        "production", path=tmp_path / "record.json")
    return Chain(ChainConfig(web3.provider.endpoint_uri, str(rec)))


def accounts_agree_with_the_chain(c, m, who) -> dict:
    """codream.accounts against the contracts' own state and events, for every address in ``who``:
    claimable as the market says; per task the credits equal the `Credited` events (each one
    explained by a reason), credited − paid in − slashed = net − in escrow, nothing in escrow once
    finalized; all slashes are the registry's; all nets together are what was burned."""
    from codream.accounts import ledger as accounts_ledger, statement

    out = {}
    credited = {}
    for e in c.events("Credited"):
        key = (e["account"], e["taskId"])
        credited[key] = credited.get(key, 0) + e["amount"]
    for x in {str(w) for w in who}:
        st = statement(c, x)
        out[x] = st
        assert st["claimable_wei"] == m.claimable(x)
        assert st["withdrawn_wei"] == sum(e["amount"] for e in c.events("Withdrawn", account=x))
        assert st["claimable_wei"] + st["withdrawn_wei"] == st["credited_wei"]  # every credit, claimed or not
        for t in st["tasks"]:
            assert t["credited_wei"] == credited.get((x, t["task"]), 0), t
            assert all("unattributed" not in e["reason"] and e["reason"] for e in t["entries"]), t
            assert t["credited_wei"] - t["paid_in_wei"] - t["slashed_wei"] == t["net_wei"] - t["in_escrow_wei"], t
            assert t["net_wei"] == t["earned_wei"] - t["lost_wei"] - t["spent_wei"]
            if t["settled"]:
                assert t["in_escrow_wei"] == 0, t
        assert st["net_wei"] == sum(t["net_wei"] for t in st["tasks"])
        assert [p["cumulative_net_wei"] for p in st["timeline"]][-1:] == ([st["net_wei"]] if st["timeline"] else [])
    everyone_ = accounts_ledger(c, {x: [x] for x in {str(w) for w in who}})
    assert sum(t.slashed for t in everyone_.values()) == sum(e["amount"] for e in c.events("Slashed", on="registry"))
    assert sum(t.credited - t.paid_in - t.slashed for t in everyone_.values()) == -m.burned() - sum(
        t.in_escrow for t in everyone_.values())
    return out


def test_read_model_ledger_and_books_on_a_settled_round(m, reg, lens, ap, p, tmp_path, monkeypatch):
    """codream.market over the same chain (a deployment record pointing at this market): the task
    view, per-party accounting and the books agree with the contracts to the wei."""
    from codream.accounts import ledger, statement
    from codream.market import books as market_books, show_task

    c = read_chain(m, reg, lens, ap, tmp_path, monkeypatch)
    rd = round_with_committee(m, reg, lens, [6000, 50])
    rd.score()
    rd.settle()
    shown = show_task(c, rd.id)
    assert shown["phase"] == "finalized" and shown["owners"][0]["verdict"] == "good"
    assert [s["status"] for s in shown["submissions"]] == ["accepted", "rejected"]
    assert shown["settlement"]["funded_wei"] == BOUNTY
    parties = {"owner": [str(a(0))], "miners": [str(a(1)), str(a(2))],
               "verifiers": [str(a(i)) for i in VERIFIERS[:5]]}
    acct = ledger(c, parties, tasks=[rd.id])
    assert acct["owner"].net == -BOUNTY + m.claimable(a(0))
    assert acct["miners"].paid_in == 2 * BOND and acct["miners"].credited == m.claimable(a(1)) + m.claimable(a(2))
    assert sum(x.net for x in acct.values()) == -m.burned()  # what nobody holds was burned
    b = market_books(c)
    assert b["balanced"] and b["burned_wei"] == m.burned()
    r = statement(c, str(a(1)))
    assert r["claimable_wei"] == m.claimable(a(1)) and any(h["kind"] == "earned" for h in r["history"])
    assert json.dumps(shown, default=str)  # serialisable for --json


def test_accounts_explain_every_wei_of_a_settled_round(m, reg, lens, ap, tmp_path, monkeypatch):
    """codream.accounts on a round with an accepted, a rejected and an unrevealed bundle and a
    silent seat: per account and task what it paid, earned, lost and spent, with the verdict's
    reason; a withdrawal is a transfer, not income; the parties' ledger agrees with it."""
    from codream.accounts import ledger as accounts_ledger, statement

    rd = round_with_committee(m, reg, lens, [6000, 50, 3000], unrevealed=(2,))
    silent = rd.seats()[4]
    rd.score(silent=(4,))
    rd.settle()
    m.withdraw({"from": a(1)})
    c = read_chain(m, reg, lens, ap, tmp_path, monkeypatch)
    st = accounts_agree_with_the_chain(c, m, everyone())
    honest, noise, hider = (st[str(a(i))] for i in (1, 2, 3))
    (row,) = honest["tasks"]
    reward = row["earned_wei"]
    assert reward > 0 and row["lost_wei"] == 0 and row["net_wei"] == reward and row["roles"] == ["miner"]
    assert [e["kind"] for e in row["entries"]] == ["paid", "returned", "earned"]
    assert "result 6,000 bps ≥ min gain 100 bps" in row["entries"][2]["reason"]
    assert honest["withdrawn_wei"] == reward + BOND and honest["claimable_wei"] == 0
    assert honest["net_wei"] == reward  # the withdrawal is a transfer: the net does not move
    assert [w["kind"] for w in honest["withdrawals"]] == ["withdrawal"]
    (row,) = noise["tasks"]
    forfeit = BOND * P.BELOW_MIN_FORFEIT_BPS // P.BPS
    assert row["earned_wei"] == 0 and row["lost_wei"] == forfeit and row["net_wei"] == -forfeit
    assert "result 50 bps < min gain 100 bps" in next(e for e in row["entries"] if e["kind"] == "lost")["reason"]
    (row,) = hider["tasks"]
    assert row["lost_wei"] == BOND and "never revealed" in row["entries"][-1]["reason"]
    owner = st[str(a(OWNER))]["tasks"][0]
    assert owner["roles"] == ["owner"] and owner["paid_in_wei"] == BOUNTY and owner["spent_wei"] == BOUNTY
    slashed = st[silent]["tasks"][0]
    assert slashed["slashed_wei"] > 0 and "silent (never revealed)" in " ".join(e["reason"] for e in slashed["entries"])
    fees = [st[v]["tasks"][0] for v in set(rd.seats()) - {silent}]
    assert fees and all(f["earned_wei"] > 0 and any(e["reason"].startswith("verifier fee: ") for e in f["entries"])
                        for f in fees)
    # the demos' per-party table: the same numbers, summed per party
    parties = {"miners": [str(a(1)), str(a(2)), str(a(3))], "verifiers": rd.seats()}
    led = accounts_ledger(c, parties, tasks=[rd.id])
    assert led["miners"].net == reward - forfeit - BOND
    assert led["verifiers"].net == sum(st[v]["net_wei"] for v in set(rd.seats())) and led["verifiers"].slashed > 0
    assert sum(t.net for t in accounts_ledger(c, {x: [x] for x in st}).values()) == -m.burned()
    assert statement(c, str(a(1)))["timeline"][-1]["cumulative_net_wei"] == reward
