"""How much skill the stroke statistics carry, by grouped cross-validation over every take (not one test split).

A probe next to the recipe, not a stage: it reads the recipe's stroke-statistics cache
(``recipes/rudiments/data/features``, written by ``dvc repro`` with the default ``features: [strokes]``),
joins train, val and test, and scores a class-balanced logistic regression and a random forest on the
skill tier (4 classes, every take and those with ``tier_confidence > 0.5``) and the binary label, by
5-fold cross-validation grouped by player. The val split keeps only clean takes, so this covers those
players' clean takes only. The test split of one seed holds ~50 players; the folds here use all of them,
so the figures are steadier than one run's and bound what a model on these features reaches.

    (cd recipes/rudiments && dvc repro featurize)
    python scripts/rudiments_stroke_probe.py --json docs/results/rudiments_stroke_probe.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

REPO = Path(__file__).resolve().parents[1]
FOLDS = 5


def load(features: Path) -> tuple[np.ndarray, pd.DataFrame, list[str]]:
    """Every split's stroke rows (one per take) and metadata, in one table."""
    summary = json.loads((features / "summary.json").read_text())
    if summary["feature_names"][0] != "strokes_per_sec":
        raise SystemExit(f"{features}: not a stroke-statistics cache (features {summary['config']['features']}); "
                         "run `dvc repro featurize` with featurize.tracks.features [strokes]")
    x = np.concatenate([np.load(features / f"{s}.npy") for s in summary["splits"]])
    meta = pd.concat([pd.read_csv(features / f"{s}.csv") for s in summary["splits"]], ignore_index=True)
    return x, meta, summary["feature_names"]


def scores(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int) -> dict[str, dict[str, float]]:
    models = {"logreg": make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=3000)),
              "rf": RandomForestClassifier(300, class_weight="balanced", min_samples_leaf=3, random_state=seed)}
    out = {}
    for name, model in models.items():
        pred = cross_val_predict(model, x, y, groups=groups, cv=GroupKFold(FOLDS))
        out[name] = {"balanced_accuracy": balanced_accuracy_score(y, pred), "accuracy": accuracy_score(y, pred)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=Path, default=REPO / "recipes/rudiments/data/features")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    x, meta, names = load(args.features)
    groups = meta["group"].to_numpy()
    confident = meta["tier_confidence"].to_numpy() > 0.5
    result = {"takes": len(meta), "players": int(meta["group"].nunique()), "features": names,
              "skill_tier": scores(x, meta["skill_tier"].to_numpy(), groups, args.seed),
              "skill_tier_confidence_gt_0.5": scores(x[confident], meta["skill_tier"].to_numpy()[confident],
                                                     groups[confident], args.seed),
              "skill_binary": scores(x, meta["skill_binary"].to_numpy(), groups, args.seed)}
    for task in ("skill_tier", "skill_tier_confidence_gt_0.5", "skill_binary"):
        for model, s in result[task].items():
            print(f"{task:30s} {model:7s} balanced accuracy {s['balanced_accuracy']:.3f}, accuracy {s['accuracy']:.3f}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
