"""matplotlib figures: confusion matrices (counts and row-normalized) and per-class F1."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures go to files only
import matplotlib.pyplot as plt
import numpy as np

from fretlab.io import atomic_path


def _save(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)


def plot_confusion(matrix: np.ndarray, classes: list[str], path: Path, title: str, normalized: bool) -> None:
    """Heatmap with class names on both axes and each cell's value."""
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    im = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1 if normalized else None)
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, f"{v:.2f}" if normalized else f"{int(v)}", ha="center", va="center",
                color="white" if v > threshold else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    _save(fig, path)


def plot_per_class_f1(f1: dict[str, float], path: Path, title: str) -> None:
    """Bar chart of F1 per class."""
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    names = list(f1)
    ax.bar(names, [f1[n] for n in names], color="tab:blue")
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1")
    ax.set_title(title)
    for i, n in enumerate(names):
        ax.text(i, f1[n] + 0.02, f"{f1[n]:.3f}", ha="center")
    _save(fig, path)
