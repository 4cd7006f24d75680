"""The miner's synthesis methods behind one call: ``pixel`` (``synthesis.dream``: optimise each
batch's pixels) and ``generator`` (``generator.dream_generator``: a meta-learned generator);
and ``keep_new``, which makes a bundle out of them that its verifiers count as new."""
from __future__ import annotations

import time
from typing import Callable, Sequence

import torch
from torch import nn

from codream import arithmetic, receipt as receipts
from codream.bundle import Binding
from codream.novelty import repeats_within
from codream.spec import TaskSpec, receipt_config
from codream.zoo import build_model

from .generator import GeneratorConfig, dream_generator
from codream.synthesis import DreamConfig, DreamResult, ShardRunner, dream


METHODS = ("pixel", "generator")
TOP_UPS = 3  # rounds of replacement dreams for dropped repeats
TOP_UP_SEED = 7919  # seed of top-up round k: seed + TOP_UP_SEED * k


def synthesize(spec: TaskSpec, teachers: Sequence[nn.Module], n: int, method: str = "pixel", seed: int = 0,
               steps: int | None = None, batch: int | None = None, device: str | torch.device = "cpu",
               amp: bool = False, progress: bool = False, avoid: torch.Tensor | None = None,
               avoid_labels: torch.Tensor | None = None, run_shards: ShardRunner | None = None,
               binding: Binding | None = None) -> DreamResult:
    """Dream ``n`` images for a task with one of ``METHODS`` (raw: nothing dropped).

    ``steps``: steps per batch (pixel) or inner steps per batch after the first (generator).
    The generator's adversarial student is the spec's own student architecture; ``avoid`` (with
    ``avoid_labels``): dreams already kept, which the generator's repulsion steers away from.
    ``run_shards``: run the pixel method's shards elsewhere (a Ray cluster: ``miner.ray_backend``);
    the generator carries state from batch to batch and runs in this process only.
    ``binding``: the submission the bundle will carry; on a task that binds receipts
    (``scoring.receipt.bound``) the pixel method dreams with ``receipt.bound_seed(binding, seed)``
    and its receipt names ``seed``.
    """
    if run_shards is not None and method != "pixel":
        raise ValueError(f"method {method!r} cannot be sharded (its batches depend on the ones before): "
                         "only the pixel method runs on a Ray cluster (docs/scale-out.md)")
    if method == "pixel":
        cfg = pixel_config(spec, seed, steps, batch, amp)
        run_cfg = receipts.bound_config(cfg, receipts.seed_binding(spec, binding))
        res = dream(teachers, n, spec.num_classes, spec.shape, spec.mean, spec.std, run_cfg, device,
                    progress=progress, run_shards=run_shards)
        if not amp:  # a replay runs in fp32: only an fp32 synthesis has a receipt
            res.receipt = receipts.of_config(cfg, n)
        return res
    if method == "generator":
        gcfg = GeneratorConfig.for_shape(spec.shape, seed=seed, amp=amp)
        gcfg.inner_steps = steps or gcfg.inner_steps
        gcfg.batch = batch or gcfg.batch
        return dream_generator(teachers, n, spec.num_classes, spec.shape, spec.mean, spec.std, gcfg, device,
                               student=build_model(spec.student), progress=progress, avoid=avoid,
                               avoid_labels=avoid_labels)
    raise ValueError(f"unknown synthesis method {method!r} (known: {', '.join(METHODS)})")


def pixel_config(spec: TaskSpec, seed: int = 0, steps: int | None = None, batch: int | None = None,
                 amp: bool = False) -> DreamConfig:
    """The pixel method's settings for ``spec``: the tuned defaults for its resolution, then the
    miner's ``steps`` and ``batch``."""
    cfg = DreamConfig.for_shape(spec.shape, seed=seed, amp=amp)
    cfg.steps, cfg.batch = steps or cfg.steps, batch or cfg.batch
    return cfg


