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
task_app = typer.Typer(help="Task owners: create tasks, reveal eval sets, inspect tasks.", no_args_is_help=True)
account_app = typer.Typer(help="Encrypted keystores.", no_args_is_help=True)
app.add_typer(task_app, name="task")
app.add_typer(account_app, name="account")

# ----------------------------------------------------------------------------- chain options
RPC = typer.Option(None, "--rpc-url", help="JSON-RPC endpoint (default $CODREAM_RPC_URL or the devnet).")
DEPLOYMENT = typer.Option(None, "--deployment", help="Deployment record (default: the devnet's).")
ACCOUNT = typer.Option(None, "--account", help="dev:N (devnet dev account) or a keystore file "
                       "(password: $CODREAM_KEYSTORE_PASSWORD or prompt). Default $CODREAM_ACCOUNT.")
CONFS = typer.Option(1, "--confirmations", help="Blocks to wait after each transaction.")
IPFS_API = typer.Option(None, "--ipfs-api", help="Kubo RPC API (default $CODREAM_IPFS_API).")


def _chain(rpc_url, deployment, account, confirmations=1, need_account=True):
    import os

    from .chain import Chain, ChainConfig, ChainError, load_account
    from .deploy import DeployError

    account = account or os.environ.get("CODREAM_ACCOUNT")
    try:
        acct = load_account(account) if account else None
        if need_account and acct is None:
            fail("no account: pass --account dev:N (devnet) or --account path/to/keystore.json")
        rpc = rpc_url or config.rpc_url()
        if deployment is None:
            from .deploy import load_record

            rpc = rpc_url or os.environ.get("CODREAM_RPC_URL") or load_record().get("rpc_url") or rpc
        return Chain(ChainConfig(rpc, deployment, confirmations), acct)
    except (ChainError, DeployError) as exc:
        fail(str(exc))


def _ipfs(api):
    from ipfs import IpfsClient

    return IpfsClient(api, timeout=60)


def _wei(eth: float) -> int:
    return int(round(eth * 10**18))
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


# ----------------------------------------------------------------------------- agents
@miner_app.command("run")
def miner_run(task: Optional[int] = typer.Option(None, "--task", help="Only this task id."),
              n: int = typer.Option(1000, help="Dreams per bundle."),
              strategy: str = typer.Option("honest", help="honest | noise | copy (demo adversaries)."),
              copy_from: Optional[str] = typer.Option(None, help="copy: the bundle file to copy."),
              steps: Optional[int] = typer.Option(None), device: str = typer.Option("auto"),
              threads: Optional[int] = typer.Option(None), poll: float = typer.Option(2.0),
              until_idle: bool = typer.Option(False, help="Exit once every task it joined is settled."),
              no_claim: bool = typer.Option(False, help="Do not withdraw rewards automatically."),
              rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
              account: Optional[str] = ACCOUNT, confirmations: int = CONFS, ipfs_api: Optional[str] = IPFS_API):
    """Find open tasks, dream, commit, reveal, claim. Resumes safely after being killed."""
    from miner.agent import MinerAgent

    if strategy not in ("honest", "noise", "copy"):
        fail("--strategy must be honest, noise or copy")
    dev = _device(device)
    if threads:
        import torch

        torch.set_num_threads(threads)
    chain = _chain(rpc_url, deployment, account, confirmations)
    MinerAgent(chain, _ipfs(ipfs_api), n, strategy, copy_from, task, steps, dev, not no_claim).run(poll, until_idle)


@verifier_app.command("run")
def verifier_run(stake: float = typer.Option(1.0, help="ETH to stake on first start."),
                 threads: int = typer.Option(1, help="Scoring threads (keep equal across verifiers)."),
                 poll: float = typer.Option(2.0), until_idle: bool = typer.Option(False),
                 no_claim: bool = typer.Option(False), no_keeper: bool = typer.Option(False,
                 help="Do not request draws or finalize (others may)."),
                 rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
                 account: Optional[str] = ACCOUNT, confirmations: int = CONFS,
                 ipfs_api: Optional[str] = IPFS_API):
    """Stake, get drawn, score bundles, commit and reveal scores, finalize, claim."""
    from verifier.agent import VerifierAgent

    chain = _chain(rpc_url, deployment, account, confirmations)
    VerifierAgent(chain, _ipfs(ipfs_api), _wei(stake), threads, not no_claim, not no_keeper).run(poll, until_idle)


