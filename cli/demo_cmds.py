"""`codream demo`: one full network round on a local devnet."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .common import fail
from codream.chain import ChainError

from .adversarial import N_DREAMS, run as adversarial_run
from .demo import run
from .devnet import DevnetError


def demo(keep_up: bool = typer.Option(False, "--keep-up", help="Leave the devnet running afterwards."),
         n: Optional[int] = typer.Option(None, help="Dreams per bundle (default 1000; adversarial 300)."),
         adversarial: bool = typer.Option(False, "--adversarial", help="Every cheating strategy against honest "
                                          "parties, two rounds, ~10 min: who loses what, and why."),
         task: str = typer.Option("digits", help="Reference task: digits (fast) or mnist (28×28; minutes per "
                                  "miner and verifier on CPU)."),
         json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the result as JSON here.")):
    """Run a full network round on a local devnet (3 miners, 3 verifiers, settlement)."""
    if task not in ("digits", "mnist"):
        fail(f"--task must be digits or mnist, got {task!r}")
    try:
        result = adversarial_run(keep_up, n or N_DREAMS) if adversarial else run(keep_up, n or 1000, task=task)
    except (DevnetError, RuntimeError, ChainError) as exc:
        fail(str(exc))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2, default=str))
