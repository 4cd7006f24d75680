"""Top-level commands everyone uses: rewards, claim, deploy, dapp."""
from __future__ import annotations

import json
import os
from typing import Optional

import typer

from codream.chain import ChainError, load_account
from codream.deployment import DeploymentError
from codream.accounts import statement
from codream.market import eth
from ipfs import IpfsError

from . import dapp as dapp_server
from .common import ACCOUNT, CONFS, DEPLOYMENT, IPFS_API, ONE_SHOT_RETRY, RPC, address_option, emit, fail, \
    open_chain
from .views import JSON, render_rewards, show
from codream.deploy import deploy as deploy_market


def rewards(address: Optional[str] = address_option(None, "--address", help="Default: the --account's address."),
            as_json: bool = JSON, rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
            account: Optional[str] = ACCOUNT):
    """What the account earned, lost and spent per task, with the reason for each amount; its
    withdrawals (transfers, not income), claimable balance, stake (apart from earnings) and bonds
    still in open tasks."""
    chain = open_chain(rpc_url, deployment, account, need_account=address is None, retry_seconds=ONE_SHOT_RETRY)
    try:
        show(statement(chain, address or chain.account.address), as_json, render_rewards)
    except ChainError as exc:
        fail(str(exc))


def claim(rpc_url: Optional[str] = RPC, deployment: Optional[str] = DEPLOYMENT,
          account: Optional[str] = ACCOUNT, confirmations: int = CONFS):
    """Withdraw everything claimable for the account."""
    chain = open_chain(rpc_url, deployment, account, confirmations, retry_seconds=ONE_SHOT_RETRY)
    try:
        owed = chain.call("claimable", chain.account.address)
        if not owed:
            fail("nothing to claim for this address yet", 1)
        receipt = chain.send("withdraw")
    except ChainError as exc:
        fail(str(exc))
    emit({"address": chain.account.address, "withdrawn_wei": owed, "withdrawn": eth(owed),
          "tx": "0x" + bytes(receipt.transactionHash).hex()})


def deploy(network: str = typer.Option(..., help="Name for the record, e.g. sepolia or rehearsal."),
           rpc_url: str = typer.Option(..., "--rpc-url", help="JSON-RPC endpoint of that network."),
           account: Optional[str] = ACCOUNT, confirmations: int = CONFS,
           params: str = typer.Option("production", help="Protocol parameter set: production, or rehearsal "
                                      "(short floors, for a chain run in real time).")):
    """Deploy CoDreamMarket (with its stake registry and appeals module) and a lens from a keystore
    account; write $CODREAM_HOME/deployments/NETWORK.json.
    (brownie users: `brownie run scripts/deploy.py --network codream-sepolia` does the same.)"""
    spec = account or os.environ.get("CODREAM_ACCOUNT")
    if not spec:
        fail("--account: a keystore file (or dev:N on a devnet)")
    try:
        path = deploy_market(rpc_url, load_account(spec), network, confirmations, params)
    except (ChainError, DeploymentError) as exc:
        fail(str(exc))
    rec = json.loads(path.read_text())
    emit({"record": str(path), "address": rec["contracts"]["CoDreamMarket"]["address"], "chain_id": rec["chain_id"]})


def dapp(port: int = typer.Option(8080, help="TCP port to serve on."),
         host: str = typer.Option("127.0.0.1", help="Bind address."),
         deployment: Optional[str] = DEPLOYMENT, rpc_url: Optional[str] = RPC,
         gateway: Optional[str] = typer.Option(None, help="IPFS gateway for CID links (default: the gateway at "
                                               "the host and port of --ipfs-api / $CODREAM_IPFS_API)."),
         ipfs_api: Optional[str] = IPFS_API):
    """Serve the dapp (static page + the deployment record) on http://HOST:PORT/."""
    try:
        dapp_server.serve(host, port, deployment=deployment, rpc_url=rpc_url, gateway=gateway, ipfs_api=ipfs_api)
    except (FileNotFoundError, IpfsError, dapp_server.DappError) as exc:
        fail(str(exc))
