"""`codream demo`: one full network round on a local devnet; `--co-owned --offline`: the
co-owned task (two owners, two architectures) without a chain."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Optional

import typer

from .common import fail, set_threads
from .coowned import run_offline
from .demo import run
from .devnet import DevnetError


def demo(keep_up: bool = typer.Option(False, "--keep-up", help="Leave the devnet running afterwards."),
         n: int = typer.Option(1000, help="Dreams per bundle."),
         co_owned: bool = typer.Option(False, "--co-owned", help="Two owners with different data and "
                                       "architectures fund one task; prints the accuracy table."),
         offline: bool = typer.Option(False, "--offline", help="With --co-owned: no chain, the owners' and "
                                      "miner's work only."),
         seeds: str = typer.Option("0", help="With --co-owned --offline: comma-separated seeds."),
         work: Optional[Path] = typer.Option(None, help="With --co-owned --offline: keep the folders here."),
         threads: Optional[int] = typer.Option(None, help="CPU threads."),
         json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the result as JSON here.")):
    """Run a full network round on a local devnet (3 miners, 3 verifiers, settlement)."""
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
            run_offline(work or Path(tmp), seed_list, n, json_out=json_out)
        return
    try:
        result = run(keep_up, n)
    except (DevnetError, RuntimeError) as exc:
        fail(str(exc))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2, default=str))
