"""Distillation-gain scores: deterministic, cheap compared with mining, crash-proof.

gain_bps = round(10 000 × (acc(students distilled on the bundle's *new* images) − acc(students
distilled on the task's seeded noise))) on the revealed eval set, and

    score_bps = round(gain_bps × novel / max(n, scoring.novelty.reference_images))

where ``novel`` of the bundle's ``n`` images passed the near-twin check (``codream/novelty.py``)
and the derived-work check (``codream/derived.py``). Distilling on the new images alone stops
copies from adding to the gain; scaling by the new share stops a few new images from earning a
whole bundle's reward, and ``reference_images`` prices new images in units of a reference
bundle, so splitting one bundle into k bundles earns no more than the one.

The accuracies come from the yardstick (``codream/yardstick.py``): images in a canonical
order, the recipe's students (weight-averaged) seeded from ``seed`` — the committee's
per-bundle seed (``codream.protocol.recipe_seed`` of the draw seed and the bundle's CID: unknown
when the miner commits, so a bundle cannot be ground against it) or, offline, the spec's — and
a noise baseline that is a task constant (mean over ``baseline.seeds`` seeds, cached).

Same spec, bundle, seed, eval set, device and thread count ⇒ the same bits (deterministic
algorithms, fixed seeds). On other hardware or thread counts float reductions may differ in
the last bits, which can flip a handful of eval predictions: the spec's ``tolerance_bps``
absorbs that; verifiers outside it are slashed.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from pathlib import Path
from typing import Iterable

import torch

from codream.bundle import Binding, claimed_binding
from codream.yardstick import gain_bps, noise_accuracy, student_accuracies
from codream.spec import TaskSpec, novelty_config

from codream.novelty import NoveltyReport, Reference
from .validate import Verdict, validate_file

DEFAULT_THREADS = 1  # `verifier score` and `verifier run` alike: keep it equal across verifiers


def baseline_accuracy(spec: TaskSpec, teachers, ev, threads: int | None = None, device: str = "cpu") -> float:
    """The task's noise baseline (``codream.yardstick.noise_accuracy``: mean over the spec's
    baseline seeds, computed once per task and cached)."""
    return noise_accuracy(spec, teachers, ev, threads, device)["accuracy"]


_MEMO: OrderedDict[str, dict] = OrderedDict()
MEMO_SIZE = 256


def score_images(spec: TaskSpec, teachers, images: torch.Tensor, ev, threads: int | None = DEFAULT_THREADS,
                 device: str = "cpu", seed: int | None = None) -> dict:
    """The distillation gain of ``images`` (all of them), in bps, with its parts.

    The result is a deterministic function of the spec (its teachers are named by CID), the
    images, the eval set, the thread count and the device, so it is remembered in-process by a
    hash of those (and the recipe ``seed``, when a committee gives one): agents that share a process (the adversarial demo's workers step a dozen
    verifiers) distil each bundle once. Across processes nothing is shared."""
    key = hashlib.sha256(b"|".join([json.dumps(spec.raw, sort_keys=True).encode(), images.numpy().tobytes(),
                                    ev[0].numpy().tobytes(), ev[1].numpy().tobytes(),
                                    f"{threads or torch.get_num_threads()}|{device}|{seed}".encode()])).hexdigest()
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return dict(_MEMO[key], memo=True)
    out = _score_images(spec, teachers, images, ev, threads, device, seed)
    _MEMO[key] = out
    if len(_MEMO) > MEMO_SIZE:
        _MEMO.popitem(last=False)
    return dict(out)


def clear_memo() -> None:
    """Forget remembered scores (benchmarks and tests that really score again)."""
    _MEMO.clear()


def _score_images(spec: TaskSpec, teachers, images: torch.Tensor, ev, threads, device, seed) -> dict:
    t0 = time.perf_counter()
    base = baseline_accuracy(spec, teachers, ev, threads, device)
    t1 = time.perf_counter()
    accs = student_accuracies(spec, teachers, images, ev, seed, threads, device)
    acc = sum(accs) / len(accs)
    return {"score_bps": gain_bps(acc, base), "student_accuracy": acc, "baseline_accuracy": base,
            "students": [round(a, 4) for a in accs], "recipe_seed": spec.recipe.seed if seed is None else seed,
            "baseline_seconds": round(t1 - t0, 3), "distill_seconds": round(time.perf_counter() - t1, 3)}


def novel_score(gain_bps: int, n_novel: int, n: int, spec: TaskSpec) -> int:
    """score = gain × novel / max(n, reference_images), rounded (see the module doc)."""
    ref = int(novelty_config(spec)["reference_images"])
    return round(gain_bps * n_novel / max(n, ref, 1))


def score_verdict(spec: TaskSpec, teachers, verdict: Verdict, ev, threads: int | None = DEFAULT_THREADS,
                  device: str = "cpu", seed: int | None = None) -> dict:
    """Score a VALID verdict: distil on its new images, scale by their share. ``seed``: the
    committee's per-bundle recipe seed (``codream.protocol.recipe_seed``), else the spec's."""
    report: NoveltyReport = verdict.novelty
    images = verdict.images[report.novel] if report is not None else verdict.images
    r = score_images(spec, teachers, images, ev, threads, device, seed)
    gain = r.pop("score_bps")
    n_novel = len(images)
    return {"score_bps": novel_score(gain, n_novel, len(verdict.images), spec), "gain_bps": gain,
            "novel_images": n_novel, **r}


def score_bundle(spec: TaskSpec, bundle_path: str | Path, ev, teachers, binding: Binding | None = None,
                 earlier: Iterable[Reference] = (), index=None, eval_check: bool = True,
                 threads: int | None = DEFAULT_THREADS, device: str = "cpu", seed: int | None = None) -> dict:
    """Validate then score one bundle. Returns the verifier's JSON verdict, including what was
    checked and what was not (``checked``): the binding (given, or taken from the bundle),
    earlier submissions, earlier tasks (the index) and the eval set."""
    t0 = time.perf_counter()
    earlier = list(earlier)
    checked = {"binding": "given" if binding is not None else "NOT CHECKED: taken from the bundle itself",
               "earlier_submissions": sum(len(r.grids) for r in earlier) if earlier else "none given",
               "earlier_tasks": "index" if index is not None else "NOT CHECKED: no index given",
               "eval_set": len(ev[1]) if eval_check else "NOT CHECKED"}
    if binding is None:  # offline scoring: take the binding from the bundle itself
        binding = claimed_binding(bundle_path)
    verdict: Verdict = validate_file(bundle_path, spec, binding, earlier, index,
                                     ev[0] if eval_check else None, device)
    out = {"verdict": "VALID" if verdict.valid else "INVALID", "reasons": verdict.reasons, "score_bps": None,
           "gain_bps": None, "student_accuracy": None, "baseline_accuracy": None}
    if verdict.novelty is not None:
        out["novelty"] = verdict.novelty.to_json()
        if index is not None:
            checked["earlier_tasks"] = verdict.novelty.checked["earlier_task"]
    if verdict.derived is not None:
        out["derived"] = verdict.derived.to_json()
    out["checked"] = checked
    if verdict.valid:
        out.update(score_verdict(spec, teachers, verdict, ev, threads, device, seed))
    out.update(device=str(device), threads=threads or torch.get_num_threads(),
               seconds=round(time.perf_counter() - t0, 3))
    return out
