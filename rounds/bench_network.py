"""`codream bench network`: the workload model of a task (issue 27), with what it can measure here.

Per verifier (stake share p): its seats are a stake-weighted draw with replacement, so each of
the K seats is its own with probability p; submission s is scored by the r seats s, s+1, …,
s+r-1 (mod K), so the verifier scores s (once, whatever number of its seats score it) with
probability 1 − (1 − p)^r: bundles = N · (1 − (1 − p)^r), expected. Its score window is the
contract's: max(the task's score-commit window, minWindow + secondsPerBundle · r · ⌈N/K⌉).
On W workers of parallel efficiency e (measured: 1 vs 2 Ray workers on this machine) it takes
A + max((warm-up + bundles · S / W) / e, N · P) seconds (S: one bundle's score time; warm-up: a
worker's start and first score, which also computes the task's noise baseline unless cached; A:
the agent's own work per task before it sends a job; P: its serial preparation of one revealed
submission's earlier reference, for all N: :func:`finish_seconds`); the workers needed are the
fewest W for which that time × margin fits the window. :func:`validate_round` checks it against
devnet rounds, its inputs measured on each round's own jobs right before it.

Per task: mining = N · T (T: one bundle's synthesis time); verification = every seat's scoring
r · N · S (the overhead ratio the issue asks for: r · S / T), and what the verifiers really
compute when seats of one verifier share bundles (Σ over verifiers of their bundles · S, for
the stake distribution given).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from codream import bundle as bundlemod, receipt as receipts, spec as specmod
from codream.devchain import DEVNET_CHAIN_ID, free_port
from codream.evalset import check_offline, load_eval_set
from codream.chain import Chain, ChainConfig, load_account
from codream.distill import torch_threads
from codream.novelty import reference
from codream.protocol import PRODUCTION_PARAMS, Phase, miner_commitment
from codream.spec import receipt_config
from codream.teachers import load_teachers
from ipfs import IpfsClient
from codream.synthesis import DreamConfig, dream
from owner.tasks import create_task, reveal_eval
from verifier.agent import VerifierAgent
from verifier.ray_backend import RayBackend
from verifier.score import BundleJob, StaticIndex, TaskInputs, baseline_accuracy, clear_memo, score

from .devnet import down, up

DEFAULT_SCORE_COMMIT_WINDOW = 3600  # `codream task create --windows` default


def unique_share(p: float, r: int) -> float:
    """The share of a task's submissions a verifier with stake share p scores (see the module doc)."""
    return 1 - (1 - p) ** r


def score_window(n: int, k: int, r: int, task_window: int = DEFAULT_SCORE_COMMIT_WINDOW, params=PRODUCTION_PARAMS) -> int:
    """The score-commit window the contract sets at the draw (CoDreamMarket.drawCommittee)."""
    return max(task_window, params.min_window + params.seconds_per_bundle * r * math.ceil(n / k))


def finish_seconds(bundles: float, score_s: float, workers: int, efficiency: float, warmup_s: float,
                   agent_s: float = 0.0, prep_s: float = 0.0, revealed: float = 0.0) -> float:
    """When a verifier's last score is in: its agent's own per-task work first (``agent_s``: the
    task's inputs and eval-set checks, before it sends a job), then each of W workers starts
    (``warmup_s``) and scores its share, all at efficiency e of a lone worker's speed; the agent
    meanwhile prepares each job's earlier references serially (``prep_s`` per revealed submission,
    ``revealed`` of them), which bounds the time from below however many workers there are."""
    return agent_s + max((warmup_s + bundles * score_s / workers) / efficiency, revealed * prep_s)


def workers_needed(bundles: float, score_s: float, window: float, efficiency: float, warmup_s: float,
                   margin: float, agent_s: float = 0.0, prep_s: float = 0.0, revealed: float = 0.0) -> int | None:
    """The fewest workers that finish within window / margin (None: no number does: the agent's
    own work or a worker's warm-up alone is too long)."""
    budget = window / margin - agent_s
    if budget <= 0 or revealed * prep_s > budget or warmup_s >= efficiency * budget:
        return None
    return max(1, math.ceil(bundles * score_s / (efficiency * budget - warmup_s)))


