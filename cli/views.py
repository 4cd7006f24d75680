"""What one-shot commands print: a table for people by default, JSON with ``--json``.

The status views (`codream task list|status`, `miner status`, `verifier status`, `rewards`)
get their rows from the read models (`codream.market`, `codream.accounts`) and render them here.
"""
from __future__ import annotations

import json
from typing import Callable

import typer
from rich.console import Console
from rich.table import Table

from codream.market import duration, eth, seats_held
from codream.protocol import score_label

JSON = typer.Option(False, "--json", help="Print JSON (for scripts) instead of a table.")


def console() -> Console:
    return Console(width=max(120, Console().width), highlight=False)


def show(obj, as_json: bool, render: Callable[[object, Console], None] | None = None) -> None:
    """Print ``obj`` as JSON, or through ``render`` (default: a two-column table)."""
    if as_json:
        typer.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))
        return
    con = console()
    if render is not None:
        render(obj, con)
        return
    table = Table(show_header=False, box=None)
    for k, v in obj.items():
        table.add_row(str(k), _cell(k, v))
    con.print(table)


def _cell(key: str, value) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and key.endswith("_wei"):
        return eth(value)
    return str(value)


# ----------------------------------------------------------------------------- tasks
def render_task_list(rows: list[dict], con: Console) -> None:
    if not rows:
        con.print("no tasks yet on this market (`codream task create` makes one)")
        return
    table = Table(title="Tasks")
    for col in ("task", "phase", "time left", "bounty", "owners", "submissions", "seats", "min gain"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["task"]), r["phase"], duration(r["seconds_left"]),
                      eth(r["bounty_wei"]), str(r["owners"]), str(r["submissions"]),
                      f"{r['seats']} × {r['seats_per_submission']}", f"{r['min_gain_bps']} bps")
    con.print(table)


def render_task(shown: dict, con: Console) -> None:
    con.print(f"[bold]Task {shown['task_id']}[/]: {shown['phase']}"
              + (f", {shown['time_left']} left" if shown["time_left"] else "")
              + f" · bounty {eth(shown['bounty_wei'])} · bond {eth(shown['miner_bond_wei'])}"
              + f" · min gain {shown['min_gain_bps']} bps · tolerance {shown['tolerance_bps']} bps"
              + f" · {shown['seats']} seats, {shown['seats_per_submission']} per submission")
    if shown["draw_seed"].strip("0x"):
        con.print(f"  draw seed {shown['draw_seed']} (the committee)")
        con.print(f"  judging seed {shown['judging_seed']} (each bundle's recipe seed and replayed shard: "
                  "`codream verifier score --judging-seed`)" if shown.get("judging_seed") else
                  "  judging seed: fixed by the first block after the reveal window")
    for o in shown["owners"]:
        judged = {"none": "", "good": ", judged good", "faulty": ", judged FAULTY (contribution burned)",
                  "unjudged": ", unjudged (refunded)"}[o["verdict"]]
        con.print(f"  owner {o['address']}: {eth(o['contribution_wei'])}, declared teacher accuracy "
                  f"{o['declared_accuracy_bps'] / 100:.2f} %, eval "
                  + (f"revealed ({o['eval_cid']}; {o['ok_votes']} OK / {o['not_ok_votes']} not OK votes)"
                     if o["eval_revealed"] else "not revealed") + judged)
    table = Table(title="Submissions")
    for col in ("#", "miner", "CID", "median", "status", "reward", "bond back", "why"):
        table.add_column(col)
    for s in shown["submissions"]:
        table.add_row(str(s["index"]), (s["miner"] or "–")[:12], (s.get("cid") or "–")[:16],
                      s["result_label"] or "–", s["status"], eth(s["reward"]) if "reward" in s else "–",
                      eth(s["bond_returned"]) if "bond_returned" in s else "–", s["why"] or "")
    con.print(table)
    if shown["committee"]:
        seats = Table(title="Committee")
        for col in ("seat", "verifier", "committed", "revealed", "agree", "disagree", "outcome"):
            seats.add_column(col)
        for s in shown["committee"]:
            outcome = "–" if "faulty" not in s else (f"faulty: slashed {eth(s['slashed'])} (burned)" if s["faulty"]
                                                     else "ok")
            seats.add_row(str(s["seat"]), s["verifier"][:12], _yes(s["committed"]), _yes(s["revealed"]),
                          str(s.get("agree", "–")), str(s.get("disagree", "–")), outcome)
        con.print(seats)
    if shown["appeals"]:
        appeals = Table(title="Appeals")
        for col in ("#", "submission", "appellant", "deposit", "stage", "outcome", "original", "appeal result",
                    "overturned seats"):
            appeals.add_column(col)
        for a in shown["appeals"]:
            appeals.add_row(str(a["appeal"]), str(a["submission"]), a["appellant"][:12], eth(a["deposit_wei"]),
                            a["stage"], a["outcome"], score_label(a["original"]) if a["original"] is not None else "–",
                            score_label(a["result"]) if a["result"] is not None else "–",
                            ", ".join(f"{o['seat']} (−{eth(o['slashed'])})" for o in a["overturned_seats"]) or "–")
        con.print(appeals)
    st = shown["settlement"]
    if st["stage"] == "finalized":
        con.print(f"settled: funded {eth(st['funded_wei'])} (good and unjudged owners), miners paid "
                  f"{eth(st['miners_paid_wei'])}, verifiers paid {eth(st['pot_paid_wei'])}, owners refunded "
                  f"{eth(st['owners_refund_wei'])}, burned {eth(st['burned_wei'])}"
                  + (" — the round failed before its draw: every bond reclaimable" if st["failed_round"] else ""))
    for b in shown["burns"]:
        con.print(f"  burned {eth(b['wei'])}: {b['reason']}")


