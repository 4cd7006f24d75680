"""`codream demo --co-owned` on a real devnet: alice creates a task with her eval commitment,
bob joins it with his own and a contribution, two honest miners co-dream against both
teachers (separate processes), three verifiers score on the union of the revealed eval sets,
the keepers settle, and alice harvests the task from the chain (protocol v3: each owner's eval set
is checked against its declared teacher accuracy first). Every money row has the sign the
settlement rules give it, the books balance, and the harvested student beats both owners'
teachers on the union eval set."""
import json

import pytest

from rounds.coowned import BOND, CONTRIBUTIONS, STUDENT
from tests.conftest import free_port, run_cli

ETH = 10**18


@pytest.mark.slow
def test_co_owned_round_on_the_devnet_pays_by_the_rules_and_the_harvest_beats_both_teachers(tmp_path, monkeypatch):
    from rounds.coowned import CoOwnedDemo

    from rounds import devnet

    home = tmp_path / "home"
    monkeypatch.setenv("CODREAM_HOME", str(home))
    a, i = free_port(), free_port()
    try:
        result = CoOwnedDemo(n=200, anvil_port=a, ipfs_port=i, epochs=30, steps=300, keep_up=True).run()
        # bob harvests the same task by hand: the CLI reads the same accepted bundles off the chain
        res = run_cli("task", "harvest", str(result["task_id"]), "--out", str(tmp_path / "bob-harvest"),
                      "--steps", "20", "--no-baselines", "--threads", "1", "--rpc-url", f"http://127.0.0.1:{a}",
                      "--ipfs-api", f"/ip4/127.0.0.1/tcp/{i}/http", env={"CODREAM_HOME": str(home)})
    finally:
        devnet.down(a, i)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert json.loads(res.stdout)["images"] == 400
    rows = {r["role"]: r for r in result["rows"]}
    status = {s["miner"]: s["status"] for s in result["submissions"]}

    # owners: each paid its own contribution; every accepted dream was paid for, so no owner
    # comes out even (at most rounding dust comes back), and nobody slashes an owner
    for name in ("alice", "bob"):
        r = rows[f"owner {name}"]
        assert r["paid_in_wei"] == CONTRIBUTIONS[name] and r["slashed_wei"] == 0
        assert r["net_wei"] < 0 and r["credited_wei"] < 10**6, r
    # miners: both co-dreamed bundles accepted on the union eval set: reward + bond back, net > 0
    for j in (1, 2):
        r = rows[f"miner honest {j}"]
        assert status[r["address"]] == "accepted", result["submissions"]
        assert r["paid_in_wei"] == BOND and r["credited_wei"] > BOND and r["net_wei"] > 0
    # verifiers: a drawn verifier agreed with the majority and earned a fee share; one not
    # drawn (seats are drawn by stake, with replacement) risked and earned nothing
    drawn = {s["verifier"] for s in result["committee"]}
    for j in (1, 2, 3):
        r = rows[f"verifier {j}"]
        assert r["slashed_wei"] == 0 and r["paid_in_wei"] == 0
        assert (r["net_wei"] > 0) if r["address"] in drawn else (r["net_wei"] == 0), r
    books = result["books"]
    # every wei in is credited to someone or burned (rounding dust: never given to an owner)
    assert sum(r["credited_wei"] for r in rows.values()) + books["burned_wei"] == sum(CONTRIBUTIONS.values()) + 2 * BOND
    assert books["burned_wei"] < 10**6
    assert books["balanced"] and books["market_balance_wei"] == books["claimable_plus_escrow_plus_burned_wei"], books

    # the harvest, read from the chain: both accepted bundles with their miners, and a student
    # better than each owner's teacher on the union of the revealed eval sets
    acc = result["accuracy"]
    student = acc[f"{STUDENT} (harvested)"]
    assert acc["teacher alice"]["bob"] < 0.8 and acc["teacher bob"]["alice"] < 0.8  # each weak on the other's data
    assert student["union"] > acc["teacher alice"]["union"] and student["union"] > acc["teacher bob"]["union"], acc
    assert student["union"] > acc["noise baseline"]["union"] + 0.3
    assert result["beats_both_teachers_on_union"]
    card = json.loads((home / "demo" / f"harvest-{result['task_id']}" / "model_card.json").read_text())
    assert {s["miner"] for s in card["data_sources"]} == {rows["miner honest 1"]["address"],
                                                          rows["miner honest 2"]["address"]}
    by_hand = json.loads((tmp_path / "bob-harvest" / "provenance.json").read_text())
    assert [(p["cid"], p["miner"]) for p in by_hand] == [(p["cid"], p["miner"]) for p in card["data_sources"]]
    assert card["training"]["images"] == 400 and card["cost"]["paid_wei"] == sum(CONTRIBUTIONS.values()) - \
        sum(rows[f"owner {n}"]["credited_wei"] for n in ("alice", "bob"))
