"""``fretlab predict``: notes and timelines, formats and channel layouts, the shared front end, errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from conftest import write_untrained_model_dir
from fretlab.app.cli import default_model_dir, main
from fretlab.app.predict import Predictor, detect_onsets, note_start, result_table
from fretlab.artifacts.modeldir import load_model_dir
from fretlab.audio.loading import resample
from fretlab.cache.featurize import featurize_splits
from fretlab.io import read_json, write_json
from fretlab.params import Predict, Synthesize, parse_params
from fretlab.runtime import predict_logits
from fretlab.synth.guitar import draw_note, make_guitar, render_file

CLASSES = ["general_note", "harmonic", "dead_note"]
TINY = {
    "featurize": {"n_mels": 32},
    "model": {"crnn": {"channels": [8, 16], "pools": [[4, 2], [4, 2]], "rnn_hidden": 16, "head_hidden": 16}},
    "predict": {"batch_size": 4},
}
FEATURE_SR = 22050


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return write_untrained_model_dir(tmp_path_factory.mktemp("model") / "tiny", parse_params(TINY), CLASSES)


def _lick(seed: int, n_notes: int = 5) -> tuple[np.ndarray, list[float]]:
    cfg = Synthesize()
    rng = np.random.default_rng(seed)
    labels = rng.choice(CLASSES, size=n_notes, p=[0.7, 0.15, 0.15])
    notes = [draw_note(str(label), cfg, rng) for label in labels]
    audio, times = render_file(notes, make_guitar(seed, rng), cfg, seed)
    return audio, [on for on, _ in times]


@pytest.fixture(scope="module")
def note_wave() -> np.ndarray:
    cfg = Synthesize()
    rng = np.random.default_rng(3)
    audio, _ = render_file([draw_note("harmonic", cfg, rng)], make_guitar(3, rng), cfg, 3)
    return audio  # 44.1 kHz mono, <= 1 s: a training-style snippet


def _featurize_probabilities(path: Path, model_dir: Path) -> np.ndarray:
    """What the featurize stage + model give for a one-event file (the training path)."""
    predictor = Predictor(model_dir, "cpu")
    cfg = predictor.cfg
    df = pd.DataFrame({"note_id": ["n0"], "audio_path": [path.name], "onset_sec": [0.0], "offset_sec": [0.5]})
    featurize_splits({path.stem: df}, path.parent, cfg, path.parent, workers=1)
    x = torch.from_numpy(np.load(path.parent / f"{path.stem}.npy"))
    return torch.softmax(predict_logits(predictor.model, x, 4), dim=1).numpy()[0]


@pytest.mark.parametrize(("suffix", "sr", "channels"), [(".wav", 44100, 1), (".flac", 48000, 2), (".wav", 48000, 2)])
def test_note_gives_class_confidence_and_distribution_through_the_training_front_end(
    tmp_path, model_dir, note_wave, suffix, sr, channels
):
    wave = resample(note_wave, 44100, sr)
    data = np.stack([wave, 0.5 * wave], axis=1) if channels == 2 else wave
    path = tmp_path / f"note{suffix}"
    sf.write(path, data, sr)
    result = Predictor(model_dir, "cpu").predict_file(path)
    assert result["mode"] == "note"
    probs = result["probabilities"]
    assert list(probs) == CLASSES
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
    assert result["label"] == max(probs, key=probs.get)
    assert result["confidence"] == pytest.approx(max(probs.values()), abs=1e-6)
    # one code path: the featurize stage's features, fed to the same model, give the same distribution
    expected = _featurize_probabilities(path, model_dir)
    np.testing.assert_allclose(list(probs.values()), expected, atol=1e-5)


def test_a_note_longer_than_the_window_is_windowed_from_its_onset(model_dir):
    predictor = Predictor(model_dir, "cpu")
    audio, onsets = _lick(11, n_notes=1)
    padded = np.concatenate([np.zeros(int(0.8 * 44100), np.float32), audio, np.zeros(44100, np.float32)])
    wave = resample(padded, 44100, FEATURE_SR)
    (start,) = predictor.note_onsets(wave)
    assert start is not None and abs(start - (0.8 + onsets[0])) <= 0.05


def _matched(true: list[float], found: np.ndarray, tol: float = 0.05) -> int:
    return sum(bool(len(found)) and float(np.min(np.abs(found - t))) <= tol for t in true)


def test_timeline_finds_each_note_and_writes_csv_and_json(tmp_path, model_dir, capsys):
    pieces = [_lick(seed, n_notes=6) for seed in range(21, 25)]  # four licks: one is too few to score recall
    audio = np.concatenate([a for a, _ in pieces])
    starts = np.cumsum([0] + [len(a) / 44100 for a, _ in pieces[:-1]])
    true = [start + on for start, (_, onsets) in zip(starts, pieces, strict=True) for on in onsets]
    path = tmp_path / "take.wav"
    sf.write(path, audio, 44100)

    csv_path = tmp_path / "timeline.csv"
    assert main(["predict", str(path), "--model-dir", str(model_dir), "--mode", "timeline", "-o", str(csv_path)]) == 0
    assert "timeline written to" in capsys.readouterr().out
    table = pd.read_csv(csv_path)
    assert list(table.columns) == ["onset_sec", "offset_sec", "label", "confidence", *(f"p_{c}" for c in CLASSES)]
    # the generator's recording chain (reverb, drive) and notes ringing under the next blur some onsets:
    # recall over 15 such licks is ~0.90
    assert _matched(true, table["onset_sec"].to_numpy()) >= 0.8 * len(true)
    assert (table["onset_sec"].diff().dropna() > 0).all()
    assert (table["offset_sec"] >= table["onset_sec"]).all()
    assert (table["offset_sec"].iloc[:-1].to_numpy() <= table["onset_sec"].iloc[1:].to_numpy() + 1e-9).all()
    assert set(table["label"]) <= set(CLASSES)
    assert np.allclose(table[[f"p_{c}" for c in CLASSES]].sum(axis=1), 1.0, atol=1e-4)

    json_path = tmp_path / "timeline.json"
    assert main(["predict", str(path), "--model-dir", str(model_dir), "--mode", "timeline", "-o", str(json_path),
                 "--quiet"]) == 0
    result = read_json(json_path)
    assert result["mode"] == "timeline" and result["classes"] == CLASSES
    assert [e["onset_sec"] for e in result["events"]] == table["onset_sec"].tolist()
    assert [e["label"] for e in result["events"]] == table["label"].tolist()


def test_auto_mode_picks_by_duration_and_prints_json(tmp_path, model_dir, note_wave, capsys):
    long_take, _ = _lick(5, n_notes=6)
    sf.write(tmp_path / "note.wav", note_wave, 44100)
    sf.write(tmp_path / "take.wav", np.concatenate([long_take, long_take]), 44100)
    assert main(["predict", str(tmp_path / "note.wav"), "--model-dir", str(model_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "note"
    assert main(["predict", str(tmp_path / "take.wav"), "--model-dir", str(model_dir), "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["mode"] == "timeline" and result["duration_sec"] > 3.0 and result["events"]
    # the note-length threshold is a setting: raise it and the same take is one note
    assert main(["predict", str(tmp_path / "take.wav"), "--model-dir", str(model_dir), "--note-max-sec", "60"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "note"


def test_onset_flags_override_the_model_dirs_settings(tmp_path, model_dir, capsys):
    audio, _ = _lick(8, n_notes=5)
    sf.write(tmp_path / "take.wav", audio, 44100)
    counts = []
    for delta in ("0.07", "10"):
        assert main(["predict", str(tmp_path / "take.wav"), "--model-dir", str(model_dir), "--mode", "timeline",
                     "--onset-delta", delta, "--quiet"]) == 0
        counts.append(len(json.loads(capsys.readouterr().out)["events"]))
    assert counts[0] >= 4 and counts[1] == 0  # a threshold above the normalized envelope's range finds nothing
    assert main(["predict", str(tmp_path / "take.wav"), "--model-dir", str(model_dir), "--onset-hop-length", "0"]) == 2
    assert "invalid predict setting: onset_hop_length" in capsys.readouterr().err


def test_model_dir_carries_the_predict_settings(model_dir):
    config = read_json(model_dir / "config.json")
    assert config["params"]["predict"]["batch_size"] == TINY["predict"]["batch_size"]
    assert Predictor(model_dir, "cpu").settings.batch_size == TINY["predict"]["batch_size"]


def test_default_model_dir_is_paths_model_from_params_yaml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert default_model_dir() == "models/default"
    (tmp_path / "params.yaml").write_text("paths:\n  model: models/elsewhere\n")
    assert default_model_dir() == "models/elsewhere"


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk", b"not audio at all" * 100])
def test_unreadable_audio_is_a_clear_error(tmp_path, model_dir, capsys, content):
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    assert main(["predict", str(path), "--model-dir", str(model_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fretlab predict: error: ") and str(path) in err
    assert "cannot decode audio" in err or "holds no samples" in err


def test_missing_audio_and_bad_output_type_are_clear_errors(tmp_path, model_dir, capsys):
    assert main(["predict", str(tmp_path / "nope.wav"), "--model-dir", str(model_dir)]) == 2
    assert "audio file not found" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nope.wav"), "--model-dir", str(model_dir), "-o", "out.txt"]) == 2
    assert "use a .csv or .json file name" in capsys.readouterr().err


def _copy_model(model_dir: Path, dest: Path) -> Path:
    dest.mkdir()
    for f in model_dir.iterdir():
        (dest / f.name).write_bytes(f.read_bytes())
    return dest


@pytest.mark.parametrize(("edit", "message"), [
    (lambda c: {**c, "format_version": 99}, "model format 99"),
    (lambda c: {**c, "params": {**c["params"], "model": {"crnn": {**c["params"]["model"]["crnn"], "rnn_hidden": 32}}}},
     "weights do not match the config"),
    (lambda c: {**c, "params": {**c["params"], "frobnicate": {}}}, "incompatible config"),
    (lambda c: {k: v for k, v in c.items() if k != "classes"}, r"lacks \['classes'\]"),
])
def test_incompatible_model_dirs_are_clear_errors(tmp_path, model_dir, note_wave, capsys, edit, message):
    bad = _copy_model(model_dir, tmp_path / "bad")
    write_json(bad / "config.json", edit(read_json(bad / "config.json")))
    sf.write(tmp_path / "note.wav", note_wave, 44100)
    assert main(["predict", str(tmp_path / "note.wav"), "--model-dir", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert re.search(message, err), err


def test_missing_or_corrupt_model_dir_files(tmp_path, model_dir, note_wave, capsys):
    sf.write(tmp_path / "note.wav", note_wave, 44100)
    assert main(["predict", str(tmp_path / "note.wav"), "--model-dir", str(tmp_path / "none")]) == 2
    assert "missing model.safetensors" in capsys.readouterr().err
    bad = _copy_model(model_dir, tmp_path / "bad")
    (bad / "config.json").write_text("{not json")
    assert main(["predict", str(tmp_path / "note.wav"), "--model-dir", str(bad)]) == 2
    assert "config.json is not valid JSON" in capsys.readouterr().err


def test_console_script_is_installed(tmp_path, model_dir, note_wave):
    sf.write(tmp_path / "note.flac", np.stack([note_wave, note_wave], axis=1), 44100)
    script = Path(sys.executable).parent / "fretlab"
    proc = subprocess.run([str(script), "predict", str(tmp_path / "note.flac"), "--model-dir", str(model_dir)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)["probabilities"]) == set(CLASSES)


def test_result_table_for_a_note_is_one_row():
    result = {"mode": "note", "classes": ["a", "b"], "file": "x.wav", "label": "b", "confidence": 0.75,
              "probabilities": {"a": 0.25, "b": 0.75}}
    table = result_table(result)
    assert table.to_dict("records") == [{"file": "x.wav", "label": "b", "confidence": 0.75, "p_a": 0.25, "p_b": 0.75}]


def test_silence_has_no_onsets():
    from fretlab.params import Predict

    onsets, strength = detect_onsets(np.zeros(FEATURE_SR * 2, np.float32), FEATURE_SR, Predict())
    assert len(onsets) == 0 and len(strength) == 0


def test_cuda_without_a_gpu_is_a_clear_error(tmp_path, model_dir, note_wave, capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    sf.write(tmp_path / "note.wav", note_wave, 44100)
    assert main(["predict", str(tmp_path / "note.wav"), "--model-dir", str(model_dir), "--device", "cuda"]) == 2
    assert "--device is 'cuda' but no CUDA device is available" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["note", "timeline"])
def test_csv_output_is_what_pandas_would_write(tmp_path, mode):
    """write_result uses the csv module (no pandas import per call); the file must match pandas' CSV."""
    from fretlab.app.predict import write_result

    probs = {"a": 0.25, "b": 0.75}
    result = {"mode": mode, "classes": ["a", "b"], "file": 'take, "one".wav', "label": "b", "confidence": 0.75,
              "probabilities": probs,
              "events": [{"onset_sec": 0.5, "offset_sec": 1.25, "label": "a", "confidence": 0.6000001,
                          "probabilities": probs}, {"onset_sec": 2.0, "offset_sec": 2.1, "label": "b",
                                                    "confidence": 0.9, "probabilities": probs}]}
    write_result(result, tmp_path / "out.csv")
    result_table(result).to_csv(tmp_path / "pandas.csv", index=False)
    assert (tmp_path / "out.csv").read_text() == (tmp_path / "pandas.csv").read_text()


