"""`dvc exp` end to end in a temporary git repository, on tiny params.

One module-scoped workspace runs, in order: the baseline (`dvc repro`), the README's worked example
exactly as written (commit, an lr experiment, an RF experiment, `exp show`, `metrics diff`, `plots diff`),
a return to the committed baseline, a 2-experiment queued sweep, then `dvc exp apply` and
`dvc exp branch` of a swept run. Each test then checks one part of what those runs left behind.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import TINY_PARAMS, Workspace, clone_baseline

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[1] / "README.md"
CLASSES = {"general_note", "harmonic", "dead_note"}
UPSTREAM = ("synthesize", "split", "featurize")
LR_RUN = "dvc exp run -n lr-5e-4 -S train.lr=5e-4"


def readme_commands(marker: str) -> list[str]:
    """Command lines of the README's bash block containing ``marker`` (no comments, no venv activation)."""
    blocks = [b for b in re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S) if marker in b]
    assert len(blocks) == 1, f"expected one README bash block with {marker!r}, found {len(blocks)}"
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in blocks[0].splitlines()]
    return [line for line in lines if line and not line.startswith(("#", "source "))]


def run_in_one_shell(ws: Workspace, lines: list[str]) -> dict[str, str]:
    """Run the lines in one bash session (variables carry over), stopping at the first failure.

    Returns each line's combined stdout and stderr.
    """
    script = "set -euo pipefail\nexec 2>&1\n" + "".join(f"echo '@@@{i}'\n{line}\n" for i, line in enumerate(lines))
    ws.env["COLUMNS"] = "1000"  # `dvc exp show` sizes its table to the terminal
    text = ws.run("bash", "-c", script).stdout
    parts = re.split(r"^@@@(\d+)\n", text, flags=re.M)
    return {lines[int(i)]: body for i, body in zip(parts[1::2], parts[2::2], strict=True)}


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
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_baseline: Path) -> dict[str, Any]:
    ws = clone_baseline(tiny_baseline, tmp_path_factory.mktemp("exp") / "ws")  # TINY_PARAMS after `make repro`
    root = ws.root

    out: dict[str, Any] = {"ws": ws}
    out["readme"] = run_in_one_shell(ws, readme_commands(LR_RUN))
    out["baseline_params"] = yaml.safe_load(ws.run("git", "show", "HEAD:params.yaml").stdout)  # the README's commit
    ws_ckpt = (root / "checkpoints" / "last.pt").read_bytes()  # written by lr-5e-4 (the RF writes none)
    out["rf_model_files"] = sorted(p.name for p in (root / "models" / "default").iterdir())
    out["rf_test"] = json.loads((root / "metrics" / "test.json").read_text())
    out["metrics_diff"] = json.loads(ws.run("dvc", "metrics", "diff", "lr-5e-4", "rf", "--json").stdout)
    out["plots_html"] = (root / "dvc_plots" / "index.html").read_text()

    # back to the committed baseline: its params, metrics and (from the cache) model
    ws.run("git", "checkout", "-q", "--", "params.yaml", "dvc.lock", "metrics", "plots", "dvclive", "checkset",
           "reports")
    ws.run("dvc", "checkout", "dvc.yaml")
    assert (root / "checkpoints" / "last.pt").read_bytes() == ws_ckpt  # lr-5e-4's, not the baseline's checkpoint
    out["baseline_status"] = json.loads(ws.run("dvc", "status", "--json", "dvc.yaml").stdout)

    # the README's sweep, smaller: 2 queued runs that also change a feature param
    ws.run("dvc", "exp", "run", "--queue", "-S", "model.crnn.rnn_hidden=8,12", "-S", "featurize.n_mels=24")
    ws.run("dvc", "queue", "start", "-j", "1")
    try:
        out["queue_status"] = wait_for_queue(ws)
    finally:
        ws.run("dvc", "queue", "stop", check=False, timeout=120)
    out["exps"] = exp_records(ws)
    best = next(name for name, rec in out["exps"].items() if rec["params"]["model"]["crnn"]["rnn_hidden"] == 12)
    out["apply"] = ws.run("dvc", "exp", "apply", best, check=False)
    out["applied"] = ws.params()
    ws.run("dvc", "exp", "branch", best, "best-crnn")
    out["branch_params"] = yaml.safe_load(ws.run("git", "show", "best-crnn:params.yaml").stdout)
    return out


def test_lr_experiment_reruns_only_train_and_evaluate(runs: dict[str, Any]) -> None:
    log = runs["readme"][LR_RUN]
    for stage in UPSTREAM:
        assert f"Stage '{stage}' didn't change, skipping" in log, log
        assert f"Running stage '{stage}'" not in log
    assert "Running stage 'train'" in log and "Running stage 'evaluate'" in log
    assert "Ran experiment(s): lr-5e-4" in log


def test_exp_show_json_holds_changed_params_and_metrics(runs: dict[str, Any]) -> None:
    lr = runs["exps"]["lr-5e-4"]
    assert lr["params"]["train"]["lr"] == pytest.approx(5e-4)
    assert lr["params"]["model"]["name"] == "crnn"
    test = lr["metrics"]["metrics/test.json"]
    assert 0.0 <= test["accuracy"] <= 1.0 and 0.0 <= test["macro_f1"] <= 1.0
    assert set(test["per_class"]) == CLASSES and all("f1" in v for v in test["per_class"].values())
    assert "val" in lr["metrics"]["dvclive/metrics.json"]


