"""Dream synthesis and bundles: reproducible, bounded, round-trips through IPFS."""
import json

import pytest
import torch

from pathlib import Path

from safetensors.torch import load_file

from codream import bundle, spec as specmod
from codream.bundle import Binding
from codream.novelty import repeats_within
from ipfs import IpfsClient, cid_of_file
from miner.methods import TOP_UP_SEED, TOP_UPS, keep_new
from codream.synthesis import BNStatsHook, DreamConfig, DreamResult, DreamTask, dream, dream_shard, mixed_targets
from tests.conftest import run_cli
from codream.teachers import load_teachers

DREAMS = Path(__file__).parent / "data" / "dreams-digits.safetensors"
CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"

B = Binding(31337, "0x" + "12" * 20, 3, "0x" + "34" * 20)


@pytest.fixture(scope="module")
def task(reference_task):
    spec = specmod.load(reference_task["spec"])
    return spec, load_teachers(spec)


def _dream(task, n=60, seed=0, **kw):
    spec, teachers = task
    cfg = DreamConfig(steps=8, batch=25, seed=seed, **kw)
    return dream(teachers, n, spec.num_classes, spec.shape, spec.mean, spec.std, cfg)


def test_same_seed_gives_identical_bundles_on_cpu(task, tmp_path):
    a, b = _dream(task), _dream(task)
    bundle.write(tmp_path / "a", a.images, B)
    bundle.write(tmp_path / "b", b.images, B)
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    c = _dream(task, seed=1)
    assert not torch.equal(a.images, c.images)


def test_each_shard_is_a_function_of_the_seed_and_its_index_alone(task):
    """What lets a cluster dream the shards anywhere, in any order (miner/ray_backend.py): shard 2
    dreamed on its own is the last shard of the whole synthesis, labels and bytes."""
    spec, teachers = task
    whole = _dream(task, n=60, seed=3)
    alone = dream_shard(DreamTask(teachers, 60, spec.num_classes, spec.shape, spec.mean, spec.std,
                                  DreamConfig(steps=8, batch=25, seed=3)), 2)
    assert whole.stats["shards"] == 3
    assert torch.equal(alone.images, whole.images[50:]) and torch.equal(alone.labels, whole.labels[50:])
    with pytest.raises(IndexError):
        dream_shard(DreamTask(teachers, 60, 10, spec.shape, spec.mean, spec.std, DreamConfig(batch=25)), 3)


def test_dreams_are_uint8_balanced_and_bounded_by_batch(task):
    res = _dream(task, n=60)
    assert res.images.dtype == torch.uint8 and res.images.shape == (60, 1, 8, 8)
    assert torch.bincount(res.labels, minlength=10).tolist() == [6] * 10


def test_optimisation_lowers_the_bn_statistics_loss(task):
    spec, teachers = task
    from codream.data import normalize

    def bn_loss(images):
        hooks = [BNStatsHook(m) for m in teachers[0].modules() if isinstance(m, torch.nn.BatchNorm2d)]
        with torch.no_grad():
            teachers[0](normalize(images, spec.mean, spec.std))
        total = sum(float(h.loss) for h in hooks)
        for h in hooks:
            h.remove()
        return total

    noise = (0.5 + 0.2 * torch.randn(50, 1, 8, 8)).clamp(0, 1)
    dreamed = _dream(task, n=50).images
    assert bn_loss(dreamed) < 0.5 * bn_loss((noise * 255).to(torch.uint8))


def test_teachers_stay_frozen_and_unchanged(task):
    spec, teachers = task
    before = {k: v.clone() for k, v in teachers[0].state_dict().items()}
    _dream(task, n=20)
    assert all(not p.requires_grad for p in teachers[0].parameters())
    for k, v in teachers[0].state_dict().items():
        assert torch.equal(v, before[k]), k


def test_several_teachers_of_different_architectures_dream_together(task):
    spec, teachers = task
    from codream.zoo import build_model

    other = build_model({"arch": "digits_cnn", "num_classes": 10, "in_channels": 1, "image_size": 8, "width": 8})
    res = dream([teachers[0], other], 20, 10, spec.shape, spec.mean, spec.std, DreamConfig(steps=3, batch=10))
    assert res.images.shape == (20, 1, 8, 8)


def test_mixed_targets_are_distributions():
    t = mixed_targets(torch.arange(10), 10, 1.0, torch.Generator().manual_seed(0))
    assert torch.allclose(t.sum(1), torch.ones(10)) and (t.max(1).values >= 0.5).all()