# ----------------------------------------------------------------------------- task owner
@task_app.command("create")
def task_create(task_dir: Path = typer.Option(..., help="Folder from `codream teacher train`."),
                bounty: float = typer.Option(1.0, help="ETH."), bond: float = typer.Option(0.01, help="Miner bond, ETH."),
                committee: int = typer.Option(3), fee_bps: int = typer.Option(1000, help="Verifiers' share."),
                windows: str = typer.Option("600,600,600,600,600",
                                            help="Seconds: commit,reveal,evalReveal,scoreCommit,scoreReveal."),
                auto_reveal: bool = typer.Option(False, "--auto-reveal", help="Wait and reveal the eval set."),
                rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
                account: Optional[str] = ACCOUNT, confirmations: int = CONFS, ipfs_api: Optional[str] = IPFS_API):
    """Publish teacher and spec, commit to the eval set, fund the bounty."""
    from ipfs import IpfsError

    from .chain import ChainError
    from .owner import auto_reveal as do_auto_reveal, create_task

    try:
        w = [int(x) for x in windows.split(",")]
        if len(w) != 5:
            raise ValueError
    except ValueError:
        fail("--windows: five integers, e.g. 600,600,600,600,600")
    chain, ipfs = _chain(rpc_url, deployment, account, confirmations), _ipfs(ipfs_api)
    try:
        out = create_task(chain, ipfs, task_dir, _wei(bounty), _wei(bond), committee, w, fee_bps)
        emit(out)
        if auto_reveal:
            emit({"eval_cid": do_auto_reveal(chain, ipfs, out["task_id"])})
    except (ChainError, IpfsError, ValueError) as exc:
        fail(str(exc))


@task_app.command("reveal-eval")
def task_reveal_eval(task_id: int, rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
                     account: Optional[str] = ACCOUNT, confirmations: int = CONFS,
                     ipfs_api: Optional[str] = IPFS_API):
    """Pin the eval set and reveal it (inside the eval-reveal window)."""
    from ipfs import IpfsError

    from .chain import ChainError
    from .owner import reveal_eval

    try:
        emit({"task_id": task_id, "eval_cid": reveal_eval(_chain(rpc_url, deployment, account, confirmations),
                                                          _ipfs(ipfs_api), task_id)})
    except (ChainError, IpfsError, ValueError) as exc:
        fail(str(exc))


@task_app.command("show")
def task_show(task_id: int, rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT):
    """Phase, time left, submissions, committee, scores and results of a task."""
    from .chain import ChainError
    from .owner import show_task

    try:
        emit(show_task(_chain(rpc_url, deployment, None, need_account=False), task_id))
    except ChainError as exc:
        fail(str(exc))


@app.command("rewards")
def rewards_cmd(address: Optional[str] = typer.Option(None, help="Default: the --account's address."),
                rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
                account: Optional[str] = ACCOUNT):
    """Claimable balance, stake (apart from earnings), pending bonds, history."""
    from .chain import ChainError
    from .owner import rewards

    chain = _chain(rpc_url, deployment, account, need_account=address is None)
    try:
        emit(rewards(chain, address or chain.account.address))
    except ChainError as exc:
        fail(str(exc))


@app.command("claim")
def claim_cmd(rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
              account: Optional[str] = ACCOUNT, confirmations: int = CONFS):
    """Withdraw everything claimable for the account."""
    from .chain import ChainError

    chain = _chain(rpc_url, deployment, account, confirmations)
    owed = chain.call("claimable", chain.account.address)
    if not owed:
        fail("nothing to claim for this address yet", 1)
    try:
        receipt = chain.send("withdraw")
    except ChainError as exc:
        fail(str(exc))
    emit({"address": chain.account.address, "withdrawn_wei": owed, "tx": receipt.transactionHash.hex()})


@app.command("deploy")
def deploy_cmd(network: str = typer.Option(..., help="Name for the record, e.g. sepolia or rehearsal."),
               rpc_url: str = typer.Option(..., "--rpc-url", help="JSON-RPC endpoint of that network."),
               account: Optional[str] = ACCOUNT, confirmations: int = CONFS):
    """Deploy CoDreamMarket from a keystore account; write $CODREAM_HOME/deployments/NETWORK.json.
    (brownie users: `brownie run scripts/deploy.py --network codream-sepolia` does the same.)"""
    import os

    from .chain import ChainError, load_account
    from .deploy import DeployError, deploy

    spec = account or os.environ.get("CODREAM_ACCOUNT")
    if not spec:
        fail("--account: a keystore file (or dev:N on a devnet)")
    try:
        path = deploy(rpc_url, load_account(spec), network, confirmations)
    except (ChainError, DeployError) as exc:
        fail(str(exc))
    rec = json.loads(path.read_text())
    emit({"record": str(path), "address": rec["contracts"]["CoDreamMarket"]["address"], "chain_id": rec["chain_id"]})


