"""Accounting, read from the chain: for an address (or a party of several), per task, what it paid
in, was credited, lost and earned, each with its reason in words, and its withdrawals as transfers.

One read model for every view of money: ``statement`` for one account (`codream rewards`, the
dapp's first screen), ``ledger`` for the demos' per-party table (paid in / credited / slashed /
net), ``network`` for the dapp's network page. Every amount comes from an event of the contracts
(``Credited``, ``SubmissionSettled``, ``SeatSettled``, the appeals' settlement events, ...); the
reasons are the ones the contracts' verdicts give (``codream.market.verdict``).

Each entry has a ``kind``:

| kind       | what                                                                  | in net |
|------------|-----------------------------------------------------------------------|--------|
| `paid`     | value locked in the market: a bounty, a miner bond, an appeal deposit | —      |
| `returned` | paid-in value credited back: bond back, owner refund, deposit back    | —      |
| `earned`   | income: a miner's reward, a verifier's fee, an appeal seat's share    | +      |
| `lost`     | a penalty: a forfeited bond, a slash, a burned contribution, a forfeited appeal deposit | − |
| `spent`    | an owner's bounty that paid the round's miners and verifiers          | −      |

``net = earned − lost − spent`` (what the task settled, by the rules); what is still locked in an
open task is ``in_escrow``. In cash terms ``credited − paid_in − slashed = net − in_escrow``.
A withdrawal moves claimable wei to the wallet: a transfer, never income.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from web3 import Web3

from .chain import Chain
from .market import verdict
from .protocol import Outcome, Phase, Status, Verdict

KINDS = ("paid", "returned", "earned", "lost", "spent")
NET_SIGN = {"paid": 0, "returned": 0, "earned": 1, "lost": -1, "spent": -1}


@dataclass
class Entry:
    """One movement of an account's money in one task (``wei`` > 0; ``kind`` says which way)."""

    task: int
    kind: str
    wei: int
    reason: str
    block: int
    role: str = ""  # owner, miner, verifier or appellant
    slash: bool = False  # a `lost` entry taken from stake (not from what the account paid in)
    time: int | None = None  # the block's timestamp (``statement`` fills it)

    @property
    def net_wei(self) -> int:
        return NET_SIGN[self.kind] * self.wei

    @property
    def cash_wei(self) -> int:
        """The entry's effect on wallet + claimable (+ stake): paid −, credited +, slashed −."""
        if self.kind == "paid" or (self.kind == "lost" and self.slash):
            return -self.wei
        return self.wei if self.kind in ("returned", "earned") else 0

    def as_dict(self) -> dict:
        return {"task": self.task, "kind": self.kind, "role": self.role, "wei": self.wei, "net_wei": self.net_wei,
                "cash_wei": self.cash_wei, "reason": self.reason, "block": self.block, "time": self.time}


@dataclass
class Totals:
    """Sums over entries (one task, or a party's tasks), and value moved outside the market."""

    paid_in: int = 0
    credited: int = 0  # returned + earned: what reached `claimable`
    slashed: int = 0  # the part of `lost` taken from stake
    earned: int = 0
    lost: int = 0
    spent: int = 0
    transfers: int = 0  # value moved outside the market to (+) or from (−) the party (the caller's: bribes)
    items: list = field(default_factory=list)  # the entries

    def add(self, e: Entry) -> None:
        self.items.append(e)
        if e.kind == "paid":
            self.paid_in += e.wei
        elif e.kind in ("returned", "earned"):
            self.credited += e.wei
        if e.kind == "earned":
            self.earned += e.wei
        elif e.kind == "lost":
            self.lost += e.wei
            self.slashed += e.wei if e.slash else 0
        elif e.kind == "spent":
            self.spent += e.wei

    @property
    def in_escrow(self) -> int:
        """Paid in and not yet settled either way (an open task's bond, bounty or deposit)."""
        returned = self.credited - self.earned
        return self.paid_in - returned - (self.lost - self.slashed) - self.spent

    @property
    def net(self) -> int:
        return self.earned - self.lost - self.spent + self.transfers

    def as_dict(self) -> dict:
        return {"paid_in_wei": self.paid_in, "credited_wei": self.credited, "slashed_wei": self.slashed,
                "earned_wei": self.earned, "lost_wei": self.lost, "spent_wei": self.spent,
                "in_escrow_wei": self.in_escrow, "transfers_wei": self.transfers, "net_wei": self.net}


