"""Event windowing, normalization and resampling."""

import numpy as np
import pytest
import soundfile as sf

from fretlab.audio.loading import AudioError, center_fit, event_window, fit_length, load_audio, peak_normalize


def test_fit_length_crops_from_start_and_zero_pads_past_the_end():
    wave = np.arange(1, 11, dtype=np.float32)
    np.testing.assert_array_equal(fit_length(wave, 4, start=3), [4, 5, 6, 7])
    np.testing.assert_array_equal(fit_length(wave, 5, start=8), [9, 10, 0, 0, 0])


def test_center_fit_crops_and_pads_symmetrically():
    wave = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(center_fit(wave, 4), [3, 4, 5, 6])
    padded = center_fit(np.ones(4, dtype=np.float32), 8)
    np.testing.assert_array_equal(padded, [0, 0, 1, 1, 1, 1, 0, 0])


def test_event_window_uses_onset_for_tracks_and_centre_for_snippets():
    sr = 100
    wave = np.zeros(500, dtype=np.float32)
    wave[250] = 1.0
    track = event_window(wave, sr, 100, onset_sec=2.5)
    assert track[0] == 1.0 and len(track) == 100
    snippet = event_window(wave, sr, 100, onset_sec=None)
    assert snippet[50] == 1.0  # centre crop of 500 -> samples 200..300


def test_peak_normalize_scales_to_unit_peak_and_keeps_silence_silent():
    out = peak_normalize(np.array([0.0, -0.25, 0.125], dtype=np.float32))
    assert np.abs(out).max() == pytest.approx(1.0)
    assert out[1] == pytest.approx(-1.0)
    silent = peak_normalize(np.zeros(16, dtype=np.float32))
    assert np.all(silent == 0) and np.isfinite(silent).all()


def test_load_audio_mixes_down_and_resamples(tmp_path):
    sr = 44100
    t = np.arange(sr) / sr
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([tone, tone], axis=1), sr, subtype="PCM_16")
    wave, out_sr = load_audio(path, 22050)
    assert out_sr == 22050 and wave.ndim == 1
    assert abs(len(wave) - 22050) <= 1
    spectrum = np.abs(np.fft.rfft(wave))
    assert np.argmax(spectrum) * out_sr / len(wave) == pytest.approx(440, abs=2)


def test_load_audio_names_the_file_when_it_cannot_be_read(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(AudioError, match=r"broken\.wav"):
        load_audio(bad)
