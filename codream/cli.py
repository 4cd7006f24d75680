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
app.add_typer(ipfs_app, name="ipfs")
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
              block_time: Optional[float] = typer.Option(None, help="Seconds per block (default: on demand).")):
    """Start anvil and the IPFS node in the background and wait until both answer."""
    from .devnet import DevnetError, up

    try:
        emit(up(anvil_port, ipfs_port, block_time))
    except (DevnetError, FileNotFoundError) as exc:
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


@bench_app.command("cid")
def bench_cid_cmd(size_mb: int = typer.Option(64)):
    """CID throughput and a local-node add/cat round trip."""
    from .bench import bench_cid

    emit(bench_cid(size_mb))


@bench_app.command("all")
def bench_all():
    """Every benchmark, one JSON object keyed by name."""
    from .bench import bench_cid

    emit({"cid": bench_cid()})


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
