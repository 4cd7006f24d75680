"""How a miner produces the images it submits. ``honest`` dreams from the task's teachers;
the others are **test/demo adversaries** (the demo and the adversarial suite run them to
show that cheating loses money): never run them for real."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from codream import bundle as bundlemod
from codream.agent import TaskError
from codream.distill import noise_images
from codream.spec import TaskSpec
from codream.teachers import load_teachers

from .synthesis import DreamConfig, dream


class StrategyError(TaskError):
    """The strategy cannot produce images for this task (say why)."""


class Strategy:
    name = "strategy"
    demo_only = True

    def images(self, spec: TaskSpec, n: int, seed: int, ipfs) -> torch.Tensor:
        raise NotImplementedError


class Honest(Strategy):
    """Dream ``n`` images from the task's teachers (the real miner)."""

    name, demo_only = "honest", False

    def __init__(self, steps: int | None = None, device: str = "cpu"):
        self.steps, self.device = steps, device

    def images(self, spec: TaskSpec, n: int, seed: int, ipfs) -> torch.Tensor:
        teachers = load_teachers(spec, client=ipfs)
        cfg = DreamConfig(seed=seed)
        if self.steps:
            cfg.steps = self.steps
        return dream(teachers, n, spec.num_classes, spec.shape, spec.mean, spec.std, cfg, self.device).images


class Noise(Strategy):
    """Demo adversary: seeded uniform noise, no work at all."""

    name = "noise"

    def images(self, spec: TaskSpec, n: int, seed: int, ipfs) -> torch.Tensor:
        return noise_images(n, spec.shape, seed)


class Copy(Strategy):
    """Demo adversary: someone else's bundle (leaked off-chain), re-ordered and re-bound to
    this miner. Waits up to ``wait`` seconds for the file to appear."""

    name = "copy"

    def __init__(self, source: str | Path, wait: float = 600):
        self.source, self.wait = Path(source), wait

    def images(self, spec: TaskSpec, n: int, seed: int, ipfs) -> torch.Tensor:
        deadline = time.monotonic() + self.wait
        while not self.source.exists():
            if time.monotonic() > deadline:
                raise StrategyError(f"copy: the bundle to copy ({self.source}) never appeared")
            time.sleep(1)
        images, _ = bundlemod.read(self.source.read_bytes())
        return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(7))]


STRATEGIES = {cls.name: cls for cls in (Honest, Noise, Copy)}
