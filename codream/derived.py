"""Derived work: images made from earlier images by a transformation the near-twin check
(``codream/novelty.py``) does not align — a shift of a few pixels, a rotation, an elastic or
perspective warp, a blend, a short re-optimisation, a mix of patches from several sources.

Such an image is, one by one, often no more like its source than two independent dreams are
like each other in absolute terms; what gives it away is that its source *stands out*: the
best match among the earlier images is far better than the second best. Independent dreams
have no such partner (their nearest earlier image is just the closest of many similar ones).
So the statistic here is the **margin** ``s1 − s2`` between the best and the second-best
similarity to a group of earlier images, measured in two ways:

- *whole image*: the centred cosine of the image, over a small set of alignments (rotations
  by ``angles`` degrees, then shifts by up to ``shifts`` cells), with each earlier image;
- *quadrants*: each quarter of the image (shift-aligned) with the same quarter of each earlier
  image, which finds patches taken from several sources; an image is flagged when at least
  ``quad_min`` of its quarters have a margin above ``quad_margin``.

Images are compared on a grey working grid of at most ``resolution`` cells a side (area means:
28×28 MNIST is compared at 14×14, 8×8 digits as they are), which keeps the check a small share
of scoring. Thresholds are calibrated per task on independent honest bundles (docs/verification.md,
"Novel images only"): each statistic flags ≤ 0.5 % of honest images, ``codream bench verify`` re-measures it.

The verdict is taken **per bundle**: one derived image proves little, but an honest bundle has
about 1 % of its images flagged while a copy made by any of the measured transformations has
a quarter to all of them flagged. A bundle in which more than ``max_fraction`` of the images are
derived is INVALID (``derived_from_earlier`` and friends: it earns nothing and loses its bond),
whatever the rest is; below that the flagged images are dropped like near-twins. So diluting a
copy with fresh dreams does not buy the fresh part a reward.

The groups of earlier images are those of the novelty check: the bundle itself (images before
it), earlier submissions in commit order, the eval sets, and earlier tasks' bundles (from the
index, the groups the novelty check's hash stage found). At most ``max_groups`` groups per bundle,
the largest first: the cost grows with the number of earlier images and is reported.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from .spec import DERIVED_DEFAULTS

CHUNK = 512  # query rows per similarity block (bounded memory)
# Within a bundle an image is judged only once this many images precede it: against a handful
# of references the second-best match is a poor yardstick and honest margins run high (measured
# on the honest fixtures: the flags of a 300-image bundle sat in its first 40 positions).
MIN_SELF_REFERENCES = 100
# Likewise against earlier material. Honest flags of a 200-image bundle against a pool of earlier
# dreams of 100 / 200 / 300 / 400 / 500 / 800 images (beside the eval set) were at most 7 / 5 / 3 /
# 3 / 2 / 1 % on digits and 6.5 / 4.5 / 4 / 3.5 / 2 % on MNIST: real images do not stand in for
# dreams (540 eval images beside one 200-image bundle still flagged 3.5 %). So each family of
# earlier material (earlier dreams; the eval set) counts apart: from MIN_REFERENCES images of its
# own a bundle is INVALID above the spec's max_fraction; from SMALL_POOL images, only above
# SMALL_POOL_MAX_FRACTION (a copy still shows: a 45 % copy of a 300-image bundle is 45 % derived);
# below SMALL_POOL nothing is judged against it.
MIN_REFERENCES = 500
SMALL_POOL = 100
SMALL_POOL_MAX_FRACTION = 0.10


def working_grid(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """[N, C, H, W] images (uint8, or float in the same 0..255 range) -> grey [N, 1, g, g']
    with g ≤ ``resolution``: area means rounded to integers (so a group of earlier images can
    be stored as uint8: ``reference_grid``)."""
    x = images.float().mean(1, keepdim=True)
    h, w = x.shape[2:]
    f = max(1, math.ceil(max(h, w) / resolution))
    if f > 1:
        x = F.avg_pool2d(x, f, ceil_mode=True)
    return x.round()


def reference_grid(images: torch.Tensor, cfg: dict | None = None) -> torch.Tensor:
    """An earlier group's working grid, uint8 [N, 1, g, g'] (what references and the index keep)."""
    return working_grid(images, int((cfg or DERIVED_DEFAULTS)["resolution"])).to(torch.uint8)


def _rotate(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate uint8/float images about their centre (bilinear, zero fill), at full resolution."""
    n, c, h, w = images.shape
    a = math.radians(degrees)
    theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]]).expand(n, 2, 3)
    grid = F.affine_grid(theta, (n, c, h, w), align_corners=False)
    return F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _unit(x: torch.Tensor) -> torch.Tensor:
    """rows centred and scaled to unit norm (a constant row stays 0)"""
    x = x.flatten(1)
    x = x - x.mean(1, keepdim=True)
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-6)


