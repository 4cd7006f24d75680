"""How a task owner behaves after funding a task. ``honest`` reveals its eval set on time; the
others are **test/demo adversaries** the adversarial round runs to show that an owner cannot
get dreams for free or profit from a failed round."""
from __future__ import annotations

import os
from pathlib import Path

from codream.chain import Chain
from ipfs import IpfsClient

from .tasks import reveal_eval


class OwnerStrategy:
    name = "strategy"
    demo_only = True

    def eval_path(self, task_dir: Path) -> Path:
        """The eval set the owner commits to when it funds the task."""
        return task_dir / "eval.safetensors"

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
    score (v1 paid such an owner more than its bounty)."""

    name = "unhosted-eval"

    def eval_path(self, task_dir: Path) -> Path:
        path = task_dir / "unhosted-eval.bin"
        path.write_bytes(os.urandom(4096))
        return path

    def reveal(self, chain, ipfs, task_id):
        return reveal_eval(chain, ipfs, task_id, publish=False)


STRATEGIES = {cls.name: cls for cls in (Honest, NeverReveals, UnhostedEval)}
