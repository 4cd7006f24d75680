"""The deployer: compile CoDreamMarket (brownie, through the solc shim) and deploy it with
a signed transaction, then write the deployment record agents and the dapp read."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from web3 import Web3

from codream import config
from codream.deployment import DeploymentError, write_record

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


def deploy(rpc_url: str, account, network: str = "devnet", confirmations: int = 1) -> Path:
    """Deploy CoDreamMarket (which deploys its StakeRegistry) with a signed transaction and
    write the record."""
    art, reg = artifact("CoDreamMarket"), artifact("StakeRegistry")
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    contract = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx = contract.constructor().build_transaction({"from": account.address, "nonce": w3.eth.get_transaction_count(
        account.address), "chainId": w3.eth.chain_id})
    signed = account.sign_transaction(tx)
    h = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(h, timeout=180)
    if receipt.status != 1:
        raise DeploymentError(f"deployment transaction {h.hex()} reverted")
    while w3.eth.block_number < receipt.blockNumber + confirmations - 1:
        time.sleep(0.5)
    market = w3.eth.contract(address=receipt.contractAddress, abi=art["abi"])
    registry = market.functions.registry().call()
    return write_record(network, w3.eth.chain_id,
                        {"address": receipt.contractAddress, "abi": art["abi"], "block": receipt.blockNumber,
                         "tx": "0x" + bytes(h).hex()},
                        {"address": registry, "abi": reg["abi"]}, account.address, rpc_url)
