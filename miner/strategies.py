"""How a miner produces the images it submits.

``honest`` dreams from the task's teachers. Every other strategy is a **test/demo adversary**:
the demo and the adversarial round (`codream demo --adversarial`) run them to show that each
way of cheating loses money or earns nothing. They are hidden from `codream miner run --help`;
never run them for real.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from codream import bundle as bundlemod
from codream.bundle import Binding
from codream import data as D
from codream.agent import TaskError
from codream.distill import noise_images
from codream import receipt as receipts
from codream.spec import TaskSpec, receipt_config
from codream.synthesis import DreamConfig, DreamResult, dream
from codream.teachers import load_teachers

from . import cheats
from .methods import METHODS, check_receipt_support, keep_new, synthesize_new


class StrategyError(TaskError):
    """The strategy cannot produce images for this task (say why)."""


class CannotMine(StrategyError):
    """The strategy can never produce a bundle this task accepts (the agent skips the task)."""


class Strategy:
    name = "strategy"
    demo_only = True
    copies = 1  # bundles per task (each its own submission and bond)
    last_seconds = 0.0  # wall time of the last images() call: the "work done"
    last_receipt: str | None = None  # the synthesis receipt (JSON) of the last images(), if they have one

    def images(self, spec: TaskSpec, n: int, seed: int, ipfs, binding: Binding | None = None) -> torch.Tensor:
        """``n`` images for a task; ``binding``: the submission they will be bound to (a task that
        binds receipts dreams with seeds of it: ``codream.receipt.bound_seed``)."""
        t0 = time.perf_counter()
        self.last_receipt = None
        out = self._images(spec, n, seed, ipfs, binding)
        self.last_seconds = time.perf_counter() - t0
        return out

    def _images(self, spec: TaskSpec, n: int, seed: int, ipfs, binding: Binding | None = None) -> torch.Tensor:
        raise NotImplementedError


class Honest(Strategy):
    """Dream ``n`` images from the task's teachers (the real miner)."""

    name, demo_only = "honest", False

    def __init__(self, steps: int | None = None, device: str = "cpu", method: str = "pixel", amp: bool = False,
                 backend=None):
        if method not in METHODS:
            raise ValueError(f"unknown synthesis method {method!r} (known: {', '.join(METHODS)})")
        if backend is not None and method != "pixel":
            raise ValueError(f"--method {method} cannot run on a Ray cluster (its batches depend on the ones "
                             "before): use --method pixel, or leave out --ray-address")
        self.steps, self.device, self.method, self.amp = steps, device, method, amp
        self.backend = backend  # a ``miner.ray_backend.RayBackend``: the shards run on its cluster

    def _images(self, spec: TaskSpec, n: int, seed: int, ipfs, binding: Binding | None = None) -> torch.Tensor:
        """Dream, then drop this bundle's own repeats (near-twins and self-derived images: the
        verifier pays for new images only) and dream replacements (``methods.synthesize_new``)."""
        try:
            check_receipt_support(spec, self.method, self.amp, self.device, n, seed, self.steps,
                                  binding=binding)  # else INVALID
        except ValueError as exc:
            raise CannotMine(str(exc)) from None
        teachers = load_teachers(spec, client=ipfs)
        res = synthesize_new(spec, teachers, n, self.method, seed=seed, steps=self.steps, device=self.device,
                             amp=self.amp, run_shards=self.backend.run_shards if self.backend else None,
                             binding=binding)
        self.last_receipt = res.receipt.to_json() if res.receipt is not None else None
        return res.images


class LowEffort(Honest):
    """Demo adversary: dreams with a handful of optimisation steps (cheap, poor dreams)."""

    name, demo_only = "low-effort", True

    def __init__(self, steps: int = 3, device: str = "cpu"):
        super().__init__(steps, device)


class Noise(Strategy):
    """Demo adversary: seeded noise, no work at all. Where the task requires synthesis receipts it
    submits what a rational spammer would: the recipe's own starting noise (one step at lr 0, with a
    receipt that replays), so it is scored, and rejected below the min gain, rather than INVALID."""

    name = "noise"

    def _images(self, spec: TaskSpec, n: int, seed: int, ipfs, binding: Binding | None = None) -> torch.Tensor:
        if not receipt_config(spec)["required"]:
            return noise_images(n, spec.shape, seed)
        teachers = load_teachers(spec, client=ipfs)
        bound = receipts.seed_binding(spec, binding)

        def run(k: int, s: int) -> DreamResult:
            cfg = DreamConfig.for_shape(spec.shape, seed=s, steps=1, lr=0.0)
            res = dream(teachers, k, spec.num_classes, spec.shape, spec.mean, spec.std,
                        receipts.bound_config(cfg, bound))
            res.receipt = receipts.of_config(cfg, k)
            return res

        # like any miner it drops its own repeats (noise of 8×8 has 0.3–2.7 % of them, around the
        # derived check's 2 %), so that the score, not a check, is what turns it away
        res = keep_new(spec, run(n, seed), n, seed, lambda k, s, kept: run(k, s))
        self.last_receipt = res.receipt.to_json()
        return res.images


class Spam(Noise):
    """Demo adversary: fills the task with ``copies`` noise submissions from one address."""

    name = "spam"

    def __init__(self, copies: int = 5):
        self.copies = copies


