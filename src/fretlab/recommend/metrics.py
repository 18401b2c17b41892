"""Ranking metrics of playlist continuation, and the diversity figures that expose mode collapse."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def r_precision(ranked: Sequence[int], relevant: Sequence[int]) -> float:
    """Share of the first R ranked songs that are relevant, with R = the number of relevant songs."""
    rel = set(np.asarray(relevant).tolist())
    if not rel:
        return 0.0
    return len(rel & set(np.asarray(ranked)[:len(rel)].tolist())) / len(rel)


def recall_at_k(ranked: Sequence[int], relevant: Sequence[int], k: int) -> float:
    """Share of the relevant songs found in the first ``k`` ranked."""
    rel = set(np.asarray(relevant).tolist())
    return len(rel & set(np.asarray(ranked)[:k].tolist())) / len(rel) if rel else 0.0


def ndcg_at_k(ranked: Sequence[int], relevant: Sequence[int], k: int) -> float:
    """Binary-relevance NDCG@k: DCG of the ranking over the DCG of the ideal one (log2 discounts)."""
    rel = set(np.asarray(relevant).tolist())
    if not rel:
        return 0.0
    gains = np.array([1.0 if s in rel else 0.0 for s in np.asarray(ranked)[:k].tolist()])
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = discounts[:min(len(rel), k)].sum()
    return float((gains * discounts[:len(gains)]).sum() / ideal)


def coverage(recommended: np.ndarray, n_songs: int) -> float:
    """Share of the catalogue that appears in at least one playlist's recommendations."""
    return len(np.unique(recommended)) / n_songs


def popular_songs(counts: np.ndarray, share: float) -> np.ndarray:
    """Indices of the ``share`` most played songs (at least one), by training-playlist count."""
    n = max(1, round(share * len(counts)))
    return np.argsort(-np.asarray(counts), kind="stable")[:n]


def popular_share(recommended: np.ndarray, popular: np.ndarray) -> float:
    """Share of all recommendation slots taken by the ``popular`` songs (the mode-collapse detector)."""
    return float(np.isin(recommended, popular).mean()) if recommended.size else 0.0


def ranking_metrics(hidden_ranked: np.ndarray, all_ranked: np.ndarray, hidden: list[np.ndarray],
                    everything: list[np.ndarray], k: int, popular: np.ndarray, n_songs: int,
                    groups: dict[str, np.ndarray]) -> dict[str, float | dict[str, float]]:
    """Every figure of one model on held-out playlists.

    ``hidden_ranked`` [N, >= max(k, R)]: the ranking with visible songs excluded, scored against the hidden
    songs; ``all_ranked``: the ranking over the whole catalogue, scored against every song of the playlist.
    ``groups`` name boolean masks (e.g. informative titles) to report hidden R-precision on."""
    rp_hidden = np.array([r_precision(r, h) for r, h in zip(hidden_ranked, hidden, strict=True)])
    top = hidden_ranked[:, :k]
    out: dict[str, float | dict[str, float]] = {
        "r_precision_hidden": float(rp_hidden.mean()),
        "r_precision_all": float(np.mean([r_precision(r, a) for r, a in zip(all_ranked, everything, strict=True)])),
        f"ndcg@{k}": float(np.mean([ndcg_at_k(r, h, k) for r, h in zip(hidden_ranked, hidden, strict=True)])),
        f"recall@{k}": float(np.mean([recall_at_k(r, h, k) for r, h in zip(hidden_ranked, hidden, strict=True)])),
        f"coverage@{k}": coverage(top, n_songs),
        f"popular_share@{k}": popular_share(top, popular),
        "n_playlists": len(hidden),
    }
    out["r_precision_hidden_by_title"] = {name: float(rp_hidden[mask].mean()) if mask.any() else float("nan")
                                          for name, mask in groups.items()}
    return out
