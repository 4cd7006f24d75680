"""`codream bench dreams`: gap closed vs cost, our methods against a fair DeepInversion curve.

On one reference task (``digits`` or ``mnist``), in one process with a fixed thread count:

- **the yardstick** (``codream.yardstick``, what verifiers score with) distils the task's student
  on each set of images; **gap closed** = (acc(dreams) − acc(noise)) / (acc(real) − acc(noise))
  on the task's eval set, with the noise baseline the task constant (mean over the spec's
  baseline seeds) and the real-data student the mean over ``REAL_SEEDS`` recipe seeds. Dream
  seed s is scored with recipe seed ``spec seed + s``, the same for every method;
- every bundle goes through what a miner does before submitting (``miner.methods.keep_new``:
  its own near-twins and self-derived images dropped and replaced), the same for every method;
  its cost is the whole of that (``seconds``), its first pass's repeat share is reported;
- **DeepInversion** at its useful step counts and lrs, with its own initialisation (N(0, 1) in
  normalised space) and jitter scaled to the resolution; and DI's losses under our optimiser
  (``di-ouropt``); **DI's best curve** = the upper-left frontier over all of them;
- **our methods** (``pixel``, ``generator``: the task's tuned defaults, ``*.for_shape``);
- **speed-up at equal quality** = the cost DI's frontier needs to reach our mean gap (linear
  between neighbouring points, which favours DI) ÷ ours; a lower bound when DI never gets there.
  Raw seconds, and load-normalised: each point's synthesis seconds ÷ the seconds of its own
  scoring run right after it ("cost in scores": the fixed recipe's time divides the shared
  machine's changing load out);
- **gap vs number of dreams** (``curve``) for our methods and DI's best configuration.

``budget`` (seconds): the points are planned in priority order (baselines, our methods, DI's
configurations, the curve), each with an estimated cost (rates measured on this machine by
earlier points, or by a few-step calibration); what does not fit is left out and listed with its
estimate. Every finished point is appended to ``TASK-points.json`` and reused, so a run that
stops loses at most one point, and the next run (a bigger budget) goes on from there. PNG plots
(gap vs cost with DI's frontier; gap vs count with seed spreads) are written beside that file.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from codream import arithmetic, config
from codream import data as D
from codream.distill import accuracy
from codream.spec import load as load_spec, receipt_config
from codream.teachers import load_teachers
from codream.yardstick import noise_accuracy, student_accuracies
from codream.zoo import build_model
from miner.generator import GeneratorConfig, dream_generator
from miner.methods import keep_new
from codream.synthesis import DreamConfig, DreamResult, deepinversion_config, dream
from owner.harvest import harvest_recipe
from owner.teacher import train_reference

from .bench_plots import plot_cost, plot_count

TASKS = ("digits", "mnist")
YARDSTICKS = ("score", "harvest")  # the student the gap is measured with: the verifier's probe, the owner's run
REAL_SEEDS = 2  # recipe seeds of the real-data student (its mean is the top of the gap)


@dataclass(frozen=True)
class Preset:
    """A task's benchmark grid: DI's step counts and lrs (most useful first), our optimiser's lr
    for ``di-ouropt``, dreams per point, and the dream-count curve."""

    di_steps: tuple[int, ...]
    di_lrs: tuple[float, ...]
    ouropt_lr: float
    n: int
    curve: tuple[int, ...]


PRESETS = {
    "digits": Preset((50, 25, 100, 200), (0.1, 0.25, 0.05), 0.25, 1000, (250, 500, 1000)),
    # measured here with the width-16 EMA recipe (1,000 dreams, seed 0): DI's own loop gains little
    # past 50 steps (student 83.8 % at 50, 84.9 % at 100) and falls off below (67.8 % at 25)
    "mnist": Preset((50, 25, 100), (0.1, 0.25), 0.25, 1000, (1000, 2000, 4000, 8000)),
}


@dataclass(frozen=True)
class Config:
    """One synthesis configuration of the benchmark (a curve point, before seeds). ``steps`` 0:
    the method's tuned default for the task."""

    method: str  # "di", "di-ouropt", "pixel" or "generator"
    steps: int  # steps per batch (generator: inner steps per batch after the first)
    lr: float  # 0: the method's default
    n: int
    defaults: str = ""  # our methods: a digest of the resolved defaults, so a retuned default is a new point

    @property
    def key(self) -> str:
        return f"{self.method}/steps={self.steps}/lr={self.lr:g}/n={self.n}" + (
            f"/defaults={self.defaults}" if self.defaults else "")

    def with_n(self, n: int) -> "Config":
        return Config(self.method, self.steps, self.lr, n, self.defaults)

    @property
    def family(self) -> str:
        """Methods that share a per-dream-step cost (the pixel loop, or the generator)."""
        return "generator" if self.method == "generator" else "pixel"