def _yes(v: bool) -> str:
    return "yes" if v else "no"


# ----------------------------------------------------------------------------- operators
def render_miner(obj: dict, con: Console) -> None:
    con.print(f"[bold]Miner {obj['address']}[/]: claimable {eth(obj['claimable_wei'])}")
    if not obj["submissions"]:
        con.print("no submissions yet")
        return
    table = Table()
    for col in ("task", "phase", "time left", "#", "median", "status", "reward", "bond", "net", "why"):
        table.add_column(col)
    for r in obj["submissions"]:
        table.add_row(str(r["task"]), r["phase"], duration(r["seconds_left"]),
                      str(r["index"]), r["result"] or "–", r["status"],
                      eth(r["reward_wei"]) if r["reward_wei"] is not None else "–",
                      (f"{eth(r['bond_back_wei'])} back of {eth(r['bond_wei'])}" if r["bond_back_wei"] is not None
                       else f"{eth(r['bond_wei'])} bonded"),
                      eth(r["net_wei"], True) if r["net_wei"] is not None else "–", r["why"] or "")
    con.print(table)


def render_verifier(obj: dict, con: Console) -> None:
    con.print(f"[bold]Verifier {obj['address']}[/]: stake {eth(obj['stake_wei'])} (not earnings; "
              f"{eth(obj.get('pending_stake_wei', 0))} of it still warming up), "
              f"{obj['locked_seats']} seat(s) locked in open committees and appeals"
              + (", unbonding" if obj["unbonding_at"] else "") + f" · claimable {eth(obj['claimable_wei'])}")
    if not obj["tasks"]:
        con.print("not drawn onto any committee yet")
        return
    table = Table()
    for col in ("task", "phase", "time left", "seats", "committed", "revealed", "agree", "disagree", "fee", "slashed"):
        table.add_column(col)
    for r in obj["tasks"]:  # seats: how many this verifier holds in the task (the seat numbers are in --json)
        n = r["seat_count"]
        held = seats_held(r)
        table.add_row(str(r["task"]), r["phase"], duration(r["seconds_left"]),
                      held, f"{r['committed']}/{n}", f"{r['revealed']}/{n}",
                      str(r["agree"]), str(r["disagree"]), eth(r["fee_wei"]) if r["fee_wei"] is not None else "–",
                      eth(r["slashed_wei"]) if r["slashed_wei"] else "–")
    con.print(table)


def render_rewards(obj: dict, con: Console) -> None:
    """`codream rewards`: earned / lost / net per task with the reasons, then withdrawals."""
    con.print(f"[bold]{obj['address']}[/]: earned {eth(obj['earned_wei'])} · lost {eth(obj['lost_wei'])}"
              + (f" · bounties spent {eth(obj['spent_wei'])}" if obj["spent_wei"] else "")
              + f" · net {eth(obj['net_wei'], True)}")
    con.print(f"claimable {eth(obj['claimable_wei'])} · withdrawn {eth(obj['withdrawn_wei'])} (transfers to the "
              f"wallet, not income) · in open tasks {eth(obj['in_escrow_wei'])} · stake {eth(obj['stake_wei'])} "
              f"(not earnings; {eth(obj['pending_stake_wei'])} warming up)")
    if not obj["tasks"]:
        con.print("nothing yet: no task, bond, seat or appeal of this address")
    else:
        table = Table(title="Per task")
        for col in ("task", "role", "earned", "lost", "spent", "net", "why"):
            table.add_column(col, justify="right" if col in ("earned", "lost", "spent", "net") else "left")
        for t in obj["tasks"]:
            why = "; ".join(f"{_SIGN[e['kind']]}{eth(e['wei'])} {e['reason']}" for e in t["entries"]
                            if e["kind"] != "paid")
            net = eth(t["net_wei"], True) + ("" if t["settled"] else f" (+{eth(t['in_escrow_wei'])} in escrow)")
            table.add_row(str(t["task"]), ", ".join(t["roles"]), eth(t["earned_wei"]), eth(t["lost_wei"]),
                          eth(t["spent_wei"]), net, why or f"open ({t['phase']})")
        con.print(table)
    if obj["withdrawals"]:
        table = Table(title="Withdrawals (transfers from claimable to the wallet)")
        for col in ("block", "amount"):
            table.add_column(col)
        for w in obj["withdrawals"]:
            table.add_row(str(w["block"]), eth(w["wei"]))
        con.print(table)


_SIGN = {"returned": "", "earned": "+", "lost": "−", "spent": "−", "paid": ""}
