"""Bundle validation: every way a bundle can be wrong, each with a machine-readable code.

Checks, in order (cheap and bounded first):
1. size on disk/over the wire ≤ spec.bundle.max_bytes (before reading anything)
2. safetensors header: bounded size, exactly one ``images`` tensor, dtype U8, shape
   [N, C, H, W] matching the spec's input, N within [min_images, max_images]
3. metadata binding: format version, chain id, contract, task id, miner address must
   equal the on-chain submission's
4. content: not mostly constant images; novelty (``codream/novelty.py``): which images are
   near-twins of an image before them in the bundle, of a submission committed earlier in
   the task, of an accepted bundle of an earlier task with a shared teacher, or of the
   revealed eval set. A bundle in which more than ``scoring.duplicate_max_fraction`` of the
   images are not new is INVALID, with one reason per kind of earlier material it repeats:
   ``self_duplicates`` (mode collapse), ``duplicate_of_other_submission``,
   ``replay_of_earlier_task``, ``eval_contamination``. Below that share the bundle is VALID
   and is scored on its new images only (``verifier/score.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import torch

from codream.bundle import FORMAT, Binding, BundleError, Header, read
from codream.spec import TaskSpec

from codream.novelty import NoveltyReport, Reference, check_novelty

# reason code of an INVALID verdict, per kind of earlier material a bundle repeats
NOT_NOVEL_CODES = {"self": "self_duplicates", "earlier_submission": "duplicate_of_other_submission",
                   "earlier_task": "replay_of_earlier_task", "eval_set": "eval_contamination"}
_WHAT = {"self": "images before them in the bundle", "earlier_submission": "submissions committed earlier",
         "earlier_task": "accepted bundles of earlier tasks with a shared teacher", "eval_set": "the eval set"}


@dataclass
class Verdict:
    valid: bool
    reasons: list[dict] = field(default_factory=list)
    images: torch.Tensor | None = None
    novelty: NoveltyReport | None = None

    def reason_codes(self) -> list[str]:
        return [r["code"] for r in self.reasons]


def _constant_fraction(images: torch.Tensor) -> float:
    flat = images.flatten(1)
    return float((flat.amax(1) == flat.amin(1)).float().mean())


def validate_bytes(data: bytes, spec: TaskSpec, binding: Binding, earlier: Iterable[Reference] = (),
                   index=None, eval_images: torch.Tensor | None = None, device: str = "cpu") -> Verdict:
    """Validate a bundle's bytes against the spec, the on-chain binding and the earlier
    material (see :func:`codream.novelty.check_novelty`). Never raises on bad input:
    returns an INVALID verdict."""
    limits = spec.bundle

    def bad(code: str, detail: str) -> Verdict:
        return Verdict(False, [{"code": code, "detail": detail}])

    if len(data) > limits["max_bytes"]:
        return bad("too_large", f"{len(data)} bytes > limit {limits['max_bytes']}")
    try:
        images, header = read(data)
    except BundleError as exc:
        return bad(exc.code, exc.detail)
    reasons = _check_header(header, spec) + _check_binding(header.metadata, binding)
    if reasons:
        return Verdict(False, reasons)
    const = _constant_fraction(images)
    if const > 0.5:
        reasons.append({"code": "constant_images", "detail": f"{const:.0%} of images are a single value"})
    report = check_novelty(images, spec, earlier, index=index, eval_images=eval_images, device=device)
    reasons += not_novel_reasons(report, spec.scoring["duplicate_max_fraction"])
    return Verdict(not reasons, reasons, images, report)


def not_novel_reasons(report: NoveltyReport, max_fraction: float) -> list[dict]:
    """INVALID reasons when more than ``max_fraction`` of the images are not new: one per
    kind of earlier material repeated, the largest first."""
    if 1 - report.novel_fraction <= max_fraction:
        return []
    counts = sorted(((v, k) for k, v in report.counts().items() if v), reverse=True)
    return [{"code": NOT_NOVEL_CODES[k], "detail": f"{v} of {report.n} images are near-twins of {_WHAT[k]}; "
             f"only {report.n_novel} are new (more than {max_fraction:.0%} repeated)"} for v, k in counts]


def _check_header(h: Header, spec: TaskSpec) -> list[dict]:
    n, *chw = h.shape
    lim = spec.bundle
    if tuple(chw) != spec.shape:
        return [{"code": "wrong_shape", "detail": f"images are {tuple(chw)}, the task needs {spec.shape}"}]
    if n < lim["min_images"]:
        return [{"code": "too_few_images", "detail": f"{n} < min_images {lim['min_images']}"}]
    if n > lim["max_images"]:
        return [{"code": "too_many_images", "detail": f"{n} > max_images {lim['max_images']}"}]
    return []


def _check_binding(meta: dict[str, str], binding: Binding) -> list[dict]:
    if meta.get("format") != FORMAT:
        return [{"code": "wrong_format_version", "detail": f"format {meta.get('format')!r}, expected {FORMAT!r}"}]
    want = binding.metadata()
    out = []
    for key, code in (("chain_id", "wrong_chain"), ("contract", "wrong_contract"), ("task_id", "wrong_task"),
                      ("miner", "wrong_miner")):
        got = meta.get(key, "").lower()
        if got != want[key]:
            out.append({"code": code, "detail": f"bundle says {key}={got!r}, submission has {want[key]!r}"})
    return out


def validate_file(path: str | Path, spec: TaskSpec, binding: Binding, earlier: Iterable[Reference] = (),
                  index=None, eval_images: torch.Tensor | None = None, device: str = "cpu") -> Verdict:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        return Verdict(False, [{"code": "unreadable", "detail": str(exc)}])
    if size > spec.bundle["max_bytes"]:  # refuse before reading it
        return Verdict(False, [{"code": "too_large", "detail": f"{size} bytes > limit {spec.bundle['max_bytes']}"}])
    return validate_bytes(path.read_bytes(), spec, binding, earlier, index, eval_images, device)
