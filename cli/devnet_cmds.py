"""`codream devnet ...`: a local devnet (anvil + the IPFS dev node + the market)."""
from __future__ import annotations

from typing import Optional

import typer

from codream.deployment import DeploymentError

from rounds import devnet
from .common import address_of, emit, eth_amount, fail

app = typer.Typer(help="A local devnet: anvil + the IPFS dev node.", no_args_is_help=True)
# The defaults are read from the environment when the CLI starts; the help states the rule once.
ANVIL_PORT = typer.Option(devnet.default_ports()[0], show_default=False,
                          help="anvil's JSON-RPC port. Default: the port of $CODREAM_RPC_URL when it is on 127.0.0.1 "
                               "or localhost, else 8545.")
IPFS_PORT = typer.Option(devnet.default_ports()[1], show_default=False,
                         help="The IPFS node's RPC/gateway port. Default: the port of $CODREAM_IPFS_API when it is "
                              "/ip4/127.0.0.1/tcp/PORT/http, else 5001.")


@app.command("up")
def devnet_up(anvil_port: int = ANVIL_PORT, ipfs_port: int = IPFS_PORT,
              block_time: Optional[float] = typer.Option(None, help="Seconds per block (default: on demand)."),
              deploy: bool = typer.Option(True, "--deploy/--no-deploy", help="Deploy CoDreamMarket and write the deployment record.")):
    """Start anvil and the IPFS node in the background, wait until both answer, deploy."""
    try:
        emit(devnet.up(anvil_port, ipfs_port, block_time, deploy=deploy))
    except (devnet.DevnetError, DeploymentError, FileNotFoundError) as exc:
        fail(str(exc))


@app.command("status")
def devnet_status(anvil_port: int = ANVIL_PORT, ipfs_port: int = IPFS_PORT):
    """Show what runs, where, and whether it answers (exit code 1 when something is down)."""
    st = devnet.status(anvil_port, ipfs_port)
    emit(st)
    if st["anvil"]["chain_id"] is None or st["ipfs"]["version"] is None:
        raise typer.Exit(1)


@app.command("down")
def devnet_down(anvil_port: int = ANVIL_PORT, ipfs_port: int = IPFS_PORT):
    """Stop the devnet's services."""
    stopped = devnet.down(anvil_port, ipfs_port)
    typer.echo(f"stopped: {', '.join(stopped) or 'nothing was running'}")


def _rpc(anvil_port: int) -> str:
    return f"http://127.0.0.1:{anvil_port}"


@app.command("fund", context_settings={"ignore_unknown_options": True})  # AMOUNT -1 reaches the check
def devnet_fund(address: str = typer.Argument(..., parser=address_of("ADDRESS"), metavar="ADDRESS",
                                             help="The address to fund (e.g. a new keystore's)."),
                amount: int = typer.Argument("10", parser=eth_amount("AMOUNT"), metavar="AMOUNT",
                                               help="ETH to send, a decimal (e.g. 2.5)."),
                anvil_port: int = ANVIL_PORT):
    """Send devnet ETH from the faucet (dev account 9) to ADDRESS."""
    try:
        emit(devnet.fund(_rpc(anvil_port), address, amount))
    except devnet.DevnetError as exc:
        fail(str(exc))


@app.command("warp")
def devnet_warp(seconds: Optional[int] = typer.Argument(None, help="How far to move devnet time forward."),
                past: Optional[int] = typer.Option(None, "--past", help="Instead: just past the end of this task's "
                                                   "current window (commit, eval reveal, reveal, score commit, score "
                                                   "reveal, appeal)."),
                warmup: bool = typer.Option(False, "--warmup", help="Instead: past the stake warm-up (new stake "
                                            "counts in draws only after it)."),
                anvil_port: int = ANVIL_PORT, deployment: Optional[str] = typer.Option(None, hidden=True)):
    """Move devnet time forward (and mine a block): SECONDS, past a task's window, or past the warm-up."""
    if sum(x is not None and x is not False for x in (seconds, past, warmup)) != 1:
        fail("give one of SECONDS, --past TASK or --warmup", 2)
    try:
        if seconds is None:
            seconds = devnet.seconds_to(_rpc(anvil_port), past, deployment) if past is not None else \
                devnet.warmup_seconds(_rpc(anvil_port), deployment)
        emit(devnet.warp(_rpc(anvil_port), seconds))
    except (devnet.DevnetError, DeploymentError) as exc:
        fail(str(exc))


@app.command("mine")
def devnet_mine(blocks: int = typer.Argument(1, help="How many blocks."), anvil_port: int = ANVIL_PORT):
    """Mine empty blocks (the committee draw waits for its seed block)."""
    try:
        emit(devnet.mine(_rpc(anvil_port), blocks))
    except devnet.DevnetError as exc:
        fail(str(exc))
