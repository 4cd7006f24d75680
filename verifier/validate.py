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
   ``replay_of_earlier_task``, ``eval_contamination``.
5. derived work (``codream/derived.py``): which images were made from earlier ones by a
   transformation the near-twin check does not align (shifts, rotations, warps, blends, short
   re-optimisation, patch mixes). A bundle in which more than ``scoring.derived.max_fraction``
   of the images are derived is INVALID (``derived_within_bundle``,
   ``derived_from_other_submission``, ``derived_from_earlier_task``, ``derived_from_eval_set``),
   however many fresh images sit beside them. Below both shares the bundle is VALID and is
   scored on its new images only (``verifier/score.py``).
6. the synthesis receipt, where the task requires one (``scoring.receipt.required``;
   ``codream/receipt.py``): parsed and checked against the task and the bundle here (``no_receipt``,
   ``bad_receipt``); replaying its shards needs the teachers and the committee's seed, so
   ``verifier/score.py`` does that (``receipt_mismatch``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import torch

from codream.bundle import FORMAT, Binding, BundleError, Header, read
from codream.derived import DerivedReport, check_derived, reference_grid
from codream.novelty import NoveltyReport, Reference, check_novelty
from codream.receipt import KEY as RECEIPT_KEY, Receipt, ReceiptError, parse as parse_receipt
from codream.spec import TaskSpec, derived_config, receipt_config

# reason code of an INVALID verdict, per kind of earlier material a bundle repeats
NOT_NOVEL_CODES = {"self": "self_duplicates", "earlier_submission": "duplicate_of_other_submission",
                   "earlier_task": "replay_of_earlier_task", "eval_set": "eval_contamination"}
_WHAT = {"self": "images before them in the bundle", "earlier_submission": "submissions committed earlier",
         "earlier_task": "accepted bundles of earlier tasks with a shared teacher", "eval_set": "the eval set"}
DERIVED_CODES = {"self": "derived_within_bundle", "earlier_submission": "derived_from_other_submission",
                 "earlier_task": "derived_from_earlier_task", "eval_set": "derived_from_eval_set"}


@dataclass
class Verdict:
    valid: bool
    reasons: list[dict] = field(default_factory=list)
    images: torch.Tensor | None = None
    novelty: NoveltyReport | None = None
    derived: DerivedReport | None = None
    receipt: Receipt | None = None  # parsed, not yet replayed (only where the task requires receipts)

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

    if len(data) > limits.max_bytes:
        return bad("too_large", f"{len(data)} bytes > limit {limits.max_bytes}")
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
    earlier = list(earlier)
    report = check_novelty(images, spec, earlier, index=index, eval_images=eval_images, device=device)
    reasons += not_novel_reasons(report, spec.scoring.duplicate_max_fraction)
    derived = _check_derived(images, spec, earlier, index, eval_images)
    reasons += derived_reasons(derived, derived_config(spec)["max_fraction"])
    _drop_derived(report, derived)
    receipt = None
    if receipt_config(spec)["required"]:
        try:
            receipt = parse_receipt(header.metadata.get(RECEIPT_KEY), spec, len(images))
        except ReceiptError as exc:
            reasons.append({"code": exc.code, "detail": exc.detail})
        except Exception as exc:  # whatever a hostile receipt provokes: INVALID, never a crash
            reasons.append({"code": "bad_receipt", "detail": f"{exc.__class__.__name__}: {exc}"[:300]})
    return Verdict(not reasons, reasons, images, report, derived, receipt)


def _check_derived(images, spec: TaskSpec, earlier: list[Reference], index, eval_images) -> DerivedReport:
    """The derived-work check against the same earlier material as the near-twin check."""
    cfg = derived_config(spec)
    groups = []  # oldest first: earlier tasks, this task's earlier submissions in commit order, the eval set
    if index is not None:
        groups += [(r.kind, r.label, r.work) for r in index.references([t["weights_cid"] for t in spec.teachers])]
    groups += [(r.kind, r.label, r.work) for r in earlier]
    if eval_images is not None and len(eval_images):
        groups.append(("eval_set", "eval set", reference_grid(eval_images, cfg)))
    return check_derived(images, groups, cfg)


def _drop_derived(report: NoveltyReport, derived: DerivedReport) -> None:
    """Derived images are not new: mark them like near-twins (kind and source of the first match)."""
    for i, g in enumerate(derived.first):
        if g is not None and bool(report.novel[i]):
            report.novel[i] = False
            report.reason[i] = derived.groups[g].kind
            report.source[i] = f"derived from {derived.groups[g].label}"


def derived_reasons(derived: DerivedReport, max_fraction: float) -> list[dict]:
    """INVALID reasons when more than ``max_fraction`` of the images are derived (more than
    ``SMALL_POOL_MAX_FRACTION`` when judged against a small family: ``DerivedReport.limit``): one
    per kind of earlier material they were made from, the largest first."""
    max_fraction = derived.limit(max_fraction)
    if derived.fraction <= max_fraction:
        return []
    counts: dict[str, int] = {}
    for g in derived.first:
        if g is not None:
            counts[derived.groups[g].kind] = counts.get(derived.groups[g].kind, 0) + 1
    return [{"code": DERIVED_CODES[k], "detail": f"{v} of {derived.n} images look made from {_WHAT[k]} "
             f"(shifted, rotated, warped, blended, re-optimised or patched; more than {max_fraction:.0%} "
             "derived: the bundle earns nothing)"} for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]


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
    if n < lim.min_images:
        return [{"code": "too_few_images", "detail": f"{n} < min_images {lim.min_images}"}]
    if n > lim.max_images:
        return [{"code": "too_many_images", "detail": f"{n} > max_images {lim.max_images}"}]
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
    if size > spec.bundle.max_bytes:  # refuse before reading it
        return Verdict(False, [{"code": "too_large", "detail": f"{size} bytes > limit {spec.bundle.max_bytes}"}])
    return validate_bytes(path.read_bytes(), spec, binding, earlier, index, eval_images, device)
