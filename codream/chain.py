"""A thin chain client for CoDreamMarket: signed EIP-1559 transactions, decoded reverts,
typed errors, and retries configured once on the transport.

Accounts come from an encrypted keystore (password from $CODREAM_KEYSTORE_PASSWORD or a
prompt) or, on the devnet only, from anvil's public dev accounts (`dev:N`).

Retries: the first request to an RPC has short timeouts (``first_contact``): a URL where no
node answers is reported within 3 s. Once it has answered, web3's own
``ExceptionRetryConfiguration`` retries connection errors and timeouts with exponential backoff
for ``retry_seconds`` in all (an outage mid-run is ridden out); after that the call raises
:class:`ChainUnavailable`. Nothing else is retried: a revert, a bad argument or missing
funds is explained at once (:class:`TxReverted`, :class:`InsufficientFunds`, ...).
"""
from __future__ import annotations

import getpass
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import requests
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import BlockNotFound, ContractCustomError, ContractLogicError, TimeExhausted, Web3RPCError
from web3.providers.rpc.utils import ExceptionRetryConfiguration

from .deployment import load_record
from .devchain import dev_private_key, is_devnet
from .protocol import AppealStage, Phase

log = logging.getLogger("codream.chain")
WEI = 10**18


class ChainError(RuntimeError):
    """Base class for chain failures; the message says what failed and what to do."""


class ChainUnavailable(ChainError):
    """The RPC endpoint did not answer (after retries)."""


class InsufficientFunds(ChainError):
    """The account cannot pay for the transaction."""


class TxReverted(ChainError):
    """The contract refused the call; ``error`` is the decoded custom error name, ``args`` its
    arguments by name."""

    def __init__(self, what: str, error: str, args: dict):
        self.error, self.args_ = error, args
        shown = ", ".join(f"{k}={v}" for k, v in args.items())
        self.hint = describe_revert(error, args)  # (what it means, the command to run next) or None
        said = f" — {self.hint[0]}; next: `{self.hint[1]}`" if self.hint else ""
        super().__init__(f"{what} reverted: {error}({shown}){said}")


def _eth(wei: int) -> str:
    return f"{wei / WEI:.4g} ETH"


def _phase(v: int) -> str:
    return Phase(v).human if v in iter(Phase) else str(v)


def _stage(v: int) -> str:
    return AppealStage(v).name.lower() if v in iter(AppealStage) else str(v)


def _task(a: dict) -> str:
    return str(a["taskId"]) if "taskId" in a else "TASK"


BUG = "codream --version"


def _bug(what: str) -> tuple[str, str]:
    """An invariant the CLI or the contracts keep broke: say so, and what to report."""
    return f"{what}: a bug, please report it with the transaction and the version", BUG

