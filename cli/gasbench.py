"""`codream bench gas`: gas of every external function of CoDreamMarket on anvil.

Runs in its own process (`python -m cli.gasbench`): importing brownie loads its global
configuration, which the rest of the CLI has no business with.

Reference size: committee of 5, 16 submissions; finalize also at the maximum sizes
(MAX_COMMITTEE × MAX_SUBMISSIONS). Goals from the market issue are reported beside.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import warnings

from brownie import accounts, chain, network, project
from brownie._config import CONFIG
from eth_utils import keccak

from codream import config
from codream.protocol import eval_commitment, miner_commitment, score_commitment

from .devnet import free_port

GOALS = {"commit": 70_000, "reveal": 60_000, "commitScores": 60_000, "finalize_5x16": 2_500_000,
         "finalize_max": 15_000_000, "withdraw": 35_000}
W = [3600] * 5


def _salt(i: int) -> bytes:
    return keccak(text=f"bench-{i}")


def _round(p, accounts, chain, k: int, ns: int, miners_from: int, verifiers_from: int) -> dict:
    m = p.CoDreamMarket[-1]
    gas: dict = {}
    owner = accounts[0]
    verifiers = accounts[verifiers_from:verifiers_from + k]
    for v in verifiers:
        if m.stakeOf(v) == 0:
            gas["stake"] = m.stake({"from": v, "value": 10**18}).gas_used
    chain.mine(1)
    tx = m.createTask("bafkreibenchspec" + "x" * 43, eval_commitment("bafyeval", _salt(0)), 10**16, k, 100, 150,
                      1000, W, {"from": owner, "value": 10**18})
    gas["createTask"] = tx.gas_used
    tid = tx.return_value
    miners = accounts[miners_from:miners_from + ns]
    cids = [f"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbz{i:03d}" for i in range(ns)]
    index = {}
    for i, a in enumerate(miners):
        c = miner_commitment(cids[i], _salt(i), a.address, tid, chain.id, m.address)
        tx = m.commit(tid, c, {"from": a, "value": 10**16})
        gas["commit"] = tx.gas_used
        index[i] = tx.events["Committed"]["index"]
    chain.sleep(W[0] + 1)
    chain.mine(1)
    for i, a in enumerate(miners):
        gas["reveal"] = m.reveal(tid, index[i], cids[i], _salt(i), {"from": a}).gas_used
    chain.sleep(W[1] + 1)
    chain.mine(1)
    gas["revealEval"] = m.revealEval(tid, "bafyeval", _salt(0), {"from": owner}).gas_used
    gas["requestDraw"] = m.requestDraw(tid, {"from": owner}).gas_used
    chain.mine(3)
    gas["drawCommittee"] = m.drawCommittee(tid, {"from": owner}).gas_used
    members = [x[0] for x in m.getCommittee(tid)]
    scores = [5000 + 7 * i for i in range(ns)]
    for j, a in enumerate(members):
        c = score_commitment(scores, _salt(99), a, tid, chain.id, m.address)
        gas["commitScores"] = m.commitScores(tid, j, c, {"from": a}).gas_used
    chain.sleep(W[3] + 1)
    chain.mine(1)
    for j, a in enumerate(members):
        gas["revealScores"] = m.revealScores(tid, j, scores, _salt(99), {"from": a}).gas_used
    chain.sleep(W[4] + 1)
    chain.mine(1)
    gas["finalize"] = m.finalize(tid, {"from": owner}).gas_used
    gas["withdraw"] = m.withdraw({"from": miners[0]}).gas_used
    return gas


def bench_gas() -> dict:
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # brownie narrates every transaction and warns about rpc.*
        return _bench_gas()


def _bench_gas() -> dict:
    os.environ["PATH"] = f"{config.REPO_ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"
    p = project.load(str(config.REPO_ROOT), name="CoDreamBench")
    port = free_port()
    dev = CONFIG.networks["development"]
    dev["host"] = "http://127.0.0.1"
    dev["cmd_settings"].update(port=port, accounts=60, gas_limit=60_000_000)
    network.connect("development")
    try:
        m = p.CoDreamMarket.deploy({"from": accounts[0]})
        ref = _round(p, accounts, chain, 5, 16, 1, 40)
        kmax, nmax = m.MAX_COMMITTEE(), m.MAX_SUBMISSIONS()
        big = _round(p, accounts, chain, kmax, nmax, 1, 40)
    finally:
        network.disconnect()
        p.close()
    out = {"reference": {"committee": 5, "submissions": 16, "gas": ref},
           "max": {"committee": kmax, "submissions": nmax, "finalize": big["finalize"],
                   "revealScores": big["revealScores"], "drawCommittee": big["drawCommittee"]}}
    checks = {"commit": ref["commit"], "reveal": ref["reveal"], "commitScores": ref["commitScores"],
              "revealScores_5x16": (ref["revealScores"], 40_000 + 6_000 * 16),
              "finalize_5x16": ref["finalize"], "finalize_max": big["finalize"], "withdraw": ref["withdraw"]}
    goals = {}
    for name, val in checks.items():
        got, goal = val if isinstance(val, tuple) else (val, GOALS[name])
        goals[name] = {"gas": got, "goal": goal, "met": got <= goal}
    out["goals"] = goals
    return out


if __name__ == "__main__":
    print(json.dumps(bench_gas()))
