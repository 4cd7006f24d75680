"""`codream bench network`: the workload model of a task (issue 27), with what it can measure here.

Per verifier (stake share p): its seats are a stake-weighted draw with replacement, so each of
the K seats is its own with probability p; submission s is scored by the r seats s, s+1, …,
s+r-1 (mod K), so the verifier scores s (once, whatever number of its seats score it) with
probability 1 − (1 − p)^r: bundles = N · (1 − (1 − p)^r), expected. Its score window is the
contract's: max(the task's score-commit window, minWindow + secondsPerBundle · r · ⌈N/K⌉).
On W workers of parallel efficiency e (measured: 1 vs 2 Ray workers on this machine) it takes
warm-up + bundles · S / (W · e) seconds (S: one bundle's score time; warm-up: a worker's first
score, which also computes the task's noise baseline); the workers needed are the fewest W
for which that time × margin fits the window.

Per task: mining = N · T (T: one bundle's synthesis time); verification = every seat's scoring
r · N · S (the overhead ratio the issue asks for: r · S / T), and what the verifiers really
compute when seats of one verifier share bundles (Σ over verifiers of their bundles · S, for
the stake distribution given).
"""
from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from codream import bundle as bundlemod, spec as specmod
from codream.devchain import DEVNET_CHAIN_ID, free_port
from codream.evalset import load_eval_set
from codream.chain import Chain, ChainConfig, load_account
from codream.protocol import PRODUCTION_PARAMS, Phase, miner_commitment
from codream.teachers import load_teachers
from ipfs import IpfsClient
from miner.synthesis import DreamConfig, dream
from owner.tasks import create_task, reveal_eval
from verifier.agent import VerifierAgent
from verifier.ray_backend import RayBackend
from verifier.score import BundleJob, StaticIndex, TaskInputs, clear_memo, score

from .devnet import down, up

DEFAULT_SCORE_COMMIT_WINDOW = 3600  # `codream task create --windows` default


def unique_share(p: float, r: int) -> float:
    """The share of a task's submissions a verifier with stake share p scores (see the module doc)."""
    return 1 - (1 - p) ** r


def score_window(n: int, k: int, r: int, task_window: int = DEFAULT_SCORE_COMMIT_WINDOW, params=PRODUCTION_PARAMS) -> int:
    """The score-commit window the contract sets at the draw (CoDreamMarket.drawCommittee)."""
    return max(task_window, params.min_window + params.seconds_per_bundle * r * math.ceil(n / k))


def finish_seconds(bundles: float, score_s: float, workers: int, efficiency: float, warmup_s: float) -> float:
    return warmup_s + bundles * score_s / (workers * efficiency)


def workers_needed(bundles: float, score_s: float, window: float, efficiency: float, warmup_s: float,
                   margin: float) -> int | None:
    """The fewest workers that finish within window / margin (None: no number does: the warm-up alone
    is too long)."""
    budget = window / margin - warmup_s
    if budget <= 0:
        return None
    return max(1, math.ceil(bundles * score_s / (efficiency * budget)))


def model(n: int, k: int, r: int, share: float, verifiers: int, score_s: float, synth_s: float,
          efficiency: float, warmup_s: float, margin: float, task_window: int, predict=(1, 2, 8, 64, 512)) -> dict:
    """The workload model's numbers (see the module doc); ``verifiers``: how many equal verifiers
    hold the rest of the stake (for the network's deduplicated total)."""
    window = score_window(n, k, r, task_window)
    efficiency = min(efficiency, 1.0)  # a measured e > 1 is load noise on a shared machine: never plan on it
    bundles = n * unique_share(share, r)
    need = workers_needed(bundles, score_s, window, efficiency, warmup_s, margin)
    others = [(1 - share) / verifiers] * verifiers if verifiers else []
    dedup = sum(n * unique_share(p, r) for p in [share] + others) * score_s
    seats_scoring, mining = r * n * score_s, n * synth_s
    return {
        "inputs": {"n": n, "k": k, "r": r, "stake_share": share, "other_verifiers": verifiers,
                   "score_seconds": round(score_s, 3), "synthesis_seconds": round(synth_s, 3),
                   "efficiency": round(efficiency, 3), "worker_warmup_seconds": round(warmup_s, 2), "margin": margin,
                   "task_score_commit_window": task_window},
        "verifier": {"seats_expected": round(share * k, 2), "bundles_per_seat": round(r * n / k, 1),
                     "bundles_to_score": round(bundles), "hours_on_one_worker": round(bundles * score_s / 3600, 2),
                     "score_window_hours": round(window / 3600, 2), "workers_needed": need,
                     "hours_with_workers_needed": round(finish_seconds(bundles, score_s, need, efficiency, warmup_s)
                                                        / 3600, 2) if need else None,
                     "predicted_hours": {str(w): round(finish_seconds(bundles, score_s, w, efficiency, warmup_s)
                                                       / 3600, 3) for w in predict}},
        "task": {"mining_hours": round(mining / 3600, 1), "all_seats_scoring_hours": round(seats_scoring / 3600, 1),
                 "verification_overhead": round(seats_scoring / mining, 3),
                 "deduplicated_scoring_hours": round(dedup / 3600, 1),
                 "deduplicated_overhead": round(dedup / mining, 3)},
    }


