"""How cheating miners re-use earlier images: seeded transformations on uint8 images
[N, C, H, W]. **Test/benchmark adversaries** (the adversarial corpus in
tests/test_adversarial.py and `codream bench verify` run them): never run them for real."""
from __future__ import annotations

import math

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


# -- disguised copies that no pixel alignment of the near-twin check undoes (verification v3) --
def affine(x: torch.Tensor, degrees, tx=0.0, ty=0.0, scale=1.0) -> torch.Tensor:
    """Each image rotated by ``degrees`` (a number or one per image), shifted by (tx, ty) pixels and
    scaled, about its centre (bilinear, zero fill)."""
    n, c, h, w = x.shape
    a = torch.as_tensor(degrees, dtype=torch.float32).expand(n) * math.pi / 180
    s = torch.as_tensor(scale, dtype=torch.float32).expand(n)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(a) / s, -torch.sin(a) / s
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(a) / s, torch.cos(a) / s
    theta[:, 0, 2], theta[:, 1, 2] = 2 * tx / w, 2 * ty / h
    grid = F.affine_grid(theta, (n, c, h, w), align_corners=False)
    return F.grid_sample(x.float(), grid, align_corners=False).round().clamp(0, 255).to(torch.uint8)


def rotate(x: torch.Tensor, degrees: float = 10, seed: int = 0) -> torch.Tensor:
    return affine(x, degrees)


def blend(x: torch.Tensor, y: torch.Tensor, a: float = 0.7) -> torch.Tensor:
    """a·x + (1 − a)·y, image by image (y: another bundle, e.g. an earlier submission)."""
    return (a * x.float() + (1 - a) * y[: len(x)].float()).round().clamp(0, 255).to(torch.uint8)


def blend_pairs(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """50/50 blends of random pairs of the bundle's own images."""
    return blend(x, x[torch.randperm(len(x), generator=_gen(seed))], 0.5)


def elastic(x: torch.Tensor, alpha: float = 2.0, sigma: float = 4.0, seed: int = 0) -> torch.Tensor:
    """An elastic warp (Simard et al.): a random displacement field smoothed by a Gaussian of
    ``sigma`` pixels, at most ``alpha`` pixels."""
    n, c, h, w = x.shape
    d = torch.rand(n, 2, h, w, generator=_gen(seed)) * 2 - 1
    k = int(4 * sigma) | 1
    ker = torch.exp(-(torch.arange(k) - k // 2).float() ** 2 / (2 * sigma ** 2))
    ker = ker / ker.sum()
    d = F.conv2d(d.reshape(-1, 1, h, w), ker.view(1, 1, 1, -1), padding=(0, k // 2))
    d = F.conv2d(d, ker.view(1, 1, -1, 1), padding=(k // 2, 0)).reshape(n, 2, h, w)
    d = d / d.abs().amax((2, 3), keepdim=True).clamp_min(1e-6) * alpha
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    grid = torch.stack([xx + d[:, 0] * 2 / w, yy + d[:, 1] * 2 / h], -1)
    return F.grid_sample(x.float(), grid, align_corners=True).round().clamp(0, 255).to(torch.uint8)


def perspective(x: torch.Tensor, amount: float = 0.08, seed: int = 0) -> torch.Tensor:
    """A random projective warp: each corner moved by up to ``amount`` of the image size."""
    n, c, h, w = x.shape
    g = _gen(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    pts = torch.stack([xx.flatten(), yy.flatten(), torch.ones(h * w)], 0)
    src = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    out = torch.empty_like(x)
    for i in range(n):
        dst = src + (torch.rand(4, 2, generator=g) * 2 - 1) * amount * 2
        rows = []
        for (px, py), (u, v) in zip(dst.tolist(), src.tolist()):  # the homography dst -> src (DLT)
            rows += [[px, py, 1, 0, 0, 0, -u * px, -u * py, -u], [0, 0, 0, px, py, 1, -v * px, -v * py, -v]]
        hom = torch.linalg.svd(torch.tensor(rows)).Vh[-1].view(3, 3)
        q = hom @ pts
        grid = (q[:2] / q[2:]).T.reshape(1, h, w, 2)
        out[i] = F.grid_sample(x[i:i + 1].float(), grid, align_corners=True).round().clamp(0, 255)[0].to(torch.uint8)
    return out


def patchmix(sources: list[torch.Tensor], seed: int = 0) -> torch.Tensor:
    """Each image made of its four quarters taken from four random images of ``sources``."""
    pool = torch.cat(sources)
    n, (_, c, h, w) = len(sources[0]), pool.shape
    idx = torch.randint(0, len(pool), (n, 4), generator=_gen(seed))
    out = torch.empty(n, c, h, w, dtype=torch.uint8)
    hh, hw = h // 2, w // 2
    for k, (ys, xs) in enumerate(((slice(0, hh), slice(0, hw)), (slice(0, hh), slice(hw, w)),
                                  (slice(hh, h), slice(0, hw)), (slice(hh, h), slice(hw, w)))):
        out[:, :, ys, xs] = pool[idx[:, k], :, ys, xs]
    return out
