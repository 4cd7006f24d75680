"""Deployment records: the JSON that agents and the dapp read to find the market.

``{"network", "chain_id", "deployer", "rpc_url", "params", "contracts": {"CoDreamMarket":
{"address", "abi", "block", "tx"}, "StakeRegistry": {"address", "abi"}, "CoDreamAppeals": {...},
"CoDreamLens": {...}}}`` (protocol v3: the market deploys its stake registry and appeals module;
the lens is deployed beside it). brownie (`brownie run scripts/deploy.py`), `codream deploy` and
`codream devnet up` all write it through :func:`write_record`.
"""
from __future__ import annotations

import json
from pathlib import Path

from . import config


class DeploymentError(RuntimeError):
    """No usable deployment record."""


def record_path(network: str) -> Path:
    if network in ("development", "devnet"):
        return config.home() / "devnet" / "deployment.json"
    d = config.home() / "deployments"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{network}.json"


CONTRACTS = ("CoDreamMarket", "StakeRegistry", "CoDreamAppeals", "CoDreamLens")


def write_record(network: str, chain_id: int, contracts: dict, deployer: str, rpc_url: str | None = None,
                 params: str | None = None, path: Path | None = None) -> Path:
    """``contracts``: name -> {address, abi} (the market's also block and tx), for every name in
    CONTRACTS; ``params``: the name of the parameter set the market was deployed with."""
    missing = set(CONTRACTS) - set(contracts)
    if missing:
        raise DeploymentError(f"a deployment record needs {', '.join(sorted(missing))}")
    path = path or record_path(network)
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = {"network": network, "chain_id": chain_id, "deployer": deployer, "rpc_url": rpc_url, "params": params,
           "contracts": contracts}
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(rec, indent=2))
    tmp.replace(path)
    return path


def load_record(path: str | Path | None = None, network: str = "devnet") -> dict:
    path = Path(path) if path else record_path(network)
    try:
        rec = json.loads(path.read_text())
    except FileNotFoundError:
        raise DeploymentError(f"no deployment record at {path}: run `codream devnet up` (devnet) or "
                              "`codream deploy --network NAME` (brownie: `brownie run scripts/deploy.py`)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DeploymentError(f"{path} is not a deployment record ({exc})") from None
    if not isinstance(rec, dict) or not set(CONTRACTS) <= set(rec.get("contracts", {})):
        raise DeploymentError(f"{path} is not a protocol-v3 deployment record (needs contracts "
                              f"{', '.join(CONTRACTS)}): deploy again")
    return rec
