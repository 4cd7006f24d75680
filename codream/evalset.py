"""Eval sets: what a task owner keeps secret until the reveal, and verifiers check and score on.
One safetensors file: ``images`` uint8 [N, C, H, W], ``labels`` int64 [N].

Protocol v3: each owner declares, when it funds a task, the accuracy of the spec's teacher
ensemble on its own eval set; every seat checks each revealed set (``check_eval_set``) and votes
one eval verdict per owner; a seat scores on the union of the sets it judged OK
(``union_eval_sets``, owner order)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .data import normalize
from .protocol import BPS, EVAL_ACCURACY_TOLERANCE_BPS, EvalVerdict
from .spec import TaskSpec

FORMAT = "codream.eval/1"
MIN_EVAL_IMAGES = 10  # a set smaller than this cannot measure an accuracy within the tolerance


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


@dataclass(frozen=True)
class EvalCheck:
    """One seat's verdict on one owner's eval set: what it votes, the accuracy it measured (bps,
    None if it could not measure) and why."""

    verdict: EvalVerdict
    measured_bps: int | None
    reason: str

    @property
    def ok(self) -> bool:
        return self.verdict == EvalVerdict.OK


@torch.no_grad()
def ensemble_accuracy_bps(spec: TaskSpec, teachers, images: torch.Tensor, labels: torch.Tensor,
                          batch: int = 1024) -> int:
    """The accuracy of the teacher ensemble (mean of logits) on images, in bps (rounded down)."""
    correct = 0
    for t in teachers:
        t.eval()
    for i in range(0, len(images), batch):
        x = normalize(images[i:i + batch], spec.mean, spec.std)
        logits = torch.stack([t(x) for t in teachers]).mean(0)
        correct += int((logits.argmax(1) == labels[i:i + batch]).sum())
    return correct * BPS // max(1, len(images))


def check_eval_set(spec: TaskSpec, teachers, ev, declared_bps: int) -> EvalCheck:
    """The eval check of protocol v3 (docs/protocol-v3.md §5): ``ev`` is the loaded set
    (images, labels) or an EvalSetError / a string saying why it could not be loaded. OK iff it is
    well formed (``load_eval_set`` already checked format, shape and label range), holds at least
    MIN_EVAL_IMAGES images, the declared accuracy is at least twice chance, and the teacher
    ensemble's measured accuracy is within EVAL_ACCURACY_TOLERANCE_BPS of the declared one.
    Deterministic: honest seats agree."""
    if isinstance(ev, (str, Exception)):
        return EvalCheck(EvalVerdict.FAILED, None, f"unusable: {ev}")
    x, y = ev
    if len(x) < MIN_EVAL_IMAGES:
        return EvalCheck(EvalVerdict.FAILED, None, f"{len(x)} images, fewer than {MIN_EVAL_IMAGES}")
    chance = BPS // spec.num_classes
    if declared_bps < 2 * chance:
        return EvalCheck(EvalVerdict.FAILED, None, f"declared accuracy {declared_bps} bps is below twice chance "
                                                   f"({2 * chance} bps)")
    measured = ensemble_accuracy_bps(spec, teachers, x, y)
    if abs(measured - declared_bps) > EVAL_ACCURACY_TOLERANCE_BPS:
        return EvalCheck(EvalVerdict.FAILED, measured, f"the teachers score {measured} bps on it, the owner "
                                                       f"declared {declared_bps} bps (tolerance "
                                                       f"{EVAL_ACCURACY_TOLERANCE_BPS})")
    return EvalCheck(EvalVerdict.OK, measured, f"teachers {measured} bps, declared {declared_bps} bps")


def check_offline(spec: TaskSpec, teachers, ev: tuple[torch.Tensor, torch.Tensor],
                  declared_bps: int | None = None) -> tuple[EvalCheck, int]:
    """``check_eval_set`` for scoring offline (`codream verifier score`), where no owner declared
    an accuracy: judged as if the owner declared what the teachers measure (an honest owner does),
    so it fails when the set is too small or the teachers are below twice chance on it (shuffled
    or wrong labels): a score on such a set means little. Returns (the check, the measured bps)."""
    measured = ensemble_accuracy_bps(spec, teachers, *ev)
    return check_eval_set(spec, teachers, ev, measured if declared_bps is None else declared_bps), measured
