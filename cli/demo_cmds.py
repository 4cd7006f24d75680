"""`codream demo`: one full network round on a local devnet; `--co-owned`: the co-owned task
(two owners, two architectures) on the devnet, or without a chain with `--offline`."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Optional

import typer

from codream.chain import ChainError

from rounds.adversarial import N_DREAMS, run as adversarial_run
from .common import fail, set_threads
from rounds.coowned import CoOwnedDemo, run_offline
from rounds.demo import run
from rounds.devnet import DevnetError, default_ports


def demo(keep_up: bool = typer.Option(False, "--keep-up", help="Leave the devnet running afterwards."),
         n: Optional[int] = typer.Option(None, help="Dreams per bundle (default 1000; adversarial 300)."),
         adversarial: bool = typer.Option(False, "--adversarial", help="Every cheating strategy against honest "
                                          "parties, two rounds, ~10 min: who loses what, and why."),
         task: str = typer.Option("digits", help="Reference task: digits (fast) or mnist (28×28; minutes per "
                                  "miner and verifier on CPU)."),
         co_owned: bool = typer.Option(False, "--co-owned", help="Two owners with different data and "
                                       "architectures fund one task, miners co-dream, the owners harvest a "
                                       "student; prints the money and accuracy tables (a few minutes)."),
         offline: bool = typer.Option(False, "--offline", help="With --co-owned: no chain, the owners' and "
                                      "miner's work only."),
         seeds: str = typer.Option("0", help="With --co-owned: the seed (--offline: comma-separated seeds)."),
         work: Optional[Path] = typer.Option(None, help="With --co-owned --offline: keep the folders here."),
         threads: Optional[int] = typer.Option(None, help="CPU threads."),
         anvil_port: Optional[int] = typer.Option(None, help="Devnet chain port (default: from $CODREAM_RPC_URL, "
                                                  "else 8545)."),
         ipfs_port: Optional[int] = typer.Option(None, help="Devnet IPFS port (default: from $CODREAM_IPFS_API, "
                                                 "else 5001)."),
         json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the result as JSON here.")):
    """Run a full network round on a local devnet (3 miners, 3 verifiers, settlement)."""
    if task not in ("digits", "mnist"):
        fail(f"--task must be digits or mnist, got {task!r}")
    ports = default_ports()
    ports = (anvil_port or ports[0], ipfs_port or ports[1])
    if co_owned:
        set_threads(threads)
        try:
            seed_list = [int(s) for s in seeds.split(",")]
        except ValueError:
            fail(f"--seeds: comma-separated integers, got {seeds!r}")
        if offline:
            with tempfile.TemporaryDirectory() as tmp:
                run_offline(work or Path(tmp), seed_list, n or 1000, json_out=json_out)
            return
        if len(seed_list) != 1:
            fail("--co-owned on the devnet runs one seed; several seeds: add --offline")
        try:
            result = CoOwnedDemo(keep_up, n or 300, anvil_port=ports[0], ipfs_port=ports[1], seed=seed_list[0],
                                 threads=threads or 1).run()
        except (DevnetError, RuntimeError, ChainError, ValueError) as exc:
            fail(str(exc))
    else:
        try:
            result = (adversarial_run(keep_up, n or N_DREAMS, *ports) if adversarial else
                      run(keep_up, n or 1000, *ports, task=task))
        except (DevnetError, RuntimeError, ChainError) as exc:
            fail(str(exc))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2, default=str))