def dream_config(c: Config, seed: int, shape: tuple[int, int, int]) -> DreamConfig | GeneratorConfig:
    flip = shape[0] == 3
    if c.method == "di":
        return deepinversion_config(seed, c.steps, image_size=shape[1], lr=c.lr, flip=flip)
    if c.method == "di-ouropt":
        return deepinversion_config(seed, c.steps, image_size=shape[1], lr=c.lr, our_optimiser=True, flip=flip)
    if c.method == "pixel":
        cfg = DreamConfig.for_shape(shape, seed=seed)
        cfg.steps, cfg.lr = c.steps or cfg.steps, c.lr or cfg.lr
        return cfg
    if c.method == "generator":
        cfg = GeneratorConfig.for_shape(shape, seed=seed)
        cfg.inner_steps, cfg.lr = c.steps or cfg.inner_steps, c.lr or cfg.lr
        return cfg
    raise ValueError(f"unknown method {c.method!r}")


def ours_config(method: str, steps: int, n: int, shape: tuple[int, int, int]) -> Config:
    """One of our methods at its task defaults (``steps`` 0) or at ``steps``."""
    c = Config(method, steps, 0.0, n)
    cfg = asdict(dream_config(c, 0, shape))
    cfg.pop("seed")
    digest = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:8]
    return Config(method, steps, 0.0, n, digest)


def steps_of(c: Config, shape: tuple[int, int, int]) -> int:
    cfg = dream_config(c, 0, shape)
    return cfg.inner_steps if isinstance(cfg, GeneratorConfig) else cfg.steps


def summarise(points: Sequence[dict]) -> dict:
    """Mean, sample standard deviation and range of gap and seconds over a config's seeds."""
    gaps = [p["gap"] for p in points]
    secs = [p["seconds"] for p in points]
    sd = (lambda v: statistics.stdev(v) if len(v) > 1 else 0.0)
    return {"seeds": len(points), "gap_mean": round(statistics.fmean(gaps), 4), "gap_sd": round(sd(gaps), 4),
            "gap_min": round(min(gaps), 4), "gap_max": round(max(gaps), 4),
            "seconds_mean": round(statistics.fmean(secs), 2), "seconds_sd": round(sd(secs), 2),
            "score_seconds_mean": round(statistics.fmean(p["score_seconds"] for p in points), 2),
            "check_seconds_mean": round(statistics.fmean(p.get("check_seconds", 0.0) for p in points), 2),
            "repeats_first_pass_mean": round(statistics.fmean(p.get("repeats_first_pass", 0.0) for p in points), 4),
            "kept_mean": round(statistics.fmean(p.get("kept", p["n"]) for p in points), 1),
            # synthesis seconds ÷ the seconds of the fixed scoring run measured right after it: a
            # cost that a shared machine's changing load divides out of (docs/benchmarks.md)
            "cost_in_scores_mean": round(statistics.fmean(p["seconds"] / p["score_seconds"] for p in points), 3),
            "cost_in_scores_sd": round(sd([p["seconds"] / p["score_seconds"] for p in points]), 3),
            "load_mean": round(statistics.fmean(p.get("load", 0.0) for p in points), 2)}


