"""`codream task ...`: task owners create tasks, reveal eval sets, and inspect tasks."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from codream.chain import ChainError
from codream.distill import CheckpointMismatch
from codream.evalset import EvalSetError, load_eval_set
from codream.market import show_task, task_rows
from codream.protocol import DEFAULT_SEATS_PER_SUBMISSION, Phase
from codream.spec import SpecError, load as load_spec
from codream.teachers import TeacherError
from ipfs import IpfsError
from owner.harvest import HarvestError, Manifest, harvest, load_manifest, manifest_from_chain
from owner.importer import (ImportRefused, add_eval, eval_images_for, init_task, load_eval_source, parse_eval,
                            parse_floats, parse_teacher, read_task_folder)
from owner.strategies import STRATEGIES as OWNER_STRATEGIES
from owner.tasks import OwnerError, auto_reveal, create_task, join_task

from .common import ACCOUNT, CONFS, DEPLOYMENT, IPFS_API, ONE_SHOT_RETRY, RPC, emit, eth_option, fail, open_chain, \
    open_ipfs, set_threads
from .views import JSON, console, render_task, render_task_list, show

app = typer.Typer(help="Task owners: build task folders from your own models, create tasks, reveal eval sets, "
                       "inspect tasks, harvest students.", no_args_is_help=True)


def parse_windows(text: str) -> list[int]:
    try:
        w = [int(x) for x in text.split(",")]
    except ValueError:
        w = []
    if len(w) != 5 or any(x <= 0 for x in w):
        fail("--windows: five positive numbers of seconds (commit, evalReveal, reveal, scoreCommit, scoreReveal), "
             "e.g. 3600,3600,3600,3600,3600", 2)
    return w


def _owner_strategy(name: str):
    """`--strategy NAME` (every one but honest is a demo adversary: `codream demo --adversarial`)."""
    if name not in OWNER_STRATEGIES:
        fail(f"--strategy must be one of {', '.join(OWNER_STRATEGIES)}", 2)
    return OWNER_STRATEGIES[name]()


OWNER_STRATEGY = typer.Option("honest", hidden=True, help="TEST/DEMO ADVERSARIES ONLY: " + ", ".join(OWNER_STRATEGIES)
                              + " (never-reveals keeps the eval set secret; unhosted-eval commits to bytes it "
                                "never publishes; shuffled-labels lies about its eval set).")


@app.command("create")
def task_create(task_dir: Path = typer.Option(..., help="Folder from `codream teacher train`."),
                bounty: int = eth_option("1", "--bounty", help="Bounty in ETH."),
                bond: int = eth_option("0.01", "--bond", help="Miner bond in ETH."),
                seats: int = typer.Option(DEFAULT_SEATS_PER_SUBMISSION, "--seats", "--committee", min=1,
                                          help="Committee seats K (drawn by stake, with replacement; ≤ 64)."),
                per_submission: int = typer.Option(DEFAULT_SEATS_PER_SUBMISSION, "--seats-per-submission", min=1,
                                                   help="Seats r that score each submission: odd, at least the "
                                                        "market's floor (5 in production), ≤ seats."),
                fee_bps: int = typer.Option(1000, help="Verifiers' share of the bounty, bps."),
                eval_set: Optional[Path] = typer.Option(None, "--eval", help="This owner's eval set "
                                                        "(default TASK_DIR/eval.safetensors)."),
                windows: str = typer.Option("3600,3600,3600,3600,3600",
                                            help="Seconds: commit,evalReveal,reveal,scoreCommit,scoreReveal (each at "
                                                 "least the market's minimum window, 1 h in production)."),
                auto_reveal_eval: bool = typer.Option(False, "--auto-reveal", help="Wait and reveal the eval set."),
                strategy: str = OWNER_STRATEGY,
                rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
                account: Optional[str] = ACCOUNT, confirmations: int = CONFS, ipfs_api: Optional[str] = IPFS_API):
    """Publish teacher and spec, commit to the eval set, fund the bounty."""
    w = parse_windows(windows)
    if per_submission > seats:
        fail(f"--seats-per-submission {per_submission} must not exceed --seats {seats}", 2)
    chosen = _owner_strategy(strategy)
    if strategy != "honest":
        if eval_set is not None or auto_reveal_eval:
            fail(f"--strategy {strategy} chooses the eval set and the reveal itself: drop --eval / --auto-reveal", 2)
        eval_set = chosen.eval_path(task_dir)
    chain, ipfs = open_chain(rpc_url, deployment, account, confirmations), open_ipfs(ipfs_api)
    try:
        out = create_task(chain, ipfs, task_dir, bounty, bond, seats, per_submission, w, fee_bps,
                          eval_set, accuracy_bps=chosen.accuracy_bps(task_dir))
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
              contribution: int = eth_option(..., "--contribution", help="ETH you add to the bounty (at least "
                                               "0.01 ETH and 10 % of the creator's contribution)."),
              rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
              account: Optional[str] = ACCOUNT, confirmations: int = CONFS, ipfs_api: Optional[str] = IPFS_API):
    """Co-own a task during its commit window: add to the bounty and commit to your eval set and
    the teachers' accuracy on it (measured here with the task's spec and teachers)."""
    try:
        emit(join_task(open_chain(rpc_url, deployment, account, confirmations), task_id, eval_set, contribution,
                       ipfs=open_ipfs(ipfs_api)))
    except (ChainError, OwnerError, IpfsError, SpecError, TeacherError) as exc:
        fail(str(exc))


@app.command("reveal-eval")
def task_reveal_eval(task_id: int = typer.Argument(..., help="The task id."),
                     strategy: str = OWNER_STRATEGY,
                     rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
                     account: Optional[str] = ACCOUNT, confirmations: int = CONFS,
                     ipfs_api: Optional[str] = IPFS_API):
    """Pin the eval set and reveal it (inside the eval-reveal window)."""
    chosen = _owner_strategy(strategy)
    try:
        emit({"task_id": task_id, "eval_cid": chosen.reveal(open_chain(rpc_url, deployment, account, confirmations),
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


# -- task owners' offline tools: bring your own teacher, harvest -----------------------------

def _print_accuracy(report: dict) -> None:
    """The accuracy report as a table on stderr (stdout keeps the JSON)."""
    table = Table(title="teacher accuracy on each owner's eval set")
    evals = list(next(iter(report.values())).keys()) if report else []
    for col in ["model", *evals]:
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, row in report.items():
        table.add_row(name, *(f"{100 * row[e]:.1f} %" for e in evals))
    Console(stderr=True).print(table)


@app.command("init")
def task_init(out: Path = typer.Option(..., help="Task folder to write."),
              teacher: list[str] = typer.Option(..., help="A teacher: PATH (safetensors with its config), or "
                                                "file=PATH,owner=NAME,arch=ARCH[,width=N…][,config=CFG.json]; "
                                                "PATH may be a PyTorch state dict (.pt), loaded weights-only. "
                                                "Repeat for several teachers."),
              eval_set: list[str] = typer.Option(..., "--eval", help="An owner's eval set: [OWNER=]PATH, a "
                                                 "safetensors file (images, labels) or a folder of PNGs with "
                                                 "labels.csv (file,label). One per owner."),
              classes: Optional[int] = typer.Option(None, help="Number of classes (default: from the teachers' "
                                                    "configs, else the largest eval label + 1)."),
              mean: Optional[str] = typer.Option(None, help="Normalisation mean per channel, e.g. 0.3051 or "
                                                 "0.49,0.48,0.45 (default: computed from the eval images)."),
              std: Optional[str] = typer.Option(None, help="Normalisation std per channel."),
              student: Optional[str] = typer.Option(None, help="Student model config JSON (default by input size)."),
              recipe: Optional[str] = typer.Option(None, help="Distillation recipe JSON overrides, e.g. "
                                                   "'{\"steps\": 300}'."),
              name: str = typer.Option("owner-task", help="Task name in the spec."),
              allow_weak: bool = typer.Option(False, help="Import a teacher that is near chance on its own eval set."),
              force: bool = typer.Option(False, help="Write into a non-empty folder."),
              threads: Optional[int] = typer.Option(None, help="CPU threads.")):
    """Build a task folder from your own teachers and eval set(s); check and report them."""
    set_threads(threads)
    try:
        info = init_task(out, [parse_teacher(t) for t in teacher], [parse_eval(e) for e in eval_set], classes,
                         parse_floats(mean, "--mean"), parse_floats(std, "--std"),
                         _json_arg(student, "--student"), _json_arg(recipe, "--recipe"), name, allow_weak, force)
    except ImportRefused as exc:
        fail(str(exc))
    _print_accuracy(info["accuracy"])
    emit(info)


@app.command("add-eval")
def task_add_eval(task_dir: Path = typer.Option(..., help="The task folder (from `codream task init`)."),
                  eval_set: str = typer.Option(..., "--eval", help="OWNER=PATH: the joining owner's eval set.")):
    """A co-owner adds its own eval set to a task folder (checked against the task's teachers)."""
    try:
        src = parse_eval(eval_set)
        if "=" not in eval_set:
            fail("--eval: name the joining owner, OWNER=PATH")
        out = add_eval(task_dir, src, load_spec(task_dir / "spec.json"))
    except (ImportRefused, SpecError, TeacherError) as exc:
        fail(str(exc))
    _print_accuracy(out["accuracy"])
    emit(out)


@app.command("harvest")
def task_harvest(task_id: Optional[int] = typer.Argument(None, help="Task id (harvest from the chain)."),
                 bundles: Optional[Path] = typer.Option(None, help="Harvest manifest JSON (accepted bundles with "
                                                        "miner, CID, score, novelty; spec path or CID)."),
                 out: Path = typer.Option(..., help="Output folder (rerun with the same folder to resume)."),
                 task_dir: Optional[Path] = typer.Option(None, help="Your task folder: its owners' eval sets "
                                                         "measure the student."),
                 eval_set: list[Path] = typer.Option([], "--eval", help="Eval set(s) (safetensors) to measure on."),
                 train: Optional[Path] = typer.Option(None, help="Your own training images (safetensors or PNG "
                                                      "folder + labels.csv): adds a real-data student."),
                 steps: Optional[int] = typer.Option(None, help="Distillation steps (default: full length, "
                                                     "at least 60 epochs)."),
                 baselines: bool = typer.Option(True, "--baselines/--no-baselines",
                                                help="Also distil on noise (and on --train) with the same recipe."),
                 threads: Optional[int] = typer.Option(None, help="CPU threads (keep equal when resuming)."),
                 rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
                 ipfs_api: Optional[str] = IPFS_API):
    """Fetch the accepted bundles, merge them, distil a student (resumable), write a model card."""
    if (bundles is None) == (task_id is None):
        fail("give a task id (harvest from the chain) or --bundles MANIFEST, not both")
    set_threads(threads)
    ipfs = open_ipfs(ipfs_api)
    try:
        if bundles is not None:
            m = load_manifest(bundles, ipfs)
        else:
            m = _manifest_from_chain(task_id, task_dir, ipfs, rpc_url, deployment)
        evals, names = {}, None
        if task_dir is not None:
            evals.update(eval_images_for(task_dir, m.spec))
            names = [t["name"] for t in read_task_folder(task_dir).get("teachers", [])] or None
        for p in eval_set:
            evals[p.stem] = load_eval_set(p, m.spec)
        tr = None
        if train is not None:
            x, y, _ = load_eval_source(train)
            tr = (x, y)
        card = harvest(m.spec, m.bundles, out, evals=evals, train=tr, steps=steps, task_id=m.task_id,
                       paid_wei=m.paid_wei, ipfs=ipfs, threads=threads, baselines=baselines,
                       log=lambda s: typer.echo(s, err=True), teacher_names=names)
    except (HarvestError, ImportRefused, EvalSetError, TeacherError, CheckpointMismatch, ChainError, SpecError,
            IpfsError) as exc:
        fail(str(exc))
    emit({"out": str(out), "student": str(out / "student.safetensors"), "model_card": str(out / "MODEL_CARD.md"),
          "accuracy": card["accuracy"], "images": card["training"]["images"], "steps": card["training"]["recipe"]["steps"]})


def _manifest_from_chain(task_id: int, task_dir: Optional[Path], ipfs, rpc_url, deployment) -> Manifest:
    """The accepted bundles of a finalized task and what its owners paid, read from the chain."""
    chain = open_chain(rpc_url, deployment, None, need_account=False)
    spec = load_spec(task_dir / "spec.json") if task_dir is not None else None
    return manifest_from_chain(chain, task_id, ipfs, spec)


def _json_arg(text: Optional[str], flag: str):
    if text is None:
        return None
    try:
        v = json.loads(Path(text).read_text() if Path(text).is_file() else text)
    except json.JSONDecodeError as exc:
        fail(f"{flag}: not JSON ({exc})")
    if not isinstance(v, dict):
        fail(f"{flag}: a JSON object")
    return v