# ----------------------------------------------------------------------------- the entries
def _cs(a: str) -> str:
    return Web3.to_checksum_address(a)


def entries(chain: Chain, tasks: Iterable[int] | None = None) -> dict[str, list[Entry]]:
    """Every account's entries (checksum address -> entries), restricted to ``tasks`` if given.
    Each credit is split by what caused it; a credit no event explains is kept as `earned` with
    the reason "credited (unattributed)" (it should never happen: the tests check it)."""
    only = set(tasks) if tasks is not None else None
    want = (lambda tid: only is None or tid in only)
    out: dict[str, list[Entry]] = {}

    def put(addr, tid, role, kind, wei, reason, block, slash=False):
        if wei and want(tid):
            out.setdefault(_cs(addr), []).append(Entry(tid, kind, wei, reason, block, role, slash))

    created = {e["taskId"]: e for e in chain.events("TaskCreated") if want(e["taskId"])}
    info = {}  # task -> getTask, settlement, owners (read once per task)
    for tid in created:
        info[tid] = {"task": chain.view("getTask", tid), "settlement": chain.view("getSettlement", tid),
                     "phase": Phase(chain.phase(tid)), "owners": chain.view_list("owners", tid)}
    finalized = {e["taskId"]: e for e in chain.events("Finalized") if want(e["taskId"])}
    credits: dict[tuple[str, int], int] = {}
    last_credit_block: dict[tuple[str, int], int] = {}
    for e in chain.events("Credited"):
        if want(e["taskId"]):
            key = (_cs(e["account"]), e["taskId"])
            credits[key] = credits.get(key, 0) + e["amount"]
            last_credit_block[key] = e["blockNumber"]
    explained: dict[tuple[str, int], int] = {}

    def credit(addr, tid, role, kind, wei, reason, block):
        put(addr, tid, role, kind, wei, reason, block)
        key = (_cs(addr), tid)
        explained[key] = explained.get(key, 0) + wei

    # owners: the bounty in; at settlement a refund (what no judgement assigned), a burned
    # contribution (faulty eval set), and what paid the round
    joined = [(tid, e["creator"], e["bounty"], e["blockNumber"], 0) for tid, e in created.items()]
    joined += [(e["taskId"], e["owner"], e["contribution"], e["blockNumber"], e["ownerIndex"])
               for e in chain.events("TaskJoined") if want(e["taskId"])]
    judged = {(e["taskId"], e["ownerIndex"]): e for e in chain.events("OwnerJudged") if want(e["taskId"])}
    for tid, owner, contribution, block, i in joined:
        put(owner, tid, "owner", "paid", contribution, "bounty" if i == 0 else "bounty (co-owner)", block)
        fin = finalized.get(tid)
        if fin is None:
            continue
        v = Verdict(info[tid]["owners"][i]["verdict"])
        j = judged.get((tid, i))
        votes = f" ({j['ok']} OK / {j['notOk']} not OK)" if j else ""
        if v == Verdict.FAULTY:
            put(owner, tid, "owner", "lost", contribution, f"eval set judged faulty{votes}: contribution burned",
                fin["blockNumber"])
            continue
        refund = fin["ownersRefund"] * contribution // fin["funded"] if fin["funded"] else 0
        failed = info[tid]["settlement"]["failed"]
        why = ("the round failed before its draw: contribution refunded" if failed else
               "refund: nothing was accepted" if info[tid]["settlement"]["accepted"] == 0 else
               "refund: no seat earned the fee")
        credit(owner, tid, "owner", "returned", refund, why, fin["blockNumber"])
        accepted = info[tid]["settlement"]["accepted"]
        put(owner, tid, "owner", "spent", contribution - refund,
            f"paid the round: {accepted} bundle(s) accepted, the verifiers' fee"
            + (f" (eval set {v.human}{votes})" if v != Verdict.NONE else ""), fin["blockNumber"])

    # miners: the bond in; reward, bond back, or the forfeited part, with the verdict's reason
    revealed = {(e["taskId"], e["index"]) for e in chain.events("Revealed") if want(e["taskId"])}
    overturned = {(e["taskId"], e["index"]) for e in chain.events("Overturned") if want(e["taskId"])}
    settled = {(e["taskId"], e["index"]): e for e in chain.events("SubmissionSettled") if want(e["taskId"])}
    for e in chain.events("Committed"):
        tid, idx = e["taskId"], e["index"]
        if not want(tid):
            continue
        bond = created[tid]["minerBond"]
        put(e["miner"], tid, "miner", "paid", bond, f"miner bond (submission {idx})", e["blockNumber"])
        s = settled.get((tid, idx))
        if s is None:
            st = info[tid]["settlement"]
            if info[tid]["phase"] == Phase.FINALIZED and not st["failed"]:
                put(e["miner"], tid, "miner", "lost", bond, f"submission {idx} never revealed: bond forfeited",
                    finalized[tid]["blockNumber"] if tid in finalized else e["blockNumber"])
            continue
        row = {"status": Status(s["status"]), "result": s["result"], "overturned": (tid, idx) in overturned,
               "reclaimed": (tid, idx) not in revealed}
        # the verdict's reason goes with the entry it explains: the reward, else the forfeit, else the bond back
        why = f"submission {idx}: " + verdict(row, info[tid]["task"]["minGainBps"])
        forfeit = bond - s["bondReturned"]
        credit(e["miner"], tid, "miner", "earned", s["reward"], why, s["blockNumber"])
        credit(e["miner"], tid, "miner", "returned", s["bondReturned"],
               why if not s["reward"] and not forfeit else f"bond back (submission {idx})", s["blockNumber"])
        put(e["miner"], tid, "miner", "lost", forfeit, why if not s["reward"] else f"bond forfeited (submission {idx})",
            s["blockNumber"])

    # verifiers: slashes of faulty seats (the fee is what is left of their credits: below)
    seated: dict[tuple[str, int], list] = {}
    for e in chain.events("SeatSettled"):
        if not want(e["taskId"]):
            continue
        seated.setdefault((_cs(e["verifier"]), e["taskId"]), []).append(e)
        if e["slashed"]:
            how = "silent (never revealed)" if e["agree"] + e["disagree"] == 0 else \
                f"outvoted ({e['disagree']} of its scores outside the majority's tolerance)"
            put(e["verifier"], e["taskId"], "verifier", "lost", e["slashed"],
                f"seat {e['seat']} {how}: stake slashed, burned", e["blockNumber"], slash=True)

    # appeals: the deposit, its fate, appeal seats' pay and slashes, overturned seats' slashes
    resolved = {(e["taskId"], e["appealId"]): e for e in chain.events("AppealResolved", on="appeals")}
    for e in chain.events("Appealed", on="appeals"):
        tid, a = e["taskId"], e["appealId"]
        if not want(tid):
            continue
        put(e["appellant"], tid, "appellant", "paid", e["deposit"], f"appeal {a} deposit (submission {e['index']})",
            e["blockNumber"])
        r = resolved.get((tid, a))
        if r is None:
            continue
        outcome = Outcome(r["outcome"])
        if outcome == Outcome.CONFIRMED:
            put(e["appellant"], tid, "appellant", "lost", e["deposit"],
                f"appeal {a} confirmed the result: deposit paid to the agreeing appeal seats", r["blockNumber"])
        else:
            credit(e["appellant"], tid, "appellant", "returned", e["deposit"],
                   f"appeal {a} {outcome.human}: deposit back", r["blockNumber"])
    for e in chain.events("AppealSeatSettled", on="appeals"):
        tid = e["taskId"]
        if e["slashed"]:
            put(e["verifier"], tid, "verifier", "lost", e["slashed"],
                f"appeal {e['appealId']} seat {e['seat']} silent or outside tolerance: stake slashed, burned",
                e["blockNumber"], slash=True)
        if e["paid"]:
            credit(e["verifier"], tid, "verifier", "earned", e["paid"],
                   f"appeal {e['appealId']} seat {e['seat']}: share of the deposit (agreed with a confirming result)",
                   e["blockNumber"])
    appellant = {(e["taskId"], e["appealId"]): e["appellant"] for e in chain.events("Appealed", on="appeals")}
    for e in chain.events("OriginalSeatOverturned", on="appeals"):
        tid, a = e["taskId"], e["appealId"]
        put(e["verifier"], tid, "verifier", "lost", e["slashed"],
            f"seat {e['seat']} supported a result appeal {a} overturned: stake slashed", e["blockNumber"], slash=True)
        if e["toAppellant"] and (tid, a) in appellant:
            credit(appellant[(tid, a)], tid, "appellant", "earned", e["toAppellant"],
                   f"appeal {a} overturned seat {e['seat']}: share of its slash", e["blockNumber"])

    # what the events above do not explain: a verifier's fee (pro rata to its seats' agree counts)
    for key, total in credits.items():
        rest = total - explained.get(key, 0)
        if rest <= 0:
            continue
        addr, tid = key
        seats = seated.get(key)
        role = "verifier" if seats else ""
        if seats:
            agree = sum(s["agree"] for s in seats)
            why = f"verifier fee: {len(seats)} seat(s) with the majority ({agree} agreeing score(s))"
        else:
            why = "credited (unattributed)"
        put(addr, tid, role, "earned", rest, why, last_credit_block[key])
    for es in out.values():
        es.sort(key=lambda x: (x.block, KINDS.index(x.kind)))
    return out


