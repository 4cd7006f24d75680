"""The co-owned task, offline: two owners, two architectures, one student better than both.

alice (mostly digits 0–4, ``digits_cnn``) and bob (mostly 5–9, ``digits_deep``) each train a
teacher on their own data and keep their own eval set (``owner/coowned.py``); one task folder
holds both teachers and both eval sets (the importer); a miner co-dreams against both
teachers (the miners' synthesis: every dream is optimised against alice's and bob's teacher
at once); the owners harvest the bundle (``owner/harvest.py``) and measure on each eval set
and on their union, which is what verifiers score on. For comparison: what each owner
would get from a task of its own (dreams of its teacher alone, the same harvest recipe),
the noise baseline, and a student on the owners' pooled raw training data (what sharing
data would have given, which co-dreaming avoids).

``coowned_round`` is what `codream demo --co-owned --offline` and `codream bench coowned`
run; the devnet demo reuses ``owner.coowned.build_coowned_task`` for the owners' side.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from codream.bundle import Binding, write as write_bundle
from codream.devchain import DEVNET_CHAIN_ID
from codream.distill import accuracy, deterministic
from codream.evalset import load_eval_set, union_eval_sets
from codream.spec import load as load_spec
from codream.teachers import load_teachers
from ipfs import cid_of_file
from miner.synthesis import DreamConfig, dream
from owner.coowned import MINOR_SHARE, build_coowned_task
from owner.harvest import AcceptedBundle, distil_resumable, harvest, harvest_recipe
from owner.importer import eval_images_for

ZERO = "0x" + "0" * 40
MINER = "0x" + "11" * 20
EVALS = ("alice", "bob", "union")


def coowned_round(work: str | Path, seed: int = 0, n: int = 1000, steps: int | None = None,
                  minor: float = MINOR_SHARE, alone: bool = True, threads: int | None = 1,
                  progress: bool = False, say=lambda msg: None, epochs: int = 40,
                  owners_dir: str | Path | None = None) -> dict:
    """One seed of the co-owned experiment; returns ``{"accuracy": {row: {eval: acc}}, ...}``."""
    work = Path(work)
    torch.manual_seed(seed)
    say(f"seed {seed}: alice and bob train their own teachers on their own data")
    info = build_coowned_task(work / "task", seed=seed, minor=minor, epochs=epochs,
                              owners_dir=owners_dir or work / "owners")
    spec = load_spec(work / "task" / "spec.json")
    teachers = load_teachers(spec)
    evals = eval_images_for(work / "task", spec)
    say(f"seed {seed}: a miner co-dreams {n} images against both teachers")
    cfg = DreamConfig(seed=seed)
    co = dream(teachers, n, spec.num_classes, spec.shape, spec.mean, spec.std, cfg, progress=progress)
    bundle = work / "co-dreams.safetensors"
    write_bundle(bundle, co.images, Binding(DEVNET_CHAIN_ID, ZERO, 0, MINER))
    train = union_eval_sets([load_eval_set(o["train"], spec) for o in info["owner_files"]])
    say(f"seed {seed}: the owners harvest the bundle (distil, noise and pooled-data baselines)")
    card = harvest(spec, [AcceptedBundle(cid_of_file(bundle), MINER, file=str(bundle))], work / "harvest",
                   evals=evals, train=train, steps=steps, threads=threads, progress=progress,
                   teacher_names=[t["name"] for t in info["teachers"]])
    acc = dict(card["accuracy"])
    rows = {"teacher alice": acc["teacher alice"], "teacher bob": acc["teacher bob"]}
    merged = None
    if alone:
        union = dict(evals, union=union_eval_sets(list(evals.values())))
        recipe = harvest_recipe(spec, n, steps)

        def student_acc(ts, images, name):
            st = distil_resumable(spec, ts, images, recipe, work / f"{name}.ckpt", name, every=recipe.steps + 1,
                                  threads=threads, progress=progress)
            with deterministic(threads):
                return {e: round(accuracy(st, x, y, spec.mean, spec.std), 4) for e, (x, y) in union.items()}

        own = []
        for i, owner in enumerate(("alice", "bob")):
            say(f"seed {seed}: what {owner} gets from a task of its own (dreams of its teacher alone)")
            own.append(dream([teachers[i]], n, spec.num_classes, spec.shape, spec.mean, spec.std, cfg,
                             progress=progress).images)
            rows[f"{owner} alone: student"] = student_acc([teachers[i]], own[-1], f"alone-{owner}")
        say(f"seed {seed}: another miner strategy: each teacher dreams alone, half the bundle each")
        merged = student_acc(teachers, torch.cat([own[0][:n // 2], own[1][:n - n // 2]]), "merged")
    rows["co-dreamed student"] = acc["student"]
    if merged is not None:
        rows["per-teacher dreams, merged"] = merged
    for k in ("teachers' ensemble", "noise baseline", "real-data student"):
        if k in acc:
            rows[k if k != "real-data student" else "pooled raw data student"] = acc[k]
    return {"seed": seed, "accuracy": rows, "n_dreams": n, "steps": card["training"]["recipe"]["steps"],
            "minor_share": minor, "owners": {o["name"]: {k: o[k] for k in ("classes", "train_images", "eval_images")}
                                             for o in info["owner_files"]},
            "beats_both_teachers_on_union": rows["co-dreamed student"]["union"] >
            max(rows["teacher alice"]["union"], rows["teacher bob"]["union"])}


def summarise(runs: list[dict]) -> dict:
    """Mean, min and max over seeds of every row and eval set."""
    rows = runs[0]["accuracy"].keys()
    out = {}
    for r in rows:
        out[r] = {}
        for e in EVALS:
            vals = [run["accuracy"][r][e] for run in runs]
            out[r][e] = {"mean": round(statistics.fmean(vals), 4), "min": min(vals), "max": max(vals)}
    return {"seeds": [run["seed"] for run in runs], "accuracy": out,
            "beats_both_teachers_on_union": all(run["beats_both_teachers_on_union"] for run in runs)}


def print_table(result: dict, con: Console) -> None:
    """The table `codream demo --co-owned` prints: rows = models, columns = eval sets."""
    acc = result["accuracy"]
    many = isinstance(next(iter(next(iter(acc.values())).values())), dict)
    title = ("Co-owned task: accuracy on each owner's eval set and on their union"
             + (f" (mean [min–max] over seeds {result['seeds']})" if many else f" (seed {result['seed']})"))
    table = Table(title=title)
    table.add_column("model")
    for e in EVALS:
        table.add_column(f"{e} eval" if e != "union" else "union (scored)", justify="right")
    for row, vals in acc.items():
        cell = (lambda v: f"{100 * v['mean']:.1f} % [{100 * v['min']:.1f}–{100 * v['max']:.1f}]") if many else \
               (lambda v: f"{100 * v:.1f} %")
        style = "bold green" if row == "co-dreamed student" else None
        table.add_row(row, *(cell(vals[e]) for e in EVALS), style=style)
    con.print(table)
    ok = result["beats_both_teachers_on_union"]
    con.print(("[bold green]the co-dreamed student beats both owners' teachers on the union eval set[/]" if ok else
               "[bold red]the co-dreamed student does NOT beat both teachers on the union eval set[/]")
              + (" in every seed" if many else ""))


def run_offline(work: str | Path, seeds: list[int], n: int = 1000, steps: int | None = None,
                json_out: Path | None = None, con: Console | None = None) -> dict:
    con = con or Console()
    runs = [coowned_round(Path(work) / f"seed-{s}", s, n, steps, say=lambda m: con.print(f"[cyan]▶[/] {m}"))
            for s in seeds]
    result = runs[0] if len(runs) == 1 else {**summarise(runs), "runs": runs}
    print_table(result, con)
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))
    return result
