"""Task owners and everyone's rewards: create a task, reveal its eval set, show it,
report an address's rewards, claim."""
from __future__ import annotations

import secrets
import time
from pathlib import Path

from ipfs import IpfsClient, cid_of_file

from .agentstate import AgentState
from .chain import Chain
from .protocol import PHASES, eval_commitment
from .spec import load as load_spec

ETH = 10**18


def create_task(chain: Chain, ipfs: IpfsClient, task_dir: str | Path, bounty_wei: int, bond_wei: int,
                committee: int, windows: list[int], fee_bps: int = 1000) -> dict:
    """Publish teacher weights and spec, commit to the (still private) eval set, fund the bounty."""
    task_dir = Path(task_dir)
    spec = load_spec(task_dir / "spec.json")
    for i, t in enumerate(spec.teachers):
        path = task_dir / t.get("file", f"teacher{i}.safetensors")
        cid = ipfs.add_file(path)
        if cid != t["weights_cid"]:
            raise ValueError(f"teachers[{i}]: {path} has CID {cid}, the spec names {t['weights_cid']}")
    spec_cid = ipfs.add_file(task_dir / "spec.json")
    eval_path = task_dir / "eval.safetensors"
    eval_cid = cid_of_file(eval_path)  # only the hash: the eval set stays off IPFS until the reveal
    salt = "0x" + secrets.token_hex(32)
    state = AgentState("owner", chain.account.address, chain.address)
    pending = state.data.setdefault("pending", [])
    pending.append({"eval_cid": eval_cid, "salt": salt, "eval_path": str(eval_path), "spec_cid": spec_cid})
    state.save()  # the salt is on disk before the commitment goes on chain
    receipt = chain.send("createTask", spec_cid, eval_commitment(eval_cid, bytes.fromhex(salt[2:])), bond_wei,
                         committee, spec.scoring["min_gain_bps"], spec.scoring["tolerance_bps"], fee_bps,
                         windows, value=bounty_wei)
    tid = chain.market.events.TaskCreated().process_receipt(receipt)[0]["args"]["taskId"]
    pending.remove(pending[-1])
    state.task(tid).update(stage="created", eval_cid=eval_cid, salt=salt, eval_path=str(eval_path),
                           spec_cid=spec_cid)
    state.save()
    return {"task_id": tid, "spec_cid": spec_cid, "eval_commitment_for": eval_cid, "bounty_wei": bounty_wei}


def reveal_eval(chain: Chain, ipfs: IpfsClient, task_id: int) -> str:
    state = AgentState("owner", chain.account.address, chain.address)
    st = state.task(task_id)
    if "eval_cid" not in st:
        raise ValueError(f"task {task_id}: no eval set recorded for {chain.account.address} "
                         f"(was it created from this account and CODREAM_HOME?)")
    cid = ipfs.add_file(st["eval_path"])
    if cid != st["eval_cid"]:
        raise ValueError(f"{st['eval_path']} changed since the task was created ({cid} != {st['eval_cid']})")
    chain.send("revealEval", task_id, cid, bytes.fromhex(st["salt"][2:]))
    st["stage"] = "eval revealed"
    state.save()
    return cid


def auto_reveal(chain: Chain, ipfs: IpfsClient, task_id: int, poll: float = 2.0) -> str:
    """Wait for the eval-reveal window, then reveal."""
    while chain.phase(task_id) in (1, 2):
        time.sleep(poll)
    return reveal_eval(chain, ipfs, task_id)


def show_task(chain: Chain, task_id: int) -> dict:
    t = chain.task(task_id)
    now = chain.block()["timestamp"]
    phase = chain.phase(task_id)
    deadline = {1: t["commitEnd"], 2: t["revealEnd"], 3: t["evalRevealEnd"], 5: t["scoreCommitEnd"],
                6: t["scoreRevealEnd"]}.get(phase)
    miners, revealed = chain.call("getSubmissions", task_id)
    cids = chain.revealed_cids(task_id)
    medians = chain.call("getMedians", task_id)
    settled = {e["index"]: e for e in chain.events("SubmissionSettled", task_id)}
    subs = []
    for i in range(t["submissionCount"]):
        row = {"index": i, "miner": miners[i] if revealed[i] else None, "revealed": revealed[i],
               "cid": cids.get(i, (None, None))[1]}
        if i < len(medians) and revealed[i]:
            row["median_bps"] = "INVALID" if medians[i] == -(2**31) else medians[i]
        if i in settled:
            row.update(accepted=settled[i]["accepted"], reward_wei=settled[i]["reward"],
                       bond_returned_wei=settled[i]["bondReturned"])
        subs.append(row)
    committee = chain.committee(task_id)
    for j, m in enumerate(committee):
        m["scores"] = list(chain.call("getScores", task_id, j)) if m["revealed"] else None
    return {"task_id": task_id, "phase": PHASES[phase], "seconds_left": max(0, deadline - now) if deadline else None,
            "owner": t["owner"], "bounty_wei": t["bounty"], "miner_bond_wei": t["minerBond"],
            "committee_size": t["committeeSize"], "min_gain_bps": t["minGainBps"],
            "tolerance_bps": t["toleranceBps"], "spec_cid": t["specCid"], "eval_cid": t["evalCid"] or None,
            "submissions": subs, "committee": committee,
            "slashes": [{"verifier": e["verifier"], "wei": e["amount"], "reason": e["reason"]}
                        for e in chain.events("Slashed", task_id)]}


def rewards(chain: Chain, address: str) -> dict:
    """Claimable now, stake (apart from earnings), pending bonds in open tasks, history."""
    from web3 import Web3

    address = Web3.to_checksum_address(address)
    v = chain.call("verifiers", address)  # (stake, unbondAt, lockedTasks, registered, lastStakeBlock)
    pending = 0
    for e in chain.events("Committed"):
        if e["miner"] == address and chain.phase(e["taskId"]) != 8:
            pending += chain.task(e["taskId"])["minerBond"]
    history = []
    for e in chain.events("Credited"):
        if e["account"] == address:
            history.append({"task": e["taskId"], "wei": e["amount"], "kind": e["reason"], "block": e["blockNumber"]})
    for e in chain.events("Slashed"):
        if e["verifier"] == address:
            history.append({"task": e["taskId"], "wei": -e["amount"], "kind": f"slashed: {e['reason']}",
                            "block": e["blockNumber"]})
    withdrawn = sum(e["amount"] for e in chain.events("Withdrawn") if e["account"] == address)
    history.sort(key=lambda h: h["block"])
    return {"address": address, "claimable_wei": chain.call("claimable", address), "stake_wei": v[0],
            "unbonding_at": v[1] or None, "committees_open": v[2], "pending_bonds_wei": pending,
            "withdrawn_wei": withdrawn, "history": history}
