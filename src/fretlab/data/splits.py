"""Deterministic, leakage-safe train/val/test assignment grouped by recording or instrument."""

from __future__ import annotations

from collections.abc import Sequence

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


def check_split_classes(df: pd.DataFrame, classes: list[str], label_col: str = "label_category",
                        splits: Sequence[str] = SPLITS) -> None:
    """Raise when a class has no examples in some split (its metrics would be undefined)."""
    table = pd.crosstab(df["split"], df[label_col]).reindex(index=list(splits), columns=classes, fill_value=0)
    empty = [(s, c) for s in table.index for c in table.columns if table.loc[s, c] == 0]
    if empty:
        listed = ", ".join(f"{c} in {s}" for s, c in empty)
        raise SplitError(
            f"empty class(es) after splitting: {listed}. Add data for them, use more groups, "
            "or change split.fractions / base.seed"
        )


def predefined_fold_split(df: pd.DataFrame, folds: list[int], fold_col: str = "fold",
                          group_col: str = "group") -> pd.Series:
    """The dataset's own folds as split names ``fold<K>``, exactly as given (never reshuffled).

    Raises :class:`SplitError` when the fold column is missing or non-integer, names a fold not in
    ``folds``, leaves a fold empty, or puts one group (source recording) in two folds.
    """
    if fold_col not in df.columns:
        raise SplitError(f"split.strategy predefined_folds needs a '{fold_col}' column; this data source has none "
                         "(use data.source esc50 / urbansound8k, or add the column to your CSV)")
    values = pd.to_numeric(df[fold_col], errors="coerce")
    bad = df.index[values.isna() | (values != values.round())]
    if len(bad):
        raise SplitError(f"non-integer '{fold_col}' value(s) on row(s) {[int(i) + 2 for i in bad[:10]]}")
    values = values.astype(int)
    unknown = sorted(set(values) - set(folds))
    if unknown:
        raise SplitError(f"the data has fold(s) {unknown} not listed in split.folds {folds}; add them to split.folds")
    empty = sorted(set(folds) - set(values))
    if empty:
        raise SplitError(f"split.folds lists fold(s) {empty} that hold no clips; remove them from split.folds")
    straddling = df.groupby(df[group_col].astype(str))[fold_col].nunique()
    straddling = straddling[straddling > 1]
    if len(straddling):
        raise SplitError(f"group(s) {sorted(straddling.index)[:10]} appear in more than one fold; clips of one source "
                         "recording must share a fold or the folds leak")
    return ("fold" + values.astype(str)).rename("split")


def assign_splits(df: pd.DataFrame, strategy: str, fractions: dict[str, float], folds: list[int],
                  seed: int, stratify: str | None = "label_category") -> pd.Series:
    """The ``split`` column for ``split.strategy``: grouped train/val/test (stratified by the ``stratify``
    column as far as groups allow; None balances row counts only), or the predefined folds."""
    if strategy == "predefined_folds":
        return predefined_fold_split(df, folds)
    if stratify is None:
        return grouped_split(df.assign(_all="all"), fractions, seed, label_col="_all")
    return grouped_split(df, fractions, seed, label_col=stratify)


def split_summary(df: pd.DataFrame, label_col: str | None) -> tuple[dict, str]:
    """``summary.json`` content (rows per split and label, groups per split) and a printable table."""
    if label_col is None:
        table = df.groupby("split").size().rename("rows").to_frame()
        rows = {s: int(n) for s, n in table["rows"].items()}
    else:
        table = df.groupby(["split", label_col]).size().unstack(fill_value=0)
        rows = {s: {c: int(n) for c, n in row.items()} for s, row in table.iterrows()}
    groups = {s: sorted(g["group"].unique().tolist()) for s, g in df.groupby("split")}
    return {"events": rows, "groups": groups}, table.to_string()


def _line(position: int) -> int:
    """The metadata CSV line of the row at ``position`` (the header is line 1)."""
    return position + 2


def apply_min_values(df: pd.DataFrame, min_values: dict[str, float], source: str = "metadata") -> tuple[pd.DataFrame,
                                                                                                       dict]:
    """Keep the rows whose every ``min_values`` column is at least its threshold (``split.min_values``).

    Returns the kept rows and a report (rows dropped per column). A missing column, or an empty or
    non-numeric cell in one, stops with the line: a filter cannot guess a missing value.
    """
    keep = pd.Series(True, index=df.index)
    dropped: dict[str, int] = {}
    for column, threshold in min_values.items():
        if column not in df.columns:
            raise SplitError(f"{source}: split.min_values filters on '{column}', which is not a column; "
                             f"columns are {list(df.columns)}")
        values = pd.to_numeric(df[column], errors="coerce")
        bad = values.index[~np.isfinite(values.to_numpy(dtype=np.float64))]
        if len(bad):
            raise SplitError(f"{source}: line {_line(df.index.get_loc(bad[0]))}: '{column}' is "
                             f"{df.loc[bad[0], column]!r}, but split.min_values filters on it; give every row a "
                             f"value or drop '{column}' from split.min_values")
        below = values < threshold
        dropped[column] = int((below & keep).sum())
        keep &= ~below
    if not keep.any():
        raise SplitError(f"{source}: split.min_values {dict(min_values)} leaves no row; lower the thresholds")
    return df[keep].copy(), {"min_values": dict(min_values), "dropped": dropped, "kept": int(keep.sum())}


def restrict_validation(df: pd.DataFrame, where: dict[str, str], source: str = "metadata") -> tuple[pd.DataFrame,
                                                                                                   dict]:
    """Drop the validation rows whose ``where`` columns differ from the given values (``split.val_where``).

    The rest of a validation group's rows are dropped rather than moved, so no group reaches two splits.
    """
    if not where:
        return df, {}
    is_val = df["split"].eq("val")
    match = pd.Series(True, index=df.index)
    for column, value in where.items():
        if column not in df.columns:
            raise SplitError(f"{source}: split.val_where needs column '{column}'; columns are {list(df.columns)}")
        match &= df[column].astype(str).eq(str(value))
    kept = df[~is_val | match].copy()
    if not kept["split"].eq("val").any():
        raise SplitError(f"{source}: no validation row has {dict(where)}; change split.val_where or the data")
    return kept, {"val_where": dict(where), "val_dropped": int((is_val & ~match).sum())}
