"""A labelled PNG grid of dreams, for eyes (the CLI's --preview and the dapp's preview)."""
from __future__ import annotations

import io
from pathlib import Path

import torch
from PIL import Image, ImageDraw


def grid_image(images: torch.Tensor, labels: torch.Tensor | list | None = None, cols: int = 20,
               max_images: int = 200, scale: int | None = None) -> Image.Image:
    """Up to ``max_images`` images in a spaced grid, each captioned with its label (or index)."""
    images = images[:max_images]
    n, c, h, w = images.shape
    cols = max(1, min(cols, n))
    scale = scale or max(1, 48 // max(h, w))
    cell_w, cell_h = w * scale + 6, h * scale + 16
    rows = (n + cols - 1) // cols
    grid = Image.new("RGB", (cols * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(grid)
    for i in range(n):
        arr = images[i].permute(1, 2, 0).numpy()
        img = Image.fromarray(arr[:, :, 0] if c == 1 else arr, "L" if c == 1 else "RGB")
        img = img.resize((w * scale, h * scale), Image.NEAREST)
        x, y = (i % cols) * cell_w + 3, (i // cols) * cell_h + 14
        grid.paste(img, (x, y))
        draw.text((x, y - 13), str(int(labels[i])) if labels is not None else f"#{i}", fill="black")
    return grid


def write_grid(images: torch.Tensor, labels: torch.Tensor | None, path: str | Path, cols: int = 20,
               max_images: int = 200, scale: int | None = None) -> Path:
    grid_image(images, labels, cols, max_images, scale).save(path)
    return Path(path)


def grid_png(images: torch.Tensor, labels=None, **kw) -> bytes:
    buf = io.BytesIO()
    grid_image(images, labels, **kw).save(buf, format="PNG")
    return buf.getvalue()
