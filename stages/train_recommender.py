"""Stage train_recommender: train the title-conditioned set transformer; write its model directory."""

import argparse
from pathlib import Path

import torch

from fretlab.params import load_params
from fretlab.recommend.baselines import song_counts
from fretlab.recommend.data import load_catalogue, load_split
from fretlab.recommend.modeldir import model_threads, save_recommender
from fretlab.recommend.sampling import negative_distribution
from fretlab.recommend.synthetic import TARGETS
from fretlab.recommend.training import train_recommender


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    cfg, paths = params.recommender, params.paths
    model_threads(cfg.threads)
    song_ids, features = load_catalogue(paths.split, TARGETS)
    index = {s: i for i, s in enumerate(song_ids)}
    train = load_split(paths.split, "train", index)
    val = load_split(paths.split, "val", index)
    counts = song_counts(train.visible, len(song_ids))
    result = train_recommender(cfg, torch.from_numpy(features), train, val,
                               negative_distribution(counts, cfg.negative_power), params.base.seed,
                               Path(paths.live))
    summary = {"best_epoch": result.best_epoch, "best_val_r_precision_hidden": round(result.best_val_r_precision, 6),
               "epochs_run": len(result.history), "feature_columns": list(TARGETS)}
    save_recommender(Path(paths.model), result.model, song_ids, summary)
    print(f"set transformer: best epoch {result.best_epoch}, val hidden R-precision "
          f"{result.best_val_r_precision:.4f}; model in {paths.model}")


if __name__ == "__main__":
    main()
