"""`codream bench verify`'s bookkeeping: what a copy earns beyond honest work of its own cost, and
which saved points may be reused (only those measured by the same verifier code and spec)."""
from __future__ import annotations

import json

from codream.spec import TaskSpec, load as load_spec
from rounds.bench_verify import beyond_equal_cost, code_fingerprint

ROWS = [{"cheat": "elastic warp", "earned_bps": 7000},
        {"cheat": "re-optimised 5 steps (lr 0.25)", "earned_bps": 7600},
        {"cheat": "re-optimised 20 steps (lr 0.25)", "earned_bps": 7800},
        {"cheat": "re-optimised 20 steps (lr 0.25) + 50 % fresh", "earned_bps": 8100},
        {"cheat": "rotated +10°", "earned_bps": 0}]


def test_a_copy_is_charged_with_honest_work_of_its_own_cost():
    rows = {r["cheat"]: r for r in beyond_equal_cost(ROWS, {5: 6800, 10: 7500, 20: 7770}, 7950, 8000)}
    # a warp costs nothing: all it earns is beyond what its copier's compute would have earned
    assert rows["elastic warp"]["copy_steps"] == 0
    assert rows["elastic warp"]["excess_bps"] == 7000 and rows["elastic warp"]["excess_share_of_honest"] == 0.875
    # k re-optimisation steps are charged what k honest steps from noise earn
    assert rows["re-optimised 5 steps (lr 0.25)"]["copy_steps"] == 5
    assert rows["re-optimised 5 steps (lr 0.25)"]["excess_bps"] == 800
    assert rows["re-optimised 20 steps (lr 0.25)"]["excess_bps"] == 30
    # half diluted with fresh work: half of it was honest work at the recipe's own steps
    assert rows["re-optimised 20 steps (lr 0.25) + 50 % fresh"]["honest_at_equal_cost_bps"] == round((7770 + 7950) / 2)
    # a refused copy earns nothing and is charged nothing
    assert rows["rotated +10°"]["excess_bps"] == 0


def test_saved_points_are_reused_only_under_the_same_spec(reference_task):
    spec = load_spec(reference_task["spec"])
    same = TaskSpec(json.loads(json.dumps(spec.raw)))
    assert code_fingerprint(spec) == code_fingerprint(same)
    raw = json.loads(json.dumps(spec.raw))
    raw["distill"]["steps"] += 1
    assert code_fingerprint(TaskSpec(raw)) != code_fingerprint(spec)
