"""`codream bench gas`: gas of every external function of CoDreamMarket v2 and StakeRegistry.

Runs in its own process (`python -m cli.gasbench`, started by `codream bench gas`): importing
brownie loads its global configuration, which the rest of the CLI has no business with.

Three measurements, goals from spec/protocol-v2.md reported beside each number:

- reference task on anvil (brownie): K = 5 seats, r = 3, 16 submissions by distinct miners, one
  co-owner, settled in one call (all its items);
- scale task on anvil: 1,024 submissions by 1,024 distinct miners (every payout writes a fresh
  `claimable` slot: the worst case), K = 32, r = 5, settled in batches of 128 items, each < 5M gas;
- committee draw at V = 1,000 and V = 10,000 registered verifiers: registering 10,000 verifiers
  through RPC transactions is slow, so forge does it (tests/forge/Scale.t.sol, each stake in its
  own block so the sum tree's nodes carry long checkpoint histories) and measures the draw with
  `vm.lastCallGas()` after `vm.cool()` on both contracts (storage priced cold as in a fresh
  transaction) plus the 21,000 base cost; the test prints a GASJSON line that this module parses.
"""
from __future__ import annotations

import json
import os
import subprocess
import time

from eth_utils import keccak

from codream import config
from codream.protocol import Phase, eval_commitment, miner_commitment, score_commitment, seat_submissions

from .devnet import free_port

GOALS = {"commit": 70_000, "reveal": 60_000, "withdraw": 35_000, "settle_per_submission": 60_000,
         "batch": 5_000_000}
REVEAL_SCORES_BASE, REVEAL_SCORES_PER_SUBMISSION = 40_000, 6_000
W = [3600] * 5
BOND = 10**16
SCALE_N, SCALE_K, SCALE_R, SCALE_BATCH = 1024, 32, 5, 128
REF_N, REF_K, REF_R, REF_BATCH = 16, 5, 3, 1000


def _salt(i) -> bytes:
    return keccak(text=f"bench-{i}")


def patient_receipts(web3) -> None:
    """anvil can report a sender's next nonce a moment before it serves the receipt of a long
    transaction; brownie then calls the mined transaction "dropped". Make receipt lookups wait for
    a transaction anvil already knows (tests use this too)."""
    from web3.exceptions import TransactionNotFound

    eth = web3.eth
    if getattr(eth, "_patient", False):
        return
    lookup = eth.get_transaction_receipt

    def get_transaction_receipt(txid):
        try:
            return lookup(txid)
        except TransactionNotFound:
            eth.get_transaction(txid)  # raises TransactionNotFound if anvil never saw it
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                time.sleep(0.05)
                try:
                    return lookup(txid)
                except TransactionNotFound:
                    continue
            raise

    eth.get_transaction_receipt = get_transaction_receipt
    eth._patient = True


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

    def __init__(self, m, web3, chain, owner, k, r, bounty):
        self.m, self.web3, self.chain, self.owner = m, web3, chain, owner
        self.k, self.r = k, r
        self.w3m = web3.eth.contract(address=m.address, abi=m.abi)
        tx = m.createTask("bafkreibenchspec" + "x" * 43, eval_commitment("bafyeval-0", _salt("eval-0")), BOND, k,
                          r, 100, 150, 1000, W, {"from": owner, "value": bounty})
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
        tx = self.m.joinTask(self.id, eval_commitment(f"bafyeval-{i}", _salt(f"eval-{i}")),
                             {"from": who, "value": 10**17})
        self.gas["joinTask"] = tx.gas_used
        self.owners.append(who)

    def submit(self, miners):
        cids = [f"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy{self.id:02d}{i:05d}" for i in range(len(miners))]
        calls = []
        for i, a in enumerate(miners):
            c = miner_commitment(cids[i], _salt(cids[i]), str(a), self.id, self.chain.id, self.m.address)
            calls.append((self.w3m.functions.commit(self.id, c), {"from": str(a), "value": BOND, "gas": 200_000}))
        self.gas["commit"] = _stats(_send_all(self.web3, calls))
        self.sleep_past("commitEnd")
        calls = [(self.w3m.functions.reveal(self.id, i, cids[i], _salt(cids[i])), {"from": str(a), "gas": 200_000})
                 for i, a in enumerate(miners)]
        self.gas["reveal"] = _stats(_send_all(self.web3, calls))
        self.sleep_past("revealEnd")

    def draw(self):
        evals = [self.m.revealEval(self.id, i, f"bafyeval-{i}", _salt(f"eval-{i}"), {"from": o}).gas_used
                 for i, o in enumerate(self.owners)]
        self.gas["revealEval"] = _stats(evals)
        self.gas["requestDraw"] = self.m.requestDraw(self.id, {"from": self.owner}).gas_used
        self.chain.mine(3)
        self.gas["drawCommittee"] = self.m.drawCommittee(self.id, {"from": self.owner}).gas_used

    def score(self, truth):
        seats = [str(v) for v in self.m.getSeats(self.id)[0]]
        n = self.m.getTask(self.id)["submissionCount"]
        vectors = [[truth(s) for s in seat_submissions(j, n, self.k, self.r)] for j in range(len(seats))]
        commits = []
        for j, v in enumerate(seats):
            c = score_commitment(vectors[j], _salt(f"score-{j}"), v, self.id, j, self.chain.id, self.m.address)
            commits.append(self.m.commitScores(self.id, j, c, {"from": v}).gas_used)
        self.gas["commitScores"] = _stats(commits)
        self.sleep_past("scoreCommitEnd")
        reveals = []
        for j, v in enumerate(seats):
            g = self.m.revealScores(self.id, j, vectors[j], _salt(f"score-{j}"), {"from": v}).gas_used
            goal = REVEAL_SCORES_BASE + REVEAL_SCORES_PER_SUBMISSION * len(vectors[j])
            reveals.append({"seat": j, "scored": len(vectors[j]), "gas": g, "goal": goal, "met": g <= goal})
        self.gas["revealScores"] = {
            "per_seat": reveals,
            "max": max(x["gas"] for x in reveals),
            "per_scored_submission": round(sum(x["gas"] for x in reveals) / max(1, sum(x["scored"] for x in reveals))),
            "all_met": all(x["met"] for x in reveals),
        }
        self.sleep_past("scoreRevealEnd")

    def settle(self, batch: int, n: int):
        gas = []
        while self.m.phaseOf(self.id) != Phase.FINALIZED:
            gas.append(self.m.settle(self.id, batch, {"from": self.owner}).gas_used)
        self.gas["settle"] = {"batch_items": batch, "calls": len(gas), "per_call": gas, "max_batch": max(gas),
                              "total": sum(gas), "per_submission": round(sum(gas) / n)}


