"""Bring your own teacher: build a task folder from an owner's own files.

Inputs an owner has (nothing from this project needed):

- **teachers**: a zoo architecture (``codream.zoo.ARCHS``) with weights as safetensors, or
  a plain PyTorch state dict (``torch.save(model.state_dict(), "model.pt")``), loaded with
  ``torch.load(..., weights_only=True)`` (tensors only: a file that needs code to load is
  refused) and converted to safetensors;
- **eval sets**, one per owner: a safetensors file (``images`` uint8 [N,C,H,W] or [N,H,W], or
  float in [0, 1]; ``labels`` integers [N]) or a folder of PNGs with ``labels.csv``
  (``file,label`` rows);
- the input normalisation (given, or computed from the eval images), the student and the
  recipe (defaults by input size: the project's reference recipes).

Every check dreaming and scoring depend on runs before anything is written, and each refusal
says what failed and what to do: BatchNorm layers with trained statistics (DeepInversion
dreams by matching them), weights that fit the architecture, finite numbers, one class
count and input shape across teachers and eval sets, labels in range, a teacher that beats
chance on its owner's eval set.

The task folder (``FOLDER_SCHEMA``)::

    spec.json                   public: every teacher, input + normalisation, student, recipe
    teachers/<owner>.safetensors  public: weights (config in metadata; <owner>-<i> for several)
    eval.safetensors            the owner's secret eval set (one owner: what `task create` commits to)
    evals/<owner>.safetensors   co-owned tasks: each owner's secret eval set, committed and revealed
                                by that owner; verifiers score on the union (codream.evalset)
    task.json                   owners (teachers, eval file), normalisation and where it came from,
                                the accuracy report
"""
from __future__ import annotations

import csv
import json
import math
import pickle
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn

from codream import arithmetic
from codream.distill import accuracy, ensemble_logits
from codream.evalset import load_eval_set, save_eval_set, union_eval_sets
from codream.spec import SpecError, TaskSpec, reference_spec, validate
from codream.zoo import ARCHS, ModelConfigError, build_model, check_config, freeze, save_model
from ipfs import cid_of_file

FOLDER_SCHEMA = "codream.task-folder/1"
OWNER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
# a teacher must beat this multiple of chance on its own owner's eval set
MIN_ACCURACY_OVER_CHANCE = 2.0
MIN_EVAL_IMAGES = 10


class ImportRefused(ValueError):
    """An owner's file cannot be used for a task; the message says what failed and what to do."""


@dataclass
class TeacherSource:
    """One teacher as the owner has it: a weights file and (unless the file's safetensors
    metadata says) the zoo architecture with its hyper-parameters."""

    file: Path
    owner: str | None = None  # None: the only owner (refused when there are several)
    model: dict = field(default_factory=dict)  # {"arch": ..., "width": ...}; shape fields are filled in


@dataclass
class EvalSource:
    owner: str
    path: Path


# -- parsing the command line's compact forms ------------------------------------------------

