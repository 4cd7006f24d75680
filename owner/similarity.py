"""Collaborator selection: which owners gain from co-dreaming together?

"Use dreams to calculate similarity between data distributions and perform collaborator
selection" (the CoDream talk). No owner shows another its data: each model dreams a small
**probe set** (a few dreams per class, from its weights alone), and every other model is
asked how it sees those dreams:

- **agreement** ``A[i][j]``: the share of model i's probe dreams that model j puts in the
  class they were dreamed for. Owners whose labels mean the same things on the same kind of
  inputs agree well above chance; a model trained on unrelated data or shuffled labels sits
  near chance (1/K). All dreams count, also those their own model does not recognise: a
  teacher that saw few images of a class dreams it badly by its own judgement, yet the
  partner who knows the class often recognises it (measured on the demo's split; filtering
  such dreams out erased the signal). The diagonal is each model's own share.
- **BN-statistics distance** ``B[i][j]``: how far model i's dreams are from the feature
  statistics model j learnt from its own data: per BatchNorm layer of j, the Gaussian KL
  divergence between the dreams' per-channel statistics and j's running statistics, averaged
  over channels and layers, divided by the same for seeded uniform noise (0 = j's own
  data, about 1 = no closer than noise).

**Compatibility** of a pair = symmetric agreement above chance, scaled to [0, 1]:
``((A[i][j] + A[j][i]) / 2 − 1/K) / (1 − 1/K)`` (clipped at 0; Cohen's kappa, as the probe
classes are balanced), times ``1 − B`` averaged both ways (clipped to [0, 1]), so a pair needs
shared label semantics *and* nearby inputs. For each
owner the others are ranked by compatibility; pairs at or above ``threshold`` are recommended
to co-dream: dreams optimised against both teachers then pull in one direction, and what one
owner's teacher lacks (``1 − A[j][i]``: the partner's dreams it does not recognise yet) is what
it gains.

The probe sets are dreamed by the caller (``probe_fn``; the CLI uses the miners' synthesis),
so this module depends on the core library only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from codream.data import normalize
from codream.distill import noise_images

DEFAULT_THRESHOLD = 0.1  # at least a tenth of the dreams understood beyond chance


@dataclass
class Party:
    """One owner's model as the measure sees it: its own normalisation, classes and input."""

    name: str
    model: nn.Module
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    shape: tuple[int, int, int]


@dataclass
class Probe:
    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor  # int64 [N]: the class each dream was made for


@dataclass
class SimilarityReport:
    names: list[str]
    agreement: list[list[float]]      # [i][j]: model j on model i's dreams
    bn_distance: list[list[float]]    # [i][j]: model i's dreams against model j's BN statistics
    compatibility: list[list[float]]  # symmetric
    ranking: dict[str, list[str]]     # each owner's partners, best first
    recommended: list[tuple[str, str, float]] = field(default_factory=list)
    threshold: float = DEFAULT_THRESHOLD
    chance: float = 0.0

    def to_json(self) -> dict:
        return {"names": self.names, "agreement": self.agreement, "bn_distance": self.bn_distance,
                "compatibility": self.compatibility, "ranking": self.ranking, "chance": self.chance,
                "threshold": self.threshold,
                "recommended": [{"owners": [a, b], "compatibility": c} for a, b, c in self.recommended]}


class _BNStats:
    """Per BatchNorm2d layer: the Gaussian KL divergence of a batch's per-channel statistics
    (at the layer's input) from the layer's running statistics, averaged over channels."""

    def __init__(self, model: nn.Module):
        self.kls: list[torch.Tensor] = []
        self.handles = [m.register_forward_hook(self._hook) for m in model.modules()
                        if isinstance(m, nn.BatchNorm2d)]

    def _hook(self, m: nn.BatchNorm2d, inputs, output) -> None:
        x = inputs[0].detach().float()
        mu = x.mean(dim=(0, 2, 3))
        var = x.permute(1, 0, 2, 3).reshape(x.shape[1], -1).var(1, unbiased=False) + m.eps
        rv = m.running_var + m.eps
        kl = 0.5 * (torch.log(rv / var) + (var + (mu - m.running_mean) ** 2) / rv - 1)
        self.kls.append(kl.mean())

    def close(self) -> None:
        for h in self.handles:
            h.remove()