# ----------------------------------------------------------------------------- one account
def _times(chain: Chain, blocks: Iterable[int]) -> dict[int, int]:
    return {b: chain.w3.eth.get_block(b)["timestamp"] for b in set(blocks)}


def statement(chain: Chain, address: str) -> dict:
    """What ``address`` earned, lost and spent, per task with the reasons, its withdrawals (as
    transfers), its claimable balance and stake (apart from earnings), and a timeline of its net
    for a chart. Amounts in wei; every task row's numbers add up (net = earned − lost − spent)."""
    address = _cs(address)
    mine = entries(chain).get(address, [])
    withdrawals = [{"kind": "withdrawal", "wei": e["amount"], "reason": "moved from claimable to the wallet",
                    "block": e["blockNumber"], "tx": e["tx"]} for e in chain.events("Withdrawn", account=address)]
    times = _times(chain, [e.block for e in mine] + [w["block"] for w in withdrawals])
    for e in mine:
        e.time = times[e.block]
    for w in withdrawals:
        w["time"] = times[w["block"]]
    per: dict[int, Totals] = {}
    for e in mine:
        per.setdefault(e.task, Totals()).add(e)
    total = Totals()
    for e in mine:
        total.add(e)
    rows = []
    for tid in sorted(per):
        t = per[tid]
        phase = Phase(chain.phase(tid))
        roles = sorted({e.role for e in t.items} - {""})
        rows.append({"task": tid, "phase": phase.human, "settled": phase == Phase.FINALIZED, "roles": roles,
                     **t.as_dict(), "entries": [e.as_dict() for e in t.items]})
    timeline, running = [], 0
    for e in mine:
        if e.net_wei:
            running += e.net_wei
            timeline.append({"block": e.block, "time": e.time, "task": e.task, "net_wei": e.net_wei,
                             "cumulative_net_wei": running})
    info = chain.view("info", address, on="registry")
    pending_stake = chain.view("pendingOf", address, on="registry")
    withdrawn = sum(w["wei"] for w in withdrawals)
    history = sorted([{"task": e.task, "wei": e.cash_wei, "net_wei": e.net_wei, "kind": e.kind, "reason": e.reason,
                       "block": e.block} for e in mine]
                     + [{"task": None, "wei": w["wei"], "net_wei": 0, "kind": "withdrawn", "reason": w["reason"],
                         "block": w["block"]} for w in withdrawals], key=lambda h: h["block"])
    return {"address": address, "claimable_wei": chain.call("claimable", address), **total.as_dict(),
            "withdrawn_wei": withdrawn, "pending_bonds_wei": total.in_escrow,
            "stake_wei": info["stake"] + pending_stake["amount"], "active_stake_wei": info["stake"],
            "pending_stake_wei": pending_stake["amount"], "activates_at": pending_stake["activatesAt"] or None,
            "unbonding_at": info["unbondAt"] or None, "locked_seats": info["lockedSeats"],
            "tasks": rows, "withdrawals": withdrawals,
            "timeline": timeline, "history": history}


