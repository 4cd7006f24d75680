"""Bring your own teacher: the importer builds task folders from an owner's own files, and
refuses, with a reason, everything dreaming and scoring could not use. Also the union eval
set verifiers score co-owned tasks on."""
import json
import pickle
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from codream import spec as specmod
from codream.evalset import EvalSetError, load_eval_set, load_eval_union, save_eval_set, union_eval_sets
from codream.zoo import build_model, load_model, save_model
from ipfs import cid_of_file
from owner.importer import (EvalSource, ImportRefused, TeacherSource, add_eval, init_task, load_eval_source,
                            owner_evals, parse_eval, parse_teacher)
from owner.tasks import set_quality_bar
from tests.conftest import run_cli

CFG = {"arch": "digits_cnn", "num_classes": 10, "in_channels": 1, "image_size": 8, "width": 32}


@pytest.fixture(scope="module")
def owner_files(reference_task, tmp_path_factory):
    """What an owner brings: weights as a plain state dict and as safetensors, an eval set."""
    d = tmp_path_factory.mktemp("owner-files")
    model, cfg = load_model(reference_task["teacher"])
    torch.save(model.state_dict(), d / "plain.pt")
    torch.save({"epoch": 40, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}},
               d / "checkpoint.pt")
    return {"dir": d, "model": model, "cfg": cfg, "safetensors": Path(reference_task["teacher"]),
            "eval": Path(reference_task["eval_set"]), "accuracy": reference_task["teacher_accuracy"],
            "eval_size": reference_task["eval_size"]}


def _init(tmp_path, teacher, eval_path, **kw):
    t = parse_teacher(teacher) if isinstance(teacher, str) else teacher
    return init_task(tmp_path / "task", [t], [parse_eval(str(eval_path))], **kw)


def test_an_owner_builds_a_task_folder_that_create_task_can_publish(owner_files, tmp_path):
    info = _init(tmp_path, str(owner_files["safetensors"]), owner_files["eval"])
    task = tmp_path / "task"
    spec = specmod.load(task / "spec.json")
    # the accuracy training reported, within one eval image (a borderline image's logits can tie
    # differently in the trained model in memory and the same weights loaded from the file)
    one_image = 1.01 / owner_files["eval_size"]
    assert info["accuracy"]["owner"]["owner"] == pytest.approx(owner_files["accuracy"], abs=one_image)
    assert (task / "eval.safetensors").exists()  # what `codream task create` commits to
    t = spec.teachers[0]
    assert cid_of_file(task / t["file"]) == t["weights_cid"]
    assert load_eval_set(task / "eval.safetensors", spec)[0].shape == (540, 1, 8, 8)
    assert info["normalisation"]["source"].startswith("computed from the 540 eval images")
    reference = specmod.digits_reference(t["weights_cid"], CFG)  # the 8×8 reference recipe
    assert spec.student["arch"] == "digits_cnn" and spec.recipe.steps == reference["distill"]["steps"]
    assert owner_evals(task) == {"owner": task / "eval.safetensors"}


def test_a_plain_state_dict_is_converted_to_the_same_safetensors(owner_files, tmp_path):
    a = _init(tmp_path / "a", str(owner_files["safetensors"]), owner_files["eval"], mean=[0.3051], std=[0.3816])
    b = _init(tmp_path / "b", f"file={owner_files['dir'] / 'checkpoint.pt'},arch=digits_cnn,width=32",
              owner_files["eval"], mean=[0.3051], std=[0.3816])
    assert a["teachers"][0]["weights_cid"] == b["teachers"][0]["weights_cid"]
    assert b["normalisation"]["source"] == "given by the owner"


def _write_state(path: Path, state: dict) -> str:
    torch.save(state, path)
    return str(path)


class NoBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(8, 10)


def _nan_state(model):
    s = {k: v.clone() for k, v in model.state_dict().items()}
    s["head.weight"][0, 0] = float("nan")
    return s


REFUSALS = [
    ("no BatchNorm", lambda f, d: f"file={_write_state(d / 'nobn.pt', NoBN().state_dict())},arch=digits_cnn",
     "no BatchNorm layers"),
    ("wrong width", lambda f, d: f"file={f['dir'] / 'plain.pt'},arch=digits_cnn,width=16", "width="),
    ("wrong architecture", lambda f, d: f"file={f['dir'] / 'plain.pt'},arch=digits_deep", "do not fit digits_deep"),
    ("no architecture", lambda f, d: str(f["dir"] / "plain.pt"), "which architecture"),
    ("unknown architecture", lambda f, d: f"file={f['dir'] / 'plain.pt'},arch=vgg99", "unknown architecture"),
    ("NaN weights", lambda f, d: f"file={_write_state(d / 'nan.pt', _nan_state(f['model']))},arch=digits_cnn,width=32",
     "NaN"),
    ("untrained BN statistics", lambda f, d: f"file={_write_state(d / 'fresh.pt', build_model(CFG).state_dict())},"
     "arch=digits_cnn,width=32", "initial statistics"),
    ("a whole pickled model", lambda f, d: f"file={_write_state(d / 'whole.pt', {'model': f['model']})},"
     "arch=digits_cnn,width=32", "never unpickled"),
    ("missing file", lambda f, d: f"file={d / 'nope.pt'},arch=digits_cnn", "no such file"),
]


