"""Eval sets: what a task owner keeps secret until the reveal, and verifiers score on.
One safetensors file: ``images`` uint8 [N, C, H, W], ``labels`` int64 [N].

A co-owned task has one eval set per owner; verifiers score on the union of the revealed
ones (``load_eval_union``)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .spec import TaskSpec

FORMAT = "codream.eval/1"


class EvalSetError(ValueError):
    """An eval set is unusable; the message says why."""


def save_eval_set(path: str | Path, images: torch.Tensor, labels: torch.Tensor) -> Path:
    save_file({"images": images.contiguous(), "labels": labels.to(torch.int64).contiguous()}, str(path),
              metadata={"format": FORMAT})
    return Path(path)


def load_eval_set(path: str | Path, spec: TaskSpec) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        t = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise EvalSetError(f"{path}: not a readable safetensors eval set ({exc})") from None
    x, y = t.get("images"), t.get("labels")
    if x is None or y is None or x.dtype != torch.uint8 or tuple(x.shape[1:]) != spec.shape or len(x) != len(y):
        raise EvalSetError(f"{path}: eval set must hold uint8 images [N,{','.join(map(str, spec.shape))}] "
                           "and N int64 labels")
    if int(y.min()) < 0 or int(y.max()) >= spec.num_classes:
        raise EvalSetError(f"{path}: labels outside 0..{spec.num_classes - 1}")
    return x, y


def union_eval_sets(sets: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """The union of eval sets, concatenated in the order given (owner order). An image that an
    earlier set already holds with the same label is left out, so an owner who reveals a copy
    of another owner's images adds no weight to them; repeats within one set are kept as that
    owner revealed them (one set's union is that set, unchanged). The same image under two
    different labels stays twice: each owner's label counts."""
    if not sets:
        raise EvalSetError("no eval set to take the union of")
    seen: set[bytes] = set()
    xs, ys = [], []
    for x, y in sets:
        flat = x.reshape(len(x), -1).numpy()
        keys = [hashlib.blake2b(flat[i].tobytes() + int(y[i]).to_bytes(8, "little", signed=True),
                                digest_size=16).digest() for i in range(len(x))]
        keep = torch.tensor([k not in seen for k in keys], dtype=torch.bool)
        seen.update(keys)
        xs.append(x[keep])
        ys.append(y[keep])
    return torch.cat(xs), torch.cat(ys)


def load_eval_union(paths: Sequence[str | Path], spec: TaskSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Load every revealed eval set of a task (in owner-index order; owners who did not reveal
    are left out) and return their union (``union_eval_sets``): what verifiers score on."""
    if not paths:
        raise EvalSetError("no revealed eval set: a task is scored on at least one")
    return union_eval_sets([load_eval_set(p, spec) for p in paths])
