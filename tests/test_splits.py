"""Grouped, stratified, deterministic splits."""

import numpy as np
import pandas as pd
import pytest

from fretlab.data.splits import SplitError, check_split_classes, grouped_split


def _events(n_groups: int = 20, per_group: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        size = int(rng.integers(per_group // 2, per_group * 2))
        labels = rng.choice(["general_note", "harmonic", "dead_note"], size=size, p=[0.7, 0.15, 0.15])
        rows += [{"note_id": f"{g}_{i}", "group": f"g{g}", "label_category": lab} for i, lab in enumerate(labels)]
    return pd.DataFrame(rows)


FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def test_no_group_appears_in_two_splits():
    df = _events()
    df["split"] = grouped_split(df, FRACTIONS, seed=1)
    assert (df.groupby("group")["split"].nunique() == 1).all()
    assert set(df["split"]) == {"train", "val", "test"}


def test_split_is_deterministic_and_seed_dependent():
    df = _events()
    a, b = grouped_split(df, FRACTIONS, seed=3), grouped_split(df, FRACTIONS, seed=3)
    pd.testing.assert_series_equal(a, b)
    others = [grouped_split(df, FRACTIONS, seed=s) for s in range(4, 9)]
    assert any(not o.equals(a) for o in others)


def test_sizes_follow_the_fractions_roughly():
    df = _events(n_groups=60, per_group=20)
    share = grouped_split(df, FRACTIONS, seed=0).value_counts(normalize=True)
    for split, frac in FRACTIONS.items():
        assert share[split] == pytest.approx(frac, abs=0.05)


def test_labels_are_stratified_as_far_as_groups_allow():
    df = _events(n_groups=60, per_group=20)
    df["split"] = grouped_split(df, FRACTIONS, seed=0)
    overall = df["label_category"].value_counts(normalize=True)
    for _, part in df.groupby("split"):
        share = part["label_category"].value_counts(normalize=True)
        for label, p in overall.items():
            assert share.get(label, 0) == pytest.approx(p, abs=0.08)


def test_too_few_groups_is_a_clear_error():
    df = _events(n_groups=2)
    with pytest.raises(SplitError, match="at least 3 groups"):
        grouped_split(df, FRACTIONS, seed=0)


def test_empty_class_in_a_split_is_reported():
    df = pd.DataFrame({"label_category": ["general_note", "general_note", "harmonic"],
                       "split": ["train", "val", "test"]})
    with pytest.raises(SplitError, match="harmonic in train"):
        check_split_classes(df, ["general_note", "harmonic"])
