"""`codream bench ray-mining`: one pixel bundle dreamed in process and on a local Ray cluster with
1 and with 2 workers, side by side, repeated (the machine's other jobs come and go): seconds,
speed-up, parallel efficiency, and whether every run gave the in-process bundle's bytes."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import torch

from codream import spec as specmod
from codream.teachers import load_teachers
from miner.ray_backend import RayBackend
from codream.synthesis import DreamConfig, dream


def ray_mining(spec_path: Path, n: int = 512, batch: int = 64, steps: int | None = None, repeats: int = 3,
               seed: int = 0, log=print) -> dict:
    """Dream ``n`` dreams (shards of ``batch``) in process at one thread, then ``repeats`` times on
    1 and on 2 Ray workers (one thread per job) of a local 2-CPU cluster started here, alternately.
    The first Ray run (both workers start, import torch, load the teachers) is timed apart."""
    spec = specmod.load(spec_path)
    teachers = load_teachers(spec)
    cfg = DreamConfig.for_shape(spec.shape, seed=seed, batch=batch)
    cfg.steps = steps or cfg.steps
    args = (teachers, n, spec.num_classes, spec.shape, spec.mean, spec.std, cfg)

    def digest(res) -> str:
        return hashlib.sha256(res.images.numpy().tobytes() + res.labels.numpy().tobytes()).hexdigest()[:16]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        here = digest(dream(*args))
        in_process = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    log(f"in process, 1 thread: {in_process:.1f} s")
    t0 = time.perf_counter()
    two = RayBackend("local", threads=1, init_kwargs={"num_cpus": 2, "log_to_driver": False})
    init = time.perf_counter() - t0
    one = RayBackend("local", threads=1, max_in_flight=1)
    try:
        t0 = time.perf_counter()
        same = [digest(dream(*args, run_shards=two.run_shards)) == here]
        first = time.perf_counter() - t0
        runs = {"1": [], "2": []}
        for r in range(repeats):
            for workers, backend in (("1", one), ("2", two)):
                t0 = time.perf_counter()
                same.append(digest(dream(*args, run_shards=backend.run_shards)) == here)
                runs[workers].append(round(time.perf_counter() - t0, 2))
                log(f"repeat {r}: {workers} worker(s) {runs[workers][-1]:.1f} s")
    finally:
        two.ray.shutdown()
    pairs = [(a / b) for a, b in zip(runs["1"], runs["2"])]
    best1, best2 = min(runs["1"]), min(runs["2"])
    return {"n": n, "batch": batch, "shards": -(-n // batch), "steps": cfg.steps, "threads_per_job": 1,
            "in_process_seconds": round(in_process, 2), "ray_init_seconds": round(init, 2),
            "first_ray_run_seconds": round(first, 2), "seconds": runs,
            "speedup_per_repeat": [round(p, 3) for p in pairs],
            "efficiency_per_repeat": [round(p / 2, 3) for p in pairs],
            "efficiency_of_best_times": round(best1 / best2 / 2, 3),
            "same_bytes_as_in_process": all(same), "runs_compared": len(same)}
