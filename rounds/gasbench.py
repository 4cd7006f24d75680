"""`codream bench gas`: gas of every external function of the v3 contracts (CoDreamMarket,
CoDreamAppeals, StakeRegistry).

Runs in its own process (`python -m rounds.gasbench`, started by `codream bench gas`): importing
brownie loads its global configuration, which the rest of the CLI has no business with.

Measurements, goals from docs/protocol-v3.md reported beside each number:

- reference task on anvil (brownie, production parameters): K = 5 seats, r = 5, 16 submissions
  by distinct miners, one co-owner, settled in one call; then an appeal of one result (drawn,
  scored by its 11 seats, resolved) on a second task, and a failed round's bond reclaim;
- scale task on anvil: 1,024 submissions by 1,024 distinct miners (every payout writes a fresh
  `claimable` slot: the worst case), K = 32, r = 5, settled in batches of 128 items, each < 5M gas;
- committee draw at V = 1,000 and V = 10,000 registered verifiers, and every keeper call at the
  protocol's maxima (K 64, r 31, 4,096 submissions, 8 owners, an appeal of 63 seats): forge does
  these (tests/forge/Scale.t.sol: stakes and activations each in its own block so the sum tree's
  nodes carry long checkpoint histories; gas read with `vm.lastCallGas()` after `vm.cool()`,
  storage priced cold as in a fresh transaction, plus the 21,000 base cost) and prints GASJSON
  lines that this module parses.
"""
from __future__ import annotations

import json
import os
import subprocess

from eth_utils import keccak

from codream import config
from codream.devchain import free_port, patient_receipts
from codream.protocol import PRODUCTION_PARAMS, EvalVerdict, Phase, appeal_commitment, eval_commitment, \
    miner_commitment, score_commitment, seat_submissions, seat_vector


GOALS = {"commit": 70_000, "reveal": 60_000, "withdraw": 35_000, "settle_per_submission": 60_000,
         "batch": 5_000_000}
REVEAL_SCORES_BASE, REVEAL_SCORES_PER_SUBMISSION = 40_000, 6_000
W = [3600] * 5
BOND = 10**16
ACCURACY = 9500
SCALE_N, SCALE_K, SCALE_R, SCALE_BATCH = 1024, 32, 5, 128
REF_N, REF_K, REF_R, REF_BATCH = 16, 5, 5, 1000


def _salt(i) -> bytes:
    return keccak(text=f"bench-{i}")


def _stats(values: list[int]) -> dict:
    return {"max": max(values), "mean": round(sum(values) / len(values)), "n": len(values)}


def _send_all(web3, calls) -> list[int]:
    """sends (contract function, tx params) pairs without waiting, then the gas of each receipt"""
    hashes = [fn.transact(params) for fn, params in calls]
    gas = []
    for h in hashes:
        receipt = web3.eth.wait_for_transaction_receipt(h, timeout=600)
        assert receipt["status"] == 1, "a bench transaction reverted"
        gas.append(receipt["gasUsed"])
    return gas


