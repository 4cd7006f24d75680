"""A labelled PNG grid of dreams, for eyes."""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw


def write_grid(images: torch.Tensor, labels: torch.Tensor | None, path: str | Path, cols: int = 20,
               max_images: int = 200, scale: int | None = None) -> Path:
    images = images[:max_images]
    n, c, h, w = images.shape
    scale = scale or max(1, 48 // max(h, w))
    cell_w, cell_h = w * scale + 4, h * scale + 16
    rows = (n + cols - 1) // cols
    grid = Image.new("RGB", (cols * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(grid)
    for i in range(n):
        arr = images[i].permute(1, 2, 0).numpy()
        img = Image.fromarray(arr[:, :, 0] if c == 1 else arr, "L" if c == 1 else "RGB")
        img = img.resize((w * scale, h * scale), Image.NEAREST)
        x, y = (i % cols) * cell_w + 2, (i // cols) * cell_h + 14
        grid.paste(img, (x, y))
        if labels is not None:
            draw.text((x, y - 13), str(int(labels[i])), fill="black")
    grid.save(path)
    return Path(path)
