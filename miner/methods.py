"""The miner's synthesis methods behind one call: ``pixel`` (``synthesis.dream``: optimise each
batch's pixels) and ``generator`` (``generator.dream_generator``: a meta-learned generator)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from codream.spec import TaskSpec
from codream.zoo import build_model

from .generator import GeneratorConfig, dream_generator
from .synthesis import DreamConfig, DreamResult, dream


METHODS = ("pixel", "generator")


def synthesize(spec: TaskSpec, teachers: Sequence[nn.Module], n: int, method: str = "pixel", seed: int = 0,
               steps: int | None = None, batch: int | None = None, device: str | torch.device = "cpu",
               amp: bool = False, progress: bool = False) -> DreamResult:
    """Dream ``n`` images for a task with one of ``METHODS`` (the miner's entry point).

    ``steps``: steps per batch (pixel) or inner steps per batch after the first (generator).
    The generator's adversarial student is the spec's own student architecture.
    """
    if method == "pixel":
        cfg = DreamConfig(seed=seed, amp=amp)
        cfg.steps = steps or cfg.steps
        cfg.batch = batch or cfg.batch
        return dream(teachers, n, spec.num_classes, spec.shape, spec.mean, spec.std, cfg, device, progress=progress)
    if method == "generator":
        gcfg = GeneratorConfig(seed=seed, amp=amp)
        gcfg.inner_steps = steps or gcfg.inner_steps
        gcfg.batch = batch or gcfg.batch
        return dream_generator(teachers, n, spec.num_classes, spec.shape, spec.mean, spec.std, gcfg, device,
                               student=build_model(spec.student), progress=progress)
    raise ValueError(f"unknown synthesis method {method!r} (known: {', '.join(METHODS)})")