# What each custom error of the contracts means, and the command to run next: name -> args -> (sentence, command).
# Every `error X(...)` declared under contracts/ has an entry (tests/test_chain_hints.py parses them). A name
# declared by two contracts (AlreadyRevealed, BadScore, ...) shares one entry: read its arguments with .get.
HINTS = {
    # tasks: create and co-own
    "NoBounty": lambda a: ("a task needs a bounty above 0", "codream task create --bounty 1 --task-dir DIR"),
    "MinBond": lambda a: (f"the miner bond must be at least {_eth(a['required'])}",
                          f"codream task create --bond {a['required'] / WEI:g} --task-dir DIR"),
    "BadSeats": lambda a: (f"seats per submission must be odd, at least {a['minSeatsPerSubmission']} and at most the "
                           f"seats; seats at most {a['maxSeats']}",
                           f"codream task create --seats {a['maxSeats']} "
                           f"--seats-per-submission {a['minSeatsPerSubmission']} --task-dir DIR"),
    "ToleranceTooHigh": lambda a: (f"the spec's tolerance can be at most {a['max']} bps (it says {a['given']}): "
                                   "rebuild the task folder with a smaller scoring.tolerance_bps",
                                   "codream task init --help"),
    "FeeTooHigh": lambda a: (f"the verifiers' fee can be at most {a['max']} bps (got {a['given']})",
                             f"codream task create --fee-bps {a['max']} --task-dir DIR"),
    "BadMinGain": lambda a: (f"the spec's min gain {a['given']} bps is outside the scores' range: rebuild the task "
                             "folder with another scoring.min_gain_bps", "codream task init --help"),
    "BadWindow": lambda a: (f"window {a['index']} lasts {a['duration']} s; it must be between {a['min']} s and "
                            f"{a['max']} s", f"codream task create --windows {','.join([str(a['min'])] * 5)} "
                                             "--task-dir DIR"),
    "BadAccuracy": lambda a: (f"the declared teacher accuracy must be in (0, 10000] bps, got {a['given']}: check the "
                              "eval set's labels", "codream task add-eval --help"),
    "BadCid": lambda a: (f"a CID of {a['length']} characters: it must be 1 to 128", "codream ipfs add FILE"),
    "ZeroCommitment": lambda a: _bug("an empty commitment was sent (the CLI never does)"),
    "TooManyOwners": lambda a: (f"the task has {a['max']} owners already", "codream task create --task-dir DIR"),
    "AlreadyOwner": lambda a: (f"this account co-owns task {_task(a)} already", f"codream task show {_task(a)}"),
    "ContributionTooLow": lambda a: (f"a co-owner contributes at least {_eth(a['required'])}",
                                     f"codream task join TASK --contribution {a['required'] / WEI:g} "
                                     "--eval FILE"),
    "NotOwner": lambda a: (f"{a.get('caller', 'this account')} is not owner {a.get('ownerIndex', '')} of task "
                           f"{_task(a)}: reveal with the account that created or joined it",
                           f"codream task show {_task(a)}"),
    "EvalAlreadyRevealed": lambda a: (f"this owner's eval set of task {_task(a)} is revealed already",
                                      f"codream task show {_task(a)}"),
    "BadEvalReveal": lambda a: ("the eval CID or salt does not match this owner's commitment: reveal from the "
                                "CODREAM_HOME that committed it (the salt is kept there)",
                                f"codream task reveal-eval {_task(a)}"),
    # mining
    "UnknownTask": lambda a: (f"there is no task {_task(a)} on this market", "codream task list"),
    "WrongPhase": lambda a: (f"task {_task(a)} is in phase '{_phase(a['actual'])}', this step needs "
                             f"'{_phase(a['expected'])}'", f"codream task show {_task(a)}"),
    "WrongBond": lambda a: (f"send exactly the task's miner bond, {_eth(a['required'])}", "codream task list"),
    "TooManySubmissions": lambda a: (f"the task is full ({a['max']} submissions)", "codream task list"),
    "UnknownSubmission": lambda a: (f"task {_task(a)} has no submission {a.get('index')}",
                                    f"codream task show {_task(a)}"),
    "AlreadyRevealed": lambda a: (f"submission {a['index']} of task {_task(a)} is revealed already"
                                  if "index" in a else f"appeal seat {a.get('seat')} revealed its score already",
                                  f"codream task show {_task(a)}" if "taskId" in a else "codream verifier status"),
    "BadReveal": lambda a: ("the salt or CID does not match the commitment: reveal from the CODREAM_HOME that "
                            "committed (the salt is kept there)", "codream miner status"),
    "DuplicateCid": lambda a: (f"this bundle was revealed in task {_task(a)} already: copies are not paid; dream a "
                               "bundle of your own", "codream miner dream --help"),
    # committee draws
    "DrawPending": lambda a: (f"a draw is pending until block {a['lastBlock']}: draw the committee in that window",
                              f"codream task wait {_task(a)} --phase 'score commit' --mine"),
    "NoEligibleStake": lambda a: ("no verifier has active stake right now (new stake warms up first)",
                                  "codream verifier run --stake 1"),
    "DrawNotRequested": lambda a: (f"nobody requested task {_task(a)}'s committee draw yet (a verifier's keeper "
                                   "does)", "codream verifier run --keeper"),
    "SeedNotReached": lambda a: (f"the draw waits for its seed block {a['seedBlock']}", "codream devnet mine 2"),
    "DrawWindowMissed": lambda a: (f"the draw window closed at block {a['lastBlock']}: request the draw again",
                                   "codream verifier run --keeper"),
    # committee seats
    "NotSeatHolder": lambda a: (f"{a.get('caller', 'this address')} does not hold seat {a.get('seat')} of task "
                                f"{_task(a)}", "codream verifier status"),
    "ScoresAlreadyCommitted": lambda a: (f"seat {a['seat']} of task {_task(a)} committed its scores already",
                                         "codream verifier status"),
    "ScoresNotCommitted": lambda a: (f"seat {a['seat']} of task {_task(a)} committed no scores, so it has none to "
                                     "reveal", "codream verifier status"),
    "ScoresAlreadyRevealed": lambda a: (f"seat {a['seat']} of task {_task(a)} revealed its scores already",
                                       "codream verifier status"),
    "WrongScoreCount": lambda a: _bug(f"expected {a['expected']} scores, got {a['given']} (one per submission)"),
    "BadScoreReveal": lambda a: ("the scores or salt do not match the seat's commitment: reveal from the "
                                 "CODREAM_HOME that committed (the salt is kept there)", "codream verifier status"),
    "BadScore": lambda a: _bug(f"score {a['score']} is neither a gain in bps nor INVALID"),
    "BadVerdict": lambda a: _bug(f"owner {a['ownerIndex']}'s eval-set verdict {a['verdict']} is not a verdict"),
    "ZeroItems": lambda a: _bug("a batch of 0 items was asked for (the CLI never does)"),
    # money
    "NothingToWithdraw": lambda a: ("nothing is claimable for this address yet", "codream rewards"),
    "TransferFailed": lambda a: (f"{a.get('to')} did not accept {_eth(a.get('amount', 0))}: withdraw to an "
                                 "account that can receive ETH", "codream rewards"),
    # contract plumbing: only the market / registry / appeals module calls these
    "NotRegistry": lambda a: _bug("only the stake registry may call this"),
    "NotAppeals": lambda a: _bug("only the appeals module may call this"),
    "NotMarket": lambda a: _bug("only the market may call this"),
    "BadParams": lambda a: (f"the protocol parameters are inconsistent ({a['what']})",
                            "codream deploy --params production --help"),
    "SlotOutOfRange": lambda a: _bug(f"stake tree slot {a['slot']} is out of range (size {a['size']})"),
    "TargetOutOfRange": lambda a: _bug(f"draw target {a['target']} is out of range (total {a['total']})"),
    # appeals
    "NotRevealed": lambda a: (f"submission {a['index']} of task {_task(a)} was never revealed: only revealed "
                              "submissions can be appealed", f"codream task show {_task(a)}"),
    "AlreadyAppealed": lambda a: ("that submission was appealed already (one appeal each)",
                                  f"codream task show {_task(a)}"),
    "TooManyAppeals": lambda a: (f"the task has {a['max']} appeals already", "codream task list"),
    "WrongDeposit": lambda a: (f"an appeal of this task needs a deposit of exactly {_eth(a['required'])} (the "
                               "verifier agent appeals with the right one)", "codream verifier run"),
    "UnknownAppeal": lambda a: (f"task {_task(a)} has no appeal {a['appealId']}", f"codream task show {_task(a)}"),
    "WrongAppealStage": lambda a: (f"appeal {a['appealId']} of task {_task(a)} is at stage '{_stage(a['stage'])}' "
                                   "and cannot take this step", f"codream task show {_task(a)}"),
    "AppealDrawPending": lambda a: (f"the appeal's draw is pending until block {a['lastBlock']}",
                                    "codream devnet mine 2"),
    "AppealDrawClosed": lambda a: (f"the appeal committee's draw closed at {a['drawDeadline']} (unix time)",
                                   "codream task list"),
    "NotAppealSeatHolder": lambda a: (f"{a.get('caller', 'this address')} does not hold seat {a.get('seat')} of "
                                      f"appeal {a.get('appealId')} of task {_task(a)}", "codream verifier status"),
    "AppealWindowClosed": lambda a: (f"the appeal window closed at {a['end']} (unix time)", "codream task list"),
    "AppealNotOver": lambda a: (f"this appeal step is open until {a['end']} (unix time): wait for it (a devnet "
                                "moves time on demand)", "codream devnet warp --help"),
    "AlreadyCommitted": lambda a: (f"appeal seat {a['seat']} committed its score already", "codream verifier status"),
    "NotCommitted": lambda a: (f"appeal seat {a['seat']} committed no score, so it has none to reveal",
                               "codream verifier status"),
    "BadAppealReveal": lambda a: ("the score or salt does not match the appeal seat's commitment: reveal from the "
                                  "CODREAM_HOME that committed", "codream verifier status"),
    # stake
    "Unbonding": lambda a: ("this stake is unbonding; an unbonding cannot be cancelled: withdraw it once the delay "
                            "is over, then stake again", "codream verifier withdraw-stake"),
    "BelowMinStake": lambda a: (f"a stake must total at least {_eth(a['required'])} (it would be "
                                f"{_eth(a['total'])})", f"codream verifier run --stake {a['required'] / WEI:g}"),
    "NoStake": lambda a: (f"{a.get('verifier', 'this account')} has no stake, active or pending, to unbond",
                          "codream verifier status"),
    "NothingPending": lambda a: ("no pending stake to activate", "codream verifier status"),
    "WarmingUp": lambda a: (f"this stake is warming up: it counts from {a['activatesAt']} (unix time), "
                            f"{max(0, a['activatesAt'] - a['time'])} s from now",
                            "codream verifier wait --active"),
    "NotUnbonding": lambda a: ("this stake is not unbonding: start the unbonding first, then withdraw after the "
                               "unbonding delay", "codream verifier unbond"),
    "UnbondingNotOver": lambda a: (f"the unbonding ends at {a['unbondAt']} (unix time), "
                                   f"{max(0, a['unbondAt'] - a['time'])} s from now", "codream verifier status"),
    "StakeLocked": lambda a: (f"the stake holds {a['lockedSeats']} committee seat(s) in unsettled tasks: withdraw "
                              "once they settle", "codream verifier status"),
}


