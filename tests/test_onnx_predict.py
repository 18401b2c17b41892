"""``fretlab predict --engine``: the ONNX engine gives the torch engine's timeline without importing torch."""

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

from fretlab.app.cli import main
from fretlab.app.export import export_onnx
from fretlab.app.onnx_predict import WEIGHTS, OnnxPredictor, make_predictor
from fretlab.app.predict import Predictor
from fretlab.artifacts import modeldir
from onnx_fixtures import CLASSES, benchmark_take, make_model_dir, take

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("torch", "pandas", "librosa", "sklearn", "scipy", "pydantic")  # pydantic: 0.15-0.2 s of the budget


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    out = make_model_dir(tmp_path_factory.mktemp("model") / "crnn", "crnn")
    export_onnx(out)
    return out


@pytest.fixture(scope="module")
def take_wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "take.wav"
    audio = np.concatenate([take(seed=s, n_notes=6)[0] for s in (31, 32, 33)])
    sf.write(path, audio, 44100, subtype="PCM_16")
    return path


@pytest.mark.parametrize("engine", ["onnx", "auto"])
def test_the_onnx_engine_imports_neither_torch_nor_pandas_nor_librosa(model_dir, take_wav, tmp_path, engine):
    script = f"""
import json, sys
from fretlab.app.cli import main
status = main(["predict", {str(take_wav)!r}, "--model-dir", {str(model_dir)!r}, "--engine", {engine!r},
               "-o", {str(tmp_path / "t.csv")!r}, "--quiet"])
print(json.dumps({{"status": status, "modules": sorted({{m.split(".")[0] for m in sys.modules}})}}))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["status"] == 0
    assert "onnxruntime" in report["modules"]
    assert not set(HEAVY) & set(report["modules"])
    assert len(pd.read_csv(tmp_path / "t.csv")) >= 10


def test_onnx_and_torch_engines_give_the_same_timeline(model_dir, take_wav, tmp_path):
    tables = {}
    for engine in ("onnx", "torch"):
        out = tmp_path / f"{engine}.csv"
        assert main(["predict", str(take_wav), "--model-dir", str(model_dir), "--engine", engine, "--mode",
                     "timeline", "-o", str(out), "--quiet"]) == 0
        tables[engine] = pd.read_csv(out)
    onnx, torch_ = tables["onnx"], tables["torch"]
    assert len(onnx) == len(torch_) >= 15
    assert onnx[["onset_sec", "offset_sec", "label"]].equals(torch_[["onset_sec", "offset_sec", "label"]])
    columns = [f"p_{c}" for c in CLASSES]
    assert np.abs(onnx[columns].to_numpy() - torch_[columns].to_numpy()).max() <= 1e-4
    assert onnx["label"].nunique() >= 2, "one label everywhere: the comparison would prove little"


def test_the_benchmark_take_gets_the_same_labels_on_every_event(model_dir, tmp_path):
    """The benchmark's own 3-minute take (byte for byte what scripts/bench.py predicts), both engines in-process."""
    path = benchmark_take(tmp_path / "recording_3min.wav")
    results = [engine.predict_file(path, "timeline", progress=False)
               for engine in (OnnxPredictor(model_dir), Predictor(model_dir, "cpu"))]
    onnx, torch_ = (r["events"] for r in results)
    assert len(onnx) == len(torch_) >= 150  # ~216 events in 3 min of the default data's licks
    assert [(e["onset_sec"], e["offset_sec"], e["label"]) for e in onnx] == [
        (e["onset_sec"], e["offset_sec"], e["label"]) for e in torch_]
    diff = max(abs(a["probabilities"][c] - b["probabilities"][c])
               for a, b in zip(onnx, torch_, strict=True) for c in CLASSES)
    assert diff <= 1e-4
    assert len({e["label"] for e in torch_}) >= 2


def test_note_mode_matches_too(model_dir, tmp_path, capsys):
    audio, _ = take(seed=40, n_notes=1)
    sf.write(tmp_path / "note.wav", audio[:30000], 44100)
    results = []
    for engine in ("onnx", "torch"):
        assert main(["predict", str(tmp_path / "note.wav"), "--model-dir", str(model_dir), "--engine", engine]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert results[0]["mode"] == results[1]["mode"] == "note"
    assert results[0]["label"] == results[1]["label"]
    for c in CLASSES:
        assert abs(results[0]["probabilities"][c] - results[1]["probabilities"][c]) <= 1e-4


def test_auto_picks_onnx_when_exported_and_current_else_torch(model_dir, tmp_path, capsys):
    assert isinstance(make_predictor(model_dir, "auto", "cpu"), OnnxPredictor)
    assert type(make_predictor(model_dir, "torch", "cpu")) is Predictor
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ("config.json", WEIGHTS):
        (plain / name).write_bytes((model_dir / name).read_bytes())
    assert type(make_predictor(plain, "auto", "cpu")) is Predictor  # nothing exported

    # weights retrained after the export: auto falls back to torch with a note, onnx refuses
    stale = tmp_path / "stale"
    stale.mkdir()
    for name in ("config.json", "model.onnx"):
        (stale / name).write_bytes((model_dir / name).read_bytes())
    weights = bytearray((model_dir / WEIGHTS).read_bytes())
    weights[-1] ^= 1  # one bit of the last weight: other weights than the exported ones
    (stale / WEIGHTS).write_bytes(bytes(weights))
    capsys.readouterr()
    assert type(make_predictor(stale, "auto", "cpu")) is Predictor
    note = capsys.readouterr().err
    assert "exported from other weights" in note and "using the torch engine" in note
    assert main(["predict", str(tmp_path / "nope.wav"), "--model-dir", str(stale), "--engine", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "exported from other weights" in err and f"fretlab export {stale}" in err


def test_engine_errors_are_one_line_with_exit_status_2(model_dir, tmp_path, capsys):
    audio, _ = take(seed=41, n_notes=2)
    sf.write(tmp_path / "take.wav", audio, 44100)
    plain = tmp_path / "plain"
    plain.mkdir()
    assert main(["predict", str(tmp_path / "take.wav"), "--model-dir", str(plain), "--engine", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "model.onnx: file not found" in err and "fretlab export" in err
    assert main(["predict", str(tmp_path / "take.wav"), "--model-dir", str(model_dir), "--engine", "onnx",
                 "--device", "cuda"]) == 2
    assert "--engine onnx runs on the CPU" in capsys.readouterr().err


def test_the_torch_free_modules_agree_with_the_ones_they_mirror():
    assert WEIGHTS == modeldir.WEIGHTS