def model(n: int, k: int, r: int, share: float, verifiers: int, score_s: float, synth_s: float,
          efficiency: float, warmup_s: float, margin: float, task_window: int, predict=(1, 2, 8, 64, 512),
          agent_s: float = 0.0, prep_s: float = 0.0) -> dict:
    """The workload model's numbers (see the module doc); ``verifiers``: how many equal verifiers
    hold the rest of the stake (for the network's deduplicated total); ``agent_s``, ``prep_s``: the
    agent's own work (:func:`finish_seconds`; it prepares the earlier references of all N
    submissions, whichever of them it scores)."""
    window = score_window(n, k, r, task_window)
    efficiency = min(efficiency, 1.0)  # a measured e > 1 is load noise on a shared machine: never plan on it
    bundles = n * unique_share(share, r)
    agent = {"agent_s": agent_s, "prep_s": prep_s, "revealed": n}
    need = workers_needed(bundles, score_s, window, efficiency, warmup_s, margin, **agent)
    others = [(1 - share) / verifiers] * verifiers if verifiers else []
    dedup = sum(n * unique_share(p, r) for p in [share] + others) * score_s
    seats_scoring, mining = r * n * score_s, n * synth_s
    return {
        "inputs": {"n": n, "k": k, "r": r, "stake_share": share, "other_verifiers": verifiers,
                   "score_seconds": round(score_s, 3), "synthesis_seconds": round(synth_s, 3),
                   "efficiency": round(efficiency, 3), "worker_warmup_seconds": round(warmup_s, 2),
                   "agent_seconds": round(agent_s, 2), "reference_seconds": round(prep_s, 4), "margin": margin,
                   "task_score_commit_window": task_window},
        "verifier": {"seats_expected": round(share * k, 2), "bundles_per_seat": round(r * n / k, 1),
                     "bundles_to_score": round(bundles), "hours_on_one_worker": round(bundles * score_s / 3600, 2),
                     "agent_preparation_hours": round((agent_s + n * prep_s) / 3600, 3),
                     "score_window_hours": round(window / 3600, 2), "workers_needed": need,
                     "hours_with_workers_needed": round(finish_seconds(bundles, score_s, need, efficiency, warmup_s,
                                                                       **agent) / 3600, 2) if need else None,
                     "predicted_hours": {str(w): round(finish_seconds(bundles, score_s, w, efficiency, warmup_s,
                                                                      **agent) / 3600, 3) for w in predict}},
        "task": {"mining_hours": round(mining / 3600, 1), "all_seats_scoring_hours": round(seats_scoring / 3600, 1),
                 "verification_overhead": round(seats_scoring / mining, 3),
                 "deduplicated_scoring_hours": round(dedup / 3600, 1),
                 "deduplicated_overhead": round(dedup / mining, 3)},
    }


def images_for_overhead(images: int, overhead: float, goal: float) -> int:
    """The bundle size at which the verification overhead r · S / T falls to ``goal``, from one
    measured at ``images`` dreams: synthesis T grows with the dreams, the score S hardly does (its
    students train a fixed number of steps; only the novelty checks grow with the bundle, so this
    is a lower bound)."""
    return math.ceil(images * overhead / goal)


