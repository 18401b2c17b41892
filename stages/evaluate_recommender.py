"""Stage evaluate_recommender: score the set transformer and the baselines on the test playlists' hidden songs."""

import argparse
from pathlib import Path

import torch

from fretlab.io import worker_count
from fretlab.params import load_params
from fretlab.recommend import baselines as bl
from fretlab.recommend.data import load_catalogue, load_split
from fretlab.recommend.evaluation import evaluate_models, write_report
from fretlab.recommend.model import score_playlists
from fretlab.recommend.modeldir import load_recommender, model_threads
from fretlab.recommend.synthetic import TARGETS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    paths, cfg, base = params.paths, params.recommender_eval, params.recommender_baselines
    model_threads(params.recommender.threads)
    song_ids, _ = load_catalogue(paths.split, TARGETS)
    index, n = {s: i for i, s in enumerate(song_ids)}, len(song_ids)
    train, test = load_split(paths.split, "train", index), load_split(paths.split, "test", index)
    counts = bl.song_counts(train.visible, n)
    scores = {}
    for name in cfg.models:  # in params order: the report lists them so
        if name == "set_transformer":
            model, _ = load_recommender(paths.model)
            with torch.no_grad():
                scores[name] = score_playlists(model, test.visible, test.titles, 256).numpy()
        elif name == "popularity":
            scores[name] = bl.popularity_scores(counts, len(test))
        elif name == "item_knn":
            scores[name] = bl.item_knn_scores(train.visible, test.visible, n, base.knn_neighbours, counts)
        elif name == "title_only":
            scores[name] = bl.title_only_scores(train.titles, train.visible, test.titles, n, counts)
        else:
            scores[name] = bl.als_scores(train.visible, test.visible, n, base, params.base.seed,
                                         worker_count(params.recommender.threads), counts)
    metrics = evaluate_models(scores, test, counts, cfg.k, cfg.popular_top)
    table = write_report(metrics, cfg.k, Path(paths.metrics), Path(paths.plots))
    print(table.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