def test_rf_runs_in_the_same_pipeline_and_reports_the_same_metrics(runs: dict[str, Any]) -> None:
    log = runs["readme"]["dvc exp run -n rf -S model.name=rf"]
    assert "Stage 'featurize' didn't change, skipping" in log
    assert "Running stage 'train'" in log and "Running stage 'evaluate'" in log
    assert "model.safetensors" in runs["rf_model_files"] and not any(
        f.endswith((".pkl", ".pickle", ".joblib", ".skops")) for f in runs["rf_model_files"])
    crnn_test = runs["exps"]["lr-5e-4"]["metrics"]["metrics/test.json"]
    assert set(runs["rf_test"]) == set(crnn_test)
    rf_params = runs["exps"]["rf"]["params"]
    assert rf_params["model"]["name"] == "rf"
    assert rf_params["train"] == runs["baseline_params"]["train"]  # started from the baseline, not from lr-5e-4
    rf_live = runs["exps"]["rf"]["metrics"]["dvclive/metrics.json"]
    assert {"train", "val"} <= set(rf_live) and "macro_f1" in rf_live["val"]


def test_readme_exp_show_puts_test_metrics_next_to_the_changed_params(runs: dict[str, Any]) -> None:
    [shown] = [out for line, out in runs["readme"].items() if line.startswith("dvc exp show")]
    header = next(line for line in shown.splitlines() if "Experiment" in line).split()

    def has(column: str) -> bool:  # DVC drops the file prefix of a column whose name is unique
        return any(h == column or h.endswith(":" + column) for h in header)

    # --only-changed also drops a metric equal in every row: on tiny data a class's F1 can be the same in all
    # runs (0.0 when no run predicts it), so a per-class column is required where lr-5e-4 and rf differ
    per_class = {name: runs["exps"][name]["metrics"]["metrics/test.json"]["per_class"] for name in ("lr-5e-4", "rf")}
    differing = [c for c in CLASSES if per_class["lr-5e-4"][c]["f1"] != per_class["rf"][c]["f1"]]
    assert differing, per_class  # the two models disagree somewhere, or this test checks no per-class column
    for column in ("metrics/test.json:accuracy", "metrics/test.json:macro_f1", "train.lr", "model.name",
                   *(f"metrics/test.json:per_class.{c}.f1" for c in differing)):
        assert has(column), (column, shown)
    assert not [c for c in header if re.search("precision|recall|support|metrics/val.json|Created", c)], shown
    assert not has("model.crnn.rnn_hidden")  # unchanged params stay out
    assert "[lr-5e-4]" in shown and "[rf]" in shown


def test_metrics_diff_between_experiments_lists_changed_metrics(runs: dict[str, Any]) -> None:
    assert "train.loss" in runs["readme"]["dvc metrics diff lr-5e-4 rf"]
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
    assert {v["rev"] for v in values} == {"lr-5e-4", "rf"}
    assert {v["actual"] for v in values} <= CLASSES and {v["predicted"] for v in values} <= CLASSES
    encoding = spec["spec"]["encoding"]
    assert (encoding["x"]["field"], encoding["y"]["field"]) == ("predicted", "actual")


def test_plots_diff_draws_the_dvclive_curves(runs: dict[str, Any]) -> None:
    loss = _spec(runs["plots_html"], "Loss")["data"]["values"]
    assert {(v["rev"], v["filename"]) for v in loss} == {
        (rev, f"{split}/loss.tsv") for rev in ("lr-5e-4", "rf") for split in ("train", "val")}
    f1 = _spec(runs["plots_html"], "Validation_macro-F1")["data"]["values"]
    assert {v["rev"] for v in f1} == {"lr-5e-4", "rf"}
    assert len([v for v in f1 if v["rev"] == "lr-5e-4"]) == TINY_PARAMS["train"]["epochs"]  # one point per epoch


def test_baseline_restored_from_cache_needs_no_retraining(runs: dict[str, Any]) -> None:
    """The workspace checkpoint belongs to lr-5e-4, yet the restored baseline is up to date."""
    assert runs["baseline_status"] == {}


def test_queued_sweep_runs_every_experiment(runs: dict[str, Any]) -> None:
    assert "Failed" not in runs["queue_status"], runs["queue_status"]
    swept = {rec["params"]["model"]["crnn"]["rnn_hidden"]: rec for rec in runs["exps"].values()
             if rec["params"]["featurize"]["n_mels"] == 24}
    assert set(swept) == {8, 12}
    for rec in swept.values():
        assert rec["params"]["model"] == {**runs["baseline_params"]["model"],
                                          "crnn": {**runs["baseline_params"]["model"]["crnn"],
                                                   "rnn_hidden": rec["params"]["model"]["crnn"]["rnn_hidden"]}}
        assert rec["params"]["train"] == runs["baseline_params"]["train"]
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



def test_best_run_can_be_applied_and_branched(runs: dict[str, Any]) -> None:
    apply = runs["apply"]
    if apply.returncode != 0:
        # Known limitation, not of this pipeline: DVC 3's checkout fails on outputs that were never produced,
        # and the recipes' stages (recipes/*/dvc.yaml) have not run here. Anything else is a real failure.
        text = apply.stdout + apply.stderr
        assert "Checkout failed for following targets:" in text, text
        tail = text.split("Checkout failed for following targets:")[-1].split("Is your cache up to date?")[0]
        failed = tail.split()
        assert failed and all(t.startswith("recipes/") for t in failed), text
    for params in (runs["applied"], runs["branch_params"]):
        assert params["model"]["crnn"]["rnn_hidden"] == 12 and params["featurize"]["n_mels"] == 24
