"""What the market says about a task or an address, read from the chain (protocol v3): the one
read model the CLI's status views, the agents' outcome lines, the demos' tables, the dapp server
and the tests share — tasks, submissions, committees, owner verdicts, appeals, burns — and the
solvency check (``books``). What each account paid, earned and lost is ``codream.accounts``."""
from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from .chain import Chain
from .protocol import BELOW_MIN_FORFEIT_BPS, NO_EVAL, AppealStage, BurnReason, Outcome, Phase, Stage, Status, Verdict, judging_seed, score_label, \
    status_of, within

PAGE = 256  # submissions per paginated view call
# off a devnet a task's judging seed is used only once its seal block is final (every seat must read
# the same block): the node's `finalized` block, or on a node without that tag this many blocks on top
SEAL_CONFIRMATIONS = 2
WEI = 10**18


def eth(wei: int, signed: bool = False) -> str:
    """Wei as people read it: '0.4486 ETH' (4 decimals at most; '+'/'−' when signed); below
    0.0001 ETH in gwei ('12.5 gwei'), below a gwei (rounding dust) in wei ('1 wei')."""
    if wei == 0:
        return "0 ETH"
    sign = ("+" if wei > 0 else "−") if signed else ("−" if wei < 0 else "")
    if abs(wei) < 10**9:
        return f"{sign}{abs(wei)} wei"
    if abs(wei) < 10**14:
        return f"{sign}{abs(wei) / 10**9:.4f}".rstrip("0").rstrip(".") + " gwei"
    return f"{sign}{abs(wei) / WEI:.4f}".rstrip("0").rstrip(".") + " ETH"


