"""The music-attributes recipe (recipes/attributes) end to end through DVC, on tiny params.

One module-scoped workspace runs, from the recipe's directory (a DVC project of its own): the baseline
`dvc repro`, `dvc status` and `dvc plots show`, a commit of the baseline, then three experiments, each
started from the committed baseline: standardization off, one target's loss weight changed (a list
element, `-S task.targets.3.weight=2.0`), and the multi-target forest (`-S model.name=rf`). Each test
then checks one part of what those runs left behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from conftest import Workspace, recipe_workspace

pytestmark = pytest.mark.integration

TINY_TRACKS: dict[str, Any] = {
    "base": {"workers": 1},
    "synthesize_tracks": {"n_tracks": 24, "n_artists": 6, "duration_sec": [3.0, 5.0]},
    "train": {"epochs": 2},
    "model": {"gru": {"hidden": 16, "layers": 2},
              "rf": {"n_estimators": 20, "search": {"n_iter": 2, "cv_folds": 2, "n_estimators": [10, 20]}}},
}
# name -> the `dvc exp run -S` overrides; task.targets.3 is tempo (Hydra's dotted path indexes lists). Two task
# params in one experiment (CI time); the forest's then shows each experiment starts from the baseline.
EXPERIMENTS = {"nostd-w2": ("task.standardize=false", "task.targets.3.weight=2.0"), "rf": ("model.name=rf",)}
REGRESSION_KEYS = {"mse", "rmse", "mae", "r2"}
STANDARDIZED_KEYS = {"mse", "rmse", "mae"}
CLASSIFICATION_KEYS = {"accuracy", "balanced_accuracy", "macro_f1"}
DECLARED_PLOTS = ("Standardized MSE per target (test)", "R2 per target (test)",
                  "Predicted vs true, standardized (test)", "Loss")


def _split_out(lock: dict[str, Any]) -> str:
    """The hash of the split stage's output in a dvc.lock."""
    [out] = lock["stages"]["split"]["outs"]
    return out["md5"]


def _exp_records(ws: Workspace) -> dict[str, dict[str, Any]]:
    """`dvc exp show --json` as {experiment name: {"params": ..., "metrics": {file: data}}}."""
    out = {}
    for baseline in json.loads(ws.run("dvc", "exp", "show", "--json").stdout):
        for exp in baseline.get("experiments") or []:
            rev = exp["revs"][0]
            data = rev.get("data") or {}
            out[rev["name"]] = {
                "params": data.get("params", {}).get("params.yaml", {}).get("data", {}),
                "metrics": {path: m.get("data", {}) for path, m in data.get("metrics", {}).items()},
            }
    return out


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    ws = recipe_workspace(tmp_path_factory.mktemp("attributes"), "attributes", TINY_TRACKS)
    root, recipe = ws.root.parents[1], ws.root

    out: dict[str, Any] = {"ws": ws, "params": ws.params()}
    out["repro"] = ws.run("dvc", "repro").stdout
    out["status"] = json.loads(ws.run("dvc", "status", "--json").stdout or "{}")
    out["test"] = _read_json(recipe / "metrics" / "test.json")
    out["val"] = _read_json(recipe / "metrics" / "val.json")
    out["split"] = pd.read_csv(recipe / "data" / "split" / "metadata.csv", dtype={"group": str})
    out["targets_csv"] = pd.read_csv(recipe / "plots" / "targets" / "test.csv")
    out["scatter_csv"] = pd.read_csv(recipe / "plots" / "scatter" / "test.csv")
    out["figures"] = {p.name: p.stat().st_size for p in (recipe / "plots" / "figures").iterdir()}
    html_dir = root.parent / "plots_html"  # outside the workspace, so no experiment picks it up
    out["plots"] = json.loads(ws.run("dvc", "plots", "show", "--json", "-o", str(html_dir)).stdout)
    ws.run("git", "add", "-A")
    ws.run("git", "commit", "-qm", "baseline")  # `dvc exp show` compares experiments with this commit
    out["lock"] = yaml.safe_load((recipe / "dvc.lock").read_text())

    for name, overrides in EXPERIMENTS.items():
        proc = ws.run("dvc", "exp", "run", "-n", name, *(arg for o in overrides for arg in ("-S", o)))
        out[name] = {
            "log": proc.stdout + proc.stderr,
            "lock": yaml.safe_load((recipe / "dvc.lock").read_text()),
            "test": _read_json(recipe / "metrics" / "test.json"),
            "cv_results": (pd.read_csv(recipe / "dvclive" / "cv_results.csv")
                           if (recipe / "dvclive" / "cv_results.csv").is_file() else None),
        }
        # back to the committed baseline, so the next experiment changes one thing only
        ws.run("git", "checkout", "-q", "HEAD", "--", ".")
        ws.run("dvc", "checkout")
    out["exps"] = _exp_records(ws)
    return out


