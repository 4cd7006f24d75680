"""The distillation recipe: one implementation, used by verifiers to score, by the
miner's benchmark to measure and by task owners to harvest a student (checkpointed). Deterministic on CPU for fixed inputs, seed and threads.

Student = spec's student architecture, initialised from the recipe seed, trained for
``steps`` Adam steps on batches drawn (seeded) from the images, to match the teacher
ensemble's soft labels (mean of the teachers' logits) at temperature T with KL·T².
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
import torch.utils.deterministic as tud
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

from .data import normalize
from .spec import Recipe
from .zoo import build_model

# cuBLAS is deterministic only with a fixed workspace; it must be set before CUDA starts
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """torch's intra-op threads set to ``threads`` inside the block, restored after (None: left as
    they are)."""
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def deterministic(threads: int | None = None):
    """Deterministic algorithms and (optionally) a fixed thread count, restored afterwards."""
    old_det = torch.are_deterministic_algorithms_enabled()
    old_fill = tud.fill_uninitialized_memory
    old_tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # full fp32 on GPUs too
    # Filling every fresh tensor with NaN is a debugging aid of deterministic mode (no
    # kernel we use reads memory it did not write); it took ~10 % of a profiled score.
    tud.fill_uninitialized_memory = False
    try:
        with torch_threads(threads):
            yield
    finally:
        torch.use_deterministic_algorithms(old_det)
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old_tf32
        tud.fill_uninitialized_memory = old_fill


def fast_layout(model: nn.Module) -> nn.Module:
    """A channels-last copy of ``model`` (the caller's module is left as it is).

    On CPU, oneDNN convolutions and max-pooling over NHWC tensors of these small images
    are much faster than over NCHW ones (docs/dreams.md, "The score"); the numbers differ from the
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


class Distillation:
    """One distillation run, one step at a time: a fresh student trained on ``images``
    (uint8 [N,C,H,W]) to match the teachers' soft labels.

    With ``mixup`` the first share F of each batch ("mixup:F", all for plain "mixup") is
    blended with partners from the batch (weight λ ~ U(0,1)) and the teachers label the
    blends: 1,000 images then teach about the space between them too (the teachers label
    the blend itself, not a mix of the two soft labels). The rest of the batch keeps the
    images as they are, labelled once up front, which saves teacher work. Shift/flip batches
    are relabelled whole. docs/dreams.md ("The score") has the measurements.

    With ``recipe.ema`` the result is an exponential moving average of the student's weights
    (decay ``ema``) with BatchNorm statistics recomputed on the images (``result``): that student's
    accuracy moves far less with the seed than the last iterate's (docs/verification.md).

    The whole state of a run (student, its average, Adam, learning-rate schedule, data order, random
    generator) goes out as tensors (``state``) and back in (``load_state``), so a long run
    (a task owner's harvest) checkpoints and resumes bit-identically.

    ``device``: where to train (the seeded draws stay on the CPU, so every device sees the
    same batches); the student stays on that device.
    """

    def __init__(self, student_cfg: dict, teachers: Sequence[nn.Module], images: torch.Tensor, recipe: Recipe,
                 mean, std, device: str | torch.device = "cpu"):
        self.device = device = torch.device(device)
        torch.manual_seed(recipe.seed)
        self.student = fast_layout(build_model(student_cfg)).to(device)
        self.student.train()
        self.teachers = [fast_layout(t).eval().to(device) for t in teachers]
        self.recipe = recipe
        self.gen = torch.Generator().manual_seed(recipe.seed)
        self.x_all = normalize(images.to(device), mean, std)
        self.n = len(self.x_all)
        self.opt = torch.optim.Adam(self.student.parameters(), lr=recipe.lr, fused=True)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, recipe.steps)
        self.avg = AveragedModel(self.student, multi_avg_fn=get_ema_multi_avg_fn(recipe.ema)) if recipe.ema else None
        self.mix = mixup_fraction(recipe.augment)
        self.geometric = tuple(a for a in recipe.augment if not a.startswith("mixup"))
        # labels of the unaltered images, computed once
        self.probs_all = None if self.geometric or self.mix == 1.0 else self._teach(_nhwc(self.x_all))
        self.perm, self.pos = torch.randperm(self.n, generator=self.gen), 0
        self.step = 0

    def _teach(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return F.softmax(ensemble_logits(self.teachers, x) / self.recipe.temperature, 1)

    @property
    def done(self) -> bool:
        return self.step >= self.recipe.steps

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The next training batch as the recipe draws it: (images after augmentation and mixup,
        their indices, how many of them are blends)."""
        r, gen = self.recipe, self.gen
        if self.pos + r.batch > self.n:
            self.perm, self.pos = torch.randperm(self.n, generator=gen), 0
        idx = self.perm[self.pos:self.pos + r.batch]
        self.pos += r.batch
        dev = self.device
        xb = self.x_all[idx.to(dev)]
        if self.geometric:
            xb = augment(xb, self.geometric, gen)
        h = round(len(xb) * self.mix)
        if h:
            lam = torch.rand(h, generator=gen).view(-1, 1, 1, 1).to(dev)
            partners = xb[torch.randperm(len(xb), generator=gen)[:h].to(dev)]
            xb = torch.cat([lam * xb[:h] + (1 - lam) * partners, xb[h:]])
        return _nhwc(xb), idx, h

    def run_step(self) -> None:
        r, dev = self.recipe, self.device
        xb, idx, h = self._batch()
        if self.geometric or h == len(xb):
            pb = self._teach(xb)
        elif h == 0:
            pb = self.probs_all[idx.to(dev)]
        else:
            pb = torch.cat([self._teach(xb[:h]), self.probs_all[idx[h:].to(dev)]])
        t = r.temperature
        loss = F.kl_div(F.log_softmax(self.student(xb) / t, 1), pb, reduction="batchmean") * t * t
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        if self.avg is not None:
            self.avg.update_parameters(self.student)
        self.step += 1

    def result(self) -> nn.Module:
        """The trained student. With ``ema``: the weight average, its BatchNorm statistics recomputed
        as exact means over the training images as they are (no mixup). Measured on MNIST (6 seeds,
        docs/verification.md): only the two together steady the student (86.0 ± 0.5 % on a dream
        bundle; the average with BatchNorm statistics averaged or recomputed on mixup batches:
        84.1 ± 2.3 % / 81.9 ± 2.8 %); the price is real training data read at 94.8 % instead of 97.1 %."""
        if self.avg is None:
            return self.student.eval()
        model = self.avg.module
        with torch.no_grad():
            update_bn([_nhwc(self.x_all[i:i + 256]) for i in range(0, self.n, 256)], model)
        return model.eval()

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        """Tensors and string metadata (safetensors-ready) that ``load_state`` restores."""
        tensors = {f"student.{k}": v.detach().clone().contiguous() for k, v in self.student.state_dict().items()}
        opt = self.opt.state_dict()
        for i, st in opt["state"].items():
            for k, v in st.items():
                tensors[f"adam.{i}.{k}"] = v.detach().clone().contiguous()
        if self.avg is not None:
            tensors.update({f"avg.{k}": v.detach().clone().contiguous() for k, v in self.avg.state_dict().items()})
        tensors["generator"] = self.gen.get_state()
        tensors["perm"] = self.perm.clone()
        meta = {"step": str(self.step), "pos": str(self.pos), "param_groups": json.dumps(opt["param_groups"]),
                "schedule": json.dumps(self.sched.state_dict())}
        return tensors, meta

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
        self.student.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("student.")})
        if self.avg is not None:
            self.avg.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("avg.")})
        params = list(self.student.parameters())
        state: dict[int, dict] = {}
        for k, v in tensors.items():
            if k.startswith("adam."):
                _, i, key = k.split(".", 2)
                p = params[int(i)]
                # moments take their parameter's (channels-last) layout: fused Adam walks raw memory
                state.setdefault(int(i), {})[key] = torch.empty_like(p).copy_(v) if v.shape == p.shape else v
        self.opt.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
        self.sched.load_state_dict(json.loads(meta["schedule"]))
        self.gen.set_state(tensors["generator"])
        self.perm, self.pos, self.step = tensors["perm"], int(meta["pos"]), int(meta["step"])


def distill(student_cfg: dict, teachers: Sequence[nn.Module], images: torch.Tensor, recipe: Recipe,
            mean, std, progress=None, device: str | torch.device = "cpu") -> nn.Module:
    """Train a fresh student on ``images`` (uint8 [N,C,H,W]) from the teachers' soft labels
    (``Distillation`` says how), start to end, on ``device``."""
    run = Distillation(student_cfg, teachers, images, recipe, mean, std, device)
    while not run.done:
        run.run_step()
        if progress is not None:
            progress(run.step - 1)
    return run.result()


CHECKPOINT_FORMAT = "codream.distill-checkpoint/1"


class CheckpointMismatch(ValueError):
    """A checkpoint belongs to another run (other images, teachers or recipe)."""


def save_checkpoint(run: Distillation, path: str | Path, key: str) -> Path:
    """Write ``run``'s whole state as safetensors (atomically); ``key`` names the run's inputs."""
    path = Path(path)
    tensors, meta = run.state()
    tmp = path.with_name(f".{path.name}.part")
    save_file(tensors, str(tmp), metadata={**meta, "format": CHECKPOINT_FORMAT, "key": key})
    tmp.replace(path)
    return path


def load_checkpoint(run: Distillation, path: str | Path, key: str) -> bool:
    """Restore ``run`` from ``path`` if it exists; False if there is none. Raises
    CheckpointMismatch when the file is a checkpoint of another run."""
    path = Path(path)
    if not path.exists():
        return False
    try:
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError) as exc:
        raise CheckpointMismatch(f"{path}: not a readable checkpoint ({exc}); delete it to start over") from None
    if meta.get("format") != CHECKPOINT_FORMAT or meta.get("key") != key:
        raise CheckpointMismatch(f"{path}: a checkpoint of another distillation run (other images, teachers or "
                                 "recipe); delete it or use another output folder")
    run.load_state(tensors, meta)
    return True


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, mean, std, batch: int = 1024) -> float:
    model.eval()
    device = next(iter(model.parameters()), torch.empty(0)).device  # a parameterless wrapper: the CPU
    correct = 0
    for i in range(0, len(images), batch):
        pred = model(normalize(images[i:i + batch].to(device), mean, std)).argmax(1)
        correct += int((pred == labels[i:i + batch].to(device)).sum())
    return correct / max(1, len(images))


def noise_images(n: int, shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    """The task's seeded noise baseline: uniform uint8 images."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), generator=gen, dtype=torch.uint8)