def test_bundle_binding_metadata_round_trips(task, tmp_path):
    res = _dream(task, n=20)
    bundle.write(tmp_path / "b.safetensors", res.images, B)
    images, header = bundle.read((tmp_path / "b.safetensors").read_bytes())
    assert torch.equal(images, res.images)
    assert header.metadata == B.metadata()


def test_bundle_round_trips_through_ipfs_with_identical_cid(task, ipfs_node, tmp_path):
    res = _dream(task, n=200)
    path = bundle.write(tmp_path / "b.safetensors", res.images, B)
    client = IpfsClient(ipfs_node.api)
    cid = client.add_file(path)
    assert cid == cid_of_file(path)
    client.cat_to_file(cid, tmp_path / "back.safetensors")
    assert (tmp_path / "back.safetensors").read_bytes() == path.read_bytes()
    assert cid_of_file(tmp_path / "back.safetensors") == cid


def _spec_variant(reference_task, tmp_path, mutate):
    raw = json.loads(open(reference_task["spec"]).read())
    mutate(raw)
    p = tmp_path / "spec.json"
    p.write_text(json.dumps(raw))
    import shutil

    shutil.copy(reference_task["teacher"], tmp_path / "teacher.safetensors")
    return p


@pytest.mark.parametrize("mutate,match", [
    (lambda r: r["teachers"][0]["model"].update(arch="transformer9000"), "unknown architecture"),
    (lambda r: r["input"].update(height=2, width=2), "input.height"),
    (lambda r: r["teachers"][0]["model"].update(width=8), "has shape"),
    (lambda r: r["student"].update(arch="resnet18"), "at least 16x16"),
    (lambda r: r.update(schema="codream.task-spec/0"), "spec.schema"),
])
def test_bad_task_input_fails_clearly_before_any_compute(reference_task, tmp_path, mutate, match):
    spec_path = _spec_variant(reference_task, tmp_path, mutate)
    res = run_cli("miner", "dream", "--task-spec", str(spec_path), "--n", "100", "--out", str(tmp_path / "o"),
                  env={"CODREAM_HOME": str(tmp_path / "home")}, timeout=120)
    assert res.returncode == 1
    err = res.stderr.decode()
    assert "error:" in err and "Traceback" not in err
    import re

    assert re.search(match, err), err
    assert "dreaming" not in err  # no progress bar: nothing was computed
    assert not (tmp_path / "o").exists()


def test_keep_new_drops_the_bundles_own_repeats_and_dreams_replacements():
    # the digits reference task's checks (no teacher needed: nothing is dreamed here)
    spec = specmod.validate(specmod.digits_reference(CID, {"arch": "digits_cnn", "width": 32}))
    pool = load_file(str(DREAMS))["a"]  # honest dreams: none repeats another
    labels = torch.arange(len(pool)) % 10
    copies = torch.roll(pool[:20], 1, dims=3)  # shifted copies of earlier images: near-twins
    first = DreamResult(torch.cat([pool[:60], copies]), torch.cat([labels[:60], labels[:20]]), {"seconds": 1.0})
    calls = []

    def more(k, seed, kept):
        calls.append((k, seed, len(kept.images)))
        return DreamResult(pool[100:100 + k], labels[100:100 + k])

    res = keep_new(spec, first, 80, 5, more)
    assert len(res.images) == 80 and not repeats_within(res.images, spec).any()
    assert calls == [(20, 5 + TOP_UP_SEED, 60)]
    assert res.stats["repeats_first_pass"] == 0.25 and res.stats["repeats_dropped"] == 20
    assert res.stats["top_up_rounds"] == 1 and res.stats["seconds"] >= 1.0
    # a method that only repeats itself: TOP_UPS rounds, then the bundle goes out short and clean
    stuck = keep_new(spec, first, 80, 5, lambda k, s, kept: DreamResult(kept.images[:k].roll(1, 3), kept.labels[:k]))
    assert len(stuck.images) == 60 and stuck.stats["top_up_rounds"] == TOP_UPS


def test_cuda_request_without_a_gpu_is_a_clear_error(reference_task, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the CUDA path runs instead (see docs/operating.md, 'Mining on a GPU')")
    res = run_cli("miner", "dream", "--task-spec", reference_task["spec"], "--n", "100",
                  "--out", str(tmp_path / "b"), "--device", "cuda")
    assert res.returncode == 1 and "no CUDA GPU" in res.stderr.decode()
