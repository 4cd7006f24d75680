"""Dream synthesis: DeepInversion / CoDream losses as small pieces, and one loop.

Loss pieces (each a function of the batch being optimised):

- ``BNStatsHook``: per BatchNorm layer, ‖μ_batch − running_mean‖₂ + ‖σ²_batch − running_var‖₂
  on the layer's input (DeepInversion's feature-distribution prior).
- ``class_loss``: cross-entropy to the dream's assigned class (``ce``) or the entropy of
  the teacher's prediction (``entropy``, CoDream's label-free variant).
- ``tv_loss`` / ``l2_loss``: image priors.
- ``adaptive_loss``: seeks inputs the current student gets wrong (ADI-style: 1 − JS
  divergence between student and teacher, minimised ⇒ disagreement maximised).
- ``diversity_loss``: guards against mode collapse by penalising the mean pairwise
  cosine similarity of the teachers' penultimate features within a class.
- ``Repulsion``: keeps dreams apart where the verifier looks (``codream/novelty.py`` compares
  8×8 grey grids by centred cosine): a hinge on each dream's closest same-class neighbour
  among this batch and a bank of earlier dreams (a memory bank, as in CMI).

Several teachers (CoDream): every teacher sees the same dreams; each teacher's loss
gradient w.r.t. the pixels is averaged. Averaging gradients equals the gradient of
the averaged loss, so one backward pass through the mean does exactly that.
Teacher weights are frozen (no weight gradients).

This is the core library's because verifiers run it too: a task that requires synthesis receipts
has its verifiers dream a bundle's shards again (``codream/receipt.py``).
"""
from __future__ import annotations

import copy
import hashlib
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .data import normalize
from .distill import torch_threads
from .zoo import freeze


@dataclass
class DreamConfig:
    """Synthesis hyper-parameters. The class defaults are the tuned recipe for small images (8×8
    digits): DeepInversion's losses, initialisation and optimiser at 50 steps, measured better
    per second there than this project's old 120-step loop (docs/dreams.md,
    "Synthesis"); ``for_shape`` gives the tuned recipe for a resolution (28 px: ``PIXEL_LARGE``)."""

    steps: int = 50
    batch: int = 256
    lr: float = 0.1
    bn: float = 10.0
    first_bn_mult: float = 1.0
    ce: float = 1.0
    entropy: float = 0.0
    tv: float = 2.5e-5
    l2: float = 3e-8
    adaptive: float = 0.0
    diversity: float = 0.0
    jitter: int = 1  # random ±px shifts each step
    flip: bool = False
    init_std: float = 0.2  # initial pixel noise around mid-grey, in [0,1] units (without init_data)
    init_data: bool = True  # DeepInversion's init: N(0, 1) in normalised space = N(mean, std) per channel
    init_cells: int = 0  # >0: the initial noise is drawn on a cells×cells grid and upsampled (low frequencies)
    cosine_lr: bool = False  # our optimiser: Adam betas 0.5/0.99 with a cosine-decayed lr (else Adam's defaults)
    label_smoothing: float = 0.0
    mix: float = 0.0  # fraction of dreams aimed at a two-class blend (decision-boundary dreams)
    repel: float = 0.0  # weight of a ``Repulsion`` passed to ``dream_batch`` (0: none)
    seed: int = 0
    amp: bool = False  # bf16 autocast on CUDA

    @classmethod
    def for_shape(cls, shape: tuple[int, int, int], **overrides) -> "DreamConfig":
        """The tuned defaults for images of ``shape``: 8×8 (digits) or larger (tuned at 28 px on
        MNIST; docs/dreams.md, "Synthesis"), then ``overrides``."""
        return cls(**{**(PIXEL_SMALL if max(shape[1:]) < 16 else PIXEL_LARGE), **overrides})


# The pixel loop's tuned defaults per resolution (docs/dreams.md, "Synthesis"): 8×8 digits
# take the class defaults (DeepInversion-50 at lr 0.1); at 28 px (MNIST) DeepInversion's loop at lr
# 0.25 and 50 steps was the best of its swept curve per second (gap 0.894 over 2 seeds at 1,000 dreams,
# where lr 0.1 gave 0.875, our optimiser 0.857, and 25 steps 0.869 / 0.674), its ±2 px jitter at 28 px
PIXEL_SMALL: dict = {}
PIXEL_LARGE: dict = {"lr": 0.25, "jitter": 2}


