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

from dataclasses import dataclass

import torch

from codream import arithmetic, content
from codream.bundle import Binding, claimed_binding
from codream.novelty import NoveltyReport, Reference
from codream.protocol import INVALID
from codream.receipt import replay, seed_binding
from codream.spec import TaskSpec, novelty_config, receipt_config
from codream.teachers import load_teachers
from codream.distill import deterministic
from codream.yardstick import gain_bps, noise_accuracy, student_accuracies
from ipfs import ContentTooLarge, IpfsClient

from .validate import Verdict, validate_bytes, validate_file

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


@dataclass(frozen=True)
class TaskInputs:
    """What every scoring job of one task shares: the spec, the eval set (images, labels) the
    bundle is scored on (and checked against for contamination unless ``eval_check`` is off),
    the earlier tasks' accepted bundles (``index``: anything with ``references(teacher_cids)``,
    e.g. :class:`verifier.index.NoveltyIndex` or :class:`StaticIndex`; None: not checked), where
    a worker fetches content (``ipfs_api``; None: the default node) and how it computes."""

    spec: TaskSpec
    eval_set: tuple
    index: object = None
    ipfs_api: str | None = None
    threads: int | None = DEFAULT_THREADS
    device: str = "cpu"
    eval_check: bool = True


@dataclass(frozen=True)
class BundleJob:
    """One bundle to score: its bytes (``data``), a file (``path``) or a CID fetched from IPFS
    (verified); the binding it must carry (None: taken from the bundle, offline only); the
    submissions committed before it in the task; the recipe seed (None: the spec's)."""

    cid: str | None = None
    data: bytes | None = None
    path: Path | None = None
    binding: Binding | None = None
    earlier: tuple = ()
    seed: int | None = None


class StaticIndex:
    """Earlier tasks' references resolved beforehand (by the agent, from its index): a job
    that runs on another machine carries them instead of the index's folder."""

    def __init__(self, refs: Iterable[Reference]):
        self.refs = list(refs)

    def references(self, teacher_cids=None) -> list[Reference]:
        return self.refs


# fields that say how long a score took (or that it was remembered): not part of the result
TIMING = ("seconds", "baseline_seconds", "distill_seconds", "memo")


def result_of(record):
    """A score record without its timing fields (at any depth: the novelty and derived reports
    time their stages): what must be equal, bit for bit, wherever it ran."""
    if isinstance(record, dict):
        return {k: result_of(v) for k, v in record.items() if k not in TIMING and not k.startswith("seconds")}
    if isinstance(record, list):
        return [result_of(v) for v in record]
    return record


_TEACHERS: OrderedDict[tuple, list] = OrderedDict()


def _teachers_for(task: TaskInputs, client) -> list:
    """The task's teachers, loaded once per process (a worker scores many bundles of a task)."""
    key = tuple(t["weights_cid"] for t in task.spec.teachers)
    if key not in _TEACHERS:
        _TEACHERS[key] = load_teachers(task.spec, client=client)
        while len(_TEACHERS) > 4:
            _TEACHERS.popitem(last=False)
    return _TEACHERS[key]


def _bundle_bytes(task: TaskInputs, job: BundleJob, client) -> bytes | Path:
    """The bundle's bytes, or its path; fetching by CID raises IpfsError subclasses (CidNotFound,
    IpfsTimeout: the caller decides whether to retry; ContentTooLarge: scored INVALID)."""
    if job.data is not None:
        return job.data
    if job.path is not None:
        return Path(job.path)
    if job.cid is None:
        raise ValueError("a scoring job needs the bundle: data, path or cid")
    return content.fetch(job.cid, client=client, max_bytes=task.spec.bundle.max_bytes)