@app.command("dapp")
def dapp_cmd(port: int = typer.Option(8080), host: str = typer.Option("127.0.0.1"),
             deployment: Optional[str] = DEPLOYMENT, rpc_url: Optional[str] = RPC,
             gateway: str = typer.Option("http://127.0.0.1:5001/ipfs/", help="IPFS gateway for CIDs and previews.")):
    """Serve the dapp (static page + the deployment record) on http://HOST:PORT/."""
    from .dapp import serve

    try:
        serve(host, port, deployment=deployment, rpc_url=rpc_url, gateway=gateway)
    except FileNotFoundError as exc:
        fail(str(exc))


@account_app.command("new")
def account_new(path: Path = typer.Argument(..., help="Keystore file to create.")):
    """Create an encrypted keystore (password from $CODREAM_KEYSTORE_PASSWORD or a prompt)."""
    import getpass
    import os

    from .chain import new_keystore

    if path.exists():
        fail(f"{path} exists; refusing to overwrite a keystore")
    pw = os.environ.get("CODREAM_KEYSTORE_PASSWORD") or getpass.getpass("new keystore password: ")
    emit({"address": new_keystore(path, pw), "keystore": str(path)})


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


@bench_app.command("e2e")
def bench_e2e_cmd(n: int = typer.Option(1000, help="Dreams per bundle.")):
    """Time a full `make demo` round (devnet, teacher, 3 miners, 3 verifiers, settlement)."""
    import contextlib
    import io
    import os
    import tempfile
    import time

    from rich.console import Console

    from .demo import Demo
    from .devnet import free_port as port

    with tempfile.TemporaryDirectory() as home:
        os.environ["CODREAM_HOME"] = home
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            result = Demo(n=n, anvil_port=port(), ipfs_port=port(), con=Console(file=io.StringIO())).run()
        total = time.perf_counter() - t0
    rows = {r["role"]: r["net_wei"] for r in result["rows"]}
    emit({"e2e_seconds": round(total, 1), "round_seconds": result["seconds"], "n_dreams": n,
          "goal_seconds": 300, "met": total < 300, "net_wei": rows})


@bench_app.command("all")
def bench_all():
    """Every benchmark, one JSON object keyed by name."""
    from .bench import bench_cid, bench_dreams_and_verify

    dv = bench_dreams_and_verify()
    from .gasbench import bench_gas

    out = {"cid": bench_cid(), "gas": bench_gas(), "dreams": dv["dreams"], "verify": dv["verify"]}
    import subprocess
    import sys

    e2e = subprocess.run([sys.executable, "-m", "codream.cli", "bench", "e2e"], capture_output=True, text=True)
    out["e2e"] = json.loads(e2e.stdout) if e2e.returncode == 0 else {"error": e2e.stderr[-2000:]}
    emit(out)


@bench_app.command("dreams")
def bench_dreams_cmd(baseline_steps: int = typer.Option(2000, help="DeepInversion steps per batch."),
                     seeds: int = typer.Option(3, min=1, help="Dream seeds for the gap-closed spread.")):
    """Digits reference: teacher, noise/dreams/real students, gap closed, dreams/s vs DeepInversion."""
    from .bench import bench_dreams_and_verify

    emit(bench_dreams_and_verify(baseline_steps=baseline_steps, verify=False, seeds=seeds)["dreams"])


@bench_app.command("verify")
def bench_verify_cmd():
    """Score time, score/synthesis ratio, reruns, 1 vs 2 threads."""
    from .bench import bench_dreams_and_verify

    emit(bench_dreams_and_verify(baseline=False, seeds=1)["verify"])


@app.command("demo")
def demo(keep_up: bool = typer.Option(False, "--keep-up", help="Leave the devnet running afterwards."),
         n: int = typer.Option(1000, help="Dreams per bundle."),
         json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the result as JSON here.")):
    """Run a full network round on a local devnet (3 miners, 3 verifiers, settlement)."""
    from .demo import run
    from .devnet import DevnetError

    try:
        result = run(keep_up, n)
    except (DevnetError, RuntimeError) as exc:
        fail(str(exc))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2, default=str))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
