"""Mining on a Ray cluster: `codream miner run --ray-address ADDR|auto|local` (and `miner dream`).

A pixel synthesis is a list of independent shards (``synthesis.DreamTask``: shard i's labels
and random stream come from the seed and i only); this backend runs each shard
(``synthesis.dream_shard``) as a Ray task that asks for ``threads`` CPUs, or one GPU with
``device="cuda"``, and hands the results back in shard order, so the bundle is the same bytes as
in this process and whatever the number of workers (for the same device and threads per shard).
The agent keeps the key, the state file and the chain; it drops its bundle's repeats and tops up
(``methods.keep_new``, whose top-up rounds are sharded the same way), commits and reveals as
without Ray.

Ray retries a shard whose worker dies (``max_retries``); a shard that *raises* is not retried: its
exception comes back and is raised in the agent, as it would be in-process. ``ray`` is imported
(``codream.cluster.connect``) when a backend is made: without ``--ray-address`` nothing imports it.
Workers must be able to import this project (docs/scale-out.md).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from codream.agent import TaskError
from codream.cluster import connect, job_resources, slots

from codream import arithmetic
from codream.synthesis import DreamResult, DreamTask, dream_shard

MAX_RETRIES = 3  # a shard whose worker dies (killed, out of memory, node lost) is run again this often


class ShardLost(TaskError):
    """A shard's worker died more often than ``max_retries`` (or the cluster lost it): the agent
    backs off and dreams again later."""


def _run(fn, task: DreamTask, index: int, device: str, threads: int, expected: str | None = None):
    """On a worker: one shard with ``threads`` torch threads; an exception is returned, not raised
    (so Ray does not retry it as a crash, and the agent sees the real error). ``expected``: the
    agent's arithmetic canary (fp32 CPU shards), which the worker must share, or the bundle would
    depend on which machine dreamed which shard (and a receipt would not replay)."""
    try:
        torch.set_num_threads(threads)
        if expected is not None:
            arithmetic.check(f"cannot dream shard {index} on this Ray worker in the agent's arithmetic", expected)
        return fn(task, index, device)
    except Exception as exc:  # noqa: BLE001 (raised again in the agent)
        return exc


class RayBackend:
    """Run a synthesis's shards on a Ray cluster (``run_shards``: a ``synthesis.ShardRunner``).

    ``address``: a cluster (``ray://host:10001``, ``host:6379``), ``auto`` (the cluster this
    machine belongs to) or ``local`` (start one in this process: tests, a single big machine). If
    Ray is already initialised in this process it is used as it is. ``fn(task, index, device)``:
    what a job runs (default :func:`synthesis.dream_shard`; tests wrap it). ``max_in_flight``: at
    most this many shards at once (default: all; the cluster's free resources bound them anyway)."""

    def __init__(self, address: str = "auto", threads: int | None = 1, device: str = "cpu",
                 max_retries: int = MAX_RETRIES, fn: Callable = dream_shard, init_kwargs: dict | None = None,
                 max_in_flight: int | None = None):
        if str(device) not in ("cpu", "cuda"):
            raise ValueError(f"device {device!r}: cpu or cuda (what each shard asks the cluster for)")
        self.ray = ray = connect(address, init_kwargs)
        self.fn, self.threads, self.device, self.max_in_flight = fn, threads or 1, str(device), max_in_flight
        self.resources = job_resources(self.threads, self.device)
        self._remote = ray.remote(_run).options(max_retries=max_retries, **self.resources)

    def run_shards(self, task: DreamTask, on_shard: Callable[[], None] | None = None) -> Sequence[DreamResult]:
        """Every shard of ``task`` as a job (the task's teachers and recipe go to the object store
        once; at most ``max_in_flight`` jobs at a time when set), their results in shard order.
        Raises the first error a shard raised (the rest are cancelled), or ``ShardLost`` when a
        shard's retries are used up."""
        shared = self.ray.put(task)
        expected = arithmetic.digest() if torch.device(self.device).type == "cpu" and not task.cfg.amp else None
        todo = list(range(task.shards))
        out: list = [None] * len(todo)
        flight: dict = {}  # ObjectRef -> shard index
        limit = self.max_in_flight or len(todo)
        try:
            while todo or flight:
                while todo and len(flight) < limit:
                    i = todo.pop(0)
                    flight[self._remote.remote(self.fn, shared, i, self.device, self.threads, expected)] = i
                (ref,), _ = self.ray.wait(list(flight), num_returns=1)
                i = flight.pop(ref)
                try:
                    got = self.ray.get(ref)
                except self.ray.exceptions.RayError as exc:  # retries used up (or the cluster lost it)
                    raise ShardLost(f"shard {i} of {task.shards}: {exc}") from exc
                if isinstance(got, Exception):
                    raise got
                out[i] = got
                if on_shard:
                    on_shard()
        finally:
            for ref in flight:  # after an error: the rest would be wasted work
                self.ray.cancel(ref)
        return out

    def workers(self) -> int:
        """How many shards the cluster can run at once (its CPUs, or GPUs, over one shard's share)."""
        return slots(self.ray, self.resources)