def _targets(runs: dict[str, Any], kind: str) -> list[str]:
    return [t["name"] for t in runs["params"]["task"]["targets"] if t["type"] == kind]


def test_repro_runs_every_stage_and_leaves_a_clean_status(runs: dict[str, Any]) -> None:
    for stage in ("synthesize", "split", "featurize", "train", "evaluate"):
        assert f"Running stage '{stage}'" in runs["repro"], runs["repro"]
    assert runs["status"] == {}


def test_metrics_hold_a_block_per_target_and_the_aggregate(runs: dict[str, Any]) -> None:
    regression, classification = _targets(runs, "regression"), _targets(runs, "classification")
    assert len(regression) == 9 and len(classification) == 2
    for split in ("val", "test"):
        metrics = runs[split]
        assert set(metrics) == {*regression, *classification, "aggregate"}, split
        for name in regression:
            assert set(metrics[name]) >= REGRESSION_KEYS, (split, name, metrics[name])
            assert set(metrics[name]["standardized"]) >= STANDARDIZED_KEYS, (split, name)
        for name in classification:
            assert set(metrics[name]) >= CLASSIFICATION_KEYS, (split, name, metrics[name])
        aggregate = metrics["aggregate"]
        assert {"mse", "mse_standardized", "r2_mean", "raw_mse_share"} <= set(aggregate)
        assert set(aggregate["raw_mse_share"]) == set(regression)
        assert sum(aggregate["raw_mse_share"].values()) == pytest.approx(1.0)
        assert aggregate["mse"] == pytest.approx(sum(metrics[n]["mse"] for n in regression) / len(regression))


def test_evaluate_writes_the_plot_data_and_figures(runs: dict[str, Any]) -> None:
    regression = _targets(runs, "regression")
    table = runs["targets_csv"]
    assert list(table["target"]) == regression
    assert {"mse_standardized", "r2", "mse", "raw_mse_share"} <= set(table.columns)
    scatter = runs["scatter_csv"]
    assert list(scatter.columns) == ["id", "target", "true", "predicted", "true_standardized", "predicted_standardized"]
    counts = scatter.groupby("target").size().to_dict()  # one point per valid (track, target) cell
    assert counts == {n: runs["test"][n]["n"] for n in regression if runs["test"][n]["n"]}
    for figure in ("error_heatmap_test.png", "scatter_test.png", "error_heatmap_val.png", "scatter_val.png"):
        assert runs["figures"].get(figure, 0) > 0, (figure, sorted(runs["figures"]))


def test_split_keeps_each_artist_in_one_split(runs: dict[str, Any]) -> None:
    split = runs["split"]
    assert len(split) == TINY_TRACKS["synthesize_tracks"]["n_tracks"]
    assert split["group"].nunique() == TINY_TRACKS["synthesize_tracks"]["n_artists"]
    assert (split.groupby("group")["split"].nunique() == 1).all(), "an artist leaked across splits"
    sizes = split["split"].value_counts()
    assert set(sizes.index) == {"train", "val", "test"}  # every split non-empty
    assert sizes["train"] > max(sizes["val"], sizes["test"])
    assert 0.5 <= sizes["train"] / len(split) <= 0.85  # 70/15/15 by tracks, in whole artists (6 here)