def frontier(curve: Sequence[dict], cost: str = "seconds_mean") -> list[dict]:
    """The upper-left frontier of (cost, gap_mean) points: sorted by cost, each point better
    than every cheaper one. This is the best any choice of DI's knobs achieves."""
    best, out = -math.inf, []
    for p in sorted(curve, key=lambda p: (p[cost], -p["gap_mean"])):
        if p["gap_mean"] > best:
            out.append(p)
            best = p["gap_mean"]
    return out


def time_to_reach(front: Sequence[dict], gap: float, cost: str = "seconds_mean") -> float | None:
    """Cost the frontier needs to reach ``gap``: linear between the last point below and the
    first at or above it (a lower estimate of DI's real cost: favours the baseline). None if
    no point reaches it."""
    prev = None
    for p in front:
        if p["gap_mean"] >= gap:
            if prev is None:
                return p[cost]
            f = (gap - prev["gap_mean"]) / (p["gap_mean"] - prev["gap_mean"])
            return prev[cost] + f * (p[cost] - prev[cost])
        prev = p
    return None


def speedup(front: Sequence[dict], ours: dict, di_rows: Sequence[dict] | None = None) -> dict:
    """Speed-up at equal quality of one of our configs over DI's frontier (and, given every DI
    row, the same in load-normalised cost)."""
    t = time_to_reach(front, ours["gap_mean"])
    if t is not None:
        out = {"speedup": round(t / ours["seconds_mean"], 2), "di_seconds_to_reach": round(t, 2),
               "di_reaches_our_gap": True}
        if di_rows and "cost_in_scores_mean" in ours:
            c = time_to_reach(frontier(di_rows, "cost_in_scores_mean"), ours["gap_mean"], "cost_in_scores_mean")
            if c is not None:
                out["speedup_load_normalised"] = round(c / ours["cost_in_scores_mean"], 2)
        return out
    top = max(front, key=lambda p: p["gap_mean"])
    out = {"speedup_lower_bound": round(top["seconds_mean"] / ours["seconds_mean"], 2),
           "di_reaches_our_gap": False, "di_best_gap": top["gap_mean"],
           "note": "DI's best point is below our gap: speed-up is at least this (its best point's cost ÷ ours)"}
    if "cost_in_scores_mean" in ours and "cost_in_scores_mean" in top:
        out["speedup_lower_bound_load_normalised"] = round(top["cost_in_scores_mean"] / ours["cost_in_scores_mean"], 2)
    return out


