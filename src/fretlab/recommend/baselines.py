"""Baselines scored next to the set transformer: popularity, item-item kNN, title-only and implicit ALS.

Each returns dense scores [N, n_songs] for held-out playlists given their visible songs (and titles); ties
and empty inputs fall back to popularity through a tiny popularity term.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from fretlab.params import RecommenderBaselines
from fretlab.recommend.titles import words

TIE_BREAK = 1e-6  # weight of the normalized popularity added to every baseline's scores


def interactions(playlists: list[np.ndarray], n_songs: int) -> sp.csr_matrix:
    """Binary playlist x song matrix."""
    rows = np.repeat(np.arange(len(playlists)), [len(p) for p in playlists])
    cols = np.concatenate(playlists) if playlists else np.empty(0, dtype=np.int64)
    return sp.csr_matrix((np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(len(playlists), n_songs))


def song_counts(train: list[np.ndarray], n_songs: int) -> np.ndarray:
    """How many training playlists hold each song."""
    return np.bincount(np.concatenate(train), minlength=n_songs).astype(np.float64)


def _tie(counts: np.ndarray, n: int) -> np.ndarray:
    return np.tile(TIE_BREAK * counts / max(counts.max(), 1.0), (n, 1))


def popularity_scores(counts: np.ndarray, n: int) -> np.ndarray:
    """Every playlist gets the training counts."""
    return np.tile(counts.astype(np.float32), (n, 1))


def item_knn_scores(train: list[np.ndarray], visible: list[np.ndarray], n_songs: int, neighbours: int,
                    counts: np.ndarray) -> np.ndarray:
    """Sum over the visible songs of their cosine co-occurrence similarity (top ``neighbours`` per song)."""
    x = normalize(interactions(train, n_songs).T.tocsr(), norm="l2", axis=1)  # song x playlist
    sim = (x @ x.T).toarray()
    np.fill_diagonal(sim, 0.0)
    if neighbours < n_songs:
        cut = np.partition(sim, n_songs - neighbours, axis=1)[:, n_songs - neighbours][:, None]
        sim = np.where(sim >= cut, sim, 0.0)
    query = interactions(visible, n_songs)
    return np.asarray(query @ sim, dtype=np.float32) + _tie(counts, len(visible))


def title_only_scores(train_titles: list[str], train: list[np.ndarray], titles: list[str], n_songs: int,
                      counts: np.ndarray) -> np.ndarray:
    """Sum over a title's words of P(song | a training playlist's title has the word)."""
    by_word: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(n_songs))
    for title, songs in zip(train_titles, train, strict=True):
        for w in set(words(title)):
            by_word[w][songs] += 1.0
    dist = {w: c / c.sum() for w, c in by_word.items()}
    out = _tie(counts, len(titles))
    for i, title in enumerate(titles):
        for w in set(words(title)):
            if w in dist:
                out[i] += dist[w]
    return out.astype(np.float32)


def als_scores(train: list[np.ndarray], visible: list[np.ndarray], n_songs: int, cfg: RecommenderBaselines,
               seed: int, threads: int, counts: np.ndarray) -> np.ndarray:
    """``implicit`` ALS fitted on the training playlists plus the held-out playlists' visible songs (fold-in
    as extra rows); a held-out playlist's scores are its factors times the song factors."""
    from implicit.cpu.als import AlternatingLeastSquares  # the CPU model: no GPU probing
    from threadpoolctl import threadpool_limits

    matrix = sp.vstack([interactions(train, n_songs), interactions(visible, n_songs)]).tocsr()
    with threadpool_limits(1, "blas"):  # implicit runs its own threads; a BLAS pool on top of them thrashes
        model = AlternatingLeastSquares(factors=cfg.als_factors, regularization=cfg.als_regularization,
                                        alpha=cfg.als_alpha, iterations=cfg.als_iterations, random_state=seed,
                                        num_threads=threads, calculate_training_loss=False)
        model.fit(matrix, show_progress=False)
    users = np.asarray(model.user_factors)[len(train):]
    return (users @ np.asarray(model.item_factors).T).astype(np.float32) + _tie(counts, len(visible))