def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_teacher(text: str) -> TeacherSource:
    """``PATH`` or ``file=PATH,owner=NAME,arch=ARCH,width=32,...`` (``config=FILE.json`` too)."""
    if "=" not in text:
        return TeacherSource(Path(text))
    fields = dict(_pair(part, "--teacher") for part in text.split(","))
    if "file" not in fields:
        raise ImportRefused(f"--teacher {text!r}: name the weights file (file=PATH)")
    model = {}
    if "config" in fields:
        try:
            model = json.loads(Path(fields.pop("config")).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ImportRefused(f"--teacher {text!r}: cannot read the config file ({exc})") from None
    file, owner = Path(fields.pop("file")), fields.pop("owner", None)
    model.update({k: _value(v) for k, v in fields.items()})
    return TeacherSource(file, owner, model)


def parse_eval(text: str) -> EvalSource:
    """``PATH`` or ``OWNER=PATH`` (a safetensors file or a folder of PNGs + labels.csv)."""
    if "=" in text:
        owner, path = _pair(text, "--eval")
        return EvalSource(owner, Path(path))
    return EvalSource("owner", Path(text))


def _pair(text: str, flag: str) -> tuple[str, str]:
    k, sep, v = text.partition("=")
    if not sep or not k.strip() or not v.strip():
        raise ImportRefused(f"{flag}: expected key=value, got {text!r}")
    return k.strip(), v.strip()


def parse_floats(text: str | None, flag: str) -> list[float] | None:
    if text is None:
        return None
    try:
        vals = [float(x) for x in text.split(",")]
    except ValueError:
        raise ImportRefused(f"{flag}: comma-separated numbers, one per channel, got {text!r}") from None
    if not all(math.isfinite(v) for v in vals):
        raise ImportRefused(f"{flag}: numbers must be finite, got {text!r}")
    return vals


# -- teachers ------------------------------------------------------------------------------

def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain PyTorch state dict, loaded with ``weights_only=True`` (never runs code).

    Accepts ``{name: tensor}``, or that under a ``"state_dict"`` / ``"model"`` key (training
    checkpoints), with a ``"module."`` prefix (DataParallel) stripped."""
    path = Path(path)
    try:
        with warnings.catch_warnings():  # torch warns about legacy (non-zip) files; the refusal says enough
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ImportRefused(f"{path}: no such file") from None
    except pickle.UnpicklingError:
        raise ImportRefused(
            f"{path}: refused: the file holds Python objects other than tensors (a whole model, custom "
            "classes or code), and it is never unpickled. Save the weights alone: "
            "torch.save(model.state_dict(), PATH), or as safetensors.") from None
    except Exception as exc:  # a corrupt or foreign file
        raise ImportRefused(f"{path}: not a PyTorch state dict or safetensors file ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise ImportRefused(f"{path}: expected a state dict (a mapping of parameter names to tensors), "
                            f"got {type(obj).__name__}; save model.state_dict(), not the model object")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ImportRefused(f"{path}: entries {bad[:5]} are not tensors; save model.state_dict() only")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """State dict and the zoo config in its safetensors metadata (if any)."""
    if not path.exists():
        raise ImportRefused(f"{path}: no such file")
    try:
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
        cfg = json.loads(meta["codream_model_config"]) if "codream_model_config" in meta else None
        return load_file(str(path)), cfg
    except (SafetensorError, OSError, ValueError):
        return load_state_dict_file(path), None


def _config(src: TeacherSource, file_cfg: dict | None, num_classes: int, shape: tuple[int, int, int]) -> dict:
    model = {**(file_cfg or {}), **src.model}
    if "arch" not in model:
        raise ImportRefused(f"{src.file}: which architecture are these weights for? Give arch=NAME "
                            f"(one of {', '.join(sorted(ARCHS))}) and its hyper-parameters, e.g. "
                            f"--teacher file={src.file},arch=digits_cnn,width=32")
    c, h, w = shape
    want = {"num_classes": num_classes, "in_channels": c, "image_size": min(h, w)}
    for k, v in want.items():
        if k in model and model[k] != v:
            raise ImportRefused(f"{src.file}: the teacher has {k}={model[k]}, but the eval set "
                                f"{'has' if k != 'num_classes' else 'implies'} {v} "
                                "(all teachers and eval sets of a task must share classes and input shape)")
    try:
        return check_config({**model, **want})
    except ModelConfigError as exc:
        raise ImportRefused(f"{src.file}: {exc}") from None


def _fit(model: nn.Module, state: dict[str, torch.Tensor], cfg: dict, path: Path) -> None:
    want = model.state_dict()
    if not any(k.endswith("running_mean") for k in state):
        raise ImportRefused(
            f"{path}: the weights have no BatchNorm layers (no running_mean/running_var). Dreams are made by "
            "matching each BatchNorm layer's statistics (DeepInversion), so this model cannot be dreamed from. "
            f"Train one of the zoo architectures ({', '.join(sorted(ARCHS))}); they all have BatchNorm.")
    missing, extra = sorted(set(want) - set(state)), sorted(set(state) - set(want))
    if missing or extra:
        raise ImportRefused(f"{path}: the weights do not fit {cfg['arch']} ({_hp(cfg)}): missing {missing[:4]}"
                            f"{' …' if len(missing) > 4 else ''}, unexpected {extra[:4]}"
                            f"{' …' if len(extra) > 4 else ''}: they were trained as another architecture; "
                            f"check arch= (known: {', '.join(sorted(ARCHS))})")
    for k, v in want.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise ImportRefused(f"{path}: {k} has shape {tuple(state[k].shape)} but {cfg['arch']} with "
                                f"{_hp(cfg)} needs {tuple(v.shape)}: the hyper-parameters (e.g. width=) or the "
                                "class count differ from the ones the model was trained with")
        if state[k].is_floating_point() and not torch.isfinite(state[k]).all():
            raise ImportRefused(f"{path}: {k} contains NaN or infinite values: the training diverged; "
                                "export the weights from a checkpoint before that")
    model.load_state_dict({k: state[k].to(v.dtype) for k, v in want.items()})


def _hp(cfg: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(cfg.items()) if k != "arch") or "defaults"


def check_dreamable(model: nn.Module, where: str) -> None:
    """Refuse a model DeepInversion cannot dream from: no BatchNorm2d layers, or BN
    statistics that are missing, at their initial values (never trained) or not finite."""
    bns = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    if not bns:
        raise ImportRefused(f"{where}: the architecture has no BatchNorm2d layers; dreams are made by matching "
                            "BatchNorm statistics (DeepInversion), so it cannot be dreamed from")
    fresh = 0
    for name, m in bns:
        if m.running_mean is None or m.running_var is None:
            raise ImportRefused(f"{where}: BatchNorm {name} keeps no running statistics "
                                "(track_running_stats=False); dreaming needs them")
        if not (torch.isfinite(m.running_mean).all() and torch.isfinite(m.running_var).all()):
            raise ImportRefused(f"{where}: BatchNorm {name} has NaN/infinite running statistics")
        if (m.running_var <= 0).any():
            raise ImportRefused(f"{where}: BatchNorm {name} has a running variance <= 0")
        if torch.all(m.running_mean == 0) and torch.all(m.running_var == 1):
            fresh += 1
    if fresh == len(bns):
        raise ImportRefused(f"{where}: every BatchNorm layer still has its initial statistics (mean 0, var 1): "
                            "the model was saved before training, or trained without updating them "
                            "(always in eval mode). Dreams would match nothing; export the trained model.")


def load_teacher(src: TeacherSource, num_classes: int, shape: tuple[int, int, int]) -> tuple[nn.Module, dict]:
    """The owner's teacher as a frozen zoo model, with every check done; and its full config."""
    state, file_cfg = _read_weights(Path(src.file))
    cfg = _config(src, file_cfg, num_classes, shape)
    model = build_model(cfg)
    _fit(model, state, cfg, Path(src.file))
    check_dreamable(model, str(src.file))
    model = freeze(model)
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *shape))
    except RuntimeError as exc:
        raise ImportRefused(f"{src.file}: {cfg['arch']} does not run on {shape} inputs ({exc})") from None
    if tuple(out.shape) != (2, num_classes):
        raise ImportRefused(f"{src.file}: the model gives {tuple(out.shape)[1:]} outputs, the task has "
                            f"{num_classes} classes")
    return model, cfg


