"""The real-sampled check set: deterministic soundfont rendering, its scoring, and its isolation from training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from conftest import write_untrained_model_dir
from fretlab.artifacts.modelcard import evaluated_card
from fretlab.data.metadata import read_metadata, validate_metadata
from fretlab.params import load_params, parse_params
from fretlab.synth.soundfont import CheckSetError, find_soundfonts, render_checkset
from fretlab.tasks.checkset import checkset_metrics
from fretlab.tasks.metrics import present_class_metrics

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["general_note", "harmonic", "dead_note"]
SR = 22050
# 2 programs x 2 pitches x 1 velocity, 0.5-s notes: tiny, but both labels and both families of program
TINY_CHECKSET = {
    "soundfonts": ["/nonexistent/NoSuch_GM.sf2", "pretty_midi:TimGM6mb.sf2"],
    "programs": {25: {"label": "general_note", "pitch_range": [52, 55], "name": "steel"},
                 31: {"label": "harmonic", "pitch_range": [64, 67], "name": "harmonics"}},
    "pitch_step": 3, "velocities": [100], "note_sec": 0.4, "release_sec": 0.1,
}
TINY_MODEL = {
    "featurize": {"n_mels": 32},
    "model": {"crnn": {"channels": [8, 16], "pools": [[4, 2], [4, 2]], "rnn_hidden": 16, "head_hidden": 16}},
}


def _render(out: Path, **overrides) -> tuple[pd.DataFrame, dict]:
    cfg = parse_params({"checkset": {**TINY_CHECKSET, **overrides}}).checkset
    return render_checkset(cfg, CLASSES, SR, out)


def test_rendering_is_deterministic_labelled_and_in_the_training_schema(tmp_path):
    meta_a, summary = _render(tmp_path / "a")
    meta_b, _ = _render(tmp_path / "b")
    pd.testing.assert_frame_equal(meta_a, meta_b)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.wav"))
    assert len(files) == 4
    for rel in files:  # same bytes, file by file
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    # the schema the split/featurize stages validate, with every audio file present
    validate_metadata(meta_a, CLASSES, tmp_path / "a")
    assert dict(zip(meta_a["program"], meta_a["label_category"], strict=True)) == {25: "general_note", 31: "harmonic"}
    assert set(meta_a["group"]) == {"TimGM6mb/25", "TimGM6mb/31"}
    assert sorted(set(meta_a["pitch_midi"])) == [52, 55, 64, 67]
    wave, sr = sf.read(tmp_path / "a" / meta_a["audio_path"].iloc[0])
    assert sr == SR and len(wave) == round(0.5 * SR) and np.abs(wave).max() > 0.01
    assert summary["soundfonts_missing"] == ["/nonexistent/NoSuch_GM.sf2"]
    assert summary["classes_absent"] == ["dead_note"] and summary["labels"]["dead_note"] == 0


def test_a_program_the_soundfont_lacks_and_bad_configs_are_reported(tmp_path, monkeypatch):
    import tinysoundfont

    # TimGM6mb has all 128 GM programs: pretend it lacks 31, as a smaller soundfont might
    real = tinysoundfont.Synth.sfpreset_name
    monkeypatch.setattr(tinysoundfont.Synth, "sfpreset_name",
                        lambda self, sfid, bank, preset: None if preset == 31 else real(self, sfid, bank, preset))
    meta, summary = _render(tmp_path / "ok")
    assert set(meta["program"]) == {25} and summary["programs_missing"] == {"TimGM6mb": [31]}
    monkeypatch.undo()
    with pytest.raises(CheckSetError, match=r"no soundfont found.*add the path of a General MIDI \.sf2"):
        _render(tmp_path / "none", soundfonts=["/nonexistent/a.sf2"])
    bad = {25: {"label": "slap", "pitch_range": [52, 52]}}
    with pytest.raises(CheckSetError, match=r"labels \['slap'\].*set checkset.enabled: false"):
        _render(tmp_path / "bad", programs=bad)
    assert find_soundfonts(["pretty_midi:TimGM6mb.sf2", "pretty_midi:TimGM6mb.sf2"]).duplicates == [
        "pretty_midi:TimGM6mb.sf2"]


def test_macro_f1_and_balanced_accuracy_are_over_the_classes_present():
    y_true = np.array([0, 0, 0, 1, 1])
    y_pred = np.array([0, 0, 2, 1, 0])  # one general note called a dead note
    m = present_class_metrics(y_true, y_pred, CLASSES)
    assert m["classes_present"] == ["general_note", "harmonic"] and m["classes_absent"] == ["dead_note"]
    f1_general, f1_harmonic = 2 * (2 / 3 * 2 / 3) / (4 / 3), 2 * (1 * 0.5) / 1.5
    assert m["macro_f1"] == pytest.approx((f1_general + f1_harmonic) / 2)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["per_class"]["dead_note"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_per_group_and_per_soundfont_figures():
    scored = pd.DataFrame({
        "label_category": ["general_note", "general_note", "harmonic", "harmonic"],
        "predicted": ["general_note", "harmonic", "harmonic", "harmonic"],
        "group": ["A/25", "A/25", "A/31", "B/31"], "soundfont": ["A", "A", "A", "B"],
        "program_name": ["steel", "steel", "harmonics", "harmonics"], "confidence": [0.9, 0.6, 0.8, 0.7],
    })
    m = checkset_metrics(scored, CLASSES)
    assert m["per_group"]["A/25"] == {"accuracy": 0.5, "n": 2, "label": "general_note", "program_name": "steel"}
    assert m["per_group"]["B/31"]["accuracy"] == 1.0
    assert m["per_soundfont"]["A"]["n"] == 3 and m["per_soundfont"]["A"]["accuracy"] == pytest.approx(2 / 3)
    assert m["accuracy"] == 0.75


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return write_untrained_model_dir(tmp_path_factory.mktemp("model") / "tiny", parse_params(TINY_MODEL), CLASSES)


def test_batched_note_predictions_equal_one_clip_at_a_time(tmp_path, model_dir):
    from fretlab.app.predict import Predictor

    meta, _ = _render(tmp_path / "cs", note_sec=1.5)  # longer than the 1-s window: windowed from the onset
    predictor = Predictor(model_dir, "cpu")
    waves = [predictor.load(tmp_path / "cs" / rel) for rel in meta["audio_path"]]
    waves.append(waves[0][: predictor.cfg.n_samples // 2])  # and a short clip: centre-padded
    batched = predictor.predict_notes(waves)
    assert len(batched) == len(waves)
    for wave, note in zip(waves, batched, strict=True):
        single = predictor.predict_note(wave)
        assert note.label == single.label
        assert note.probabilities == pytest.approx(single.probabilities, abs=1e-5)


def _stage(name: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, str(REPO / "stages" / f"{name}.py")], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=300)


def test_the_stages_render_and_score_the_check_set(tmp_path, model_dir):
    params = {"paths": {"checkset": "cs", "checkset_report": "report", "model": str(model_dir)},
              "base": {"device": "cpu"}, "checkset": TINY_CHECKSET}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    render = _stage("render_checkset", tmp_path)
    assert render.returncode == 0, render.stderr
    missing = [line for line in render.stderr.splitlines() if "NoSuch_GM.sf2" in line]
    assert len(missing) == 1 and "not found; skipped" in missing[0]
    assert json.loads((tmp_path / "cs" / "summary.json").read_text())["soundfonts_missing"] == [
        "/nonexistent/NoSuch_GM.sf2"]
    evaluate = _stage("evaluate_checkset", tmp_path)
    assert evaluate.returncode == 0, evaluate.stderr
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["n"] == 4 and metrics["classes_present"] == ["general_note", "harmonic"]
    assert set(metrics["per_group"]) == {"TimGM6mb/25", "TimGM6mb/31"}
    confusion = pd.read_csv(tmp_path / "report" / "confusion.csv")
    assert list(confusion.columns) == ["note_id", "group", "actual", "predicted", "confidence"]
    assert set(confusion["predicted"]) <= set(CLASSES) and len(confusion) == 4
    for png in ("confusion", "confusion_normalized", "per_class_f1", "per_group_accuracy"):
        assert (tmp_path / "report" / "figures" / f"{png}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # disabled: both stages still write their (empty) outputs, so the DAG runs
    params["checkset"] = {**TINY_CHECKSET, "enabled": False}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert _stage("render_checkset", tmp_path).returncode == 0
    assert read_metadata(tmp_path / "cs" / "metadata.csv").empty
    assert _stage("evaluate_checkset", tmp_path).returncode == 0
    assert json.loads((tmp_path / "report" / "metrics.json").read_text()) == {"enabled": False, "n": 0}


CARD = """# Model card