def _wait_for(path: Path, wait: float) -> Path:
    deadline = time.monotonic() + wait
    while not path.exists():
        if time.monotonic() > deadline:
            raise StrategyError(f"the bundle to copy ({path}) never appeared")
        time.sleep(1)
    return path


class Copy(Strategy):
    """Demo adversary: someone else's bundle (leaked off-chain, or fetched by CID after it was
    revealed, e.g. from an earlier task: a replay), re-ordered and re-bound to this miner.
    Waits up to ``wait`` seconds for a leaked file to appear."""

    name = "copy"
    source_receipt: str | None = None  # the copied bundle's synthesis receipt, if it had one

    def __init__(self, source: str | Path | None = None, cid: str | None = None, wait: float = 600):
        if (source is None) == (cid is None):
            raise ValueError("copy: give exactly one of a bundle file or a CID")
        self.source, self.cid, self.wait = Path(source) if source else None, cid, wait

    def _original(self, ipfs) -> torch.Tensor:
        data = ipfs.cat(self.cid, max_bytes=1 << 30) if self.cid else _wait_for(self.source, self.wait).read_bytes()
        images, header = bundlemod.read(data)
        self.source_receipt = header.metadata.get("receipt")
        return images

    def _images(self, spec: TaskSpec, n: int, seed: int, ipfs, binding: Binding | None = None) -> torch.Tensor:
        images = self._original(ipfs)
        return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(7))]


TRANSFORMS = ("shift", "flip", "noise", "partial", "rotate", "blend", "rotblend", "warp", "reoptimise")


def transform(images: torch.Tensor, how: str, seed: int, teachers=None, spec: TaskSpec | None = None) -> torch.Tensor:
    """A copier's disguise: ``shift`` (roll 1 px), ``flip`` (left-right), ``noise`` (±8 per pixel),
    ``partial`` (the first half copied, the rest noise); and the ones no pixel alignment undoes
    (verification v3): ``rotate`` (10°), ``blend`` (70/30 with another of its images), ``rotblend``
    (rotated 10°, then blended 70/30 with another of its images, unrotated), ``warp``
    (elastic), ``reoptimise`` (5 steps of the dreaming loss at lr 0.25 from the copy; needs the
    task's ``teachers`` and ``spec``)."""
    gen = torch.Generator().manual_seed(seed)
    big = images.shape[2] >= 28
    if how == "rotate":
        return cheats.rotate(images, 10)
    if how == "blend":
        return cheats.blend(images, images[torch.randperm(len(images), generator=gen)], 0.7)
    if how == "rotblend":
        return cheats.blend(cheats.rotate(images, 10), images[torch.randperm(len(images), generator=gen)], 0.7)
    if how == "warp":
        return cheats.elastic(images, 2.0 if big else 1.0, 4.0 if big else 2.0, seed)
    if how == "reoptimise":
        if teachers is None or spec is None:
            raise ValueError("reoptimise needs the task's teachers and spec")
        return cheats.reoptimise(images, teachers, spec.mean, spec.std, 5, 0.25, seed)
    if how == "shift":
        return torch.roll(images, shifts=(1, 1), dims=(2, 3))
    if how == "flip":
        return images.flip(3)
    if how == "noise":
        jitter = torch.randint(-8, 9, images.shape, generator=gen)
        return (images.to(torch.int16) + jitter).clamp(0, 255).to(torch.uint8)
    if how == "partial":
        half = len(images) // 2
        return torch.cat([images[:half], noise_images(len(images) - half, tuple(images.shape[1:]), seed)])
    raise ValueError(f"unknown transform {how!r} ({', '.join(TRANSFORMS)})")


class TransformedCopy(Copy):
    """Demo adversary: a copy disguised by a transformation (run several under several addresses:
    the sybil split of one unit of work into many rewards)."""

    name = "transformed-copy"

    def __init__(self, how: str, source: str | Path | None = None, cid: str | None = None, wait: float = 600):
        super().__init__(source, cid, wait)
        if how not in TRANSFORMS:
            raise ValueError(f"unknown transform {how!r} ({', '.join(TRANSFORMS)})")
        self.how = how

    def _images(self, spec: TaskSpec, n: int, seed: int, ipfs, binding: Binding | None = None) -> torch.Tensor:
        teachers = load_teachers(spec, client=ipfs) if self.how == "reoptimise" else None
        out = transform(self._original(ipfs), self.how, seed, teachers, spec)
        # the best a copier can do where the task requires receipts: keep the source's (the images
        # stay in its order); the verifiers' replay of any shard then finds the disguise
        self.last_receipt = self.source_receipt
        return out


class LeakedEval(Strategy):
    """Demo adversary: submits the task's eval images. For digits the "secret" eval split is
    rebuilt from public data (scikit-learn's digits and the reference split)."""

    name = "eval-images"

    def _images(self, spec: TaskSpec, n: int, seed: int, ipfs, binding: Binding | None = None) -> torch.Tensor:
        if spec.shape != (1, 8, 8):
            raise StrategyError("eval-images: only the digits reference split can be rebuilt from public data")
        _, ev = D.digits()
        return torch.from_numpy(ev.x)[:n]


STRATEGIES = {cls.name: cls for cls in (Honest, LowEffort, Noise, Spam, Copy, TransformedCopy, LeakedEval)}
