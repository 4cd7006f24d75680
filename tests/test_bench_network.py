"""The workload model of `codream bench network` (issue 27) against the protocol's own seat rule."""
import json
import random
from pathlib import Path

import pytest

from rounds.bench_network import (finish_seconds, images_for_overhead, model, predict_round, score_window, spread,
                                  unique_share, workers_needed)
from codream.protocol import PRODUCTION_PARAMS, seat_submissions
from tests.conftest import run_cli


def test_bundles_per_verifier_match_the_seat_rule():
    """N (1 - (1 - p)^r) against seats drawn by stake (each seat is ours with probability p) and
    the contract's assignment (codream.protocol.seat_submissions), averaged over draws."""
    n, k, r, p = 512, 32, 5, 0.2
    rng = random.Random(7)
    sizes = []
    for _ in range(300):
        mine = [j for j in range(k) if rng.random() < p]
        sizes.append(len({s for j in mine for s in seat_submissions(j, n, k, r)}))
    simulated = sum(sizes) / len(sizes)
    assert abs(simulated - n * unique_share(p, r)) < 0.03 * n


def test_window_workers_and_overhead():
    assert score_window(4096, 64, 9) == PRODUCTION_PARAMS.min_window + PRODUCTION_PARAMS.seconds_per_bundle * 9 * 64
    assert score_window(10, 64, 9, task_window=7200) == 7200  # the task's own window when longer
    # 1,000 bundles of 36 s on workers of efficiency 0.8, in a 10 h window with margin 2: 2 workers
    assert workers_needed(1000, 36, 36000, 0.8, 0, 2.0) == 3
    assert workers_needed(1000, 36, 36000, 1.0, 0, 2.0) == 2
    assert workers_needed(1000, 36, 3600, 1.0, 4000, 1.0) is None  # warm-up alone is longer than the window
    m = model(4096, 64, 9, 0.2, 100, 40.0, 1600.0, 0.9, 10.0, 1.5, 3600)
    assert m["task"]["verification_overhead"] == round(9 * 40 / 1600, 3)
    assert m["task"]["deduplicated_overhead"] < m["task"]["verification_overhead"]
    v = m["verifier"]
    assert v["hours_with_workers_needed"] * 1.5 <= v["score_window_hours"] + 1e-9
    assert v["predicted_hours"]["8"] > v["predicted_hours"]["64"] > v["predicted_hours"]["512"]
    # the overhead falls as the bundle (the synthesis) grows: 1,000 dreams at 5.5 -> 22,000 for 0.25
    assert images_for_overhead(1000, 5.5, 0.25) == 22000 and images_for_overhead(1000, 0.1, 0.25) == 400


def test_the_agents_own_work_and_the_round_prediction():
    """The agent's per-task work comes first; its serial reference preparation bounds the time
    from below whatever the number of workers; the round's prediction is that formula on the
    measured inputs (synthetic here: the devnet round that checks it is `--validate`, not a test)."""
    assert finish_seconds(8, 3.0, 2, 0.75, 4.0) == (4.0 + 12.0) / 0.75
    assert finish_seconds(8, 3.0, 2, 0.75, 4.0, agent_s=1.5, prep_s=0.01, revealed=7) == 1.5 + (4.0 + 12.0) / 0.75
    assert finish_seconds(1000, 1.0, 1000, 1.0, 0.0, prep_s=0.5, revealed=4096) == 2048  # the agent is the bound
    assert workers_needed(1000, 1.0, 2000, 1.0, 0.0, 1.0, prep_s=0.5, revealed=4096) is None
    assert workers_needed(1000, 36, 36000, 0.8, 10.0, 2.0, agent_s=60.0) == 3
    inputs = {"score_seconds": 3.0, "efficiency": 0.75, "worker_warmup_seconds": 4.0, "agent_seconds": 1.5,
              "reference_seconds": 0.01}
    assert predict_round(inputs, 8, 2) == 1.5 + (4.0 + 12.0) / 0.75
    assert predict_round({**inputs, "efficiency": 1.3}, 8, 2) == 1.5 + 4.0 + 12.0  # never plan on e > 1
    assert spread([3.0, 1.0, 2.0, 10.0]) == {"min": 1.0, "median": 2.5, "max": 10.0, "n": 4}
    m = model(4096, 64, 9, 0.2, 100, 40.0, 1600.0, 0.9, 10.0, 1.5, 3600, agent_s=30.0, prep_s=0.05)
    assert m["verifier"]["agent_preparation_hours"] == round((30 + 4096 * 0.05) / 3600, 3)
    plain = model(4096, 64, 9, 0.2, 100, 40.0, 1600.0, 0.9, 10.0, 1.5, 3600)
    assert m["verifier"]["predicted_hours"]["1"] > plain["verifier"]["predicted_hours"]["1"]


@pytest.mark.slow  # two CLI processes (~25 s here): the model itself is tested above
def test_cli_prints_the_model_and_its_goals():
    res = run_cli("bench", "network", "--score-seconds", "44", "--synthesis-seconds", "1550")
    assert res.returncode == 0, res.stderr.decode()
    out = json.loads(res.stdout)
    assert out["verifier"]["bundles_to_score"] == round(4096 * unique_share(0.2, 9))
    assert set(out["goals"]) == {"verifier_20pct_finishes_in_window", "overhead_at_most_0.25"}
    res = run_cli("bench", "network")
    assert res.returncode != 0 and b"--score-seconds" in res.stderr


def test_the_validation_round_runs_on_a_task_that_does_not_bind_receipts(reference_task, tmp_path):
    """`--validate` splits one bundle into parts submitted by other miners to a new task: a bound
    receipt would refuse every part, so the round runs on a copy of the task whose spec does not
    bind receipts (the original is left as it is)."""
    from codream import spec as specmod
    from codream.spec import receipt_config
    from rounds.bench_network import unbound_task

    task_dir = Path(reference_task["spec"]).parent
    assert receipt_config(specmod.load(task_dir / "spec.json"))["bound"]
    copy = unbound_task(task_dir, tmp_path)
    cfg = receipt_config(specmod.load(copy / "spec.json"))
    assert copy != task_dir and cfg["required"] and not cfg["bound"]
    assert receipt_config(specmod.load(task_dir / "spec.json"))["bound"]
    assert unbound_task(copy, tmp_path / "again") == copy  # nothing to unbind