def deepinversion_config(seed: int = 0, steps: int = 2000, batch: int = 256, image_size: int = 32,
                         lr: float = 0.05, our_optimiser: bool = False, flip: bool = False) -> DreamConfig:
    """DeepInversion as its authors run it on CIFAR (Adam lr 0.05, BN 10, CE 1, TV 2.5e-5,
    l2 3e-8, batch 256, inputs drawn from N(0, 1) in normalised space), with its ±2 px jitter
    scaled to the resolution (±2 at 32 px, ±1 at 8 px). ``flip`` (DI's random flips) suits
    natural images, not digits. ``our_optimiser``: the same losses under this project's
    optimiser (Adam betas 0.5/0.99, cosine-decayed lr; pass its lr, e.g. 0.25)."""
    jitter = max(1, round(2 * image_size / 32))
    return DreamConfig(steps=steps, batch=batch, lr=lr, bn=10.0, ce=1.0, tv=2.5e-5, l2=3e-8, jitter=jitter,
                       flip=flip, init_data=True, cosine_lr=our_optimiser, seed=seed)


class BNStatsHook:
    """Collects the BN-statistics loss of one BatchNorm layer's input on each forward.

    ``momentum`` > 0 (Fast-Datafree): the statistics compared with the layer's running ones
    are a blend ``(1 − m)·batch + m·past`` of this batch and an average of earlier batches
    (``update()`` folds the last batch in), so a sequence of small batches, not each one,
    has to match the data's statistics.
    """

    def __init__(self, module: nn.BatchNorm2d, momentum: float = 0.0):
        self.loss = torch.zeros(())
        self.momentum = momentum
        self.enabled = True  # off: the hook does nothing (another loop's hooks are at work)
        self.past: tuple[torch.Tensor, torch.Tensor] | None = None
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, module: nn.BatchNorm2d, inputs, output) -> None:
        if not self.enabled:
            return
        x = inputs[0].float()
        # per-channel moments of x − running_mean over a [N·H·W, C] view (a free reshape of the
        # channels-last activations): var = E[d²] − E[d]², exact in real arithmetic and well
        # conditioned because the shift is near the mean; 2–9× faster forward and backward on CPU
        # than x.var over (0, 2, 3) (which was a quarter of a synthesis step on the MNIST ResNet-8)
        d = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1]) - module.running_mean
        shift = d.mean(0)
        var = (d * d).mean(0) - shift * shift
        mean = shift + module.running_mean
        self.last = (mean.detach(), var.detach())
        if self.momentum and self.past is not None:
            mean = (1 - self.momentum) * mean + self.momentum * self.past[0]
            var = (1 - self.momentum) * var + self.momentum * self.past[1]
        self.loss = torch.norm(mean - module.running_mean, 2) + torch.norm(var - module.running_var, 2)

    def update(self) -> None:
        """Fold the last batch's statistics into the running blend (once per finished batch)."""
        if self.last is None:
            return
        m = self.momentum
        self.past = self.last if self.past is None else tuple(m * p + (1 - m) * b for p, b in zip(self.past, self.last))

    def remove(self) -> None:
        self.handle.remove()


def bn_hooks(teachers: Sequence[nn.Module], momentum: float = 0.0) -> list[list[BNStatsHook]]:
    return [[BNStatsHook(m, momentum) for m in t.modules() if isinstance(m, nn.BatchNorm2d)] for t in teachers]


class FeatureHook:
    """Keeps the input of a model's final linear layer (penultimate features)."""

    def __init__(self, model: nn.Module):
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        self.features = None
        self.handle = linears[-1].register_forward_hook(lambda m, i, o: setattr(self, "features", i[0]))

    def remove(self) -> None:
        self.handle.remove()


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    dx = x[:, :, :, 1:] - x[:, :, :, :-1]
    dy = x[:, :, 1:, :] - x[:, :, :-1, :]
    return (dx.pow(2).mean() + dy.pow(2).mean()) * x.shape[-1] * x.shape[-2]


def l2_loss(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).sum() / len(x)


