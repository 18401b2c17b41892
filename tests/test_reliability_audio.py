"""Bad and unusual audio files: each is read correctly or refused with a message naming the file and the fix."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from _reliability import small_cfg, tone, write_audio
from fretlab.audio.features import FeatureExtractor, extract
from fretlab.audio.loading import AudioError, load_audio, load_audio_up_to, peak_normalize, read_window
from fretlab.params import parse_params


def _expect_error(path, pattern: str) -> str:
    """Both readers (``load_audio``; featurize's ``load_audio_up_to``) refuse ``path`` and name it."""
    with pytest.raises(AudioError, match=pattern) as info:
        load_audio(path, 16000)
    assert str(path) in str(info.value), "the message must name the file"
    with pytest.raises(AudioError, match=pattern) as again:
        load_audio_up_to(path, 16000, 60.0)
    assert str(path) in str(again.value)
    return str(info.value)


def test_random_bytes_are_refused_with_the_file_named(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    msg = _expect_error(path, "cannot decode audio")
    assert "re-export it as WAV or FLAC" in msg


def test_bad_wav_header_is_refused(tmp_path):
    good = write_audio(tmp_path / "good.wav", tone(0.2), subtype="PCM_16").read_bytes()
    path = tmp_path / "bad_header.wav"
    path.write_bytes(good[:20] + b"\xff" * 16 + good[36:])  # 'fmt ' chunk overwritten
    _expect_error(path, "cannot decode audio")


def test_truncated_wav_is_refused_not_silently_shortened(tmp_path):
    data = write_audio(tmp_path / "full.wav", tone(1.0), subtype="PCM_16").read_bytes()
    path = tmp_path / "cut.wav"
    path.write_bytes(data[: len(data) // 2])  # an interrupted copy: header promises 1 s
    msg = _expect_error(path, "truncated WAV")
    assert "copy or re-export" in msg
    for max_sec in (10.0, 0.1):  # featurize's path: refused whether it would decode or stream the file
        with pytest.raises(AudioError, match="truncated WAV"):
            load_audio_up_to(path, 44100, max_sec)


def test_zero_byte_file_is_refused(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    _expect_error(path, "cannot decode audio")


def test_zero_length_audio_is_refused(tmp_path):
    path = write_audio(tmp_path / "no_frames.wav", np.zeros(0, np.float32))
    _expect_error(path, "holds no samples")
    with pytest.raises(AudioError, match="holds no samples"):
        load_audio_up_to(path, 44100, 10.0)


def test_missing_file_is_named(tmp_path):
    _expect_error(tmp_path / "nowhere.wav", "audio file not found")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_samples_are_refused(tmp_path, bad):
    wave = tone(0.2)
    wave[100] = bad
    path = write_audio(tmp_path / "nonfinite.wav", wave, subtype="FLOAT")
    msg = _expect_error(path, "NaN or infinite samples")
    assert "repair or drop the file" in msg


def test_all_silent_audio_gives_finite_features_without_division_by_zero(tmp_path):
    path = write_audio(tmp_path / "silence.wav", np.zeros(8000, np.float32))
    wave, _ = load_audio(path, 16000)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")  # a 0/0 in normalization would warn (or raise) here
        window = peak_normalize(wave[:8000])
    assert not window.any()
    feats = extract(FeatureExtractor(small_cfg()), window[None])
    assert np.isfinite(feats).all()
    assert np.ptp(feats) == 0.0  # silence is a flat floor, not noise from a division


def test_multichannel_audio_is_mixed_to_mono(tmp_path):
    left = tone(0.3)
    stereo = np.stack([left, 0.5 * left, np.zeros_like(left), left], axis=1)  # 4 channels
    path = write_audio(tmp_path / "quad.wav", stereo, subtype="FLOAT")
    wave, sr = load_audio(path)
    assert sr == 16000 and wave.ndim == 1
    np.testing.assert_allclose(wave, 0.625 * left, atol=1e-6)


@pytest.mark.parametrize(("fmt", "subtype", "tol"), [
    ("WAV", "PCM_U8", 1e-2), ("WAV", "PCM_16", 1e-4), ("WAV", "PCM_24", 1e-6), ("WAV", "PCM_32", 1e-6),
    ("WAV", "FLOAT", 0.0), ("WAV", "DOUBLE", 0.0),
    ("FLAC", "PCM_S8", 1e-2), ("FLAC", "PCM_16", 1e-4), ("FLAC", "PCM_24", 1e-6),
])
def test_integer_float_and_flac_encodings_decode_to_the_same_signal(tmp_path, fmt, subtype, tol):
    wave = tone(0.25)
    path = write_audio(tmp_path / f"x.{fmt.lower()}", wave, format=fmt, subtype=subtype)
    got, sr = load_audio(path)
    assert got.dtype == np.float32 and sr == 16000 and len(got) == len(wave)
    assert np.max(np.abs(got - wave)) <= tol + 1e-7


@pytest.mark.parametrize("sr", [8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000])
def test_sample_rates_from_8k_to_96k_resample_to_the_analysis_rate(tmp_path, sr):
    target = 22050
    path = write_audio(tmp_path / f"sr{sr}.wav", tone(0.5, sr=sr, freq=1000.0), sr=sr, subtype="PCM_16")
    wave, out_sr = load_audio(path, target)
    assert out_sr == target
    assert abs(len(wave) - 0.5 * target) <= 1
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.argmax(spectrum) * target / len(wave) - 1000.0) < 5.0  # the tone stays at 1 kHz


def test_very_long_file_is_read_one_window_at_a_time(tmp_path):
    """A 10-minute file: windows are decoded on their own, matching the whole-file path closely."""
    import tracemalloc

    sr, minutes = 44100, 10
    path = tmp_path / "long.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", sr, 1, "PCM_16") as f:
        for _ in range(minutes * 60):  # write second by second: the test itself stays small too
            f.write(0.3 * tone(1.0, sr=sr, freq=float(rng.integers(200, 2000))) + 0.001 * rng.standard_normal(sr))
    assert load_audio_up_to(path, 22050, 60.0) == (None, pytest.approx(minutes * 60))  # header only, no decode
    cfg = small_cfg()
    onset = 421.25
    tracemalloc.start()
    window = read_window(path, cfg.sample_rate, cfg.n_samples, onset)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5 * 2**20, f"reading one window traced {peak / 2**20:.1f} MiB"  # whole file: > 100 MiB

    # the same window from a short excerpt loaded whole (the path short files take)
    start = round((onset - 1.0) * sr)
    excerpt = sf.read(path, start=start, frames=3 * sr, dtype="float32")[0]
    short = write_audio(tmp_path / "excerpt.wav", excerpt, sr=sr, subtype="FLOAT")
    whole, _ = load_audio(short, cfg.sample_rate)
    reference = whole[cfg.sample_rate : cfg.sample_rate + cfg.n_samples]
    assert np.max(np.abs(window - reference)) < 1e-3 * np.max(np.abs(reference))


def test_featurize_streams_long_files_and_matches_whole_file_features(tmp_path):
    """featurize.stream_above_sec switches to window reads; the features barely change."""
    from _reliability import meta_rows
    from fretlab.cache.featurize import featurize_all

    root = tmp_path / "audio"
    write_audio(root / "track.wav", np.concatenate([tone(1.0, freq=f) for f in (220, 330, 440, 550, 660)]),
                subtype="PCM_16")
    meta = meta_rows([{"audio_path": "track.wav", "onset_sec": t} for t in (0.0, 1.0, 2.05, 3.5)], split="train")
    meta = meta.assign(split=["train", "train", "val", "test"])
    out = {}
    for name, limit in (("whole", 60.0), ("streamed", 2.0)):
        featurize_all(meta, root, small_cfg(stream_above_sec=limit), ["general_note", "harmonic", "dead_note"],
                      tmp_path / name, workers=1)
        out[name] = np.load(tmp_path / name / "train.npy")
    assert out["whole"].shape == out["streamed"].shape == (2, 1, 32, 32)
    assert np.max(np.abs(out["whole"] - out["streamed"])) < 0.5  # dB; resampler edges only


def test_accented_and_non_ascii_file_names_load(tmp_path):
    for name in ("café_é.wav", "Gitarre_Größe.flac", "ギター.wav"):
        fmt = "FLAC" if name.endswith(".flac") else "WAV"
        path = write_audio(tmp_path / "ünïcode dir" / name, tone(0.1), format=fmt, subtype="PCM_16")
        wave, _ = load_audio(path)
        assert len(wave) == 1600


def test_non_utf8_file_name_on_disk_loads(tmp_path):
    """A Latin-1 byte name (e.g. from an old archive) is still a readable path on POSIX."""
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9.wav")
    sf.write(raw, tone(0.1), 16000, format="WAV")
    wave, _ = load_audio(os.fsdecode(raw))
    assert len(wave) == 1600


def test_features_are_identical_for_repeated_extraction():
    """The front end is deterministic on CPU (the basis of the byte-identical feature cache)."""
    cfg = parse_params({}).featurize
    extractor = FeatureExtractor(cfg)
    windows = np.random.default_rng(1).standard_normal((4, cfg.n_samples)).astype(np.float32)
    first = extract(extractor, windows)
    torch.manual_seed(123)  # global RNG state must not matter
    assert extract(extractor, windows).tobytes() == first.tobytes()
