"""`codream similarity MODEL...`: which owners gain from co-dreaming together (owner/similarity.py)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from codream.spec import SpecError, load as load_spec
from codream.teachers import TeacherError, load_teachers
from codream.zoo import ModelConfigError, freeze, load_model
from owner.importer import ImportRefused, parse_floats, read_task_folder
from owner.similarity import DEFAULT_THRESHOLD, Party, SimilarityReport, explain, similarity as measure
from rounds.coowned import probe_dreams

from .common import emit, fail, set_threads


def parties_of(path: Path, mean: list[float] | None, std: list[float] | None) -> list[Party]:
    """A task folder gives each of its teachers (with the spec's normalisation); a safetensors
    file gives one model (its config in the metadata; --mean/--std needed)."""
    if path.is_dir():
        spec = load_spec(path / "spec.json")
        models = load_teachers(spec)
        try:
            names = [t["name"] for t in read_task_folder(path).get("teachers", [])]
        except ImportRefused:
            names = []
        if len(names) != len(models):
            names = [f"teacher{i}" for i in range(len(models))] if len(models) > 1 else [path.name]
        elif len(models) == 1:
            names = [path.name]
        else:
            names = [f"{path.name}/{n}" for n in names]
        return [Party(n, m, spec.mean, spec.std, spec.num_classes, spec.shape) for n, m in zip(names, models)]
    if mean is None or std is None:
        raise ImportRefused(f"{path}: a bare weights file needs --mean and --std (its input normalisation)")
    model, cfg = load_model(path)
    shape = (cfg["in_channels"], cfg["image_size"], cfg["image_size"])
    if len(mean) != shape[0] or len(std) != shape[0]:
        raise ImportRefused(f"--mean/--std: one value per channel ({shape[0]})")
    return [Party(path.stem, freeze(model), tuple(mean), tuple(std), cfg["num_classes"], shape)]


def print_report(report: SimilarityReport, con: Console) -> None:
    for title, m in (("agreement: row owner's dreams, column model's answer (share in the dreamed class)",
                      report.agreement),
                     ("BN-statistics distance: row owner's dreams vs column model's statistics (0 = its own data, "
                      "1 = noise)", report.bn_distance),
                     ("compatibility (symmetric, 0..1)", report.compatibility)):
        con.print(f"[bold]{title}[/]")
        t = Table()
        t.add_column("")
        for n in report.names:
            t.add_column(n, justify="right")
        for n, row in zip(report.names, m):
            t.add_row(n, *(f"{v:.2f}" for v in row))
        con.print(t)
    for n, partners in report.ranking.items():
        con.print(f"{n}: partners, best first: {', '.join(partners)}")
    for line in explain(report):
        con.print(line)


def similarity(models: list[Path] = typer.Argument(..., help="Task folders (from `codream task init` or "
                                                   "`codream teacher train`) or teacher safetensors files."),
               per_class: int = typer.Option(20, min=1, help="Probe dreams per class and model."),
               steps: int = typer.Option(120, min=1, help="Optimisation steps of the probe dreams."),
               seed: int = typer.Option(0, help="Seed of the probe dreams."),
               threshold: float = typer.Option(DEFAULT_THRESHOLD, help="Compatibility from which to recommend "
                                               "co-dreaming."),
               mean: Optional[str] = typer.Option(None, help="Normalisation mean for bare weights files."),
               std: Optional[str] = typer.Option(None, help="Normalisation std for bare weights files."),
               json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report here."),
               threads: Optional[int] = typer.Option(None, help="CPU threads.")):
    """Dream a probe set from each model, see how the others respond (agreement, BN-statistics
    distance), print a similarity matrix and which owners gain from co-dreaming together."""
    set_threads(threads)
    try:
        mu, sd = parse_floats(mean, "--mean"), parse_floats(std, "--std")
        parties = [p for path in models for p in parties_of(path, mu, sd)]
        report = measure(parties, probe_dreams(per_class, steps, seed), threshold)
    except (ImportRefused, SpecError, TeacherError, ModelConfigError, ValueError) as exc:
        fail(str(exc))
    print_report(report, Console(stderr=True, width=120))
    if json_out:
        json_out.write_text(json.dumps(report.to_json(), indent=2))
    emit(report.to_json())