def _shifted(x: torch.Tensor, s: int) -> list[torch.Tensor]:
    """every shift by up to s cells (zero fill), the unshifted view first"""
    if s == 0:
        return [x]
    h, w = x.shape[2:]
    pad = F.pad(x, (s, s, s, s))
    views = [x]
    for dy in range(-s, s + 1):
        for dx in range(-s, s + 1):
            if dy or dx:
                views.append(pad[:, :, s + dy:s + dy + h, s + dx:s + dx + w])
    return views


def _quarters(x: torch.Tensor) -> list[torch.Tensor]:
    h, w = x.shape[2:]
    hh, hw = h // 2, w // 2
    return [x[:, :, :hh, :hw], x[:, :, :hh, hw:], x[:, :, hh:, :hw], x[:, :, hh:, hw:]]


@dataclass
class Views:
    """A query bundle prepared once: its aligned whole-image views and its shifted quarters."""
    whole: list[torch.Tensor]            # [V] of [n, d] unit rows
    quarters: list[list[torch.Tensor]]   # [4][S] of [n, d/4] unit rows

    @property
    def n(self) -> int:
        return len(self.whole[0])


def query_views(images: torch.Tensor, cfg: dict) -> Views:
    res, s = int(cfg["resolution"]), int(cfg["shifts"])
    base = working_grid(images, res)
    whole = [_unit(v) for v in _shifted(base, s)]
    for a in cfg["angles"]:
        whole += [_unit(v) for v in _shifted(working_grid(_rotate(images, a), res), s)]
    quarters = [[_unit(v) for v in _shifted(q, s)] for q in _quarters(base)]
    return Views(whole, quarters)


