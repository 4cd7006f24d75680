"""Durable agent state and bounded structured logs.

State is one JSON file per (role, address, contract), rewritten atomically (temp file,
fsync, rename) *before* any transaction that depends on it is sent: a salt is on disk
before its commitment is on chain, so a killed agent never loses one.
"""
from __future__ import annotations

import json
import logging
import logging.handlers
import os
import tempfile
from pathlib import Path

from . import config


class AgentState:
    def __init__(self, role: str, address: str, contract: str):
        self.dir = config.home() / "agents" / f"{role}-{address.lower()}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / f"state-{contract.lower()}.json"
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
    log = logging.getLogger(name)
    log.setLevel(logging.INFO)
    log.handlers.clear()
    fh = logging.handlers.RotatingFileHandler(directory / "agent.log", maxBytes=1 << 20, backupCount=3)
    fh.setFormatter(_JsonFormatter())
    log.addHandler(fh)
    if verbose:
        sh = logging.StreamHandler()
        sh.setFormatter(logging.Formatter(f"%(asctime)s {name} %(message)s", "%H:%M:%S"))
        log.addHandler(sh)
    logging.getLogger("codream.chain").handlers = log.handlers
    return log


def event(log: logging.Logger, msg: str, **fields) -> None:
    log.info(msg + (" " + " ".join(f"{k}={v}" for k, v in fields.items()) if fields else ""),
             extra={"fields": fields})
