"""``fretlab predict TAKE --plot timeline.png``: the figure for both engines, bad paths refused up front."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fretlab.app.cli import main
from fretlab.app.export import export_onnx
from fretlab.app.timeline_plot import log_mel_db, note_spans
from fretlab.params import Featurize
from onnx_fixtures import make_model_dir, take

SRC = Path(__file__).resolve().parents[1] / "src"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    out = make_model_dir(tmp_path_factory.mktemp("model") / "cnn", "cnn")
    export_onnx(out)
    return out


@pytest.fixture(scope="module")
def take_wav(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "take.wav"
    audio, _ = take(seed=41, n_notes=4)
    sf.write(path, audio, 44100, subtype="PCM_16")
    return path


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_plot_is_written_for_both_engines(tmp_path, model_dir, take_wav, engine, capsys):
    png, csv = tmp_path / "timeline.png", tmp_path / "timeline.csv"
    args = ["predict", str(take_wav), "--model-dir", str(model_dir), "--engine", engine, "--mode", "timeline",
            "--quiet", "-o", str(csv), "--plot", str(png)]
    assert main(args) == 0
    assert f"plot written to {png}" in capsys.readouterr().err
    width, height = _png_size(png)
    assert width > 100 and height > 100 and png.stat().st_size > 1000
    assert len(csv.read_text().splitlines()) >= 2  # the prediction itself is unchanged: events were found


def test_note_mode_plot_and_json_on_stdout_stay_clean(tmp_path, model_dir, take_wav, capsys):
    png = tmp_path / "note.png"
    assert main(["predict", str(take_wav), "--model-dir", str(model_dir), "--engine", "torch", "--mode", "note",
                 "--plot", str(png)]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["mode"] == "note"  # the plot notice goes to stderr, not into the JSON
    assert _png_size(png)[0] > 100


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: d / "no_such_dir" / "t.png", "does not exist; create it or choose another path"),
    (lambda d: d, "is a directory; give a file name such as"),
    (lambda d: d / "t.jpg", "unsupported file type; use a .png file name"),
])
def test_an_unwritable_plot_path_is_refused_before_any_work(tmp_path, capsys, make, message):
    # neither the audio nor the model directory exists: the plot path must be what is reported
    code = main(["predict", str(tmp_path / "missing.wav"), "--model-dir", str(tmp_path / "no_model"),
                 "--plot", str(make(tmp_path))])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "--plot" in err and message in err


def test_the_spectrogram_is_the_front_ends_log_mel():
    import torch

    from fretlab.audio.features import FeatureExtractor

    cfg = Featurize(n_mels=32)
    wave = np.random.default_rng(0).standard_normal(cfg.n_samples).astype(np.float32) * 0.1
    ours = log_mel_db(wave, cfg)
    theirs = FeatureExtractor(cfg)(torch.from_numpy(wave)[None])[0, 0].numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-2)
    spans = note_spans({"mode": "note", "duration_sec": 2.0, "label": "harmonic", "confidence": 0.5})
    assert spans == [(0.0, 2.0, "harmonic", 0.5)]


def test_onnx_plot_imports_neither_torch_nor_matplotlib_without_plot(tmp_path, model_dir, take_wav):
    script = f"""
import json, sys
from fretlab.app.cli import main
base = ["predict", {str(take_wav)!r}, "--model-dir", {str(model_dir)!r}, "--engine", "onnx", "--quiet",
        "-o", {str(tmp_path / "t.csv")!r}]
first = main(base)
before = sorted({{m.split(".")[0] for m in sys.modules}})
second = main([*base, "--plot", {str(tmp_path / "t.png")!r}])
after = sorted({{m.split(".")[0] for m in sys.modules}})
print(json.dumps({{"status": [first, second], "before": before, "after": after}}))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(SRC)})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["status"] == [0, 0]
    assert "matplotlib" not in report["before"]  # lazily imported: a plain prediction never pays for it
    assert "matplotlib" in report["after"]
    assert not {"torch", "pandas", "librosa", "sklearn", "scipy"} & set(report["after"])
    assert (tmp_path / "t.png").read_bytes()[:8] == PNG_SIGNATURE
