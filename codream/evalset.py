"""Eval sets: what a task owner keeps secret until the reveal, and verifiers score on.
One safetensors file: ``images`` uint8 [N, C, H, W], ``labels`` int64 [N]."""
from __future__ import annotations

from pathlib import Path

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