def teacher_classes(src: TeacherSource) -> int | None:
    """The class count a teacher's file states (safetensors metadata or the config given)."""
    if "num_classes" in src.model:
        return int(src.model["num_classes"])
    try:
        with safe_open(str(src.file), "pt") as fh:
            meta = fh.metadata() or {}
        return int(json.loads(meta["codream_model_config"])["num_classes"])
    except (SafetensorError, OSError, ValueError, KeyError, TypeError):
        return None


# -- eval sets -----------------------------------------------------------------------------

def load_eval_source(path: str | Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """An owner's eval set as (uint8 [N,C,H,W], int64 [N], notes): a safetensors file or a
    folder of images with labels.csv. Every refusal names the file and what to fix."""
    path = Path(path)
    if path.is_dir():
        x, y, notes = _eval_from_folder(path)
    elif path.exists():
        x, y, notes = _eval_from_safetensors(path)
    else:
        raise ImportRefused(f"{path}: no such file or folder")
    if len(x) < MIN_EVAL_IMAGES:
        raise ImportRefused(f"{path}: {len(x)} eval images; a score needs at least {MIN_EVAL_IMAGES} "
                            "(hundreds keep one image's flip well inside the score tolerance)")
    if int(y.min()) < 0:
        raise ImportRefused(f"{path}: negative labels ({int(y.min())}); labels are class indices 0..K-1")
    return x, y, notes


def _eval_from_safetensors(path: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    try:
        t = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ImportRefused(f"{path}: not a readable safetensors file ({exc}); give a safetensors file with "
                            "'images' and 'labels', or a folder of PNGs with labels.csv") from None
    if "images" not in t or "labels" not in t:
        raise ImportRefused(f"{path}: needs tensors 'images' and 'labels', found {sorted(t)[:6]}")
    x, y, notes = t["images"], t["labels"], []
    if x.dim() == 3:
        x, notes = x[:, None], [f"{path.name}: images [N,H,W] read as one channel"]
    if x.dim() != 4:
        raise ImportRefused(f"{path}: images must be [N,C,H,W] (or [N,H,W]), got {tuple(x.shape)}")
    if x.dtype != torch.uint8:
        if not x.is_floating_point():
            raise ImportRefused(f"{path}: images must be uint8 (0..255) or float in [0,1], got {x.dtype}")
        if not torch.isfinite(x).all():
            raise ImportRefused(f"{path}: images contain NaN or infinite values")
        if x.min() < 0 or x.max() > 1:
            raise ImportRefused(f"{path}: float images must lie in [0,1] (got {float(x.min()):.3g}.."
                                f"{float(x.max()):.3g}); un-normalise them, or store uint8 0..255")
        x, notes = (x * 255).round().to(torch.uint8), notes + [f"{path.name}: float images in [0,1] stored as uint8"]
    if y.dim() != 1 or len(y) != len(x):
        raise ImportRefused(f"{path}: labels must be one integer per image: {len(x)} images, labels "
                            f"{tuple(y.shape)}")
    if y.is_floating_point():
        if not torch.isfinite(y).all() or not torch.equal(y, y.round()):
            raise ImportRefused(f"{path}: labels must be whole class indices, found fractional or NaN values")
        notes.append(f"{path.name}: float labels read as integers")
    elif y.dtype == torch.bool:
        raise ImportRefused(f"{path}: labels must be class indices, got booleans")
    return x.contiguous(), y.to(torch.int64), notes


def _eval_from_folder(folder: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    csv_path = folder / "labels.csv"
    if not csv_path.exists():
        raise ImportRefused(f"{folder}: a folder eval set needs labels.csv with rows 'file,label' "
                            "(file relative to the folder)")
    with open(csv_path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    if rows and not rows[0][-1].strip().lstrip("-").isdigit():
        rows = rows[1:]  # a header
    if not rows:
        raise ImportRefused(f"{csv_path}: no rows")
    images, labels, modes, size, seen = [], [], set(), None, set()
    for line, row in enumerate(rows, 1):
        if len(row) < 2:
            raise ImportRefused(f"{csv_path}: row {line}: expected 'file,label', got {row}")
        name, label = row[0].strip(), row[1].strip()
        if name in seen:
            raise ImportRefused(f"{csv_path}: row {line}: {name} is listed twice")
        seen.add(name)
        file = (folder / name).resolve()
        if folder.resolve() not in file.parents:
            raise ImportRefused(f"{csv_path}: row {line}: {name} is outside the folder")
        try:
            labels.append(int(label))
        except ValueError:
            raise ImportRefused(f"{csv_path}: row {line}: label {label!r} is not a class index 0..K-1") from None
        try:
            with Image.open(file) as im:
                im.load()
                img = im.copy()
        except FileNotFoundError:
            raise ImportRefused(f"{csv_path}: row {line}: {name} does not exist") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise ImportRefused(f"{csv_path}: row {line}: {name} is not a readable image ({exc})") from None
        if size is None:
            size = img.size
        elif img.size != size:
            raise ImportRefused(f"{folder}: {name} is {img.size[0]}x{img.size[1]}, the first image "
                                f"{size[0]}x{size[1]}: eval images must all have one size")
        if img.mode in ("I", "I;16", "I;16B", "F"):
            raise ImportRefused(f"{folder}: {name} is a {img.mode} (16-bit or float) image; save 8-bit PNGs")
        modes.add(img.mode)
        images.append(img)
    mode = "L" if modes <= {"L", "1", "LA"} else "RGB"
    notes = [] if modes == {mode} else [f"{folder.name}: images in modes {sorted(modes)} converted to {mode}"]
    arrs = [torch.frombuffer(bytearray(im.convert(mode).tobytes()), dtype=torch.uint8) for im in images]
    c = 1 if mode == "L" else 3
    x = torch.stack(arrs).view(len(arrs), size[1], size[0], c).permute(0, 3, 1, 2).contiguous()
    listed = {str((folder / r[0].strip()).resolve()) for r in rows}
    stray = [p for p in folder.iterdir() if p.suffix.lower() == ".png" and str(p.resolve()) not in listed]
    if stray:
        notes.append(f"{folder.name}: {len(stray)} PNG file(s) not in labels.csv were ignored")
    return x, torch.tensor(labels, dtype=torch.int64), notes


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images in [0,1] units (the spec's normalisation)."""
    x = images.double() / 255.0
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3), unbiased=False).clamp_min(1e-3)
    return [round(float(v), 4) for v in mean], [round(float(v), 4) for v in std]


# -- the task folder -----------------------------------------------------------------------

def default_spec(num_classes: int, shape: tuple[int, int, int], mean, std, teachers: list[dict]) -> dict:
    """The project's reference student, recipe and limits for the input size: inputs under
    16 px get the digits reference (8×8, 150 steps), larger ones the CIFAR reference."""
    c, h, w = shape
    raw = reference_spec("digits" if min(h, w) < 16 else "cifar10", teachers[0]["weights_cid"],
                         teachers[0]["model"], teachers[0].get("file"), mean, std)
    raw.update({"name": "owner-task", "num_classes": num_classes, "teachers": teachers,
                "input": {"channels": c, "height": h, "width": w, "mean": list(mean), "std": list(std)}})
    raw["student"] = {k: v for k, v in raw["student"].items() if k not in ("num_classes", "in_channels",
                                                                           "image_size")}
    return arithmetic.stamp(raw)  # receipts, where required, in this machine's arithmetic


def _accuracy_report(models: list[nn.Module], names: list[str], evals: dict[str, tuple], mean, std) -> dict:
    """{teacher name: {eval name: accuracy}}, plus the teachers' ensemble (mean logits)."""

    class Ensemble(nn.Module):
        def forward(self, x):
            return ensemble_logits(models, x)

    report = {}
    for name, m in [*zip(names, models), *([("ensemble", Ensemble())] if len(models) > 1 else [])]:
        report[name] = {e: round(accuracy(m, x, y, mean, std), 4) for e, (x, y) in evals.items()}
    return report


def init_task(out: str | Path, teachers: list[TeacherSource], evals: list[EvalSource], num_classes: int | None = None,
              mean: list[float] | None = None, std: list[float] | None = None, student: dict | None = None,
              distill: dict | None = None, name: str = "owner-task", allow_weak: bool = False,
              force: bool = False) -> dict:
    """Check the owners' teachers and eval sets and write a task folder (module docstring).

    Returns the report: owners, teachers (config, CID), eval sizes, normalisation and its
    source, each teacher's accuracy on each owner's eval set and on their union, notes.
    Raises ImportRefused (nothing written) when anything is unusable."""
    out = Path(out)
    if not teachers:
        raise ImportRefused("no teacher: give at least one --teacher")
    if not evals:
        raise ImportRefused("no eval set: every owner needs one (--eval [OWNER=]PATH)")
    owners = [e.owner for e in evals]
    for o in owners + [t.owner for t in teachers if t.owner is not None]:
        if not OWNER_NAME.match(o):
            raise ImportRefused(f"owner name {o!r}: use 1-32 lower-case letters, digits, '-' or '_'")
    if len(set(owners)) != len(owners):
        raise ImportRefused(f"owners {owners}: each owner gives one eval set")
    for t in teachers:
        if t.owner is None:
            if len(owners) > 1:
                raise ImportRefused(f"teacher {t.file}: whose is it? With several owners name it: "
                                    f"--teacher file={t.file},owner=NAME,… (one of {owners})")
            t.owner = owners[0]
        if t.owner not in owners:
            raise ImportRefused(f"teacher {t.file} belongs to {t.owner!r}, who has no eval set: every owner "
                                f"commits to one (--eval {t.owner}=PATH), or name one of {owners}")
    if out.exists() and any(out.iterdir()) and not force:
        raise ImportRefused(f"{out}: exists and is not empty; choose another folder or pass --force")

    notes: list[str] = []
    data: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for e in evals:
        x, y, n = load_eval_source(e.path)
        data[e.owner], notes = (x, y), notes + n
    shapes = {o: tuple(x.shape[1:]) for o, (x, _) in data.items()}
    if len(set(shapes.values())) > 1:
        raise ImportRefused(f"eval sets have different image shapes {shapes}: one task has one input shape")
    shape = next(iter(shapes.values()))
    if shape[0] > 4:
        raise ImportRefused(f"eval images have {shape[0]} channels; the task input allows 1 to 4")

    stated = {t.file: teacher_classes(t) for t in teachers}
    k = num_classes or next((v for v in stated.values() if v), None)
    top = max(int(y.max()) for _, y in data.values())
    if k is None:
        k = top + 1
        notes.append(f"class count {k} taken from the largest eval label (give --classes if a class is absent)")
    for t, v in stated.items():
        if v is not None and v != k:
            raise ImportRefused(f"{t}: the teacher has {v} classes, the task {k}: all teachers share one label space")
    for o, (_, y) in data.items():
        if int(y.max()) >= k:
            raise ImportRefused(f"eval set of {o!r}: label {int(y.max())} is out of range for {k} classes "
                                f"(labels are 0..{k - 1})")
        absent = sorted(set(range(k)) - set(y.tolist()))
        if absent:
            notes.append(f"eval set of {o!r} has no images of class(es) {absent[:10]}")
        if len(y) < 100:
            notes.append(f"eval set of {o!r} has {len(y)} images: one image is {10_000 // len(y)} bps of score")

    union = union_eval_sets(list(data.values()))
    given = mean is not None or std is not None
    if given:
        if mean is None or std is None:
            raise ImportRefused("give both --mean and --std, or neither (then they come from the eval images)")
        if len(mean) != shape[0] or len(std) != shape[0]:
            raise ImportRefused(f"--mean/--std: one value per channel ({shape[0]}), got {len(mean)} and {len(std)}")
        if any(s <= 0 for s in std):
            raise ImportRefused("--std: every value must be > 0")
        source = "given by the owner"
    else:
        mean, std = channel_stats(union[0])
        source = (f"computed from the {len(union[1])} eval images (pixel/255 per channel); if the teachers were "
                  "trained with another normalisation, pass it with --mean/--std")

    models, cfgs = [], []
    for t in teachers:
        m, cfg = load_teacher(t, k, shape)
        models.append(m)
        cfgs.append(cfg)
    per_owner = {o: sum(t.owner == o for t in teachers) for o in owners}
    counter: dict[str, int] = {}
    names = []
    for t in teachers:
        i = counter[t.owner] = counter.get(t.owner, 0) + 1
        names.append(t.owner if per_owner[t.owner] == 1 else f"{t.owner}-{i}")

    co_owned = len(owners) > 1
    eval_names = {o: o for o in owners}
    evals_for_report = {**data, **({"union": union} if co_owned else {})}
    report = _accuracy_report(models, names, evals_for_report, mean, std)
    chance = 1.0 / k
    if given and not allow_weak:  # a normalisation that is not the training one costs accuracy: say so
        cmean, cstd = channel_stats(union[0])
        for m, t, n in zip(models, teachers, names):
            x, y = data[t.owner]
            own, computed = report[n][t.owner], accuracy(m, x, y, cmean, cstd)
            if computed > own + 0.05:
                raise ImportRefused(
                    f"teacher {n} scores {own:.1%} on its owner's eval set with the given --mean/--std, but "
                    f"{computed:.1%} with the eval images' own statistics (mean {cmean}, std {cstd}): the given "
                    "normalisation is probably not the one it was trained with. Leave --mean/--std out, give the "
                    "training one, or pass --allow-weak.")
    for t, n in zip(teachers, names):
        acc = report[n][eval_names[t.owner]]
        if acc < MIN_ACCURACY_OVER_CHANCE * chance and not allow_weak:
            raise ImportRefused(
                f"teacher {n} ({t.file}) scores {acc:.1%} on its own owner's eval set (chance {chance:.1%}): "
                "usually the wrong normalisation (pass the one used in training with --mean/--std), labels in "
                "another order, or the wrong weights. --allow-weak imports it anyway.")

    # write: teachers, eval set(s), spec, task.json
    out.mkdir(parents=True, exist_ok=True)
    (out / "teachers").mkdir(exist_ok=True)
    spec_teachers = []
    for m, cfg, n in zip(models, cfgs, names):
        rel = f"teachers/{n}.safetensors"
        save_model(m, cfg, out / rel)
        spec_teachers.append({"model": {k2: v for k2, v in cfg.items()
                                        if k2 not in ("num_classes", "in_channels", "image_size")},
                              "weights_cid": cid_of_file(out / rel), "file": rel})
    raw = default_spec(k, shape, mean, std, spec_teachers)
    raw["name"] = name
    if student:
        raw["student"] = student
    if distill:
        raw["distill"] = {**raw["distill"], **distill}
    try:
        spec = validate(raw)
    except SpecError as exc:
        raise ImportRefused(f"task spec: {exc}") from None
    if co_owned:
        (out / "evals").mkdir(exist_ok=True)
    eval_files = {}
    for o, (x, y) in data.items():
        rel = f"evals/{o}.safetensors" if co_owned else "eval.safetensors"
        save_eval_set(out / rel, x, y)
        load_eval_set(out / rel, spec)  # the verifiers' own loader accepts it
        eval_files[o] = rel
    (out / "spec.json").write_text(spec.to_json())
    info = {
        "schema": FOLDER_SCHEMA,
        "name": name,
        "owners": [{"name": o, "eval": eval_files[o], "eval_size": len(data[o][1]),
                    "teachers": [n for t, n in zip(teachers, names) if t.owner == o]} for o in owners],
        "teachers": [{"name": n, "owner": t.owner, "source": str(t.file), "model": cfg,
                      "file": st["file"], "weights_cid": st["weights_cid"]}
                     for t, n, cfg, st in zip(teachers, names, cfgs, spec_teachers)],
        "normalisation": {"mean": list(mean), "std": list(std), "source": source},
        "num_classes": k, "input_shape": list(shape),
        "accuracy": report, "notes": notes,
        "spec": "spec.json", "spec_cid": cid_of_file(out / "spec.json"),
    }
    (out / "task.json").write_text(json.dumps(info, indent=2, sort_keys=True))
    return info


def read_task_folder(task_dir: str | Path) -> dict:
    """``task.json`` of a folder ``init_task`` wrote; a folder from `codream teacher train`
    (spec.json + eval.safetensors) reads as one owner named ``owner``."""
    task_dir = Path(task_dir)
    if (task_dir / "task.json").exists():
        info = json.loads((task_dir / "task.json").read_text())
        if info.get("schema") != FOLDER_SCHEMA:
            raise ImportRefused(f"{task_dir}/task.json: schema {info.get('schema')!r}, expected {FOLDER_SCHEMA!r}")
        return info
    if (task_dir / "spec.json").exists() and (task_dir / "eval.safetensors").exists():
        return {"schema": FOLDER_SCHEMA, "owners": [{"name": "owner", "eval": "eval.safetensors", "teachers": []}],
                "spec": "spec.json"}
    raise ImportRefused(f"{task_dir}: not a task folder (no task.json, or spec.json + eval.safetensors)")


def owner_evals(task_dir: str | Path) -> dict[str, Path]:
    """Each owner's eval file in a task folder, in owner order (owner 0 creates the task, the
    others join): what each owner commits to and later reveals."""
    task_dir = Path(task_dir)
    return {o["name"]: task_dir / o["eval"] for o in read_task_folder(task_dir)["owners"]}


def add_eval(task_dir: str | Path, source: EvalSource, spec: TaskSpec) -> dict:
    """A co-owner joins: check its eval set against the task's spec (shape, classes, every
    teacher's accuracy on it), store it as ``evals/<owner>.safetensors`` and list the owner in
    ``task.json``. A one-owner folder moves its ``eval.safetensors`` to ``evals/<first>``."""
    task_dir = Path(task_dir)
    if not OWNER_NAME.match(source.owner):
        raise ImportRefused(f"owner name {source.owner!r}: use 1-32 lower-case letters, digits, '-' or '_'")
    info = read_task_folder(task_dir)
    if any(o["name"] == source.owner for o in info["owners"]):
        raise ImportRefused(f"{task_dir}: owner {source.owner!r} already has an eval set there")
    x, y, notes = load_eval_source(source.path)
    if tuple(x.shape[1:]) != spec.shape:
        raise ImportRefused(f"{source.path}: images are {tuple(x.shape[1:])}, the task's input is {spec.shape}")
    if int(y.max()) >= spec.num_classes:
        raise ImportRefused(f"{source.path}: label {int(y.max())} is out of range for the task's "
                            f"{spec.num_classes} classes")
    models = [freeze(load_teacher(TeacherSource(task_dir / t["file"], model=t["model"]), spec.num_classes,
                                  spec.shape)[0]) for t in spec.teachers]
    names = [t.get("name", f"teacher{i}") for i, t in enumerate(info.get("teachers") or
                                                                  [{} for _ in spec.teachers])]
    (task_dir / "evals").mkdir(exist_ok=True)
    if info["owners"][0]["eval"] == "eval.safetensors":  # one owner so far: move to the co-owned layout
        first = info["owners"][0]
        shutil.move(task_dir / "eval.safetensors", task_dir / "evals" / f"{first['name']}.safetensors")
        first["eval"] = f"evals/{first['name']}.safetensors"
    rel = f"evals/{source.owner}.safetensors"
    save_eval_set(task_dir / rel, x, y)
    info["owners"].append({"name": source.owner, "eval": rel, "eval_size": len(y), "teachers": []})
    report = _accuracy_report(models, names, {source.owner: (x, y)}, spec.mean, spec.std)
    for n, accs in report.items():
        info.setdefault("accuracy", {}).setdefault(n, {}).update(accs)
    info.setdefault("notes", []).extend(notes)
    (task_dir / "task.json").write_text(json.dumps(info, indent=2, sort_keys=True))
    return {"owner": source.owner, "eval": rel, "eval_size": len(y), "accuracy": report, "notes": notes}


def eval_images_for(task_dir: str | Path, spec: TaskSpec) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Every owner's eval set in a task folder, loaded and checked as verifiers do."""
    return {o: load_eval_set(p, spec) for o, p in owner_evals(task_dir).items()}