def test_task_param_experiment_reruns_only_train_and_evaluate(runs: dict[str, Any]) -> None:
    name = "nostd-w2"
    log = runs[name]["log"]
    assert f"Ran experiment(s): {name}" in log, log
    for stage in ("synthesize", "split", "featurize"):
        assert f"Stage '{stage}' didn't change, skipping" in log, log
        assert f"Running stage '{stage}'" not in log, log
    assert "Running stage 'train'" in log and "Running stage 'evaluate'" in log, log
    assert _split_out(runs[name]["lock"]) == _split_out(runs["lock"])


def test_exp_show_holds_the_changed_params_and_their_metrics(runs: dict[str, Any]) -> None:
    exps, baseline = runs["exps"], runs["params"]
    assert set(EXPERIMENTS) <= set(exps)
    changed = exps["nostd-w2"]
    assert changed["params"]["task"]["standardize"] is False and baseline["task"]["standardize"] is True
    shown = changed["metrics"]["metrics/test.json"]["aggregate"]["mse_standardized"]
    assert shown == pytest.approx(runs["nostd-w2"]["test"]["aggregate"]["mse_standardized"])
    assert shown != pytest.approx(runs["test"]["aggregate"]["mse_standardized"])

    weighted = changed["params"]["task"]
    assert [t["weight"] for t in weighted["targets"]] == [2.0 if t["name"] == "tempo" else t["weight"]
                                                         for t in baseline["task"]["targets"]]
    assert weighted["targets"][3]["name"] == "tempo"
    assert {k: v for k, v in weighted["targets"][3].items() if k != "weight"} == \
        {k: v for k, v in baseline["task"]["targets"][3].items() if k != "weight"}
    # the next experiment started from the committed baseline, not from nostd-w2
    assert exps["rf"]["params"]["task"] == baseline["task"]


def test_plots_show_renders_the_declared_plots(runs: dict[str, Any]) -> None:
    shown = runs["plots"]
    assert not shown.get("errors"), shown.get("errors")
    data = shown["data"]
    regression = _targets(runs, "regression")
    for title in DECLARED_PLOTS:
        [plot] = data[title]
        assert plot["type"] == "vega" and plot["content"]["data"]["values"], title
    for title in DECLARED_PLOTS[:2]:
        assert [v["target"] for v in data[title][0]["content"]["data"]["values"]] == regression
    scatter = data["Predicted vs true, standardized (test)"][0]["content"]
    assert len(scatter["data"]["values"]) == len(runs["scatter_csv"])
    assert (scatter["encoding"]["x"]["field"], scatter["encoding"]["y"]["field"]) == ("true_standardized",
                                                                                   "predicted_standardized")
    loss = pd.DataFrame(data["Loss"][0]["content"]["data"]["values"])
    assert loss.groupby("filename").size().to_dict() == {
        "train/loss.tsv": TINY_TRACKS["train"]["epochs"], "val/loss.tsv": TINY_TRACKS["train"]["epochs"]}
    images = [k for k, v in data.items() if v[0]["type"] == "image"]
    assert {"plots/figures/error_heatmap_test.png", "plots/figures/scatter_test.png"} <= set(images)


def test_rf_runs_through_the_same_pipeline_with_the_same_metrics(runs: dict[str, Any]) -> None:
    rf = runs["rf"]
    for stage in ("synthesize", "split", "featurize"):
        assert f"Stage '{stage}' didn't change, skipping" in rf["log"], rf["log"]
    assert "Running stage 'train'" in rf["log"] and "Running stage 'evaluate'" in rf["log"]
    assert runs["exps"]["rf"]["params"]["model"]["name"] == "rf"

    def shape(metrics: dict[str, Any]) -> dict[str, set[str]]:
        return {name: set(block) for name, block in metrics.items()}

    assert shape(rf["test"]) == shape(runs["test"])
    assert set(rf["test"]["aggregate"]["raw_mse_share"]) == set(_targets(runs, "regression"))
    cv = rf["cv_results"]  # model.rf.search.enabled: every candidate of the randomized search, ranked
    assert cv is not None, "dvclive/cv_results.csv missing"
    assert len(cv) == TINY_TRACKS["model"]["rf"]["search"]["n_iter"]
    assert {"mean_test_score", "rank_test_score"} <= set(cv.columns)
