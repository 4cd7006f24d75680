"""The distillation recipe: one implementation, used by verifiers to score and by the
miner's benchmark to measure. Deterministic on CPU for fixed inputs, seed and threads.

Student = spec's student architecture, initialised from the recipe seed, trained for
``steps`` Adam steps on batches drawn (seeded) from the images, to match the teacher
ensemble's soft labels (mean of the teachers' logits) at temperature T with KL·T².
"""
from __future__ import annotations

import contextlib
import copy
import os
from typing import Sequence

import torch
import torch.nn.functional as F
import torch.utils.deterministic as tud
from torch import nn

from .data import normalize
from .spec import Recipe
from .zoo import build_model

# cuBLAS is deterministic only with a fixed workspace; it must be set before CUDA starts
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


@contextlib.contextmanager
def deterministic(threads: int | None = None):
    """Deterministic algorithms and (optionally) a fixed thread count, restored afterwards."""
    old_det = torch.are_deterministic_algorithms_enabled()
    old_fill = tud.fill_uninitialized_memory
    old_threads = torch.get_num_threads()
    old_tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # full fp32 on GPUs too
    # Filling every fresh tensor with NaN is a debugging aid of deterministic mode (no
    # kernel we use reads memory it did not write); it took ~10 % of a profiled score.
    tud.fill_uninitialized_memory = False
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old_det)
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old_tf32
        tud.fill_uninitialized_memory = old_fill
        torch.set_num_threads(old_threads)


def fast_layout(model: nn.Module) -> nn.Module:
    """A channels-last copy of ``model`` (the caller's module is left as it is).

    On CPU, oneDNN convolutions and max-pooling over NHWC tensors of these small images
    are much faster than over NCHW ones (README, benchmarks); the numbers differ from the
    NCHW run in the last bits only (well inside a task's tolerance).
    """
    return copy.deepcopy(model).to(memory_format=torch.channels_last)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def ensemble_logits(teachers: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    return torch.stack([t(x) for t in teachers]).mean(0)


def augment(x: torch.Tensor, ops: Sequence[str], gen: torch.Generator) -> torch.Tensor:
    """Seeded batch augmentation on normalized images: random shifts (zero pad) and flips."""
    n, _, h, w = x.shape
    for op in ops:
        if op == "flip":
            mask = (torch.rand(n, generator=gen) < 0.5).to(x.device)
            x = torch.where(mask.view(-1, 1, 1, 1), x.flip(3), x)
        elif op.startswith("shift:"):
            p = int(op.split(":")[1])
            padded = F.pad(x, (p, p, p, p))
            dy = torch.randint(0, 2 * p + 1, (n,), generator=gen)
            dx = torch.randint(0, 2 * p + 1, (n,), generator=gen)
            rows = (dy.view(-1, 1) + torch.arange(h).view(1, -1)).to(x.device)  # [n, h]
            cols = (dx.view(-1, 1) + torch.arange(w).view(1, -1)).to(x.device)  # [n, w]
            idx_n = torch.arange(n, device=x.device).view(-1, 1, 1)
            x = padded.permute(0, 2, 3, 1)[idx_n, rows.view(n, h, 1), cols.view(n, 1, w)].permute(0, 3, 1, 2)
    return x.contiguous()


def mixup_fraction(augment: Sequence[str]) -> float:
    """The share of each batch that mixup blends: "mixup" = 1, "mixup:F" = F, none = 0."""
    for a in augment:
        if a == "mixup":
            return 1.0
        if a.startswith("mixup:"):
            return float(a.split(":")[1])
    return 0.0


def distill(student_cfg: dict, teachers: Sequence[nn.Module], images: torch.Tensor, recipe: Recipe,
            mean, std, progress=None, device: str | torch.device = "cpu") -> nn.Module:
    """Train a fresh student on ``images`` (uint8 [N,C,H,W]) from the teachers' soft labels.

    With ``mixup`` the first share F of each batch ("mixup:F", all for plain "mixup") is
    blended with partners from the batch (weight λ ~ U(0,1)) and the teachers label the
    blends: 1,000 images then teach about the space between them too (the teachers label
    the blend itself, not a mix of the two soft labels). The rest of the batch keeps the
    images as they are, labelled once up front, which saves teacher work. Shift/flip batches
    are relabelled whole. README "Dreams, bundles and scores" has the measurements.
    ``device``: where to train (the seeded draws stay on the CPU, so every device sees the
    same batches); the student comes back on that device.
    """
    device = torch.device(device)
    torch.manual_seed(recipe.seed)
    student = fast_layout(build_model(student_cfg)).to(device)
    student.train()
    teachers = [fast_layout(t).eval().to(device) for t in teachers]
    gen = torch.Generator().manual_seed(recipe.seed)
    x_all = normalize(images.to(device), mean, std)
    n = len(x_all)
    opt = torch.optim.Adam(student.parameters(), lr=recipe.lr, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, recipe.steps)
    t = recipe.temperature
    mix = mixup_fraction(recipe.augment)
    geometric = tuple(a for a in recipe.augment if not a.startswith("mixup"))

    def teach(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return F.softmax(ensemble_logits(teachers, x) / t, 1)

    probs_all = None if geometric or mix == 1.0 else teach(_nhwc(x_all))  # labels of unaltered images
    perm, pos = torch.randperm(n, generator=gen), 0
    for step in range(recipe.steps):
        if pos + recipe.batch > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        idx = perm[pos:pos + recipe.batch]
        pos += recipe.batch
        xb = x_all[idx.to(device)]
        if geometric:
            xb = augment(xb, geometric, gen)
        h = round(len(xb) * mix)
        if h:
            lam = torch.rand(h, generator=gen).view(-1, 1, 1, 1).to(device)
            partners = xb[torch.randperm(len(xb), generator=gen)[:h].to(device)]
            xb = torch.cat([lam * xb[:h] + (1 - lam) * partners, xb[h:]])
        xb = _nhwc(xb)
        if geometric or h == len(xb):
            pb = teach(xb)
        elif h == 0:
            pb = probs_all[idx.to(device)]
        else:
            pb = torch.cat([teach(xb[:h]), probs_all[idx[h:].to(device)]])
        loss = F.kl_div(F.log_softmax(student(xb) / t, 1), pb, reduction="batchmean") * t * t
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None:
            progress(step)
    return student.eval()


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, mean, std, batch: int = 1024) -> float:
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for i in range(0, len(images), batch):
        pred = model(normalize(images[i:i + batch].to(device), mean, std)).argmax(1)
        correct += int((pred == labels[i:i + batch].to(device)).sum())
    return correct / max(1, len(images))


def noise_images(n: int, shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    """The task's seeded noise baseline: uniform uint8 images."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), generator=gen, dtype=torch.uint8)
