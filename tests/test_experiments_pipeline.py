"""`dvc exp` end to end in a temporary git repository, on tiny params.

One module-scoped workspace runs, in order: the baseline (`dvc repro`, committed), an lr experiment,
an RF experiment, a return to the baseline, and a 2-experiment queued sweep. Each test then checks
one part of the README's "Experiments" workflow against what those runs left behind.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import yaml

from conftest import TINY_PARAMS, Workspace, copy_working_tree, deep_update

pytestmark = pytest.mark.integration

CLASSES = {"general_note", "harmonic", "dead_note"}
UPSTREAM = ("synthesize", "split", "featurize")


def exp_records(ws: Workspace) -> dict[str, dict[str, Any]]:
    """`dvc exp show --json` as {experiment name: {"params": ..., "metrics": {file: data}}}."""
    shown = json.loads(ws.run("dvc", "exp", "show", "--json").stdout)
    out = {}
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            rev = exp["revs"][0]
            data = rev.get("data") or {}
            out[rev["name"]] = {
                "params": data.get("params", {}).get("params.yaml", {}).get("data", {}),
                "metrics": {path: m.get("data", {}) for path, m in data.get("metrics", {}).items()},
            }
    return out


def wait_for_queue(ws: Workspace, timeout: float = 900) -> str:
    """Poll `dvc queue status` until nothing is queued or running; return the last status table."""
    deadline = time.monotonic() + timeout
    while True:
        status = ws.run("dvc", "queue", "status").stdout
        if not re.search(r"\b(Queued|Running)\b", status):
            return status
        assert time.monotonic() < deadline, f"queue still busy after {timeout:.0f} s:\n{status}"
        time.sleep(5)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("exp") / "ws"
    root.mkdir()
    copy_working_tree(root)
    (root / "dvc.lock").unlink(missing_ok=True)
    ws = Workspace(root)
    ws.set_params(deep_update(yaml.safe_load(yaml.safe_dump(TINY_PARAMS)), {"model": {"rf": {"n_estimators": 20}}}),
                  commit=False)
    ws.run("git", "init", "-q", "-b", "main")
    ws.run("git", "add", "-A")
    ws.run("git", "commit", "-qm", "workspace")
    ws.run("dvc", "repro")
    ws.run("git", "add", "-A")
    ws.run("git", "commit", "-qm", "baseline")
    out: dict[str, Any] = {"ws": ws}
    out["lr"] = ws.run("dvc", "exp", "run", "-n", "lr-low", "-S", "train.lr=0.0005").stdout
    ws_ckpt = (root / "checkpoints" / "last.pt").read_bytes()
    out["rf"] = ws.run("dvc", "exp", "run", "-n", "rf", "-S", "model.name=rf").stdout
    out["rf_model_files"] = sorted(p.name for p in (root / "models" / "default").iterdir())
    out["rf_test"] = json.loads((root / "metrics" / "test.json").read_text())
    out["metrics_diff"] = json.loads(ws.run("dvc", "metrics", "diff", "lr-low", "rf", "--json").stdout)
    ws.run("dvc", "plots", "diff", "lr-low", "rf", "-o", "diff_html")
    out["plots_html"] = (root / "diff_html" / "index.html").read_text()

    # back to the committed baseline: its params, metrics and (from the cache) model
    ws.run("git", "checkout", "-q", "--", "params.yaml", "dvc.lock", "metrics", "plots", "dvclive")
    ws.run("dvc", "checkout", "dvc.yaml")
    assert (root / "checkpoints" / "last.pt").read_bytes() == ws_ckpt  # lr-low's: not the baseline's checkpoint
    out["baseline_status"] = json.loads(ws.run("dvc", "status", "--json", "dvc.yaml").stdout)

    ws.run("dvc", "exp", "run", "--queue", "-S", "model.crnn.rnn_hidden=8,12", "-S", "featurize.n_mels=24")
    ws.run("dvc", "queue", "start", "-j", "1")
    try:
        out["queue_status"] = wait_for_queue(ws)
    finally:
        ws.run("dvc", "queue", "stop", check=False, timeout=120)
    out["exps"] = exp_records(ws)
    return out


def test_lr_experiment_reruns_only_train_and_evaluate(runs: dict[str, Any]) -> None:
    log = runs["lr"]
    for stage in UPSTREAM:
        assert f"Stage '{stage}' didn't change, skipping" in log, log
        assert f"Running stage '{stage}'" not in log
    assert "Running stage 'train'" in log and "Running stage 'evaluate'" in log
    assert "Ran experiment(s): lr-low" in log


def test_exp_show_json_holds_changed_params_and_metrics(runs: dict[str, Any]) -> None:
    lr = runs["exps"]["lr-low"]
    assert lr["params"]["train"]["lr"] == 0.0005
    assert lr["params"]["model"]["name"] == "crnn"
    test = lr["metrics"]["metrics/test.json"]
    assert 0.0 <= test["accuracy"] <= 1.0 and 0.0 <= test["macro_f1"] <= 1.0
    assert set(test["per_class"]) == CLASSES and all("f1" in v for v in test["per_class"].values())
    assert "val" in lr["metrics"]["dvclive/metrics.json"]


def test_rf_runs_in_the_same_pipeline_and_reports_the_same_metrics(runs: dict[str, Any]) -> None:
    log = runs["rf"]
    assert "Stage 'featurize' didn't change, skipping" in log
    assert "Running stage 'train'" in log and "Running stage 'evaluate'" in log
    assert "model.safetensors" in runs["rf_model_files"] and not any(
        f.endswith((".pkl", ".pickle", ".joblib", ".skops")) for f in runs["rf_model_files"])
    crnn_test = runs["exps"]["lr-low"]["metrics"]["metrics/test.json"]
    assert set(runs["rf_test"]) == set(crnn_test)
    assert runs["exps"]["rf"]["params"]["model"]["name"] == "rf"
    rf_live = runs["exps"]["rf"]["metrics"]["dvclive/metrics.json"]
    assert {"train", "val"} <= set(rf_live) and "macro_f1" in rf_live["val"]


def test_metrics_diff_between_experiments_lists_changed_metrics(runs: dict[str, Any]) -> None:
    diff = runs["metrics_diff"]
    changed = diff["dvclive/metrics.json"]["train.loss"]  # an RF fit and a 2-epoch CRNN never match here
    assert changed["old"] != changed["new"] and changed["diff"] == pytest.approx(changed["new"] - changed["old"])
    assert diff["dvclive/metrics.json"]["lr"]["new"] is None  # logged by the CRNN only
    for entries in diff.values():
        for name, entry in entries.items():
            assert entry["old"] != entry["new"], name  # `dvc metrics diff` lists only what changed


def _spec(html: str, div_id: str) -> dict[str, Any]:
    start = html.index(f'<div id = "{div_id}">')
    block = html[start : html.index("</div>", start)]
    return json.loads(re.search(r"var spec = (\{.*?\});\s*\n", block, re.S).group(1))


@pytest.mark.parametrize("div_id", ["Test_confusion_matrix", "Test_confusion_matrix__normalized_",
                                    "Validation_confusion_matrix"])
def test_plots_diff_draws_each_confusion_matrix_for_both_experiments(runs: dict[str, Any], div_id: str) -> None:
    spec = _spec(runs["plots_html"], div_id)
    values = spec["data"]["values"]
    assert {v["rev"] for v in values} == {"lr-low", "rf"}
    assert {v["actual"] for v in values} <= CLASSES and {v["predicted"] for v in values} <= CLASSES
    encoding = spec["spec"]["encoding"]
    assert (encoding["x"]["field"], encoding["y"]["field"]) == ("predicted", "actual")


def test_plots_diff_draws_the_dvclive_curves(runs: dict[str, Any]) -> None:
    loss = _spec(runs["plots_html"], "Loss")["data"]["values"]
    assert {(v["rev"], v["filename"]) for v in loss} == {
        (rev, f"{split}/loss.tsv") for rev in ("lr-low", "rf") for split in ("train", "val")}
    f1 = _spec(runs["plots_html"], "Validation_macro-F1")["data"]["values"]
    assert {v["rev"] for v in f1} == {"lr-low", "rf"}
    assert len([v for v in f1 if v["rev"] == "lr-low"]) == TINY_PARAMS["train"]["epochs"]  # one point per epoch


def test_baseline_restored_from_cache_needs_no_retraining(runs: dict[str, Any]) -> None:
    """The workspace checkpoint belongs to lr-low, yet the restored baseline is up to date."""
    assert runs["baseline_status"] == {}


def test_queued_sweep_runs_every_experiment(runs: dict[str, Any]) -> None:
    assert "Failed" not in runs["queue_status"], runs["queue_status"]
    swept = {rec["params"]["model"]["crnn"]["rnn_hidden"]: rec for rec in runs["exps"].values()
             if rec["params"]["featurize"]["n_mels"] == 24}
    assert set(swept) == {8, 12}
    for rec in swept.values():
        assert rec["params"]["model"]["name"] == "crnn" and rec["params"]["train"]["lr"] == 0.002
        assert 0.0 <= rec["metrics"]["metrics/test.json"]["macro_f1"] <= 1.0


def test_queued_feature_change_reruns_featurize_but_not_the_data_stages(runs: dict[str, Any]) -> None:
    ws: Workspace = runs["ws"]
    status = runs["queue_status"]
    names = [line.split()[1] for line in status.splitlines() if line.strip().endswith("Success")]
    assert len(names) >= 2, status
    logs = [ws.run("dvc", "queue", "logs", name).stdout for name in names]
    for log in logs:
        for stage in ("synthesize", "split"):
            assert f"Running stage '{stage}'" not in log, log
        assert "Running stage 'train'" in log and "Running stage 'evaluate'" in log
    # the first run computes the 24-mel features; the second may restore them from the run cache
    assert any("Running stage 'featurize'" in log for log in logs)

