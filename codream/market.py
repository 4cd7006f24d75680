"""What the market says about a task or an address, read from the chain: the one read
model the CLI, the agents' status views and the demo share."""
from __future__ import annotations

from web3 import Web3

from .chain import Chain
from .protocol import INVALID, Phase


def deadline_of(task: dict, phase: Phase) -> int | None:
    """The timestamp at which the current phase's window closes, if it has one."""
    return {Phase.COMMIT: task["commitEnd"], Phase.REVEAL: task["revealEnd"], Phase.EVAL_REVEAL: task["evalRevealEnd"],
            Phase.SCORE_COMMIT: task["scoreCommitEnd"], Phase.SCORE_REVEAL: task["scoreRevealEnd"]}.get(phase)


def show_task(chain: Chain, task_id: int) -> dict:
    t = chain.task(task_id)
    now = chain.block()["timestamp"]
    phase = Phase(chain.phase(task_id))
    deadline = deadline_of(t, phase)
    miners, revealed = chain.call("getSubmissions", task_id)
    cids = chain.revealed_cids(task_id)
    medians = chain.call("getMedians", task_id)
    settled = {e["index"]: e for e in chain.events("SubmissionSettled", task_id)}
    subs = []
    for i in range(t["submissionCount"]):
        row = {"index": i, "miner": miners[i] if revealed[i] else None, "revealed": revealed[i],
               "cid": cids.get(i, (None, None))[1]}
        if i < len(medians) and revealed[i]:
            row["median_bps"] = "INVALID" if medians[i] == INVALID else medians[i]
        if i in settled:
            row.update(accepted=settled[i]["accepted"], reward_wei=settled[i]["reward"],
                       bond_returned_wei=settled[i]["bondReturned"])
        subs.append(row)
    committee = chain.committee(task_id)
    for j, m in enumerate(committee):
        m["scores"] = list(chain.call("getScores", task_id, j)) if m["revealed"] else None
    return {"task_id": task_id, "phase": phase.label, "seconds_left": max(0, deadline - now) if deadline else None,
            "owner": t["owner"], "bounty_wei": t["bounty"], "miner_bond_wei": t["minerBond"],
            "committee_size": t["committeeSize"], "min_gain_bps": t["minGainBps"],
            "tolerance_bps": t["toleranceBps"], "spec_cid": t["specCid"], "eval_cid": t["evalCid"] or None,
            "submissions": subs, "committee": committee,
            "slashes": [{"verifier": e["verifier"], "wei": e["amount"], "reason": e["reason"]}
                        for e in chain.events("Slashed", task_id)]}


def rewards(chain: Chain, address: str) -> dict:
    """Claimable now, stake (apart from earnings), pending bonds in open tasks, history."""
    address = Web3.to_checksum_address(address)
    v = chain.call("verifiers", address)  # (stake, unbondAt, lockedTasks, registered, lastStakeBlock)
    pending = 0
    for e in chain.events("Committed"):
        if e["miner"] == address and chain.phase(e["taskId"]) != Phase.FINALIZED:
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