@pytest.mark.parametrize("case,teacher,match", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_an_unusable_teacher_is_refused_with_its_reason(owner_files, tmp_path, case, teacher, match):
    with pytest.raises(ImportRefused, match=match):
        _init(tmp_path, teacher(owner_files, tmp_path), owner_files["eval"])
    assert not (tmp_path / "task").exists(), "nothing is written when an input is refused"


def test_a_pickle_that_runs_code_is_refused_without_running_it(owner_files, tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"features.0.weight": Evil()}, fh)
    with pytest.raises(ImportRefused, match="never unpickled"):
        _init(tmp_path, f"file={tmp_path / 'evil.pt'},arch=digits_cnn", owner_files["eval"])
    assert not marker.exists()


def _eval_variant(tmp_path, images, labels, name="ev.safetensors"):
    save_file({"images": images, "labels": labels}, str(tmp_path / name))
    return tmp_path / name


@pytest.mark.parametrize("case,make,kw,match", [
    ("label out of range", lambda x, y: (x, torch.where(y == 9, 10, y)), {"num_classes": 10}, "out of range"),
    ("negative label", lambda x, y: (x, torch.where(y == 9, -1, y)), {}, "negative labels"),
    ("other input shape", lambda x, y: (x.repeat(1, 1, 2, 2), y), {}, "input_size|image_size|eval set has|run on"),
    ("float images outside [0,1]", lambda x, y: (x.float(), y), {}, r"lie in \[0,1\]"),
    ("fractional labels", lambda x, y: (x, y.float() + 0.5), {}, "whole class indices"),
    ("too few images", lambda x, y: (x[:5], y[:5]), {}, "at least 10"),
    ("other class count", lambda x, y: (x, y), {"num_classes": 12}, "12"),
])
def test_an_unusable_eval_set_is_refused_with_its_reason(owner_files, tmp_path, case, make, kw, match):
    t = load_file(str(owner_files["eval"]))
    x, y = make(t["images"], t["labels"])
    path = _eval_variant(tmp_path, x.contiguous(), y.contiguous())
    with pytest.raises(ImportRefused, match=match):
        _init(tmp_path, str(owner_files["safetensors"]), path, **kw)


def test_a_wrong_normalisation_is_caught_by_the_accuracy_check(owner_files, tmp_path):
    with pytest.raises(ImportRefused, match="not the one it was trained with"):
        _init(tmp_path, str(owner_files["safetensors"]), owner_files["eval"], mean=[0.9], std=[0.1])
    info = _init(tmp_path, str(owner_files["safetensors"]), owner_files["eval"], mean=[0.9], std=[0.1],
                 allow_weak=True)
    assert info["accuracy"]["owner"]["owner"] < 0.8


