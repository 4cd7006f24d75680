"""What every command group shares: output, errors, the chain/IPFS options and clients,
and how to run the CLI as a child process."""
from __future__ import annotations

import json
import os
from typing import NoReturn

import typer
from web3 import Web3

from codream import config
from codream.chain import Chain, ChainConfig, ChainError, load_account
from codream.deployment import DeploymentError, load_record
from codream.market import parse_eth, with_eth
from ipfs import IpfsClient, IpfsError

ONE_SHOT_RETRY = 10.0  # seconds a one-shot command rides out an RPC that answered, then went away (agents: 120;
# an RPC that never answered is reported within 3 s: codream.chain.first_contact)

RPC = typer.Option(None, "--rpc-url", help="JSON-RPC endpoint (default $CODREAM_RPC_URL or the devnet).")
DEPLOYMENT = typer.Option(None, "--deployment", help="Deployment record (default: the devnet's).")
ACCOUNT = typer.Option(None, "--account", help="dev:N (devnet dev account) or a keystore file "
                       "(password: $CODREAM_KEYSTORE_PASSWORD or prompt). Default $CODREAM_ACCOUNT.")
CONFS = typer.Option(1, "--confirmations", min=1, help="Blocks to wait after each transaction.")
IPFS_API = typer.Option(None, "--ipfs-api", help="Kubo RPC API (default $CODREAM_IPFS_API).")


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def emit(obj) -> None:
    """Print a command's result as JSON; every amount ``X_wei`` (exact, for scripts) gets its ETH
    beside it as ``X`` ("1.5 ETH"), for people."""
    typer.echo(json.dumps(with_eth(obj), indent=2, sort_keys=True, default=str))


def eth_amount(flag: str):
    """A typer ``parser`` for an amount of ETH given as ``flag``: the exact wei of the decimal the
    user typed (:func:`codream.market.parse_eth`: 0.3 is 3·10^17 wei, not 299999999999999968), or
    a one-line error (exit 2) while the command line is parsed, before any RPC call. Defaults are
    written in ETH, as strings (``"0.01"``), and go through the same parser."""
    def parse(value) -> int:
        try:
            return parse_eth(value, flag)
        except ValueError as exc:
            fail(str(exc), 2)
    return parse


def eth_option(default, flag: str, help: str):
    """An ``--OPTION ETH`` (the command receives wei: :func:`eth_amount`)."""
    return typer.Option(default, flag, parser=eth_amount(flag), metavar="ETH", help=help)


def address_option(default, flag: str, help: str):
    """An ``--OPTION ADDRESS`` checked by :func:`address_of`."""
    return typer.Option(default, flag, parser=address_of(flag), metavar="ADDRESS", help=help)


def open_chain(rpc_url: str | None, deployment: str | None, account: str | None, confirmations: int = 1,
               need_account: bool = True, retry_seconds: float = 120.0, patient_start: bool = False) -> Chain:
    """The chain client for a command, or a one-line error and exit 1. A dead RPC is reported
    within 3 s, except with ``patient_start`` (the agents: they wait for a node that is down)."""
    account = account or os.environ.get("CODREAM_ACCOUNT")
    try:
        acct = load_account(account) if account else None
        if need_account and acct is None:
            fail("no account: pass --account dev:N (devnet) or --account path/to/keystore.json")
        rpc = rpc_url or os.environ.get("CODREAM_RPC_URL")
        if rpc is None and deployment is None:
            rpc = load_record().get("rpc_url")
        cfg = ChainConfig(rpc or config.rpc_url(), deployment, confirmations, retry_seconds, patient_start)
        return Chain(cfg, acct)
    except (ChainError, DeploymentError) as exc:
        fail(str(exc))


def checked_address(address: str, flag: str = "") -> str:
    """A checksummed address, or a one-line error (exit 2)."""
    if not Web3.is_address(address):
        fail(f"{flag + ' ' if flag else ''}{address!r} is not an Ethereum address (0x followed by 40 hex digits)", 2)
    return Web3.to_checksum_address(address)


def address_of(flag: str):
    """A typer ``parser`` for an address given as ``flag``: checked (and checksummed) while the
    command line is parsed, before any RPC call."""
    return lambda value: checked_address(str(value), flag)


def open_ipfs(api: str | None) -> IpfsClient:
    try:
        return IpfsClient(api, timeout=60)
    except IpfsError as exc:
        fail(str(exc))


def pick_device(name: str) -> str:
    import torch  # heavy (≈2 s): only the commands that compute pay for it

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        fail("--device cuda: no CUDA GPU is visible to torch (is a CUDA build of torch installed? "
             "see docs/operating.md, 'Mining on a GPU'). Use --device cpu or auto.")
    if name not in ("cpu", "cuda"):
        fail(f"--device must be auto, cpu or cuda, got {name!r}")
    return name


def set_threads(threads: int | None) -> None:
    import torch  # heavy (≈2 s): only the commands that compute pay for it

    if threads:
        torch.set_num_threads(threads)


def run_agent(agent, poll: float, until_idle: bool) -> None:
    """Run a role's agent in the foreground (`miner run`, `verifier run`): say where it logs, and
    turn a chain error it cannot ride out into one line and exit code 1."""
    typer.echo(f"{agent.role} {agent.me}: log in {agent.state.dir / 'agent.log'}", err=True)
    try:
        agent.run(poll, until_idle)
    except ChainError as exc:
        fail(str(exc))
