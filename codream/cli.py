"""The ``codream`` command line. Subcommands group by role: ipfs, devnet, bench, ..."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from . import config

app = typer.Typer(help="CoDream Network: mine dreams, verify them, get paid.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
ipfs_app = typer.Typer(help="Content addressing and the IPFS node.", no_args_is_help=True)
devnet_app = typer.Typer(help="A local devnet: anvil + the IPFS dev node.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks; each prints JSON.", no_args_is_help=True)
teacher_app = typer.Typer(help="Train reference teachers (task owners).", no_args_is_help=True)
miner_app = typer.Typer(help="Mine dreams.", no_args_is_help=True)
verifier_app = typer.Typer(help="Validate and score bundles.", no_args_is_help=True)
app.add_typer(ipfs_app, name="ipfs")
app.add_typer(teacher_app, name="teacher")
app.add_typer(miner_app, name="miner")
app.add_typer(verifier_app, name="verifier")
app.add_typer(devnet_app, name="devnet")
app.add_typer(bench_app, name="bench")


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def emit(obj) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True))


# ----------------------------------------------------------------------------- ipfs
@ipfs_app.command("add")
def ipfs_add(path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
             only_hash: bool = typer.Option(False, "--only-hash", help="Compute the CID; send nothing."),
             cid_version: int = typer.Option(1, help="0 reproduces Kubo's legacy CIDv0 defaults."),
             api: Optional[str] = typer.Option(None, help="Kubo RPC API (default $CODREAM_IPFS_API).")):
    """Add and pin a file (unixfs-v1-2025 profile); print its CID and nothing else."""
    from ipfs import KUBO_LEGACY_V0, UNIXFS_V1_2025, IpfsClient, IpfsError, cid_of_file

    profile = UNIXFS_V1_2025 if cid_version == 1 else KUBO_LEGACY_V0
    if only_hash:
        typer.echo(cid_of_file(path, profile))
        return
    try:
        typer.echo(IpfsClient(api, profile=profile).add_file(path))
    except IpfsError as exc:
        fail(str(exc))


@ipfs_app.command("cat")
def ipfs_cat(cid: str,
             output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write here instead of stdout."),
             max_bytes: int = typer.Option(256 << 20, help="Refuse content larger than this."),
             api: Optional[str] = typer.Option(None, help="Kubo RPC API (default $CODREAM_IPFS_API).")):
    """Fetch content by CID (verified against the CID) to stdout or a file."""
    from ipfs import IpfsClient, IpfsError

    try:
        client = IpfsClient(api)
        if output:
            client.cat_to_file(cid, output, max_bytes=max_bytes)
        else:
            sys.stdout.buffer.write(client.cat(cid, max_bytes=max_bytes))
            sys.stdout.buffer.flush()
    except IpfsError as exc:
        fail(str(exc))


@ipfs_app.command("serve")
def ipfs_serve(repo: Optional[Path] = typer.Option(None, help="Block store (default $CODREAM_HOME/ipfs-repo)."),
               host: str = typer.Option("127.0.0.1", help="Bind address (loopback by default)."),
               port: int = typer.Option(5001),
               max_add_bytes: int = typer.Option(4 << 30, help="Largest upload accepted.")):
    """Run the local IPFS dev node (Kubo RPC subset + /ipfs/ gateway) in the foreground."""
    from ipfs.node import serve

    serve(repo or config.home() / "ipfs-repo", host, port, max_add_bytes)


# ----------------------------------------------------------------------------- devnet
@devnet_app.command("up")
def devnet_up(anvil_port: int = typer.Option(8545), ipfs_port: int = typer.Option(5001),
              block_time: Optional[float] = typer.Option(None, help="Seconds per block (default: on demand)."),
              deploy: bool = typer.Option(True, help="Deploy CoDreamMarket and write the deployment record.")):
    """Start anvil and the IPFS node in the background, wait until both answer, deploy."""
    from .deploy import DeployError
    from .devnet import DevnetError, up

    try:
        emit(up(anvil_port, ipfs_port, block_time, deploy=deploy))
    except (DevnetError, DeployError, FileNotFoundError) as exc:
        fail(str(exc))


@devnet_app.command("status")
def devnet_status(anvil_port: int = typer.Option(8545), ipfs_port: int = typer.Option(5001)):
    """Show what runs, where, and whether it answers."""
    from .devnet import status

    emit(status(anvil_port, ipfs_port))


@devnet_app.command("down")
def devnet_down(anvil_port: int = typer.Option(8545), ipfs_port: int = typer.Option(5001)):
    """Stop the devnet's services."""
    from .devnet import down

    stopped = down(anvil_port, ipfs_port)
    typer.echo(f"stopped: {', '.join(stopped) or 'nothing was running'}")


