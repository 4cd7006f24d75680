"""`codream demo`: one full network round on a local devnet; `--co-owned --offline`: the
co-owned task (two owners, two architectures) without a chain."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Optional

import typer

from codream.chain import ChainError

from .adversarial import N_DREAMS, run as adversarial_run
from .common import fail, set_threads
from .coowned import run_offline
from .demo import run
from .devnet import DevnetError


def demo(keep_up: bool = typer.Option(False, "--keep-up", help="Leave the devnet running afterwards."),
         n: Optional[int] = typer.Option(None, help="Dreams per bundle (default 1000; adversarial 300)."),
         adversarial: bool = typer.Option(False, "--adversarial", help="Every cheating strategy against honest "
                                          "parties, two rounds, ~10 min: who loses what, and why."),
         task: str = typer.Option("digits", help="Reference task: digits (fast) or mnist (28×28; minutes per "
                                  "miner and verifier on CPU)."),
         co_owned: bool = typer.Option(False, "--co-owned", help="Two owners with different data and "
                                       "architectures fund one task; prints the accuracy table."),
         offline: bool = typer.Option(False, "--offline", help="With --co-owned: no chain, the owners' and "
                                      "miner's work only."),
         seeds: str = typer.Option("0", help="With --co-owned --offline: comma-separated seeds."),
         work: Optional[Path] = typer.Option(None, help="With --co-owned --offline: keep the folders here."),
         threads: Optional[int] = typer.Option(None, help="CPU threads."),
         json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the result as JSON here.")):
    """Run a full network round on a local devnet (3 miners, 3 verifiers, settlement)."""
    if task not in ("digits", "mnist"):
        fail(f"--task must be digits or mnist, got {task!r}")
    if co_owned:
        if not offline:
            fail("the co-owned round on the devnet needs market v2 (co-funding, one eval reveal per owner); "
                 "run `codream demo --co-owned --offline` for the owners' and miner's side")
        set_threads(threads)
        try:
            seed_list = [int(s) for s in seeds.split(",")]
        except ValueError:
            fail(f"--seeds: comma-separated integers, got {seeds!r}")
        with tempfile.TemporaryDirectory() as tmp:
            run_offline(work or Path(tmp), seed_list, n or 1000, json_out=json_out)
        return
    try:
        result = adversarial_run(keep_up, n or N_DREAMS) if adversarial else run(keep_up, n or 1000, task=task)
    except (DevnetError, RuntimeError, ChainError) as exc:
        fail(str(exc))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2, default=str))
