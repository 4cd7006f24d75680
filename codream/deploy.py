"""Deployment records and the devnet deployer.

A deployment record is the JSON that agents and the dapp read:
``{"network", "chain_id", "contracts": {"CoDreamMarket": {"address", "abi", "block", "tx"}},
"deployer", "rpc_url"}``. brownie (`brownie run scripts/deploy.py`) and `codream devnet up`
both write it through `write_record`.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from . import config

ARTIFACT = config.REPO_ROOT / "build" / "contracts" / "CoDreamMarket.json"


class DeployError(RuntimeError):
    pass


def record_path(network: str) -> Path:
    if network in ("development", "devnet"):
        return config.home() / "devnet" / "deployment.json"
    d = config.home() / "deployments"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{network}.json"


def write_record(network: str, chain_id: int, address: str, abi: list, deployer: str, block: int, tx: str,
                 rpc_url: str | None = None, path: Path | None = None) -> Path:
    path = path or record_path(network)
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = {"network": network, "chain_id": chain_id, "deployer": deployer, "rpc_url": rpc_url,
           "contracts": {"CoDreamMarket": {"address": address, "abi": abi, "block": block, "tx": tx}}}
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(rec, indent=2))
    tmp.replace(path)
    return path


def load_record(path: str | Path | None = None, network: str = "devnet") -> dict:
    path = Path(path) if path else record_path(network)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DeployError(f"no deployment record at {path}: run `codream devnet up` (devnet) or "
                          "`brownie run scripts/deploy.py --network NAME`") from None


def artifact() -> dict:
    """The compiled contract (brownie's build artifact), compiling on first use."""
    if not ARTIFACT.exists():
        env = {**os.environ, "PATH": f"{config.REPO_ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"}
        res = subprocess.run(["brownie", "compile"], cwd=config.REPO_ROOT, capture_output=True, text=True, env=env)
        if res.returncode != 0 or not ARTIFACT.exists():
            raise DeployError(f"`brownie compile` failed:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
    return json.loads(ARTIFACT.read_text())


def deploy(rpc_url: str, account, network: str = "devnet", confirmations: int = 1) -> Path:
    """Deploy CoDreamMarket with a signed EIP-1559 transaction and write the record."""
    import time

    from web3 import Web3

    art = artifact()
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    contract = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx = contract.constructor().build_transaction({"from": account.address, "nonce": w3.eth.get_transaction_count(
        account.address), "chainId": w3.eth.chain_id})
    signed = account.sign_transaction(tx)
    h = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(h, timeout=180)
    if receipt.status != 1:
        raise DeployError(f"deployment transaction {h.hex()} reverted")
    while w3.eth.block_number < receipt.blockNumber + confirmations - 1:
        time.sleep(0.5)
    return write_record(network, w3.eth.chain_id, receipt.contractAddress, art["abi"], account.address,
                        receipt.blockNumber, h.hex(), rpc_url)


def deploy_devnet(rpc_url: str, private_key: str) -> Path:
    from eth_account import Account

    return deploy(rpc_url, Account.from_key(private_key), "devnet")
