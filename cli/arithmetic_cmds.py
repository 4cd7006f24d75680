"""`codream arithmetic [--task-spec PATH]`: the CPU arithmetic this machine dreams and replays
receipts in (codream/arithmetic.py), and whether it is the one a task's receipts need."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from codream import arithmetic
from codream.spec import SpecError, load as load_spec, receipt_config

from .common import emit, fail


def arithmetic_cmd(task_spec: Optional[Path] = typer.Option(None, "--task-spec", help="a task's spec.json: can "
                                                               "this machine mine and judge its receipts?"),
                   families: bool = typer.Option(False, "--families", help="also each kernel family's digest "
                                                 "(compare two machines whose canaries differ)")) -> None:
    """Print this machine's receipt arithmetic (the pinned kernels and the canary digest) as JSON."""
    expected = None
    if task_spec is not None:
        try:
            rec = receipt_config(load_spec(task_spec))
        except (OSError, SpecError) as exc:
            fail(f"cannot read the task spec {task_spec}: {exc}")
        expected = rec["arithmetic"]
    out = {**arithmetic.describe(expected), "problems": arithmetic.problems(expected)}
    if task_spec is not None:
        out["task"] = {"spec": str(task_spec), "receipts_required": rec["required"],
                       "arithmetic": expected or f"{arithmetic.CANARY} (the reference: the spec names none)",
                       "can_mine_and_judge": not rec["required"] or not out["problems"]}
    if families:
        out["families"] = arithmetic.families()
    emit(out)
