"""The deployer: compile the contracts (brownie, through the solc shim), deploy CoDreamMarket
(protocol v3; it deploys its StakeRegistry and CoDreamAppeals) with a named parameter set and a
CoDreamLens beside it, with signed transactions, then write the deployment record agents and the
dapp read."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from web3 import Web3

from . import config
from .deployment import DeploymentError, write_record
from .protocol import PARAMS

BUILD = config.REPO_ROOT / "build" / "contracts"
SOURCES = config.REPO_ROOT / "contracts"


def tool_env() -> dict:
    """The environment with this interpreter's scripts (brownie) and the project's npm binaries
    (anvil, forge, solc shim) on PATH, whether or not the venv is activated."""
    paths = [str(Path(sys.executable).parent), str(config.REPO_ROOT / "node_modules" / ".bin"), os.environ["PATH"]]
    return {**os.environ, "PATH": os.pathsep.join(paths)}


def artifact(name: str = "CoDreamMarket") -> dict:
    """A compiled contract (brownie's build artifact), compiling when a source is newer."""
    path = BUILD / f"{name}.json"
    newest = max(p.stat().st_mtime for p in SOURCES.rglob("*.sol"))
    if not path.exists() or path.stat().st_mtime < newest:
        res = subprocess.run(["brownie", "compile"], cwd=config.REPO_ROOT, capture_output=True, text=True,
                             env=tool_env())
        if res.returncode != 0 or not path.exists():
            raise DeploymentError(f"`brownie compile` failed:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
    return json.loads(path.read_text())


def _send_deploy(w3, account, art: dict, args: list, confirmations: int):
    """Sign and send a contract creation; return its receipt once confirmed."""
    contract = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx = contract.constructor(*args).build_transaction({"from": account.address, "nonce":
                                                         w3.eth.get_transaction_count(account.address, "pending"),
                                                         "chainId": w3.eth.chain_id})
    signed = account.sign_transaction(tx)
    h = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(h, timeout=180)
    if receipt.status != 1:
        raise DeploymentError(f"deployment transaction {h.hex()} of {art.get('contractName', 'a contract')} reverted")
    while w3.eth.block_number < receipt.blockNumber + confirmations - 1:
        time.sleep(0.5)
    return receipt


def deploy(rpc_url: str, account, network: str = "devnet", confirmations: int = 1,
           params: str = "production") -> Path:
    """Deploy CoDreamMarket with the named parameter set (it deploys its StakeRegistry and
    CoDreamAppeals), then a CoDreamLens over it, with signed transactions; write the record."""
    if params not in PARAMS:
        raise DeploymentError(f"unknown parameter set {params!r} (known: {', '.join(PARAMS)})")
    arts = {name: artifact(name) for name in ("CoDreamMarket", "StakeRegistry", "CoDreamAppeals", "CoDreamLens")}
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    receipt = _send_deploy(w3, account, arts["CoDreamMarket"], [PARAMS[params].as_tuple()], confirmations)
    market = w3.eth.contract(address=receipt.contractAddress, abi=arts["CoDreamMarket"]["abi"])
    lens = _send_deploy(w3, account, arts["CoDreamLens"], [receipt.contractAddress], confirmations)
    contracts = {
        "CoDreamMarket": {"address": receipt.contractAddress, "abi": arts["CoDreamMarket"]["abi"],
                          "block": receipt.blockNumber, "tx": "0x" + bytes(receipt.transactionHash).hex()},
        "StakeRegistry": {"address": market.functions.registry().call(), "abi": arts["StakeRegistry"]["abi"]},
        "CoDreamAppeals": {"address": market.functions.appeals().call(), "abi": arts["CoDreamAppeals"]["abi"]},
        "CoDreamLens": {"address": lens.contractAddress, "abi": arts["CoDreamLens"]["abi"]},
    }
    return write_record(network, w3.eth.chain_id, contracts, account.address, rpc_url, params)
