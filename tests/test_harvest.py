"""Harvest: accepted bundles (CIDs verified) merged with provenance, a student distilled with
checkpoints that resumes bit-identically after a kill, a model card and a preview."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from codream import bundle as bundlemod
from codream import spec as specmod
from codream.bundle import Binding
from codream.distill import noise_images
from codream.evalset import load_eval_set
from ipfs import cid_of_file
from owner.harvest import HarvestError, accepted_from_task_view, harvest, harvest_recipe, load_manifest
from tests.conftest import REPO

CONTRACT = "0x" + "ab" * 20
MINERS = ["0x" + "01" * 20, "0x" + "02" * 20]


@pytest.fixture
def accepted(reference_task, tmp_path):
    """Two accepted bundles; the second repeats 10 images of the first; and their manifest."""
    a = noise_images(200, (1, 8, 8), 11)
    b = torch.cat([noise_images(190, (1, 8, 8), 12), a[:10]])
    rows = []
    for i, (images, miner) in enumerate(zip((a, b), MINERS)):
        path = bundlemod.write(tmp_path / f"b{i}.safetensors", images, Binding(31337, CONTRACT, 7, miner))
        rows.append({"cid": cid_of_file(path), "miner": miner, "score_bps": 900 + i, "novelty": 0.5 + i / 4,
                     "index": i, "reward_wei": str(3 * 10**17), "file": path.name})
    manifest = {"schema": "codream.harvest-manifest/1", "task_id": 7, "spec": reference_task["spec"],
                "paid_wei": str(10**18), "bundles": rows}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path / "manifest.json"


def test_harvest_merges_bundles_with_provenance_and_writes_a_model_card(reference_task, accepted, tmp_path):
    m = load_manifest(accepted)
    ev = load_eval_set(reference_task["eval_set"], m.spec)
    out = tmp_path / "out"
    card = harvest(m.spec, m.bundles, out, evals={"mine": ev}, steps=30, task_id=m.task_id, paid_wei=m.paid_wei,
                   threads=1, baselines=False, progress=False)
    prov = json.loads((out / "provenance.json").read_text())
    assert [p["miner"] for p in prov] == MINERS and [p["cid"] for p in prov] == [b.cid for b in m.bundles]
    assert [p["score_bps"] for p in prov] == [900, 901] and [p["novelty"] for p in prov] == [0.5, 0.75]
    assert [(p["images"], p["kept"], p["duplicates_dropped"]) for p in prov] == [(200, 200, 0), (200, 190, 10)]
    data = load_file(str(out / "dataset.safetensors"))
    assert data["images"].shape == (390, 1, 8, 8)
    assert data["source"].tolist() == [0] * 200 + [1] * 190
    assert torch.equal(data["images"][200:], load_file(str(tmp_path / "b1.safetensors"))["images"][:190])
    assert card["data_sources"] == prov and card["cost"]["paid_wei"] == 10**18
    assert set(card["accuracy"]) == {"student", "teacher 0"} and 0 <= card["accuracy"]["student"]["mine"] <= 1
    md = (out / "MODEL_CARD.md").read_text()
    assert MINERS[1] in md and m.bundles[1].cid in md and "190 / 200" in md
    assert (out / "preview.png").stat().st_size > 0 and (out / "student.safetensors.json").exists()
    assert not (out / "checkpoint.safetensors").exists()


def test_a_bundle_file_whose_cid_differs_is_refused(accepted, tmp_path):
    m = load_manifest(accepted)
    bundlemod.write(tmp_path / "b1.safetensors", noise_images(200, (1, 8, 8), 99), Binding(31337, CONTRACT, 7,
                                                                                            MINERS[1]))
    with pytest.raises(HarvestError, match="not the bundle that was paid for"):
        harvest(m.spec, m.bundles, tmp_path / "out", steps=10, baselines=False, progress=False)


def test_a_manifest_without_bundles_or_with_a_bad_cid_is_refused(accepted):
    raw = json.loads(accepted.read_text())
    for change, match in (({"bundles": []}, "at least one"), ({"schema": "x"}, "schema"),
                          ({"bundles": [{**raw["bundles"][0], "cid": "bafy-not-a-cid"}]}, "cid")):
        accepted.write_text(json.dumps({**raw, **change}))
        with pytest.raises(HarvestError, match=match):
            load_manifest(accepted)


def test_the_full_length_recipe_is_much_longer_than_the_score_probe(reference_task):
    spec = specmod.load(reference_task["spec"])
    r = harvest_recipe(spec, 1000)
    assert r.steps >= 10 * spec.recipe.steps and (r.lr, r.temperature, r.augment) == (
        spec.recipe.lr, spec.recipe.temperature, spec.recipe.augment)
    assert harvest_recipe(spec, 100_000).steps >= 60 * 100_000 // spec.recipe.batch


def _harvest_cli(manifest: Path, out: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "cli", "task", "harvest", "--bundles", str(manifest), "--out", str(out),
            "--steps", str(steps), "--no-baselines", "--threads", "1"]


@pytest.mark.slow
def test_a_killed_harvest_resumes_and_ends_with_the_same_student(accepted, tmp_path, codream_home):
    steps = 120
    m = load_manifest(accepted)
    whole = harvest(m.spec, m.bundles, tmp_path / "whole", steps=steps, threads=1, baselines=False, progress=False)
    assert whole["training"]["recipe"]["steps"] == steps

    out = tmp_path / "killed"
    proc = subprocess.Popen(_harvest_cli(accepted, out, steps), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (out / "checkpoint.safetensors").exists():
        assert proc.poll() is None, "the harvest ended before writing a checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert not (out / "student.safetensors").exists()
    ckpt_step = int(_meta(out / "checkpoint.safetensors")["step"])
    assert 0 < ckpt_step < steps

    done = subprocess.run(_harvest_cli(accepted, out, steps), cwd=REPO, capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"(resumed)" in done.stderr and b"reusing" in done.stderr
    a, b = load_file(str(tmp_path / "whole" / "student.safetensors")), load_file(str(out / "student.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    again = subprocess.run(_harvest_cli(accepted, out, steps + 1), cwd=REPO, capture_output=True,
                           timeout=120)
    assert again.returncode == 1 and b"another recipe" in again.stderr


def _meta(path: Path) -> dict:
    with safe_open(str(path), "pt") as fh:
        return fh.metadata()


def test_the_accepted_bundles_of_a_finalized_task_come_from_the_market_view():
    cid = "bafkreicniw2urkdzzvxxawhbiuyt3ktpga6fa3oyctu33knrmsgp2r5rfu"
    view = {"task_id": 3, "phase": "finalized", "submissions": [
        {"index": 0, "miner": MINERS[0], "cid": cid, "result": 8700, "status": "accepted", "reward": 5},
        {"index": 1, "miner": MINERS[1], "cid": cid[:-1] + "a", "result": -(2**31), "status": "invalid", "reward": 0},
        {"index": 2, "miner": None, "revealed": False, "result": 0, "status": "unrevealed"}]}  # show_task's shape
    got = accepted_from_task_view(view)
    assert [(b.index, b.miner, b.cid, b.score_bps, b.reward_wei) for b in got] == [(0, MINERS[0], cid, 8700, 5)]
    with pytest.raises(HarvestError, match="finalized"):
        accepted_from_task_view({**view, "phase": "score reveal"})
    with pytest.raises(HarvestError, match="no accepted"):
        accepted_from_task_view({**view, "submissions": view["submissions"][1:]})