def with_eth(obj):
    """``obj`` with an ETH reading ``X`` beside every integer ``X_wei`` (in nested dicts and lists too):
    exact wei for scripts, ETH for people."""
    if isinstance(obj, list):
        return [with_eth(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {k: with_eth(v) for k, v in obj.items()}
    for k, v in obj.items():
        if isinstance(k, str) and k.endswith("_wei") and isinstance(v, int) and not isinstance(v, bool):
            out.setdefault(k[:-4], eth(v))
    return out


def parse_eth(value, flag: str = "amount") -> int:
    """An amount of ETH as the user typed it (``"0.3"``, ``"1e-18"``), in exact wei (0.3 is 3·10^17 wei,
    not 299999999999999968): a positive decimal of at least 1 wei that fits a uint256, else
    ``ValueError`` with a one-line message naming ``flag``."""
    text = str(value).strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = None
    example = f"{flag} 0.5" if flag.startswith("-") else "0.5"
    if amount is None or not amount.is_finite():
        raise ValueError(f"{flag} {text!r}: not an amount of ETH; give a decimal number, e.g. {example}")
    if amount <= 0:
        raise ValueError(f"{flag} {text}: an amount of ETH must be positive, e.g. {example}")
    if amount * WEI < 1:
        raise ValueError(f"{flag} {text}: less than 1 wei (10^-18 ETH)")
    if amount * WEI >= 2**256:
        raise ValueError(f"{flag} {text}: too large an amount of ETH")
    return int((amount * WEI).to_integral_value())


def seats_held(row: Mapping) -> str:
    """How many seats a verifier holds in a task, as its status shows them ("2 + 1 appeal"): a count,
    never a seat number (the seat numbers are in ``row["seats"]``)."""
    return str(row["seat_count"]) + (f" + {row['appeal_seat_count']} appeal" if row.get("appeal_seat_count") else "")


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


# what each status means for the miner, in a few words (the dapp shows these; `verdict` says more)
STATUS_NOTES = {
    Status.ACCEPTED: "result > 0 and ≥ min gain: reward + bond",
    Status.REJECTED: f"result ≤ 0 or < min gain: {BELOW_MIN_FORFEIT_BPS / 100:g} % of the bond forfeited",
    Status.INVALID: "a majority found it INVALID: bond forfeited",
    Status.UNRESOLVED: "unjudged (no majority, no usable eval set, or a failed round): bond back, no share",
    Status.UNSCORED: "its own miner held its seats: unjudged, bond back",
    Status.UNREVEALED: "never revealed: bond forfeited (reclaimable if the round failed before its draw)",
}
# the getTask field holding the end of each phase's window
PHASE_DEADLINES = {Phase.COMMIT: "commitEnd", Phase.EVAL_REVEAL: "evalRevealEnd", Phase.REVEAL: "revealEnd",
                   Phase.SCORE_COMMIT: "scoreCommitEnd", Phase.SCORE_REVEAL: "scoreRevealEnd",
                   Phase.APPEAL: "appealEnd"}


def deadline_of(task: dict, phase: Phase) -> int | None:
    """When the current phase's window closes, if it has one."""
    key = PHASE_DEADLINES.get(phase)
    return task[key] if key else None


# ----------------------------------------------------------------------------- a task
def task_state(chain: Chain, tid: int) -> dict:
    """The task's parameters, phase, time left and owners (revealed eval CIDs, declared accuracy,
    verdict: recorded at settlement, else what the revealed vectors give so far)."""
    t = chain.view("getTask", tid)
    phase = Phase(chain.phase(tid))
    now = chain.block()["timestamp"]
    deadline = deadline_of(t, phase)
    owners = chain.view_list("owners", tid)
    evals = {e["ownerIndex"]: e["evalCid"] for e in chain.events("EvalRevealed", tid)}
    verdicts, ok, not_ok = chain.call("ownerVerdicts", tid, on="lens")
    for i, o in enumerate(owners):
        o.update(eval_cid=evals.get(i), verdict=Verdict(verdicts[i]), ok_votes=ok[i], not_ok_votes=not_ok[i])
    return dict(t, id=tid, phase=phase, now=now, seconds_left=None if deadline is None else max(0, deadline - now),
                owners=owners)


def task_judging_seed(chain: Chain, tid: int, task: dict | None = None) -> bytes | None:
    """The seed task ``tid``'s bundles are judged with (``codream.protocol.judging_seed``): its
    draw seed mixed with the prevrandao of its seal block, the first block stamped after the
    miners' reveal window. None while there is none yet: no committee, the reveal window still
    open, or (off a devnet) the seal block not yet final (``Chain.is_final``: the node's
    ``finalized`` block, else ``SEAL_CONFIRMATIONS`` blocks deep), so no reorganisation can give
    two seats two seeds."""
    t = task if task is not None else chain.view("getTask", tid)
    if not t["revealEnd"]:
        return None
    drawn = chain.events("CommitteeDrawn", tid)
    seal = chain.first_block_after(t["revealEnd"], drawn[-1]["blockNumber"] if drawn else None)
    if seal is None:
        return None
    if not chain.devnet and not chain.is_final(seal["number"], SEAL_CONFIRMATIONS):
        return None
    return judging_seed(bytes(t["seed"]), bytes(seal["mixHash"]))


def submissions(chain: Chain, tid: int, n: int) -> list[dict]:
    """Every submission: miner, CID, result and status, and what settlement paid."""
    rows = []
    for start in range(0, n, PAGE):
        count = min(PAGE, n - start)
        miners, revealed = chain.call("getSubmissions", tid, start, count, on="lens")
        result, status = chain.call("results", tid, start, count, on="lens")
        for k in range(count):
            rows.append({"index": start + k, "miner": miners[k] if revealed[k] else None, "revealed": revealed[k],
                         "result": result[k], "status": Status(status[k])})
    for e in chain.events("Committed", tid):  # the miner of a commitment is public before its reveal
        if e["index"] < len(rows) and rows[e["index"]]["miner"] is None:
            rows[e["index"]]["miner"] = e["miner"]
    cids = {e["index"]: (e["miner"], e["cid"]) for e in chain.events("Revealed", tid)}
    settled = {e["index"]: e for e in chain.events("SubmissionSettled", tid)}
    overturned = {e["index"]: e["result"] for e in chain.events("Overturned", tid)}
    for row in rows:
        miner_cid = cids.get(row["index"])
        if miner_cid:
            row["miner"], row["cid"] = miner_cid
        e = settled.get(row["index"])
        if e:
            row.update(miner=e["miner"], reward=e["reward"], bond_returned=e["bondReturned"], result=e["result"],
                       status=Status(e["status"]), reclaimed=miner_cid is None)
        if row["index"] in overturned:
            row["overturned"] = True
    return rows


def committee(chain: Chain, tid: int) -> list[dict]:
    """Every seat: verifier, committed/revealed, agreements and what settlement did to it."""
    verifiers, committed, revealed = chain.call("getSeats", tid, on="lens")
    seats = [{"seat": j, "verifier": v, "committed": c, "revealed": r}
             for j, (v, c, r) in enumerate(zip(verifiers, committed, revealed))]
    settled = {e["seat"]: e for e in chain.events("SeatSettled", tid)}
    for s in seats:
        e = settled.get(s["seat"])
        if e:
            s.update(agree=e["agree"], disagree=e["disagree"], faulty=e["faulty"], slashed=e["slashed"])
    return seats


def appeals(chain: Chain, tid: int) -> list[dict]:
    """Every appeal of a task: appellant, submission, deposit, stage, outcome, the two results,
    its seats, and the overturned seats' slashes."""
    out = []
    overturns: dict[int, list] = {}
    for e in chain.events("OriginalSeatOverturned", tid, on="appeals"):
        overturns.setdefault(e["appealId"], []).append({"seat": e["seat"], "verifier": e["verifier"],
                                                         "slashed": e["slashed"], "to_appellant": e["toAppellant"]})
    for a in range(chain.call("appealCount", tid, on="appeals")):
        x = chain.view("getAppeal", tid, a, on="appeals")
        verifiers, committed, revealed, scores = chain.call("getAppealSeats", tid, a, on="appeals")
        decided = Outcome(x["outcome"]) in (Outcome.CONFIRMED, Outcome.OVERTURNED)
        out.append({"appeal": a, "appellant": x["appellant"], "submission": x["submission"], "deposit_wei": x["deposit"],
                    "stage": AppealStage(x["stage"]).name.lower(), "outcome": Outcome(x["outcome"]).human,
                    "original": x["original"] if decided else None, "result": x["result"] if decided else None,
                    "seats": [{"seat": j, "verifier": v, "committed": c, "revealed": r, "score": s if r else None}
                              for j, (v, c, r, s) in enumerate(zip(verifiers, committed, revealed, scores))],
                    "overturned_seats": overturns.get(a, []), "draw_deadline": x["drawDeadline"],
                    "commit_end": x["commitEnd"], "reveal_end": x["revealEnd"]})
    return out


def burns(chain: Chain, tid: int | None = None) -> list[dict]:
    """Every burn (of a task, or all): amount, reason, block."""
    return [{"task": e["taskId"], "wei": e["amount"], "reason": BurnReason(e["reason"]).human,
             "block": e["blockNumber"]} for e in chain.events("Burned", tid)]


def verdict(row: dict, min_gain: int) -> str:
    """Why a submission ended where it did, in a few words."""
    st, res = row["status"], row["result"]
    appealed = " (after an appeal)" if row.get("overturned") else ""
    if st == Status.ACCEPTED:
        return f"result {score_label(res)} ≥ min gain {min_gain} bps: reward + bond{appealed}"
    if st == Status.REJECTED:
        why = f"result {score_label(res)} ≤ 0: no gain" if res <= 0 else \
            f"result {score_label(res)} < min gain {min_gain} bps"
        return f"{why}: {BELOW_MIN_FORFEIT_BPS / 100:g} % of the bond forfeited{appealed}"
    if st == Status.INVALID:
        return f"a majority of its seats found the bundle INVALID: bond forfeited{appealed}"
    if st == Status.UNRESOLVED:
        if row.get("reclaimed"):
            return "the round failed before its draw: bond reclaimed"
        return ("no eval set its seats could use (NO_EVAL): unjudged, bond back" if res == NO_EVAL
                else "no majority of its seats agreed: unjudged, bond back")
    if st == Status.UNSCORED:
        return "its own miner held every seat that should score it: unjudged, bond back"
    if st == Status.UNREVEALED:
        return "never revealed: bond forfeited (or reclaimable if the round failed before its draw)"
    return st.human


def contradicts(mine: int, judgement: dict, tolerance: int, min_gain: int) -> bool:
    """Whether a seat's own score contradicts a submission's standing judgement (`CoDreamLens.judge`),
    so that an honest verifier appeals it: another status, a result outside tolerance, or no
    majority at all while it did judge the bundle (a score other than NO_EVAL)."""
    if not judgement["majority"]:
        return mine != NO_EVAL
    return not within(mine, judgement["result"], tolerance) or status_of(mine, min_gain) != Status(judgement["status"])


def show_task(chain: Chain, tid: int) -> dict:
    """Everything about one task, for people (`codream task show`) and scripts (--json)."""
    t = task_state(chain, tid)
    subs = submissions(chain, tid, t["submissionCount"])
    seats = committee(chain, tid)
    st = chain.view("getSettlement", tid)
    judged = task_judging_seed(chain, tid, t)
    return {
        "task_id": tid, "phase": t["phase"].human, "seconds_left": t["seconds_left"],
        "time_left": duration(t["seconds_left"]) if t["seconds_left"] is not None else None,
        "spec_cid": t["specCid"], "bounty_wei": t["bounty"], "miner_bond_wei": t["minerBond"],
        "seats": t["seats"], "seats_per_submission": t["seatsPerSubmission"], "min_gain_bps": t["minGainBps"],
        "tolerance_bps": t["toleranceBps"], "fee_bps": t["feeBps"], "draw_seed": "0x" + bytes(t["seed"]).hex(),
        "judging_seed": None if judged is None else "0x" + judged.hex(),
        "owners": [{"address": o["addr"], "contribution_wei": o["contribution"], "eval_revealed": o["revealed"],
                    "eval_cid": o["eval_cid"], "declared_accuracy_bps": o["evalAccuracyBps"],
                    "verdict": o["verdict"].human, "ok_votes": o["ok_votes"], "not_ok_votes": o["not_ok_votes"]}
                   for o in t["owners"]],
        "submissions": [{**{k: v for k, v in r.items() if k != "status"}, "status": r["status"].human,
                         "result_label": score_label(r["result"]) if r["status"] >= Status.ACCEPTED else None,
                         "why": verdict(r, t["minGainBps"]) if r["status"] >= Status.UNREVEALED else None}
                        for r in subs],
        "committee": seats,
        "appeals": appeals(chain, tid),
        "burns": burns(chain, tid),
        "settlement": {"stage": Stage(st["stage"]).name.lower(), "failed_round": st["failed"],
                       "funded_wei": st["funded"], "accepted": st["accepted"], "pot_wei": st["pot"],
                       "miners_paid_wei": st["minersPaid"], "pot_paid_wei": st["potPaid"], "burned_wei": st["burned"],
                       "owners_refund_wei": sum(e["ownersRefund"] for e in chain.events("Finalized", tid))},
    }


def books(chain: Chain) -> dict:
    """The solvency invariant, read from the chain: the market holds exactly what it owes (every
    account's claimable balance and every task's escrow) plus what it burned, and the registry
    exactly the stakes (active and pending)."""
    market_balance = chain.w3.eth.get_balance(chain.address)
    owed = sum(chain.call("claimable", a) for a in {e["account"] for e in chain.events("Credited")})
    escrow = sum(chain.view("getTask", t)["escrow"] for t in range(1, chain.call("taskCount") + 1))
    burned = chain.call("burned")
    registry_balance = chain.w3.eth.get_balance(chain.registry.address)
    stakes = sum(chain.call("stakeOf", v, on="registry")
                 for v in {e["verifier"] for e in chain.events("Staked", on="registry")})
    return {"market_balance_wei": market_balance, "claimable_wei": owed, "escrow_wei": escrow, "burned_wei": burned,
            "claimable_plus_escrow_plus_burned_wei": owed + escrow + burned,
            "registry_balance_wei": registry_balance, "stakes_wei": stakes,
            "balanced": market_balance == owed + escrow + burned and registry_balance == stakes}


def books_line(b: dict) -> str:
    """The books in one line, for people."""
    return (f"books: market {eth(b['market_balance_wei'])} = claimable {eth(b['claimable_wei'])} + escrow "
            f"{eth(b['escrow_wei'])} + burned {eth(b['burned_wei'])}; registry {eth(b['registry_balance_wei'])} = "
            f"stakes {eth(b['stakes_wei'])}: {'balanced' if b['balanced'] else 'NOT BALANCED'}")


def scores(chain: Chain, tid: int) -> dict:
    """Every seat's score of every submission against the task's min gain and tolerance band (the
    judgement `CoDreamLens.judge` gives: the lower median of the eligible revealed scores, whether a
    majority supports it), and how many seats agree with it: the committee's agreement, for a chart."""
    t = chain.view("getTask", tid)
    verifiers, _, revealed = chain.call("getSeats", tid, on="lens")
    out = {"task": tid, "min_gain_bps": t["minGainBps"], "tolerance_bps": t["toleranceBps"], "submissions": []}
    if not any(revealed):
        return out
    for i in range(t["submissionCount"]):
        j = chain.view("judge", tid, i, on="lens")
        seats = [{"seat": s, "verifier": verifiers[s], "revealed": rv, "eligible": el,
                  "score": sc if rv and el else None, "score_label": score_label(sc) if rv and el else None,
                  "agrees": bool(rv and el and j["majority"] and within(sc, j["result"], t["toleranceBps"]))}
                 for s, sc, rv, el in zip(j["seats"], j["scores"], j["revealed"], j["eligible"])]
        out["submissions"].append({"index": i, "result": j["result"], "result_label": score_label(j["result"]),
                                   "majority": j["majority"], "status": Status(j["status"]).human, "seats": seats,
                                   "agree": sum(s["agrees"] for s in seats),
                                   "scored": sum(s["score"] is not None for s in seats)})
    return out


# ----------------------------------------------------------------------------- status rows
# (what `task list`, `miner status` and `verifier status` show, one row per task or submission)
def task_rows(chain: Chain) -> list[dict]:
    rows = []
    for tid in range(1, chain.call("taskCount") + 1):
        t = task_state(chain, tid)
        rows.append({"task": tid, "phase": t["phase"].human, "seconds_left": t["seconds_left"],
                     "bounty_wei": t["bounty"], "owners": len(t["owners"]), "submissions": t["submissionCount"],
                     "seats": t["seats"], "seats_per_submission": t["seatsPerSubmission"],
                     "min_gain_bps": t["minGainBps"], "spec_cid": t["specCid"]})
    return rows


def miner_rows(chain: Chain, address: str) -> list[dict]:
    """One row per submission of ``address``: phase, time left, median, verdict, money."""
    rows = []
    mine = [e for e in chain.events("Committed") if e["miner"].lower() == address.lower()]
    for tid in sorted({e["taskId"] for e in mine}):
        t = task_state(chain, tid)
        subs = {r["index"]: r for r in submissions(chain, tid, t["submissionCount"])}
        for e in (e for e in mine if e["taskId"] == tid):
            r = subs[e["index"]]
            settled = "reward" in r
            rows.append({"task": tid, "phase": t["phase"].human, "seconds_left": t["seconds_left"],
                         "index": e["index"], "cid": r.get("cid"), "status": r["status"].human,
                         "result": score_label(r["result"]) if r["status"] >= Status.ACCEPTED else None,
                         "why": verdict(r, t["minGainBps"]) if r["status"] >= Status.UNREVEALED else None,
                         "bond_wei": t["minerBond"], "reward_wei": r.get("reward") if settled else None,
                         "bond_back_wei": r.get("bond_returned") if settled else None,
                         "net_wei": r["reward"] + r["bond_returned"] - t["minerBond"] if settled else None})
    return rows


def verifier_rows(chain: Chain, address: str) -> list[dict]:
    """One row per task where ``address`` holds seats."""
    rows = []
    drawn = {e["taskId"] for e in chain.events("CommitteeDrawn") if address in e["seats"]}
    drawn |= {e["taskId"] for e in chain.events("AppealDrawn", on="appeals") if address in e["seats"]}
    credited: dict[int, int] = {}
    for e in chain.events("Credited", account=address):
        credited[e["taskId"]] = credited.get(e["taskId"], 0) + e["amount"]
    for tid in sorted(drawn):
        t = task_state(chain, tid)
        seats = [s for s in committee(chain, tid) if s["verifier"] == address]
        settled = all("faulty" in s for s in seats)
        appeal_seats = sum(s["verifier"] == address for a in appeals(chain, tid) for s in a["seats"])
        rows.append({"task": tid, "phase": t["phase"].human, "seconds_left": t["seconds_left"],
                     "seats": [s["seat"] for s in seats], "seat_count": len(seats), "appeal_seat_count": appeal_seats,
                     "committed": sum(s["committed"] for s in seats),
                     "revealed": sum(s["revealed"] for s in seats),
                     "agree": sum(s.get("agree", 0) for s in seats), "disagree": sum(s.get("disagree", 0) for s in seats),
                     "faulty_seats": [s["seat"] for s in seats if s.get("faulty")],
                     "slashed_wei": sum(s.get("slashed", 0) for s in seats),
                     "fee_wei": credited.get(tid, 0) if settled and t["phase"] == Phase.FINALIZED else None})
    return rows