def score(task: TaskInputs, job: BundleJob, teachers=None, client=None) -> dict:
    """THE scoring entry point (the agent, a Ray worker and `verifier score` all call it):
    validate one bundle, then score it. A pure function of its inputs (plus the content its
    CIDs name): same inputs, device and threads give the same record, bit for bit, apart from
    the TIMING fields.

    The record: ``verdict`` (VALID / INVALID), ``score`` (what a seat commits: the score in bps,
    or INVALID), ``score_bps`` (None unless VALID), ``reasons``, ``novelty`` / ``derived``
    reports, ``checked`` (what was and was not checked), the gain and its parts when VALID.
    ``teachers``: already loaded (else loaded from ``client``, or a client on ``task.ipfs_api``,
    once per process). A bundle whose CID nobody serves raises CidNotFound / IpfsTimeout."""
    t0 = time.perf_counter()
    if client is None and job.cid is not None:
        client = IpfsClient(task.ipfs_api)
    spec, ev, index = task.spec, task.eval_set, task.index
    earlier = list(job.earlier)
    checked = {"binding": "given" if job.binding is not None else "NOT CHECKED: taken from the bundle itself",
               "earlier_submissions": sum(len(r.grids) for r in earlier) if earlier else "none given",
               "earlier_tasks": "index" if index is not None else "NOT CHECKED: no index given",
               "eval_set": len(ev[1]) if task.eval_check else "NOT CHECKED"}
    try:
        bundle = _bundle_bytes(task, job, client)
    except ContentTooLarge as exc:
        verdict = Verdict(False, [{"code": "too_large", "detail": str(exc)}])
    else:
        if job.binding is None and isinstance(bundle, bytes):
            raise ValueError("a bundle given as bytes needs its binding (only a file's can be taken from it)")
        binding = job.binding if job.binding is not None else claimed_binding(bundle)
        eval_images = ev[0] if task.eval_check else None
        verdict = (validate_bytes(bundle, spec, binding, earlier, index, eval_images, task.device)
                   if isinstance(bundle, bytes) else
                   validate_file(bundle, spec, binding, earlier, index, eval_images, task.device))
    out = {"verdict": "VALID" if verdict.valid else "INVALID", "score": INVALID, "reasons": verdict.reasons,
           "score_bps": None, "gain_bps": None, "student_accuracy": None, "baseline_accuracy": None}
    if verdict.novelty is not None:
        out["novelty"] = verdict.novelty.to_json()
        if index is not None:
            checked["earlier_tasks"] = verdict.novelty.checked["earlier_task"]
    if verdict.derived is not None:
        out["derived"] = verdict.derived.to_json()
    out["checked"] = checked
    if verdict.valid and verdict.receipt is not None:  # the task requires receipts: replay part of it
        # a replay in other arithmetic would call honest work INVALID: refuse to judge instead
        arithmetic.check("cannot replay this bundle's synthesis receipt", receipt_config(spec)["arithmetic"])
        teachers = teachers if teachers is not None else _teachers_for(task, client)
        try:  # on the CPU whatever the scoring device: the receipt's recipe is fp32 CPU arithmetic
            with deterministic(task.threads):
                rep = replay(verdict.receipt, verdict.images, spec, teachers,
                             spec.recipe.seed if job.seed is None else job.seed, "cpu", seed_binding(spec, binding))
        except Exception as exc:  # a hostile receipt must give INVALID, never stop the verifier
            rep = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"[:300], "shards": [], "worst_cosine": 0.0,
                   "min_cosine": None}
        out["receipt"] = rep
        if "error" in rep:
            out["verdict"] = "INVALID"
            out["reasons"] = verdict.reasons + [{"code": "bad_receipt",
                                                 "detail": f"dreaming its shard again failed: {rep['error']}"}]
        elif not rep["ok"]:
            out["verdict"] = "INVALID"
            out["reasons"] = verdict.reasons + [{
                "code": "receipt_mismatch",
                "detail": f"shards {rep['shards']} dreamed again from the bundle's receipt do not match its images "
                          f"(worst centred cosine {rep['worst_cosine']:.3f} < {rep['min_cosine']}): the images "
                          "did not come out of the recipe the receipt names"}]
    if out["verdict"] == "VALID":
        teachers = teachers if teachers is not None else _teachers_for(task, client)
        out.update(score_verdict(spec, teachers, verdict, ev, task.threads, task.device, job.seed))
        out["score"] = out["score_bps"]
    out.update(device=str(task.device), threads=task.threads or torch.get_num_threads(),
               seconds=round(time.perf_counter() - t0, 3))
    return out


def score_bundle(spec: TaskSpec, bundle_path: str | Path, ev, teachers, binding: Binding | None = None,
                 earlier: Iterable[Reference] = (), index=None, eval_check: bool = True,
                 threads: int | None = DEFAULT_THREADS, device: str = "cpu", seed: int | None = None) -> dict:
    """Validate then score one bundle file (:func:`score` on a path). Returns the verifier's JSON
    verdict, including what was checked and what was not (``checked``): the binding (given, or
    taken from the bundle), earlier submissions, earlier tasks (the index) and the eval set."""
    return score(TaskInputs(spec, ev, index, None, threads, device, eval_check),
                 BundleJob(path=Path(bundle_path), binding=binding, earlier=tuple(earlier), seed=seed),
                 teachers=teachers)
