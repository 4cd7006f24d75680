"""`codream bench ...`: benchmarks; each prints JSON."""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from codream.devchain import free_port
from rounds.bench import bench_cid, bench_dreams_and_verify
from rounds.bench_dreams import TASKS, bench_dreams
from rounds.bench_market import bench_market
from rounds.bench_mining import ray_mining
from rounds.bench_network import DEFAULT_SCORE_COMMIT_WINDOW, images_for_overhead, measure, model, validate_round
from rounds.bench_novelty import bench_novelty, render as render_novelty
from rounds.bench_verify import bench_verify
from rounds.coowned import run_offline
from rounds.demo import Demo
from rounds.procs import cli_argv

from .common import emit, fail

app = typer.Typer(help="Benchmarks; each prints JSON.", no_args_is_help=True)


def _json_of(argv: list[str]) -> dict:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


@app.command("cid")
def bench_cid_cmd(size_mb: int = typer.Option(64, help="Payload size for the CID throughput.")):
    """CID throughput and a local-node add/cat round trip."""
    emit(bench_cid(size_mb))


@app.command("gas")
def bench_gas_cmd():
    """Gas of every CoDreamMarket function (reference sizes and maximum sizes)."""
    out = _json_of([sys.executable, "-m", "rounds.gasbench"])
    if "error" in out:
        fail(f"gas benchmark failed:\n{out['error']}")
    emit(out)


@app.command("market")
def bench_market_cmd(measured: bool = typer.Option(True, "--measured/--model-only",
                                                   help="Also run the issue-22 attack scenarios in forge.")):
    """What buying a verdict costs on market v3: seat-majority probabilities, seed grinding, the
    expected net of steering a verdict at 10/20/33 % of the stake, each attack's measured net."""
    try:
        emit(bench_market(measured))
    except RuntimeError as exc:
        fail(str(exc))


@app.command("network")
def bench_network_cmd(n: int = typer.Option(4096, help="Submissions per task (N)."),
                      k: int = typer.Option(64, help="Committee seats (K)."),
                      r: int = typer.Option(9, help="Seats per submission (r)."),
                      stake_share: float = typer.Option(0.2, min=0.0, max=1.0, help="The verifier's share of the stake."),
                      verifiers: int = typer.Option(100, min=0, help="Equal verifiers holding the rest of the stake."),
                      score_seconds: Optional[float] = typer.Option(None, help="One bundle's score time (default: "
                                                                    "measured on --task/--bundle)."),
                      synthesis_seconds: Optional[float] = typer.Option(None, help="One bundle's synthesis time "
                                                                        "(default: measured on --task)."),
                      efficiency: Optional[float] = typer.Option(None, help="Parallel efficiency of the workers "
                                                                 "(default: measured, 1 vs 2 Ray workers; else 1)."),
                      warmup_seconds: Optional[float] = typer.Option(None, help="A worker's first-score extra time "
                                                                     "(default: measured; else 0)."),
                      agent_seconds: Optional[float] = typer.Option(None, help="The agent's own work per task before "
                                                                    "it sends a job: eval-set checks (default: "
                                                                    "measured; else 0)."),
                      reference_seconds: Optional[float] = typer.Option(None, help="The agent's serial preparation "
                                                                        "of one submission's earlier reference "
                                                                        "(default: measured; else 0)."),
                      margin: float = typer.Option(1.5, min=1.0, help="Plan to finish within window / margin."),
                      window: int = typer.Option(DEFAULT_SCORE_COMMIT_WINDOW, help="The task's score-commit window (s)."),
                      task: Optional[Path] = typer.Option(None, help="A task folder (spec.json, eval.safetensors) "
                                                          "to measure on."),
                      bundle: Optional[Path] = typer.Option(None, help="A bundle of that task to score."),
                      ray_jobs: int = typer.Option(0, min=0, help="Also score this many jobs on a local Ray cluster "
                                                   "of 1 then 2 CPUs (efficiency)."),
                      synth_images: int = typer.Option(256, min=0, help="Dreams to synthesise for the synthesis "
                                                       "time (on one thread, as the score; 256: one batch of the recipe)."),
                      validate: int = typer.Option(0, min=0, help="Also check the model against a devnet round: this "
                                                   "many submissions (--bundle's images split evenly), one verifier "
                                                   "scoring on 2 Ray workers; predicted (inputs measured on the "
                                                   "round's own jobs just before) vs measured scoring time."),
                      repeats: int = typer.Option(3, min=1, help="--validate: measure-then-round runs.")):
    """The workload model: per verifier the bundles to score, hours, workers needed inside the
    score window; per task mining vs verification compute (docs/scale-out.md)."""
    measured = None
    if task is not None:
        if bundle is None:
            fail("--task needs --bundle (a bundle of that task to score)")
        measured = measure(task, bundle, ray_jobs, 0 if synthesis_seconds is not None else synth_images)
    if score_seconds is None:
        if measured is None:
            fail("give --score-seconds and --synthesis-seconds, or --task and --bundle to measure them")
        score_seconds = measured["score_seconds"]
    if synthesis_seconds is None:
        if measured is None or "synthesis_seconds" not in measured:
            fail("give --synthesis-seconds, or --task to measure it")
        synthesis_seconds = measured["synthesis_seconds"]
    if efficiency is None:
        efficiency = measured["ray"]["efficiency"] if measured and "ray" in measured else 1.0
    if warmup_seconds is None:
        warmup_seconds = (measured["ray"]["worker_warmup_seconds"] if "ray" in measured else
                          max(0.0, measured["first_score_seconds"] - measured["score_seconds"])) if measured else 0.0
    if agent_seconds is None:
        agent_seconds = measured["agent_seconds"] if measured else 0.0
    if reference_seconds is None:
        reference_seconds = measured["reference_seconds"] if measured else 0.0
    out = model(n, k, r, stake_share, verifiers, score_seconds, synthesis_seconds, efficiency, warmup_seconds,
                margin, window, agent_s=agent_seconds, prep_s=reference_seconds)
    if validate:
        if task is None:
            fail("--validate needs --task and --bundle")
        out["validation"] = validate_round(task, bundle, validate, repeats)
    v, t = out["verifier"], out["task"]
    out["goals"] = {"verifier_20pct_finishes_in_window": {
                        "workers": v["workers_needed"], "hours": v["hours_with_workers_needed"],
                        "window_hours": v["score_window_hours"],
                        "met": v["workers_needed"] is not None
                        and v["hours_with_workers_needed"] <= v["score_window_hours"]},
                    "overhead_at_most_0.25": {"overhead": t["verification_overhead"],
                                              "met": t["verification_overhead"] <= 0.25}}
    if measured is not None:
        out["measured"] = measured
        if "synthesis_seconds" in measured:
            out["goals"]["overhead_at_most_0.25"]["bundle_images_for_goal"] = images_for_overhead(
                measured["images"], t["verification_overhead"], 0.25)
    emit(out)


