"""Amortised synthesis: a small generator whose initialisation is meta-learned across batches
(in the spirit of Fast-Datafree, Fang et al. 2022, and CoDream's fast variant).

Pixel optimisation (``synthesis.dream``) starts every batch from noise and needs ~100 steps
through the teachers. Here a class-conditional generator ``G(z, y)`` makes the batch; for each
batch a copy of the meta-generator (and the batch's latent codes) takes a few Adam steps on the
usual losses, the batch's images are kept, and the meta-generator moves towards the adapted
copy (Reptile: θ ← θ + ε·(θ' − θ)). The meta-generator soon knows what the teachers' classes
look like, so each batch needs only a handful of steps: that is the amortisation.

Losses per inner step (the pieces of ``synthesis``):

- BatchNorm statistics with momentum (``BNStatsHook(momentum=0.9)``): this batch blended with
  the earlier ones must match the teachers' running statistics;
- cross-entropy to the batch's classes (balanced labels);
- an adversarial/adaptive term (``adaptive_loss``, ADI's 1 − JS) against a student that is
  distilled on the dreams so far (a few KD steps per batch): later batches go where the
  student still disagrees with the teachers. The student is the task's own student
  architecture, the one verifiers will distil.

Several teachers (co-dreaming): every teacher sees the generated batch; the losses are
averaged, which averages their gradients. Seeded and deterministic on CPU.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from codream.data import normalize

from codream.synthesis import DreamConfig, DreamResult, Repulsion, jitter, adaptive_loss, balanced_labels, bn_hooks, \
    channels_last, class_loss, dream_batch, prepare_teachers, to_uint8


@dataclass
class GeneratorConfig:
    """Hyper-parameters of generator-based synthesis. Defaults: measured on the MNIST reference task
    (docs/dreams.md, "Synthesis"): the repulsion ends the collapse (84 % of a 1,000-dream
    bundle were near-twins without it, none with it) and 20 pixel steps from each generated batch
    lift the student from 72 to 82–83 %."""

    batch: int = 64  # dreams per batch: smaller batches = more meta-updates for the same work
    inner_steps: int = 12  # Adam steps of the generator copy per batch ("Fast-k")
    emit: int = 1  # dreams kept per optimised one: the adapted generator also draws emit−1 fresh batches
    warmup_steps: int = 100  # inner steps of the first batch (the meta-generator knows nothing yet)
    lr: float = 0.01  # Adam lr of the generator copy
    lr_z: float = 0.05  # Adam lr of the batch's latent codes
    meta_lr: float = 0.5  # Reptile step of the meta-generator towards the adapted copy (1: one generator
    # trained throughout, its Adam state kept, the batch's codes not optimised)
    nz: int = 64  # latent size
    width: int = 16  # generator channels at full resolution (twice that at half resolution)
    bn: float = 1.0
    bn_momentum: float = 0.9
    ce: float = 1.0
    adaptive: float = 0.5  # adversarial term against the student (0: no student, no KD work)
    noise_layer: bool = False  # NAYER: a freshly initialised layer per batch in front of the generator
    repel: float = 20.0  # weight of the repulsion from same-class dreams (this batch and a bank of earlier ones)
    repel_margin: float = 0.85  # grid similarity above which dreams are pushed apart
    repel_bank: int = 4096  # earlier dreams remembered for the repulsion
    kd_every: int = 1  # the student learns after every kd_every-th batch
    refine_steps: int = 20  # pixel steps on each generated batch after it is made (0: none)
    refine_lr: float = 0.1  # the refinement's Adam lr (our optimiser: betas 0.5/0.99, cosine)
    refine_noise: float = 0.1  # N(0, σ) added to a batch before its refinement (per-dream diversity)
    refine_bn: float = 10.0  # BN-statistics weight of the refinement (DeepInversion's)
    refine_repel: float = 20.0  # weight of the repulsion during the refinement (0: none)
    kd_steps: int = 5  # student KD steps per batch
    kd_batch: int = 128
    kd_lr: float = 0.01
    kd_temperature: float = 4.0
    jitter: int = 1  # random ±px shifts before the teachers see a batch
    flip: bool = False
    seed: int = 0
    amp: bool = False  # bf16 autocast on CUDA

    @classmethod
    def for_shape(cls, shape: tuple[int, int, int], **overrides) -> "GeneratorConfig":
        """The tuned defaults for images of ``shape``: 8×8 (digits) or larger (tuned at 28 px on
        MNIST), then ``overrides``."""
        return cls(**{**(GENERATOR_SMALL if max(shape[1:]) < 16 else GENERATOR_LARGE), **overrides})


# The generator's tuned defaults per resolution (docs/dreams.md, "Synthesis")
GENERATOR_SMALL: dict = {}
GENERATOR_LARGE: dict = {}


class Generator(nn.Module):
    """z ⊕ class embedding → linear → (2w, H/4) → up, conv → (2w, H/2) → up, conv → (w, H) → conv
    → sigmoid images in [0, 1], cropped to ``shape`` (DCGAN-style, BatchNorm throughout)."""

    def __init__(self, shape: tuple[int, int, int], num_classes: int, nz: int = 64, width: int = 16):
        super().__init__()
        c, h, w = shape
        self.shape = shape
        self.s = (math.ceil(h / 4), math.ceil(w / 4))
        self.embed = nn.Embedding(num_classes, nz)
        self.fc = nn.Linear(2 * nz, 2 * width * self.s[0] * self.s[1])
        self.body = nn.Sequential(
            nn.BatchNorm2d(2 * width), nn.Upsample(scale_factor=2),
            nn.Conv2d(2 * width, 2 * width, 3, 1, 1, bias=False), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(2 * width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.LeakyReLU(0.2),
            nn.Conv2d(width, c, 3, 1, 1), nn.Sigmoid())

    def forward(self, z: torch.Tensor, labels: torch.Tensor, noise_layer: nn.Module | None = None) -> torch.Tensor:
        h = torch.cat([z, self.embed(labels)], 1)
        if noise_layer is not None:
            h = noise_layer(h)
        h = self.fc(h)
        x = self.body(h.view(len(z), -1, *self.s))
        return x[:, :, :self.shape[1], :self.shape[2]]


class NoiseLayer(nn.Module):
    """NAYER's noisy layer (Tran et al., CVPR 2024): a linear map of (z ⊕ label embedding),
    initialised afresh for every batch and trained with it, so the same generator is driven
    from a new random direction each batch instead of settling on one output per class."""

    def __init__(self, dim: int, gen: torch.Generator):
        super().__init__()
        self.lin = nn.Linear(dim, dim)
        with torch.no_grad():
            bound = 1 / math.sqrt(dim)
            self.lin.weight.copy_(torch.rand(dim, dim, generator=gen) * 2 * bound - bound)
            self.lin.bias.copy_(torch.rand(dim, generator=gen) * 2 * bound - bound)
        self.norm = nn.LayerNorm(dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.norm(self.lin(h))


def _reptile(meta: nn.Module, fast: nn.Module, eps: float) -> None:
    """θ_meta ← θ_meta + ε(θ_fast − θ_meta); BatchNorm buffers are copied."""
    with torch.no_grad():
        for p, q in zip(meta.parameters(), fast.parameters()):
            p.add_(q - p, alpha=eps)
        for b, c in zip(meta.buffers(), fast.buffers()):
            b.copy_(c)


class _Student:
    """The student the adversarial term attacks: the task's student architecture, distilled
    (KD at temperature T, Adam) on the dreams made so far, a few steps per batch."""

    def __init__(self, model: nn.Module, cfg: GeneratorConfig, device: torch.device):
        self.model = channels_last_module(model).to(device).train()
        self.cfg, self.device = cfg, device
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.kd_lr)

    def learn(self, bank: torch.Tensor, teachers, mean, std, gen: torch.Generator) -> None:
        t = self.cfg.kd_temperature
        self.model.train()
        for _ in range(self.cfg.kd_steps):
            idx = torch.randint(0, len(bank), (min(self.cfg.kd_batch, len(bank)),), generator=gen)
            x = channels_last(normalize(bank[idx].to(self.device), mean, std))
            with torch.no_grad():
                p = F.softmax(torch.stack([tt(x) for tt in teachers]).float().mean(0) / t, 1)
            loss = F.kl_div(F.log_softmax(self.model(x).float() / t, 1), p, reduction="batchmean") * t * t
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        self.model.eval()


def channels_last_module(model: nn.Module) -> nn.Module:
    return model.to(memory_format=torch.channels_last)


def dream_generator(teachers: Sequence[nn.Module], n: int, num_classes: int, shape: tuple[int, int, int],
                    mean, std, cfg: GeneratorConfig | None = None, device: str | torch.device = "cpu",
                    student: nn.Module | None = None, progress: bool = False, avoid: torch.Tensor | None = None,
                    avoid_labels: torch.Tensor | None = None) -> DreamResult:
    """Synthesise ``n`` dreams with a meta-learned generator, ``cfg.batch`` at a time.

    ``student``: a model of the task's student architecture for the adversarial term (a copy,
    re-initialised from the seed, is trained here; ignored when ``cfg.adaptive`` is 0). ``avoid``
    (uint8, with ``avoid_labels``): dreams kept earlier (a top-up round), which the repulsion
    keeps the new ones apart from. Same inputs and seed ⇒ same bytes on CPU.
    """
    cfg = cfg or GeneratorConfig()
    device = torch.device(device)
    teachers = prepare_teachers(teachers, device)
    gen = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):  # seeded weights without touching the caller's RNG
        torch.manual_seed(cfg.seed)
        meta = Generator(shape, num_classes, cfg.nz, cfg.width).to(device)
        adv = None
        if cfg.adaptive and student is not None:  # a fresh, seeded copy: the caller's weights don't matter
            student = copy.deepcopy(student)
            for m in student.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()
            adv = _Student(student, cfg, device)
    labels = balanced_labels(n, num_classes, gen)
    out = torch.empty((n, *shape), dtype=torch.uint8)
    hooks = bn_hooks(teachers, cfg.bn_momentum)
    repel = Repulsion(cfg.repel_bank, cfg.repel_margin) if cfg.repel or cfg.refine_repel else None
    refine = DreamConfig(steps=cfg.refine_steps, batch=cfg.batch, lr=cfg.refine_lr, bn=cfg.refine_bn, ce=1.0,
                         tv=2.5e-5, l2=3e-8, jitter=cfg.jitter, flip=cfg.flip, init_std=cfg.refine_noise,
                         repel=cfg.refine_repel, cosine_lr=True, amp=cfg.amp) if cfg.refine_steps else None
    if repel is not None and avoid is not None and len(avoid):
        repel.add(avoid, avoid_labels)
    use_amp = cfg.amp and device.type == "cuda"
    chunk = cfg.batch * cfg.emit  # dreams out of one optimisation
    batches = math.ceil(n / chunk)
    steps = [cfg.warmup_steps if b == 0 else cfg.inner_steps for b in range(batches)]
    continuous = cfg.meta_lr >= 1.0  # Reptile with step 1 is plain training: no per-batch copy needed
    meta_opt = torch.optim.Adam(meta.parameters(), lr=cfg.lr, betas=(0.5, 0.999)) if continuous else None
    bar = tqdm(total=sum(steps) + batches * cfg.refine_steps, desc="dreaming (generator)", unit="step",
               disable=not progress)
    t0 = time.perf_counter()
    try:
        for b in range(batches):
            lo, end = b * chunk, min(n, (b + 1) * chunk)
            hi = min(end, lo + cfg.batch)  # the optimised part of the chunk
            y = labels[lo:hi].to(device)
            z = torch.randn((hi - lo, cfg.nz), generator=gen).to(device)
            noisy = None
            if continuous:  # one generator trained throughout: its optimiser (and Adam state) carries on
                fast, opt = meta.train(), meta_opt
            else:
                z.requires_grad_(True)
                fast = copy.deepcopy(meta).train()
                groups = [{"params": fast.parameters(), "lr": cfg.lr}, {"params": [z], "lr": cfg.lr_z}]
                if cfg.noise_layer:
                    noisy = NoiseLayer(2 * cfg.nz, gen).to(device).train()
                    groups.append({"params": noisy.parameters(), "lr": cfg.lr})
                opt = torch.optim.Adam(groups, betas=(0.5, 0.999))
            use_adv = adv is not None and lo > 0
            for _ in range(steps[b]):
                x = fast(z, y, noisy)
                xin = channels_last(normalize(jitter(x, cfg.jitter, cfg.flip, gen), mean, std))
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    t_logits = [t(xin).float() for t in teachers]
                    total = 0.0
                    for ti, logits in enumerate(t_logits):
                        total = total + cfg.bn * sum(h.loss for h in hooks[ti]) + cfg.ce * class_loss(logits, y, "ce")
                    total = total / len(teachers)
                    if use_adv:
                        total = total + cfg.adaptive * adaptive_loss(adv.model(xin).float(),
                                                                     torch.stack(t_logits).mean(0))
                if repel is not None and cfg.repel:
                    total = total + cfg.repel * repel.loss(x, y)
                opt.zero_grad(set_to_none=True)
                total.backward()
                opt.step()
                bar.update(1)
            with torch.no_grad():  # the batch after the last step (generator BN in batch mode, as trained)
                made = [fast(z, y, noisy).float()]
                for e in range(hi, end, cfg.batch):  # amortised: fresh codes through the adapted generator
                    f = min(end, e + cfg.batch)
                    z_new = torch.randn((f - e, cfg.nz), generator=gen).to(device)
                    made.append(fast(z_new, labels[e:f].to(device), noisy).float())
            xb = torch.cat(made)
            if refine is not None:  # per-dream pixel steps from the generator's images, the whole chunk at once
                for hs in hooks:
                    for h in hs:
                        h.enabled = False
                xb = dream_batch(teachers, labels[lo:end], shape, mean, std, refine, gen, device, init=xb,
                                 on_step=lambda: bar.update(1), repel=repel)
                for hs in hooks:
                    for h in hs:
                        h.enabled = True
            out[lo:end] = to_uint8(xb.cpu())
            if repel is not None:
                repel.add(out[lo:end], labels[lo:end])
            for hs in hooks:
                for h in hs:
                    h.update()
            if not continuous:
                _reptile(meta, fast, cfg.meta_lr)
            if adv is not None and (b + 1) % cfg.kd_every == 0:
                adv.learn(out[:end], teachers, mean, std, gen)
    finally:
        for hs in hooks:
            for h in hs:
                h.remove()
        bar.close()
    secs = time.perf_counter() - t0
    return DreamResult(out, labels, {"seconds": secs, "dreams_per_second": n / secs if secs else float("inf"),
                                     "method": "generator", "inner_steps": cfg.inner_steps, "batch": cfg.batch,
                                     "emit": cfg.emit})