def reference_rows(grid: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """An earlier group's unit rows (from its ``reference_grid``): whole images and each quarter."""
    base = grid.float()
    return _unit(base), [_unit(q) for q in _quarters(base)]


TOP = 32  # the best matches of each query looked at for a second best that is not a copy of the best
DUPLICATE = 0.97  # two references this alike (centred cosine, aligned over the shifts) are one image
# An earlier image whose own best match among the images before it stands out by this margin
# (centred cosine, plain or aligned: ``_parents``) is *derived* from that match (a blend, warp or re-optimisation someone submitted
# earlier, INVALID itself): it and its source are one image, not a best and a second best.
LINK_MARGIN = 0.135
# only a candidate this close to a query's best match can decide a flag (``compare`` passes its
# largest threshold plus 0.03; the defaults' largest, self_margin, is 0.221): farther ones are not looked at
LINK_WINDOW = 0.25


def _first_other(top: torch.Tensor, at: torch.Tensor, same_at: Callable[[torch.Tensor, int], torch.Tensor]) -> torch.Tensor:
    """second [c]: each row's value of its first candidate (columns 1.. of the sorted ``top`` /
    ``at``) that ``same_at(rows, j)`` (bool per row: column j is the best image again) does not
    reject; -2 where the candidates ran out (fewer references); the last candidate's where every
    one was rejected. Decided column by column for the rows still open: a row costs what its first
    few candidates cost, not all of them."""
    c, k = top.shape
    second = top[:, k - 1].clone()
    open_ = torch.ones(c, dtype=torch.bool)
    for j in range(1, k):
        rows = open_.nonzero().flatten()
        if not len(rows):
            break
        val = top[rows, j]
        missing = val <= -2.0
        rejected = torch.zeros(len(rows), dtype=torch.bool)
        if (~missing).any():
            rejected[~missing] = same_at(rows[~missing], j)
        done = missing | ~rejected
        second[rows[done]] = val[done]
        open_[rows[done]] = False
    return second


def _top2(views: list[torch.Tensor], ref: torch.Tensor, exclude_self: bool,
          same: Callable[..., torch.Tensor] | None = None,
          window: float = LINK_WINDOW) -> tuple[torch.Tensor, torch.Tensor]:
    """(margin s1 − s2, index of the best reference) of each query row: the best over views of
    the similarity to each reference row, then the best and the second best reference — the
    second best among the TOP best that is not the best image again (``same(best [c], candidates
    [c, k], live [c, k])`` -> bool [c, k], deciding only the candidates within ``window`` of the
    best: the others cannot change a flag): copies and disguises of an image in the earlier
    material (an exact copy someone submitted, a noised, shifted, rotated, blended or warped one)
    must not hide a later disguised copy of it.
    With ``exclude_self`` (the bundle against itself) only references *before* the query count,
    so the later image of a derived pair is the one flagged, and only from position
    ``MIN_SELF_REFERENCES`` on."""
    n, m = len(views[0]), len(ref)
    margin, best_at = torch.zeros(n), torch.zeros(n, dtype=torch.int64)
    if m < 2:
        return margin, best_at
    k = min(TOP if same is not None else 2, m)
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        best = None
        for v in views:
            s = v[lo:hi] @ ref.T
            best = s if best is None else torch.maximum(best, s)
        if exclude_self:
            mask = torch.arange(m).view(1, -1) >= torch.arange(lo, hi).view(-1, 1)
            best = best.masked_fill(mask, -2.0)
        top, at = best.topk(k, dim=1)
        second = top[:, 1]
        if same is not None and k > 2:
            def same_at(rows: torch.Tensor, j: int) -> torch.Tensor:
                live = top[rows, j] > top[rows, 0] - window  # only these can decide a flag
                return same(at[rows, 0], at[rows, j:j + 1], live.view(-1, 1)).view(-1)
            second = _first_other(top, at, same_at)
        valid = second > -2.0
        if exclude_self:
            valid &= torch.arange(lo, hi) >= MIN_SELF_REFERENCES
        margin[lo:hi] = torch.where(valid, top[:, 0] - second, torch.zeros(hi - lo))
        best_at[lo:hi] = at[:, 0]
    return margin, best_at


def _aligned(rows: torch.Tensor, shifts: int, angles=()) -> torch.Tensor:
    """[views, c, d]: unit rows of grid rows [c, 1, g, g'] rotated by 0 and each of ``angles``,
    then shifted by up to ``shifts`` cells (the alignments a disguise is undone by)."""
    src = rows.float()
    return torch.stack([_unit(v) for a in (0.0, *angles) for v in _shifted(_rotate(src, a) if a else src, shifts)])


def _same_image(ref_grid: torch.Tensor, shifts: int, angles=(),
                linkable: torch.Tensor | None = None) -> Callable[..., torch.Tensor]:
    """best [c], candidates [c, k] (row indices of ``ref_grid``; optional ``live`` [c, k]: the
    candidates worth deciding, the rest count as other images) -> bool [c, k]: the candidate is
    the best image again, so it cannot be a second best, when

    - it is a near-duplicate of the best (centred cosine ≥ DUPLICATE over the shifts of the best,
      and of the best rotated by ``angles``): a rotated copy of the source in the earlier material;
    - or one of the two is derived from the other, or both from one earlier image
      (:func:`_parents`): a blend, warp or re-optimisation of the source that someone submitted
      earlier (INVALID itself) would otherwise be the close second best that hides a later
      disguise of the same source. ``linkable`` [m]: the rows that may be derived (submitted
      dreams; not the eval set's real images); default all."""
    plain = _unit(ref_grid.float())
    parent = _parents(plain, linkable, ref_grid, shifts, angles)

    def same(best: torch.Tensor, cand: torch.Tensor, live: torch.Tensor | None = None) -> torch.Tensor:
        b = _aligned(ref_grid[best], shifts, angles)  # [views, c, d]
        c = plain[cand]                               # [c, k, d]
        dup = torch.einsum("vcd,ckd->vck", b, c).amax(0) >= DUPLICATE
        if live is None:
            live = torch.ones_like(dup)
        pc = torch.full_like(cand, -1)
        pc[live] = parent(cand[live])
        pb = parent(best).view(-1, 1).expand_as(cand)
        bb = best.view(-1, 1).expand_as(cand)
        linked = live & ((pc == bb) | (pb == cand) | ((pc == pb) & (pc != cand) & (pb != bb)))
        return dup | linked

    return same


def _parents(plain: torch.Tensor, linkable: torch.Tensor | None = None, grid: torch.Tensor | None = None,
             shifts: int = 0, angles=()) -> Callable[[torch.Tensor], torch.Tensor]:
    """rows (any shape) -> their parents, for unit reference rows ``plain`` [m, d] in time order
    (oldest first): a row's parent is its best match among the rows *before* it when that match
    stands out by LINK_MARGIN over the next candidate that is neither a near-duplicate of it nor
    closest itself to it (a sibling: another copy of the same image), by plain centred cosine or,
    where that finds no link, with the row aligned (``shifts``, ``angles`` of ``grid``) to each of
    its 32 closest candidates; else the row itself. So a blend, warp, rotation, shift or
    re-optimisation of an earlier image names that image, however many other disguises of it were
    submitted between them. Computed when first asked (only the candidates a
    query could take as its second best, and what deciding them needs) and kept."""
    m = len(plain)
    order = torch.arange(m)
    closest = torch.full((m,), -2, dtype=torch.int64)  # each row's best match before it (itself: none)
    memo = torch.full((m,), -2, dtype=torch.int64)

    def earlier(r: torch.Tensor) -> torch.Tensor:
        return (plain[r] @ plain.T).masked_fill(order.view(1, -1) >= r.view(-1, 1), -2.0)

    def best_before(rows: torch.Tensor) -> torch.Tensor:
        todo = rows[closest[rows] == -2].unique()
        for lo in range(0, len(todo), CHUNK):
            r = todo[lo:lo + CHUNK]
            v, at = earlier(r).max(1)
            closest[r] = torch.where(v > -2.0, at, r)
        return closest[rows]

    def link(top: torch.Tensor, at: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """each row of r's candidates (sorted ``top`` / ``at``): its best when that stands out, else itself"""
        best = at[:, 0]

        def same_at(rows: torch.Tensor, j: int) -> torch.Tensor:
            cand = at[rows, j]
            out = (plain[best[rows]] * plain[cand]).sum(1) >= DUPLICATE
            window = ~out & (top[rows, j] > top[rows, 0] - LINK_MARGIN)  # a sibling decides only here
            if window.any():
                out[window] = best_before(cand[window]) == best[rows[window]]
            return out
        second = _first_other(top, at, same_at)  # -2: nothing else before it, so the best stands out
        return torch.where((top[:, 0] > -2.0) & (top[:, 0] - second >= LINK_MARGIN), best, r)

    def parent(rows: torch.Tensor) -> torch.Tensor:
        flat = rows.reshape(-1)
        todo = flat[memo[flat] == -2].unique()
        # a row with few rows before it, or one that cannot be derived (a real image), is its own
        fixed = todo < MIN_SELF_REFERENCES if linkable is None else (todo < MIN_SELF_REFERENCES) | ~linkable[todo]
        memo[todo[fixed]] = todo[fixed]
        todo = todo[~fixed]
        k = min(TOP, m)
        for lo in range(0, len(todo), CHUNK):
            r = todo[lo:lo + CHUNK]
            if k < 3:
                memo[r] = r
                continue
            top, at = earlier(r).topk(k, dim=1)
            chosen = link(top, at, r)
            open_ = chosen == r  # no plain link: try again with r aligned to each candidate
            if grid is not None and (shifts or angles) and open_.any():
                ro, to, ao = r[open_], top[open_], at[open_]
                aligned = torch.einsum("vcd,ckd->vck", _aligned(grid[ro], shifts, angles), plain[ao]).amax(0)
                aligned = torch.where(to > -2.0, aligned, torch.full_like(aligned, -2.0))
                a_top, order_ = aligned.sort(dim=1, descending=True)
                chosen[open_] = link(a_top, ao.gather(1, order_), ro)
            memo[r] = chosen
        return memo[flat].view(rows.shape)

    return parent


@dataclass
class GroupResult:
    kind: str
    label: str
    flagged: torch.Tensor        # bool [n]
    whole: int                   # images flagged by the whole-image margin
    quarters: int                # images flagged by the quarter margins
    blends: int = 0              # images flagged as blends of two earlier images

    def to_json(self) -> dict:
        return {"kind": self.kind, "source": self.label, "flagged": int(self.flagged.sum()),
                "by_whole_image": self.whole, "by_quarters": self.quarters, "by_blend": self.blends}


BLEND_TOP = 128  # candidates for the second source of a blend: the best matches of each image
BLEND_RATIO = 0.3  # a blend: two earlier images explain it this much better than its best match alone


def blend_ratios(query: torch.Tensor, ref_grid: torch.Tensor, angles=()) -> tuple[torch.Tensor, torch.Tensor]:
    """(ratio [n], best reference row [n]) of each query row (``query``: unit whole-image rows):
    the residual after projecting onto its best match and the one of its BLEND_TOP best matches
    that explains most of the rest, over the residual after the best match alone (1: the query
    is its best match, or nothing earlier resembles it). The candidates are the earlier images
    and each of them rotated by ``angles`` (degrees), so a blend of rotated sources is found too;
    a rotated candidate's row is reported as the row of the image it was made from."""
    n, m = len(query), len(ref_grid)
    ratio, best_at = torch.ones(n), torch.zeros(n, dtype=torch.int64)
    if m < 2:
        return ratio, best_at
    grid = ref_grid.float()
    ref = torch.cat([_unit(grid)] + [_unit(_rotate(grid, a)) for a in angles])
    k = min(BLEND_TOP * (1 + len(angles)), len(ref))  # as many distinct images as without rotations
    step = max(1, CHUNK * BLEND_TOP // k)  # the [step, k, d] candidates stay the size of [CHUNK, BLEND_TOP, d]
    for lo in range(0, n, step):
        q = query[lo:lo + step]
        _, at = (q @ ref.T).topk(k, dim=1)
        r1 = ref[at[:, 0]]
        e = q - (q * r1).sum(1, keepdim=True) * r1              # what the best match leaves
        rest = ref[at[:, 1:]]
        rest = rest - (rest * r1.unsqueeze(1)).sum(2, keepdim=True) * r1.unsqueeze(1)
        rest = rest / rest.norm(dim=2, keepdim=True).clamp_min(1e-6)
        gain = (rest * e.unsqueeze(1)).sum(2).pow(2).amax(1)     # the most a second image explains of it
        res1 = e.norm(dim=1)
        res2 = (res1.pow(2) - gain).clamp_min(0).sqrt()
        ratio[lo:lo + step] = torch.where(res1 > 1e-3, res2 / res1.clamp_min(1e-6), torch.ones_like(res1))
        best_at[lo:lo + step] = at[:, 0] % m
    return ratio, best_at


def blends(query: torch.Tensor, ref_grid: torch.Tensor, angles=()) -> tuple[torch.Tensor, torch.Tensor]:
    """(bool [n], best reference [n]): which query rows are a blend of two earlier images
    (possibly rotated by ``angles``): their ``blend_ratios`` under BLEND_RATIO. Measured
    (1,000-image bundles, the union of two others and the eval set): the lowest honest ratio
    0.66 on digits, 0.72 on MNIST (p0.1, unrotated candidates); own-pair blends 50/50 → 0.01, so
    81–95 % of their images fall under 0.3, 70/30 blends 23–66 %."""
    ratio, best_at = blend_ratios(query, ref_grid, angles)
    return ratio < BLEND_RATIO, best_at


def compare(views: Views, ref_grid: torch.Tensor, thresholds: tuple[float, float, torch.Tensor | float],
            exclude_self: bool = False, shifts: int = 1, angles=(),
            linkable: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which query images look derived from the references ``ref_grid`` (``reference_grid``
    rows, possibly the union of several groups). ``thresholds``: (whole-image margin, quarter
    margin per reference row or one for all, quarters needed). Returns (flagged bool [n],
    flagged by the whole image, flagged by quarters, the reference row each flagged image
    matched best). ``linkable``: the reference rows that may be derived from older ones (oldest
    first; ``_parents``), default all."""
    margin, quad, quad_min = thresholds
    whole_ref, quarter_refs = reference_rows(ref_grid)
    same = _same_image(ref_grid, shifts, angles, linkable)
    window = max(float(margin), float(quad.max()) if isinstance(quad, torch.Tensor) else float(quad)) + 0.03
    m_whole, at_whole = _top2(views.whole, whole_ref, exclude_self, same, window)
    by_whole = m_whole > float(margin)
    counts = torch.zeros(views.n, dtype=torch.int64)
    at = at_whole.clone()
    for q_views, q_ref in zip(views.quarters, quarter_refs):
        m_q, at_q = _top2(q_views, q_ref, exclude_self, same, window)
        tau = quad[at_q] if isinstance(quad, torch.Tensor) else quad
        hit = m_q > tau
        counts += hit.long()
        at = torch.where(hit & ~by_whole, at_q, at)
    by_quarters = counts >= int(quad_min)
    return by_whole | by_quarters, by_whole, by_quarters, at


@dataclass
class DerivedReport:
    n: int
    derived: torch.Tensor                      # bool [n]: derived from some earlier group
    groups: list[GroupResult] = field(default_factory=list)
    first: list[int | None] = field(default_factory=list)  # per image: index into groups of its first match
    skipped_groups: int = 0
    seconds: float = 0.0
    too_few_references: int = 0  # earlier images given in families under SMALL_POOL: none judged against them
    small_pool: int = 0  # earlier images judged against in families under MIN_REFERENCES (the lenient limit)

    def limit(self, max_fraction: float) -> float:
        """The derived share above which the bundle is INVALID: the spec's, or the lenient
        SMALL_POOL_MAX_FRACTION when some family it was judged against is small."""
        return max(max_fraction, SMALL_POOL_MAX_FRACTION) if self.small_pool else max_fraction

    @property
    def fraction(self) -> float:
        return float(self.derived.float().mean()) if self.n else 0.0

    def to_json(self) -> dict:
        return {"derived": int(self.derived.sum()), "derived_fraction": round(self.fraction, 4),
                "groups": [g.to_json() for g in self.groups if int(g.flagged.sum())],
                "groups_checked": len(self.groups), "groups_skipped": self.skipped_groups,
                **({"not_judged": f"only {self.too_few_references} earlier images of a kind (< {SMALL_POOL}): "
                                  "no image judged against them"} if self.too_few_references else {}),
                **({"small_pool": f"{self.small_pool} earlier images of a kind (< {MIN_REFERENCES}): INVALID only "
                                  f"above {SMALL_POOL_MAX_FRACTION:.0%} derived"} if self.small_pool else {}),
                "seconds": round(self.seconds, 3)}


def bundle_similarity(images: torch.Tensor, earlier: torch.Tensor, cfg: dict | None = None) -> dict:
    """How much a bundle as a whole looks derived from one earlier bundle (a measurement for
    `codream bench verify`, not a verdict): over the images of ``images`` against the uint8 images
    ``earlier``, the mean whole-image margin (as :func:`compare` computes it), the share of images
    whose margin is over half the per-image threshold, and the share that are mutual nearest
    neighbours with their best match (the best match's own best match among ``images`` is the image)."""
    cfg = cfg or DERIVED_DEFAULTS
    views = query_views(images, cfg)
    ref_grid = reference_grid(earlier, cfg)
    whole, _ = reference_rows(ref_grid)
    margin, best_at = _top2(views.whole, whole, False, _same_image(ref_grid, int(cfg["shifts"]), cfg["angles"]))
    back_views = query_views(earlier, cfg)
    rows, _ = reference_rows(reference_grid(images, cfg))
    back = torch.zeros(len(earlier), dtype=torch.int64)
    for lo in range(0, len(earlier), CHUNK):
        hi = min(len(earlier), lo + CHUNK)
        back[lo:hi] = torch.stack([v[lo:hi] @ rows.T for v in back_views.whole]).amax(0).argmax(1)
    mutual = back[best_at] == torch.arange(len(images))
    return {"mean_margin": round(float(margin.mean()), 4),
            "over_half_threshold": round(float((margin > float(cfg["margin"]) / 2).float().mean()), 4),
            "mutual_nearest": round(float(mutual.float().mean()), 4)}


COARSE = 7  # the coarse grid that chooses which groups get the exact check when there are many


def _most_voted(images: torch.Tensor, groups: list, cfg: dict, limit: int) -> list:
    """The ``limit`` groups that most of the bundle's images match best on a coarse grid
    (COARSE×COARSE, rotations only: about 35× cheaper per earlier image than the exact check),
    ties in the given (commit) order. A copy's source collects the votes of its copies."""
    res = int(cfg["resolution"])

    def coarse(grid: torch.Tensor) -> torch.Tensor:  # queries and references the same way: grid, then pool
        h, w = grid.shape[2:]
        return _unit(F.adaptive_avg_pool2d(grid.float(), (min(COARSE, h), min(COARSE, w))))

    views = [coarse(working_grid(images, res))]
    views += [coarse(working_grid(_rotate(images, a), res)) for a in cfg["angles"]]
    refs = torch.cat([coarse(g[2]) for g in groups])
    owner = torch.cat([torch.full((len(g[2]),), k, dtype=torch.int64) for k, g in enumerate(groups)])
    best_val = torch.full((len(images),), -2.0)
    best_at = torch.zeros(len(images), dtype=torch.int64)
    for lo in range(0, len(refs), 65536):
        block = refs[lo:lo + 65536]
        s = torch.stack([v @ block.T for v in views]).amax(0)
        val, at = s.max(1)
        better = val > best_val
        best_val, best_at = torch.where(better, val, best_val), torch.where(better, at + lo, best_at)
    votes = torch.bincount(owner[best_at], minlength=len(groups))
    order = sorted(range(len(groups)), key=lambda k: (-int(votes[k]), k))[:limit]
    return [groups[k] for k in sorted(order)]


def check_derived(images: torch.Tensor, groups: list[tuple[str, str, torch.Tensor]], cfg: dict,
                  self_check: bool = True) -> DerivedReport:
    """Compare a bundle (uint8 [N, C, H, W]) with earlier material and with itself: which images
    are derived. ``groups``: ``(kind, label, grid)``, oldest first (earlier tasks' bundles, then
    this task's earlier submissions in commit order, then the eval set: an earlier image derived
    from an older one counts as that one, ``_parents``), with ``grid`` the group's ``reference_grid``
    at ``cfg``'s resolution. The margins are taken against the **union** of the groups (so more
    earlier work makes an honest image's second-best match closer, never a false flag more
    likely) and each flagged image is attributed to the group of its best match. At most
    ``cfg['max_groups']`` groups get the exact check: with more, those that most images match best
    on a coarse grid (``_most_voted``); a group stored at another resolution is skipped (and
    counted)."""
    import time

    t0 = time.perf_counter()
    n = len(images)
    views = query_views(images, cfg)
    shape = tuple(working_grid(images[:1], int(cfg["resolution"])).shape[1:])
    usable = [g for g in groups if g[2] is not None and len(g[2]) and tuple(g[2].shape[1:]) == shape]
    mismatched = sum(1 for g in groups if g[2] is not None and tuple(g[2].shape[1:]) != shape)
    limit = int(cfg["max_groups"])
    chosen = usable if len(usable) <= limit else _most_voted(images, usable, cfg, limit)
    derived = torch.zeros(n, dtype=torch.bool)
    first: list[int | None] = [None] * n
    results: list[GroupResult] = []

    def book(kind, label, flagged, by_w, by_q, by_blend=None):
        for i in (flagged & ~derived).nonzero().flatten().tolist():
            first[i] = len(results)
        results.append(GroupResult(kind, label, flagged, int(by_w.sum()), int(by_q.sum()),
                                   int(by_blend.sum()) if by_blend is not None else 0))
        derived.__ior__(flagged)

    if self_check:
        f, w, q, _ = compare(views, reference_grid(images, cfg),
                             (cfg["self_margin"], cfg["self_quad_margin"], cfg["quad_min"]), exclude_self=True,
                             shifts=int(cfg["shifts"]), angles=cfg["angles"])
        book("self", "this bundle", f, w, q)
    # each family (earlier dreams; the eval set's real images) counts apart (MIN_REFERENCES, SMALL_POOL)
    too_few = small = 0
    for family in (lambda g: g[0] == "eval_set", lambda g: g[0] != "eval_set"):
        size = sum(len(g[2]) for g in chosen if family(g))
        if 0 < size < SMALL_POOL:
            too_few += size
            chosen = [g for g in chosen if not family(g)]
        elif 0 < size < MIN_REFERENCES:
            small += size
    if chosen:
        union = torch.cat([g[2] for g in chosen])
        owner = torch.cat([torch.full((len(g[2]),), k, dtype=torch.int64) for k, g in enumerate(chosen)])
        quad = torch.tensor([float(cfg["eval_quad_margin"] if g[0] == "eval_set" else cfg["quad_margin"])
                             for g in chosen])[owner]
        linkable = torch.cat([torch.full((len(g[2]),), g[0] != "eval_set") for g in chosen])  # not real images
        f, w, q, at = compare(views, union, (cfg["margin"], quad, cfg["quad_min"]), shifts=int(cfg["shifts"]),
                              angles=cfg["angles"], linkable=linkable)
        b, b_at = blends(views.whole[0], union, cfg["angles"])
        b &= ~f
        src = owner[torch.where(b, b_at, at)]
        for k, (kind, label, _) in enumerate(chosen):
            mine = src == k
            book(kind, label, (f | b) & mine, w & mine, q & mine, b & mine)
    return DerivedReport(n, derived, results, first, len(usable) - len(chosen) + mismatched,
                         time.perf_counter() - t0, too_few, small)
