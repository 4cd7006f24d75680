"""What the market says about a task or an address, read from the chain: the one read model
the CLI's status views, the agents' outcome lines and the demo's table share."""
from __future__ import annotations

from web3 import Web3

from .chain import Chain
from .protocol import NO_EVAL, Phase, Stage, Status, score_label

PAGE = 256  # submissions per paginated view call
WEI = 10**18


def eth(wei: int, signed: bool = False) -> str:
    """Wei as people read it: '0.4486 ETH' (4 significant decimals; '+'/'−' when signed)."""
    if wei == 0:
        return "0 ETH"
    sign = ("+" if wei > 0 else "−") if signed else ("−" if wei < 0 else "")
    if abs(wei) < 10**9:  # dust (rounding remainders): below a gwei, count the wei
        return f"{sign}{abs(wei)} wei"
    text = f"{abs(wei) / WEI:.4f}".rstrip("0").rstrip(".")
    if text == "0":
        text = f"{abs(wei) / WEI:.2g}"
    return f"{sign}{text} ETH"


def duration(seconds: int | float | None) -> str:
    """Seconds as people read them: '45 s', '57 min', '2 h 5 min', '3 d 4 h'."""
    if seconds is None:
        return "–"
    s = max(0, int(seconds))
    if s < 90:
        return f"{s} s"
    if s < 3600:
        return f"{round(s / 60)} min"
    if s < 86400:
        h, m = divmod(round(s / 60), 60)
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(round(s / 3600), 24)
    return f"{d} d {h} h" if h else f"{d} d"


def deadline_of(task: dict, phase: Phase) -> int | None:
    """When the current phase's window closes, if it has one."""
    return {Phase.COMMIT: task["commitEnd"], Phase.REVEAL: task["revealEnd"], Phase.EVAL_REVEAL: task["evalRevealEnd"],
            Phase.SCORE_COMMIT: task["scoreCommitEnd"], Phase.SCORE_REVEAL: task["scoreRevealEnd"]}.get(phase)


def task_state(chain: Chain, tid: int) -> dict:
    """The task's parameters, phase, time left and owners (with revealed eval CIDs)."""
    t = chain.view("getTask", tid)
    phase = Phase(chain.phase(tid))
    now = chain.block()["timestamp"]
    deadline = deadline_of(t, phase)
    owners = chain.view_list("owners", tid)
    evals = {e["ownerIndex"]: e["evalCid"] for e in chain.events("EvalRevealed", tid)}
    for i, o in enumerate(owners):
        o["eval_cid"] = evals.get(i)
    return dict(t, id=tid, phase=phase, now=now, seconds_left=None if deadline is None else max(0, deadline - now),
                owners=owners)


def submissions(chain: Chain, tid: int, n: int) -> list[dict]:
    """Every submission: miner, CID, result and status, and what settlement paid."""
    rows = []
    for start in range(0, n, PAGE):
        count = min(PAGE, n - start)
        miners, revealed = chain.call("getSubmissions", tid, start, count)
        result, status = chain.call("results", tid, start, count)
        for k in range(count):
            rows.append({"index": start + k, "miner": miners[k] if revealed[k] else None, "revealed": revealed[k],
                         "result": result[k], "status": Status(status[k])})
    cids = {e["index"]: (e["miner"], e["cid"]) for e in chain.events("Revealed", tid)}
    settled = {e["index"]: e for e in chain.events("SubmissionSettled", tid)}
    for row in rows:
        miner_cid = cids.get(row["index"])
        if miner_cid:
            row["miner"], row["cid"] = miner_cid
        e = settled.get(row["index"])
        if e:
            row.update(reward=e["reward"], bond_returned=e["bondReturned"], result=e["result"], status=Status(e["status"]))
    return rows


def committee(chain: Chain, tid: int) -> list[dict]:
    """Every seat: verifier, committed/revealed, agreements and what settlement did to it."""
    verifiers, committed, revealed = chain.call("getSeats", tid)
    seats = [{"seat": j, "verifier": v, "committed": c, "revealed": r}
             for j, (v, c, r) in enumerate(zip(verifiers, committed, revealed))]
    settled = {e["seat"]: e for e in chain.events("SeatSettled", tid)}
    for s in seats:
        e = settled.get(s["seat"])
        if e:
            s.update(agree=e["agree"], disagree=e["disagree"], faulty=e["faulty"], slashed=e["slashed"])
    return seats


def verdict(row: dict, min_gain: int) -> str:
    """Why a submission ended where it did, in a few words."""
    st, res = row["status"], row["result"]
    if st == Status.ACCEPTED:
        return f"median {score_label(res)} ≥ min gain {min_gain} bps: reward + bond"
    if st == Status.REJECTED:
        return f"median {score_label(res)} < min gain {min_gain} bps: half the bond forfeited"
    if st == Status.INVALID:
        return "the committee's majority found the bundle INVALID: bond forfeited"
    if st == Status.UNRESOLVED:
        return ("the eval set could not be obtained (NO_EVAL): equal share + bond" if res == NO_EVAL
                else "no majority of the seats agreed: equal share + bond")
    if st == Status.UNSCORED:
        return "its own miner held every seat that should score it: bond back, no share"
    if st == Status.UNREVEALED:
        return "never revealed: bond forfeited"
    return st.human