# ----------------------------------------------------------------------------- parties (the demos)
def ledger(chain: Chain, parties: Mapping[str, Iterable[str]], tasks: Iterable[int] | None = None,
           transfers: Iterable[tuple[str, str, int]] = ()) -> dict[str, Totals]:
    """Per party (name -> its addresses): its ``Totals`` over ``tasks`` (default all): paid in,
    credited, slashed, earned, lost, spent, net, with the entries (``items``). ``transfers``
    (from, to, wei) adds value moved outside the market (a bribe) to both sides."""
    all_entries = entries(chain, tasks)
    out = {}
    for name, addrs in parties.items():
        t = Totals()
        for a in {_cs(a) for a in addrs}:
            for e in all_entries.get(a, []):
                t.add(e)
        out[name] = t
    owner_of = {_cs(a): name for name, addrs in parties.items() for a in addrs}
    for src, dst, wei in transfers:
        if _cs(src) in owner_of:
            out[owner_of[_cs(src)]].transfers -= wei
        if _cs(dst) in owner_of:
            out[owner_of[_cs(dst)]].transfers += wei
    return out


# ----------------------------------------------------------------------------- the network
def network(chain: Chain) -> dict:
    """The market at a glance: tasks over time (created, bounty, phase), total and per-verifier
    stake, bounty paid to miners and verifiers, burned."""
    created = chain.events("TaskCreated")
    joined: dict[int, int] = {}
    for e in chain.events("TaskJoined"):
        joined[e["taskId"]] = joined.get(e["taskId"], 0) + e["contribution"]
    times = _times(chain, [e["blockNumber"] for e in created])
    fin = {e["taskId"]: e for e in chain.events("Finalized")}
    tasks = [{"task": e["taskId"], "block": e["blockNumber"], "time": times[e["blockNumber"]],
              "bounty_wei": e["bounty"] + joined.get(e["taskId"], 0), "phase": Phase(chain.phase(e["taskId"])).human,
              "miners_paid_wei": fin[e["taskId"]]["minersPaid"] if e["taskId"] in fin else None,
              "verifiers_paid_wei": fin[e["taskId"]]["potPaid"] if e["taskId"] in fin else None}
             for e in created]
    verifiers = sorted({_cs(e["verifier"]) for e in chain.events("Staked", on="registry")})
    stakes = []
    for v in verifiers:
        info, pending = chain.view("info", v, on="registry"), chain.view("pendingOf", v, on="registry")
        if info["stake"] + pending["amount"]:
            stakes.append({"verifier": v, "active_wei": info["stake"], "pending_wei": pending["amount"]})
    stakes.sort(key=lambda s: -(s["active_wei"] + s["pending_wei"]))
    total = sum(s["active_wei"] + s["pending_wei"] for s in stakes)
    return {"tasks": tasks, "task_count": len(tasks), "bounty_wei": sum(t["bounty_wei"] for t in tasks),
            "miners_paid_wei": sum(f["minersPaid"] for f in fin.values()),
            "verifiers_paid_wei": sum(f["potPaid"] for f in fin.values()),
            "owners_refund_wei": sum(f["ownersRefund"] for f in fin.values()),
            "burned_wei": chain.call("burned"), "total_stake_wei": total,
            "active_stake_wei": sum(s["active_wei"] for s in stakes), "stakes": stakes}

