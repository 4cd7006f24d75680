"""Where things live and how to reach them. Every setting has an environment variable.

| variable             | default                          | meaning                              |
|----------------------|----------------------------------|--------------------------------------|
| CODREAM_HOME         | ~/.codream                       | state: devnet logs/pids, agent state |
| CODREAM_RPC_URL      | http://127.0.0.1:8545            | Ethereum JSON-RPC endpoint           |
| CODREAM_IPFS_API     | /ip4/127.0.0.1/tcp/5001/http     | Kubo RPC API (multiaddr or URL)      |
| CODREAM_ANVIL        | node_modules/.bin/anvil          | anvil binary for the devnet          |
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    path = Path(os.environ.get("CODREAM_HOME", Path.home() / ".codream")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def rpc_url() -> str:
    return os.environ.get("CODREAM_RPC_URL", "http://127.0.0.1:8545")


def anvil_bin() -> str:
    if os.environ.get("CODREAM_ANVIL"):
        return os.environ["CODREAM_ANVIL"]
    local = REPO_ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if found:
        return found
    raise FileNotFoundError("anvil not found: run `make setup` (installs it from npm) "
                            "or set CODREAM_ANVIL to an anvil binary")