def show_task(chain: Chain, tid: int) -> dict:
    t = task_state(chain, tid)
    subs = submissions(chain, tid, t["submissionCount"])
    seats = committee(chain, tid)
    st = chain.view("getSettlement", tid)
    return {
        "task_id": tid, "phase": t["phase"].human, "seconds_left": t["seconds_left"],
        "time_left": duration(t["seconds_left"]) if t["seconds_left"] is not None else None,
        "spec_cid": t["specCid"], "bounty_wei": t["bounty"], "miner_bond_wei": t["minerBond"],
        "seats": t["seats"], "seats_per_submission": t["seatsPerSubmission"], "min_gain_bps": t["minGainBps"],
        "tolerance_bps": t["toleranceBps"], "fee_bps": t["feeBps"],
        "owners": [{"address": o["addr"], "contribution_wei": o["contribution"], "eval_revealed": o["revealed"],
                    "eval_cid": o["eval_cid"]} for o in t["owners"]],
        "submissions": [{**{k: v for k, v in r.items() if k != "status"}, "status": r["status"].human,
                         "result_label": score_label(r["result"]) if r["status"] >= Status.ACCEPTED else None,
                         "why": verdict(r, t["minGainBps"]) if r["status"] >= Status.UNREVEALED else None}
                        for r in subs],
        "committee": seats,
        "settlement": {"stage": Stage(st["stage"]).name.lower(), "failed_round": st["failed"],
                       "revealed": st["revealed"], "unresolved": st["unresolved"], "pot_wei": st["pot"]},
    }


def rewards(chain: Chain, address: str) -> dict:
    """Claimable now, stake (apart from earnings), bonds in open tasks, and a history of every
    credit, forfeited bond, slash and withdrawal of ``address``."""
    address = Web3.to_checksum_address(address)
    info = chain.view("info", address, on="registry")
    history, pending = [], 0
    committed = [e for e in chain.events("Committed") if e["miner"] == address]
    phases = {}
    for e in committed:
        tid = e["taskId"]
        if tid not in phases:
            phases[tid] = Phase(chain.phase(tid))
        if phases[tid] != Phase.FINALIZED:
            pending += chain.view("getTask", tid)["minerBond"]
    settled_by_tx: dict[str, list] = {}
    for e in chain.events("SubmissionSettled", miner=address):
        settled_by_tx.setdefault(e["tx"], []).append(e)
        bond = chain.view("getTask", e["taskId"])["minerBond"]
        if e["bondReturned"] < bond:
            history.append({"task": e["taskId"], "wei": -(bond - e["bondReturned"]), "block": e["blockNumber"],
                            "kind": f"bond forfeited ({Status(e['status']).human})"})
    seat_txs = {e["tx"] for e in chain.events("SeatSettled", verifier=address)}
    for e in chain.events("SeatSettled", verifier=address):
        if e["slashed"]:
            history.append({"task": e["taskId"], "wei": -e["slashed"], "block": e["blockNumber"],
                            "kind": f"slashed (seat {e['seat']}: " +
                                    ("silent" if e["agree"] + e["disagree"] == 0 else "outside tolerance") + ")"})
    for e in chain.events("Credited", account=address):
        if e["tx"] in settled_by_tx:
            kind = "reward + bond back"
        elif e["tx"] in seat_txs or chain.call("seatsOf", e["taskId"], address):
            kind = "verifier fee"
        else:
            kind = "owner refund"
        history.append({"task": e["taskId"], "wei": e["amount"], "kind": kind, "block": e["blockNumber"]})
    for e in chain.events("TaskCreated", creator=address):
        history.append({"task": e["taskId"], "wei": -e["bounty"], "kind": "bounty paid", "block": e["blockNumber"]})
    for e in chain.events("TaskJoined", owner=address):
        if e["ownerIndex"] != 0:
            history.append({"task": e["taskId"], "wei": -e["contribution"], "kind": "bounty paid (co-owner)",
                            "block": e["blockNumber"]})
    withdrawn = 0
    for e in chain.events("Withdrawn", account=address):
        withdrawn += e["amount"]
        history.append({"task": None, "wei": e["amount"], "kind": "withdrawn", "block": e["blockNumber"]})
    history.sort(key=lambda h: h["block"])
    return {"address": address, "claimable_wei": chain.call("claimable", address), "stake_wei": info["stake"],
            "unbonding_at": info["unbondAt"] or None, "locked_seats": info["lockedSeats"],
            "pending_bonds_wei": pending, "withdrawn_wei": withdrawn, "history": history}
