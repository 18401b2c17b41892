"""Two probes behind the playlist recipe's title prior (README "Playlist continuation"), on the split in data/split.

``blend``: hidden R-precision of z-scored item-kNN + w x z-scored title-only (no training): how much the
titles add to co-occurrence at all. ``prior-scale``: the set transformer's two wide terms before any training
(the item-item matrix at its warm start + s x the title prior), by scale s: how ``title_item_init`` was chosen.

    cd recipes/playlists && python ../../scripts/playlists_probes.py blend
    cd recipes/playlists && python ../../scripts/playlists_probes.py prior-scale
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from fretlab.params import load_params
from fretlab.recommend.baselines import item_knn_scores, song_counts, title_only_scores
from fretlab.recommend.data import load_catalogue, load_split
from fretlab.recommend.evaluation import rankings
from fretlab.recommend.metrics import r_precision
from fretlab.recommend.model import SetTransformer, pad_batch, title_batch, title_item_tokens
from fretlab.recommend.synthetic import TARGETS
from fretlab.recommend.training import cooccurrence_cosine, title_song_distribution


def hidden_r_precision(scores: np.ndarray, data) -> float:
    ranked, _ = rankings(scores, data.visible, max(len(h) for h in data.hidden))
    return float(np.mean([r_precision(r, h) for r, h in zip(ranked, data.hidden, strict=True)]))


def zscore(s: np.ndarray) -> np.ndarray:
    return (s - s.mean(1, keepdims=True)) / (s.std(1, keepdims=True) + 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("probe", choices=["blend", "prior-scale"])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.5, 1.0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.0, 10.0, 30.0, 100.0, 300.0, 1000.0])
    args = parser.parse_args()
    params = load_params(args.params)
    ids, features = load_catalogue(params.paths.split, TARGETS)
    index, n = {s: i for i, s in enumerate(ids)}, len(ids)
    train = load_split(params.paths.split, "train", index)
    counts = song_counts(train.visible, n)
    for role in ("val", "test") if args.probe == "blend" else ("val",):
        data = load_split(params.paths.split, role, index)
        if args.probe == "blend":
            knn = zscore(item_knn_scores(train.visible, data.visible, n, params.recommender_baselines.knn_neighbours,
                                         counts))
            title = zscore(title_only_scores(train.titles, train.visible, data.titles, n, counts))
            for w in args.weights:
                print(f"{role} item-kNN + {w:g} x title-only: {hidden_r_precision(knn + w * title, data):.4f}")
            continue
        cfg = params.recommender.model_copy(update={"title_item": True, "item_item": True})
        torch.set_num_threads(1)
        model = SetTransformer(cfg, torch.from_numpy(features))
        with torch.no_grad():
            model.item_item.copy_(cfg.item_item_init * cooccurrence_cosine(train.visible, n))
            model.title_item.weight.copy_(title_song_distribution(train.titles, train.visible, n, cfg))
            wide = model.item_item_scores(pad_batch(data.visible, -1)).numpy()
            prior = model.title_item(title_item_tokens(title_batch(data.titles, cfg), cfg)).numpy()
        for s in args.scales:
            score = hidden_r_precision(wide + s * prior, data)
            print(f"{role} item-item warm start + {s:g} x title prior: {score:.4f}")


if __name__ == "__main__":
    main()
