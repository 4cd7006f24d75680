"""Bundle validation: every way a bundle can be wrong, each with a machine-readable code.

Checks, in order (cheap and bounded first):
1. size on disk/over the wire ≤ spec.bundle.max_bytes (before reading anything)
2. safetensors header: bounded size, exactly one ``images`` tensor, dtype U8, shape
   [N, C, H, W] matching the spec's input, N within [min_images, max_images]
3. metadata binding: format version, chain id, contract, task id, miner address must
   equal the on-chain submission's
4. content: not mostly constant images; not mostly near-duplicates of each other
   (mode collapse); not a near-copy of an earlier submission in the same task

Near-duplicates use a 64-bit average hash per image (resize to 8×8 grey, bit = pixel >
mean of the image), compared by Hamming distance ≤ ``scoring.duplicate_max_hamming``.
A bundle is a copy of an earlier one when more than ``duplicate_max_fraction`` of its
images have such a near-twin there. Shifting, re-encoding under another CID or
re-ordering does not escape it; a copier must change images enough to flip bits,
which destroys what made them useful.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from codream.bundle import FORMAT, Binding, BundleError, Header, read
from codream.spec import TaskSpec


@dataclass
class Verdict:
    valid: bool
    reasons: list[dict] = field(default_factory=list)
    images: torch.Tensor | None = None
    hashes: torch.Tensor | None = None

    def reason_codes(self) -> list[str]:
        return [r["code"] for r in self.reasons]


def average_hash(images: torch.Tensor) -> torch.Tensor:
    """64-bit perceptual hashes, one per image, as a bool tensor [N, 64]."""
    x = images.float().mean(1, keepdim=True)
    x = F.adaptive_avg_pool2d(x, 8).flatten(1)
    return x > x.mean(1, keepdim=True)


def near_twin_fraction(a: torch.Tensor, b: torch.Tensor, max_hamming: int, exclude_self: bool = False,
                       chunk: int = 1024) -> float:
    """Fraction of hashes in ``a`` with a hash in ``b`` within ``max_hamming`` bits.
    Memory is bounded by ``chunk × len(b)``."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    af, bf = a.float(), b.float()
    hits = 0
    for i in range(0, len(a), chunk):
        ai = af[i:i + chunk]
        # hamming = |a| + |b| - 2 a·b over bits
        d = ai.sum(1, keepdim=True) + bf.sum(1).view(1, -1) - 2 * ai @ bf.t()
        if exclude_self:
            idx = torch.arange(i, i + len(ai))
            d[torch.arange(len(ai)), idx] = 1e9
        hits += int((d <= max_hamming).any(1).sum())
    return hits / len(a)


def _constant_fraction(images: torch.Tensor) -> float:
    flat = images.flatten(1)
    return float((flat.amax(1) == flat.amin(1)).float().mean())


def validate_bytes(data: bytes, spec: TaskSpec, binding: Binding,
                   earlier: list[torch.Tensor] | None = None) -> Verdict:
    """Validate a bundle's bytes against the spec, the on-chain binding and earlier
    submissions' hashes. Never raises on bad input: returns an INVALID verdict."""
    limits, scoring = spec.bundle, spec.scoring

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
    hashes = average_hash(images)
    const = _constant_fraction(images)
    if const > 0.5:
        reasons.append({"code": "constant_images", "detail": f"{const:.0%} of images are a single value"})
    self_dup = near_twin_fraction(hashes, hashes, 0, exclude_self=True)
    if self_dup > scoring["duplicate_max_fraction"]:
        reasons.append({"code": "self_duplicates",
                        "detail": f"{self_dup:.0%} of images have an identical-hash twin in the bundle"})
    for i, other in enumerate(earlier or []):
        frac = near_twin_fraction(hashes, other, scoring["duplicate_max_hamming"])
        if frac > scoring["duplicate_max_fraction"]:
            reasons.append({"code": "duplicate_of_other_submission",
                            "detail": f"{frac:.0%} of images near-copy earlier submission #{i}"})
            break
    return Verdict(not reasons, reasons, images, hashes)


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


def validate_file(path: str | Path, spec: TaskSpec, binding: Binding,
                  earlier: list[torch.Tensor] | None = None) -> Verdict:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        return Verdict(False, [{"code": "unreadable", "detail": str(exc)}])
    if size > spec.bundle["max_bytes"]:  # refuse before reading it
        return Verdict(False, [{"code": "too_large", "detail": f"{size} bytes > limit {spec.bundle['max_bytes']}"}])
    return validate_bytes(path.read_bytes(), spec, binding, earlier)