def describe_revert(error: str, args: dict) -> tuple[str, str] | None:
    """(what it means, the command to run next) for a decoded custom error, or None."""
    hint = HINTS.get(error)
    try:
        return hint(args) if hint else None
    except (KeyError, ValueError, TypeError):
        return None


def load_account(spec: str):
    """``dev:N`` (devnet dev account N) or a path to an encrypted keystore JSON file."""
    if spec.startswith("dev:"):
        try:
            return Account.from_key(dev_private_key(int(spec[4:])))
        except ValueError:
            raise ChainError(f"account {spec!r}: a devnet account is dev:N with N a number (dev:0 … dev:9)") from None
    path = Path(spec).expanduser()
    try:
        keystore = json.loads(path.read_text())
    except FileNotFoundError:
        raise ChainError(f"keystore {path} not found (create one with `codream account new`)") from None
    except (json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError):
        raise ChainError(f"{path} is not a keystore file (JSON)") from None
    password = os.environ.get("CODREAM_KEYSTORE_PASSWORD")
    if password is None:
        password = getpass.getpass(f"password for {path}: ")
    try:
        return Account.from_key(Account.decrypt(keystore, password))
    except (ValueError, KeyError, TypeError):
        raise ChainError(f"wrong password for keystore {path} (or not an encrypted keystore)") from None