def measure(task_dir: Path, bundle_path: Path, ray_jobs: int, synth_images: int) -> dict:
    """On this machine: one bundle's score time in-process (after a first, warm-up score), the
    synthesis time (``synth_images`` dreams with the miner's tuned recipe, scaled to the bundle's
    size), and ``ray_jobs`` scoring jobs on a local Ray cluster of 1 CPU, then of 2 CPUs."""
    spec = specmod.load(next(task_dir.glob("spec.json")))
    teachers, ev = load_teachers(spec), load_eval_set(task_dir / "eval.safetensors", spec)
    data = bundle_path.read_bytes()
    try:
        images, header = bundlemod.read(data)
        meta = header.metadata
        binding = bundlemod.Binding(int(meta["chain_id"]), meta["contract"], int(meta["task_id"]), meta["miner"])
    except (bundlemod.BundleError, KeyError, ValueError):  # plain safetensors of `images` (no binding): bind them here
        images = load_file(str(bundle_path))["images"]
        binding = bundlemod.Binding(DEVNET_CHAIN_ID, "0x" + "ab" * 20, 1, "0x" + "cd" * 20)
        data = bundlemod.to_bytes(images, binding)
    task = TaskInputs(spec, ev, StaticIndex([]), threads=1)
    out = {"task": str(task_dir), "bundle": str(bundle_path), "images": len(images), "threads": 1}
    t0 = time.perf_counter()
    clear_memo()
    score(task, BundleJob(data=data, binding=binding, seed=1), teachers=teachers)  # timed only: the first score pays the warm-up
    t1 = time.perf_counter()
    clear_memo()
    again = score(task, BundleJob(data=data, binding=binding, seed=2), teachers=teachers)
    t2 = time.perf_counter()
    out.update(first_score_seconds=round(t1 - t0, 2), score_seconds=round(t2 - t1, 2), verdict=again["verdict"],
               score_bps=again["score_bps"])
    if synth_images:
        torch.manual_seed(0)
        t0 = time.perf_counter()
        dream(teachers, synth_images, spec.num_classes, spec.shape, spec.mean, spec.std, DreamConfig.for_shape(spec.shape))
        took = time.perf_counter() - t0
        out.update(synthesis_images=synth_images, synthesis_seconds_measured=round(took, 2),
                   synthesis_seconds=round(took * len(images) / synth_images, 2))
    if ray_jobs:
        out["ray"] = r = _ray_scaling(task, data, binding, ray_jobs)
        # a fresh worker's start (imports, teachers, the baseline unless cached): what 1 worker took
        # beyond its jobs at the in-process score time
        r["worker_warmup_seconds"] = round(max(0.0, r["1"]["seconds"] - ray_jobs * out["score_seconds"]), 2)
    return out


def _ray_scaling(task: TaskInputs, data: bytes, binding, jobs: int) -> dict:
    """The same ``jobs`` scoring jobs (seeds 1..jobs) on a fresh local cluster of 1, then 2 CPUs."""
    import ray  # only here: `codream bench network` without --ray-jobs does not need Ray

    res = {}
    for cpus in (1, 2):
        t0 = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        init_s = time.perf_counter() - t0
        backend = RayBackend("local", threads=1)
        t0 = time.perf_counter()
        for s in range(1, jobs + 1):
            backend.submit(s, task, BundleJob(data=data, binding=binding, seed=s))
        done = backend.wait_all()
        took = time.perf_counter() - t0
        ray.shutdown()
        errors = [str(v) for _, v in done if isinstance(v, Exception)]
        if errors:
            raise RuntimeError(f"a Ray job failed: {errors[0]}")
        res[str(cpus)] = {"workers": cpus, "jobs": jobs, "seconds": round(took, 2), "ray_init_seconds": round(init_s, 2),
                          "scores": sorted(v["score_bps"] for _, v in done)}
    speedup = res["1"]["seconds"] / res["2"]["seconds"]
    return {**res, "speedup_2_vs_1": round(speedup, 3), "efficiency": round(speedup / 2, 3),
            "scores_equal": res["1"]["scores"] == res["2"]["scores"]}