def class_loss(logits: torch.Tensor, targets: torch.Tensor, mode: str, smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy to class indices or to a soft target distribution; or the entropy."""
    if mode == "ce":
        return F.cross_entropy(logits, targets, label_smoothing=smoothing)
    p = F.softmax(logits, 1)
    return -(p * F.log_softmax(logits, 1)).sum(1).mean()


def adaptive_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, t: float = 3.0) -> torch.Tensor:
    """1 − JS(student, teacher): minimising it makes dreams where the student disagrees."""
    ps, pt = F.softmax(student_logits / t, 1), F.softmax(teacher_logits / t, 1)
    m = 0.5 * (ps + pt)
    js = 0.5 * (F.kl_div(m.log(), ps, reduction="batchmean") + F.kl_div(m.log(), pt, reduction="batchmean"))
    return 1.0 - js.clamp(0, 1)


def diversity_loss(features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    f = F.normalize(features.flatten(1), dim=1)
    sim = f @ f.t()
    same = (targets.view(-1, 1) == targets.view(1, -1)).float() - torch.eye(len(f), device=f.device)
    return (sim * same).sum() / same.sum().clamp_min(1)


def grid_rows(x: torch.Tensor, cells: int = 8) -> torch.Tensor:
    """[0, 1] images [B, C, H, W] -> centred unit rows of their grey ``cells``×``cells`` area means:
    a differentiable stand-in for the near-twin check's fingerprint (``codream.novelty.grid``)."""
    g = F.adaptive_avg_pool2d(x.float().mean(1, keepdim=True), cells).flatten(1)
    g = g - g.mean(1, keepdim=True)
    return g / g.norm(dim=1, keepdim=True).clamp_min(1e-6)


class Repulsion:
    """Pushes each dream away from its most similar same-class neighbour (in this batch, and in
    a bank of the last ``size`` dreams kept) once their grid similarity exceeds ``margin``:
    loss = mean over the batch of relu(max similarity − margin)². Near-twins (similarity
    ≥ 0.97 on the verifier's grid, also after a one-cell shift) are what the verifier refuses;
    the shifted views (zero fill) cover the check's alignments that matter for dreams."""

    def __init__(self, size: int = 4096, margin: float = 0.85, cells: int = 8):
        self.size, self.margin, self.cells = size, margin, cells
        self.rows = torch.zeros(0, cells * cells)
        self.labels = torch.zeros(0, dtype=torch.int64)

    def _views(self, x: torch.Tensor) -> list[torch.Tensor]:
        g = F.adaptive_avg_pool2d(x.float().mean(1, keepdim=True), self.cells)
        pad = F.pad(g, (1, 1, 1, 1))
        out = []
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                v = pad[:, :, 1 + dy:1 + dy + self.cells, 1 + dx:1 + dx + self.cells].flatten(1)
                v = v - v.mean(1, keepdim=True)
                out.append(v / v.norm(dim=1, keepdim=True).clamp_min(1e-6))
        return out

    def loss(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        views = self._views(x)
        me = views[4]  # unshifted
        bank = self.rows.to(x.device)
        refs = torch.cat([me, bank]) if len(bank) else me
        ref_labels = torch.cat([labels, self.labels.to(labels.device)])
        same = labels.view(-1, 1) == ref_labels.view(1, -1)
        same[:, :len(x)] &= ~torch.eye(len(x), dtype=torch.bool, device=x.device)
        best = None
        for v in views:
            s = (v @ refs.t()).masked_fill(~same, -1.0)
            best = s if best is None else torch.maximum(best, s)
        top = best.max(1).values
        return F.relu(top - self.margin).pow(2).mean()

    def add(self, x: torch.Tensor, labels: torch.Tensor) -> None:
        """Remember kept dreams ([0, 1] floats or uint8) and their classes (the newest ``size``)."""
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
        with torch.no_grad():
            rows = grid_rows(x.cpu(), self.cells)
        self.rows = torch.cat([self.rows, rows])[-self.size:]
        self.labels = torch.cat([self.labels, labels.cpu()])[-self.size:]


def channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def prepare_teachers(teachers: Sequence[nn.Module], device: torch.device) -> list[nn.Module]:
    """Frozen channels-last copies on ``device`` (oneDNN and cuDNN convolutions run faster on
    NHWC; measured on CPU: 15–25 % per synthesis step on the MNIST ResNet-8). The caller's
    modules are frozen but keep their layout."""
    return [copy.deepcopy(freeze(t)).to(device=device, memory_format=torch.channels_last) for t in teachers]


def jitter(x: torch.Tensor, px: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    if px:
        dx, dy = torch.randint(-px, px + 1, (2,), generator=gen).tolist()
        x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if flip and torch.rand((), generator=gen) < 0.5:
        x = x.flip(3)
    return x


def num_classes_of(teachers: Sequence[nn.Module]) -> int:
    return [m for m in teachers[0].modules() if isinstance(m, nn.Linear)][-1].out_features


def mixed_targets(labels: torch.Tensor, k: int, fraction: float, gen: torch.Generator) -> torch.Tensor:
    """Soft targets: a ``fraction`` of dreams blend their class with a random other class
    (weight 0.5..0.9 on their own), which puts dreams near decision boundaries."""
    n = len(labels)
    soft = F.one_hot(labels, k).float()
    pick = torch.rand(n, generator=gen) < fraction
    other = (labels + torch.randint(1, k, (n,), generator=gen)) % k
    lam = 0.5 + 0.4 * torch.rand(n, generator=gen)
    blend = lam.view(-1, 1) * soft + (1 - lam).view(-1, 1) * F.one_hot(other, k).float()
    return torch.where(pick.view(-1, 1), blend, soft)


def balanced_labels(n: int, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """Labels 0..K-1 repeated (balanced), in a seeded random order."""
    labels = torch.arange(n) % num_classes
    return labels[torch.randperm(n, generator=gen)]


def dream_batch(teachers: Sequence[nn.Module], targets: torch.Tensor, shape: tuple[int, int, int],
                mean, std, cfg: DreamConfig, gen: torch.Generator, device: torch.device,
                student: nn.Module | None = None, on_step: Callable[[], None] | None = None,
                init: torch.Tensor | None = None, repel: "Repulsion | None" = None,
                noise_key: bytes | None = None) -> torch.Tensor:
    """Optimise one batch of dreams; return them as [0,1] floats on the CPU. ``init``: start from
    these [0, 1] images (plus ``cfg.init_std`` noise) instead of noise (a generator's batch);
    ``repel``: a bank of earlier dreams to keep apart from (weight ``cfg.repel``); ``noise_key``: draw
    the starting noise from this 256-bit key (``keyed_normal``; a shard's), else from ``gen``."""
    n = len(targets)
    if cfg.mix:
        targets = mixed_targets(targets, num_classes_of(teachers), cfg.mix, gen)

    def normal(what: bytes, size: tuple[int, ...]) -> torch.Tensor:
        return keyed_normal(noise_key + what, size) if noise_key is not None else torch.randn(size, generator=gen)

    noise = normal(b"", (n, *shape))
    if cfg.init_cells:  # smooth noise of unit variance: strokes start as blobs, not as pixel noise
        coarse = normal(b"|cells", (n, shape[0], cfg.init_cells, cfg.init_cells))
        noise = F.interpolate(coarse, size=shape[1:], mode="bilinear", align_corners=False)
        noise = noise / noise.std().clamp_min(1e-6)
    if init is not None:
        x0 = init.detach().float().cpu() + cfg.init_std * noise
    elif cfg.init_data:
        x0 = torch.tensor(mean).view(1, -1, 1, 1) + torch.tensor(std).view(1, -1, 1, 1) * noise
    else:
        x0 = 0.5 + cfg.init_std * noise
    x0 = x0.clamp(0, 1)
    x = x0.to(device).requires_grad_(True)
    targets = targets.to(device)
    opt = torch.optim.Adam([x], lr=cfg.lr, betas=(0.5, 0.99) if cfg.cosine_lr else (0.9, 0.999))
    hooks = bn_hooks(teachers)
    feats = [FeatureHook(t) for t in teachers] if cfg.diversity else []
    mode = "entropy" if cfg.entropy and not cfg.ce else "ce"
    use_amp = cfg.amp and device.type == "cuda"
    try:
        for step in range(cfg.steps):
            if cfg.cosine_lr:
                for g in opt.param_groups:
                    g["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
            xin = channels_last(normalize(jitter(x, cfg.jitter, cfg.flip, gen), mean, std))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                total = 0.0
                t_logits = []
                for ti, teacher in enumerate(teachers):
                    logits = teacher(xin)
                    t_logits.append(logits.float())
                    bn = [h.loss for h in hooks[ti]]
                    loss_bn = cfg.first_bn_mult * bn[0] + sum(bn[1:])
                    loss = cfg.bn * loss_bn
                    weight_cls = cfg.ce if mode == "ce" else cfg.entropy
                    loss = loss + weight_cls * class_loss(logits.float(), targets, mode, cfg.label_smoothing)
                    if cfg.diversity:
                        hard = targets if targets.dim() == 1 else targets.argmax(1)
                        loss = loss + cfg.diversity * diversity_loss(feats[ti].features.float(), hard)
                    total = total + loss
                total = total / len(teachers)  # == averaging the teachers' pixel gradients
                if cfg.adaptive and student is not None:
                    total = total + cfg.adaptive * adaptive_loss(student(xin).float(),
                                                                 torch.stack(t_logits).mean(0))
            total = total + cfg.tv * tv_loss(x) + cfg.l2 * l2_loss(x)
            if repel is not None and cfg.repel:
                hard = targets if targets.dim() == 1 else targets.argmax(1)
                total = total + cfg.repel * repel.loss(x, hard)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(0, 1)
            if on_step:
                on_step()
    finally:
        for hs in hooks:
            for h in hs:
                h.remove()
        for f in feats:
            f.remove()
    return x.detach().cpu()


@dataclass
class DreamResult:
    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor  # int64 [N], the class each dream was optimised for
    stats: dict = field(default_factory=dict)
    receipt: object = None  # a ``codream.receipt.Receipt`` where the images can be replayed from one


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


# CPU shards are dreamed at one torch thread, whatever the process runs at: the order of a
# reduction depends on the thread count (an independent review found 3, 6 and 12 threads dream
# other images than 1; 1 and 2 agree), and a receipt's replay must be the same bytes everywhere.
# A miner parallelises across shards instead (a Ray cluster, ``--ray-address local``).
SHARD_THREADS = 1


def shard_key(seed: int, index: int) -> bytes:
    """The 256-bit key of shard ``index`` of a synthesis seeded ``seed``: a hash of the two, so every
    shard's randomness is its own and no shard's depends on another's (or on which machine runs it)."""
    return hashlib.sha256(f"codream-dream-shard|{seed}|{index}".encode()).digest()


def shard_seed(seed: int, index: int) -> int:
    """The torch generator seed of shard ``index`` (labels, jitter): 56 bits of its key."""
    return int.from_bytes(shard_key(seed, index)[:7], "big")


def keyed_normal(key: bytes, shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal float32 noise of ``shape`` drawn from all 256 bits of ``key``: SHAKE-256 of the
    key, 24-bit uniforms, Box–Muller in torch (the pinned CPU kernels, ``codream/arithmetic.py``).
    torch's CPU generator keeps only 32 bits of its seed, so two seeds that agree on those draw the
    same noise: a search over 2^16 nonces per binding found two bindings whose receipts replay the
    same dreams. The starting pixels of a receipt's dreams come from the whole key instead."""
    count = math.prod(shape)
    pairs = (count + 1) // 2
    raw = torch.frombuffer(bytearray(hashlib.shake_256(key + b"|init").digest(6 * pairs)), dtype=torch.uint8)
    b = raw.view(2 * pairs, 3).to(torch.float64)
    u = (b[:, 0] + 256.0 * b[:, 1] + 65536.0 * b[:, 2] + 0.5) / 16777216.0  # in (0, 1), exact
    u1, u2 = u[:pairs], u[pairs:]
    r = torch.sqrt(-2.0 * torch.log(u1))
    z = torch.cat([r * torch.cos(2 * math.pi * u2), r * torch.sin(2 * math.pi * u2)])[:count]
    return z.to(torch.float32).view(shape)


def shard_labels(lo: int, hi: int, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """The classes of dreams ``lo``..``hi`` of a bundle: ``i mod K`` for dream i, in a seeded random
    order within the shard (so the whole bundle is balanced whatever its shards)."""
    labels = torch.arange(lo, hi) % num_classes
    return labels[torch.randperm(hi - lo, generator=gen)]


@dataclass
class DreamTask:
    """One synthesis, as independent shards: dreams ``[i·batch, (i+1)·batch)`` are shard i, and shard
    i's labels and random stream come from (``cfg.seed``, i) only (``dream_shard``). Running the
    shards in this process, one after the other, or as jobs on a Ray cluster in any order and on any
    number of workers gives the same bytes (for the same device and threads per shard)."""

    teachers: Sequence[nn.Module]
    n: int
    num_classes: int
    shape: tuple[int, int, int]
    mean: Sequence[float]
    std: Sequence[float]
    cfg: DreamConfig

    @property
    def shards(self) -> int:
        return math.ceil(self.n / self.cfg.batch)

    def span(self, index: int) -> tuple[int, int]:
        if not 0 <= index < self.shards:
            raise IndexError(f"shard {index} of a {self.shards}-shard synthesis")
        return index * self.cfg.batch, min(self.n, (index + 1) * self.cfg.batch)


def dream_shard(task: DreamTask, index: int, device: str | torch.device = "cpu",
                teachers: Sequence[nn.Module] | None = None, student: nn.Module | None = None,
                on_step: Callable[[], None] | None = None) -> DreamResult:
    """Shard ``index`` of ``task``: its dreams (uint8) and their labels. ``teachers``: the task's
    teachers already prepared for ``device`` (``prepare_teachers``; else prepared here)."""
    device = torch.device(device)
    lo, hi = task.span(index)
    key = shard_key(task.cfg.seed, index)
    gen = torch.Generator().manual_seed(int.from_bytes(key[:7], "big"))
    labels = shard_labels(lo, hi, task.num_classes, gen)
    teachers = teachers if teachers is not None else prepare_teachers(task.teachers, device)
    with torch_threads(SHARD_THREADS if device.type == "cpu" else None):
        xb = dream_batch(teachers, labels, task.shape, task.mean, task.std, task.cfg, gen, device, student,
                         on_step=on_step, noise_key=key)
    return DreamResult(to_uint8(xb), labels)


ShardRunner = Callable[[DreamTask, Callable[[], None]], Sequence[DreamResult]]


def dream(teachers: Sequence[nn.Module], n: int, num_classes: int, shape: tuple[int, int, int], mean, std,
          cfg: DreamConfig | None = None, device: str | torch.device = "cpu",
          student_fn: Callable[[torch.Tensor], nn.Module] | None = None, progress: bool = False,
          run_shards: ShardRunner | None = None) -> DreamResult:
    """Synthesise ``n`` dreams in shards of ``cfg.batch`` (memory bounded by the batch; ``DreamTask``).

    ``run_shards(task, on_shard)`` (optional: a Ray cluster, ``miner.ray_backend``) runs the shards
    elsewhere and returns their results in shard order; by default they run here, one after the
    other, with the same function. Seeded: the same inputs and seed give the same bytes on CPU
    (for the same threads per shard), however the shards are run. ``student_fn(dreams_so_far)``
    (optional, in this process only) returns a student for the adaptive term of later shards.
    """
    import time

    from tqdm import tqdm

    cfg = cfg or DreamConfig()
    task = DreamTask(teachers, n, num_classes, tuple(shape), mean, std, cfg)
    bar = tqdm(total=task.shards * cfg.steps, desc="dreaming", unit="step", disable=not progress)
    t0 = time.perf_counter()
    if run_shards is not None:
        if cfg.adaptive and student_fn is not None:
            raise ValueError("the adaptive term's student learns from earlier shards: it runs in one process only")
        parts = list(run_shards(task, lambda: bar.update(cfg.steps)))
    else:
        device = torch.device(device)
        prepared = prepare_teachers(teachers, device)
        parts, student = [], None
        for b in range(task.shards):
            if cfg.adaptive and student_fn is not None and b > 0:
                student = prepare_teachers([student_fn(torch.cat([p.images for p in parts]))], device)[0]
            parts.append(dream_shard(task, b, device, prepared, student, on_step=lambda: bar.update(1)))
    bar.close()
    secs = time.perf_counter() - t0
    parts = parts or [DreamResult(torch.empty((0, *shape), dtype=torch.uint8), torch.empty(0, dtype=torch.int64))]
    out, labels = torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts])
    return DreamResult(out, labels, {"seconds": secs, "dreams_per_second": n / secs if secs else float("inf"),
                                     "steps": cfg.steps, "batch": cfg.batch, "shards": task.shards})
