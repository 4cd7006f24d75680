"""A thin chain client for CoDreamMarket: signed EIP-1559 transactions, decoded reverts,
retries with backoff while the RPC is unreachable.

Accounts come from an encrypted keystore (password from $CODREAM_KEYSTORE_PASSWORD or a
prompt) or, on the devnet only, from anvil's public dev accounts (`dev:N`).
"""
from __future__ import annotations

import getpass
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from eth_abi import decode as abi_decode
from eth_account import Account
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError

from .deploy import load_record

log = logging.getLogger("codream.chain")


class ChainError(RuntimeError):
    """Base class for chain failures."""


class ChainUnavailable(ChainError):
    """The RPC endpoint did not answer (after retries)."""


class TxReverted(ChainError):
    """The contract refused the transaction; ``error`` is the decoded custom error name."""

    def __init__(self, what: str, error: str, args: tuple, hint: str = ""):
        self.error, self.args_ = error, args
        msg = f"{what} reverted: {error}{args if args else ''}"
        super().__init__(msg + (f" — {hint}" if hint else ""))


# what to do about each revert, for humans
HINTS = {
    "WindowClosed": "the window for this step has passed; see `codream task show`",
    "WindowNotOpen": "too early for this step; wait for the window to open",
    "WrongValue": "send exactly the amount the task asks (miner bond) or at least MIN_STAKE",
    "NothingToWithdraw": "nothing is claimable for this address yet",
    "StakeFrozen": "the stake is unbonding or sits on an open committee",
    "TooFewVerifiers": "not enough eligible staked verifiers for the committee size",
    "NotMember": "this address is not on the task's committee",
    "BadReveal": "the salt or CID does not match the commitment",
    "UnknownTask": "no such task id on this contract",
}


def load_account(spec: str):
    """``dev:N`` (devnet dev account N) or a path to an encrypted keystore JSON file."""
    if spec.startswith("dev:"):
        from .devnet import dev_private_key

        return Account.from_key(dev_private_key(int(spec[4:])))
    path = Path(spec).expanduser()
    try:
        keystore = json.loads(path.read_text())
    except FileNotFoundError:
        raise ChainError(f"keystore {path} not found (create one with `codream account new`)") from None
    password = os.environ.get("CODREAM_KEYSTORE_PASSWORD")
    if password is None:
        password = getpass.getpass(f"password for {path}: ")
    try:
        return Account.from_key(Account.decrypt(keystore, password))
    except ValueError:
        raise ChainError(f"wrong password for keystore {path}") from None


def new_keystore(path: str | Path, password: str) -> str:
    acct = Account.create()
    Path(path).write_text(json.dumps(Account.encrypt(acct.key, password)))
    os.chmod(path, 0o600)
    return acct.address


@dataclass
class ChainConfig:
    rpc_url: str
    deployment: str | None = None  # record path (default: the devnet's)
    confirmations: int = 1
    retry_seconds: float = 120.0  # keep retrying an unreachable RPC this long


