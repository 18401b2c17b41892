"""Cross-validation on predefined folds: fold roles, per-fold paths and per-fold feature loading.

With ``split.strategy: predefined_folds`` the featurize stage writes one cache split per fold
(``fold<K>.npy`` + ``fold<K>.csv``); fold K's run tests on fold K, validates on the next fold in
``split.folds`` (cyclically) and trains on all the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fretlab.params import Paths, Split


class FoldError(ValueError):
    """A ``--fold`` that does not fit ``split.strategy`` / ``split.folds``."""


def fold_roles(folds: list[int], fold: int) -> dict[str, list[int]]:
    """Which folds play train, val and test when ``fold`` is held out: val is the next fold, cyclically."""
    if fold not in folds:
        raise FoldError(f"--fold {fold} is not one of split.folds {folds}")
    i = folds.index(fold)
    val = folds[(i + 1) % len(folds)]
    return {"train": [k for k in folds if k not in (fold, val)], "val": [val], "test": [fold]}


def check_fold_arg(cfg: Split, fold: int | None) -> None:
    """``--fold`` is required with predefined folds and meaningless without them."""
    if cfg.strategy == "predefined_folds" and fold is None:
        raise FoldError("split.strategy is predefined_folds: pass --fold K (one of split.folds "
                        f"{cfg.folds}); the recipe dvc.yaml runs one stage per fold")
    if cfg.strategy != "predefined_folds" and fold is not None:
        raise FoldError(f"--fold {fold} needs split.strategy: predefined_folds (it is {cfg.strategy})")


@dataclass(frozen=True)
class StagePaths:
    """Where one run's model, checkpoints, live logs, metrics and plots go."""

    model: Path
    checkpoints: Path
    live: Path
    metrics: Path
    plots: Path


def stage_paths(paths: Paths, fold: int | None) -> StagePaths:
    """The configured paths, or their ``fold<K>`` subdirectories for a fold run."""
    sub = "" if fold is None else f"fold{fold}"
    return StagePaths(*(Path(getattr(paths, name)) / sub for name in ("model", "checkpoints", "live", "metrics",
                                                                        "plots")))


def role_splits(cfg: Split, fold: int | None, role: str) -> list[str]:
    """Feature-cache split names that make up ``role`` (train/val/test) for this run."""
    check_fold_arg(cfg, fold)
    if fold is None:
        return [role]
    return [f"fold{k}" for k in fold_roles(cfg.folds, fold)[role]]


def role_files(features_dir: Path, cfg: Split, fold: int | None) -> list[Path] | None:
    """The cache files a fold's training reads (for the checkpoint fingerprint); None for a plain run."""
    if fold is None:
        return None
    names = role_splits(cfg, fold, "train") + role_splits(cfg, fold, "val")
    return [Path(features_dir) / f"{name}{ext}" for name in names for ext in (".npy", ".csv")]


def load_clip_ids(features_dir: str | Path, split: str) -> list[str] | None:
    """Each cached row's clip id when the cache holds clip windows, else None."""
    index = pd.read_csv(Path(features_dir) / f"{split}.csv", dtype={"clip_id": str}, keep_default_na=False)
    return index["clip_id"].tolist() if "clip_id" in index.columns else None


def role_clip_ids(features_dir: str | Path, cfg: Split, fold: int | None, role: str) -> list[str] | None:
    """Clip ids of every cached row of ``role`` (folds concatenated in order), or None without clip windows."""
    parts = [load_clip_ids(features_dir, s) for s in role_splits(cfg, fold, role)]
    return None if any(p is None for p in parts) else [c for p in parts for c in p]
