"""`codream devnet ...`: a local devnet (anvil + the IPFS dev node + the market)."""
from __future__ import annotations

from typing import Optional

import typer

from codream.deployment import DeploymentError

from . import devnet
from .common import emit, fail

app = typer.Typer(help="A local devnet: anvil + the IPFS dev node.", no_args_is_help=True)
ANVIL_PORT = typer.Option(8545, help="anvil's JSON-RPC port.")
IPFS_PORT = typer.Option(5001, help="The IPFS node's RPC/gateway port.")


@app.command("up")
def devnet_up(anvil_port: int = ANVIL_PORT, ipfs_port: int = IPFS_PORT,
              block_time: Optional[float] = typer.Option(None, help="Seconds per block (default: on demand)."),
              deploy: bool = typer.Option(True, help="Deploy CoDreamMarket and write the deployment record.")):
    """Start anvil and the IPFS node in the background, wait until both answer, deploy."""
    try:
        emit(devnet.up(anvil_port, ipfs_port, block_time, deploy=deploy))
    except (devnet.DevnetError, DeploymentError, FileNotFoundError) as exc:
        fail(str(exc))


@app.command("status")
def devnet_status(anvil_port: int = ANVIL_PORT, ipfs_port: int = IPFS_PORT):
    """Show what runs, where, and whether it answers."""
    emit(devnet.status(anvil_port, ipfs_port))


@app.command("down")
def devnet_down(anvil_port: int = ANVIL_PORT, ipfs_port: int = IPFS_PORT):
    """Stop the devnet's services."""
    stopped = devnet.down(anvil_port, ipfs_port)
    typer.echo(f"stopped: {', '.join(stopped) or 'nothing was running'}")
