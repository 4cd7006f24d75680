"""Novelty: an image earns only if it is not a near-twin of something committed earlier.

"Earlier" is the union of: images before it in its own bundle (mode collapse), the
submissions committed before this one in the task (commit order; the earliest commitment
wins), the accepted bundles of earlier tasks that share a teacher (replay; the persistent
:class:`verifier.index.NoveltyIndex`), and the task's revealed eval set (contamination).

**The comparison** (measured against teacher features, perceptual hashes and invariant
signatures; docs/dreams.md, "Novelty"): images become an 8×8 grey grid of integers
(the pixels themselves on the digits task), and two grids are near-twins when, for some
alignment, the absolute centred cosine over the pixels both hold is ≥ ``threshold``. The
alignments are the 8 flips/rotations (D4) times the 9 one-pixel shifts of the query (a
shifted copy lost a border row, so only the overlap is compared: the copy then matches
exactly), and the earlier image is also compared as if crop-and-resized (a 7×7 crop at each
corner scaled back to 8×8). Centring and normalising make brightness and contrast changes
free; the absolute value catches inverted copies. Teacher features were measured and
rejected: dreams are optimised to look alike *to the teacher*, so independent honest dreams
sit closer in its feature space than a noised copy does to its source.

Every similarity is a function of integer sums (exact in float32 GEMMs: 64 products of
values ≤ 255), combined by element-wise IEEE operations, so verifiers on any hardware and
thread count agree bit for bit; :attr:`NoveltyReport.near_threshold` counts the images
within ``NEAR`` of the threshold anyway.

**The search** (all of an image's 72 alignments against a million earlier images is far
too slow on a CPU), in two stages:

1. *Hashing*: every aligned view's central 6×6 window is binarised at its median (36
   bits); each earlier image stores the code of its own central window (and of its
   crop-and-resize variants) in a sorted array. A query looks up each view's code, with
   the ``probe_bits`` least certain bits flipped every way (a code and its complement hash
   alike: inverted copies): geometric copies and monotone intensity changes hit exactly;
   noise hits when it flips only uncertain bits. A code shared by many earlier images
   yields its ``max_bucket`` earliest ones. The earlier tasks' table (up to millions of
   images) is looked up with exact codes only (``index_probe_bits``) and yields
   ``index_max_bucket`` per code: a bulk replay still hits often enough for stage 2, and
   the lookup stays a small share of scoring. Candidates are verified with the exact similarity.
2. *Exhaustive check of the sources*: a reference group (an earlier bundle, the eval set,
   this bundle itself) that received ``trigger_hits`` or more verified hits is then
   compared exhaustively with the bundle's remaining images, catching what noise hid from
   the hashes. At most ``max_exhaustive`` groups per bundle, the most-hit first.

So a bulk copy (sybil variants, replays, eval images, unions of earlier bundles) is
caught with the exhaustive check's sensitivity, and a thin interleave of many sources
only by the hashes: :func:`check_novelty` reports which stage flagged what.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F

from .derived import check_derived, reference_grid
from .distill import torch_threads
from .spec import TaskSpec, derived_config, novelty_config

GRID = 8                      # fingerprints are GRID×GRID grey integers
WIN = GRID - 2                # the central window hashed (inside every one-pixel overlap)
NEAR = 0.002                  # similarities this close to the threshold are reported
KINDS = ("self", "earlier_submission", "earlier_task", "eval_set")
_SHIFTS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
_ZOOMS = [(0, 0), (0, 1), (1, 0), (1, 1)]  # corner of the 7×7 crop an earlier image is resized from
VARIANTS = ("identity",) + tuple(f"crop7@{oy}{ox}" for oy, ox in _ZOOMS)


# -- fingerprints ---------------------------------------------------------------------------
def grid(images: torch.Tensor) -> torch.Tensor:
    """uint8 images [N, C, H, W] -> uint8 grey grids [N, GRID, GRID] (exact integer means:
    the pixels themselves for 1-channel 8×8 inputs)."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"images must be uint8 [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
    n, c, h, w = images.shape
    if h < GRID or w < GRID:
        raise ValueError(f"images must be at least {GRID}x{GRID}, got {h}x{w}")
    x = images.to(torch.int64).sum(1)                               # [N, H, W]
    if (h, w) == (GRID, GRID):
        count = torch.full((GRID, GRID), c, dtype=torch.int64)
        s = x
    else:  # area pooling with integer sums (adaptive bins), then a rounded exact division
        ys = [(i * h) // GRID for i in range(GRID + 1)]
        xs = [(j * w) // GRID for j in range(GRID + 1)]
        s = torch.stack([torch.stack([x[:, ys[i]:ys[i + 1], xs[j]:xs[j + 1]].sum((1, 2)) for j in range(GRID)], 1)
                         for i in range(GRID)], 1)
        count = torch.tensor([[c * (ys[i + 1] - ys[i]) * (xs[j + 1] - xs[j]) for j in range(GRID)]
                              for i in range(GRID)], dtype=torch.int64)
    return ((2 * s + count) // (2 * count)).to(torch.uint8)


def _d4(g: torch.Tensor) -> list[torch.Tensor]:
    """The 8 flips/rotations of grids [..., H, W] (identity first)."""
    t = g.transpose(-1, -2)
    return [g, g.flip(-1), g.flip(-2), g.flip(-2).flip(-1), t, t.flip(-1), t.flip(-2), t.flip(-2).flip(-1)]


def _masks() -> torch.Tensor:
    """[9, GRID*GRID] bool: the pixels a view shifted by (dy, dx) still holds."""
    out = torch.zeros(len(_SHIFTS), GRID, GRID, dtype=torch.bool)
    for k, (dy, dx) in enumerate(_SHIFTS):
        out[k, max(0, -dy):GRID + min(0, -dy), max(0, -dx):GRID + min(0, -dx)] = True
    return out.flatten(1)


MASKS = _masks()


def query_views(grids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All alignments of query grids: values [72, N, 64] float32 (integers, 0 outside the
    view's overlap) and the mask index of each view [72] (into :data:`MASKS`)."""
    g = grids.to(torch.float32)
    vals, mids = [], []
    for v in _d4(g):
        pad = F.pad(v, (1, 1, 1, 1))
        for k, (dy, dx) in enumerate(_SHIFTS):
            vals.append(pad[:, 1 + dy:1 + dy + GRID, 1 + dx:1 + dx + GRID].reshape(len(g), -1))
            mids.append(k)
    return torch.stack(vals), torch.tensor(mids)


def _zoom_matrix(oy: int, ox: int) -> torch.Tensor:
    """The 7×7 crop at (oy, ox) resized to GRID×GRID (bilinear, half-pixel centres) as a linear
    map of the flattened grid, float32 [64, 64]. Its weights are multiples of 1/256, so the
    products and sums with integer pixels are exact in float32 on any hardware (equal to
    ``F.interpolate``, checked in the tests) and a batch of crops is one small GEMM."""
    eye = torch.eye(GRID * GRID, dtype=torch.float64).view(-1, 1, GRID, GRID)[:, :, oy:oy + GRID - 1, ox:ox + GRID - 1]
    return F.interpolate(eye, (GRID, GRID), mode="bilinear", align_corners=False).view(GRID * GRID, -1).to(torch.float32)


_ZOOM_MATRICES = [_zoom_matrix(oy, ox) for oy, ox in _ZOOMS]


def _zoom_rows(rows: torch.Tensor, k: int) -> torch.Tensor:
    """Flattened grids (float32 integers [P, 64]) as the crop-and-resize ``_ZOOMS[k]``,
    rounded back to integers (float32 [P, 64])."""
    return (rows @ _ZOOM_MATRICES[k]).round().clamp(0, 255)


def _zoom(grids: torch.Tensor, oy: int, ox: int) -> torch.Tensor:
    """The 7×7 crop at (oy, ox) of uint8 grids [N, G, G], resized to G×G (bilinear), uint8."""
    rows = grids.reshape(len(grids), GRID * GRID).to(torch.float32)
    return _zoom_rows(rows, _ZOOMS.index((oy, ox))).to(torch.uint8).view(-1, GRID, GRID)


def variants(grids: torch.Tensor) -> torch.Tensor:
    """An earlier image as a copier could have re-shaped it: identity and 7×7 corner crops
    resized to 8×8 (bilinear). uint8 [len(VARIANTS), N, GRID, GRID]."""
    return torch.stack([grids] + [_zoom(grids, oy, ox) for oy, ox in _ZOOMS])


def _window_codes(flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central-window codes of flattened grids [..., 64]: (int64 codes [...], margins [..., 36])."""
    w = flat.reshape(*flat.shape[:-1], GRID, GRID)[..., 1:GRID - 1, 1:GRID - 1].reshape(*flat.shape[:-1], WIN * WIN)
    med = w.median(-1, keepdim=True).values
    return _code_of(w > med), (w - med).abs()


def _code_of(bits: torch.Tensor) -> torch.Tensor:
    """int64 codes of 0/1 bits [..., 36] (exact: a float64 dot product of sums < 2**36)."""
    weights = 2.0 ** torch.arange(WIN * WIN, dtype=torch.float64)
    return (bits.to(torch.float64) @ weights).to(torch.int64)


def _window_sources() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which grid pixels each query view's central window holds: every window lies inside
    the view's overlap, so it is a permutation of one of the 9 6×6 windows of the grid
    itself. Returns (pixel of each view's window [72, 36], window of each view [72], the 9
    windows' pixels [9, 36])."""
    labels = (torch.arange(GRID * GRID) + 1).view(1, GRID, GRID).to(torch.uint8)  # 0 = outside
    v, _ = query_views(labels)
    src = v[:, 0].view(-1, GRID, GRID)[:, 1:GRID - 1, 1:GRID - 1].reshape(-1, WIN * WIN).long() - 1
    assert (src >= 0).all()
    sets, which = torch.unique(src.sort(-1).values, dim=0, return_inverse=True)
    return src, which, sets


_WIN_SRC, _WIN_SET, _WIN_PIX = _window_sources()
_BIT_OF = torch.zeros(len(_WIN_SRC), GRID * GRID, dtype=torch.int64)   # view, grid pixel -> bit
_BIT_OF.scatter_(1, _WIN_SRC, torch.arange(WIN * WIN).expand_as(_WIN_SRC).contiguous())


def _view_codes(grids: torch.Tensor, probe_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The window codes of :func:`query_views` (equal to :func:`_window_codes` of them,
    tested) and each view's ``probe_bits`` least certain bits: (int64 codes [72, N], bit
    positions [72, N, b]). Every view's window is a permutation of one of the grid's 9
    windows, so medians and the least certain pixels are found on those 9: the b pixels
    closest to the median, ties to the lower pixel (margins are integers ≤ 255, so
    margin * 64 + pixel is exact and unique: no ties left for topk to break)."""
    flat = grids.reshape(len(grids), GRID * GRID).to(torch.float32)
    win = flat[:, _WIN_PIX]                                          # [N, 9, 36]
    med = win.median(-1, keepdim=True).values                       # [N, 9, 1]
    w = flat[:, _WIN_SRC].transpose(0, 1)                            # [72, N, 36]
    code = _code_of(w > med.squeeze(-1).t()[_WIN_SET].unsqueeze(-1))
    if not probe_bits:
        return code, torch.zeros(*code.shape, 0, dtype=torch.int64)
    key = (win - med).abs() * (GRID * GRID) + _WIN_PIX.to(torch.float32)
    pix = _WIN_PIX[torch.arange(len(_WIN_PIX)).view(1, -1, 1),
                   key.topk(probe_bits, dim=-1, largest=False, sorted=True).indices]   # [N, 9, b]
    pix = pix[:, _WIN_SET].transpose(0, 1)                           # [72, N, b]
    low = torch.gather(_BIT_OF.unsqueeze(1).expand(-1, len(grids), -1), 2, pix)
    return code, low


_FULL = (1 << (WIN * WIN)) - 1


def _canonical(code: torch.Tensor) -> torch.Tensor:
    """A code and its complement (an inverted image) hash alike."""
    return torch.minimum(code, code ^ _FULL)


def entry_codes(grids: torch.Tensor) -> torch.Tensor:
    """What an earlier image stores for the hash stage: its variants' window codes, int64
    [N, len(VARIANTS)]."""
    v = variants(grids).to(torch.float32).flatten(2)               # [V, N, 64]
    return _canonical(_window_codes(v)[0]).t().contiguous()


def _probe_codes(code: torch.Tensor, low: torch.Tensor, probe_bits: int) -> torch.Tensor:
    """Codes a query view looks up (:func:`_view_codes`): its own, with every subset of its
    first ``probe_bits`` least certain bits flipped, and the complements (inverted copies).
    [72, N, 2**b]."""
    codes = code.unsqueeze(-1)
    for i in range(probe_bits):  # subset s flips bit low[i] when (s >> i) & 1
        codes = torch.cat([codes, codes ^ (1 << low[..., i:i + 1])], -1)      # [72, N, 2**(i+1)]
    return _canonical(codes)


# -- similarity ------------------------------------------------------------------------------
def _similarity(q: torch.Tensor, mid: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """|centred cosine| over each view's overlap, pairwise rows: q [P, 64] view values,
    mid [P] mask ids, e [P, 64] earlier grids (float32 integers). Deterministic: integer
    sums, then separate element-wise IEEE operations."""
    m = MASKS[mid].to(torch.float32)
    n = m.sum(1)
    sq, se = q.sum(1), (e * m).sum(1)
    sqq, see, sqe = (q * q).sum(1), (e * e * m).sum(1), (q * e).sum(1)
    return _cos(sqe, sq, se, sqq, see, n)


def _cos(sqe, sq, se, sqq, see, n):
    mq = sq / n
    num = sqe - mq * se
    vq = sqq - mq * sq
    ve = see - (se / n) * se
    den = torch.sqrt(vq.clamp_min(1.0) * ve.clamp_min(1.0))
    return (num / den).abs()


def similarity_exhaustive(views: torch.Tensor, mids: torch.Tensor, earlier: torch.Tensor,
                          before: torch.Tensor | None = None, chunk: int = 2048,
                          device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Best similarity of each query over all its views against every earlier grid.
    views [V, Q, 64], earlier [N, 64] float32 integers; ``before`` [Q]: compare query q only
    with earlier rows < before[q] (a bundle against itself). Returns (best [Q], argbest [Q])."""
    device = torch.device(device)
    vq = views.to(device)
    masks = MASKS.to(device, torch.float32)
    n = masks.sum(1)                                               # [9]
    sq, sqq = vq.sum(-1), (vq * vq).sum(-1)                        # [V, Q]
    best = torch.zeros(views.shape[1], device=device)
    arg = torch.zeros(views.shape[1], dtype=torch.int64, device=device)
    mids = mids.to(device)
    for lo in range(0, len(earlier), chunk):
        e = earlier[lo:lo + chunk].to(device)
        se, see = e @ masks.t(), (e * e) @ masks.t()              # [N, 9]: exact integer sums
        allowed = None
        if before is not None:
            allowed = (torch.arange(lo, lo + len(e), device=device).view(1, -1) < before.to(device).view(-1, 1))
        for v in range(len(vq)):
            k = mids[v]
            sqe = vq[v] @ e.t()                                     # exact: integer sums < 2**24
            s = _cos(sqe, sq[v].unsqueeze(1), se[:, k].unsqueeze(0), sqq[v].unsqueeze(1),
                     see[:, k].unsqueeze(0), n[k])
            if allowed is not None:
                s = torch.where(allowed, s, torch.zeros((), device=device))
            m, a = s.max(1)
            better = m > best
            best = torch.where(better, m, best)
            arg = torch.where(better, a + lo, arg)
    return best.cpu(), arg.cpu()


# -- references and the report ------------------------------------------------------------------
@dataclass
class Reference:
    """A group of earlier images: one earlier bundle, the eval set, or this bundle itself."""

    kind: str                      # one of KINDS
    label: str                     # e.g. "submission 3", "task 2 submission 0", "eval set"
    grids: torch.Tensor            # uint8 [N, GRID, GRID]
    codes: torch.Tensor | None = None  # int64 [N, len(VARIANTS)]; computed when missing
    work: torch.Tensor | None = None   # uint8 [N, 1, g, g']: the derived-work check's grid (codream/derived.py)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"reference kind must be one of {KINDS}, got {self.kind!r}")
        if self.codes is None:
            self.codes = entry_codes(self.grids)


def reference(kind: str, label: str, images: torch.Tensor, spec: TaskSpec | None = None,
              threads: int | None = 1) -> Reference:
    """A reference group from uint8 images [N, C, H, W] (``spec``: for the resolution at which the
    derived-work check compares; the default one without). ``threads``: as for
    :func:`check_novelty`, small operations that one thread does best on a busy machine (a
    verifier prepared a 1,000-image MNIST bundle's reference in 0.565 s at the default two threads
    under load, 0.023 s at one); the reference does not depend on it."""
    with torch_threads(threads):
        return Reference(kind, label, grid(images), work=reference_grid(images, derived_config(spec)))


@dataclass
class NoveltyReport:
    n: int
    novel: torch.Tensor                         # bool [N]
    reason: list[str | None]                    # per image: None (novel) or a KINDS entry
    source: list[str | None]                    # per image: the matched reference's label
    similarity: torch.Tensor                    # float [N]: best similarity found (0 if none looked at)
    threshold: float
    near_threshold: int                         # images within NEAR of a threshold they were tested at
    checked: dict                               # what was compared: kinds -> number of images
    stages: dict                                # flagged by "hash" / "exhaustive", seconds
    exhaustive_groups: list[str] = field(default_factory=list)
    source_threshold: float = 0.0               # the threshold against groups checked exhaustively

    @property
    def n_novel(self) -> int:
        return int(self.novel.sum())

    @property
    def novel_fraction(self) -> float:
        return self.n_novel / self.n if self.n else 0.0

    def counts(self) -> dict[str, int]:
        out = {k: 0 for k in KINDS}
        for r in self.reason:
            if r is not None:
                out[r] += 1
        return out

    def to_json(self) -> dict:
        """The verifier's JSON record of this check."""
        counts = self.counts()
        top: dict[str, int] = {}
        for s in self.source:
            if s is not None:
                top[s] = top.get(s, 0) + 1
        return {"n": self.n, "novel": self.n_novel, "novel_fraction": round(self.novel_fraction, 4),
                "not_novel": {k: v for k, v in counts.items() if v},
                "sources": dict(sorted(top.items(), key=lambda kv: -kv[1])[:10]),
                "threshold": self.threshold, "source_threshold": self.source_threshold,
                "near_threshold": self.near_threshold,
                "checked": self.checked, "stages": self.stages, "exhaustive_groups": self.exhaustive_groups}


class _Table:
    """Sorted window codes of all reference groups, for the hash stage."""

    def __init__(self, refs: Sequence[Reference], gids: Sequence[int] | None = None):
        self.refs = list(refs)
        # the check's group id of each reference (all tables of one check share one numbering)
        self.gid = torch.tensor(list(gids) if gids is not None else range(len(self.refs)), dtype=torch.int64)
        self.offsets = [0]
        for r in self.refs:
            self.offsets.append(self.offsets[-1] + len(r.grids))
        total = self.offsets[-1]
        nv = len(VARIANTS)
        if total:
            codes = torch.cat([r.codes for r in self.refs])                 # [T, V]
            self.grids = torch.cat([r.grids for r in self.refs]).flatten(1)  # uint8 [T, 64]
        else:
            codes = torch.zeros(0, nv, dtype=torch.int64)
            self.grids = torch.zeros(0, GRID * GRID, dtype=torch.uint8)
        flat = codes.flatten()
        order = flat.argsort(stable=True)
        self.entry = order // nv
        self.variant = order % nv
        # one lookup per probe: the distinct codes, where each one's run starts, how long it is
        self.keys, counts = torch.unique_consecutive(flat[order], return_counts=True)
        self.start = torch.cumsum(counts, 0) - counts
        self.count = counts
        self.group = torch.bucketize(torch.arange(total), torch.tensor(self.offsets[1:]), right=True)

    def __len__(self) -> int:
        return self.offsets[-1]


# The earlier tasks' table is the same for every bundle of a task: built once, kept for the
# next checks (keyed by the identity of its references, which the index keeps alive).
_STORED: "OrderedDict[tuple, tuple[list, _Table]]" = OrderedDict()


def _stored_table(refs: list[Reference], gids: list[int]) -> _Table:
    key = tuple(id(r) for r in refs) + tuple(gids)
    hit = _STORED.get(key)
    if hit is None:
        hit = _STORED[key] = (refs, _Table(refs, gids))
        while len(_STORED) > 2:
            _STORED.popitem(last=False)
    return hit[1]


def check_novelty(images: torch.Tensor, spec: TaskSpec | None = None, earlier: Iterable[Reference] = (),
                  index=None, eval_images: torch.Tensor | None = None, self_check: bool = True,
                  device: str | torch.device = "cpu", config: dict | None = None,
                  threads: int | None = 1) -> NoveltyReport:
    """Which of ``images`` (uint8 [N, C, H, W], bundle order) are new.

    ``earlier``: references for the submissions committed before this one in the task (commit
    order; use :func:`reference`); ``index``: a :class:`verifier.index.NoveltyIndex` (or any
    object with ``references(teacher_cids)``) holding accepted bundles of earlier tasks;
    ``eval_images``: the revealed eval set. ``config`` overrides the spec's novelty settings.

    ``threads``: torch threads for the check (restored after; None: leave them). The check is
    hundreds of small tensor operations: on the 2-core build machine one thread took 1.7× as
    long as two when idle, but two took 1.6× as long as one beside three busy processes (every
    operation waits for both threads), so one is the default. The report does not depend on it.
    """
    with torch_threads(threads):
        return _check_novelty(images, spec, earlier, index, eval_images, self_check, device, config)


def _check_novelty(images, spec, earlier, index, eval_images, self_check, device, config) -> NoveltyReport:
    t0 = time.perf_counter()
    cfg = dict(novelty_config(spec) if spec is not None else novelty_config(None))
    cfg.update(config or {})
    tau, probe_bits = float(cfg["threshold"]), int(cfg["probe_bits"])
    tau_source = float(cfg["source_threshold"])
    g = grid(images)
    n = len(g)
    refs: list[Reference] = list(earlier)
    stored: list[Reference] = []
    if index is not None:
        cids = [t["weights_cid"] for t in spec.teachers] if spec is not None else None
        stored = list(index.references(cids))
    n_local = len(refs)
    refs += stored
    if eval_images is not None:
        refs.append(reference("eval_set", "eval set", eval_images, spec))
    me = Reference("self", "this bundle", g) if self_check else None
    checked = {k: 0 for k in KINDS}
    for r in refs:
        checked[r.kind] += len(r.grids)
    if me is not None:
        checked["self"] = n
    all_refs = refs + ([me] if me is not None else [])
    me_gid = len(all_refs) - 1 if me is not None else -1
    local_gids = [i for i in range(len(all_refs)) if not n_local <= i < n_local + len(stored)]
    tables = [_Table([all_refs[i] for i in local_gids], local_gids)]
    if stored:
        tables.append(_stored_table(stored, list(range(n_local, n_local + len(stored)))))

    views, mids = query_views(g)                                     # [72, N, 64]
    view_code, view_low = _view_codes(g, max(probe_bits, int(cfg["index_probe_bits"])))
    best = torch.zeros(n)
    best_ref = torch.full((n,), -1, dtype=torch.int64)
    hit_variants: dict[int, set[int]] = {}
    flagged_by = {"hash": 0, "exhaustive": 0, "candidates": 0}
    t1 = time.perf_counter()
    # 1. hashing: candidates from exact code matches, verified exactly
    for table in tables:
        if not len(table):
            continue
        # earlier tasks (a large table): exact codes only; a bulk replay hits often enough to get
        # its source checked exhaustively below, and 2**probe_bits fewer lookups keep a
        # million-image index cheap
        bits = probe_bits if table is tables[0] else int(cfg["index_probe_bits"])
        probes = _probe_codes(view_code, view_low, bits)              # [72, N, S]
        V, _, S = probes.shape
        flat = probes.flatten()
        u = torch.searchsorted(table.keys, flat).clamp(max=max(len(table.keys) - 1, 0))
        found = table.keys[u] == flat
        lo = table.start[u]
        cnt = torch.where(found, table.count[u], torch.zeros((), dtype=torch.int64))
        cap = int(cfg["max_bucket"] if table is tables[0] else cfg["index_max_bucket"])
        cnt = cnt.clamp(max=cap)  # a common code: its earliest max_bucket images only
        total = int(cnt.sum())
        if total:
            pos = torch.repeat_interleave(torch.arange(len(flat)), cnt)
            offs = torch.arange(total) - torch.repeat_interleave(torch.cumsum(cnt, 0) - cnt, cnt)
            hit = lo[pos] + offs
            view, qi = pos // (n * S), (pos // S) % n
            entry, var = table.entry[hit], table.variant[hit]
            grp = table.gid[table.group[entry]]
            if me is not None and table is tables[0]:  # within the bundle, only earlier positions count
                own = grp == me_gid
                keep = ~own | ((entry - table.offsets[-2]) < qi)
                view, qi, entry, var, grp = view[keep], qi[keep], entry[keep], var[keep], grp[keep]
            flagged_by["candidates"] += int(len(qi))
            key = torch.unique(((qi * V + view) * len(table) + entry) * len(VARIANTS) + var)
            var = key % len(VARIANTS)
            entry = (key // len(VARIANTS)) % len(table)
            qv = key // (len(VARIANTS) * len(table))
            view, qi = qv % V, qv // V
            e = _variant_rows(table, entry, var)
            s = _similarity(views[view, qi], mids[view], e)
            grp = table.gid[table.group[entry]]
            _take_best(best, best_ref, qi, s, grp)
            ok = s >= tau
            for code in torch.unique(grp[ok] * len(VARIANTS) + var[ok]).tolist():
                hit_variants.setdefault(code // len(VARIANTS), set()).add(code % len(VARIANTS))
    flag = best >= tau
    flagged_by["hash"] = int(flag.sum())
    near = (best - tau).abs() < NEAR
    t2 = time.perf_counter()
    # 2. exhaustive check of the groups that hit most, at the source threshold
    hits = torch.bincount(best_ref[flag], minlength=len(all_refs))
    order = hits.argsort(descending=True, stable=True)
    groups = order[hits[order] >= int(cfg["trigger_hits"])][:int(cfg["max_exhaustive"])].tolist()
    exhaustive_labels = []
    for gi in groups:
        todo = (~flag).nonzero().flatten()
        if len(todo) == 0:
            break
        r = all_refs[gi]
        exhaustive_labels.append(f"{r.kind}: {r.label}")
        allv = variants(r.grids)
        for vi in sorted({0} | hit_variants.get(gi, set())):
            e = allv[vi].to(torch.float32).flatten(1)
            s, _ = similarity_exhaustive(views[:, todo], mids, e, before=todo if r is me else None, device=device)
            near[todo] |= (s - tau_source).abs() < NEAR
            newly = s >= tau_source
            flagged_by["exhaustive"] += int(newly.sum())
            flag[todo[newly]] = True
            best_ref[todo[newly]] = gi
            best[todo] = torch.maximum(best[todo], s)
            todo = todo[~newly]
    t3 = time.perf_counter()
    novel = ~flag
    matched = [None if new else all_refs[r] for new, r in zip(novel.tolist(), best_ref.tolist())]
    reason = [None if r is None else r.kind for r in matched]
    source = [None if r is None else r.label for r in matched]
    stages = {**flagged_by, "seconds_views": round(t1 - t0, 4), "seconds_hash": round(t2 - t1, 4),
              "seconds_exhaustive": round(t3 - t2, 4), "seconds": round(time.perf_counter() - t0, 4)}
    return NoveltyReport(n, novel, reason, source, best, tau, int(near.sum()), checked, stages, exhaustive_labels,
                         tau_source)


def _variant_rows(table: _Table, entry: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """The earlier images ``entry`` as variant ``var`` (float32 [P, 64])."""
    out = table.grids[entry].to(torch.float32)
    for k in range(1, len(VARIANTS)):
        z = (var == k).nonzero().flatten()
        if len(z):
            out[z] = _zoom_rows(out[z], k - 1)
    return out


def _take_best(best, best_ref, qi, s, grp):
    """Per query image, keep the highest similarity (ties: the earliest reference)."""
    order = torch.argsort(grp, stable=True)
    qi, s, grp = qi[order], s[order], grp[order]
    top = torch.zeros_like(best).scatter_reduce(0, qi, s, reduce="amax", include_self=False)
    is_top = s >= top[qi]
    first = torch.full_like(best_ref, 1 << 40).scatter_reduce(0, qi[is_top], grp[is_top], reduce="amin")
    improve = top > best
    best.copy_(torch.where(improve, top, best))
    best_ref.copy_(torch.where(improve, first, best_ref))


def repeats_within(images: torch.Tensor, spec: TaskSpec | None = None) -> torch.Tensor:
    """bool [N]: the images of a bundle that its own verifiers would not count as new *within the
    bundle*: near-twins of an earlier image of it (:func:`check_novelty`, self only) or derived
    from one (:func:`codream.derived.check_derived`'s self check). What a miner drops before
    submitting; the verifier also compares with material the miner cannot see (earlier
    submissions, the eval set, earlier tasks)."""
    twins = ~check_novelty(images, spec).novel
    return twins | check_derived(images, [], derived_config(spec)).derived