class Bench:
    """The task, the yardstick, the noise/real baselines and a resumable result file."""

    def __init__(self, task: str, workdir: Path, threads: int, log: Callable[[str], None] = print,
                 yardstick: str = "score"):
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r} (known: {', '.join(TASKS)})")
        if yardstick not in YARDSTICKS:
            raise ValueError(f"unknown yardstick {yardstick!r} (known: {', '.join(YARDSTICKS)})")
        self.task, self.threads, self.log, self.yardstick = task, threads, log, yardstick
        tdir = workdir / f"{task}-task"
        if not (tdir / "spec.json").exists():
            log(f"training the {task} reference teacher into {tdir}")
            train_reference(task, tdir, progress=False)
        self.spec = load_spec(tdir / "spec.json")
        self.teachers = load_teachers(self.spec)
        train, ev = D.digits() if task == "digits" else D.mnist()
        self.train = torch.from_numpy(train.x)
        self.ev = (torch.from_numpy(ev.x), torch.from_numpy(ev.y))
        self.results_path = workdir / (f"{task}-points.json" if yardstick == "score" else f"{task}-{yardstick}-points.json")
        self.results: dict = json.loads(self.results_path.read_text()) if self.results_path.exists() else {}

    @property
    def base(self) -> dict:
        return self._cached("baseline", self._baseline)

    def _baseline(self) -> dict:
        t0 = time.perf_counter()
        noise = noise_accuracy(self.spec, self.teachers, self.ev, self.threads,
                               recipe=self.recipe(self.spec.baseline.n))
        real = [self.student_accuracy(self.train, s)[0] for s in range(REAL_SEEDS)]
        return {"student_noise": noise["accuracy"], "student_noise_runs": noise["runs"],
                "student_real": statistics.fmean(real), "student_real_by_seed": real,
                "teacher_accuracy": accuracy(self.teachers[0], *self.ev, self.spec.mean, self.spec.std),
                "eval_images": len(self.ev[1]), "train_images": len(self.train),
                "yardstick": self.yardstick, "recipe": {"student": self.spec.student, **asdict(self.spec.recipe)},
                "seconds": round(time.perf_counter() - t0, 1)}

    def _cached(self, key: str, compute: Callable[[], dict]) -> dict:
        if key not in self.results:
            self.results[key] = compute()
            tmp = self.results_path.with_suffix(".part")
            tmp.write_text(json.dumps(self.results, indent=1, sort_keys=True))
            tmp.replace(self.results_path)
        return self.results[key]

    def done(self, c: Config, seed: int) -> bool:
        return f"{c.key}/seed={seed}" in self.results

    def points(self) -> list[dict]:
        return [v for k, v in self.results.items() if "/seed=" in k]

    def student_accuracy(self, images: torch.Tensor, seed: int = 0) -> tuple[float, float]:
        """The yardstick on ``images`` with recipe seed ``spec seed + seed``: (mean student
        accuracy, seconds). ``score``: the verifier's recipe (what a bundle is paid by);
        ``harvest``: the owner's full-length recipe for that many images (``harvest_recipe``:
        what the dreams buy a task owner)."""
        t0 = time.perf_counter()
        accs = student_accuracies(self.spec, self.teachers, images, self.ev, self.spec.recipe.seed + seed,
                                  self.threads, recipe=self.recipe(len(images)))
        return statistics.fmean(accs), time.perf_counter() - t0

    def recipe(self, n_images: int):
        """The yardstick's recipe for ``n_images`` images: None (the spec's) or the harvest's."""
        return None if self.yardstick == "score" else harvest_recipe(self.spec, n_images)

    def gap(self, acc: float) -> float:
        b = self.base
        return (acc - b["student_noise"]) / (b["student_real"] - b["student_noise"])

    def synthesise(self, c: Config, seed: int, n: int | None = None, avoid: DreamResult | None = None) -> DreamResult:
        spec = self.spec
        cfg = dream_config(c, seed, spec.shape)
        n = c.n if n is None else n
        if isinstance(cfg, GeneratorConfig):
            return dream_generator(self.teachers, n, spec.num_classes, spec.shape, spec.mean, spec.std, cfg,
                                   student=build_model(spec.student), avoid=avoid.images if avoid else None,
                                   avoid_labels=avoid.labels if avoid else None)
        return dream(self.teachers, n, spec.num_classes, spec.shape, spec.mean, spec.std, cfg)

    def point(self, c: Config, seed: int) -> dict:
        def run() -> dict:
            torch.set_num_threads(self.threads)
            load = os.getloadavg()[0]
            first = self.synthesise(c, seed)
            dream_s = first.stats["seconds"]
            res = keep_new(self.spec, first, c.n, seed, lambda k, s, kept: self.synthesise(c, s, k, kept))
            acc, score_s = self.student_accuracy(res.images, seed)
            p = {**asdict(c), "seed": seed, "seconds": round(res.stats["seconds"], 3),
                 "first_pass_seconds": round(dream_s, 3), "kept": len(res.images),
                 "repeats_first_pass": res.stats["repeats_first_pass"], "top_up_rounds": res.stats["top_up_rounds"],
                 "student_dreams": acc, "gap": round(self.gap(acc), 4), "score_seconds": round(score_s, 3),
                 "load": round((load + os.getloadavg()[0]) / 2, 2)}
            self.log(f"{c.key} seed {seed}: gap {p['gap']:.4f} in {p['seconds']:.1f} s "
                     f"(repeats {p['repeats_first_pass']:.1%}, score {score_s:.1f} s, load {p['load']})")
            return p
        return self._cached(f"{c.key}/seed={seed}", run)

    # -- cost estimates (for the budget) ---------------------------------------------------
    def rate(self, family: str) -> float:
        """Seconds per dream-step of a method family on this machine now: the median over its
        finished points, or a calibration run of a few steps (kept in the result file)."""
        shape = self.spec.shape
        rates = [p["first_pass_seconds"] / (p["n"] * max(1, steps_of(Config(p["method"], p["steps"], p["lr"], p["n"]),
                                                                         shape)))
                 for p in self.points() if Config(p["method"], p["steps"], p["lr"], p["n"]).family == family
                 and "first_pass_seconds" in p]
        if rates:
            return statistics.median(rates)
        return self._cached(f"calibration/{family}", lambda: self._calibrate(family))["seconds_per_dream_step"]

    def _calibrate(self, family: str) -> dict:
        torch.set_num_threads(self.threads)
        spec = self.spec
        if family == "generator":
            cfg = GeneratorConfig.for_shape(spec.shape)
            n, steps = 2 * cfg.batch, cfg.inner_steps
            cfg.warmup_steps = cfg.inner_steps
            t0 = time.perf_counter()
            dream_generator(self.teachers, n, spec.num_classes, spec.shape, spec.mean, spec.std, cfg,
                            student=build_model(spec.student))
        else:
            cfg = deepinversion_config(0, 3, image_size=spec.shape[1])
            n, steps = cfg.batch, cfg.steps
            t0 = time.perf_counter()
            dream(self.teachers, n, spec.num_classes, spec.shape, spec.mean, spec.std, cfg)
        return {"seconds_per_dream_step": (time.perf_counter() - t0) / (n * steps), "load": os.getloadavg()[0]}

    def estimate(self, c: Config) -> float:
        """Seconds a point would take: synthesis at the family's rate, the repeat checks (which
        grow with the square of the bundle), one score."""
        pts = self.points()
        score = statistics.median([p["score_seconds"] for p in pts]) if pts else 4 * self.base["seconds"] / (
            self.base.get("student_noise_runs", 4) + REAL_SEEDS)
        checks = [(p["seconds"] - p["first_pass_seconds"]) / p["n"] ** 2 for p in pts if "first_pass_seconds" in p]
        per_pair = statistics.median(checks) if checks else 2e-6
        return c.n * steps_of(c, self.spec.shape) * self.rate(c.family) + per_pair * c.n ** 2 + score


