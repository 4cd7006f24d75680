"""`codream verifier ...`: score a bundle offline, or run the verifying agent."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from safetensors import SafetensorError
from safetensors.torch import load_file

from codream import spec as specmod
from codream.bundle import Binding, BundleError, read
from codream.evalset import EvalSetError, load_eval_set
from codream.teachers import TeacherError, load_teachers
from verifier.agent import VerifierAgent
from verifier.index import NoveltyIndex, NoveltyIndexError
from verifier.novelty import reference
from verifier.score import DEFAULT_THREADS, score_bundle

from .common import ACCOUNT, CONFS, DEPLOYMENT, IPFS_API, RPC, emit, fail, open_chain, open_ipfs, pick_device, wei

app = typer.Typer(help="Validate and score bundles.", no_args_is_help=True)


@app.command("score")
def verifier_score(task_spec: Path = typer.Option(..., help="Task spec JSON."),
                   bundle: Path = typer.Option(..., help="The bundle to score."),
                   eval: Path = typer.Option(..., "--eval", help="Revealed eval set (safetensors); also checked "
                                                                "for contamination."),
                   earlier: Optional[List[Path]] = typer.Option(
                       None, help="A submission committed before this one in the task (a bundle, or safetensors "
                                  "with an `images` tensor); repeat in commit order."),
                   index: Optional[Path] = typer.Option(None, help="A novelty index folder (accepted bundles of "
                                                                   "earlier tasks, see verifier/index.py)."),
                   threads: int = typer.Option(DEFAULT_THREADS, help="Scoring threads (as `verifier run`)."),
                   device: str = typer.Option("cpu", help="auto, cpu or cuda (scores differ across devices "
                                                          "within the tolerance)."),
                   chain_id: Optional[int] = typer.Option(None, help="Binding: chain id."),
                   contract: Optional[str] = typer.Option(None, help="Binding: market address."),
                   task_id: Optional[int] = typer.Option(None, help="Binding: task id."),
                   miner: Optional[str] = typer.Option(None, help="Binding: the miner's address.")):
    """Validate and score a bundle; print the verdict as JSON. What was not checked is said
    plainly, in `checked` and on stderr: without the binding options the bundle's own binding
    is taken as given; without --earlier / --index, copies of earlier work are not caught."""
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
    refs = [reference("earlier_submission", f"submission {i} ({p.name})", _images_of(p))
            for i, p in enumerate(earlier or [])]
    novelty_index = NoveltyIndex(index) if index is not None else None
    try:
        out = score_bundle(spec, bundle, ev, teachers, binding, refs, novelty_index, threads=threads,
                           device=pick_device(device))
    except NoveltyIndexError as exc:
        fail(str(exc))
    missing = [k.replace("_", " ") for k, v in out["checked"].items()
               if isinstance(v, str) and (v.startswith("NOT CHECKED") or v == "none given")]
    if missing:
        print(f"note: not checked offline: {', '.join(missing)} (see `checked` in the JSON)", file=sys.stderr)
    emit(out)


def _images_of(path: Path):
    """Images of an earlier submission: a bundle, or any safetensors file with an `images` tensor."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"--earlier {path}: {exc}")
    try:
        return read(data)[0]
    except BundleError:
        pass
    try:
        images = load_file(str(path)).get("images")
    except (SafetensorError, OSError) as exc:
        fail(f"--earlier {path}: neither a bundle nor safetensors with an `images` tensor ({exc})")
    if images is None or images.dtype.is_floating_point or images.dim() != 4:
        fail(f"--earlier {path}: needs a uint8 `images` tensor [N, C, H, W]")
    return images


@app.command("run")
def verifier_run(stake: float = typer.Option(1.0, help="ETH to stake on first start."),
                 threads: int = typer.Option(DEFAULT_THREADS, help="Scoring threads (keep equal across verifiers)."),
                 device: str = typer.Option("cpu", help="auto, cpu or cuda (keep equal across verifiers)."),
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
    VerifierAgent(chain, open_ipfs(ipfs_api), wei(stake), threads, claim, keeper,
                  device=pick_device(device)).run(poll, until_idle)
