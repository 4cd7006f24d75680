"""Scoring on a Ray cluster: `codream verifier run --ray-address ADDR|auto`.

The agent stays the only process that holds the key, keeps the state file and talks to the
chain; this backend only runs :func:`verifier.score.score` (fetch the bundle from IPFS by its
CID, validate, score) as Ray tasks, each asking for the resources one job needs (``threads``
CPUs, and one GPU with ``device="cuda"``). Ray retries a job whose worker dies (``max_retries``);
a job that *raises* is not retried by Ray: its exception comes back to the agent as a result,
which handles it exactly as it would in-process (a CID nobody serves yet is tried again later).

``ray`` is imported (``codream.cluster.connect``) when a backend is made: without
``--ray-address`` nothing imports it. Workers must be able to import this project (``pip install`` it on each
node, or a ``runtime_env`` with ``working_dir``; docs/scale-out.md).
"""
from __future__ import annotations

from codream.cluster import connect, job_resources, slots

from .score import BundleJob, TaskInputs, score

MAX_RETRIES = 3  # a job whose worker dies (killed, out of memory, node lost) is run again this often


def _run(fn, task: TaskInputs, job: BundleJob):
    """On a worker: one scoring job; an exception is returned, not raised (so Ray does not retry
    it as a crash, and the agent sees the real error)."""
    try:
        return fn(task, job)
    except Exception as exc:  # noqa: BLE001 (handed to the agent, which decides)
        return exc


class RayBackend:
    """Submit scoring jobs to a Ray cluster and collect their results as they finish.

    ``address``: a cluster (``ray://host:10001``, ``host:6379``), ``auto`` (the cluster this
    machine belongs to) or ``local`` (start one in this process: tests, a single big machine).
    If Ray is already initialised in this process it is used as it is. ``fn``: the function a
    job runs (default :func:`verifier.score.score`; tests wrap it)."""

    def __init__(self, address: str = "auto", threads: int | None = 1, device: str = "cpu",
                 max_retries: int = MAX_RETRIES, fn=score, init_kwargs: dict | None = None):
        self.ray = ray = connect(address, init_kwargs)
        self.fn = fn
        self.resources = job_resources(threads, device)
        self._remote = ray.remote(_run).options(max_retries=max_retries, **self.resources)
        self._inputs: dict[int, tuple] = {}  # id(TaskInputs) -> (inputs, ObjectRef): shipped once per task
        self._flight: dict = {}  # ObjectRef -> key
        self._keys: dict = {}    # key -> ObjectRef

    def _put(self, task: TaskInputs):
        hit = self._inputs.get(id(task))
        if hit is None or hit[0] is not task:
            hit = self._inputs[id(task)] = (task, self.ray.put(task))
            while len(self._inputs) > 8:
                self._inputs.pop(next(iter(self._inputs)))
        return hit[1]

    def submit(self, key, task: TaskInputs, job: BundleJob) -> None:
        """Send one job (the task's shared inputs go to the object store once)."""
        if key in self._keys:
            return
        ref = self._remote.remote(self.fn, self._put(task), job)
        self._flight[ref], self._keys[key] = key, ref

    def pending(self, key) -> bool:
        return key in self._keys

    def results(self, timeout: float = 1.0) -> list[tuple]:
        """(key, record or the exception the job raised) for every job finished within ``timeout``
        seconds (at least one when any finishes in time). A job whose worker died more than
        ``max_retries`` times comes back as its Ray error."""
        if not self._flight:
            return []
        done, _ = self.ray.wait(list(self._flight), num_returns=1, timeout=timeout)
        if done:  # and whatever else is ready now
            done, _ = self.ray.wait(list(self._flight), num_returns=len(self._flight), timeout=0)
        out = []
        for ref in done:
            key = self._flight.pop(ref)
            del self._keys[key]
            try:
                out.append((key, self.ray.get(ref)))
            except self.ray.exceptions.RayError as exc:  # retries used up (or the cluster lost it)
                out.append((key, exc))
        return out

    def wait_all(self, timeout: float | None = None) -> list[tuple]:
        """Every pending job's (key, result), waiting for all (the bench and tests)."""
        out = []
        while self._flight:
            got = self.results(timeout=timeout if timeout is not None else 3600)
            if not got and timeout is not None:
                break
            out += got
        return out

    def workers(self) -> int:
        """How many jobs the cluster can run at once (its CPUs, or GPUs, over one job's share)."""
        return slots(self.ray, self.resources)