def measure(task_dir: Path, bundle_path: Path, ray_jobs: int, synth_images: int) -> dict:
    """On this machine: one bundle's score time in-process (after a first, warm-up score), the
    synthesis time (``synth_images`` dreams with the miner's tuned recipe, scaled to the bundle's
    size), and ``ray_jobs`` scoring jobs on a local Ray cluster of 1 CPU, then of 2 CPUs."""
    t0 = time.perf_counter()
    spec = specmod.load(next(task_dir.glob("spec.json")))
    teachers, ev = load_teachers(spec), load_eval_set(task_dir / "eval.safetensors", spec)
    check_offline(spec, teachers, ev)  # the agent's eval-set check
    agent_s = time.perf_counter() - t0
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
    ref_s = []  # what the agent prepares per revealed submission: the first call also pays lazy set-up
    for _ in range(4):
        t0 = time.perf_counter()
        reference("earlier_submission", "this bundle", images, spec)
        ref_s.append(time.perf_counter() - t0)
    out = {"task": str(task_dir), "bundle": str(bundle_path), "images": len(images), "threads": 1,
           "agent_seconds": round(agent_s, 3), "reference_seconds": round(statistics.median(ref_s[1:]), 4),
           "reference_seconds_spread": spread(ref_s[1:])}
    t0 = time.perf_counter()
    clear_memo()
    score(task, BundleJob(data=data, binding=binding, seed=1), teachers=teachers)  # timed only: the first score pays the warm-up
    t1 = time.perf_counter()
    clear_memo()
    again = score(task, BundleJob(data=data, binding=binding, seed=2), teachers=teachers)
    t2 = time.perf_counter()
    out.update(first_score_seconds=round(t1 - t0, 2), score_seconds=round(t2 - t1, 2), verdict=again["verdict"],
               score_bps=again["score_bps"], reasons=[r["code"] for r in again["reasons"]],
               receipt_replay_seconds=(again.get("receipt") or {}).get("seconds"))
    if synth_images:  # on one thread, as the score: the overhead compares the two
        torch.manual_seed(0)
        with torch_threads(1):
            t0 = time.perf_counter()
            dream(teachers, synth_images, spec.num_classes, spec.shape, spec.mean, spec.std,
                  DreamConfig.for_shape(spec.shape))
            took = time.perf_counter() - t0
        out.update(synthesis_images=synth_images, synthesis_threads=1, synthesis_seconds_measured=round(took, 2),
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


class _TimedBackend:
    """A scoring backend that notes when each job was sent and when its result came back (the
    agent sees the same backend interface: submit / pending / results)."""

    def __init__(self, backend):
        self.backend, self.t0 = backend, time.perf_counter()
        self.sent: dict = {}
        self.back: dict = {}

    def submit(self, key, task: TaskInputs, job: BundleJob) -> None:
        self.sent.setdefault(key, time.perf_counter() - self.t0)
        self.backend.submit(key, task, job)

    def pending(self, key) -> bool:
        return self.backend.pending(key)

    def results(self, timeout: float = 1.0) -> list[tuple]:
        out = self.backend.results(timeout)
        for key, _ in out:
            self.back[key] = time.perf_counter() - self.t0
        return out


def spread(values) -> dict:
    v = sorted(values)
    return {"min": round(v[0], 3), "median": round(statistics.median(v), 3), "max": round(v[-1], 3), "n": len(v)}


def round_jobs(task_dir: Path, parts: list, part_receipts_json: list | None = None) -> dict:
    """The jobs of a devnet round as its agent makes them, on this process, timed: the agent's own
    per-task work (the spec, its teachers, the eval set and its check: before any job is sent),
    each submission's earlier-submission reference (the agent builds them serially; job s carries
    those of submissions 0 … s−1) and the task's noise baseline (computed here once and cached on
    disk, as the round's workers then find it: ``baseline_seconds`` is what a worker on a fresh
    node would add to its warm-up)."""
    t0 = time.perf_counter()
    spec = specmod.load(next(task_dir.glob("spec.json")))
    teachers = load_teachers(spec)
    ev = load_eval_set(task_dir / "eval.safetensors", spec)
    check_offline(spec, teachers, ev)
    agent_s = time.perf_counter() - t0
    refs, prep = [], []
    for s, part in enumerate(parts):
        t0 = time.perf_counter()
        refs.append(reference("earlier_submission", f"submission {s}", part, spec))
        prep.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    baseline_accuracy(spec, teachers, ev, threads=1)
    base_s = time.perf_counter() - t0
    binding = bundlemod.Binding(DEVNET_CHAIN_ID, "0x" + "ab" * 20, 1, "0x" + "cd" * 20)
    jobs = [BundleJob(data=bundlemod.to_bytes(part, binding, part_receipts_json[s] if part_receipts_json else None),
                      binding=binding, earlier=tuple(refs[:s]), seed=s + 1)
            for s, part in enumerate(parts)]
    return {"task": TaskInputs(spec, ev, StaticIndex([]), threads=1), "jobs": jobs, "agent_seconds": agent_s,
            "reference_seconds": prep, "baseline_seconds": base_s}


def _ray_run(task: TaskInputs, jobs: list, workers: int) -> dict:
    """``jobs`` on a fresh local Ray cluster of ``workers`` CPUs: the wall time from the first
    submission to the last result, and each job's own time (its record's ``seconds``)."""
    import ray  # only here (see _ray_scaling)

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        timed = _TimedBackend(RayBackend("local", threads=1))
        for s, job in enumerate(jobs):
            timed.submit(s, task, job)
        got = []
        while len(got) < len(jobs):
            got += timed.results(timeout=60)
    finally:
        ray.shutdown()
    errors = [str(v) for _, v in got if isinstance(v, Exception)]
    if errors:
        raise RuntimeError(f"a Ray job failed: {errors[0]}")
    recs = dict(got)
    first = min(timed.back, key=timed.back.get)
    return {"workers": workers, "jobs": len(jobs), "seconds": round(max(timed.back.values()), 2),
            "first_result_seconds": round(timed.back[first], 2), "first_job": first,
            "job_seconds": [recs[s]["seconds"] for s in range(len(jobs))],
            "verdicts": [recs[s]["verdict"] for s in range(len(jobs))]}


def measure_round(task_dir: Path, parts: list, part_receipts_json: list | None = None) -> dict:
    """The model's inputs for a round of ``parts`` (one bundle each), measured the way the round
    uses them, right before it: the round's own jobs (its bundles, each with its earlier
    references) on a fresh local Ray cluster of 1 CPU, then of 2.

    S: the median job time on the lone worker, its first job left out (that one also pays the
    worker's start); warm-up: what the lone worker took beyond all jobs at S; efficiency: S over
    the median job time when 2 workers share the machine (per job, so one slow job or a slow start
    moves it little); the agent's own work from :func:`round_jobs`. The spread of each is given."""
    made = round_jobs(task_dir, parts, part_receipts_json)
    one = _ray_run(made["task"], made["jobs"], 1)
    two = _ray_run(made["task"], made["jobs"], 2)
    later = [t for s, t in enumerate(one["job_seconds"]) if s != one["first_job"]] or one["job_seconds"]
    s1 = statistics.median(later)
    s2 = statistics.median(two["job_seconds"])
    return {"score_seconds": round(s1, 3), "score_seconds_spread": spread(later),
            "worker_warmup_seconds": round(max(0.0, one["seconds"] - len(parts) * s1), 2),
            "efficiency": round(s1 / s2, 3), "job_seconds_on_2_workers_spread": spread(two["job_seconds"]),
            "efficiency_from_wall_times": round(one["seconds"] / (2 * two["seconds"]), 3),
            "agent_seconds": round(made["agent_seconds"], 3),
            "reference_seconds": round(statistics.median(made["reference_seconds"]), 4),
            "reference_seconds_spread": spread(made["reference_seconds"]),
            "baseline_seconds": round(made["baseline_seconds"], 2), "ray_1": one, "ray_2": two}


def predict_round(inputs: dict, submissions: int, workers: int) -> float:
    """The model's scoring time for a round of ``submissions`` that one verifier scores on
    ``workers`` workers, from :func:`measure_round`'s inputs (:func:`finish_seconds`: the agent's
    work, then the workers' warm-up and jobs at the measured efficiency; references serially)."""
    return finish_seconds(submissions, inputs["score_seconds"], workers, min(inputs["efficiency"], 1.0),
                          inputs["worker_warmup_seconds"], inputs["agent_seconds"], inputs["reference_seconds"],
                          submissions - 1)


def devnet_round(task_dir: Path, parts: list, workers: int, part_receipts_json: list | None = None) -> dict:
    """A measured round on a fresh devnet: one submission per part (``parts``: uint8 image
    tensors) from as many miners, one verifier holding all K = r = 5 seats (it scores every bundle
    once) that scores on a local Ray cluster of ``workers`` CPUs. Returns the agent's scoring wall
    time (from the end of the reveal window to its last score), when it sent its first job and got
    its first result, and each job's own time."""
    import ray  # only here (see _ray_scaling)

    eth, bond = 10**18, 10**16
    a, i = free_port(), free_port()
    try:
        st = up(a, i)  # inside: a failed deploy leaves nothing running
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        rpc, api = st["anvil"]["rpc_url"], st["ipfs"]["api"]
        owner = Chain(ChainConfig(rpc), load_account("dev:0"))
        ipfs = IpfsClient(api)
        timed = _TimedBackend(RayBackend("local", threads=1))
        agent = VerifierAgent(Chain(ChainConfig(rpc), load_account("dev:9")), ipfs, eth, verbose=False,
                              backend=timed, backend_wait=0.5)
        agent.step()
        owner.increase_time(owner.call("WARMUP", on="registry") + 1)
        owner.mine()
        agent.step()
        tid = create_task(owner, ipfs, task_dir, eth, bond, 5, 5, [3600] * 5, 1000)["task_id"]
        subs = []
        for m, part in enumerate(parts):
            miner = Chain(ChainConfig(rpc), load_account(f"dev:{m + 1}"))
            data = bundlemod.to_bytes(part, bundlemod.Binding(owner.chain_id, owner.address, tid,
                                                              miner.account.address),
                                      part_receipts_json[m] if part_receipts_json else None)
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
        t0, cpu0 = time.perf_counter(), time.process_time()
        until(lambda: agent.state.task(tid)["stage"] not in ("new", "drawn", "seated"))
        took, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        scores = agent.state.task(tid)["scores"]
        at = t0 - timed.t0
        return {"submissions": len(parts), "images_per_bundle": len(parts[0]), "workers": workers,
                "scoring_seconds": round(took, 2), "stage": agent.state.task(tid)["stage"],
                "agent_cpu_seconds": round(cpu, 2),  # the agent's process meanwhile (it shares the cores)
                "first_job_sent_seconds": round(min(timed.sent.values()) - at, 2),
                "first_result_seconds": round(min(timed.back.values()) - at, 2),
                "job_seconds": [scores[str(s)].get("seconds") for s in range(len(parts))],
                "baseline_seconds": [scores[str(s)].get("baseline_seconds") for s in range(len(parts))],
                "scores": [scores[str(s)]["score"] for s in range(len(parts))]}
    finally:
        ray.shutdown()
        down(a, i)


def unbound_task(task_dir: Path, into: Path) -> Path:
    """``task_dir``, or where its spec binds receipts to their submission (``scoring.receipt.bound``)
    a copy under ``into`` that does not: a validation round re-binds the parts of one bundle to new
    submissions (other miners, a new task), which is exactly what a bound receipt refuses to replay."""
    path = next(task_dir.glob("spec.json"))
    if not receipt_config(specmod.load(path))["bound"]:
        return task_dir
    out = into / "task"
    shutil.copytree(task_dir, out)
    raw = json.loads((out / path.name).read_text())
    raw["scoring"]["receipt"]["bound"] = False
    (out / path.name).write_text(json.dumps(raw, indent=2))
    return out


def part_receipts(task_dir: Path, receipt_json: str | None, parts: list) -> list | None:
    """Each part's synthesis receipt (the source bundle's runs, every image of the other parts
    dropped: ``codream.receipt.subset``), or None where the bundle has none; a task that requires
    receipts then cannot be measured with it (every part would be INVALID)."""
    spec = specmod.load(next(task_dir.glob("spec.json")))
    if receipt_json is None:
        if receipt_config(spec)["required"]:
            raise ValueError("the task requires synthesis receipts and this bundle has none: dream it with "
                             "`codream miner dream` (pixel method, no --amp)")
        return None
    rec = receipts.parse(receipt_json, spec, sum(len(p) for p in parts))
    out, start = [], 0
    for p in parts:
        out.append(receipts.subset(rec, range(start, start + len(p))).to_json())
        start += len(p)
    return out


def validate_round(task_dir: Path, bundle_path: Path, submissions: int, repeats: int = 3, workers: int = 2) -> dict:
    """The model against devnet rounds, ``repeats`` times: split the bundle's images into
    ``submissions`` bundles, measure the model's inputs on those very jobs (:func:`measure_round`),
    predict the scoring time of a verifier that holds every seat (it scores each submission once)
    on ``workers`` Ray workers, then run that round and compare; each run notes the machine's load."""
    meta: dict = {}
    try:
        images, header = bundlemod.read(bundle_path.read_bytes())
        meta = header.metadata
    except bundlemod.BundleError:
        images = load_file(str(bundle_path))["images"]
    parts = list(images.chunk(submissions))
    if len(parts) != submissions or len(parts[-1]) == 0:
        raise ValueError(f"{len(images)} images do not split into {submissions} bundles")
    runs = []
    before = os.environ.get("CODREAM_HOME")
    with tempfile.TemporaryDirectory() as home:
        # a home of its own: the devnet's pid files (never an operator's devnet), and one baseline
        # cache for the measurement and the round's workers (Ray passes them this environment)
        os.environ["CODREAM_HOME"] = home
        task_dir = unbound_task(task_dir, Path(home))
        receipts_json = part_receipts(task_dir, meta.get(receipts.KEY), parts)
        try:
            for _ in range(repeats):
                load_before = os.getloadavg()[0]
                inputs = measure_round(task_dir, parts, receipts_json)
                predicted = predict_round(inputs, submissions, workers)
                got = devnet_round(task_dir, parts, workers, receipts_json)
                error = got["scoring_seconds"] / predicted - 1
                runs.append({"load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                             "inputs": inputs, "predicted_seconds": round(predicted, 2), "round": got,
                             "error": round(error, 3), "within_25_percent": abs(error) <= 0.25})
        finally:
            if before is None:
                os.environ.pop("CODREAM_HOME", None)
            else:
                os.environ["CODREAM_HOME"] = before
    return {"submissions": submissions, "images_per_bundle": len(parts[0]), "workers": workers,
            "errors": [r["error"] for r in runs], "within_25_percent": all(r["within_25_percent"] for r in runs),
            "runs": runs}
