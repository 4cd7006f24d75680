"""`codream teacher ...`: task owners train reference teachers."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from codream import data as D
from owner.teacher import DATASETS, train_reference

from .common import emit, fail, set_threads

app = typer.Typer(help="Train reference teachers (task owners).", no_args_is_help=True)


@app.callback()
def teacher() -> None:
    """Train reference teachers (task owners)."""  # a group even with one command: `codream teacher train`


@app.command("train")
def teacher_train(dataset: str = typer.Option("digits", help=f"One of: {', '.join(DATASETS)}."),
                  data_path: Optional[Path] = typer.Option(None, help="cifar-10-batches-py folder (cifar10)."),
                  out: Path = typer.Option(Path("task"), help="Folder for teacher, eval set and spec."),
                  arch: Optional[str] = typer.Option(None, help="Teacher architecture (default per dataset)."),
                  epochs: Optional[int] = typer.Option(None, min=1, help="Training epochs (default: 40, mnist 30)."),
                  seed: int = typer.Option(0, help="Seed of the split, init and shuffling."),
                  threads: Optional[int] = typer.Option(None, help="CPU threads (default: all).")):
    """Train a teacher on real data; write teacher weights, the secret eval set and a task spec."""
    set_threads(threads)
    if dataset == "cifar10" and data_path is None:
        fail("--data-path: cifar10 needs the local cifar-10-batches-py folder")
    try:
        emit(train_reference(dataset, out, data_path=data_path, arch=arch, epochs=epochs, seed=seed))
    except (FileNotFoundError, ValueError, D.DataError) as exc:
        fail(str(exc))
