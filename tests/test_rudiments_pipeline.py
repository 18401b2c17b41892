"""The drum-rudiment recipe (recipes/rudiments) end to end through DVC, on tiny params.

One module-scoped workspace: the baseline `dvc repro` (the 4-class skill tier: the forest on the stroke statistics),
`dvc status`, a commit, then the masked multi-task preset as an experiment (`-S task.preset=masked`), which must
re-run only train and evaluate, and the guide's log-mel features with the CRNN (variable-length sequences).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score

from conftest import recipe_workspace
from fretlab.audio.strokes import STROKE_NAMES

pytestmark = pytest.mark.integration

TINY: dict[str, Any] = {
    "base": {"workers": 1},
    "synthesize_rudiments": {"n_players": 12, "takes_per_player": 4, "duration_sec": [1.5, 2.5],
                             "presets": {"clean": 0.5, "room": 0.25, "phone": 0.25}},
    "featurize": {"tracks": {"n_mels": 32}},  # the log-mel run
    "train": {"epochs": 2},
    "model": {"crnn": {"channels": [4, 8, 8], "rnn_hidden": 8}},
}


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    ws = recipe_workspace(tmp_path_factory.mktemp("rudiments"), "rudiments", TINY)
    recipe = ws.root
    out: dict[str, Any] = {"repro": ws.run("dvc", "repro").stdout}
    out["status"] = json.loads(ws.run("dvc", "status", "--json").stdout or "{}")
    out["test"] = _read_json(recipe / "metrics" / "test.json")
    out["synthetic"] = pd.read_csv(recipe / "data" / "synthetic" / "metadata.csv")
    out["split"] = pd.read_csv(recipe / "data" / "split" / "metadata.csv")
    out["confusion"] = pd.read_csv(recipe / "plots" / "confusion" / "test.csv")
    out["features"] = _read_json(recipe / "data" / "features" / "summary.json")
    ws.run("git", "add", "-A")
    ws.run("git", "commit", "-qm", "baseline")
    proc = ws.run("dvc", "exp", "run", "-n", "masked", "-S", "task.preset=masked")
    out["masked"] = {"log": proc.stdout + proc.stderr, "test": _read_json(recipe / "metrics" / "test.json"),
                     "live": _read_json(recipe / "dvclive" / "metrics.json")}
    # the workspace holds the last experiment's params (task.preset=masked): set the tier task back explicitly
    proc = ws.run("dvc", "exp", "run", "-n", "logmel-crnn", "-S", "featurize.tracks.features=[logmel]",
                  "-S", "model.name=crnn", "-S", "task.preset=skill_tier")
    out["crnn"] = {"log": proc.stdout + proc.stderr, "test": _read_json(recipe / "metrics" / "test.json"),
                   "features": _read_json(recipe / "data" / "features" / "summary.json"),
                   "config": _read_json(recipe / "models" / "default" / "config.json")}
    return out


def test_repro_runs_every_stage_and_leaves_a_clean_status(runs: dict[str, Any]) -> None:
    for stage in ("synthesize", "split", "featurize", "train", "evaluate"):
        assert f"Running stage '{stage}'" in runs["repro"], runs["repro"]
    assert runs["status"] == {}


def test_the_default_forest_reads_one_stroke_row_per_take(runs: dict[str, Any]) -> None:
    features = runs["features"]
    assert features["feature_names"] == list(STROKE_NAMES)
    for name, block in features["splits"].items():
        assert block["frames"] == block["tracks"] == (runs["split"]["split"] == name).sum()
    assert runs["test"]["n"] == (runs["split"]["split"] == "test").sum()


def test_the_guides_log_mel_crnn_is_one_exp_away(runs: dict[str, Any]) -> None:
    log = runs["crnn"]["log"]
    for stage in ("featurize", "train", "evaluate"):
        assert f"Running stage '{stage}'" in log, log
    for stage in ("synthesize", "split"):  # a feature change re-uses the takes and the split
        assert f"Running stage '{stage}'" not in log, log
    features = runs["crnn"]["features"]
    assert features["dims"] == 32 and features["feature_names"][0] == "logmel_00"
    assert features["splits"]["train"]["frames_max"] > features["splits"]["train"]["frames_min"] > 1  # variable
    assert runs["crnn"]["config"]["params"]["model"]["name"] == "crnn"
    assert {"accuracy", "balanced_accuracy"} <= set(runs["crnn"]["test"])


def test_split_keeps_players_apart_and_validates_on_clean_takes_only(runs: dict[str, Any]) -> None:
    split = runs["split"]
    assert split.groupby("group")["split"].nunique().max() == 1
    assert set(split.loc[split["split"] == "val", "preset"]) == {"clean"}
    assert split.loc[split["split"] == "train", "preset"].nunique() > 1  # training sees the mixed presets
    dropped = runs["synthetic"]["track_id"].nunique() - split["track_id"].nunique()
    assert dropped > 0  # the non-clean takes of the validation players


def test_tier_metrics_report_balanced_accuracy_next_to_accuracy(runs: dict[str, Any]) -> None:
    tier = runs["test"]  # one target: its figures are the file's top level, as for the guitar default
    assert {"accuracy", "balanced_accuracy", "macro_f1"} <= set(tier)
    assert 0.0 <= tier["balanced_accuracy"] <= 1.0 and 0.0 <= tier["accuracy"] <= 1.0


def test_the_masked_preset_reruns_only_train_and_evaluate_and_counts_the_flam_rows(runs: dict[str, Any]) -> None:
    log = runs["masked"]["log"]
    for stage in ("synthesize", "split", "featurize"):
        assert f"Running stage '{stage}'" not in log, log
    for stage in ("train", "evaluate"):
        assert f"Running stage '{stage}'" in log, log
    test = runs["masked"]["test"]
    flams = runs["split"].query("split == 'test'")["flam_quality"].notna().sum()
    assert test["flam_quality"]["n"] == flams < test["overall_score"]["n"]
    assert all(math.isfinite(v) for k, v in test["flam_quality"].items() if isinstance(v, float))
    assert math.isfinite(runs["masked"]["live"]["train"]["loss"])


def test_balanced_accuracy_matches_sklearn_on_the_written_predictions(runs: dict[str, Any]) -> None:
    """The confusion plot data holds one (actual, predicted) row per test take: the headline figure is sklearn's."""
    df = runs["confusion"]
    assert len(df) == runs["test"]["n"] == (runs["split"]["split"] == "test").sum()
    assert runs["test"]["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(df["actual"], df["predicted"]))
    assert runs["test"]["accuracy"] == pytest.approx((df["actual"] == df["predicted"]).mean())
