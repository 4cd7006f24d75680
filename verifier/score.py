"""Distillation-gain scores: deterministic, cheap compared with mining, crash-proof.

score_bps = round(10 000 × (acc(student distilled on the bundle) − acc(student distilled
on the task's seeded noise baseline))) on the revealed eval set. Same spec, bundle,
eval set and thread count ⇒ the same bits (deterministic algorithms, fixed seeds). On
other hardware or thread counts float reductions may differ in the last bits, which
can flip a handful of eval predictions: the spec's ``tolerance_bps`` (150 bps on the
reference task, i.e. a few eval images) absorbs that; verifiers outside it are slashed.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch

from codream import config
from codream.bundle import Binding, claimed_binding
from codream.distill import accuracy, deterministic, distill, noise_images
from codream.spec import TaskSpec

from .validate import Verdict, validate_file


def _student_accuracy(spec: TaskSpec, teachers, images, ev, threads: int | None) -> float:
    with deterministic(threads):
        student = distill(spec.student, teachers, images, spec.recipe, spec.mean, spec.std)
        return accuracy(student, ev[0], ev[1], spec.mean, spec.std)


def baseline_accuracy(spec: TaskSpec, teachers, ev, threads: int | None = None) -> float:
    """Accuracy of the recipe on the task's seeded noise, computed once per (spec, eval set)."""
    threads = threads or torch.get_num_threads()  # None and the same explicit count share one entry
    key = hashlib.sha256(json.dumps(spec.raw, sort_keys=True).encode() + ev[0].numpy().tobytes()
                         + ev[1].numpy().tobytes() + str(threads).encode()).hexdigest()[:32]
    cache = config.home() / "cache" / "baseline" / f"{key}.json"
    if cache.exists():
        return json.loads(cache.read_text())["accuracy"]
    noise = noise_images(spec.baseline["n"], spec.shape, spec.baseline["seed"])
    acc = _student_accuracy(spec, teachers, noise, ev, threads)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".part")
    tmp.write_text(json.dumps({"accuracy": acc}))
    tmp.replace(cache)
    return acc


def score_images(spec: TaskSpec, teachers, images: torch.Tensor, ev, threads: int | None = None) -> dict:
    t0 = time.perf_counter()
    base = baseline_accuracy(spec, teachers, ev, threads)
    t1 = time.perf_counter()
    acc = _student_accuracy(spec, teachers, images, ev, threads)
    n = len(ev[1])
    gain = round((round(acc * n) - round(base * n)) * 10_000 / n)
    return {"score_bps": gain, "student_accuracy": acc, "baseline_accuracy": base,
            "baseline_seconds": round(t1 - t0, 3), "distill_seconds": round(time.perf_counter() - t1, 3)}


def score_bundle(spec: TaskSpec, bundle_path: str | Path, ev, teachers, binding: Binding | None = None,
                 earlier: list[torch.Tensor] | None = None, threads: int | None = None) -> dict:
    """Validate then score one bundle. Returns the verifier's JSON verdict."""
    t0 = time.perf_counter()
    if binding is None:  # offline scoring: take the binding from the bundle itself
        binding = claimed_binding(bundle_path)
    verdict: Verdict = validate_file(bundle_path, spec, binding, earlier)
    out = {"verdict": "VALID" if verdict.valid else "INVALID", "reasons": verdict.reasons, "score_bps": None,
           "student_accuracy": None, "baseline_accuracy": None}
    if verdict.valid:
        out.update(score_images(spec, teachers, verdict.images, ev, threads))
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out
