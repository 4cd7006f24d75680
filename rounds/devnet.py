"""A local devnet: anvil (the devnet chain id) and the local IPFS node, in the background.

State lives in ``$CODREAM_HOME/devnet``: ``anvil.log``, ``ipfs.log``, one pid file
per service, the IPFS repo, and (once contracts are deployed) ``deployment.json``.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from eth_account import Account
from web3 import Web3

from codream import config
from codream.chain import Chain, ChainConfig
from codream.deployment import DeploymentError, load_record
from codream.market import deadline_of
from codream.protocol import Phase
from codream.devchain import DEV_ACCOUNTS, DEV_MNEMONIC, DEVNET_CHAIN_ID, dev_private_key

from .procs import cli_argv
from codream.deploy import deploy


class DevnetError(RuntimeError):
    pass


@dataclass
class Service:
    name: str
    port: int

    def pid_file(self, root: Path) -> Path:
        return root / f"{self.name}.pid"

    def log_file(self, root: Path) -> Path:
        return root / f"{self.name}.log"


def state_dir() -> Path:
    d = config.home() / "devnet"
    d.mkdir(parents=True, exist_ok=True)
    return d


def default_ports() -> tuple[int, int]:
    """The devnet's ports: taken from $CODREAM_RPC_URL and $CODREAM_IPFS_API when they point at
    this machine (so one pair of variables configures every command), else 8545 and 5001."""
    anvil, ipfs = 8545, 5001
    u = urlparse(config.rpc_url())
    if u.hostname in ("127.0.0.1", "localhost") and u.port:
        anvil = u.port
    m = re.match(r"^/ip4/127\.0\.0\.1/tcp/(\d+)/", os.environ.get("CODREAM_IPFS_API", ""))
    if m:
        ipfs = int(m.group(1))
    return anvil, ipfs


def _read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:  # an exited child of ours is a zombie until reaped: reap it, it is not running
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return None
    except ChildProcessError:
        pass  # not our child: the kill(0) probe below decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def chain_answers(url: str) -> int | None:
    """The chain id at ``url``, or None if nothing answers."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return int(json.load(r)["result"], 16)
    except Exception:
        return None


def ipfs_answers(port: int) -> str | None:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v0/version", b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return json.load(r)["Version"]
    except Exception:
        return None


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except FileNotFoundError:
        return "(no log)"


