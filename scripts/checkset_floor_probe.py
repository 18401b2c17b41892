"""How clean are the notes? The log-mel floor of synthetic training windows against the check set's.

A feature window reaches its floor (``TOP_DB`` below its peak) only where the audio is digitally silent: past the
end of a short file, or in a recording with no hum or hiss. Synthetic files carry noise everywhere they sound;
soundfont renders carry none. This prints, per class (training split) and per group (check set), the share of
windows with more than 5 % of their cells at the floor, and the mean share of such cells.

    python scripts/checkset_floor_probe.py --json docs/results/checkset_floor.json

Evaluation only: it reads the featurized training split and the rendered check set, and trains nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from fretlab.audio.features import TOP_DB, FeatureExtractor, extract
from fretlab.audio.loading import peak_normalize, read_window
from fretlab.params import load_params

AT_FLOOR_SHARE = 0.05  # a window "reaches the floor" when more than this share of its cells sit there


def floor_share(features: np.ndarray) -> np.ndarray:
    """Per window ``(N, channels, mels, frames)``: the share of log-mel cells at the floor (peak - TOP_DB)."""
    logmel = features[:, 0].reshape(len(features), -1)
    return (logmel <= logmel.max(axis=1, keepdims=True) - TOP_DB + 1e-3).mean(axis=1)


def summarize(shares: np.ndarray, keys: pd.Series) -> dict[str, dict[str, float]]:
    """Per key: windows, the share reaching the floor, the mean share of floor cells."""
    out = {}
    for key in sorted(keys.unique()):
        s = shares[(keys == key).to_numpy()]
        out[str(key)] = {"n": len(s), "reaching_floor": round(float((s > AT_FLOOR_SHARE).mean()), 3),
                         "mean_floor_cells": round(float(s.mean()), 3)}
    return out


def checkset_features(params, checkset: Path, meta: pd.DataFrame) -> np.ndarray:
    """One window per check-set note from its start (every render starts at 0 s), cut as featurize cuts them."""
    feat = params.featurize
    windows = np.stack([peak_normalize(read_window(checkset / rel, feat.sample_rate, feat.n_samples, 0.0))
                        for rel in meta["audio_path"]])
    return extract(FeatureExtractor(feat), windows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--sample", type=int, default=1500, help="training windows to read (at random)")
    ap.add_argument("--json", dest="json_out", help="also write the figures here")
    args = ap.parse_args()
    params = load_params(args.params)
    features_dir, checkset = Path(params.paths.features), Path(params.paths.checkset)
    train = np.load(features_dir / "train.npy", mmap_mode="r")
    labels = pd.read_csv(features_dir / "train.csv")["label_category"]
    pick = np.sort(np.random.default_rng(params.base.seed).choice(len(train), min(args.sample, len(train)),
                                                                 replace=False))
    train_rows = summarize(floor_share(np.asarray(train[pick])), labels.iloc[pick].reset_index(drop=True))
    meta = pd.read_csv(checkset / "metadata.csv")
    shares = floor_share(checkset_features(params, checkset, meta))
    report = {"training split, by class": train_rows,
              "check set, by class": summarize(shares, meta["label_category"]),
              "check set, by group": summarize(shares, meta["group"] + " " + meta["program_name"])}
    for title, rows in report.items():
        print(f"\n{title}\n" + pd.DataFrame(rows).T.to_string())
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