@torch.no_grad()
def bn_divergence(party: Party, images: torch.Tensor) -> float:
    """Mean per-layer KL of ``images``' feature statistics from ``party``'s BN statistics."""
    party.model.eval()
    hooks = _BNStats(party.model)
    try:
        party.model(normalize(images, party.mean, party.std))
    finally:
        hooks.close()
    if not hooks.kls:
        raise ValueError(f"{party.name}: the model has no BatchNorm2d layers")
    return float(torch.stack(hooks.kls).mean())


@torch.no_grad()
def predictions(party: Party, images: torch.Tensor) -> torch.Tensor:
    party.model.eval()
    return party.model(normalize(images, party.mean, party.std)).argmax(1)


def agreement(party: Party, probe: Probe) -> float:
    """The share of the probe dreams that ``party`` puts in the class they were dreamed for."""
    return float((predictions(party, probe.images) == probe.labels).float().mean())


def similarity(parties: Sequence[Party], probe_fn: Callable[[Party], Probe],
               threshold: float = DEFAULT_THRESHOLD, noise_seed: int = 0) -> SimilarityReport:
    """Dream a probe set per party (``probe_fn``), cross-evaluate, rank partners."""
    if len(parties) < 2:
        raise ValueError("similarity needs at least two models")
    k = {p.num_classes for p in parties}
    shapes = {p.shape for p in parties}
    if len(k) > 1 or len(shapes) > 1:
        raise ValueError("models with different class counts or input shapes cannot co-dream one task: "
                         + ", ".join(f"{p.name}: {p.num_classes} classes, input {p.shape}" for p in parties))
    k, shape = k.pop(), shapes.pop()
    probes = [probe_fn(p) for p in parties]
    n = len(parties)
    noise = noise_images(max(len(pr.images) for pr in probes), shape, noise_seed)
    noise_kl = [bn_divergence(p, noise) for p in parties]
    a = [[agreement(parties[j], probes[i]) for j in range(n)] for i in range(n)]
    b = [[bn_divergence(parties[j], probes[i].images) / max(noise_kl[j], 1e-12) for j in range(n)] for i in range(n)]
    chance = 1.0 / k
    comp = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            agree = max(0.0, ((a[i][j] + a[j][i]) / 2 - chance) / (1 - chance))
            near = min(1.0, max(0.0, 1 - (b[i][j] + b[j][i]) / 2))
            comp[i][j] = 1.0 if i == j else round(agree * near, 4)
    names = [p.name for p in parties]
    ranking = {names[i]: [names[j] for j in sorted((j for j in range(n) if j != i), key=lambda j: -comp[i][j])]
               for i in range(n)}
    recommended = sorted(((names[i], names[j], comp[i][j]) for i in range(n) for j in range(i + 1, n)
                          if comp[i][j] >= threshold), key=lambda r: -r[2])
    r4 = lambda m: [[round(v, 4) for v in row] for row in m]  # noqa: E731
    return SimilarityReport(names, r4(a), r4(b), comp, ranking, recommended, threshold, round(chance, 4))


def explain(report: SimilarityReport) -> list[str]:
    """One line per owner pair: compatible or not, and why."""
    lines = []
    n = len(report.names)
    for i in range(n):
        for j in range(i + 1, n):
            a, b = report.names[i], report.names[j]
            agree = (report.agreement[i][j] + report.agreement[j][i]) / 2
            dist = (report.bn_distance[i][j] + report.bn_distance[j][i]) / 2
            c = report.compatibility[i][j]
            if c >= report.threshold:
                gain = [f"{a} recognises {report.agreement[j][i]:.0%} of {b}'s dreams",
                        f"{b} {report.agreement[i][j]:.0%} of {a}'s"]
                lines.append(f"{a} + {b}: co-dream (compatibility {c:.2f}: dreams agree {agree:.0%} vs chance "
                             f"{report.chance:.0%}, BN distance {dist:.2f}); {', '.join(gain)}: what is missing "
                             "is what each gains")
            else:
                why = (f"their models agree on {agree:.0%} of each other's dreams (chance {report.chance:.0%}): "
                       "labels or data unrelated") if agree - report.chance < 0.15 else \
                      (f"dreams are far from each other's BN statistics (distance {dist:.2f}): different inputs")
                lines.append(f"{a} + {b}: do not co-dream (compatibility {c:.2f}); {why}")
    return lines
