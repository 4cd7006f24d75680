"""`codream ipfs ...`: content addressing and the IPFS dev node."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from codream import config
from ipfs import KUBO_LEGACY_V0, UNIXFS_V1_2025, IpfsClient, IpfsError, cid_of_file
from ipfs.node import serve

from .common import fail

app = typer.Typer(help="Content addressing and the IPFS node.", no_args_is_help=True)
API = typer.Option(None, help="Kubo RPC API (default $CODREAM_IPFS_API).")


@app.command("add")
def ipfs_add(path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="File to add."),
             only_hash: bool = typer.Option(False, "--only-hash", help="Compute the CID; send nothing."),
             cid_version: int = typer.Option(1, help="0 reproduces Kubo's legacy CIDv0 defaults."),
             api: Optional[str] = API):
    """Add and pin a file (unixfs-v1-2025 profile); print its CID and nothing else."""
    profile = UNIXFS_V1_2025 if cid_version == 1 else KUBO_LEGACY_V0
    if only_hash:
        typer.echo(cid_of_file(path, profile))
        return
    try:
        typer.echo(IpfsClient(api, profile=profile).add_file(path))
    except IpfsError as exc:
        fail(str(exc))


@app.command("cat")
def ipfs_cat(cid: str = typer.Argument(..., help="The CID to fetch."),
             output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write here instead of stdout."),
             max_bytes: int = typer.Option(256 << 20, help="Refuse content larger than this."),
             api: Optional[str] = API):
    """Fetch content by CID (verified against the CID) to stdout or a file."""
    try:
        client = IpfsClient(api)
        if output:
            client.cat_to_file(cid, output, max_bytes=max_bytes)
        else:
            sys.stdout.buffer.write(client.cat(cid, max_bytes=max_bytes))
            sys.stdout.buffer.flush()
    except IpfsError as exc:
        fail(str(exc))


@app.command("serve")
def ipfs_serve(repo: Optional[Path] = typer.Option(None, help="Block store (default $CODREAM_HOME/ipfs-repo)."),
               host: str = typer.Option("127.0.0.1", help="Bind address (loopback by default)."),
               port: int = typer.Option(5001, help="TCP port of the RPC API and gateway."),
               max_add_bytes: int = typer.Option(4 << 30, help="Largest upload accepted.")):
    """Run the local IPFS dev node (Kubo RPC subset + /ipfs/ gateway) in the foreground."""
    serve(repo or config.home() / "ipfs-repo", host, port, max_add_bytes)
