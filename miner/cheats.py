"""How cheating miners re-use earlier images: seeded transformations on uint8 images
[N, C, H, W]. **Test/benchmark adversaries** (the adversarial corpus in
tests/test_adversarial.py and `codream bench verify` run them): never run them for real."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from codream.data import normalize


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def shift(x: torch.Tensor, px: int = 1, seed: int = 0, roll: bool = False) -> torch.Tensor:
    """Each image moved by a random (dy, dx) in [-px, px]² (never both 0): zero-filled or rolled."""
    n, _, h, w = x.shape
    d = torch.randint(-px, px + 1, (n, 2), generator=_gen(seed))
    d[(d == 0).all(1), 1] = px
    out = torch.empty_like(x)
    pad = F.pad(x, (px, px, px, px))
    for i, (dy, dx) in enumerate(d.tolist()):
        out[i] = torch.roll(x[i], (dy, dx), (1, 2)) if roll else pad[i, :, px - dy:px - dy + h, px - dx:px - dx + w]
    return out


def hflip(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return x.flip(3)


def vflip(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return x.flip(2)


def rot90(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return x.rot90(1, (2, 3))


def crop_resize(x: torch.Tensor, size: int = 7, seed: int = 0) -> torch.Tensor:
    """A random size×size crop of each image, resized back (bilinear)."""
    n, _, h, w = x.shape
    g = _gen(seed)
    oy, ox = torch.randint(0, h - size + 1, (n,), generator=g), torch.randint(0, w - size + 1, (n,), generator=g)
    out = torch.empty_like(x)
    for i in range(n):
        crop = x[i:i + 1, :, oy[i]:oy[i] + size, ox[i]:ox[i] + size].float()
        out[i] = F.interpolate(crop, (h, w), mode="bilinear", align_corners=False).round().clamp(0, 255)[0]
    return out


def contrast(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Per image: contrast ×[0.6, 1.4], brightness ±40, clipped."""
    g = _gen(seed)
    a = 0.6 + 0.8 * torch.rand(len(x), 1, 1, 1, generator=g)
    b = -40 + 80 * torch.rand(len(x), 1, 1, 1, generator=g)
    return (x.float() * a + b).round().clamp(0, 255).to(torch.uint8)


def gamma(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    g = _gen(seed)
    gm = 0.5 + torch.rand(len(x), 1, 1, 1, generator=g)
    return (255 * (x.float() / 255) ** gm).round().to(torch.uint8)


def noise(x: torch.Tensor, amp: int = 32, seed: int = 0) -> torch.Tensor:
    """Uniform integer noise in [-amp, amp] per pixel, clipped."""
    return (x.float() + torch.randint(-amp, amp + 1, x.shape, generator=_gen(seed))).clamp(0, 255).to(torch.uint8)


def gauss(x: torch.Tensor, sigma: float = 16, seed: int = 0) -> torch.Tensor:
    return (x.float() + sigma * torch.randn(x.shape, generator=_gen(seed))).round().clamp(0, 255).to(torch.uint8)


def posterize(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return (x // 32) * 32 + 16


def invert(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return 255 - x


def composite(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Shifted by one pixel, contrast changed, then ±16 noise."""
    return noise(contrast(shift(x, 1, seed), seed + 1), 16, seed + 2)


def reoptimise(x: torch.Tensor, teachers, mean, std, steps: int = 3, lr: float = 0.05, seed: int = 0) -> torch.Tensor:
    """A few Adam steps of the dreaming loss (BN statistics + cross-entropy to the teachers'
    own class, ±1 px jitter) starting from the copied images."""
    g = _gen(seed)
    xf = (x.float() / 255).requires_grad_(True)
    with torch.no_grad():
        y = torch.stack([t(normalize(x, mean, std)) for t in teachers]).mean(0).argmax(1)
    opt = torch.optim.Adam([xf], lr=lr, betas=(0.5, 0.99))
    stats = []

    def hook(m, inp, out):
        v = inp[0]
        stats.append(torch.norm(v.mean((0, 2, 3)) - m.running_mean) +
                     torch.norm(v.permute(1, 0, 2, 3).flatten(1).var(1, unbiased=False) - m.running_var))

    handles = [m.register_forward_hook(hook) for t in teachers for m in t.modules() if isinstance(m, nn.BatchNorm2d)]
    try:
        for _ in range(steps):
            dy, dx = torch.randint(-1, 2, (2,), generator=g).tolist()
            xin = normalize(torch.roll(xf, (dy, dx), (2, 3)), mean, std)
            stats.clear()
            loss = sum(F.cross_entropy(t(xin), y) for t in teachers) + sum(stats)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                xf.clamp_(0, 1)
    finally:
        for h in handles:
            h.remove()
    return (xf.detach() * 255).round().to(torch.uint8)


def class_means(images: torch.Tensor, labels: torch.Tensor, classes: int) -> torch.Tensor:
    return torch.stack([images[labels == c].float().mean(0) for c in range(classes)]).round().to(torch.uint8)


TRANSFORMS = {"shift1": lambda x, s: shift(x, 1, s), "roll1": lambda x, s: shift(x, 1, s, roll=True),
              "hflip": hflip, "vflip": vflip, "rot90": rot90, "crop7_resize": lambda x, s: crop_resize(x, 7, s),
              "contrast": contrast, "gamma": gamma, "noise32": lambda x, s: noise(x, 32, s),
              "gauss16": lambda x, s: gauss(x, 16, s), "posterize": posterize, "invert": invert,
              "composite": composite}
