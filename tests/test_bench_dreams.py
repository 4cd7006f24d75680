"""`codream bench dreams` (gap closed vs time against DeepInversion's best curve) and
`make bench-gpu` (its CPU dry run and its no-CUDA message), at toy sizes."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from rounds import bench_dreams as bd
from miner import generator
from codream import data as D, spec as specmod, yardstick
from owner.harvest import harvest_recipe
from codream.synthesis import deepinversion_config
from tests.conftest import REPO


def _row(secs, gap):
    return {"seconds_mean": secs, "gap_mean": gap, "config": f"{secs}/{gap}"}


def test_frontier_keeps_only_points_better_than_every_faster_one():
    rows = [_row(10, 0.9), _row(1, 0.5), _row(5, 0.95), _row(20, 0.93), _row(2, 0.4), _row(40, 0.97)]
    assert [(r["seconds_mean"], r["gap_mean"]) for r in bd.frontier(rows)] == [(1, 0.5), (5, 0.95), (40, 0.97)]


def test_time_to_reach_interpolates_in_favour_of_the_baseline_and_says_when_it_never_reaches():
    front = [_row(1, 0.5), _row(5, 0.9), _row(40, 0.95)]
    assert bd.time_to_reach(front, 0.4) == 1
    assert bd.time_to_reach(front, 0.7) == pytest.approx(3.0)
    assert bd.time_to_reach(front, 0.95) == 40
    assert bd.time_to_reach(front, 0.96) is None
    assert bd.speedup(front, {"gap_mean": 0.7, "seconds_mean": 0.5})["speedup"] == 6.0
    never = bd.speedup(front, {"gap_mean": 0.99, "seconds_mean": 4.0})
    assert never["di_reaches_our_gap"] is False and never["speedup_lower_bound"] == 10.0


def test_deepinversion_baseline_uses_its_own_init_and_jitter_scaled_to_resolution():
    assert deepinversion_config(image_size=32).jitter == 2
    assert deepinversion_config(image_size=28).jitter == 2
    assert deepinversion_config(image_size=8).jitter == 1
    c = deepinversion_config(image_size=8)
    assert c.init_data and c.bn == 10.0 and not c.cosine_lr and c.lr == 0.05
    ours = deepinversion_config(lr=0.25, our_optimiser=True)
    assert ours.cosine_lr and ours.bn == 10.0 and ours.lr == 0.25


def test_bench_dreams_fits_a_budget_resumes_and_draws(reference_task, tmp_path, monkeypatch):
    monkeypatch.setenv("CODREAM_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(generator, "GENERATOR_SMALL", {"warmup_steps": 4, "kd_steps": 2, "refine_steps": 2})
    task_dir = tmp_path / "work" / "digits-task"  # reuse the session's digits teacher
    task_dir.mkdir(parents=True)
    for name in ("spec.json", "teacher.safetensors", "teacher.safetensors.json", "eval.safetensors"):
        shutil.copy(reference_task["spec"].replace("spec.json", name), task_dir / name)
    # a short recipe: the bench measures whatever the spec says
    raw = json.loads((task_dir / "spec.json").read_text())
    raw["distill"]["steps"] = 20
    raw["baseline"]["seeds"] = 1
    (task_dir / "spec.json").write_text(specmod.validate(raw).to_json())
    kw = dict(n=100, seeds=2, di_steps=(2,), di_lrs=(0.1,), pixel_steps=3, generator_steps=2, curve=(100, 200),
              curve_seeds=1, workdir=tmp_path / "work", log=lambda m: None)
    planned = bd.bench_dreams("digits", budget=0.5, **kw)  # the baselines use it up: every point is left out
    assert planned["ours"] == {} and len(planned["left_out"]) == 4 + 4 + 2  # ours, DI, ours at n=200
    assert all(p["estimated_seconds"] > 0 for p in planned["left_out"])

    out = bd.bench_dreams("digits", **kw)  # no budget: everything, reusing the baselines
    assert out["left_out"] == [] and out["eval_images"] == 540
    assert out["arithmetic"]["canary_ok"] and out["arithmetic"]["profile"]["MKL_CBWR"] == "COMPATIBLE"
    assert 0 < out["student_noise"] < out["student_real"] <= 1 and len(out["student_real_by_seed"]) == 2
    assert {r["method"] for r in out["deepinversion"]} == {"di", "di-ouropt"}
    for row in out["deepinversion"] + list(out["ours"].values()):
        assert row["seeds"] == 2 and row["gap_min"] <= row["gap_mean"] <= row["gap_max"]
        assert row["cost_in_scores_mean"] > 0 and 0 <= row["repeats_first_pass_mean"] <= 1
    for m in ("pixel", "generator"):
        r = out["ours"][m]
        assert ("speedup" in r) != ("speedup_lower_bound" in r) and r["score_to_synthesis"] > 0
    assert {m: [p["n"] for p in rows] for m, rows in out["dreams_curve"].items()} == \
        {"pixel": [100, 200], "generator": [100, 200], "deepinversion": [100, 200]}
    for png in out["plots"]:
        assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    def no_more_dreaming(*a, **k):
        raise AssertionError("a finished point was computed again")

    monkeypatch.setattr(bd, "dream", no_more_dreaming)
    monkeypatch.setattr(bd, "dream_generator", no_more_dreaming)
    again = bd.bench_dreams("digits", **kw)
    assert again["ours"] == out["ours"] and again["deepinversion"] == out["deepinversion"]


def test_bench_gpu_dry_run_on_cpu_prints_every_measurement_without_the_chain_or_ipfs_packages(reference_task,
                                                                                              tmp_path):
    # a GPU image has torch, numpy, safetensors and tqdm, not the project's chain and IPFS packages
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    for name in ("ipfshttpclient", "brownie", "mlxtend"):
        (blocked / f"{name}.py").write_text(f"raise ImportError('{name} is not on a GPU image')\n")
    task = reference_task["spec"].rsplit("/", 1)[0]
    done = subprocess.run([sys.executable, "-m", "rounds.bench_gpu", "--dry-run", "--mnist-task", task,
                           "--mnist-n", "40"], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "PYTHONPATH": f"{blocked}:{REPO}", "CODREAM_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["dry_run"] and out["teacher"]["arch"] == "resnet34" and out["channels_last"]
    assert {(r["method"], r["precision"]) for r in out["runs"]} == {("pixel", "fp32"), ("generator", "fp32")}
    assert all(r["dreams_per_second"] > 0 for r in out["runs"]) and out["score"]["seconds_per_step"] > 0
    point = out["mnist"]  # the task point's code path (the dry run feeds it the digits task)
    assert [r["method"] for r in point["runs"]] == ["generator/fp32", "deepinversion-100/fp32"]
    assert all(r["seconds"] > 0 and r["score_seconds"] > 0 for r in point["runs"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: bench-gpu measures instead")
def test_bench_gpu_without_cuda_says_so_and_exits_2():
    done = subprocess.run(["make", "-s", "bench-gpu", f"BENCH_PY={sys.executable}"], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode != 0
    assert "no CUDA device" in done.stderr and "--dry-run" in done.stderr and "Traceback" not in done.stderr


def test_the_harvest_yardstick_trains_the_owners_full_length_student(reference_task, tmp_path, monkeypatch):
    """`--yardstick harvest`: every student of the bench (dreams, real data, noise) is distilled with
    the owner's full-length recipe for its own image count, in a point file of its own."""
    monkeypatch.setenv("CODREAM_HOME", str(tmp_path / "home"))
    task_dir = tmp_path / "work" / "digits-task"
    task_dir.mkdir(parents=True)
    for name in ("spec.json", "teacher.safetensors", "teacher.safetensors.json", "eval.safetensors"):
        shutil.copy(reference_task["spec"].replace("spec.json", name), task_dir / name)
    raw = json.loads((task_dir / "spec.json").read_text())
    raw["distill"]["steps"] = 2
    (task_dir / "spec.json").write_text(specmod.validate(raw).to_json())
    seen = []
    real_students = yardstick.students

    def recording(spec, teachers, images, seed=None, threads=None, device="cpu", recipe=None, **kw):
        seen.append((len(images), recipe.steps))
        return real_students(spec, teachers, images, seed, threads, device, recipe=recipe, **kw)

    monkeypatch.setattr(yardstick, "students", recording)
    b = bd.Bench("digits", tmp_path / "work", 1, lambda m: None, yardstick="harvest")
    assert b.results_path.name == "digits-harvest-points.json"
    images = torch.from_numpy(D.digits()[0].x[:300])
    acc, _ = b.student_accuracy(images)
    assert 0 < acc <= 1 and seen == [(300, harvest_recipe(b.spec, 300).steps)]
    assert harvest_recipe(b.spec, 300).steps >= 10 * b.spec.recipe.steps
    with pytest.raises(ValueError, match="unknown yardstick"):
        bd.Bench("digits", tmp_path / "work", 1, lambda m: None, yardstick="bigger")
