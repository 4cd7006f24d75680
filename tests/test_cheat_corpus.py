"""The adversarial corpus: every way of re-using earlier images earns at most 10 % of an honest
bundle's reward (verification v2). Cases are generated here from a small honest bundle (the
300-dream fixture of tests/test_novelty.py) and scored with the real check and scorer.

Reward here is what the contract pays pro rata: the score when the bundle is VALID and at or
above the task's min gain, else 0 (an INVALID bundle also loses its whole bond)."""
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from codream import bundle, receipt as receipts
from codream.bundle import Binding
from codream.evalset import load_eval_set
from codream.spec import load as load_spec
from codream.teachers import load_teachers
from miner import cheats
from codream.novelty import reference
from verifier.score import score_bundle

DREAMS = Path(__file__).parent / "data" / "dreams-digits.safetensors"
REF = Binding(31337, "0x" + "ab" * 20, 1, "0x" + "cd" * 20)


@pytest.fixture(scope="module")
def task(reference_task):
    # the pixel checks alone: on a task that requires receipts (the reference tasks) none of these
    # copies would even get that far (no receipt, or one that does not replay: tests/test_receipt.py)
    spec = receipts.requiring(load_spec(reference_task["spec"]), False)
    return spec, load_teachers(spec), load_eval_set(reference_task["eval_set"], spec)


@pytest.fixture(scope="module")
def honest():
    d = load_file(str(DREAMS))
    return d["a"], d["b"]


def reward(task, tmp_path, images, earlier=()) -> tuple[int, dict]:
    spec, teachers, ev = task
    path = bundle.write(tmp_path / "b.safetensors", images, REF)
    out = score_bundle(spec, path, ev, teachers, REF, list(earlier))
    if out["verdict"] != "VALID" or out["score_bps"] < spec.scoring.min_gain_bps:
        return 0, out
    return out["score_bps"], out


@pytest.fixture(scope="module")
def honest_reward(task, honest, tmp_path_factory):
    r, out = reward(task, tmp_path_factory.mktemp("honest"), honest[0])
    assert r > 0 and out["novelty"]["novel_fraction"] >= 0.99, out
    return r


def _cases(a, b, task):
    spec, teachers, ev = task
    ev_x = ev[0]
    g = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, a.shape, generator=g, dtype=torch.uint8)
    one = [reference("earlier_submission", "honest", a)]
    two = one + [reference("earlier_submission", "honest b", b)]
    out = {f"transformed copy: {name}": (fn(a, 3), one) for name, fn in cheats.TRANSFORMS.items()}
    out.update({
        "exact copy": (a.clone(), one),
        "re-optimised copy (3 steps)": (cheats.reoptimise(a, teachers, spec.mean, spec.std, 3), one),
        "interleaved copies of two earlier bundles": (torch.stack([a, b], 1).flatten(0, 1)[:len(a)], two),
        "sub-threshold: 45 % shifted copy + 55 % noise": (torch.cat([cheats.shift(a[:135], 1), noise[135:]]), one),
        "eval images": (ev_x[:len(a)], ()),
        "eval images, noised ±16": (cheats.noise(ev_x[:len(a)], 16), ()),
        "class means × 30, ±32 noise": (cheats.noise(cheats.class_means(ev_x, ev[1], 10).repeat(30, 1, 1, 1), 32),
                                        ()),
    })
    return out


CASE_NAMES = [f"transformed copy: {n}" for n in cheats.TRANSFORMS] + [
    "exact copy", "re-optimised copy (3 steps)", "interleaved copies of two earlier bundles",
    "sub-threshold: 45 % shifted copy + 55 % noise", "eval images", "eval images, noised ±16",
    "class means × 30, ±32 noise"]


@pytest.fixture(scope="module")
def cases(task, honest):
    return _cases(*honest, task)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_cheat_earns_at_most_a_tenth_of_honest_work(task, cases, honest_reward, tmp_path, name):
    images, earlier = cases[name]
    got, out = reward(task, tmp_path, images, earlier)
    assert got <= 0.1 * honest_reward, (name, got, honest_reward, out.get("novelty"), out["reasons"])


def test_k_variants_under_k_addresses_earn_no_more_than_the_one_bundle(task, honest, honest_reward, tmp_path):
    a, _ = honest
    refs, total = [reference("earlier_submission", "original", a)], honest_reward
    for k, name in enumerate(("shift1", "hflip", "noise32", "composite", "crop7_resize")):
        variant = cheats.TRANSFORMS[name](a, 20 + k)
        got, _ = reward(task, tmp_path, variant, refs)
        total += got
        refs.append(reference("earlier_submission", name, variant))
    assert total <= 1.1 * honest_reward


def test_a_copy_diluted_with_fresh_work_earns_nothing(task, honest, tmp_path):
    """45 % copied + 55 % the miner's own new dreams: the copied share is far above what honest
    bundles show (≤ 0.3 %), so the bundle is INVALID as derived work: diluting a copy with fresh
    dreams does not buy the fresh part a reward (verification v3)."""
    a, b = honest
    images = torch.cat([cheats.shift(a[:135], 1), b[135:]])
    got, out = reward(task, tmp_path, images, [reference("earlier_submission", "honest", a)])
    assert got == 0 and out["verdict"] == "INVALID", out["reasons"]
    assert {r["code"] for r in out["reasons"]} & {"derived_from_other_submission", "duplicate_of_other_submission"}
