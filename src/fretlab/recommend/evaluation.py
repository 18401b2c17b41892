"""Scoring every model on the test playlists' fixed hidden sets: metrics JSON, DVC plot data, PNG figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fretlab.io import atomic_path, write_csv, write_json
from fretlab.recommend.data import PlaylistSet
from fretlab.recommend.metrics import popular_songs, ranking_metrics


def rankings(scores: np.ndarray, visible: list[np.ndarray], depth: int) -> tuple[np.ndarray, np.ndarray]:
    """(hidden ranking with visible songs excluded, ranking over all songs), ``depth`` songs each, best first."""
    depth = min(depth, scores.shape[1])
    masked = scores.astype(np.float64, copy=True)
    for i, v in enumerate(visible):
        masked[i, v] = -np.inf

    def top(s: np.ndarray) -> np.ndarray:
        part = np.argpartition(-s, depth - 1, axis=1)[:, :depth]
        order = np.argsort(-np.take_along_axis(s, part, 1), axis=1, kind="stable")
        return np.take_along_axis(part, order, 1)

    return top(masked), top(scores.astype(np.float64))


def evaluate_models(scores: dict[str, np.ndarray], test: PlaylistSet, counts: np.ndarray, k: int,
                    popular_top: float) -> dict[str, dict[str, Any]]:
    """Metrics of every model's scores [N, n_songs] on ``test``."""
    n_songs = len(counts)
    popular = popular_songs(counts, popular_top)
    everything = [np.concatenate([v, h]) for v, h in zip(test.visible, test.hidden, strict=True)]
    depth = max(k, max(len(a) for a in everything))
    groups = {"informative": test.informative, "uninformative": ~test.informative}
    out = {}
    for name, s in scores.items():
        hidden_ranked, all_ranked = rankings(s, test.visible, depth)
        out[name] = ranking_metrics(hidden_ranked, all_ranked, test.hidden, everything, k, popular, n_songs, groups)
    return out


def model_table(metrics: dict[str, dict[str, Any]], k: int) -> pd.DataFrame:
    """One row per model with the headline figures (plot data)."""
    rows = []
    for name, m in metrics.items():
        rows.append({"model": name, "r_precision_hidden": m["r_precision_hidden"],
                     "r_precision_all": m["r_precision_all"], "ndcg": m[f"ndcg@{k}"], "recall": m[f"recall@{k}"],
                     "coverage": m[f"coverage@{k}"], "popular_share": m[f"popular_share@{k}"],
                     **{f"r_precision_hidden_{g}": v for g, v in m["r_precision_hidden_by_title"].items()}})
    return pd.DataFrame(rows)


def write_report(metrics: dict[str, dict[str, Any]], k: int, metrics_dir: Path, plots_dir: Path) -> pd.DataFrame:
    """``metrics/test.json`` (every model), ``metrics/models/<model>.json``, ``plots/models.csv``, PNG figures."""
    write_json(metrics_dir / "test.json", metrics)
    for name, m in metrics.items():
        write_json(metrics_dir / "models" / f"{name}.json", m)
    table = model_table(metrics, k)
    write_csv(plots_dir / "models.csv", table.round(6))
    by_title = table.melt(id_vars="model", value_vars=[c for c in table if c.startswith("r_precision_hidden_")],
                          var_name="titles", value_name="r_precision")
    by_title["titles"] = by_title["titles"].str.removeprefix("r_precision_hidden_")
    by_title["model_titles"] = by_title["model"] + " / " + by_title["titles"]
    write_csv(plots_dir / "by_title.csv", by_title.round(6))
    _figures(table, k, plots_dir / "figures")
    return table


def _figures(table: pd.DataFrame, k: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.5), sharey=True)
    for ax, (col, label) in zip(axes, (("r_precision_hidden", "R-precision (hidden)"), ("ndcg", f"NDCG@{k}"),
                                       ("coverage", f"catalogue coverage@{k}"),
                                       ("popular_share", f"top-1% popular share@{k}")), strict=True):
        ax.barh(table["model"], table[col], color="tab:blue")
        ax.set_title(label)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    with atomic_path(out / "models.png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.4
    y = np.arange(len(table))
    ax.barh(y - width / 2, table["r_precision_hidden_informative"], width, label="informative title")
    ax.barh(y + width / 2, table["r_precision_hidden_uninformative"], width, label="uninformative title")
    ax.set_yticks(y, table["model"])
    ax.set_xlabel("R-precision (hidden)")
    ax.legend()
    fig.tight_layout()
    with atomic_path(out / "by_title.png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