class _Task:
    """One task driven through the protocol; records the gas of every call."""

    def __init__(self, m, lens, web3, chain, owner, k, r, bounty):
        self.m, self.lens, self.web3, self.chain, self.owner = m, lens, web3, chain, owner
        self.k, self.r = k, r
        self.w3m = web3.eth.contract(address=m.address, abi=m.abi)
        tx = m.createTask("bafkreibenchspec" + "x" * 43, eval_commitment("bafyeval-0", _salt("eval-0")), ACCURACY,
                          BOND, k, r, 100, 150, 1000, W, {"from": owner, "value": bounty})
        self.id = tx.return_value
        self.gas: dict = {"createTask": tx.gas_used}
        self.owners = [owner]

    def sleep_past(self, key: str, extra: int = 0):
        deadline = self.m.getTask(self.id)[key] + extra
        now = self.chain.time()
        if now <= deadline:
            self.chain.sleep(deadline - now + 1)
        self.chain.mine(1)

    def join(self, who):
        i = len(self.owners)
        tx = self.m.joinTask(self.id, eval_commitment(f"bafyeval-{i}", _salt(f"eval-{i}")), ACCURACY,
                             {"from": who, "value": 10**17})
        self.gas["joinTask"] = tx.gas_used
        self.owners.append(who)

    def submit(self, miners):
        """commit, eval reveals, the draw, reveals: the v3 order"""
        self.cids = [f"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy{self.id:02d}{i:05d}"
                     for i in range(len(miners))]
        calls = []
        for i, a in enumerate(miners):
            c = miner_commitment(self.cids[i], _salt(self.cids[i]), str(a), self.id, self.chain.id, self.m.address)
            calls.append((self.w3m.functions.commit(self.id, c), {"from": str(a), "value": BOND, "gas": 200_000}))
        self.gas["commit"] = _stats(_send_all(self.web3, calls))
        self.sleep_past("commitEnd")
        evals = [self.m.revealEval(self.id, i, f"bafyeval-{i}", _salt(f"eval-{i}"), {"from": o}).gas_used
                 for i, o in enumerate(self.owners)]
        self.gas["revealEval"] = _stats(evals)
        self.gas["requestDraw"] = self.m.requestDraw(self.id, {"from": self.owner}).gas_used
        self.chain.mine(2)
        self.gas["drawCommittee"] = self.m.drawCommittee(self.id, {"from": self.owner}).gas_used
        calls = [(self.w3m.functions.reveal(self.id, i, self.cids[i], _salt(self.cids[i])),
                  {"from": str(a), "gas": 200_000}) for i, a in enumerate(miners)]
        self.gas["reveal"] = _stats(_send_all(self.web3, calls))
        self.sleep_past("revealEnd")

    def score(self, truth):
        seats = [str(v) for v in self.lens.getSeats(self.id)[0]]
        n = self.m.getTask(self.id)["submissionCount"]
        verdicts = [EvalVerdict.OK] * len(self.owners)
        vectors = [seat_vector(verdicts, [truth(s) for s in seat_submissions(j, n, self.k, self.r)])
                   for j in range(len(seats))]
        commits = []
        for j, v in enumerate(seats):
            c = score_commitment(vectors[j], _salt(f"score-{j}"), v, self.id, j, self.chain.id, self.m.address)
            commits.append(self.m.commitScores(self.id, j, c, {"from": v}).gas_used)
        self.gas["commitScores"] = _stats(commits)
        self.sleep_past("scoreCommitEnd")
        reveals = []
        for j, v in enumerate(seats):
            g = self.m.revealScores(self.id, j, vectors[j], _salt(f"score-{j}"), {"from": v}).gas_used
            scored = len(vectors[j]) - len(self.owners)
            goal = REVEAL_SCORES_BASE + REVEAL_SCORES_PER_SUBMISSION * scored
            reveals.append({"seat": j, "scored": scored, "gas": g, "goal": goal, "met": g <= goal})
        self.gas["revealScores"] = {
            "per_seat": reveals,
            "max": max(x["gas"] for x in reveals),
            "per_scored_submission": round(sum(x["gas"] for x in reveals) / max(1, sum(x["scored"] for x in reveals))),
            "all_met": all(x["met"] for x in reveals),
        }
        self.sleep_past("scoreRevealEnd")

    def settle(self, batch: int, n: int):
        self.sleep_past("appealEnd")
        gas = []
        while self.m.phaseOf(self.id) != Phase.FINALIZED:
            gas.append(self.m.settle(self.id, batch, {"from": self.owner}).gas_used)
        self.gas["settle"] = {"batch_items": batch, "calls": len(gas), "per_call": gas, "max_batch": max(gas),
                              "total": sum(gas), "per_submission": round(sum(gas) / n)}


def _stake_active(reg, chain, verifiers, amount=10**18) -> dict:
    stake = [reg.stake({"from": v, "value": amount}).gas_used for v in verifiers]
    chain.sleep(reg.WARMUP() + 1)
    chain.mine(1)
    activate = [reg.activate(v, {"from": v}).gas_used for v in verifiers]
    chain.mine(1)
    return {"first": _stats(stake), "activate": _stats(activate)}