def plan(bench: Bench, wanted: Sequence[tuple[Config, int]], budget: float | None) -> tuple[list, list]:
    """Split the wanted (config, seed) points, in priority order, into those to run within
    ``budget`` seconds (finished ones cost nothing) and those left out (with their estimates).
    A point that does not fit is skipped and cheaper later ones still get their chance."""
    run, left, spent = [], [], 0.0
    for c, s in wanted:
        if bench.done(c, s):
            run.append((c, s, 0.0))
            continue
        est = bench.estimate(c)
        if budget is None or spent + est <= budget:
            run.append((c, s, est))
            spent += est
        else:
            left.append({"config": c.key, "seed": s, "estimated_seconds": round(est, 1)})
    return run, left


def bench_dreams(task: str = "digits", n: int | None = None, seeds: int = 2, di_steps: Sequence[int] | None = None,
                 di_lrs: Sequence[float] | None = None, methods: Sequence[str] = ("pixel", "generator"),
                 pixel_steps: int = 0, generator_steps: int = 0, curve: Sequence[int] | None = None,
                 curve_seeds: int = 2, budget: float | None = None, threads: int = 1,
                 workdir: str | Path | None = None, log: Callable[[str], None] = print,
                 yardstick: str = "score") -> dict:
    """Run (or resume) the benchmark within ``budget`` seconds (None: everything); return the JSON
    summary. See the module docstring."""
    preset = PRESETS[task]
    di_steps = tuple(di_steps or preset.di_steps)
    di_lrs = tuple(di_lrs or preset.di_lrs)
    n = n or preset.n
    curve = tuple(preset.curve if curve is None else curve)
    workdir = Path(workdir or config.home() / "cache" / "bench-dreams")
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("CODREAM_HOME", str(config.home()))
    b = Bench(task, workdir, threads, log, yardstick)
    t_start = time.perf_counter()
    base = b.base

    shape = b.spec.shape
    our_configs = {m: ours_config(m, pixel_steps if m == "pixel" else generator_steps, n, shape) for m in methods}
    # DI in order of usefulness: every configuration's first seed, then the others
    di_configs = [Config("di", s, lr, n) for lr in di_lrs for s in di_steps]
    di_configs += [Config("di-ouropt", s, preset.ouropt_lr, n) for s in di_steps]
    wanted = [(c, s) for c in our_configs.values() for s in range(seeds)]
    wanted += [(c, 0) for c in di_configs] + [(c, s) for s in range(1, seeds) for c in di_configs]

    def rows_of(configs, pts_seeds):
        rows = []
        for c in configs:
            pts = [b.results[f"{c.key}/seed={s}"] for s in pts_seeds if b.done(c, s)]
            if pts:
                rows.append({"config": c.key, "method": c.method, "steps": c.steps, "lr": c.lr, "n": c.n,
                             **summarise(pts)})
        return rows

    deadline = None if budget is None else t_start + budget  # the baselines count too
    left_out: list[dict] = []

    def run(points: Sequence[tuple[Config, int]]) -> None:
        left = None if deadline is None else max(0.0, deadline - time.perf_counter())
        listed = {(p["config"], p["seed"]) for p in left_out}
        todo, skipped = plan(b, [(c, s) for c, s in points if (c.key, s) not in listed], left)
        left_out.extend(skipped)
        for c, s, est in todo:
            if est and deadline is not None and time.perf_counter() + est > deadline:
                left_out.append({"config": c.key, "seed": s, "estimated_seconds": round(est, 1),
                                 "why": "earlier points took longer than estimated"})
                continue
            b.point(c, s)

    run(wanted)
    # the dream-count curve: our methods and DI's best configuration (by mean gap), smallest counts first
    # (ours first, in the order given; DI's best last: its best configuration is often its dearest)
    di_now = rows_of(di_configs, range(seeds))
    curve_configs = dict(our_configs)
    if di_now:
        best = max(di_now, key=lambda r: (r["seeds"], r["gap_mean"]))
        best_c = Config(best["method"], best["steps"], best["lr"], n)
        if not any(dream_config(c, 0, shape) == dream_config(best_c, 0, shape) for c in our_configs.values()):
            curve_configs["deepinversion"] = best_c  # (when our default is DI's best, it is drawn once)
    run([(c.with_n(k), s) for k in curve for c in curve_configs.values() for s in range(curve_seeds)])

    di_rows = rows_of(di_configs, range(seeds))
    front = frontier(di_rows) if di_rows else []
    out = {"task": task, "n_dreams": n, "seeds": seeds, "threads": threads, "arithmetic": arithmetic.describe(receipt_config(b.spec)["arithmetic"]), **base,
           "deepinversion": di_rows, "deepinversion_frontier": [r["config"] for r in front], "ours": {}}
    for row in rows_of(our_configs.values(), range(seeds)):
        if front:
            row.update(speedup(front, row, di_rows))
        row["score_to_synthesis"] = round(row["score_seconds_mean"] / row["seconds_mean"], 3)
        out["ours"][row["method"]] = row
    if curve:
        out["dreams_curve"] = {m: rows_of([c.with_n(k) for k in curve], range(curve_seeds))
                               for m, c in curve_configs.items()}
    out["left_out"] = left_out
    out["budget_seconds"] = budget
    out["bench_seconds_this_run"] = round(time.perf_counter() - t_start, 1)
    tag = task if yardstick == "score" else f"{task}-{yardstick}"
    out["plots"] = [str(plot_cost(out, workdir / f"{tag}-gap-vs-cost.png"))]
    if curve:
        out["plots"].append(str(plot_count(out, workdir / f"{tag}-gap-vs-count.png")))
    return out
