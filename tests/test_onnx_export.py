"""``fretlab export``: the ONNX graph computes the torch model's probabilities from raw windows, for every model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from fretlab.app import export as export_mod
from fretlab.app.cli import main
from fretlab.app.export import MatmulPowerSpectrogram, UnrolledForest, export_onnx
from fretlab.app.onnx_predict import OnnxModel, OnnxPredictor
from fretlab.app.predict import Predictor
from fretlab.artifacts.modeldir import load_model_dir
from fretlab.audio.features import power_spectrogram
from fretlab.audio.loading import prepare_windows, resample
from fretlab.models.rf import pooled_features
from fretlab.params import Featurize
from onnx_fixtures import CLASSES, MODELS, make_model_dir, take

PARITY = 1e-4  # the bound on |p_onnx - p_torch|


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """Every registry model as a model directory holding its model.onnx."""
    root = tmp_path_factory.mktemp("onnx")
    dirs = {name: make_model_dir(root / name, name) for name in MODELS}
    for d in dirs.values():
        export_onnx(d)
    return dirs


@pytest.mark.parametrize(("n_fft", "hop"), [(1024, 256), (512, 128), (1000, 250), (997, 256), (2048, 512), (1024, 100)])
def test_matmul_stft_power_is_the_front_ends(n_fft, hop):
    """The exported STFT (grouped conv + DFT matrix) against unfold + rfft, factorable sizes or not."""
    cfg = Featurize(n_fft=n_fft, hop_length=hop)
    wave = torch.from_numpy(np.random.default_rng(n_fft).normal(size=(3, cfg.n_samples)).astype(np.float32))
    window = torch.hann_window(n_fft)
    ref = power_spectrogram(wave, n_fft, hop, window)
    got = MatmulPowerSpectrogram(n_fft, hop, cfg.n_samples, window)(wave)
    assert got.shape == ref.shape
    assert float((got - ref).abs().max() / ref.max()) < 1e-5


@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_probabilities_match_torch_on_raw_windows(exported, name):
    """Windows of a synthetic take, features computed inside the graph: the same labels, probabilities to 1e-4."""
    model_dir = exported[name]
    torch_engine, onnx_engine = Predictor(model_dir, "cpu"), OnnxPredictor(model_dir)
    audio, onsets = take()
    wave = resample(audio, 44100, torch_engine.cfg.sample_rate)
    starts = [float(t) for t in onsets] + [None, 0.37, len(wave) / torch_engine.cfg.sample_rate - 0.2]  # + pad/crop
    want = torch_engine.probabilities(wave, starts)
    got = onnx_engine.probabilities(wave, starts)
    assert got.shape == want.shape == (len(starts), len(CLASSES))
    assert np.abs(got - want).max() <= PARITY
    assert (got.argmax(axis=1) == want.argmax(axis=1)).all()
    # the probabilities move with the input by far more than the tolerance, so a wrong front end would show
    assert np.ptp(want, axis=0).max() > 100 * PARITY


def test_batch_size_is_dynamic(exported):
    model = OnnxModel(exported["crnn"] / "model.onnx")
    cfg = model.featurize
    audio, onsets = take(seed=4)
    windows = prepare_windows(resample(audio, 44100, cfg.sample_rate), cfg.sample_rate, onsets[:5], cfg)
    whole = model(windows)
    singles = np.concatenate([model(windows[i : i + 1]) for i in range(len(windows))])
    np.testing.assert_allclose(singles, whole, atol=1e-6)
    assert model(windows[:0]).shape == (0, len(CLASSES))


def test_metadata_carries_classes_and_analysis_settings(exported):
    model_dir = exported["gru"]
    _, params, _ = load_model_dir(model_dir)
    meta = {p.key: p.value for p in onnx.load(str(model_dir / "model.onnx")).metadata_props}
    assert json.loads(meta["classes"]) == CLASSES
    assert int(meta["sample_rate"]) == params.featurize.sample_rate
    assert int(meta["window_samples"]) == params.featurize.n_samples
    assert json.loads(meta["fretlab.featurize"]) == params.featurize.model_dump(mode="json")
    assert json.loads(meta["fretlab.predict"]) == params.predict.model_dump(mode="json")
    assert meta["fretlab.model"] == "gru"
    # the ONNX engine reads them from the file: without config.json and weights it still runs
    lone = model_dir.parent / "onnx_only"
    lone.mkdir()
    (lone / "model.onnx").write_bytes((model_dir / "model.onnx").read_bytes())
    predictor = OnnxPredictor(lone)
    assert predictor.classes == CLASSES
    assert predictor.cfg.model_dump() == params.featurize.model_dump(mode="json")
    assert Featurize.model_validate(predictor.cfg.model_dump()) == params.featurize  # the schema's own values
    assert predictor.cfg.n_samples == params.featurize.n_samples  # the graph's input width
    assert predictor.settings.model_dump() == params.predict.model_dump(mode="json")


def _rewrite_metadata(src: Path, dst: Path, key: str, edit) -> Path:
    """A copy of the ONNX file ``src`` in ``dst/`` with metadata entry ``key`` (JSON) passed through ``edit``."""
    proto = onnx.load(str(src))
    for prop in proto.metadata_props:
        if prop.key == key:
            prop.value = json.dumps(edit(json.loads(prop.value)))
    dst.mkdir()
    onnx.save(proto, str(dst / "model.onnx"))
    return dst


def test_an_older_export_without_a_newer_setting_gets_the_schemas_default(exported, tmp_path):
    """A file written before a setting existed (onset_n_fft here) is validated by the schema after all."""
    from fretlab.params import Predict

    def drop(values):
        values.pop("onset_n_fft")
        return {**values, "onset_delta": 0.11}

    older = _rewrite_metadata(exported["gru"] / "model.onnx", tmp_path / "older", "fretlab.predict", drop)
    predictor = OnnxPredictor(older)
    assert predictor.settings.onset_n_fft == Predict().onset_n_fft
    assert predictor.settings.onset_delta == 0.11  # the file's own values are kept


def test_an_export_with_an_unusable_setting_is_refused_by_name(exported, tmp_path, capsys):
    bad = _rewrite_metadata(exported["gru"] / "model.onnx", tmp_path / "bad", "fretlab.predict",
                            lambda v: {k: (-3 if k == "onset_hop_length" else v[k]) for k in v if k != "onset_n_fft"})
    import soundfile as sf

    sf.write(tmp_path / "take.wav", np.sin(np.arange(16000 * 3) * 0.05).astype(np.float32), 16000)
    assert main(["predict", str(tmp_path / "take.wav"), "--model-dir", str(bad), "--engine", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "metadata 'fretlab.predict'" in err and "onset_hop_length" in err and "re-export" in err


def test_unrolled_forest_walks_the_trees_exactly(exported):
    """Same leaves as ForestNet's data-dependent loop, with float32 thresholds rounded down."""
    classifier, params, _ = load_model_dir(exported["rf"])
    forest = classifier.net
    cfg = params.featurize
    x = torch.from_numpy(np.random.default_rng(3).normal(-40, 15, size=(64, cfg.n_channels, cfg.n_mels,
                                                                         cfg.n_frames)).astype(np.float32))
    unrolled = UnrolledForest(forest)
    assert unrolled.depth >= 5  # trees grown on random labels: the unrolling really has depth
    np.testing.assert_allclose(unrolled(x).exp().numpy(), forest.predict_proba(pooled_features(x)).numpy(), atol=1e-6)
    # features exactly at a threshold: float32 thresholds must decide as the float64 ones do
    feats = pooled_features(x)
    inner = np.flatnonzero(forest.children_left.numpy() != -1)
    node = int(inner[0])
    at = float(np.float32(forest.threshold[node]))  # the float32 value nearest the float64 threshold
    feats[:, forest.feature[node]] = at
    expected_left = at <= float(forest.threshold[node])
    assert bool((feats[:, forest.feature[node]] <= unrolled.threshold[node]).all()) == expected_left


