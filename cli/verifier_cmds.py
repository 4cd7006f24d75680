"""`codream verifier ...`: score a bundle offline, or run the verifying agent."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from codream import spec as specmod
from codream.bundle import Binding
from codream.evalset import EvalSetError, load_eval_set
from codream.teachers import TeacherError, load_teachers
from verifier.agent import VerifierAgent
from verifier.score import score_bundle

from .common import ACCOUNT, CONFS, DEPLOYMENT, IPFS_API, RPC, emit, fail, open_chain, open_ipfs, wei

app = typer.Typer(help="Validate and score bundles.", no_args_is_help=True)


@app.command("score")
def verifier_score(task_spec: Path = typer.Option(..., help="Task spec JSON."),
                   bundle: Path = typer.Option(..., help="The bundle to score."),
                   eval: Path = typer.Option(..., "--eval", help="Revealed eval set (safetensors)."),
                   threads: Optional[int] = typer.Option(None, help="Scoring threads."),
                   chain_id: Optional[int] = typer.Option(None, help="Binding: chain id."),
                   contract: Optional[str] = typer.Option(None, help="Binding: market address."),
                   task_id: Optional[int] = typer.Option(None, help="Binding: task id."),
                   miner: Optional[str] = typer.Option(None, help="Binding: the miner's address.")):
    """Validate and score a bundle; print the verdict as JSON. Without the binding options
    the bundle's own binding is accepted (offline scoring)."""
    try:
        spec = specmod.load(task_spec)
        teachers = load_teachers(spec)
        ev = load_eval_set(eval, spec)
    except (specmod.SpecError, TeacherError, EvalSetError) as exc:
        fail(str(exc))
    binding = None
    if any(v is not None for v in (chain_id, contract, task_id, miner)):
        if None in (chain_id, contract, task_id, miner):
            fail("give all of --chain-id, --contract, --task-id, --miner, or none")
        binding = Binding(chain_id, contract, task_id, miner)
    emit(score_bundle(spec, bundle, ev, teachers, binding, threads=threads))


@app.command("run")
def verifier_run(stake: float = typer.Option(1.0, help="ETH to stake on first start."),
                 threads: int = typer.Option(1, help="Scoring threads (keep equal across verifiers)."),
                 poll: float = typer.Option(2.0, help="Seconds between passes over the tasks."),
                 until_idle: bool = typer.Option(False, help="Exit once every task it joined is settled."),
                 claim: bool = typer.Option(True, "--claim/--no-claim", help="Withdraw rewards automatically."),
                 keeper: bool = typer.Option(True, "--keeper/--no-keeper",
                                             help="Request draws and finalize tasks (anyone may)."),
                 rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
                 account: Optional[str] = ACCOUNT, confirmations: int = CONFS,
                 ipfs_api: Optional[str] = IPFS_API):
    """Stake, get drawn, score bundles, commit and reveal scores, finalize, claim."""
    chain = open_chain(rpc_url, deployment, account, confirmations)
    VerifierAgent(chain, open_ipfs(ipfs_api), wei(stake), threads, claim, keeper).run(poll, until_idle)
