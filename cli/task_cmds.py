"""`codream task ...`: task owners create tasks, reveal eval sets, and inspect tasks."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from codream.chain import ChainError
from codream.market import show_task
from codream.protocol import Phase
from codream.spec import SpecError
from ipfs import IpfsError
from owner.tasks import OwnerError, auto_reveal, create_task, join_task, reveal_eval

from .common import ACCOUNT, CONFS, DEPLOYMENT, IPFS_API, ONE_SHOT_RETRY, RPC, emit, fail, open_chain, open_ipfs, wei
from .views import JSON, console, render_task, render_task_list, show, task_rows

app = typer.Typer(help="Task owners: create tasks, reveal eval sets, inspect tasks.", no_args_is_help=True)


def parse_windows(text: str) -> list[int]:
    try:
        w = [int(x) for x in text.split(",")]
    except ValueError:
        w = []
    if len(w) != 5 or any(x <= 0 for x in w):
        fail("--windows: five positive numbers of seconds, e.g. 600,600,600,600,600", 2)
    return w


@app.command("create")
def task_create(task_dir: Path = typer.Option(..., help="Folder from `codream teacher train`."),
                bounty: float = typer.Option(1.0, help="Bounty in ETH."),
                bond: float = typer.Option(0.01, help="Miner bond in ETH."),
                seats: int = typer.Option(3, "--seats", "--committee", min=1,
                                          help="Committee seats (drawn by stake, with replacement)."),
                per_submission: int = typer.Option(3, "--seats-per-submission", min=1,
                                                   help="Seats that score each submission (≤ seats)."),
                fee_bps: int = typer.Option(1000, help="Verifiers' share of the bounty, bps."),
                eval_set: Optional[Path] = typer.Option(None, "--eval", help="This owner's eval set "
                                                        "(default TASK_DIR/eval.safetensors)."),
                windows: str = typer.Option("600,600,600,600,600",
                                            help="Seconds: commit,reveal,evalReveal,scoreCommit,scoreReveal."),
                auto_reveal_eval: bool = typer.Option(False, "--auto-reveal", help="Wait and reveal the eval set."),
                rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
                account: Optional[str] = ACCOUNT, confirmations: int = CONFS, ipfs_api: Optional[str] = IPFS_API):
    """Publish teacher and spec, commit to the eval set, fund the bounty."""
    w = parse_windows(windows)
    if per_submission > seats:
        fail(f"--seats-per-submission {per_submission} must not exceed --seats {seats}", 2)
    chain, ipfs = open_chain(rpc_url, deployment, account, confirmations), open_ipfs(ipfs_api)
    try:
        out = create_task(chain, ipfs, task_dir, wei(bounty), wei(bond), seats, per_submission, w, fee_bps,
                          eval_set)
        emit(out)
        if auto_reveal_eval:
            emit({"eval_cid": auto_reveal(chain, ipfs, out["task_id"])})
    except (ChainError, IpfsError, OwnerError, SpecError) as exc:
        fail(str(exc))


@app.command("join")
def task_join(task_id: int = typer.Argument(..., help="The task to co-own."),
              eval_set: Path = typer.Option(..., "--eval", exists=True, dir_okay=False,
                                            help="Your own eval set (safetensors); it stays private until you "
                                                 "reveal it."),
              contribution: float = typer.Option(..., help="ETH you add to the bounty."),
              rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
              account: Optional[str] = ACCOUNT, confirmations: int = CONFS):
    """Co-own a task during its commit window: add to the bounty and commit to your eval set."""
    try:
        emit(join_task(open_chain(rpc_url, deployment, account, confirmations), task_id, eval_set, wei(contribution)))
    except (ChainError, OwnerError) as exc:
        fail(str(exc))


@app.command("reveal-eval")
def task_reveal_eval(task_id: int = typer.Argument(..., help="The task id."),
                     rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
                     account: Optional[str] = ACCOUNT, confirmations: int = CONFS,
                     ipfs_api: Optional[str] = IPFS_API):
    """Pin the eval set and reveal it (inside the eval-reveal window)."""
    try:
        emit({"task_id": task_id, "eval_cid": reveal_eval(open_chain(rpc_url, deployment, account, confirmations),
                                                          open_ipfs(ipfs_api), task_id)})
    except (ChainError, IpfsError, OwnerError) as exc:
        fail(str(exc))


@app.command("list")
def task_list(as_json: bool = JSON, rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT):
    """Every task on the market: phase, time left, bounty, submissions, seats."""
    chain = open_chain(rpc_url, deployment, None, need_account=False, retry_seconds=ONE_SHOT_RETRY)
    try:
        show(task_rows(chain), as_json, render_task_list)
    except ChainError as exc:
        fail(str(exc))


@app.command("show")
def task_show(task_id: int = typer.Argument(..., help="The task id."), as_json: bool = JSON,
              rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT):
    """Phase, time left, owners, submissions (median, verdict, why, reward, bond), committee."""
    chain = open_chain(rpc_url, deployment, None, need_account=False, retry_seconds=ONE_SHOT_RETRY)
    try:
        show(show_task(chain, task_id), as_json, render_task)
    except ChainError as exc:
        fail(str(exc))


app.command("status", help="The same as `task show`.")(task_show)


PHASE_NAMES = {p.human: p for p in Phase}


@app.command("wait")
def task_wait(task_id: int = typer.Argument(..., help="The task id."),
              commits: int = typer.Option(0, help="Wait for at least this many commits."),
              reveals: int = typer.Option(0, help="... this many revealed submissions."),
              score_commits: int = typer.Option(0, help="... this many seats' score commitments."),
              score_reveals: int = typer.Option(0, help="... this many seats' revealed scores."),
              phase: Optional[str] = typer.Option(None, help="... this phase or a later one (e.g. 'score commit', "
                                                               "'finalized')."),
              mine: bool = typer.Option(False, "--mine", help="Devnet: mine a block per poll (the committee draw "
                                                              "waits for blocks; anvil makes them only on demand)."),
              timeout: float = typer.Option(600, help="Give up after this many seconds (exit 1)."),
              poll: float = typer.Option(1.0, help="Seconds between checks."),
              rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT):
    """Wait until a task gets somewhere (commits, reveals, scores, a phase), showing progress."""
    if phase is not None and phase not in PHASE_NAMES:
        fail(f"--phase must be one of: {', '.join(repr(p) for p in PHASE_NAMES)}", 2)
    chain = open_chain(rpc_url, deployment, None, need_account=False, retry_seconds=ONE_SHOT_RETRY)
    if mine and not chain.devnet:
        fail("--mine only works on the devnet", 2)
    wanted = [("Committed", commits), ("Revealed", reveals), ("ScoresCommitted", score_commits),
              ("ScoresRevealed", score_reveals)]
    deadline = time.monotonic() + timeout
    try:
        with console().status("waiting") as status:
            while True:
                counts = {name: len(chain.events(name, task_id)) for name, n in wanted if n}
                now = Phase(chain.phase(task_id))
                done = all(counts[name] >= n for name, n in wanted if n) and (phase is None or now >= PHASE_NAMES[phase])
                shown = ", ".join(f"{name} {counts[name]}/{n}" for name, n in wanted if n)
                if done:
                    typer.echo(f"task {task_id}: {now.human}" + (f"; {shown}" if shown else ""))
                    return
                if time.monotonic() > deadline:
                    fail(f"task {task_id} did not get there within {timeout:g} s (now: {now.human}"
                         + (f"; {shown}" if shown else "") + ")")
                status.update(f"task {task_id}: {now.human}" + (f"; {shown}" if shown else ""))
                if mine:
                    chain.mine()
                time.sleep(poll)
    except ChainError as exc:
        fail(str(exc))