## Validation metrics

Test-set figures are computed afterwards by the evaluate stage (`metrics/test.json`).

## Limits

- **Trained on synthetic notes only**. Accuracy on real recordings is unknown and likely lower; retrain.
"""
TEST_METRICS = {"n": 10, "macro_f1": 0.91234, "balanced_accuracy": 0.9, "accuracy": 0.95,
                "per_class": {c: {"recall": r, "support": 3} for c, r in zip(CLASSES, (1.0, 0.75, 0.5), strict=True)}}
CHECK_METRICS = {"n": 8, "macro_f1": 0.61, "balanced_accuracy": 0.7, "accuracy": 0.625,
                 "per_class": {"general_note": {"recall": 0.5, "support": 4},
                               "harmonic": {"recall": 0.75, "support": 4},
                               "dead_note": {"recall": 0.0, "support": 0}},
                 "per_soundfont": {"TimGM6mb": {"macro_f1": 0.61, "n": 8}}}


def test_the_evaluated_card_states_the_test_and_check_set_figures():
    card = evaluated_card(CARD, TEST_METRICS, CHECK_METRICS, CLASSES, ("metrics/test.json", "checkset/metrics.json"))
    assert "| synthetic test split | 10 | 0.9123 | 0.9000 | 0.9500 | 1.0000 | 0.7500 | 0.5000 |" in card
    # dead_note: no check-set notes, so no recall rather than a 0 that reads as a failure
    assert "| real-sampled check set (GM soundfonts) | 8 | 0.6100 | 0.7000 | 0.6250 | 0.5000 | 0.7500 | - |" in card
    assert "TimGM6mb macro-F1 0.6100 (8 notes)" in card
    assert "computed afterwards" not in card and "unknown and likely lower" not in card
    assert "macro-F1 is 0.6100 against 0.9123 on synthetic test notes" in card
    off = evaluated_card(CARD, TEST_METRICS, {"enabled": False, "n": 0}, CLASSES, ("a", "b"))
    assert "switched off" in off and "real-sampled check set (GM" not in off and "unknown and likely lower" in off
    with pytest.raises(ValueError, match="Re-run `dvc repro train`"):
        evaluated_card("# a card from elsewhere\n", TEST_METRICS, CHECK_METRICS, CLASSES, ("a", "b"))


def _resolved_stages() -> dict[str, dict]:
    """The root dvc.yaml's stages with ``${paths.*}`` / ``${data.*}`` filled in from params.yaml."""
    params = load_params(REPO / "params.yaml")
    values = {f"paths.{k}": v for k, v in params.paths.model_dump().items()}
    values.update({"data.root": params.data.root})
    text = (REPO / "dvc.yaml").read_text()
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    return yaml.safe_load(text)["stages"]