def test_cpu_predictor_runs_the_model_channels_last_with_the_same_logits(model_dir):
    """The layout is a speed choice only: the logits match the model as saved, in the default layout."""
    predictor = Predictor(model_dir, "cpu")
    # with one input channel both layouts have the same strides, so look at the later blocks
    convs = [m for m in predictor.model.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1]
    assert convs and not any(c.weight.is_contiguous() for c in convs)
    reference, _, _ = load_model_dir(model_dir, torch.device("cpu"))
    cfg = predictor.cfg
    shape = (9, cfg.n_channels, cfg.n_mels, cfg.n_frames)
    x = torch.from_numpy(np.random.default_rng(0).normal(-40, 20, shape).astype(np.float32))
    np.testing.assert_allclose(predict_logits(predictor.model, x, 4).numpy(), predict_logits(reference, x, 4).numpy(),
                               rtol=1e-4, atol=1e-4)


def test_a_one_shot_is_windowed_from_its_attack_not_from_a_louder_later_click():
    """A sample-library note: sounding from the file's first sample, a note-off click at 3 s that is the
    strongest onset of the file. The window starts at the attack (the first strong onset, backtracked)."""
    sr, settings = 22050, Predict()
    t = np.arange(4 * sr) / sr
    note = (np.sin(2 * np.pi * 220 * t) * np.exp(-t / 1.5)).astype(np.float32) * 0.5
    click = np.zeros_like(note)
    click[3 * sr: 3 * sr + 200] = np.random.default_rng(0).standard_normal(200) * 0.9
    wave = note + click
    onsets, strength = detect_onsets(wave, sr, settings)
    assert abs(onsets[int(np.argmax(strength))] - 3.0) < 0.05, "the click is the strongest onset here"
    assert note_start(wave, sr, settings) == 0.0
    assert abs(note_start(wave, sr, settings.model_copy(update={"note_onset_share": 1.0})) - 3.0) < 0.05
    delayed = np.concatenate([np.zeros(sr // 2, dtype=np.float32), wave])
    assert abs(note_start(delayed, sr, settings) - 0.5) <= settings.onset_hop_length / sr
