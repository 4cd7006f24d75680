"""How a task owner behaves after funding a task. ``honest`` commits to its real eval set,
declares the teachers' measured accuracy on it and reveals it on time; the others are
**test/demo adversaries** the adversarial round runs to show that an owner cannot get dreams for
free or profit from a failed or unjudged round (protocol v3: a faulty owner's contribution is
burned)."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from codream.chain import Chain
from codream.evalset import load_eval_set, save_eval_set
from codream.spec import load as load_spec
from ipfs import IpfsClient

from .tasks import declared_accuracy, reveal_eval


class OwnerStrategy:
    name = "strategy"
    demo_only = True

    def eval_path(self, task_dir: Path) -> Path:
        """The eval set the owner commits to when it funds the task."""
        return task_dir / "eval.safetensors"

    def accuracy_bps(self, task_dir: Path) -> int | None:
        """The accuracy it declares (None: measure the committed eval set, as an honest owner)."""
        return None

    def reveal(self, chain: Chain, ipfs: IpfsClient, task_id: int) -> str | None:
        return reveal_eval(chain, ipfs, task_id)


class Honest(OwnerStrategy):
    name, demo_only = "honest", False


class NeverReveals(OwnerStrategy):
    """Demo adversary: keeps the eval set secret (hoping to keep the dreams and the bounty)."""

    name = "never-reveals"

    def reveal(self, chain, ipfs, task_id):
        return None


class UnhostedEval(OwnerStrategy):
    """Demo adversary: commits to, and reveals, the CID of bytes it never publishes, so nobody can
    check or score on it (v1 paid such an owner more than its bounty; v3 burns its contribution)."""

    name = "unhosted-eval"

    def eval_path(self, task_dir: Path) -> Path:
        path = task_dir / "unhosted-eval.bin"
        path.write_bytes(os.urandom(4096))
        return path

    def accuracy_bps(self, task_dir: Path) -> int | None:
        return 9000  # nothing to measure: it never publishes the bytes

    def reveal(self, chain, ipfs, task_id):
        return reveal_eval(chain, ipfs, task_id, publish=False)


class ShuffledLabels(OwnerStrategy):
    """Demo adversary: commits to its eval images with shuffled labels (every dream then scores
    ~0 on it) and declares the accuracy the real labels would give; the verifiers' accuracy check
    measures ~chance and calls the set FAILED (v2 refunded such an owner and gave it the dreams)."""

    name = "shuffled-labels"

    def eval_path(self, task_dir: Path) -> Path:
        spec = load_spec(task_dir / "spec.json")
        x, y = load_eval_set(task_dir / "eval.safetensors", spec)
        path = task_dir / "shuffled-eval.safetensors"
        save_eval_set(path, x, y[torch.randperm(len(y), generator=torch.Generator().manual_seed(1))])
        return path

    def accuracy_bps(self, task_dir: Path) -> int | None:
        return declared_accuracy(load_spec(task_dir / "spec.json"), task_dir / "eval.safetensors")


STRATEGIES = {cls.name: cls for cls in (Honest, NeverReveals, UnhostedEval, ShuffledLabels)}