def _appeal(m, lens, ap, reg, web3, chain, accounts) -> dict:
    """An appeal of a task's only submission: deposit, draw (11 seats), 11 commits and reveals,
    resolution; and a failed round's bond reclaim."""
    owner, miner = accounts[0], accounts[30]
    t = _Task(m, lens, web3, chain, owner, REF_K, REF_R, 10**18)
    t.submit([miner])
    t.score(lambda s: 6000)
    deposit = ap.depositFor(t.id)
    gas = {"appeal": ap.appeal(t.id, 0, {"from": miner, "value": deposit}).gas_used}
    chain.mine(max(0, ap.getAppeal(t.id, 0)["seedBlock"] - chain.height))
    gas["drawAppeal"] = ap.drawAppeal(t.id, 0, {"from": miner}).gas_used
    seats = [str(v) for v in ap.getAppealSeats(t.id, 0)[0]]
    commits, reveals = [], []
    for j, v in enumerate(seats):
        c = appeal_commitment(6000, _salt(f"ap-{j}"), v, t.id, 0, j, chain.id, ap.address)
        commits.append(ap.commitAppealScore(t.id, 0, j, c, {"from": v}).gas_used)
    now = chain.time()
    chain.sleep(ap.getAppeal(t.id, 0)["commitEnd"] - now + 1)
    chain.mine(1)
    for j, v in enumerate(seats):
        reveals.append(ap.revealAppealScore(t.id, 0, j, 6000, _salt(f"ap-{j}"), {"from": v}).gas_used)
    chain.sleep(ap.getAppeal(t.id, 0)["revealEnd"] - chain.time() + 1)
    chain.mine(1)
    resolve = []
    while ap.getAppeal(t.id, 0)["stage"] != 4:
        resolve.append(ap.resolveAppeal(t.id, 0, 100, {"from": miner}).gas_used)
    gas.update(commitAppealScore=_stats(commits), revealAppealScore=_stats(reveals),
               resolveAppeal={"calls": len(resolve), "per_call": resolve, "max": max(resolve)})
    # a round that fails before its draw: the owner never reveals; the committer reclaims its bond
    f = _Task(m, lens, web3, chain, owner, REF_K, REF_R, 10**18)
    cid = "bafybeifailedround"
    m.commit(f.id, miner_commitment(cid, _salt(cid), str(miner), f.id, chain.id, m.address),
             {"from": miner, "value": BOND})
    f.sleep_past("evalRevealEnd")
    gas["settle_failed_round"] = m.settle(f.id, 100, {"from": owner}).gas_used
    gas["reclaimBond"] = m.reclaimBond(f.id, 0, cid, _salt(cid), {"from": miner}).gas_used
    return gas


def _reference(m, lens, reg, web3, chain, accounts) -> dict:
    owner, verifiers, miners = accounts[0], accounts[1:1 + REF_K], accounts[10:10 + REF_N]
    staked = _stake_active(reg, chain, verifiers)
    topup = reg.stake({"from": verifiers[0], "value": 10**17}).gas_used
    chain.mine(1)
    t = _Task(m, lens, web3, chain, owner, REF_K, REF_R, 10**18)
    t.gas["stake"] = {**staked, "top_up": topup}
    t.join(accounts[9])
    t.submit(miners)
    t.score(lambda s: [6000, 2500, 50, 4000][s % 4])
    t.settle(REF_BATCH, REF_N)
    t.gas["withdraw"] = m.withdraw({"from": miners[0]}).gas_used
    t.gas["requestUnbond"] = reg.requestUnbond({"from": verifiers[0]}).gas_used
    chain.sleep(reg.UNBONDING_DELAY() + 1)
    chain.mine(1)
    t.gas["withdrawStake"] = reg.withdrawStake({"from": verifiers[0]}).gas_used
    return {"seats": REF_K, "seats_per_submission": REF_R, "submissions": REF_N, "verifiers": REF_K,
            "gas": t.gas}


def _scale(m, lens, reg, web3, chain, accounts) -> dict:
    owner = accounts[0]
    verifiers = accounts[40:80]
    miners = accounts[100:100 + SCALE_N]
    _stake_active(reg, chain, verifiers)
    t = _Task(m, lens, web3, chain, owner, SCALE_K, SCALE_R, 10 * 10**18)
    t.submit(miners)
    t.score(lambda s: 3000 + s % 7 if s % 4 else 0)  # every 4th submission is noise: rejected
    t.settle(SCALE_BATCH, SCALE_N)
    return {"seats": SCALE_K, "seats_per_submission": SCALE_R, "submissions": SCALE_N,
            "verifiers": reg.verifierCount(), "distinct_miners": SCALE_N, "gas": t.gas}


def _forge_gas() -> dict:
    """From forge: drawCommittee (MAX_SEATS seats) at V = 1,000 and 10,000 verifiers, every keeper
    call at the protocol's maxima, and the runtime sizes (GASJSON lines)"""
    env = dict(os.environ, PATH=f"{config.REPO_ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}")
    res = subprocess.run(["forge", "test", "--match-test",
                          "test_DrawCostGrowsLogarithmicallyInVerifiers|test_EveryKeeperCallFitsABlockAtTheMaxima|"
                          "test_EveryContractFitsEIP170", "-vv"],
                         cwd=config.REPO_ROOT, capture_output=True, text=True, env=env, timeout=1800)
    out: dict = {}
    for line in res.stdout.splitlines():
        if "GASJSON" in line:
            out.update(json.loads(line.split("GASJSON", 1)[1]))
    if "draw" not in out or "maxima" not in out:
        raise RuntimeError(f"forge gas bench failed:\n{res.stdout[-3000:]}{res.stderr[-2000:]}")
    return out


