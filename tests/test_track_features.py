"""Whole-track frame features against librosa, and featurizing tracks into the sequence cache."""

from __future__ import annotations

import librosa
import numpy as np
import pandas as pd
import pydantic
import pytest
import soundfile as sf
from threadpoolctl import threadpool_limits

from fretlab.audio.loading import AudioError
from fretlab.audio.track_features import feature_dim, feature_names, track_frame_features
from fretlab.cache.featurize_tracks import featurize_tracks, load_track
from fretlab.cache.sequences import load_sequences
from fretlab.params import TrackFeatures

SR = 22050


def chord(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """An A-major triad with a little noise: every block (chroma, contrast, zcr) gets something to see."""
    t = np.arange(round(seconds * sr)) / sr
    wave = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63)) / 4
    return (wave + 0.01 * np.random.default_rng(seed).normal(size=t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def tone() -> np.ndarray:
    return chord(2.0)


@pytest.fixture(scope="module")
def full() -> tuple[TrackFeatures, np.ndarray]:
    cfg = TrackFeatures(features=["mfcc", "chroma", "contrast", "tonnetz", "zcr", "logmel"], n_mels=32)
    return cfg, track_frame_features(chord(2.0), SR, cfg)


def block(cfg: TrackFeatures, out: np.ndarray, prefix: str) -> np.ndarray:
    """The named block of ``out`` as librosa lays it out, ``[dims, frames]``."""
    cols = [i for i, name in enumerate(feature_names(cfg)) if name.split("_")[0] == prefix]
    return out[:, cols].T


def test_shapes_and_names_agree(tone):
    cfg = TrackFeatures()
    out = track_frame_features(tone, SR, cfg)
    names = feature_names(cfg)
    assert out.dtype == np.float32 and out.flags.c_contiguous and np.isfinite(out).all()
    assert out.shape == (1 + len(tone) // cfg.hop_length, feature_dim(cfg)) == (87, 46)
    assert len(names) == len(set(names)) == 46
    assert names[:2] == ["mfcc_00", "mfcc_01"] and names[20] == "chroma_C" and names[29] == "chroma_A"
    assert names[32:] == [*(f"contrast_{i}" for i in range(7)), *(f"tonnetz_{i}" for i in range(6)), "zcr"]


def test_blocks_follow_the_configured_order(tone, full):
    cfg, everything = full
    picked = TrackFeatures(features=["zcr", "logmel"], n_mels=32)
    out = track_frame_features(tone, SR, picked)
    assert feature_names(picked) == ["zcr", *(f"logmel_{i:02d}" for i in range(32))]
    np.testing.assert_array_equal(out[:, 0], everything[:, feature_names(cfg).index("zcr")])


def test_blocks_equal_direct_librosa_calls(tone, full):
    cfg, out = full
    common = {"n_fft": cfg.n_fft, "hop_length": cfg.hop_length}
    chroma = librosa.feature.chroma_stft(y=tone, sr=SR, **common)
    expected = {
        "mfcc": librosa.feature.mfcc(y=tone, sr=SR, n_mfcc=cfg.n_mfcc, **common),
        "chroma": chroma,
        "contrast": librosa.feature.spectral_contrast(y=tone, sr=SR, **common),
        "tonnetz": librosa.feature.tonnetz(chroma=chroma),
        "zcr": librosa.feature.zero_crossing_rate(tone, frame_length=cfg.n_fft, hop_length=cfg.hop_length),
        "logmel": librosa.power_to_db(librosa.feature.melspectrogram(y=tone, sr=SR, n_mels=32, **common)),
    }
    for prefix, want in expected.items():
        got = block(cfg, out, prefix)
        assert got.shape == want.shape, prefix
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3, err_msg=prefix)
    # the A-major triad: A, C# and E are the loudest pitch classes
    pitches = [name.removeprefix("chroma_") for name in feature_names(cfg) if name.startswith("chroma_")]
    top = np.argsort(block(cfg, out, "chroma").mean(axis=1))[-3:]
    assert {pitches[i] for i in top} == {"A", "C#", "E"}


def test_features_refuse_a_wrong_rate_or_empty_audio(tone):
    with pytest.raises(ValueError, match="16000 Hz"):
        track_frame_features(tone, 16000, TrackFeatures())
    with pytest.raises(ValueError, match="non-empty mono"):
        track_frame_features(np.zeros(0, np.float32), SR, TrackFeatures())


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"features": []}, "at least 1"),
    ({"features": ["mfcc", "zcr", "mfcc"]}, "must not repeat"),
    ({"features": ["spectrogram"]}, "literal_error"),
    ({"sample_rate": 8000}, "spectral contrast needs sample_rate"),
    ({"hop_length": 4096}, "exceeds n_fft"),
    ({"hop_length": 1024, "chroma_n_fft": 512}, "exceeds chroma_n_fft"),
    ({"max_duration": 0}, "greater than 0"),
])
def test_track_feature_params_are_validated(kwargs, problem):
    with pytest.raises(pydantic.ValidationError, match=problem):
        TrackFeatures(**kwargs)
    TrackFeatures(sample_rate=8000, features=["mfcc", "zcr"])  # low rates are fine without contrast