def new_keystore(path: str | Path, password: str) -> str:
    acct = Account.create()
    Path(path).write_text(json.dumps(Account.encrypt(acct.key, password)))
    os.chmod(path, 0o600)
    return acct.address


def check_rpc_url(url: str) -> str:
    """An http(s) URL with a host, or a ChainError that says what is wrong."""
    u = urlparse(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ChainError(f"RPC URL {url!r} is not an http(s) URL like http://127.0.0.1:8545")
    try:
        u.port
    except ValueError:
        raise ChainError(f"RPC URL {url!r} has a bad port") from None
    return url


def retry_configuration(seconds: float, backoff: float = 0.25) -> ExceptionRetryConfiguration:
    """web3's retry configuration whose backoff (backoff · 2^i) adds up to about ``seconds``."""
    attempts = max(1, math.ceil(math.log2(max(seconds, backoff) / backoff + 1)) + 1) if seconds > 0 else 1
    return ExceptionRetryConfiguration(errors=(requests.ConnectionError, requests.Timeout), retries=attempts,
                                       backoff_factor=backoff)


FIRST_CONTACT_TIMEOUT = (1.0, 2.0)  # seconds to connect, to answer: the first request to an RPC
FIRST_CONTACT_TRIES = 2  # a refused or timed-out connection is tried once more (a silent node is not)


def first_contact(url: str) -> int:
    """The chain id of the RPC at ``url``, asked with short timeouts and one quick retry (web3's
    own request timeout and retry configuration): a URL where no node answers is reported within
    3 s. Only an RPC that answered once gets the patient retry that rides out outages."""
    probe = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": FIRST_CONTACT_TIMEOUT},
                                   exception_retry_configuration=ExceptionRetryConfiguration(
                                       errors=(requests.ConnectionError,), retries=FIRST_CONTACT_TRIES,
                                       backoff_factor=0.25)))
    fix = ("is the node up and the URL right? (devnet: `codream devnet up`; elsewhere pass --rpc-url or set "
           "$CODREAM_RPC_URL)")
    try:
        return probe.eth.chain_id
    except requests.ConnectTimeout:
        why = f"could not connect within {FIRST_CONTACT_TIMEOUT[0]:g} s, {FIRST_CONTACT_TRIES} tries"
    except requests.Timeout:
        why = f"connected, but no answer within {FIRST_CONTACT_TIMEOUT[1]:g} s"
    except requests.ConnectionError as exc:
        text = str(exc).lower()
        why = ("connection refused" if "refused" in text else
               "unknown host" if "resolve" in text or "name or service" in text or "nodename" in text else
               type(exc).__name__)
    except (requests.RequestException, ValueError, Web3RPCError) as exc:  # answered, but not as an Ethereum node
        raise ChainError(f"{url} answered, but not as an Ethereum JSON-RPC node ({str(exc)[:120]}): "
                         "check --rpc-url / $CODREAM_RPC_URL") from None
    raise ChainUnavailable(f"no Ethereum RPC answers at {url} ({why}): {fix}")


