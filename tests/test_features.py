"""The shared feature front end against librosa, and its optional channels."""

import librosa
import numpy as np
import pytest
import torch

from fretlab.audio.features import FeatureExtractor, delta, extract
from fretlab.params import Featurize


@pytest.fixture
def tone() -> np.ndarray:
    sr = 22050
    t = np.arange(sr) / sr
    return (0.8 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)


def test_log_mel_matches_librosa(tone):
    cfg = Featurize()
    ours = extract(FeatureExtractor(cfg), tone[None])[0, 0]
    ref = librosa.power_to_db(
        librosa.feature.melspectrogram(y=tone, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                       n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax, pad_mode="constant"),
        ref=1.0, amin=1e-10, top_db=80.0,
    )
    assert ours.shape == ref.shape == (cfg.n_mels, cfg.n_frames)
    np.testing.assert_allclose(ours, ref, atol=0.05)


@pytest.mark.parametrize(("deltas", "rms", "channels"), [(False, False, 1), (True, False, 2), (True, True, 3)])
def test_channel_count_follows_params(tone, deltas, rms, channels):
    cfg = Featurize(deltas=deltas, rms=rms, n_mels=32)
    out = extract(FeatureExtractor(cfg), np.stack([tone, tone]))
    assert out.shape == (2, channels, 32, cfg.n_frames) == (2, cfg.n_channels, 32, cfg.n_frames)


def test_silent_input_gives_finite_features():
    cfg = Featurize()
    out = extract(FeatureExtractor(cfg), np.zeros((1, cfg.n_samples), dtype=np.float32))
    assert np.isfinite(out).all()


def test_delta_of_a_linear_ramp_is_its_slope():
    ramp = torch.arange(20, dtype=torch.float32).view(1, 1, 20) * 3.0
    d = delta(ramp)
    torch.testing.assert_close(d[..., 4:-4], torch.full((1, 1, 12), 3.0))


def test_features_depend_on_the_peak_normalized_window_only(tone):
    extractor = FeatureExtractor(Featurize())
    np.testing.assert_array_equal(extract(extractor, tone[None]), extract(extractor, tone[None].copy()))


@pytest.mark.parametrize(("n_fft", "hop", "n_samples"), [(1024, 256, 22050), (2048, 512, 44100), (512, 160, 16000),
                                                        (1024, 300, 5000)])
def test_power_spectrogram_is_torch_stft_bit_for_bit(n_fft, hop, n_samples):
    cfg = Featurize(n_fft=n_fft, hop_length=hop, sample_rate=n_samples, target_duration=1.0, fmax=None)
    wave = torch.from_numpy(np.random.default_rng(n_fft).standard_normal((3, n_samples)).astype(np.float32))
    spec = torch.stft(wave, n_fft, hop, window=torch.hann_window(n_fft), center=True, pad_mode="constant",
                      return_complex=True)
    with torch.inference_mode():
        ours = FeatureExtractor(cfg).power_spectrogram(wave)
    assert ours.shape == spec.shape
    assert torch.equal(ours, torch.addcmul(spec.real.square(), spec.imag, spec.imag))


def test_extract_does_not_depend_on_how_windows_are_batched(monkeypatch):
    import fretlab.audio.features as features

    cfg = Featurize()
    windows = np.random.default_rng(0).standard_normal((7, cfg.n_samples)).astype(np.float32)
    extractor = FeatureExtractor(cfg)
    whole = extract(extractor, windows)
    monkeypatch.setattr(features, "SUB_BATCH_BYTES", 1)  # one window per forward call
    assert np.array_equal(extract(extractor, windows), whole)
    one_by_one = np.concatenate([extract(extractor, w[None]) for w in windows])
    assert np.array_equal(one_by_one, whole)
