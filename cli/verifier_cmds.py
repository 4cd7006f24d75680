"""`codream verifier ...`: score a bundle offline, or run the verifying agent."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import List, Optional

import typer
from safetensors import SafetensorError
from safetensors.torch import load_file

from codream.arithmetic import ArithmeticMismatch
from codream import spec as specmod
from codream.bundle import Binding, BundleError, read
from codream.chain import ChainError
from codream.market import eth, verifier_rows
from codream.evalset import EvalSetError, check_offline, load_eval_set
from codream.teachers import TeacherError, load_teachers
from verifier.agent import VerifierAgent
from verifier.index import NoveltyIndex, NoveltyIndexError
from verifier.ray_backend import RayBackend
from codream.novelty import reference
from codream.protocol import BPS, recipe_seed
from ipfs.cid import cid_of_file
from verifier.score import DEFAULT_THREADS, score_bundle
from verifier.strategies import STRATEGIES, Colluder, Lazy

from .common import ACCOUNT, CONFS, DEPLOYMENT, IPFS_API, ONE_SHOT_RETRY, RPC, address_of, address_option, emit, \
    eth_option, fail, open_chain, open_ipfs, pick_device, run_agent
from .views import JSON, render_verifier, show

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
                   contract: Optional[str] = address_option(None, "--contract", help="Binding: market address."),
                   task_id: Optional[int] = typer.Option(None, help="Binding: task id."),
                   miner: Optional[str] = address_option(None, "--miner", help="Binding: the miner's address."),
                   seed: Optional[int] = typer.Option(None, min=0, max=2**31 - 1,
                                                      help="The recipe seed a committee uses for this bundle "
                                                           "(default: the spec's; on chain it comes from the "
                                                           "task's judging seed and the bundle's CID: "
                                                           "--judging-seed)."),
                   judging_seed: Optional[str] = typer.Option(
                       None, "--judging-seed", help="The task's judging seed (0x + 64 hex, `codream task show`, "
                                                    "known once the reveal window closed): score with the recipe "
                                                    "seed, and replay the shard, the committee uses for this "
                                                    "bundle's CID.")):
    """Validate and score a bundle; print the verdict as JSON. What was not checked is said
    plainly, in `checked` and on stderr: without the binding options the bundle's own binding
    is taken as given; without --earlier / --index, copies of earlier work are not caught."""
    try:
        spec = specmod.load(task_spec)
        teachers = load_teachers(spec)
        ev = load_eval_set(eval, spec)
    except (specmod.SpecError, TeacherError, EvalSetError) as exc:
        fail(str(exc))
    eval_check, teacher_bps = check_offline(spec, teachers, ev)
    if not eval_check.ok:  # say it before the (long) scoring
        print(f"warning: the task's teachers score {teacher_bps / 100:.1f} % on this eval set, near chance "
              f"({100 / spec.num_classes:.1f} %), so a score on it means little (a committee would fail this set: "
              f"{eval_check.reason}); check its labels", file=sys.stderr)
    if judging_seed is not None:
        if seed is not None:
            fail("give --seed or --judging-seed, not both")
        try:
            raw = bytes.fromhex(judging_seed[2:] if judging_seed.startswith("0x") else judging_seed)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            fail(f"--judging-seed: expected 0x and 64 hex digits (32 bytes), got {judging_seed[:80]!r}")
        try:
            seed = recipe_seed(raw, cid_of_file(bundle))
        except OSError as exc:
            fail(f"{bundle}: {exc.strerror or exc}")
    binding = None
    if any(v is not None for v in (chain_id, contract, task_id, miner)):
        if None in (chain_id, contract, task_id, miner):
            fail("give all of --chain-id, --contract, --task-id, --miner, or none")
        binding = Binding(chain_id, contract, task_id, miner)
    refs = [reference("earlier_submission", f"submission {i} ({p.name})", _images_of(p), spec)
            for i, p in enumerate(earlier or [])]
    novelty_index = NoveltyIndex(index) if index is not None else None
    try:
        out = score_bundle(spec, bundle, ev, teachers, binding, refs, novelty_index, threads=threads,
                           device=pick_device(device), seed=seed)
    except (NoveltyIndexError, ArithmeticMismatch) as exc:
        fail(str(exc))
    missing = [k.replace("_", " ") for k, v in out["checked"].items()
               if isinstance(v, str) and (v.startswith("NOT CHECKED") or v == "none given")]
    if missing:
        print(f"note: not checked offline: {', '.join(missing)} (see `checked` in the JSON)", file=sys.stderr)
    out["eval_check"] = {"verdict": eval_check.verdict.name, "teacher_accuracy_bps": teacher_bps,
                         "chance_bps": BPS // spec.num_classes, "reason": eval_check.reason}
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


@app.command("wait")
def verifier_wait(address: Optional[str] = address_option(None, "--address", help="Default: the --account's address."),
                  active: bool = typer.Option(False, "--active", help="Wait until its stake is active (warmed up and "
                                              "activated), not just deposited."),
                  timeout: float = typer.Option(600, help="Give up after this many seconds (exit 1)."),
                  rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
                  account: Optional[str] = ACCOUNT):
    """Wait until a verifier has staked (or, with --active, its stake counts in draws)."""
    chain = open_chain(rpc_url, deployment, account, need_account=address is None, retry_seconds=ONE_SHOT_RETRY)
    who = address or chain.account.address
    deadline = time.monotonic() + timeout
    try:
        while True:
            held = chain.call("stakeOf", who, on="registry")
            live = chain.view("info", who, on="registry")["stake"]
            if (live if active else held) > 0:
                emit({"address": who, "stake_wei": held, "active_stake_wei": live})
                return
            if time.monotonic() > deadline:
                fail(f"{who}: no {'active ' if active else ''}stake within {timeout:g} s")
            time.sleep(1)
    except ChainError as exc:
        fail(str(exc))


@app.command("run")
def verifier_run(stake: int = eth_option("1", "--stake", help="ETH to stake on first start."),
                 threads: int = typer.Option(DEFAULT_THREADS, help="Scoring threads (keep equal across verifiers)."),
                 device: str = typer.Option("cpu", help="auto, cpu or cuda (keep equal across verifiers)."),
                 poll: float = typer.Option(2.0, help="Seconds between passes over the tasks."),
                 until_idle: bool = typer.Option(False, "--until-idle", help="Exit once every task it joined is settled."),
                 claim: bool = typer.Option(True, "--claim/--no-claim", help="Withdraw rewards automatically."),
                 keeper: bool = typer.Option(True, "--keeper/--no-keeper",
                                             help="Request draws and finalize tasks (anyone may)."),
                 strategy: str = typer.Option("honest", hidden=True, help="TEST/DEMO ADVERSARIES ONLY: " +
                                              ", ".join(STRATEGIES) + "."),
                 constant: int = typer.Option(5000, hidden=True, help="lazy: the score it reveals."),
                 rival: Optional[str] = typer.Option(None, hidden=True, parser=address_of("--rival"),
                                                     help="colluder: the miner it targets."),
                 mode: str = typer.Option("invalid", hidden=True, help="colluder: invalid or zero."),
                 rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
                 account: Optional[str] = ACCOUNT, confirmations: int = CONFS,
                 ipfs_api: Optional[str] = IPFS_API,
                 ray_address: Optional[str] = typer.Option(
                     None, "--ray-address", help="Score bundles as jobs on a Ray cluster: its address "
                     "(host:6379, ray://host:10001), auto (the cluster this machine is in) or local (start one "
                     "here). Each job asks for --threads CPUs, and a GPU with --device cuda. The key, the "
                     "state and the chain stay in this process. Needs the `ray` extra (docs/scale-out.md).")):
    """Stake (it counts once warmed up), get drawn, check eval sets, score bundles, commit and reveal,
    appeal results your scores contradict, serve on appeal committees, settle, claim."""
    if strategy not in STRATEGIES:
        fail(f"--strategy must be one of {', '.join(STRATEGIES)}", 2)
    if strategy == "colluder" and not rival:
        fail("--strategy colluder needs --rival MINER_ADDRESS", 2)
    try:
        chosen = {"lazy": lambda: Lazy(constant), "colluder": lambda: Colluder(rival, mode)}.get(
            strategy, STRATEGIES[strategy])()
    except ValueError as exc:
        fail(str(exc), 2)
    chain = open_chain(rpc_url, deployment, account, confirmations, patient_start=True)  # an agent
    staked = chain.call("stakeOf", chain.account.address, on="registry")
    if staked == 0:  # say what is wrong before starting, not every 2 s after
        minimum = chain.call("MIN_STAKE", on="registry")
        if stake < minimum:
            fail(f"--stake {eth(stake)}: a verifier stakes at least {eth(minimum)}")
        if chain.balance() < stake:
            fail(f"--stake {eth(stake)}: {chain.account.address} has only {eth(chain.balance())}"
                 + (" (devnet: `codream devnet fund ADDRESS`)" if chain.devnet else ""))
    backend = None
    if ray_address is not None:  # the workers need the GPU, not this process: no local check of --device
        if device not in ("cpu", "cuda"):
            fail("--ray-address: give --device cpu or cuda (what each job asks the cluster for)")
        try:
            backend = RayBackend(ray_address, threads, device)
        except (RuntimeError, ConnectionError, ValueError) as exc:
            fail(f"--ray-address {ray_address}: {exc}")
    run_agent(VerifierAgent(chain, open_ipfs(ipfs_api), stake, threads, claim, keeper, strategy=chosen,
                            device=device if backend is not None else pick_device(device), backend=backend),
              poll, until_idle)


@app.command("status")
def verifier_status(address: Optional[str] = address_option(None, "--address",
                                                             help="Default: the --account's address."),
                    as_json: bool = JSON, rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
                    account: Optional[str] = ACCOUNT):
    """Your stake (apart from earnings), locked seats, and per task: seats, reveals, agreements, fee, slash."""
    chain = open_chain(rpc_url, deployment, account, need_account=address is None, retry_seconds=ONE_SHOT_RETRY)
    who = address or chain.account.address
    try:
        info = chain.view("info", who, on="registry")
        pending = chain.view("pendingOf", who, on="registry")
        show({"address": who, "stake_wei": info["stake"] + pending["amount"], "active_stake_wei": info["stake"],
              "pending_stake_wei": pending["amount"], "activates_at": pending["activatesAt"] or None,
              "locked_seats": info["lockedSeats"],
              "unbonding_at": info["unbondAt"] or None, "claimable_wei": chain.call("claimable", who),
              "tasks": verifier_rows(chain, who)}, as_json, render_verifier)
    except ChainError as exc:
        fail(str(exc))


@app.command("unbond")
def verifier_unbond(rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
                    account: Optional[str] = ACCOUNT, confirmations: int = CONFS):
    """Start unbonding: no new committees; the stake can leave after the unbonding delay, once no
    committee seat locks it (`codream verifier withdraw-stake`). It cannot be cancelled."""
    chain = open_chain(rpc_url, deployment, account, confirmations, retry_seconds=ONE_SHOT_RETRY)
    try:
        receipt = chain.send("requestUnbond", on="registry")
        info = chain.view("info", chain.account.address, on="registry")
    except ChainError as exc:
        fail(str(exc))
    emit({"address": chain.account.address, "unbonding_until": info["unbondAt"],
          "tx": "0x" + bytes(receipt.transactionHash).hex()})


@app.command("withdraw-stake")
def verifier_withdraw_stake(rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
                            account: Optional[str] = ACCOUNT, confirmations: int = CONFS):
    """Send the whole stake back after unbonding (when no committee seat locks it)."""
    chain = open_chain(rpc_url, deployment, account, confirmations, retry_seconds=ONE_SHOT_RETRY)
    try:
        stake = chain.call("stakeOf", chain.account.address, on="registry")
        receipt = chain.send("withdrawStake", on="registry")
    except ChainError as exc:
        fail(str(exc))
    emit({"address": chain.account.address, "withdrawn_wei": stake, "tx": "0x" + bytes(receipt.transactionHash).hex()})