@app.command("ray-mining")
def bench_ray_mining_cmd(task_spec: Path = typer.Option(..., help="Task spec JSON (`codream teacher train`)."),
                         n: int = typer.Option(512, help="Dreams in the bundle."),
                         batch: int = typer.Option(64, help="Dreams per shard (the pixel method's batch)."),
                         steps: Optional[int] = typer.Option(None, help="Steps per shard (default: the recipe's)."),
                         repeats: int = typer.Option(3, min=1, help="Rounds of 1 worker then 2 workers.")):
    """A bundle dreamed in process and on a local 2-CPU Ray cluster with 1 and 2 workers, side by
    side: seconds, speed-up, efficiency, and whether every run gave the in-process bytes (needs the
    `ray` extra; docs/scale-out.md)."""
    emit(ray_mining(task_spec, n, batch, steps, repeats, log=lambda m: typer.echo(m, err=True)))


@app.command("e2e")
def bench_e2e_cmd(n: int = typer.Option(1000, help="Dreams per bundle.")):
    """Time a full `make demo` round (devnet, teacher, 3 miners, 3 verifiers, settlement)."""
    with tempfile.TemporaryDirectory() as home:
        os.environ["CODREAM_HOME"] = home
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            result = Demo(n=n, anvil_port=free_port(), ipfs_port=free_port(), con=Console(file=io.StringIO())).run()
        total = time.perf_counter() - t0
    rows = {r["role"]: r["net_wei"] for r in result["rows"]}
    emit({"e2e_seconds": round(total, 1), "round_seconds": result["seconds"], "n_dreams": n,
          "goal_seconds": 300, "met": total < 300, "net_wei": rows})