def _under(path: str, root: str) -> bool:
    path, root = os.path.normpath(path), os.path.normpath(root)
    return path == root or path.startswith(root + os.sep) or root.startswith(path + os.sep)


def test_the_check_set_never_feeds_training_feature_statistics_or_model_selection():
    params = load_params(REPO / "params.yaml")
    checkset = params.paths.checkset
    stages = _resolved_stages()
    assert {"render_checkset", "evaluate_checkset"} <= set(stages)
    # split (data root), featurize (feature statistics), train (weights, early stopping = model selection)
    for name in ("synthesize", "split", "featurize", "train", "evaluate"):
        stage = stages[name]
        deps = [d for d in stage.get("deps", []) if isinstance(d, str)]
        assert not [d for d in deps if _under(d, checkset)], f"stage {name} reads the check set"
        assert not [d for d in deps if _under(d, params.paths.checkset_report)], f"stage {name} reads its report"
        assert not any(str(p).startswith("checkset") for p in stage.get("params", [])), \
            f"stage {name} depends on checkset params"
    for path in (params.data.root, params.paths.split, params.paths.features, params.paths.synthetic):
        assert not _under(path, checkset), f"{path} overlaps the check set at {checkset}"
    # and the only consumer of the check set is its own evaluation
    readers = {n for n, s in stages.items() if any(_under(d, checkset) for d in s.get("deps", []))}
    assert readers == {"evaluate_checkset"}
