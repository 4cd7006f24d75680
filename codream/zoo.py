"""Model zoo: small BatchNorm classifiers built from plain config, stored as safetensors.

A model config is plain JSON: ``{"arch": "digits_cnn", "num_classes": 10,
"in_channels": 1, "image_size": 8, "width": 32}``. Architectures: ``digits_cnn`` (8×8
digits), ``small_cnn`` (a cheap student for 28×28 and up), ``resnet8`` (the MNIST
reference teacher), ``resnet18``/``resnet34`` and ``wrn`` (CIFAR). Weights are a safetensors file
whose metadata carries that config; loading checks every tensor name and shape
against the config before anything runs, and never unpickles.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn


class ModelConfigError(ValueError):
    """A model config or weights file is wrong; the message says which field and why."""


def _conv_bn(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class DigitsCNN(nn.Module):
    """A 3-conv BN-CNN for 8x8 inputs (scikit-learn digits)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 32):
        super().__init__()
        w = width
        self.features = nn.Sequential(*_conv_bn(in_channels, w), *_conv_bn(w, 2 * w), nn.MaxPool2d(2),
                                      *_conv_bn(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class SmallCNN(nn.Module):
    """conv-BN-ReLU, max-pool, conv-BN-ReLU, max-pool, conv-BN-ReLU, global average: a student
    whose convolutions run at 1, 1/4 and 1/16 of the input's pixels (cheap to distil)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 16):
        super().__init__()
        w = width
        self.features = nn.Sequential(*_conv_bn(in_channels, w), nn.MaxPool2d(2), *_conv_bn(w, 2 * w),
                                      nn.MaxPool2d(2), *_conv_bn(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1),
                                      nn.Flatten())
        self.head = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class DigitsDeep(nn.Module):
    """A narrower, deeper BN-CNN for 8x8 inputs: five convs, a stride-2 conv instead of
    max-pooling. A second, different architecture for the same inputs (co-owned tasks
    bring heterogeneous teachers)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 16):
        super().__init__()
        w = width
        self.features = nn.Sequential(*_conv_bn(in_channels, w), *_conv_bn(w, w), *_conv_bn(w, 2 * w, stride=2),
                                      *_conv_bn(2 * w, 2 * w), *_conv_bn(2 * w, 2 * w),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(2 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, dropout: float = 0.0, preact: bool = False):
        super().__init__()
        self.preact = preact
        self.bn1 = nn.BatchNorm2d(cin if preact else cout)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Conv2d(cin, cout, 1, stride, bias=False)
            self.short_bn = nn.Identity() if preact else nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preact:  # WRN style: BN-ReLU-conv
            o = torch.relu(self.bn1(x))
            s = x if self.short is None else self.short(o)
            o = self.conv2(self.drop(torch.relu(self.bn2(self.conv1(o)))))
            return o + s
        o = torch.relu(self.bn1(self.conv1(x)))
        o = self.bn2(self.conv2(self.drop(o)))
        s = x if self.short is None else self.short_bn(self.short(x))
        return torch.relu(o + s)


class CifarResNet(nn.Module):
    """ResNet-8/18/34 for small inputs (3x3 stem, no max-pool), as in the DeepInversion papers."""

    def __init__(self, blocks: list[int], num_classes: int = 10, in_channels: int = 3, width: int = 64):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(in_channels, width))
        layers, cin = [], width
        for i, n in enumerate(blocks):
            cout = width * 2 ** i
            for j in range(n):
                layers.append(BasicBlock(cin, cout, 2 if (j == 0 and i > 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class WideResNet(nn.Module):
    """WRN-depth-k (pre-activation), e.g. WRN-16-2 / WRN-40-2."""

    def __init__(self, depth: int = 16, widen: int = 2, num_classes: int = 10, in_channels: int = 3,
                 dropout: float = 0.0):
        super().__init__()
        if (depth - 4) % 6:
            raise ModelConfigError(f"wrn: depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        layers, cin = [], widths[0]
        for i, cout in enumerate(widths[1:]):
            for j in range(n):
                layers.append(BasicBlock(cin, cout, 2 if (j == 0 and i > 0) else 1, dropout, preact=True))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(cin)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.layers(self.stem(x))))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


# name -> (builder, allowed hyper-parameters, minimum image size)
ARCHS: dict[str, tuple[Callable[..., nn.Module], set[str], int]] = {
    "digits_cnn": (lambda c, k, **h: DigitsCNN(k, c, **h), {"width"}, 4),
    "small_cnn": (lambda c, k, **h: SmallCNN(k, c, **h), {"width"}, 8),
    "resnet8": (lambda c, k, **h: CifarResNet([1, 1, 1], k, c, **h), {"width"}, 8),
    "digits_deep": (lambda c, k, **h: DigitsDeep(k, c, **h), {"width"}, 4),
    "resnet18": (lambda c, k, **h: CifarResNet([2, 2, 2, 2], k, c, **h), {"width"}, 16),
    "resnet34": (lambda c, k, **h: CifarResNet([3, 4, 6, 3], k, c, **h), {"width"}, 16),
    "wrn": (lambda c, k, **h: WideResNet(num_classes=k, in_channels=c, **h), {"depth", "widen", "dropout"}, 16),
}


def check_config(cfg: dict) -> dict:
    """Validate a model config; return it with defaults filled. Raises ModelConfigError."""
    if not isinstance(cfg, dict):
        raise ModelConfigError("model config must be a JSON object")
    arch = cfg.get("arch")
    if arch not in ARCHS:
        raise ModelConfigError(f"arch: unknown architecture {arch!r}; known: {', '.join(sorted(ARCHS))}")
    _, allowed, min_size = ARCHS[arch]
    for key in ("num_classes", "in_channels", "image_size"):
        v = cfg.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ModelConfigError(f"{key}: must be a positive integer, got {v!r}")
    if cfg["num_classes"] < 2:
        raise ModelConfigError("num_classes: must be at least 2")
    if cfg["image_size"] < min_size:
        raise ModelConfigError(f"image_size: {arch} needs inputs of at least {min_size}x{min_size}, "
                               f"got {cfg['image_size']}")
    extra = set(cfg) - {"arch", "num_classes", "in_channels", "image_size"}
    unknown = extra - allowed
    if unknown:
        raise ModelConfigError(f"{arch}: unknown hyper-parameter(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    return dict(cfg)


def build_model(cfg: dict) -> nn.Module:
    cfg = check_config(cfg)
    builder, allowed, _ = ARCHS[cfg["arch"]]
    hp = {k: cfg[k] for k in allowed if k in cfg}
    try:
        return builder(cfg["in_channels"], cfg["num_classes"], **hp)
    except (TypeError, ValueError) as exc:
        raise ModelConfigError(f"{cfg['arch']}: bad hyper-parameters {hp}: {exc}") from None


def save_model(model: nn.Module, cfg: dict, path: str | Path) -> Path:
    """Write weights as safetensors (config in metadata) and ``<path>.json`` beside them."""
    path = Path(path)
    cfg = check_config(cfg)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"codream_model_config": json.dumps(cfg, sort_keys=True)})
    path.with_suffix(path.suffix + ".json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
    return path


def load_model(path: str | Path, cfg: dict | None = None) -> tuple[nn.Module, dict]:
    """Load safetensors weights into the model described by ``cfg`` (default: the file's own
    metadata). Every key and shape is checked first; the model comes back in eval mode."""
    path = Path(path)
    try:
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelConfigError(f"{path}: not a readable safetensors file ({exc})") from None
    if cfg is None:
        if "codream_model_config" not in meta:
            raise ModelConfigError(f"{path}: no model config given and none in the file's metadata")
        cfg = json.loads(meta["codream_model_config"])
    model = build_model(cfg)
    state = load_file(str(path))
    want = model.state_dict()
    missing = sorted(set(want) - set(state))
    extra = sorted(set(state) - set(want))
    if missing or extra:
        raise ModelConfigError(f"{path}: weights do not match {cfg['arch']} config: missing {missing[:5]}, "
                               f"unexpected {extra[:5]}")
    for k, v in want.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise ModelConfigError(f"{path}: {k} has shape {tuple(state[k].shape)}, "
                                   f"config {cfg} needs {tuple(v.shape)}")
    model.load_state_dict(state)
    return model.eval(), cfg


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode and no weight gradients (saves about a third of the backward pass)."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
