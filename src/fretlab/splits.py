"""Deterministic, leakage-safe train/val/test assignment grouped by recording or instrument."""

from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")


class SplitError(ValueError):
    """A split that cannot be made leakage-safe or that leaves a class out."""


def grouped_split(
    df: pd.DataFrame, fractions: dict[str, float], seed: int, label_col: str = "label_category",
    group_col: str = "group",
) -> pd.Series:
    """Assign each group wholly to one split, stratified by label as far as groups allow.

    Groups are visited largest first (ties in seeded random order); each goes to the split
    whose per-label counts it brings closest to their targets.
    """
    groups = df[group_col].astype(str)
    n_groups = groups.nunique()
    if n_groups < len(SPLITS):
        raise SplitError(f"need at least {len(SPLITS)} groups for a grouped split, found {n_groups} in '{group_col}'")
    labels = sorted(df[label_col].unique())
    counts = pd.crosstab(groups, df[label_col]).reindex(columns=labels, fill_value=0)
    rng = np.random.default_rng(seed)
    order = counts.index[rng.permutation(len(counts))]
    order = sorted(order, key=lambda g: -counts.loc[g].sum())  # stable: ties keep the random order
    names = [s for s in SPLITS if fractions.get(s, 0) > 0]
    totals = counts.sum().to_numpy(dtype=float)
    targets = {s: fractions[s] * totals for s in names}
    current = {s: np.zeros(len(labels)) for s in names}
    assign: dict[str, str] = {}
    for i, g in enumerate(order):
        vec = counts.loc[g].to_numpy(dtype=float)
        empty = [s for s in names if not current[s].any()]
        remaining = len(order) - i
        candidates = empty if len(empty) >= remaining else names  # every split gets a group

        def cost(split: str, vec: np.ndarray = vec) -> float:
            after = current[split] + vec
            return float((((after - targets[split]) / np.maximum(totals, 1)) ** 2).sum()
                         - (((current[split] - targets[split]) / np.maximum(totals, 1)) ** 2).sum())

        best = min(candidates, key=cost)
        current[best] += vec
        assign[g] = best
    return groups.map(assign).rename("split")


def check_split_classes(df: pd.DataFrame, classes: list[str], label_col: str = "label_category") -> None:
    """Raise when a class has no examples in some split (its metrics would be undefined)."""
    table = pd.crosstab(df["split"], df[label_col]).reindex(index=list(SPLITS), columns=classes, fill_value=0)
    empty = [(s, c) for s in table.index for c in table.columns if table.loc[s, c] == 0]
    if empty:
        listed = ", ".join(f"{c} in {s}" for s, c in empty)
        raise SplitError(
            f"empty class(es) after splitting: {listed}. Add data for them, use more groups, "
            "or change split.fractions / base.seed"
        )
