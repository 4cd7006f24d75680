"""Supervised training of a zoo classifier on real data (task owners' teachers, the
real-data students the benchmarks compare against)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .data import Split, normalize
from .distill import accuracy, augment
from .zoo import build_model


def train_classifier(cfg: dict, train: Split, mean, std, epochs: int = 40, batch: int = 64, lr: float = 3e-3,
                     seed: int = 0, aug: tuple[str, ...] = ("shift:1",), progress: bool = False):
    """Plain supervised training with seeded shuffling and augmentation."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_model(cfg)
    x = normalize(torch.from_numpy(train.x), mean, std)
    y = torch.from_numpy(train.y)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    model.train()
    bar = tqdm(total=steps, desc="training", unit="step", disable=not progress)
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