def test_plain_onnxruntime_runs_the_file_without_fretlab_or_torch(exported, tmp_path):
    """A consumer's view: numpy + onnxruntime only; metadata from the file; the same probabilities."""
    model_dir = exported["crnn"]
    cfg = OnnxModel(model_dir / "model.onnx").featurize
    audio, onsets = take(seed=9)
    windows = prepare_windows(resample(audio, 44100, cfg.sample_rate), cfg.sample_rate, onsets, cfg)
    np.save(tmp_path / "windows.npy", windows)
    want = Predictor(model_dir, "cpu").probabilities(resample(audio, 44100, cfg.sample_rate), onsets)
    script = """
import json, sys
import numpy as np
import onnxruntime as ort
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
windows = np.load(sys.argv[2])
assert windows.shape[1] == int(meta["window_samples"]), (windows.shape, meta["window_samples"])
probs = session.run(None, {"waveform": windows})[0]
np.save(sys.argv[3], probs)
assert not any(m.split(".")[0] in ("fretlab", "torch") for m in sys.modules), "fretlab or torch imported"
print(json.dumps({"classes": json.loads(meta["classes"]), "sample_rate": int(meta["sample_rate"])}))
"""
    proc = subprocess.run([sys.executable, "-c", script, str(model_dir / "model.onnx"), str(tmp_path / "windows.npy"),
                           str(tmp_path / "probs.npy")], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info == {"classes": CLASSES, "sample_rate": cfg.sample_rate}
    assert np.abs(np.load(tmp_path / "probs.npy") - want).max() <= PARITY


def test_readme_consumer_snippet_classifies_a_note(exported, tmp_path):
    """README "Deploy a model": the ten-line snippet, run as written, without fretlab on the path."""
    import soundfile as sf

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    snippet = readme.split("<!-- deploy-snippet -->")[1].split("```python")[1].split("```")[0]
    assert len([line for line in snippet.strip().splitlines() if line.strip()]) <= 10
    model_dir = exported["crnn"]
    predictor = Predictor(model_dir, "cpu")
    audio, _ = take(seed=13, n_notes=1)
    note = resample(audio, 44100, predictor.cfg.sample_rate)[: predictor.cfg.n_samples // 2]
    sf.write(tmp_path / "note.wav", note, predictor.cfg.sample_rate, subtype="FLOAT")
    (tmp_path / "model.onnx").write_bytes((model_dir / "model.onnx").read_bytes())
    proc = subprocess.run([sys.executable, "-c", snippet + "\nimport sys\nassert 'fretlab' not in sys.modules"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    label, confidence = proc.stdout.split()
    want = predictor.predict_note(note)
    assert label == want.label and abs(float(confidence) - want.confidence) <= PARITY


# ---------------------------------------------------------------------------------------------------
# bad input: one line on stderr naming the file and the fix, exit status 2


def test_export_cli_writes_model_onnx_and_refuses_a_directory_without_weights(exported, tmp_path, capsys):
    src = exported["cnn"]
    assert main(["export", str(src), "--onnx", str(tmp_path / "out" / "cnn.onnx")]) == 0
    assert (tmp_path / "out" / "cnn.onnx").is_file() and "exported to" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text((src / "config.json").read_text())
    assert main(["export", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fretlab export: error: ") and "missing model.safetensors" in err and str(empty) in err
    assert main(["export", str(src), "--onnx", str(tmp_path / "model.bin")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err


def test_export_refuses_an_unsupported_model_by_name(exported, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(export_mod, "EXPORTABLE", frozenset({"crnn", "cnn", "rf"}))
    out = tmp_path / "gru.onnx"
    assert main(["export", str(exported["gru"]), "--onnx", str(out)]) == 2
    err = capsys.readouterr().err
    assert "model 'gru' cannot be exported to ONNX" in err and "--engine torch" in err
    assert not out.exists()


@pytest.mark.parametrize("content", [b"", b"\x08\x07garbage that is no protobuf" * 20, b"not onnx"])
def test_a_corrupt_onnx_file_is_a_clear_error(exported, tmp_path, capsys, content):
    model_dir = tmp_path / "broken"
    model_dir.mkdir()
    (model_dir / "model.onnx").write_bytes(content)
    audio, _ = take(seed=2, n_notes=2)
    import soundfile as sf

    sf.write(tmp_path / "take.wav", audio, 44100)
    assert main(["predict", str(tmp_path / "take.wav"), "--model-dir", str(model_dir), "--engine", "onnx"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fretlab predict: error: ") and str(model_dir / "model.onnx") in err
    assert "not a readable ONNX model" in err and "fretlab export" in err
    assert len(err.strip().splitlines()) == 1


def test_onnx_without_fretlab_metadata_is_refused(tmp_path, capsys):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    (tmp_path / "model.onnx").write_bytes(helper.make_model(graph).SerializeToString())
    (tmp_path / "take.wav").write_bytes(b"")
    assert main(["predict", str(tmp_path / "take.wav"), "--model-dir", str(tmp_path), "--engine", "onnx"]) == 2
    assert "lacks fretlab metadata" in capsys.readouterr().err