def _reference(m, reg, web3, chain, accounts) -> dict:
    owner, verifiers, miners = accounts[0], accounts[1:1 + REF_K], accounts[10:10 + REF_N]
    stake = [reg.stake({"from": v, "value": 10**18}).gas_used for v in verifiers]
    topup = reg.stake({"from": verifiers[0], "value": 10**17}).gas_used
    chain.mine(1)
    t = _Task(m, web3, chain, owner, REF_K, REF_R, 10**18)
    t.gas["stake"] = {"first": _stats(stake), "top_up": topup}
    t.join(accounts[9])
    t.submit(miners)
    t.draw()
    t.score(lambda s: [6000, 2500, 50, 4000][s % 4])
    t.settle(REF_BATCH, REF_N)
    t.gas["withdraw"] = m.withdraw({"from": miners[0]}).gas_used
    t.gas["requestUnbond"] = reg.requestUnbond({"from": verifiers[0]}).gas_used
    chain.sleep(reg.UNBONDING_DELAY() + 1)
    chain.mine(1)
    t.gas["withdrawStake"] = reg.withdrawStake({"from": verifiers[0]}).gas_used
    return {"seats": REF_K, "seats_per_submission": REF_R, "submissions": REF_N, "verifiers": REF_K,
            "gas": t.gas}


def _scale(m, reg, web3, chain, accounts) -> dict:
    owner = accounts[0]
    verifiers = accounts[40:80]
    miners = accounts[100:100 + SCALE_N]
    for v in verifiers:
        reg.stake({"from": v, "value": 10**18})
    chain.mine(1)
    t = _Task(m, web3, chain, owner, SCALE_K, SCALE_R, 10 * 10**18)
    t.submit(miners)
    t.draw()
    t.score(lambda s: 3000 + s % 7 if s % 4 else 0)  # every 4th submission is noise: rejected
    t.settle(SCALE_BATCH, SCALE_N)
    return {"seats": SCALE_K, "seats_per_submission": SCALE_R, "submissions": SCALE_N,
            "verifiers": reg.verifierCount(), "distinct_miners": SCALE_N, "gas": t.gas}


def _forge_draw() -> dict:
    """drawCommittee (MAX_SEATS seats) at V = 1,000 and 10,000 verifiers, from the forge test"""
    env = dict(os.environ, PATH=f"{config.REPO_ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}")
    res = subprocess.run(["forge", "test", "--match-test", "test_DrawCostGrowsLogarithmicallyInVerifiers", "-vv"],
                         cwd=config.REPO_ROOT, capture_output=True, text=True, env=env, timeout=1800)
    for line in res.stdout.splitlines():
        if "GASJSON" in line:
            return json.loads(line.split("GASJSON", 1)[1])["draw"]
    raise RuntimeError(f"forge draw bench failed:\n{res.stdout[-3000:]}{res.stderr[-2000:]}")


def bench_gas() -> dict:
    import contextlib
    import io
    import warnings

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # brownie narrates every transaction and warns about rpc.*
        out = _bench_gas()
    out["draw"] = _forge_draw()
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
        m = p.CoDreamMarket.deploy({"from": accounts[0]})
        reg = p.StakeRegistry.at(m.registry())
        sizes = {"CoDreamMarket": len(web3.eth.get_code(m.address)),
                 "StakeRegistry": len(web3.eth.get_code(reg.address)), "limit": 24_576}
        ref = _reference(m, reg, web3, chain, accounts)
        big = _scale(m, reg, web3, chain, accounts)
    finally:
        network.disconnect()
        p.close()
    return {"runtime_bytes": sizes, "reference": ref, "scale": big}


def _goals(out: dict) -> dict:
    ref, big, draw = out["reference"]["gas"], out["scale"]["gas"], out["draw"]

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
    }


if __name__ == "__main__":
    print(json.dumps(bench_gas()))