def _spawn(svc: Service, root: Path, argv: list[str]) -> int:
    if _port_open(svc.port):
        raise DevnetError(f"port {svc.port} is already in use: stop whatever listens there "
                          f"(`codream devnet down` if it is an old devnet) or pick another port")
    log = open(svc.log_file(root), "ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=root)
    svc.pid_file(root).write_text(str(proc.pid))
    return proc.pid


def _deploy_if_needed(url: str) -> None:
    """Deploy the market unless the record points at code on this very chain."""
    try:
        rec = load_record(network="devnet")
        addr = rec["contracts"]["CoDreamMarket"]["address"]
        if rec["rpc_url"] == url and len(Web3(Web3.HTTPProvider(url)).eth.get_code(addr)) > 0:
            return
    except (DeploymentError, KeyError):
        pass
    deploy(url, Account.from_key(dev_private_key(0)), "devnet")


def up(anvil_port: int = 8545, ipfs_port: int = 5001, block_time: float | None = None,
       timeout: float = 60.0, deploy: bool = True) -> dict:
    """Start anvil and the IPFS node (whichever is not running) and wait until both answer."""
    root = state_dir()
    anvil, ipfs = Service("anvil", anvil_port), Service("ipfs", ipfs_port)
    if _read_pid(anvil.pid_file(root)) is None:
        argv = [config.anvil_bin(), "--host", "127.0.0.1", "--port", str(anvil_port),
                "--chain-id", str(DEVNET_CHAIN_ID), "--accounts", str(DEV_ACCOUNTS), "--balance", "10000",
                "--mnemonic", DEV_MNEMONIC]
        if block_time:
            argv += ["--block-time", str(block_time)]
        _spawn(anvil, root, argv)
    if _read_pid(ipfs.pid_file(root)) is None:
        _spawn(ipfs, root, cli_argv("ipfs", "serve", "--repo", str(root / "ipfs-repo"), "--port", str(ipfs_port)))
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{anvil_port}"
    while time.monotonic() < deadline:
        chain_ok, ipfs_ok = chain_answers(url), ipfs_answers(ipfs_port)
        if chain_ok and ipfs_ok:
            if deploy:
                _deploy_if_needed(url)
            return status(anvil_port, ipfs_port)
        for svc in (anvil, ipfs):
            if _read_pid(svc.pid_file(root)) is None:
                raise DevnetError(f"{svc.name} exited during start-up; last log lines:\n"
                                  f"{_tail(svc.log_file(root))}")
        time.sleep(0.2)
    down(anvil_port, ipfs_port)
    raise DevnetError(f"devnet did not answer within {timeout:g}s; see logs in {root}")


def status(anvil_port: int = 8545, ipfs_port: int = 5001) -> dict:
    root = state_dir()
    deployment = root / "deployment.json"
    return {
        "state_dir": str(root),
        "anvil": {"pid": _read_pid(root / "anvil.pid"), "rpc_url": f"http://127.0.0.1:{anvil_port}",
                  "chain_id": chain_answers(f"http://127.0.0.1:{anvil_port}")},
        "ipfs": {"pid": _read_pid(root / "ipfs.pid"), "api": f"/ip4/127.0.0.1/tcp/{ipfs_port}/http",
                 "gateway": f"http://127.0.0.1:{ipfs_port}/ipfs/", "version": ipfs_answers(ipfs_port)},
        "deployment": str(deployment) if deployment.exists() else None,
    }


def down(anvil_port: int = 8545, ipfs_port: int = 5001, timeout: float = 10.0) -> list[str]:
    """Stop both services (SIGTERM, then SIGKILL); return the names stopped."""
    root = state_dir()
    stopped = []
    for name in ("anvil", "ipfs"):
        pid_file = root / f"{name}.pid"
        pid = _read_pid(pid_file)
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _read_pid(pid_file) is not None:
                time.sleep(0.1)
            if _read_pid(pid_file) is not None:
                os.killpg(pid, signal.SIGKILL)
            stopped.append(name)
        pid_file.unlink(missing_ok=True)
    return stopped


# ----------------------------------------------------------------------------- devnet verbs
FAUCET = DEV_ACCOUNTS - 1  # the last dev account pays for `devnet fund` (the demos use the first 30)


def _w3(rpc_url: str) -> Web3:
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
    cid = chain_answers(rpc_url)
    if cid is None:
        raise DevnetError(f"no chain answers at {rpc_url}: start the devnet with `codream devnet up`")
    if cid != DEVNET_CHAIN_ID:
        raise DevnetError(f"{rpc_url} is chain {cid}, not the devnet ({DEVNET_CHAIN_ID}): devnet verbs only move "
                          "a local devnet")
    return w3


def fund(rpc_url: str, address: str, wei: int) -> dict:
    """Send ``wei`` from the devnet faucet (dev account 9) to ``address`` in a signed transaction."""
    if not Web3.is_address(address):
        raise DevnetError(f"{address!r} is not an Ethereum address (0x followed by 40 hex digits)")
    w3 = _w3(rpc_url)
    faucet = Account.from_key(dev_private_key(FAUCET))
    to = Web3.to_checksum_address(address)
    base = w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0
    tx = faucet.sign_transaction({"to": to, "value": wei, "gas": 21000, "chainId": DEVNET_CHAIN_ID, "type": 2,
                                  "nonce": w3.eth.get_transaction_count(faucet.address, "pending"),
                                  "maxFeePerGas": 2 * base + 10**9, "maxPriorityFeePerGas": 10**9})
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(tx.raw_transaction), timeout=60)
    return {"address": to, "funded_wei": wei, "balance_wei": w3.eth.get_balance(to),
            "tx": "0x" + bytes(receipt.transactionHash).hex()}


def warp(rpc_url: str, seconds: int) -> dict:
    """Move devnet time forward by ``seconds`` and mine a block at the new time."""
    if seconds <= 0:
        raise DevnetError(f"warp needs a positive number of seconds, got {seconds}")
    w3 = _w3(rpc_url)
    w3.provider.make_request("evm_increaseTime", [int(seconds)])
    w3.provider.make_request("evm_mine", [])
    block = w3.eth.get_block("latest")
    return {"block": block["number"], "timestamp": block["timestamp"]}


def _market(rpc_url: str, deployment: str | None):
    return Chain(ChainConfig(rpc_url, deployment, retry_seconds=5))


def seconds_to(rpc_url: str, task_id: int, deployment: str | None = None) -> int:
    """Seconds from now to just past the end of task ``task_id``'s current window."""
    chain = _market(rpc_url, deployment)
    phase = Phase(chain.phase(task_id))
    end = deadline_of(chain.view("getTask", task_id), phase)
    if end is None:
        raise DevnetError(f"task {task_id} is in phase '{phase.human}', which has no window to warp past")
    return max(1, end - chain.block()["timestamp"] + 1)


def warmup_seconds(rpc_url: str, deployment: str | None = None) -> int:
    """The stake registry's warm-up, plus a second."""
    return _market(rpc_url, deployment).call("WARMUP", on="registry") + 1


def mine(rpc_url: str, blocks: int) -> dict:
    """Mine ``blocks`` empty blocks (a live chain makes them on its own; anvil on demand does not)."""
    if blocks <= 0:
        raise DevnetError(f"mine needs a positive number of blocks, got {blocks}")
    w3 = _w3(rpc_url)
    for _ in range(blocks):
        w3.provider.make_request("evm_mine", [])
    block = w3.eth.get_block("latest")
    return {"block": block["number"], "timestamp": block["timestamp"]}
