"""The real DVC pipeline end to end, on tiny params, in a temporary git repository."""

import json

import pandas as pd
import pytest

pytestmark = pytest.mark.integration


def test_dvc_repro_end_to_end(baseline_workspace):
    ws = baseline_workspace  # TINY_PARAMS after `dvc repro`, shared by the tests that start there
    root = ws.root
    params = ws.params()

    meta = pd.read_csv(root / "data/synthetic/metadata.csv")
    assert len(meta) == params["synthesize"]["n_events"]
    assert meta.groupby("audio_path").size().max() > 1, "lick recordings (several events per file) must exist"

    split = pd.read_csv(root / "data/split/metadata.csv")
    assert (split.groupby("group")["split"].nunique() == 1).all(), "a group leaked across splits"

    for name in ("model.safetensors", "config.json"):
        assert (root / "models/default" / name).is_file()
    for split_name in ("val", "test"):
        metrics = json.loads((root / f"metrics/{split_name}.json").read_text())
        assert {"accuracy", "balanced_accuracy", "macro_f1", "per_class"} <= set(metrics)
        assert set(metrics["per_class"]) == set(params["data"]["classes"])
        confusion = pd.read_csv(root / f"plots/confusion/{split_name}.csv")
        assert len(confusion) == metrics["n"]
        assert set(confusion["actual"]) <= set(params["data"]["classes"])
        assert (root / f"plots/figures/confusion_{split_name}.png").stat().st_size > 0
    # the evaluated model card states the figures `dvc metrics show` prints: synthetic test and check set
    card = (root / params["paths"]["model_card"]).read_text()
    test = json.loads((root / "metrics/test.json").read_text())
    checkset = json.loads((root / params["paths"]["checkset_report"] / "metrics.json").read_text())
    assert f"| synthetic test split | {test['n']} | {test['macro_f1']:.4f} |" in card
    assert f"| real-sampled check set (GM soundfonts) | {checkset['n']} | {checkset['macro_f1']:.4f} |" in card
    assert "computed afterwards by the evaluate stage" not in card and "unknown and likely lower" not in card
    curves = pd.read_csv(root / "dvclive/plots/metrics/val/macro_f1.tsv", sep="\t")
    assert len(curves) == params["train"]["epochs"]

    status = ws.run("dvc", "status", "--json")  # in a copy of the workspace: new inodes, same content
    assert json.loads(status.stdout or "{}") == {}, status.stdout
    again = ws.run("dvc", "repro")
    assert "didn't change" in again.stdout and "Running stage" not in again.stdout
    # a Python that writes bytecode puts __pycache__ inside directory deps (src/fretlab/models); that is not a change
    for folder in ("src/fretlab/models/__pycache__", "src/fretlab/__pycache__"):
        (root / folder).mkdir(exist_ok=True)
        (root / folder / "crnn.cpython-311.pyc").write_bytes(b"bytecode")
    status = ws.run("dvc", "status", "--json")
    assert json.loads(status.stdout or "{}") == {}, status.stdout

    ws.run("dvc", "plots", "show", "-o", "plots_html")
    html = (root / "plots_html/index.html").read_text()
    assert "Test confusion matrix" in html and "harmonic" in html
