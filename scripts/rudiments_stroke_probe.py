"""How much skill the rudiment takes carry in their strokes: hand-made stroke statistics, grouped cross-validation.

A probe, not a pipeline stage: it reads the recipe's rendered takes (``recipes/rudiments/data/synthetic``),
finds each take's strokes with librosa's onset detector at a 4-ms hop, summarizes timing and level
spread in 13 numbers, and scores a class-balanced logistic regression and a random forest on the
skill tier (4 classes, all takes and those with ``tier_confidence > 0.5``) and the binary label, by
5-fold cross-validation grouped by player over every take (not the recipe's 18-player test split).
It bounds what a model that finds the strokes can reach on this data; the recipe's log-mel models are
far below it (README "Drum rudiments").

    python scripts/rudiments_stroke_probe.py --json docs/results/rudiments_stroke_probe.json
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import soundfile as sf
import soxr
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

REPO = Path(__file__).resolve().parents[1]
SR, HOP, N_FFT, N_MELS = 16000, 64, 512, 64  # 4-ms onset hop at the recipe's 16 kHz
WAIT_SEC, DELTA, PEAK_SEC, GRACE_SEC = 0.02, 0.05, 0.03, 0.045
MAIN_BAND = (0.6, 1.6)  # IOIs within this share of the median IOI: the rudiment's main subdivision
NAMES = ("strokes_per_sec", "log_ioi_std", "log_ioi_change_median", "log_ioi_change_mean", "main_ioi_dev_std",
         "main_ioi_dev_mean_abs", "level_db_std", "level_change_db_median", "level_db_p90_p50", "level_db_p50_p10",
         "grace_share", "ioi_mean", "ioi_median")


def stroke_statistics(path: Path) -> list[float]:
    """The 13 :data:`NAMES` of one take."""
    y, sr = sf.read(path, dtype="float32")
    y = soxr.resample(y, sr, SR) if sr != SR else y
    env = librosa.onset.onset_strength(y=y, sr=SR, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS)
    frames = librosa.onset.onset_detect(onset_envelope=env, sr=SR, hop_length=HOP, wait=int(WAIT_SEC * SR / HOP),
                                        delta=DELTA)
    rms = librosa.feature.rms(y=y, frame_length=4 * HOP, hop_length=HOP)[0]
    reach = int(PEAK_SEC * SR / HOP)
    peak = np.array([rms[f : f + reach].max() for f in frames]) if len(frames) else np.zeros(1)
    db = 20 * np.log10(peak + 1e-6)
    ioi = np.diff(frames * HOP / SR) if len(frames) > 2 else np.array([0.1, 0.1])
    change = np.diff(np.log(ioi))
    median = np.median(ioi)
    main = ioi[(ioi > MAIN_BAND[0] * median) & (ioi < MAIN_BAND[1] * median)]
    dev = main / np.median(main) - 1 if len(main) > 2 else np.zeros(2)
    return [len(frames) / (len(y) / SR), np.std(np.log(ioi)), np.median(np.abs(change)), np.mean(np.abs(change)),
            np.std(dev), np.mean(np.abs(dev)), np.std(db), np.median(np.abs(np.diff(db))),
            np.percentile(db, 90) - np.percentile(db, 50), np.percentile(db, 50) - np.percentile(db, 10),
            float((ioi < GRACE_SEC).mean()), float(np.mean(ioi)), float(median)]


def scores(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int) -> dict[str, dict[str, float]]:
    models = {"logreg": make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=3000)),
              "rf": RandomForestClassifier(300, class_weight="balanced", min_samples_leaf=3, random_state=seed)}
    out = {}
    for name, model in models.items():
        pred = cross_val_predict(model, x, y, groups=groups, cv=GroupKFold(5))
        out[name] = {"balanced_accuracy": balanced_accuracy_score(y, pred), "accuracy": accuracy_score(y, pred)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO / "recipes/rudiments/data/synthetic")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    meta = pd.read_csv(args.data / "metadata.csv")
    with ProcessPoolExecutor(args.workers) as pool:
        x = np.array(list(pool.map(stroke_statistics, [args.data / p for p in meta["audio_path"]], chunksize=8)))
    groups = meta["group"].to_numpy()
    confident = meta["tier_confidence"].to_numpy() > 0.5
    result = {"takes": len(meta), "players": int(meta["group"].nunique()), "features": list(NAMES),
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