def test_a_png_folder_with_labels_csv_reads_as_the_same_eval_set(owner_files, tmp_path):
    t = load_file(str(owner_files["eval"]))
    folder = tmp_path / "pngs"
    folder.mkdir()
    rows = ["file,label"]
    for i in range(40):
        Image.fromarray(t["images"][i, 0].numpy(), "L").save(folder / f"{i:03d}.png")
        rows.append(f"{i:03d}.png,{int(t['labels'][i])}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    x, y, notes = load_eval_source(folder)
    assert torch.equal(x, t["images"][:40]) and torch.equal(y, t["labels"][:40])
    (folder / "labels.csv").write_text("\n".join(rows + ["missing.png,3"]) + "\n")
    with pytest.raises(ImportRefused, match="missing.png does not exist"):
        load_eval_source(folder)
    (folder / "labels.csv").unlink()
    with pytest.raises(ImportRefused, match="labels.csv"):
        load_eval_source(folder)


def test_a_co_owned_folder_has_one_eval_file_per_owner(owner_files, tmp_path):
    t = load_file(str(owner_files["eval"]))
    x, y = t["images"], t["labels"]
    save_eval_set(tmp_path / "a.safetensors", x[y < 5], y[y < 5])
    save_eval_set(tmp_path / "b.safetensors", x[y >= 5], y[y >= 5])
    deep = {"arch": "digits_deep", "num_classes": 10, "in_channels": 1, "image_size": 8, "width": 8}
    torch.manual_seed(0)
    m = build_model(deep)
    m.train()
    with torch.no_grad():  # BN statistics of real images, so it is dreamable (accuracy is not the point here)
        m(((x.float() / 255) - 0.3051) / 0.3816)
    save_model(m.eval(), deep, tmp_path / "bob.safetensors")
    info = init_task(tmp_path / "task", [TeacherSource(owner_files["safetensors"], "alice"),
                                         TeacherSource(tmp_path / "bob.safetensors", "bob")],
                     [EvalSource("alice", tmp_path / "a.safetensors"), EvalSource("bob", tmp_path / "b.safetensors")],
                     mean=[0.3051], std=[0.3816], allow_weak=True)
    task = tmp_path / "task"
    assert owner_evals(task) == {"alice": task / "evals/alice.safetensors", "bob": task / "evals/bob.safetensors"}
    assert not (task / "eval.safetensors").exists()
    spec = specmod.load(task / "spec.json")
    assert [t["model"]["arch"] for t in spec.teachers] == ["digits_cnn", "digits_deep"]
    assert set(info["accuracy"]) == {"alice", "bob", "ensemble"}
    assert set(info["accuracy"]["alice"]) == {"alice", "bob", "union"}
    ux, uy = load_eval_union(list(owner_evals(task).values()), spec)
    assert len(uy) == len(y) and sorted(uy.tolist()) == sorted(y.tolist())
    with pytest.raises(ImportRefused, match="whose is it"):
        init_task(tmp_path / "t2", [TeacherSource(owner_files["safetensors"])],
                  [EvalSource("alice", tmp_path / "a.safetensors"), EvalSource("bob", tmp_path / "b.safetensors")])


def test_a_co_owner_adds_its_eval_set_to_a_one_owner_folder(owner_files, tmp_path):
    _init(tmp_path, f"file={owner_files['safetensors']},owner=alice", f"alice={owner_files['eval']}")
    task = tmp_path / "task"
    t = load_file(str(owner_files["eval"]))
    save_eval_set(tmp_path / "b.safetensors", t["images"][:100], t["labels"][:100])
    out = add_eval(task, EvalSource("bob", tmp_path / "b.safetensors"), specmod.load(task / "spec.json"))
    assert out["accuracy"]["alice"]["bob"] > 0.9
    assert owner_evals(task) == {"alice": task / "evals/alice.safetensors", "bob": task / "evals/bob.safetensors"}
    assert json.loads((task / "task.json").read_text())["accuracy"]["alice"]["bob"] == out["accuracy"]["alice"]["bob"]


def test_the_union_leaves_out_what_an_earlier_owner_already_revealed():
    g = torch.Generator().manual_seed(0)
    a = (torch.randint(0, 256, (20, 1, 8, 8), generator=g, dtype=torch.uint8), torch.arange(20) % 10)
    b = (torch.cat([a[0][:5], torch.randint(0, 256, (10, 1, 8, 8), generator=g, dtype=torch.uint8)]),
         torch.cat([a[1][:5], torch.arange(10)]))
    x, y = union_eval_sets([a, b])
    assert len(x) == 30 and torch.equal(x[:20], a[0]) and torch.equal(x[20:], b[0][5:])
    relabelled = (b[0], torch.cat([(a[1][:5] + 1) % 10, torch.arange(10)]))
    assert len(union_eval_sets([a, relabelled])[0]) == 35  # another owner's label for the same image counts
    dup = (torch.cat([a[0], a[0][:3]]), torch.cat([a[1], a[1][:3]]))
    assert len(union_eval_sets([dup])[0]) == 23  # one owner's own set is taken as revealed
    with pytest.raises(EvalSetError):
        union_eval_sets([])


def test_task_init_cli_prints_the_report_and_explains_refusals(owner_files, tmp_path):
    done = run_cli("task", "init", "--out", str(tmp_path / "t"), "--teacher", str(owner_files["safetensors"]),
                   "--eval", str(owner_files["eval"]))
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["accuracy"]["owner"]["owner"] > 0.9
    assert b"owner" in done.stderr  # the table
    bad = run_cli("task", "init", "--out", str(tmp_path / "u"), "--teacher",
                  f"file={owner_files['dir'] / 'plain.pt'},arch=digits_cnn,width=16", "--eval", str(owner_files["eval"]))
    assert bad.returncode == 1 and b"error:" in bad.stderr and b"width=" in bad.stderr


def test_an_owner_sets_its_quality_bar_in_the_spec_and_a_bad_one_writes_nothing(reference_task, tmp_path):
    """The economics a round runs under (min gain, the unit new images are paid in) are written into
    the task's spec by the owner role (owner.tasks.set_quality_bar), validated first."""
    base = Path(reference_task["spec"]).parent
    spec = set_quality_bar(base, tmp_path / "bar", min_gain_bps=7000, reference_images=300)
    on_disk = json.loads((tmp_path / "bar" / "spec.json").read_text())
    assert spec.scoring.min_gain_bps == on_disk["scoring"]["min_gain_bps"] == 7000
    assert on_disk["scoring"]["novelty"]["reference_images"] == 300
    assert (tmp_path / "bar" / "teacher.safetensors").exists()
    assert json.loads((base / "spec.json").read_text())["scoring"]["min_gain_bps"] != 7000  # the source is untouched
    with pytest.raises(specmod.SpecError, match="min_gain_bps"):
        set_quality_bar(base, tmp_path / "bad", min_gain_bps=20_000)
    assert not (tmp_path / "bad").exists()
