"""The yardstick: how well a student distilled on a set of images does on the eval set.

One home for what verifiers score with, what the dreams benchmark measures with and what a
task owner's harvest compares against, so that "student accuracy of a bundle" means one thing.

A number the market pays by must not move when nothing that matters changed:

- **Order does not matter.** Images are put in a canonical order (by the SHA-256 of their
  bytes) before training, so reordering a bundle changes nothing, bit for bit.
- **The seed is not the miner's to choose.** The recipe's seed comes from the committee draw
  and the bundle's CID (``codream.protocol.recipe_seed``), unknown when the miner commits;
  offline scoring uses the spec's seed and says so.
- **One student is a noisy probe.** The recipe trains ``distill.students`` students with
  seeds derived from that seed and averages their accuracy; their spread is reported.
- **The noise baseline is averaged over ``baseline.seeds`` seeds** once per task (cached), so
  it adds no noise to the gain and costs nothing per bundle.

docs/verification.md ("The score") has the measurements behind the reference recipes.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from statistics import mean, pstdev
from typing import Sequence

import torch
from torch import nn

from . import config
from .distill import accuracy, deterministic, distill, noise_images
from .spec import Recipe, TaskSpec


def canonical(images: torch.Tensor) -> torch.Tensor:
    """``images`` in a canonical order (by the SHA-256 of each image's bytes)."""
    keys = [hashlib.sha256(im.numpy().tobytes()).digest() for im in images.contiguous()]
    return images[sorted(range(len(images)), key=keys.__getitem__)]


def student_seeds(seed: int, students: int) -> list[int]:
    """The seeds of a recipe's students: the recipe seed itself, then seeds derived from it."""
    out = [seed]
    for j in range(1, students):
        h = hashlib.sha256(f"codream.student/{seed}/{j}".encode()).digest()
        out.append(int.from_bytes(h[:4], "big") & 0x7FFFFFFF)
    return out


def students(spec: TaskSpec, teachers: Sequence[nn.Module], images: torch.Tensor, seed: int | None = None,
             threads: int | None = None, device: str = "cpu", recipe: Recipe | None = None,
             progress=None, in_canonical_order: bool = True) -> list[nn.Module]:
    """The recipe's students distilled on ``images`` (canonical order). ``seed`` replaces the
    recipe's seed (the per-bundle seed of a committee); ``recipe`` replaces the spec's (a task
    owner's full-length harvest recipe); ``progress(step)`` is called after every step."""
    recipe = recipe or spec.recipe
    base = recipe.seed if seed is None else seed
    if in_canonical_order:
        images = canonical(images)
    out = []
    with deterministic(threads):
        for s in student_seeds(base, recipe.students):
            out.append(distill(spec.student, teachers, images, replace(recipe, seed=s), spec.mean, spec.std,
                               progress=progress, device=device))
    return out


def student_accuracies(spec: TaskSpec, teachers: Sequence[nn.Module], images: torch.Tensor, ev,
                       seed: int | None = None, threads: int | None = None, device: str = "cpu",
                       in_canonical_order: bool = True, recipe: Recipe | None = None) -> list[float]:
    """Eval accuracy of each of the recipe's students distilled on ``images`` (canonical order);
    ``seed`` replaces the spec's recipe seed (the per-bundle seed of a committee); ``recipe``
    replaces the spec's (``students``). ``in_canonical_order=False`` trains on the images as given
    (how verification v2 did: only the benchmark's "before" column uses it)."""
    models = students(spec, teachers, images, seed, threads, device, recipe=recipe,
                      in_canonical_order=in_canonical_order)
    with deterministic(threads):
        return [accuracy(m, ev[0], ev[1], spec.mean, spec.std) for m in models]


def noise_accuracy(spec: TaskSpec, teachers: Sequence[nn.Module], ev, threads: int | None = None,
                   device: str = "cpu", recipe: Recipe | None = None) -> dict:
    """The task's noise baseline: the recipe's mean student accuracy on seeded noise, over
    ``baseline.seeds`` noise-and-recipe seeds; computed once per (spec, eval set, threads,
    device, ``recipe``: another recipe than the spec's, e.g. a harvest's) and cached under
    $CODREAM_HOME/cache/baseline."""
    threads = threads or torch.get_num_threads()
    where = "" if str(device) == "cpu" else str(device)
    other = "" if recipe is None else json.dumps(asdict(recipe), sort_keys=True)
    key = hashlib.sha256(json.dumps(spec.raw, sort_keys=True).encode() + ev[0].numpy().tobytes()
                         + ev[1].numpy().tobytes() + f"{threads}{where}|v3{other}".encode()).hexdigest()[:32]
    cache = config.home() / "cache" / "baseline" / f"{key}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    b = spec.baseline
    accs = []
    for k in range(b.seeds):
        noise = noise_images(b.n, spec.shape, b.seed + k)
        accs += student_accuracies(spec, teachers, noise, ev, spec.recipe.seed + k, threads, device, recipe=recipe)
    out = {"accuracy": mean(accs), "std": pstdev(accs), "runs": len(accs)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{id(out)}.part")
    tmp.write_text(json.dumps(out))
    tmp.replace(cache)
    return out


def gain_bps(acc: float, base: float) -> int:
    """Accuracy gain in basis points (of mean accuracies: not on the eval set's 1/n grid)."""
    return round((acc - base) * 10_000)
