"""The workload model of `codream bench network` (issue 27) against the protocol's own seat rule."""
import json
import random

import pytest

from rounds.bench_network import model, score_window, unique_share, workers_needed
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


@pytest.mark.slow  # two CLI processes (~25 s here): the model itself is tested above
def test_cli_prints_the_model_and_its_goals():
    res = run_cli("bench", "network", "--score-seconds", "44", "--synthesis-seconds", "1550")
    assert res.returncode == 0, res.stderr.decode()
    out = json.loads(res.stdout)
    assert out["verifier"]["bundles_to_score"] == round(4096 * unique_share(0.2, 9))
    assert set(out["goals"]) == {"verifier_20pct_finishes_in_window", "overhead_at_most_0.25"}
    res = run_cli("bench", "network")
    assert res.returncode != 0 and b"--score-seconds" in res.stderr
