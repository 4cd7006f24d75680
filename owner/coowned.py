"""The co-owned task of the demo: two owners who each saw mostly different classes.

scikit-learn digits (8×8) split between two owners, as if each had collected its own data:
**alice** holds most images of classes 0–4 and a few of 5–9, **bob** the reverse; each keeps
the same skew in its own secret eval set (their eval sets partition the held-out split, so
their union is the whole of it). Each trains its own teacher on its own data with a
different architecture (alice ``digits_cnn``, bob ``digits_deep``). Each teacher is then
weak on the other's eval data; co-dreaming against both teachers pools what they know
without either showing the other an image.

``unrelated_owner`` adds a third owner for collaborator selection: the same kind of images,
labels shuffled (its model's classes mean nothing the others know).

``build_coowned_task`` trains the teachers and writes a co-owned task folder through the
importer (``owner/importer.py``), exactly as two owners with their own files would.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from codream import data as D
from codream.evalset import save_eval_set
from codream.training import evaluate, train_classifier
from codream.zoo import save_model

from .importer import EvalSource, TeacherSource, init_task

DIGITS = {"num_classes": 10, "in_channels": 1, "image_size": 8}
OWNERS = {  # name -> (classes it holds most of, teacher architecture)
    "alice": ((0, 1, 2, 3, 4), {"arch": "digits_cnn", "width": 32, **DIGITS}),
    "bob": ((5, 6, 7, 8, 9), {"arch": "digits_deep", "width": 16, **DIGITS}),
}
MINOR_SHARE = 0.02  # share of the other owner's classes each owner also holds (a small overlap)


@dataclass
class OwnerData:
    name: str
    classes: tuple[int, ...]
    teacher: dict       # zoo config
    train: D.Split
    eval: D.Split


def _partition(split: D.Split, rng: np.random.Generator, minor: float) -> dict[str, D.Split]:
    """Each class's images go to the owner holding that class, but a ``minor`` share (at least
    one image per class) to the other owner; every image has exactly one owner."""
    idx: dict[str, list[int]] = {n: [] for n in OWNERS}
    alice_classes = OWNERS["alice"][0]
    for c in range(10):
        rows = rng.permutation(np.flatnonzero(split.y == c))
        few = max(1, int(round(len(rows) * minor)))
        major, other = ("alice", "bob") if c in alice_classes else ("bob", "alice")
        idx[other].extend(rows[:few].tolist())
        idx[major].extend(rows[few:].tolist())
    return {n: D.Split(split.x[np.sort(i)], split.y[np.sort(i)]) for n, i in idx.items()}


def split_owners(seed: int = 0, minor: float = MINOR_SHARE) -> list[OwnerData]:
    """alice and bob: their training data and their own eval sets (module docstring)."""
    train, ev = D.digits(seed=seed)
    rng = np.random.default_rng(seed)
    tr, evs = _partition(train, rng, minor), _partition(ev, rng, minor)
    return [OwnerData(n, cls, cfg, tr[n], evs[n]) for n, (cls, cfg) in OWNERS.items()]


def unrelated_owner(seed: int = 0, name: str = "carol") -> OwnerData:
    """A third owner whose labels mean nothing to the others: digits images, labels shuffled."""
    train, ev = D.digits(seed=seed)
    rng = np.random.default_rng(seed + 1000)
    shuffle = lambda s: D.Split(s.x, rng.permutation(s.y))  # noqa: E731
    return OwnerData(name, (), {"arch": "digits_cnn", "width": 32, **DIGITS}, shuffle(train), shuffle(ev))


def train_owner(owner: OwnerData, out: str | Path, epochs: int = 40, seed: int = 0) -> dict:
    """Train the owner's teacher on its own data; write ``<name>-teacher.safetensors``, its
    eval set and training data (safetensors) into ``out``: the files an owner brings."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = train_classifier(owner.teacher, owner.train, D.DIGITS_MEAN, D.DIGITS_STD, epochs=epochs, seed=seed)
    files = {"teacher": out / f"{owner.name}-teacher.safetensors", "eval": out / f"{owner.name}-eval.safetensors",
             "train": out / f"{owner.name}-train.safetensors"}
    save_model(model, owner.teacher, files["teacher"])
    save_eval_set(files["eval"], torch.from_numpy(owner.eval.x), torch.from_numpy(owner.eval.y))
    save_eval_set(files["train"], torch.from_numpy(owner.train.x), torch.from_numpy(owner.train.y))
    return {"name": owner.name, "classes": list(owner.classes), "train_images": len(owner.train.y),
            "eval_images": len(owner.eval.y), "own_eval_accuracy": evaluate(model, owner.eval, D.DIGITS_MEAN,
                                                                            D.DIGITS_STD),
            **{k: str(v) for k, v in files.items()}}


def train_owners(owners: list[OwnerData], out: str | Path, epochs: int = 40, seed: int = 0) -> list[dict]:
    """``train_owner`` for each; a folder that already holds these owners' files for the same
    seed, split and epochs (``owners.json``) is reused as it is."""
    out = Path(out)
    key = {"seed": seed, "epochs": epochs, "owners": [o.name for o in owners],
           "sizes": [[len(o.train.y), len(o.eval.y)] for o in owners],
           "labels": [int(np.asarray(o.train.y).sum()) for o in owners]}
    record = out / "owners.json"
    if record.exists():
        saved = json.loads(record.read_text())
        if saved.get("key") == key and all(Path(f).exists() for m in saved["owners"] for f in
                                            (m["teacher"], m["eval"], m["train"])):
            return saved["owners"]
    made = [train_owner(o, out, epochs, seed) for o in owners]
    record.write_text(json.dumps({"key": key, "owners": made}, indent=2))
    return made


def build_coowned_task(out: str | Path, seed: int = 0, minor: float = MINOR_SHARE, epochs: int = 40,
                       owners_dir: str | Path | None = None) -> dict:
    """Both owners train their teachers (files in ``owners_dir``, default ``out/../owners``;
    reused if already there), then one co-owned task folder is built from their files with the
    importer: two teachers, ``evals/alice.safetensors`` and ``evals/bob.safetensors``. Returns
    the importer's report plus each owner's files."""
    out = Path(out)
    owners_dir = Path(owners_dir) if owners_dir else out.parent / "owners"
    torch.manual_seed(seed)
    made = train_owners(split_owners(seed, minor), owners_dir, epochs, seed)
    info = init_task(out, [TeacherSource(Path(m["teacher"]), m["name"]) for m in made],
                     [EvalSource(m["name"], Path(m["eval"])) for m in made],
                     mean=list(D.DIGITS_MEAN), std=list(D.DIGITS_STD), name="digits-co-owned", force=True)
    return {**info, "owner_files": made}