class Chain:
    """One market, one account. Views are methods; writes go through ``send``."""

    def __init__(self, cfg: ChainConfig, account=None):
        self.cfg = cfg
        self.w3 = Web3(Web3.HTTPProvider(cfg.rpc_url, request_kwargs={"timeout": 10}))
        rec = load_record(cfg.deployment)
        c = rec["contracts"]["CoDreamMarket"]
        self.address = Web3.to_checksum_address(c["address"])
        self.deploy_block = c.get("block", 0)
        self.market = self.w3.eth.contract(address=self.address, abi=c["abi"])
        self.account = account
        self._errors = {}
        for item in c["abi"]:
            if item.get("type") == "error":
                sig = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
                self._errors[keccak(text=sig)[:4]] = (item["name"], [i["type"] for i in item["inputs"]])
        self.chain_id = self._retry("chain id", lambda: self.w3.eth.chain_id)

    # -- plumbing -----------------------------------------------------------------
    def _retry(self, what: str, fn):
        delay, deadline = 0.5, time.monotonic() + self.cfg.retry_seconds
        while True:
            try:
                return fn()
            except (ContractLogicError, ContractCustomError):
                raise
            except (OSError, ConnectionError, TimeoutError) as exc:
                err = exc
            except Exception as exc:  # requests wraps connection failures in its own types
                if "Connection" not in type(exc).__name__ and "Timeout" not in type(exc).__name__:
                    raise
                err = exc
            if time.monotonic() > deadline:
                raise ChainUnavailable(f"{what}: the RPC at {self.cfg.rpc_url} did not answer for "
                                       f"{self.cfg.retry_seconds:g}s ({type(err).__name__}); is the node up?")
            log.warning("rpc unreachable (%s), retrying in %.1fs", type(err).__name__, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    def decode_revert(self, data) -> tuple[str, tuple]:
        if isinstance(data, str):
            data = bytes.fromhex(data[2:] if data.startswith("0x") else data)
        if not data or len(data) < 4:
            return "reverted without a reason", ()
        sel, body = bytes(data[:4]), bytes(data[4:])
        if sel == keccak(text="Error(string)")[:4]:
            return abi_decode(["string"], body)[0], ()
        if sel in self._errors:
            name, types = self._errors[sel]
            try:
                return name, tuple(abi_decode(types, body))
            except Exception:
                return name, ()
        return f"unknown error 0x{sel.hex()}", ()

    def _revert_of(self, exc) -> tuple[str, tuple]:
        data = getattr(exc, "data", None)
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(data, (str, bytes)) and data:
            return self.decode_revert(data)
        return str(exc), ()

    def call(self, fn_name: str, *args):
        fn = getattr(self.market.functions, fn_name)(*args)
        return self._retry(fn_name, lambda: fn.call())

    def send(self, fn_name: str, *args, value: int = 0):
        """Sign and send; wait for ``confirmations``. A revert is explained, never retried."""
        if self.account is None:
            raise ChainError("no account configured (use --account dev:N or a keystore path)")
        fn = getattr(self.market.functions, fn_name)(*args)
        sender = self.account.address
        try:
            gas = self._retry(fn_name, lambda: fn.estimate_gas({"from": sender, "value": value}))
        except (ContractLogicError, ContractCustomError) as exc:
            name, a = self._revert_of(exc)
            raise TxReverted(fn_name, name, a, HINTS.get(name, "")) from None

        def build_and_send():
            base = self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0
            tip = self.w3.to_wei(1, "gwei") if self.chain_id != 31337 else 0
            tx = fn.build_transaction({"from": sender, "value": value, "gas": int(gas * 1.25) + 10_000,
                                       "nonce": self.w3.eth.get_transaction_count(sender, "pending"),
                                       "maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip,
                                       "chainId": self.chain_id})
            signed = self.account.sign_transaction(tx)
            return self.w3.eth.send_raw_transaction(signed.raw_transaction)

        h = self._retry(fn_name, build_and_send)
        receipt = self._retry(fn_name, lambda: self.w3.eth.wait_for_transaction_receipt(h, timeout=120))
        if receipt.status != 1:
            raise TxReverted(fn_name, "reverted on chain", (), "state changed between estimate and inclusion")
        if self.cfg.confirmations > 1:
            target = receipt.blockNumber + self.cfg.confirmations - 1
            while self._retry("block number", lambda: self.w3.eth.block_number) < target:
                time.sleep(1)
        return receipt

    # -- views ------------------------------------------------------------------------
    def block(self):
        return self._retry("block", lambda: self.w3.eth.get_block("latest"))

    def task(self, task_id: int) -> dict:
        t = self.call("getTask", task_id)
        keys = ["owner", "bounty", "minerBond", "commitEnd", "revealEnd", "submissionCount", "committeeSize",
                "phase", "redraws", "evalRevealEnd", "scoreCommitEnd", "scoreRevealEnd", "scoreCommitWindow",
                "scoreRevealWindow", "seedBlock", "minGainBps", "toleranceBps", "verifierFeeBps",
                "evalCommitment", "specCid", "evalCid"]
        return dict(zip(keys, t))

    def phase(self, task_id: int) -> int:
        return self.call("phaseOf", task_id)

    def events(self, name: str, task_id: int | None = None) -> list[dict]:
        ev = getattr(self.market.events, name)
        flt = {"taskId": task_id} if task_id is not None else None
        logs = self._retry(f"{name} logs", lambda: ev.get_logs(from_block=self.deploy_block,
                                                                 argument_filters=flt))
        return [dict(log_["args"], blockNumber=log_["blockNumber"], tx=log_["transactionHash"].hex())
                for log_ in logs]

    def revealed_cids(self, task_id: int) -> dict[int, tuple[str, str]]:
        """submission index -> (miner, cid), from the Revealed events."""
        return {e["index"]: (e["miner"], e["cid"]) for e in self.events("Revealed", task_id)}

    def committee(self, task_id: int) -> list[dict]:
        return [{"verifier": m[0], "revealed": m[1], "committed": m[2] != b"\0" * 32}
                for m in self.call("getCommittee", task_id)]

    def increase_time(self, seconds: int) -> None:
        """Devnet only: move anvil's clock and mine a block."""
        self.w3.provider.make_request("evm_increaseTime", [int(seconds)])
        self.w3.provider.make_request("evm_mine", [])

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.w3.provider.make_request("evm_mine", [])