@app.command("dreams")
def bench_dreams_cmd(task: str = typer.Option("digits", help=f"Reference task: {', '.join(TASKS)}."),
                     budget: Optional[float] = typer.Option(None, help="Seconds this run may take: the points that "
                                                            "fit, in priority order; the rest is listed as left out "
                                                            "(default: everything)."),
                     n: Optional[int] = typer.Option(None, help="Dreams per point of the cost curve (default 1,000)."),
                     seeds: int = typer.Option(2, min=1, help="Dream seeds per configuration."),
                     di_steps: Optional[str] = typer.Option(None, help="DeepInversion steps grid, e.g. 50,100,200."),
                     di_lrs: Optional[str] = typer.Option(None, help="DeepInversion lr grid, e.g. 0.1,0.25."),
                     ours: str = typer.Option("pixel,generator", help="Our methods to place on the curve."),
                     pixel_steps: int = typer.Option(0, help="Our pixel loop's steps (0: the task's default)."),
                     generator_steps: int = typer.Option(0, help="The generator's inner steps (0: the default)."),
                     curve: Optional[str] = typer.Option(None, help="Gap closed vs dreams at these counts (default: "
                                                         "digits 250,500,1000; mnist 1000,2000,4000,8000; 0: none)."),
                     curve_seeds: int = typer.Option(2, min=1, help="Seeds per point of the count curve."),
                     threads: int = typer.Option(1, min=1, help="Torch threads for every point (timings compare)."),
                     yardstick: str = typer.Option("score", help="The student the gap is measured with: score (the "
                                                   "verifier's recipe, what a bundle is paid by) or harvest (the "
                                                   "owner's full-length recipe for that many images: what the "
                                                   "dreams buy a task owner; ~10x dearer per point)."),
                     workdir: Optional[Path] = typer.Option(None, help="Teacher, resumable point file and plots "
                                                            "(default $CODREAM_HOME/cache/bench-dreams)."),
                     out: Optional[Path] = typer.Option(None, help="Also write the summary JSON here.")):
    """Gap closed vs cost: our methods against DeepInversion's best curve, and vs the number of
    dreams (docs/benchmarks.md). Resumable: finished points are kept and reused."""
    ints = (lambda v: tuple(int(x) for x in v.split(",") if int(x)) if v is not None else None)
    try:
        result = bench_dreams(task, n, seeds, ints(di_steps), tuple(float(x) for x in di_lrs.split(",")) if di_lrs
                              else None, tuple(ours.split(",")), pixel_steps, generator_steps, curve=ints(curve),
                              curve_seeds=curve_seeds, budget=budget, threads=threads, workdir=workdir,
                              log=lambda m: typer.echo(m, err=True), yardstick=yardstick)
    except ValueError as exc:
        fail(str(exc))
    if out:
        out.write_text(json.dumps(result, indent=2, sort_keys=True))
    emit(result)


@app.command("verify")
def bench_verify_cmd(task: str = typer.Option("digits", help="Reference task: digits or mnist."),
                     seeds: int = typer.Option(5, min=2, help="Recipe seeds per stability / marginal point."),
                     budget: Optional[float] = typer.Option(None, help="Seconds; start no new point after that "
                                                            "(cached points count for nothing; rerun to resume)."),
                     threads: int = typer.Option(1, min=1, help="Torch threads for every distillation."),
                     workdir: Optional[Path] = typer.Option(None, help="Teacher, bundles and resumable points "
                                                            "(default $CODREAM_HOME/cache/bench-verify)."),
                     novelty: bool = typer.Option(False, "--novelty/--no-novelty",
                                                  help="Also the v2 near-twin table and index cost (digits, 500-image "
                                                       "bundles; a few minutes)."),
                     out: Optional[Path] = typer.Option(None, help="Also write the JSON here.")):
    """Is the yardstick good enough to pay by: stability over recipe seeds (v2 vs v3 recipe), grinding,
    what each disguised copy earns, honest false positives, marginal gains, cost (JSON with `goals`)."""
    try:
        result = bench_verify(task, workdir, seeds, budget, threads, log=lambda m: typer.echo(m, err=True))
    except ValueError as exc:
        fail(str(exc))
    if novelty:
        result["novelty_v2"] = bench_novelty(500)
        render_novelty(result["novelty_v2"])
    if out:
        out.write_text(json.dumps(result, indent=2, sort_keys=True))
    emit(result)


def _against_fresh_score(nov: dict, verify: dict) -> dict:
    """The index check's time also against a verifier process's own score time (the novelty
    bench scores in a process that has dreamed, whose scores run slower)."""
    ic = nov.get("index_cost")
    if ic:
        checks = sorted(ic["check_seconds"])
        ic["check_to_fresh_process_score"] = round(checks[len(checks) // 2] / verify["score_seconds"], 3)
    return nov


@app.command("coowned")
def bench_coowned_cmd(seeds: int = typer.Option(3, min=1, help="Seeds (split, teachers, dreams, students)."),
                      n: int = typer.Option(1000, help="Dreams in the co-owned bundle."),
                      steps: int = typer.Option(None, help="Harvest distillation steps (default: full length).")):
    """Co-owned task (two owners, two architectures): students vs both teachers on the union eval set."""
    with tempfile.TemporaryDirectory() as tmp:
        out = run_offline(tmp, list(range(seeds)), n, steps, con=Console(stderr=True, width=140))
    emit(out)


@app.command("all")
def bench_all():
    """Every benchmark, one JSON object keyed by name."""
    dv = bench_dreams_and_verify(baseline=False, seeds=1)
    with tempfile.TemporaryDirectory() as work:  # digits, a short DI grid: the full curve is `bench dreams`
        dreams = bench_dreams("digits", seeds=3, di_steps=(50, 100, 200), di_lrs=(0.1,), workdir=work,
                              log=lambda m: None)
    emit({"cid": bench_cid(), "gas": _json_of([sys.executable, "-m", "rounds.gasbench"]), "dreams": dreams,
          "verify": {**dv["verify"], "novelty": _against_fresh_score(bench_novelty(500), dv["verify"])},
          "e2e": _json_of(cli_argv("bench", "e2e"))})
