"""What every agent (miner, verifier) shares: durable state, bounded structured logs, and
one run loop (poll, back off on outages, advance each task on its own, claim).

State is one JSON file per (role, address, chain instance), rewritten atomically (temp
file, fsync, rename) *before* any transaction that depends on it is sent: a salt is on
disk before its commitment is on chain, so a killed agent never loses one. The chain
instance is the chain id, its genesis block and the market address, so a fresh devnet
(same address, new genesis) starts with fresh state and an old one resumes.
"""
from __future__ import annotations

import json
import logging
import logging.handlers
import os
import tempfile
import time
from pathlib import Path

from ipfs import IpfsError, IpfsUnavailable

from . import config
from .chain import Chain, ChainError, ChainUnavailable

MAX_BACKOFF = 30.0  # seconds between passes while the RPC or IPFS node is away


class TaskError(RuntimeError):
    """One task cannot move on right now for its own reasons; the loop logs it and goes on."""


def chain_key(chain: Chain) -> str:
    """What identifies one chain instance and market: chain id, genesis hash, contract."""
    return f"{chain.chain_id}-{chain.genesis_hash().hex()[:12]}-{chain.address.lower()}"


class AgentState:
    def __init__(self, role: str, address: str, key: str):
        self.dir = config.home() / "agents" / f"{role}-{address.lower()}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / f"state-{key}.json"
        self.data: dict = json.loads(self.path.read_text()) if self.path.exists() else {"tasks": {}}

    def task(self, task_id: int) -> dict:
        return self.data["tasks"].setdefault(str(task_id), {"stage": "new"})

    def save(self) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".state-")
        with os.fdopen(fd, "w") as fh:
            json.dump(self.data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"t": round(record.created, 3), "level": record.levelname, "agent": record.name,
               "msg": record.getMessage()}
        out.update(getattr(record, "fields", {}))
        return json.dumps(out, default=str)


def agent_logger(name: str, directory: Path, verbose: bool = True) -> logging.Logger:
    """JSON lines to ``directory/agent.log`` (rotated at 1 MB, 3 kept) and plain text to stderr."""
    log = logging.getLogger(f"codream.agent.{name}")
    log.setLevel(logging.INFO)
    log.propagate = False
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    fh = logging.handlers.RotatingFileHandler(directory / "agent.log", maxBytes=1 << 20, backupCount=3)
    fh.setFormatter(_JsonFormatter())
    log.addHandler(fh)
    if verbose:
        sh = logging.StreamHandler()
        sh.setFormatter(logging.Formatter(f"%(asctime)s {name} %(message)s", "%H:%M:%S"))
        log.addHandler(sh)
    return log


def event(log: logging.Logger, msg: str, level: int = logging.INFO, **fields) -> None:
    log.log(level, msg + (" " + " ".join(f"{k}={v}" for k, v in fields.items()) if fields else ""),
            extra={"fields": fields})


class Agent:
    """The loop both agents run. Subclasses say which tasks they look at (``tasks``) and how
    one task moves on (``advance``: True while the task still needs this agent)."""

    role = "agent"
    DONE_STAGES: tuple[str, ...] = ()

    def __init__(self, chain: Chain, ipfs, claim: bool = True, verbose: bool = True):
        self.chain, self.ipfs, self.claim = chain, ipfs, claim
        self.me = chain.account.address
        self.state = AgentState(self.role, self.me, chain_key(chain))
        self.log = agent_logger(f"{self.role}-{self.me[:8]}", self.state.dir, verbose)
        self._retry: dict[int, tuple[float, float]] = {}  # task -> (next try, current backoff)

    # -- what subclasses provide ----------------------------------------------------
    def tasks(self) -> list[int]:
        return list(range(1, self.chain.call("taskCount") + 1))

    def prepare(self) -> None:
        """Once per pass, before the tasks (e.g. stake)."""

    def background(self) -> bool:
        """Once per pass, after every task had its quick step: a slice of long work (scoring).
        True while there is more of it."""
        return False

    def advance(self, tid: int, st: dict, phase: int) -> bool:
        raise NotImplementedError

    def joined_any(self) -> bool:
        return bool(self.state.data["tasks"])

    # -- the loop -------------------------------------------------------------------------
    def run(self, poll: float = 2.0, until_idle: bool = False) -> None:
        """Pass over the tasks every ``poll`` seconds until stopped (or, with ``until_idle``, until
        every task it joined is settled). Outages are retried with backoff; an error no retry can
        heal (e.g. a stake below the minimum) is logged and raised."""
        event(self.log, "started", address=self.me, market=self.chain.address, log_file=self.state.dir / "agent.log")
        delay, idle_said = poll, False
        while True:
            try:
                busy = self.step()
                delay = poll
            except (ChainUnavailable, IpfsUnavailable) as exc:  # outages: report, back off, carry on
                event(self.log, "retrying after error", logging.WARNING, error=str(exc), retry_in=f"{delay:.0f} s")
                busy = True
                delay = min(delay * 2, MAX_BACKOFF)
            except ChainError as exc:  # not a task's trouble and not an outage: retrying cannot help
                event(self.log, f"stopped: {exc}", logging.ERROR)
                raise
            if until_idle and not busy and self.joined_any():
                event(self.log, "idle: every task settled")
                return
            if not busy and not idle_said:
                event(self.log, f"no open task needs this {self.role}; polling every {poll:g} s")
            idle_said = not busy
            time.sleep(delay)

    def step(self) -> bool:
        """One pass over the tasks; True while some task still needs this agent. A task whose
        step fails for its own reasons (a revert, content nobody serves) is logged and retried
        next pass; it never stops the others."""
        self.prepare()
        busy = False
        for tid in self.tasks():
            st = self.state.task(tid)
            if st["stage"] in self.DONE_STAGES:
                continue
            if time.monotonic() < self._retry.get(tid, (0, 0))[0]:
                busy = True
                continue
            try:
                busy |= self.advance(tid, st, self.chain.phase(tid))
                self._retry.pop(tid, None)
            except (ChainUnavailable, IpfsUnavailable):
                raise
            except (ChainError, IpfsError, TaskError) as exc:  # this task's own trouble: back off, go on
                wait = min(MAX_BACKOFF, 2 * self._retry.get(tid, (0, 1.0))[1])
                self._retry[tid] = (time.monotonic() + wait, wait)
                event(self.log, "retrying after error", logging.WARNING, task=tid, error=str(exc),
                      retry_in=f"{wait:.0f} s")
                busy = True
        try:
            busy |= self.background()
        except (ChainUnavailable, IpfsUnavailable):
            raise
        except (ChainError, IpfsError, TaskError) as exc:
            event(self.log, "retrying after error", logging.WARNING, error=str(exc))
            busy = True
        if self.claim:
            self.claim_rewards()
        return busy

    def claim_rewards(self) -> None:
        owed = self.chain.call("claimable", self.me)
        if owed:
            self.chain.send("withdraw")
            event(self.log, "claimed", wei=owed)

    def save_stage(self, st: dict, stage: str, **fields) -> None:
        st.update(stage=stage, **fields)
        self.state.save()
