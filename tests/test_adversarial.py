"""`codream demo --adversarial` end to end: every cheating strategy against honest parties in
real rounds on anvil + IPFS (market v3, verification v2). Asserts the sign of every row of the
table and the balance invariant at the end. The slowest test of the suite (~10 min on two cores)."""
import shutil
from pathlib import Path

import pytest

from rounds import adversarial
from tests.conftest import free_port, run_cli

# strategies the protocol can only make pointless (net ≤ 0), not costly; the row's reason says why
POINTLESS = {"verifier silent", "verifier copier"}


@pytest.fixture(scope="module")
def result(tmp_path_factory, reference_task):
    home = tmp_path_factory.mktemp("adversarial")
    mp = pytest.MonkeyPatch()
    mp.setenv("CODREAM_HOME", str(home))
    # the reference teacher is already trained (session fixture): the round reuses it
    shutil.copytree(Path(reference_task["spec"]).parent, home / "demo" / "task-digits")
    try:
        yield adversarial.run(anvil_port=free_port(), ipfs_port=free_port())
    finally:
        mp.undo()


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_honest_parties_earn_and_every_cheat_loses(result):
    rows = {r["strategy"]: r for r in result["rows"]}
    assert len(rows) == len(adversarial.actors())
    for name, r in rows.items():
        if r["role"] == "owner" and r["honest"]:
            assert r["net_wei"] < 0 and r["credited_wei"] < r["paid_in_wei"]  # it bought dreams
        elif r["honest"]:
            assert r["net_wei"] > 0, (name, r)
        elif "net_in_A_wei" in r:
            # cheats in A only (staller, bribed pair): the attack loses there, whenever it held a seat to cheat
            # with; the row's total adds its seats' honest work in the other tasks (paid: expected net ≈ 0)
            assert r["net_in_A_wei"] < 0 if r["seats_in_A"] else r["net_in_A_wei"] <= 0, (name, r)
        elif any(name.startswith(p) for p in POINTLESS) or r["why"].startswith("not drawn"):
            assert r["net_wei"] <= 0, (name, r)  # (a verifier never drawn could not act: pointless)
        else:
            assert r["net_wei"] < 0, (name, r)
        assert r["why"], name


@pytest.mark.slow
def test_the_books_balance_after_both_rounds(result):
    books = result["books"]
    assert books["balanced"], books
    assert books["market_balance_wei"] == books["claimable_plus_escrow_plus_burned_wei"]
    assert books["registry_balance_wei"] == books["stakes_wei"]


@pytest.mark.slow
def test_faulty_owners_are_burned_and_nobody_harvests_an_unjudged_round(result):
    """v3: the withholding owner (C), the unhosted eval (D) and the shuffled-label co-owner (E) lose
    their contributions (burned); the honest miners get their bonds back from C and D and nothing
    more; owner B's late stake held no seat."""
    rows = {r["strategy"]: r for r in result["rows"]}
    for name, paid in (("owner C", 10**18), ("owner D", 10**18), ("owner E", 10**17)):
        row = next(r for n, r in rows.items() if n.startswith(name))
        assert "eval set faulty" in row["why"], row["why"]
    for miner in ("miner honest 1", "miner honest 2"):
        why = rows[miner]["why"]
        assert "C: unresolved (bond reclaimed)" in why and "D: unresolved" in why, why
    assert int(result["burned_by_reason"]["0"]) >= 2 * 10**18 + 10**17  # faulty owners' contributions


@pytest.mark.slow
def test_copies_replays_and_eval_images_are_caught_by_novelty_and_receipts(result):
    rows = {r["strategy"]: r for r in result["rows"]}
    for name in ("miner exact copy", "miner sybil copies ×3", "miner disguised copies ×3", "miner warped copies ×2",
                 "miner eval images", "miner replay"):
        assert ": accepted" not in rows[name]["why"], (name, rows[name]["why"])
    disguised = rows["miner disguised copies ×3"]["why"]
    assert disguised == "A: invalid; A: invalid; A: invalid", disguised  # derived: a rotation, a blend, both
    warped = rows["miner warped copies ×2"]["why"]
    assert warped == "A: invalid; A: invalid", warped  # the receipt's replay: an elastic warp, a re-optimisation
    assert rows["miner honest 1"]["why"].count(": accepted") >= 2


@pytest.mark.slow
def test_a_stuck_task_does_not_stall_the_others(result):
    """Task D's eval set is never served: its submissions end unresolved (NO_EVAL, bonds back), while
    the same verifiers served task A on time; no honest seat was faulty anywhere."""
    rows = {r["strategy"]: r for r in result["rows"]}
    for miner in ("miner honest 1", "miner honest 2"):
        why = rows[miner]["why"]
        assert "D: unresolved" in why and "A: accepted" in why, why
    for verifier in ("verifier honest ×3", "verifier sybil split ×3"):
        assert ", 0 faulty" in rows[verifier]["why"], rows[verifier]["why"]


@pytest.mark.parametrize("group,command", [("miner", "run"), ("verifier", "run"), ("task", "create"),
                                           ("task", "reveal-eval")])
def test_adversaries_are_hidden_from_help_and_names_are_checked(group, command):
    """Every role's demo adversaries are selectable (`--strategy`), out of `--help`, and a wrong
    name is refused before anything runs."""
    shown = run_cli(group, command, "--help")
    assert shown.returncode == 0 and b"--strategy" not in shown.stdout
    args = ["1"] if command == "reveal-eval" else (["--task-dir", "."] if command == "create" else [])
    res = run_cli(group, command, *args, "--strategy", "no-such-strategy", "--rpc-url", "http://127.0.0.1:9")
    assert res.returncode == 2 and b"--strategy must be one of" in res.stderr, res.stderr