@dataclass
class ChainConfig:
    rpc_url: str
    deployment: str | None = None  # record path (default: the devnet's)
    confirmations: int = 1
    retry_seconds: float = 120.0  # keep retrying an unreachable RPC about this long
    patient_start: bool = False  # agents: ride out an RPC that is down when they start, too (no fast first contact)


class Chain:
    """One market (with its stake registry, appeals module and lens), one account. Views are
    methods; writes go through ``send``. ``on="registry"`` (``"appeals"``, ``"lens"``) addresses
    that contract instead of the market."""

    def __init__(self, cfg: ChainConfig, account=None):
        self.cfg = cfg
        check_rpc_url(cfg.rpc_url)
        if not cfg.patient_start:
            self.chain_id = first_contact(cfg.rpc_url)  # fails fast; from here on, outages are ridden out
        self.w3 = Web3(Web3.HTTPProvider(cfg.rpc_url, request_kwargs={"timeout": 10},
                                         exception_retry_configuration=retry_configuration(cfg.retry_seconds)))
        if cfg.patient_start:  # an agent started while its node is (re)starting waits for it
            self.chain_id = self._rpc("chain id", lambda: self.w3.eth.chain_id)
        rec = load_record(cfg.deployment)
        self.record = rec
        cs = rec["contracts"]
        m = cs["CoDreamMarket"]
        self.address = Web3.to_checksum_address(m["address"])
        self.deploy_block = m.get("block", 0)

        def contract(name: str):
            return self.w3.eth.contract(address=Web3.to_checksum_address(cs[name]["address"]), abi=cs[name]["abi"])

        self.market, self.registry = contract("CoDreamMarket"), contract("StakeRegistry")
        self.appeals, self.lens = contract("CoDreamAppeals"), contract("CoDreamLens")
        self._contracts = {"market": self.market, "registry": self.registry, "appeals": self.appeals,
                           "lens": self.lens}
        self.account = account
        self._errors = {}
        for item in (i for name in cs for i in cs[name]["abi"]):
            if item.get("type") == "error":
                sig = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
                self._errors[keccak(text=sig)[:4]] = (item["name"], [i["type"] for i in item["inputs"]],
                                                      [i["name"] for i in item["inputs"]])
        if rec.get("chain_id") not in (None, self.chain_id):
            raise ChainError(f"the RPC at {cfg.rpc_url} serves chain {self.chain_id}, but the deployment record "
                             f"is for chain {rec['chain_id']}: use the RPC URL and deployment record of one network")

    @property
    def devnet(self) -> bool:
        return is_devnet(self.chain_id)

    def genesis_hash(self) -> bytes:
        """The hash of block 0: with the chain id and the market's address, what tells one chain
        instance from another (a restarted devnet has a new one)."""
        return bytes(self._rpc("genesis block", lambda: self.w3.eth.get_block(0))["hash"])

    # -- plumbing -----------------------------------------------------------------
    def _rpc(self, what: str, fn):
        """Run one RPC interaction; the transport has already retried connection errors."""
        try:
            return fn()
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ChainUnavailable(f"{what}: the RPC at {self.cfg.rpc_url} did not answer for "
                                   f"{self.cfg.retry_seconds:g}s ({type(exc).__name__}); is the node up?") from None
        except requests.RequestException as exc:
            raise ChainError(f"{what}: cannot talk to the RPC at {self.cfg.rpc_url}: {exc}") from None

    def decode_revert(self, data) -> tuple[str, dict]:
        if isinstance(data, str):
            data = bytes.fromhex(data[2:] if data.startswith("0x") else data)
        if not data or len(data) < 4:
            return "reverted without a reason", {}
        sel, body = bytes(data[:4]), bytes(data[4:])
        if sel == keccak(text="Error(string)")[:4]:
            return abi_decode(["string"], body)[0], {}
        if sel in self._errors:
            name, types, names = self._errors[sel]
            try:
                return name, dict(zip(names, abi_decode(types, body)))
            except Exception:  # noqa: BLE001 - a malformed payload still has a name
                return name, {}
        return f"unknown error 0x{sel.hex()}", {}

    def _revert_of(self, exc) -> tuple[str, dict]:
        data = getattr(exc, "data", None)
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(data, (str, bytes)) and data:
            return self.decode_revert(data)
        return str(exc), {}

    def _fn(self, on: str, fn_name: str, args):
        return getattr(self._contracts[on].functions, fn_name)(*args)

    def call(self, fn_name: str, *args, on: str = "market"):
        fn = self._fn(on, fn_name, args)
        try:
            return self._rpc(fn_name, fn.call)
        except (ContractLogicError, ContractCustomError) as exc:
            name, a = self._revert_of(exc)
            raise TxReverted(fn_name, name, a) from None

    def estimate_gas(self, fn_name: str, *args, value: int = 0, on: str = "market") -> int:
        """The gas a call would use now (eth_estimateGas); a revert raises TxReverted."""
        fn = self._fn(on, fn_name, args)
        sender = self.account.address if self.account is not None else None
        try:
            return self._rpc(fn_name, lambda: fn.estimate_gas({"from": sender, "value": value}))
        except (ContractLogicError, ContractCustomError) as exc:
            name, a = self._revert_of(exc)
            raise TxReverted(fn_name, name, a) from None

    def tree_write_gas(self) -> int:
        """A gas floor for a call that rewrites the registry's sum tree (stake activation, unbond,
        a settlement that slashes): every node on a leaf's path may need a new checkpoint slot."""
        return 80_000 + 26_000 * (max(1, self.call("verifierCount", on="registry")).bit_length() + 2)

    def balance(self, address: str | None = None) -> int:
        return self._rpc("balance", lambda: self.w3.eth.get_balance(address or self.account.address))

    def send(self, fn_name: str, *args, value: int = 0, on: str = "market", min_gas: int = 0):
        """Sign and send; wait for ``confirmations``. A revert is explained, never retried; a
        transaction that ran out of gas because the state moved between estimate and inclusion
        (other senders changed what it touches) is sent again with a fresh estimate and a larger
        margin, at most twice. ``min_gas``: a floor for the gas limit (a registry write's cost
        depends on whether its sum-tree nodes were already checkpointed in the block it lands in,
        which an estimate cannot know)."""
        if self.account is None:
            raise ChainError("no account to sign with (a devnet account dev:N or an encrypted keystore)")
        fn = self._fn(on, fn_name, args)
        for margin in (1.3, 2.0, 3.0):
            receipt, gas_limit = self._send_once(fn_name, fn, value, margin, min_gas)
            if receipt.status == 1:
                break
            if receipt.gasUsed < gas_limit * 0.98:  # not out of gas: a real revert (the state changed)
                raise TxReverted(fn_name, "reverted on chain (the state changed between estimate and inclusion)", {})
            log.warning("%s ran out of gas (%d); sending again with a larger margin", fn_name, gas_limit)
        else:
            raise TxReverted(fn_name, f"ran out of gas three times (last limit {gas_limit})", {})
        if self.cfg.confirmations > 1:
            target = receipt.blockNumber + self.cfg.confirmations - 1
            while self._rpc("block number", lambda: self.w3.eth.block_number) < target:
                time.sleep(1)
        return receipt

    def _send_once(self, fn_name: str, fn, value: int, margin: float, min_gas: int = 0):
        sender = self.account.address
        try:
            gas = self._rpc(fn_name, lambda: fn.estimate_gas({"from": sender, "value": value}))
        except (ContractLogicError, ContractCustomError) as exc:
            name, a = self._revert_of(exc)
            raise TxReverted(fn_name, name, a) from None
        except Web3RPCError as exc:
            if "insufficient funds" in str(exc).lower():
                self._insufficient(fn_name, value, 0)
            raise ChainError(f"{fn_name}: the node refused the transaction: {exc}") from None
        base = self._rpc(fn_name, lambda: self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
        tip = 0 if self.devnet else self.w3.to_wei(1, "gwei")
        gas_limit, max_fee = max(int(gas * margin) + 30_000, min_gas), 2 * base + tip
        if self.balance(sender) < value + gas_limit * max_fee:
            self._insufficient(fn_name, value, gas_limit * max_fee)
        tx = fn.build_transaction({"from": sender, "value": value, "gas": gas_limit,
                                   "nonce": self._rpc(fn_name, lambda: self.w3.eth.get_transaction_count(sender,
                                                                                                        "pending")),
                                   "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip, "chainId": self.chain_id})
        signed = self.account.sign_transaction(tx)
        try:
            h = self._rpc(fn_name, lambda: self.w3.eth.send_raw_transaction(signed.raw_transaction))
        except Web3RPCError as exc:
            # a retried send whose first attempt reached the node: the transaction is known
            if self._rpc(fn_name, lambda: self._known(signed.hash)):
                h = signed.hash
            else:
                raise ChainError(f"{fn_name}: the node refused the transaction: {exc}") from None
        try:
            receipt = self._rpc(fn_name, lambda: self.w3.eth.wait_for_transaction_receipt(h, timeout=120))
        except TimeExhausted:
            raise ChainError(f"{fn_name}: transaction 0x{bytes(h).hex()} was not mined within 120 s") from None
        return receipt, gas_limit

    def _known(self, tx_hash) -> bool:
        try:
            self.w3.eth.get_transaction(tx_hash)
            return True
        except Exception:  # noqa: BLE001 - TransactionNotFound and friends
            return False

    def _insufficient(self, what: str, value: int, fees: int):
        have = self.balance(self.account.address)
        hint = " (devnet: `codream devnet fund ADDRESS`)" if self.devnet else ""
        raise InsufficientFunds(f"{what}: {self.account.address} has {have / WEI:.4f} ETH but needs "
                                f"{value / WEI:.4f} ETH plus about {fees / WEI:.6f} ETH of gas{hint}")

    # -- views ------------------------------------------------------------------------
    def block(self, which="latest"):
        return self._rpc("block", lambda: self.w3.eth.get_block(which))

    def is_final(self, number: int, fallback_depth: int) -> bool:
        """Whether block ``number`` can no longer be reorganised away: at or below the node's
        ``finalized`` block (proof-of-stake Ethereum and its testnets: about two epochs, ~13 min;
        anvil: 2 × ``--slots-in-an-epoch`` blocks behind the head). A node that does not know the
        tag (it answers with an error, or with no block): ``fallback_depth`` blocks deep."""
        try:
            fin = self._rpc("finalized block", lambda: self.w3.eth.get_block("finalized"))
        except (Web3RPCError, BlockNotFound, ValueError):
            return self.block()["number"] >= number + fallback_depth
        return fin["number"] >= number

    def first_block_after(self, timestamp: int, lo: int | None = None):
        """The first block stamped after ``timestamp`` (a binary search from block ``lo``, else
        the deployment's block), or None while the latest block is not past it yet."""
        latest = self.block()
        if latest["timestamp"] <= timestamp:
            return None
        lo, hi = max(0, self.deploy_block if lo is None else lo), latest["number"]
        while lo < hi:  # the smallest block in [lo, hi] stamped after `timestamp` (block hi is)
            mid = (lo + hi) // 2
            if self.block(mid)["timestamp"] > timestamp:
                hi = mid
            else:
                lo = mid + 1
        return self.block(hi)

    def phase(self, task_id: int) -> int:
        return self.call("phaseOf", task_id)

    def view(self, fn_name: str, *args, on: str = "market") -> dict:
        """A view returning one struct, as a dict keyed by the ABI's field names."""
        value = self.call(fn_name, *args, on=on)
        abi = next(i for i in self._contracts[on].abi if i.get("type") == "function" and i["name"] == fn_name)
        return _named(abi["outputs"][0], value)

    def view_list(self, fn_name: str, *args, on: str = "market") -> list[dict]:
        """A view returning an array of structs, as a list of dicts."""
        values = self.call(fn_name, *args, on=on)
        abi = next(i for i in self._contracts[on].abi if i.get("type") == "function" and i["name"] == fn_name)
        item = dict(abi["outputs"][0], type=abi["outputs"][0]["type"][:-2])
        return [_named(item, v) for v in values]

    def events(self, name: str, task_id: int | None = None, on: str = "market", **filters) -> list[dict]:
        ev = getattr(self._contracts[on].events, name)
        if task_id is not None:
            filters["taskId"] = task_id
        logs = self._rpc(f"{name} logs", lambda: ev.get_logs(from_block=self.deploy_block,
                                                             argument_filters=filters or None))
        return [dict(log_["args"], blockNumber=log_["blockNumber"], tx="0x" + bytes(log_["transactionHash"]).hex())
                for log_ in logs]

    # -- devnet only --------------------------------------------------------------------
    def increase_time(self, seconds: int) -> None:
        """Devnet only: move anvil's clock and mine a block."""
        self.w3.provider.make_request("evm_increaseTime", [int(seconds)])
        self.w3.provider.make_request("evm_mine", [])

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.w3.provider.make_request("evm_mine", [])


def _named(abi_item: dict, value):
    """A decoded ABI value with struct fields named (recursively)."""
    if abi_item["type"] == "tuple":
        return {c["name"]: _named(c, v) for c, v in zip(abi_item["components"], value)}
    if abi_item["type"] == "tuple[]":
        inner = dict(abi_item, type="tuple")
        return [_named(inner, v) for v in value]
    return value
