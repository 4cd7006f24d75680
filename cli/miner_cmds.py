"""`codream miner ...`: dream bundles offline, or run the mining agent."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from codream import spec as specmod
from codream.bundle import Binding, write
from codream.chain import ChainError
from codream.devchain import DEVNET_CHAIN_ID
from codream.preview import write_grid
from codream.spec import receipt_config
from codream.teachers import TeacherError, load_teachers
from codream.market import miner_rows
from ipfs import IpfsError, cid_of_file
from miner.agent import MinerAgent
from miner.methods import METHODS, check_receipt_support, synthesize_new
from miner.ray_backend import RayBackend
from miner.strategies import STRATEGIES, Copy, Honest, LeakedEval, LowEffort, Noise, Spam, TransformedCopy

from .common import ACCOUNT, CONFS, DEPLOYMENT, IPFS_API, ONE_SHOT_RETRY, RPC, address_option, emit, fail, \
    open_chain, open_ipfs, pick_device, run_agent, set_threads
from .views import JSON, render_miner, show

app = typer.Typer(help="Mine dreams.", no_args_is_help=True)
ZERO = "0x" + "0" * 40


def _ray_option():
    return typer.Option(None, "--ray-address", help="Dream the bundle's shards (its batches) as jobs on a Ray "
                        "cluster: its address (host:6379, ray://host:10001), auto (the cluster this machine is in) "
                        "or local (start one here). Each job asks for --threads CPUs (default 1), and a GPU with "
                        "--device cuda; the bundle is the same bytes as without the flag at the same threads. "
                        "Pixel method only. Needs the `ray` extra (docs/scale-out.md).")


def _ray_backend(address: Optional[str], method: str, device: str, threads: Optional[int]):
    """The Ray backend for --ray-address (None without it: then nothing imports ray) and the device
    its jobs ask for (auto: cpu; this machine needs no GPU for the cluster's)."""
    if address is None:
        return None, device
    device = "cpu" if device == "auto" else device
    if method != "pixel":
        fail(f"--ray-address: --method {method} cannot be sharded (each batch depends on the ones before); "
             "use --method pixel (docs/scale-out.md)")
    if device not in ("cpu", "cuda"):  # the workers need the GPU, not this process: no local check
        fail("--ray-address: give --device cpu or cuda (what each job asks the cluster for)")
    try:
        return RayBackend(address, threads or 1, device), device
    except (RuntimeError, ConnectionError, ValueError) as exc:
        fail(f"--ray-address {address}: {exc}")


@app.command("dream")
def miner_dream(task_spec: Path = typer.Option(..., help="Task spec JSON."),
                n: int = typer.Option(1000, help="Number of dreams."),
                out: Path = typer.Option(..., help="Bundle file to write (safetensors)."),
                method: str = typer.Option("pixel", help="pixel: optimise each batch's pixels (default); "
                                           "generator: a meta-learned generator, a few steps per batch (faster)."),
                steps: Optional[int] = typer.Option(None, help="Optimisation steps per batch (generator: after "
                                                    "the first batch)."),
                batch: Optional[int] = typer.Option(None, help="Dreams optimised at once (bounds memory)."),
                seed: int = typer.Option(0, help="Seed: the same seed gives the same bundle on CPU."),
                device: str = typer.Option("auto", help="auto, cpu or cuda."),
                amp: bool = typer.Option(False, "--amp", help="bf16 mixed precision (CUDA only)."),
                threads: Optional[int] = typer.Option(
                    None, help="CPU threads (the checks; each pixel shard dreams at one: --ray-address local runs "
                               "shards side by side)."),
                preview: Optional[Path] = typer.Option(None, help="Also write a labelled PNG grid."),
                chain_id: int = typer.Option(DEVNET_CHAIN_ID, help="Binding: chain id."),
                contract: str = address_option(ZERO, "--contract", help="Binding: market address."),
                task_id: int = typer.Option(0, help="Binding: task id."),
                miner: str = address_option(ZERO, "--miner", help="Binding: the miner's address."),
                ray_address: Optional[str] = _ray_option()):
    """Dream a bundle for a task, offline: its own near-twins and self-derived images are dropped
    and replaced (the verifier pays for new images only; docs/dreams.md)."""
    if method not in METHODS:
        fail(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    try:
        spec = specmod.load(task_spec)
        if not spec.bundle.min_images <= n <= spec.bundle.max_images:
            fail(f"--n {n}: the task accepts {spec.bundle.min_images}..{spec.bundle.max_images} dreams")
        receipt = receipt_config(spec)
        if device == "auto" and receipt["required"]:
            device = "cpu"  # its verifiers replay on their CPUs: a GPU's dreams would not match
        binding = Binding(chain_id, contract, task_id, miner)
        if receipt["required"] and receipt["bound"] and 0 in (int(contract, 16), int(miner, 16)):
            print("note: this task binds synthesis receipts to their submission, and this bundle is bound to no "
                  "market or miner: `verifier score` takes it as it is; to submit it, dream with --contract, "
                  "--task-id and --miner", file=sys.stderr)
        try:  # before any work: the bundle would be INVALID
            check_receipt_support(spec, method, amp, pick_device(device), n, seed, steps, batch, binding)
        except ValueError as exc:
            fail(str(exc))
        teachers = load_teachers(spec)
    except (specmod.SpecError, TeacherError) as exc:
        fail(str(exc))
    except IpfsError as exc:
        fail(f"cannot fetch the task's teachers: {exc}")
    backend, dev = _ray_backend(ray_address, method, device, threads)  # a cluster only for a valid task
    dev = dev if backend is not None else pick_device(device)
    set_threads(threads or (1 if backend is not None else None))  # the checks here; the shards: per job
    res = synthesize_new(spec, teachers, n, method, seed=seed, steps=steps, batch=batch, device=dev, amp=amp,
                         progress=True, run_shards=backend.run_shards if backend is not None else None,
                         binding=binding)
    write(out, res.images, binding,
          res.receipt.to_json() if res.receipt is not None else None)
    if preview:
        write_grid(res.images, res.labels, preview)
    emit({"bundle": str(out), "cid": cid_of_file(out), "n": len(res.images), "device": dev, "method": method,
          "seconds": round(res.stats["seconds"], 2), "dreams_per_second": round(res.stats["dreams_per_second"], 1),
          "repeats_first_pass": res.stats["repeats_first_pass"], "repeats_dropped": res.stats["repeats_dropped"],
          "top_up_rounds": res.stats["top_up_rounds"]})


def _strategy(name: str, steps: Optional[int], device: str, method: str, amp: bool, copy_from: Optional[str],
              copy_cid: Optional[str],
              transform_how: Optional[str], copies: int, backend=None):
    """The strategy object for `miner run --strategy NAME` (every one but honest is a demo adversary)."""
    if name not in STRATEGIES:
        fail(f"--strategy must be one of {', '.join(STRATEGIES)}", 2)
    if name in ("copy", "transformed-copy") and not (copy_from or copy_cid):
        fail(f"--strategy {name} needs --copy-from BUNDLE or --copy-cid CID", 2)
    if name == "transformed-copy" and not transform_how:
        fail("--strategy transformed-copy needs --transform shift|flip|noise|partial", 2)
    try:
        return {"honest": lambda: Honest(steps, device, method, amp, backend), "low-effort": lambda: LowEffort(steps or 3, device),
                "noise": Noise, "spam": lambda: Spam(copies), "eval-images": LeakedEval,
                "copy": lambda: Copy(copy_from, copy_cid),
                "transformed-copy": lambda: TransformedCopy(transform_how, copy_from, copy_cid)}[name]()
    except ValueError as exc:
        fail(str(exc), 2)


@app.command("run")
def miner_run(task: Optional[int] = typer.Option(None, "--task", help="Only this task id."),
              n: int = typer.Option(1000, help="Dreams per bundle."),
              steps: Optional[int] = typer.Option(None, help="Optimisation steps per batch."),
              method: str = typer.Option("pixel", help="pixel (default) or generator (a meta-learned generator; "
                                         "faster per dream, `codream bench dreams`)."),
              device: str = typer.Option("auto", help="auto, cpu or cuda."),
              amp: bool = typer.Option(False, "--amp", help="bf16 mixed precision for synthesis (CUDA only; ignored on CPU)."),
              threads: Optional[int] = typer.Option(
                  None, help="CPU threads (the checks; each pixel shard dreams at one: --ray-address local runs "
                             "shards side by side)."),
              poll: float = typer.Option(2.0, help="Seconds between passes over the tasks."),
              until_idle: bool = typer.Option(False, "--until-idle", help="Exit once every task it joined is settled."),
              claim: bool = typer.Option(True, "--claim/--no-claim", help="Withdraw rewards automatically."),
              strategy: str = typer.Option("honest", hidden=True, help="TEST/DEMO ADVERSARIES ONLY: " +
                                           ", ".join(STRATEGIES) + "."),
              copy_from: Optional[str] = typer.Option(None, hidden=True, help="copy: a leaked bundle file."),
              copy_cid: Optional[str] = typer.Option(None, hidden=True, help="copy: a revealed bundle's CID."),
              transform_how: Optional[str] = typer.Option(None, "--transform", hidden=True,
                                                          help="transformed-copy: shift, flip, noise or partial."),
              copies: int = typer.Option(5, hidden=True, help="spam: submissions per task."),
              rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
              account: Optional[str] = ACCOUNT, confirmations: int = CONFS, ipfs_api: Optional[str] = IPFS_API,
              ray_address: Optional[str] = _ray_option()):
    """Find open tasks, dream, commit, reveal, claim. Resumes safely after being killed."""
    if ray_address is not None and strategy != "honest":
        fail("--ray-address: only the honest strategy dreams on a cluster", 2)
    backend, dev = _ray_backend(ray_address, method, device, threads)
    dev = dev if backend is not None else pick_device(device)
    set_threads(threads or (1 if backend is not None else None))
    chosen = _strategy(strategy, steps, dev, method, amp, copy_from, copy_cid, transform_how, copies, backend)
    chain = open_chain(rpc_url, deployment, account, confirmations, patient_start=True)  # an agent
    if task is not None and not 1 <= task <= chain.call("taskCount"):
        fail(f"--task {task}: there is no task {task} on this market ({chain.call('taskCount')} tasks; "
             "`codream task list`)")
    run_agent(MinerAgent(chain, open_ipfs(ipfs_api), n, chosen, task, claim), poll, until_idle)


@app.command("status")
def miner_status(address: Optional[str] = address_option(None, "--address", help="Default: the --account's address."),
                 as_json: bool = JSON, rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
                 account: Optional[str] = ACCOUNT):
    """Your submissions: phase, time left, median, verdict and why, reward, bond, net, in ETH."""
    chain = open_chain(rpc_url, deployment, account, need_account=address is None, retry_seconds=ONE_SHOT_RETRY)
    who = address or chain.account.address
    try:
        show({"address": who, "claimable_wei": chain.call("claimable", who), "submissions": miner_rows(chain, who)},
             as_json, render_miner)
    except ChainError as exc:
        fail(str(exc))
