"""`codream task ...`: task owners create tasks, reveal eval sets, and inspect tasks."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from codream.chain import ChainError
from codream.market import show_task
from codream.spec import SpecError
from ipfs import IpfsError
from owner.tasks import OwnerError, auto_reveal, create_task, reveal_eval

from .common import ACCOUNT, CONFS, DEPLOYMENT, IPFS_API, RPC, emit, fail, open_chain, open_ipfs, wei

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
                committee: int = typer.Option(3, help="Committee seats."),
                fee_bps: int = typer.Option(1000, help="Verifiers' share of the bounty, bps."),
                windows: str = typer.Option("600,600,600,600,600",
                                            help="Seconds: commit,reveal,evalReveal,scoreCommit,scoreReveal."),
                auto_reveal_eval: bool = typer.Option(False, "--auto-reveal", help="Wait and reveal the eval set."),
                rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
                account: Optional[str] = ACCOUNT, confirmations: int = CONFS, ipfs_api: Optional[str] = IPFS_API):
    """Publish teacher and spec, commit to the eval set, fund the bounty."""
    w = parse_windows(windows)
    chain, ipfs = open_chain(rpc_url, deployment, account, confirmations), open_ipfs(ipfs_api)
    try:
        out = create_task(chain, ipfs, task_dir, wei(bounty), wei(bond), committee, w, fee_bps)
        emit(out)
        if auto_reveal_eval:
            emit({"eval_cid": auto_reveal(chain, ipfs, out["task_id"])})
    except (ChainError, IpfsError, OwnerError, SpecError) as exc:
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


@app.command("show")
def task_show(task_id: int = typer.Argument(..., help="The task id."),
              rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT):
    """Phase, time left, submissions, committee, scores and results of a task."""
    try:
        emit(show_task(open_chain(rpc_url, deployment, None, need_account=False), task_id))
    except ChainError as exc:
        fail(str(exc))