def check_receipt_support(spec: TaskSpec, method: str, amp: bool, device: str | torch.device = "cpu",
                          n: int | None = None, seed: int = 0, steps: int | None = None,
                          batch: int | None = None, binding: Binding | None = None) -> None:
    """Refuse, before any work, a synthesis whose bundle the task would call INVALID for want of
    a receipt that replays (``scoring.receipt.required``; ``codream/receipt.py``): the generator
    method, bf16 autocast and a GPU (a verifier replays in fp32 on its CPU, and the optimisation
    is chaotic: other arithmetic gives other dreams), and settings outside the spec's bounds."""
    if not receipt_config(spec)["required"]:
        return
    if method != "pixel":
        raise ValueError(f"this task requires synthesis receipts (its verifiers dream part of each bundle again), "
                         f"which the {method} method cannot give (its batches depend on the ones before): "
                         "use --method pixel")
    if amp:
        raise ValueError("this task requires synthesis receipts, which a verifier replays in fp32: dream without --amp")
    if torch.device(device).type != "cpu":
        raise ValueError("this task requires synthesis receipts, which a verifier replays on its CPU (other "
                         "arithmetic gives other dreams): dream with --device cpu")
    receipts.seed_binding(spec, binding)  # a bound task: the binding must be known before dreaming
    found = arithmetic.problems(receipt_config(spec)["arithmetic"])
    if found:
        raise ValueError("this task requires synthesis receipts, which verifiers replay in the receipt arithmetic "
                         f"(codream/arithmetic.py), and this process does not run it: {'; '.join(found)}")
    cfg = pixel_config(spec, seed, steps, batch)  # what synthesize will dream, so its receipt
    k = n or spec.bundle.min_images
    try:
        receipts.parse(receipts.of_config(cfg, k).to_json(), spec, k)
    except receipts.ReceiptError as exc:
        raise ValueError(f"the verifiers would refuse this bundle's receipt: {exc.detail}") from None


def keep_new(spec: TaskSpec, first: DreamResult, n: int, seed: int,
             more: Callable[[int, int, DreamResult], DreamResult], top_ups: int = TOP_UPS) -> DreamResult:
    """Drop the images of ``first`` that the verifier would not count as new within the bundle
    (near-twins and self-derived images: ``codream.novelty.repeats_within``) and dream
    replacements with ``more(count, seed, kept)``, up to ``top_ups`` rounds; what is still
    flagged after the last round is left out (the bundle may then hold fewer than ``n``).

    A verifier calls a bundle with more than ``scoring.novelty.duplicate_max_fraction`` near-twins
    or ``scoring.derived.max_fraction`` derived images INVALID and pays only for new images, so
    this is money. ``stats``: the first pass's repeat share, the rounds, the images dropped and
    the seconds of everything (synthesis, checks, top-ups). ``receipt``: the bundle's synthesis
    receipt (``codream/receipt.py``: each run's seed and the images dropped from it), where every
    run had one (the pixel method in fp32)."""
    t0 = time.perf_counter()
    images, labels = first.images, first.labels
    parts = [first.receipt]  # each run's receipt; the kept images' (run, index), in bundle order
    origin = torch.stack([torch.zeros(len(images), dtype=torch.int64), torch.arange(len(images))], 1)
    dropped, first_share, rounds = 0, None, 0
    for k in range(top_ups + 1):
        bad = repeats_within(images, spec)
        if first_share is None:
            first_share = float(bad.float().mean()) if len(bad) else 0.0
        dropped += int(bad.sum())
        images, labels, origin = images[~bad], labels[~bad], origin[~bad]
        missing = n - len(images)
        if missing <= 0 or k == top_ups:
            break
        rounds += 1
        extra = more(missing, seed + TOP_UP_SEED * (k + 1), DreamResult(images, labels))
        parts.append(extra.receipt)
        images, labels = torch.cat([images, extra.images]), torch.cat([labels, extra.labels])
        origin = torch.cat([origin, torch.stack([torch.full((len(extra.images),), len(parts) - 1, dtype=torch.int64),
                                                 torch.arange(len(extra.images))], 1)])
    stats = dict(first.stats)
    secs = first.stats.get("seconds", 0.0) + time.perf_counter() - t0
    stats.update(seconds=secs, dreams_per_second=len(images) / secs if secs else float("inf"),
                 repeats_first_pass=round(first_share, 4), repeats_dropped=dropped, top_up_rounds=rounds)
    receipt = None
    if all(p is not None for p in parts):
        receipt = receipts.kept(parts, [tuple(o) for o in origin.tolist()])
    return DreamResult(images, labels, stats, receipt)


def synthesize_new(spec: TaskSpec, teachers: Sequence[nn.Module], n: int, method: str = "pixel", seed: int = 0,
                   steps: int | None = None, batch: int | None = None, device: str | torch.device = "cpu",
                   amp: bool = False, progress: bool = False, top_ups: int = TOP_UPS,
                   run_shards: ShardRunner | None = None, binding: Binding | None = None) -> DreamResult:
    """``synthesize``, then ``keep_new``: the bundle a miner submits (the CLI's `miner dream` and
    the mining agent alike). ``run_shards``: the first pass's and the top-ups' shards run there
    (a Ray cluster); the checks run here. ``binding``: as ``synthesize``."""
    def more(k: int, s: int, kept: DreamResult) -> DreamResult:
        return synthesize(spec, teachers, k, method, s, steps, batch, device, amp, avoid=kept.images,
                          avoid_labels=kept.labels, run_shards=run_shards, binding=binding)

    first = synthesize(spec, teachers, n, method, seed, steps, batch, device, amp, progress, run_shards=run_shards,
                       binding=binding)
    return keep_new(spec, first, n, seed, more, top_ups)
