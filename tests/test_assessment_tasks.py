"""Performance-assessment plumbing: split filters (confidence, clean-only validation), score ranges, task presets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fretlab.data.splits import SplitError, apply_min_values, restrict_validation
from fretlab.params import ParamsError, parse_params
from fretlab.tasks.losses import make_task_loss
from fretlab.tasks.targets import TargetError, encode_targets, resolve_targets

SCORE = {"name": "overall_score", "type": "regression", "range": [0.0, 100.0]}
FLAM = {"name": "flam_quality", "type": "regression", "range": [0.0, 100.0]}
TIER = {"name": "skill_tier", "type": "classification",
        "classes": ["beginner", "intermediate", "advanced", "professional"], "class_weights": True}


def takes() -> pd.DataFrame:
    return pd.DataFrame({
        "track_id": [f"t{i}" for i in range(8)],
        "group": ["p1", "p1", "p2", "p2", "p3", "p3", "p4", "p4"],
        "tier_confidence": [0.9, 0.2, 0.6, 0.5, 0.05, 0.7, 0.51, 0.49],
        "preset": ["clean", "room", "clean", "phone", "clean", "clean", "live", "clean"],
    })


# --- split.min_values ----------------------------------------------------------------------------------------------

def test_min_values_keeps_rows_at_or_above_the_threshold_and_counts_the_rest():
    kept, report = apply_min_values(takes(), {"tier_confidence": 0.5})
    assert kept["track_id"].tolist() == ["t0", "t2", "t3", "t5", "t6"]
    assert report == {"min_values": {"tier_confidence": 0.5}, "dropped": {"tier_confidence": 3}, "kept": 5}


def test_no_filter_returns_every_row_unchanged():
    df = takes()
    kept, _ = apply_min_values(df, {})
    pd.testing.assert_frame_equal(kept, df)


@pytest.mark.parametrize(("value", "problem"), [("", "line 4: 'tier_confidence' is ''"),
                                                 ("high", "line 4: 'tier_confidence' is 'high'"),
                                                 (np.nan, "line 4: 'tier_confidence' is nan")])
def test_a_missing_confidence_while_filtering_names_the_line(value, problem):
    df = takes().astype({"tier_confidence": object})
    df.loc[2, "tier_confidence"] = value
    with pytest.raises(SplitError, match=problem):
        apply_min_values(df, {"tier_confidence": 0.5}, "takes.csv")
    apply_min_values(df, {})  # not filtering: the column is not read


def test_filtering_on_an_absent_column_or_away_every_row_is_an_error():
    with pytest.raises(SplitError, match="'confidence', which is not a column"):
        apply_min_values(takes(), {"confidence": 0.5})
    with pytest.raises(SplitError, match="leaves no row"):
        apply_min_values(takes(), {"tier_confidence": 2.0})


# --- split.val_where -----------------------------------------------------------------------------------------------

def test_validation_keeps_only_the_clean_preset_and_no_player_changes_split():
    df = takes().assign(split=["train", "train", "val", "val", "test", "test", "val", "val"])
    kept, report = restrict_validation(df, {"preset": "clean"})
    val = kept[kept["split"] == "val"]
    assert set(val["preset"]) == {"clean"} and val["track_id"].tolist() == ["t2", "t7"]
    assert report == {"val_where": {"preset": "clean"}, "val_dropped": 2}
    assert (kept[kept["split"] != "val"]["track_id"].tolist() == ["t0", "t1", "t4", "t5"])  # train/test untouched
    assert kept.groupby("group")["split"].nunique().max() == 1
    with pytest.raises(SplitError, match="no validation row has"):
        restrict_validation(df, {"preset": "studio"})


# --- score ranges and presets ------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["-0.5", "100.1", "250"])
def test_a_score_outside_0_100_names_file_line_and_column(bad):
    params = parse_params({"task": {"targets": [SCORE]}})
    index = pd.DataFrame({"overall_score": ["55", bad, ""]})
    problem = rf"takes.csv: column 'overall_score' line\(s\) 3: '{bad}' is outside \[0, 100\]"
    with pytest.raises(TargetError, match=problem):
        encode_targets(index, resolve_targets(params), "takes.csv")
    ok = pd.DataFrame({"overall_score": ["0", "100", ""]})
    values, valid = encode_targets(ok, resolve_targets(params), "takes.csv")
    assert values[:2, 0].tolist() == [0.0, 100.0] and valid[:, 0].tolist() == [True, True, False]


def test_an_unknown_tier_names_the_line():
    params = parse_params({"task": {"targets": [TIER]}})
    with pytest.raises(TargetError, match=r"unknown class\(es\) \['expert'\] .* line\(s\) 3"):
        encode_targets(pd.DataFrame({"skill_tier": ["beginner", "expert"]}), resolve_targets(params), "t.csv")


def test_a_preset_selects_its_targets_and_is_validated():
    task = {"presets": {"tier": [TIER], "masked": [SCORE, FLAM]}, "preset": "masked"}
    specs = resolve_targets(parse_params({"task": task}))
    assert [s.name for s in specs] == ["overall_score", "flam_quality"]
    assert [s.value_range for s in specs] == [(0.0, 100.0), (0.0, 100.0)]
    with pytest.raises(ParamsError, match=r"task\.preset 'tiers' is not one of task\.presets"):
        parse_params({"task": {**task, "preset": "tiers"}})
    with pytest.raises(ParamsError, match="set targets or preset, not both"):
        parse_params({"task": {**task, "targets": [TIER]}})
    with pytest.raises(ParamsError, match="range is \\[low, high\\]"):
        parse_params({"task": {"targets": [{**TIER, "range": [0, 1]}]}})


def test_masked_multitask_loss_counts_the_flam_rows_by_hand():
    """overall_score on every row, flam_quality on 1 row of 4: each target's MSE is over its own valid rows."""
    params = parse_params({"task": {"targets": [SCORE, FLAM]}})
    specs = resolve_targets(params)
    out = torch.tensor([[0.5, 1.0], [0.0, 3.0], [1.0, -2.0], [-1.0, 0.0]])
    y = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 0.5], [0.0, 0.0]])
    valid = torch.tensor([[True, False], [True, False], [True, True], [True, False]])
    loss_fn = make_task_loss(specs, y.numpy(), valid.numpy())
    got = loss_fn(out, y, valid)
    overall = (0.25 + 1.0 + 0.0 + 1.0) / 4
    flam = (-2.0 - 0.5) ** 2  # the one flam row
    assert torch.isfinite(got).item()
    assert got.item() == pytest.approx(overall + flam)
    no_flam = loss_fn(out, y, valid & torch.tensor([True, False]))  # a batch without flams: flam adds 0, no NaN
    assert no_flam.item() == pytest.approx(overall)