def devnet_round(task_dir: Path, images: torch.Tensor, submissions: int, workers: int) -> dict:
    """A measured round on a fresh devnet: ``submissions`` bundles (``images`` split evenly) from
    as many miners, one verifier holding all K = r = 5 seats (it scores every bundle once) that
    scores on a local Ray cluster of ``workers`` CPUs. Returns the agent's scoring wall time (from
    the end of the reveal window to its last score) and what the round needs for the model."""
    import ray  # only here (see _ray_scaling)

    eth, bond = 10**18, 10**16
    a, i = free_port(), free_port()
    st = up(a, i)
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        rpc, api = st["anvil"]["rpc_url"], st["ipfs"]["api"]
        owner = Chain(ChainConfig(rpc), load_account("dev:0"))
        ipfs = IpfsClient(api)
        agent = VerifierAgent(Chain(ChainConfig(rpc), load_account("dev:9")), ipfs, eth, verbose=False,
                              backend=RayBackend("local", threads=1), backend_wait=0.5)
        agent.step()
        owner.increase_time(owner.call("WARMUP", on="registry") + 1)
        owner.mine()
        agent.step()
        tid = create_task(owner, ipfs, task_dir, eth, bond, 5, 5, [3600] * 5, 1000)["task_id"]
        parts, subs = images.chunk(submissions), []
        for m, part in enumerate(parts):
            miner = Chain(ChainConfig(rpc), load_account(f"dev:{m + 1}"))
            data = bundlemod.to_bytes(part, bundlemod.Binding(owner.chain_id, owner.address, tid, miner.account.address))
            cid, salt = ipfs.add_bytes(data), bytes([m + 1]) * 32
            miner.send("commit", tid, miner_commitment(cid, salt, miner.account.address, tid, miner.chain_id,
                                                       miner.address), value=bond)
            subs.append((miner, cid, salt))
        owner.increase_time(3601)
        reveal_eval(owner, ipfs, tid)

        def until(cond, limit=1800):
            deadline = time.monotonic() + limit
            while not cond():
                if time.monotonic() > deadline:
                    raise RuntimeError("devnet round: timed out")
                agent.step()
                owner.mine()
                time.sleep(0.3)

        until(lambda: owner.phase(tid) >= Phase.REVEAL)
        for j, (miner, cid, salt) in enumerate(subs):
            miner.send("reveal", tid, j, cid, salt)
        owner.increase_time(3601)
        t0 = time.perf_counter()
        until(lambda: agent.state.task(tid)["stage"] not in ("new", "drawn", "seated"))
        took = time.perf_counter() - t0
        scores = agent.state.task(tid)["scores"]
        return {"submissions": submissions, "images_per_bundle": len(parts[0]), "workers": workers,
                "scoring_seconds": round(took, 2), "stage": agent.state.task(tid)["stage"],
                "scores": [scores[str(s)]["score"] for s in range(submissions)]}
    finally:
        ray.shutdown()
        down(a, i)


def validate_round(task_dir: Path, bundle_path: Path, submissions: int, ray_jobs: int) -> dict:
    """The model against a devnet round: measure one of the round's bundles (score time, warm-up,
    and 1 vs 2 Ray workers on ``ray_jobs`` jobs), predict the verifier's scoring time on 2 workers
    (it holds every seat: it scores each submission once), then run the round and compare."""
    try:
        images = bundlemod.read(bundle_path.read_bytes())[0]
    except bundlemod.BundleError:
        images = load_file(str(bundle_path))["images"]
    part = images.chunk(submissions)[0]
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one.safetensors"
        one.write_bytes(bundlemod.to_bytes(part, bundlemod.Binding(DEVNET_CHAIN_ID, "0x" + "ab" * 20, 1,
                                                                    "0x" + "cd" * 20)))
        m = measure(task_dir, one, max(ray_jobs, 2), 0)
    eff = m["ray"]["efficiency"]
    warm = m["ray"]["worker_warmup_seconds"]
    predicted = finish_seconds(submissions, m["score_seconds"], 2, eff, warm)
    got = devnet_round(task_dir, images, submissions, 2)
    return {"measured_inputs": m, "predicted_seconds": round(predicted, 1), "round": got,
            "error": round(got["scoring_seconds"] / predicted - 1, 3),
            "within_25_percent": abs(got["scoring_seconds"] / predicted - 1) <= 0.25}
