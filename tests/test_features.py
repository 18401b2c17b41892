"""The shared feature front end against librosa, and its optional channels."""

import librosa
import numpy as np
import pytest
import torch

from fretlab.features import FeatureExtractor, delta, extract
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
