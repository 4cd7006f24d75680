"""Real data that installs offline (scikit-learn digits) and a CIFAR-10 loader.

Images are ``uint8 [N, C, H, W]`` everywhere outside the models; models see
``normalize(images)`` = ``(x/255 - mean) / std`` per channel.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DIGITS_MEAN, DIGITS_STD = (0.3051,), (0.3816,)
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


@dataclass
class Split:
    x: np.ndarray  # uint8 [N, C, H, W]
    y: np.ndarray  # int64 [N]


def digits(seed: int = 0, eval_fraction: float = 0.3) -> tuple[Split, Split]:
    """scikit-learn digits (1,797 8x8 images, 0..16) as uint8, with a fixed stratified split.

    The held-out part is the evaluation set a task owner keeps secret until the reveal.
    """
    # scikit-learn takes ~1.5 s to import and only this loader needs it
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    y = d.target.astype(np.int64)
    xtr, xev, ytr, yev = train_test_split(x, y, test_size=eval_fraction, random_state=seed, stratify=y)
    return Split(xtr, ytr), Split(xev, yev)


class _CifarUnpickler(pickle.Unpickler):
    """CIFAR's python batches are pickles: allow only the numpy/builtin types they contain."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"CIFAR batch refers to {module}.{name}: refusing to load it")
        return super().find_class(module, name)


def _cifar_batch(path: Path) -> Split:
    with open(path, "rb") as fh:
        d = _CifarUnpickler(fh, encoding="bytes").load()
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise ValueError(f"{path}: not a CIFAR-10 python batch (need b'data' and b'labels')")
    data = np.asarray(d[b"data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: data must be [N, 3072] uint8, got {data.shape}")
    labels = np.asarray(d[b"labels"], dtype=np.int64)
    if len(labels) != len(data):
        raise ValueError(f"{path}: {len(data)} images but {len(labels)} labels")
    return Split(data.reshape(-1, 3, 32, 32), labels)


def cifar10(root: str | Path) -> tuple[Split, Split]:
    """CIFAR-10 from the standard python-batches folder (``cifar-10-batches-py``)."""
    root = Path(root)
    if not (root / "test_batch").exists():
        raise FileNotFoundError(f"{root}: no test_batch; expected the cifar-10-batches-py folder")
    batches = sorted(root.glob("data_batch_*"))
    if not batches:
        raise FileNotFoundError(f"{root}: no data_batch_* files")
    parts = [_cifar_batch(p) for p in batches]
    train = Split(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]))
    return train, _cifar_batch(root / "test_batch")


def normalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 or [0,1] float images -> normalized float tensor."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s