def bench_gas() -> dict:
    import contextlib
    import io
    import warnings

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # brownie narrates every transaction and warns about rpc.*
        out = _bench_gas()
    forge = _forge_gas()
    out["draw"], out["maxima"] = forge.pop("draw"), forge.pop("maxima")
    out["runtime_bytes"].update({k.removeprefix("runtime_bytes_") + "_forge": v for k, v in forge.items()})
    out["goals"] = _goals(out)
    return out


def _bench_gas() -> dict:
    from brownie import accounts, chain, network, project, web3
    from brownie._config import CONFIG

    os.environ["PATH"] = f"{config.REPO_ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"
    p = project.load(str(config.REPO_ROOT), name="CoDreamBench")
    dev = CONFIG.networks["development"]
    dev["host"] = "http://127.0.0.1"
    dev["cmd_settings"].update(port=free_port(), accounts=100 + SCALE_N, gas_limit=30_000_000)
    network.connect("development")
    try:
        patient_receipts(web3)
        m = p.CoDreamMarket.deploy(PRODUCTION_PARAMS.as_tuple(), {"from": accounts[0]})
        reg, ap = p.StakeRegistry.at(m.registry()), p.CoDreamAppeals.at(m.appeals())
        lens = p.CoDreamLens.deploy(m.address, {"from": accounts[0]})
        sizes = {name: len(web3.eth.get_code(c.address)) for name, c in
                 (("CoDreamMarket", m), ("CoDreamAppeals", ap), ("StakeRegistry", reg), ("CoDreamLens", lens))}
        sizes["limit"] = 24_576
        ref = _reference(m, lens, reg, web3, chain, accounts)
        appeal = _appeal(m, lens, ap, reg, web3, chain, accounts)
        big = _scale(m, lens, reg, web3, chain, accounts)
    finally:
        network.disconnect()
        p.close()
    return {"runtime_bytes": sizes, "reference": ref, "appeal_and_failed_round": appeal, "scale": big}


def _goals(out: dict) -> dict:
    ref, big, draw, top = out["reference"]["gas"], out["scale"]["gas"], out["draw"], out["maxima"]

    def goal(got, limit):
        return {"gas": got, "goal": limit, "met": got <= limit}

    worst = [max(g["revealScores"]["per_seat"], key=lambda x: x["gas"] - x["goal"]) for g in (ref, big)]
    return {
        "commit": goal(max(ref["commit"]["max"], big["commit"]["max"]), GOALS["commit"]),
        "reveal": goal(max(ref["reveal"]["max"], big["reveal"]["max"]), GOALS["reveal"]),
        "withdraw": goal(ref["withdraw"], GOALS["withdraw"]),
        "revealScores_reference_worst_seat": {**worst[0], "all_seats_met": ref["revealScores"]["all_met"]},
        "revealScores_1024x32x5_worst_seat": {**worst[1], "all_seats_met": big["revealScores"]["all_met"]},
        "settle_per_submission_reference": goal(ref["settle"]["per_submission"], GOALS["settle_per_submission"]),
        "settle_per_submission_1024x32x5": goal(big["settle"]["per_submission"], GOALS["settle_per_submission"]),
        "settle_max_batch": goal(max(ref["settle"]["max_batch"], big["settle"]["max_batch"]), GOALS["batch"] - 1),
        "drawCommittee_V10000": goal(draw["V10000"], GOALS["batch"] - 1),
        "draw_growth_V10000_over_V1000": {"ratio": round(draw["V10000"] / draw["V1000"], 3),
                                          "log_ratio": round(14 / 10, 3),
                                          "met": draw["V10000"] / draw["V1000"] <= 14 / 10},
        "every_keeper_call_at_the_maxima": goal(max(top["drawCommittee"], top["drawAppeal"], top["resolveAppeal_max"],
                                                    top["settle_max"]), 12_000_000),
        "revealScores_busiest_seat_at_the_maxima": goal(top["revealScores_max"], 12_000_000),
        "runtime_bytes": goal(max(v for k, v in out["runtime_bytes"].items() if k != "limit"), 24_576),
    }


if __name__ == "__main__":
    print(json.dumps(bench_gas()))
