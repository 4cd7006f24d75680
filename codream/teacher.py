"""Train a reference teacher on real data (scikit-learn digits by default)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import Split, normalize
from .distill import accuracy, augment
from .zoo import build_model

DIGITS_TEACHER = {"arch": "digits_cnn", "num_classes": 10, "in_channels": 1, "image_size": 8, "width": 32}


def train_classifier(cfg: dict, train: Split, mean, std, epochs: int = 40, batch: int = 64, lr: float = 3e-3,
                     seed: int = 0, aug: tuple[str, ...] = ("shift:1",), progress: bool = False):
    """Plain supervised training with seeded shuffling and augmentation."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_model(cfg)
    x = normalize(torch.from_numpy(train.x), mean, std)
    y = torch.from_numpy(train.y)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    model.train()
    bar = tqdm(total=steps, desc="training teacher", unit="step", disable=not progress)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            xb = augment(x[idx], aug, gen) if aug else x[idx]
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
    bar.close()
    return model.eval()


def evaluate(model, split: Split, mean, std) -> float:
    return accuracy(model, torch.from_numpy(split.x), torch.from_numpy(split.y), mean, std)


def train_reference(dataset: str, out, data_path=None, arch: str | None = None, epochs: int = 40,
                    seed: int = 0, progress: bool = True) -> dict:
    """Train a task owner's teacher; write ``teacher.safetensors``, the secret
    ``eval.safetensors`` (held-out split) and ``spec.json`` into ``out``."""
    from pathlib import Path

    from ipfs import cid_of_file

    from . import data as D
    from .spec import reference_spec, validate

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if dataset == "digits":
        train, ev = D.digits(seed=seed)
        mean, std = D.DIGITS_MEAN, D.DIGITS_STD
        cfg = dict(DIGITS_TEACHER)
        if arch:
            cfg = {"arch": arch, "num_classes": 10, "in_channels": 1, "image_size": 8}
    elif dataset == "cifar10":
        if data_path is None:
            raise ValueError("--data-path: cifar10 needs the local cifar-10-batches-py folder")
        train, ev = D.cifar10(data_path)
        mean, std = D.CIFAR_MEAN, D.CIFAR_STD
        cfg = {"arch": arch or "resnet18", "num_classes": 10, "in_channels": 3, "image_size": 32}
    else:
        raise ValueError(f"--dataset: unknown dataset {dataset!r} (digits, cifar10)")
    aug = ("shift:1",) if dataset == "digits" else ("shift:4", "flip")
    model = train_classifier(cfg, train, mean, std, epochs=epochs, seed=seed, aug=aug, progress=progress)
    acc = evaluate(model, ev, mean, std)
    from .zoo import save_model
    from verifier.score import save_eval_set

    save_model(model, cfg, out / "teacher.safetensors")
    save_eval_set(out / "eval.safetensors", torch.from_numpy(ev.x), torch.from_numpy(ev.y))
    cid = cid_of_file(out / "teacher.safetensors")
    spec = validate(reference_spec(dataset, cid, cfg, "teacher.safetensors", mean, std))
    (out / "spec.json").write_text(spec.to_json())
    return {"dataset": dataset, "teacher_accuracy": acc, "teacher": str(out / "teacher.safetensors"),
            "teacher_cid": cid, "eval_set": str(out / "eval.safetensors"), "eval_size": len(ev.y),
            "spec": str(out / "spec.json"), "spec_cid": cid_of_file(out / "spec.json")}