# ----------------------------------------------------------------------------- teacher
@teacher_app.command("train")
def teacher_train(dataset: str = typer.Option("digits", help="digits (built in) or cifar10."),
                  data_path: Optional[Path] = typer.Option(None, help="cifar-10-batches-py folder (cifar10)."),
                  out: Path = typer.Option(Path("task"), help="Folder for teacher, eval set and spec."),
                  arch: Optional[str] = typer.Option(None, help="Teacher architecture (default per dataset)."),
                  epochs: int = typer.Option(40), seed: int = typer.Option(0),
                  threads: Optional[int] = typer.Option(None, help="CPU threads (default: all).")):
    """Train a teacher on real data; write teacher weights, the secret eval set and a task spec."""
    from .teacher import train_reference

    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        emit(train_reference(dataset, out, data_path=data_path, arch=arch, epochs=epochs, seed=seed))
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))


# ----------------------------------------------------------------------------- miner
def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        fail("--device cuda: no CUDA GPU is visible to torch (is a CUDA build of torch installed? "
             "see README, GPU miners). Use --device cpu or auto.")
    if name not in ("cpu", "cuda"):
        fail(f"--device must be auto, cpu or cuda, got {name!r}")
    return name


@miner_app.command("dream")
def miner_dream(task_spec: Path = typer.Option(..., help="Task spec JSON."),
                n: int = typer.Option(1000, help="Number of dreams."),
                out: Path = typer.Option(..., help="Bundle file to write (safetensors)."),
                steps: Optional[int] = typer.Option(None, help="Optimisation steps per batch."),
                batch: Optional[int] = typer.Option(None, help="Dreams optimised at once (bounds memory)."),
                seed: int = typer.Option(0), device: str = typer.Option("auto", help="auto, cpu or cuda."),
                amp: bool = typer.Option(False, help="bf16 mixed precision (CUDA only)."),
                threads: Optional[int] = typer.Option(None, help="CPU threads."),
                preview: Optional[Path] = typer.Option(None, help="Also write a labelled PNG grid."),
                chain_id: int = typer.Option(31337), contract: str = typer.Option("0x" + "0" * 40),
                task_id: int = typer.Option(0), miner: str = typer.Option("0x" + "0" * 40)):
    """Dream a bundle for a task, offline."""
    from codream import spec as specmod
    from codream.bundle import Binding, write
    from miner.synthesis import DreamConfig, dream
    from verifier.score import ScoringError, load_teachers

    dev = _device(device)
    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        spec = specmod.load(task_spec)
        if not spec.bundle["min_images"] <= n <= spec.bundle["max_images"]:
            fail(f"--n {n}: the task accepts {spec.bundle['min_images']}..{spec.bundle['max_images']} dreams")
        teachers = load_teachers(spec)
    except (specmod.SpecError, ScoringError) as exc:
        fail(str(exc))
    except Exception as exc:  # IPFS errors etc.
        fail(f"cannot load the task's teachers: {exc}")
    cfg = DreamConfig(seed=seed, amp=amp)
    if steps:
        cfg.steps = steps
    if batch:
        cfg.batch = batch
    res = dream(teachers, n, spec.num_classes, spec.shape, spec.mean, spec.std, cfg, dev, progress=True)
    write(out, res.images, Binding(chain_id, contract, task_id, miner))
    if preview:
        from miner.preview import write_grid

        write_grid(res.images, res.labels, preview)
    from ipfs import cid_of_file

    emit({"bundle": str(out), "cid": cid_of_file(out), "n": n, "device": dev,
          "seconds": round(res.stats["seconds"], 2), "dreams_per_second": round(res.stats["dreams_per_second"], 1)})