# --- featurize_tracks ------------------------------------------------------------------------------------------

DURATIONS = {"a.wav": 1.0, "b.wav": 2.5, "c.wav": 1.5, "d.wav": 3.0}
CFG = TrackFeatures(n_fft=1024, hop_length=512)


@pytest.fixture
def tracks(tmp_path) -> tuple[pd.DataFrame, object]:
    root = tmp_path / "audio"
    (root / "sub").mkdir(parents=True)
    for i, (name, seconds) in enumerate(DURATIONS.items()):
        wave = chord(seconds, 44100, seed=i)  # a native rate other than the features': exercises resampling
        sf.write(root / "sub" / name, np.stack([wave, 0.5 * wave], axis=1) if i == 1 else wave, 44100,
                 subtype="PCM_16")
    meta = pd.DataFrame({
        "note_id": ["t1", "t2", "t3", "t4"],
        "audio_path": [f"sub/{n}" for n in DURATIONS],
        "split": ["train", "val", "train", "train"],
        "valence": [0.1, 0.2, 0.3, 0.4],
    })
    return meta, root


def run(meta, root, out, workers=1, cfg=CFG):
    return featurize_tracks(meta, root, cfg, out, workers, ["train", "val"])


def test_featurize_tracks_writes_cache_csv_and_summary(tmp_path, tracks):
    meta, root = tracks
    out = tmp_path / "features"
    summary = run(meta, root, out)
    assert sorted(p.name for p in out.iterdir()) == [
        "summary.json", "train.csv", "train.npy", "train.offsets.npy", "val.csv", "val.npy", "val.offsets.npy"]
    lengths = {name: 1 + round(s * CFG.sample_rate) // CFG.hop_length for name, s in DURATIONS.items()}
    train = load_sequences(out, "train")
    assert train.lengths.tolist() == [lengths["a.wav"], lengths["c.wav"], lengths["d.wav"]]
    with threadpool_limits(1):  # featurize_tracks runs BLAS on one thread: more threads change the last bits
        want = track_frame_features(load_track(root / "sub/d.wav", CFG), SR, CFG)
    np.testing.assert_array_equal(train[2], want)
    pd.testing.assert_frame_equal(pd.read_csv(out / "train.csv"), meta.iloc[[0, 2, 3]].reset_index(drop=True))
    assert pd.read_csv(out / "val.csv")["note_id"].tolist() == ["t2"]
    assert summary["dims"] == train.dims == 46 and summary["feature_names"] == feature_names(CFG)
    assert summary["splits"]["train"] == {"tracks": 3, "frames": int(train.lengths.sum()), "frames_min": 44,
                                          "frames_median": float(lengths["c.wav"]), "frames_max": lengths["d.wav"],
                                          "events": 3, "skipped": 0}
    assert summary["skipped_total"] == 0
    assert summary["splits"]["val"]["tracks"] == 1 and summary["config"]["n_fft"] == 1024


def test_featurize_tracks_is_byte_identical_for_any_worker_count(tmp_path, tracks):
    meta, root = tracks
    run(meta, root, tmp_path / "one", workers=1)
    run(meta, root, tmp_path / "two", workers=2)
    one = {p.name: p.read_bytes() for p in (tmp_path / "one").iterdir()}
    two = {p.name: p.read_bytes() for p in (tmp_path / "two").iterdir()}
    assert one.keys() == two.keys() and len(one) == 7
    assert [name for name in one if one[name] != two[name]] == []


def test_max_duration_crops_every_track(tmp_path, tracks):
    meta, root = tracks
    summary = run(meta, root, tmp_path / "out", cfg=CFG.model_copy(update={"max_duration": 1.2}))
    assert summary["splits"]["train"]["frames_max"] == 1 + round(1.2 * SR) // CFG.hop_length


@pytest.mark.parametrize(("path", "problem"), [
    ("../x.wav", r"x\.wav: audio_path escapes the audio root .*row 1 of the metadata \(line 3 of its CSV\), "
                 r"note_id 't2'"),
    ("sub/gone.wav", r"gone\.wav: audio file not found \(row 1 "),
    ("sub/bad.wav", r"bad\.wav: cannot decode audio .*row 1 "),
])
def test_bad_audio_names_the_file_and_row_and_writes_nothing(tmp_path, tracks, path, problem):
    meta, root = tracks
    (root / "sub" / "bad.wav").write_bytes(b"RIFF....WAVEnot really audio")
    meta.loc[1, "audio_path"] = path
    with pytest.raises(AudioError, match=problem):
        run(meta, root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_tempogram_block_peaks_at_the_beat_period():
    """A click track at 120 BPM: the tempogram's mean over time peaks at the lag of one beat (0.5 s)."""
    sr, hop = 22050, 1024
    cfg = TrackFeatures(sample_rate=sr, hop_length=hop, features=["tempogram"], tempogram_lags=32,
                        tempogram_window=96)
    clicks = np.zeros(sr * 20, dtype=np.float32)
    clicks[(np.arange(0, 20, 0.5) * sr).astype(int)] = 1.0
    burst = (np.exp(-np.arange(2000) / 200) * np.sin(np.arange(2000) * 0.3)).astype(np.float32)
    wave = np.convolve(clicks, burst)[: len(clicks)]
    gram = track_frame_features(wave, sr, cfg)
    assert gram.shape[1] == 32 and feature_names(cfg)[0] == "tempogram_lag01"
    assert abs(int(np.argmax(gram.mean(axis=0))) + 1 - 0.5 * sr / hop) <= 1


# --- harmony block -----------------------------------------------------------------------------------------------

def triad(root_hz: float, third: int, seconds: float = 2.0, sr: int = SR) -> np.ndarray:
    """Root, third (3 or 4 semitones up) and fifth, two octaves of partials each: a sustained triad."""
    t = np.arange(round(seconds * sr)) / sr
    notes = [root_hz * 2 ** (k / 12) for k in (0, third, 7)]
    return (sum(np.sin(2 * np.pi * f * h * t) / h for f in notes for h in (1, 2)) / 6).astype(np.float32)


@pytest.mark.parametrize("root_hz", [110.0, 146.83, 196.0])  # A2, D3, G3: roots where an FFT of 2048 is coarse
def test_harmony_tells_a_major_from_a_minor_triad_in_any_key(root_hz):
    cfg = TrackFeatures(features=["harmony"], chroma_n_fft=8192, key_window=16)
    assert feature_names(cfg) == ["harmony_major_triad", "harmony_minor_triad", "harmony_key_major",
                                  "harmony_key_minor"]
    major = track_frame_features(triad(root_hz, 4), SR, cfg)[4:-4].mean(axis=0)  # edge frames see padding
    minor = track_frame_features(triad(root_hz, 3), SR, cfg)[4:-4].mean(axis=0)
    assert major[0] > 0.8 and major[0] > minor[0] + 0.2 and minor[1] > major[1] + 0.2


def test_harmony_correlations_by_hand():
    """A chroma equal to the major key profile on D correlates 1 with it; a flat (silent) frame correlates 0."""
    from fretlab.audio.track_features import KEY_PROFILE_MAJOR, harmony

    d_major = np.roll(np.asarray(KEY_PROFILE_MAJOR), 2)[:, None]
    chroma = np.concatenate([np.repeat(d_major, 3, axis=1), np.ones((12, 1))], axis=1)
    out = harmony(chroma, TrackFeatures(key_window=1))
    np.testing.assert_allclose(out[2, :3], 1.0, rtol=1e-6)
    centred = d_major[:, 0] - d_major.mean()
    c_major_triad = np.zeros(12)
    c_major_triad[[0, 4, 7]] = 1.0
    best = max(np.corrcoef(centred, np.roll(c_major_triad, r))[0, 1] for r in range(12))
    np.testing.assert_allclose(out[0, 0], best, rtol=1e-5)
    np.testing.assert_array_equal(out[:, 3], 0.0)


def test_chroma_n_fft_gives_librosa_chroma_at_that_size_on_the_same_frames(tone):
    cfg = TrackFeatures(features=["mfcc", "chroma"], chroma_n_fft=8192)
    out = track_frame_features(tone, SR, cfg)
    want = librosa.feature.chroma_stft(y=tone, sr=SR, n_fft=8192, hop_length=cfg.hop_length)
    np.testing.assert_allclose(block(cfg, out, "chroma"), want, rtol=1e-4, atol=1e-3)
    assert out.shape[0] == 1 + len(tone) // cfg.hop_length