# ----------------------------------------------------------------------------- verifier
@verifier_app.command("score")
def verifier_score(task_spec: Path = typer.Option(...), bundle: Path = typer.Option(...),
                   eval: Path = typer.Option(..., "--eval", help="Revealed eval set (safetensors)."),
                   threads: Optional[int] = typer.Option(None),
                   chain_id: Optional[int] = typer.Option(None), contract: Optional[str] = typer.Option(None),
                   task_id: Optional[int] = typer.Option(None), miner: Optional[str] = typer.Option(None)):
    """Validate and score a bundle; print the verdict as JSON. Without the binding options
    the bundle's own binding is accepted (offline scoring)."""
    from codream import spec as specmod
    from codream.bundle import Binding
    from verifier.score import ScoringError, load_eval_set, load_teachers, score_bundle

    try:
        spec = specmod.load(task_spec)
        teachers = load_teachers(spec)
        ev = load_eval_set(eval, spec)
    except (specmod.SpecError, ScoringError) as exc:
        fail(str(exc))
    binding = None
    if any(v is not None for v in (chain_id, contract, task_id, miner)):
        if None in (chain_id, contract, task_id, miner):
            fail("give all of --chain-id, --contract, --task-id, --miner, or none")
        binding = Binding(chain_id, contract, task_id, miner)
    emit(score_bundle(spec, bundle, ev, teachers, binding, threads=threads))


@bench_app.command("cid")
def bench_cid_cmd(size_mb: int = typer.Option(64)):
    """CID throughput and a local-node add/cat round trip."""
    from .bench import bench_cid

    emit(bench_cid(size_mb))


@bench_app.command("gas")
def bench_gas_cmd():
    """Gas of every CoDreamMarket function (committee 5 × 16 submissions, and maximum sizes)."""
    from .gasbench import bench_gas

    emit(bench_gas())


@bench_app.command("all")
def bench_all():
    """Every benchmark, one JSON object keyed by name."""
    from .bench import bench_cid, bench_dreams_and_verify

    dv = bench_dreams_and_verify()
    from .gasbench import bench_gas

    emit({"cid": bench_cid(), "gas": bench_gas(), "dreams": dv["dreams"], "verify": dv["verify"]})


@bench_app.command("dreams")
def bench_dreams_cmd(baseline_steps: int = typer.Option(2000, help="DeepInversion steps per batch.")):
    """Digits reference: teacher, noise/dreams/real students, gap closed, dreams/s vs DeepInversion."""
    from .bench import bench_dreams_and_verify

    emit(bench_dreams_and_verify(baseline_steps=baseline_steps, verify=False)["dreams"])


@bench_app.command("verify")
def bench_verify_cmd():
    """Score time, score/synthesis ratio, reruns, 1 vs 2 threads."""
    from .bench import bench_dreams_and_verify

    emit(bench_dreams_and_verify(baseline=False)["verify"])


@app.command("demo")
def demo(keep_up: bool = typer.Option(False, "--keep-up", help="Leave the devnet running afterwards.")):
    """Run a round of the network on a local devnet."""
    from .demo import run
    from .devnet import DevnetError

    try:
        run(keep_up)
    except DevnetError as exc:
        fail(str(exc))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
