"""train.augment.tilt_db / fade_in_ms: the level-envelope augmentation on log-mel windows."""

from __future__ import annotations

import torch

from fretlab.models.augment import FeatureAugment, reshape_envelope
from fretlab.params import Augment, Featurize


def _note(batch: int = 4, mels: int = 8, frames: int = 40, onset: int = 5) -> torch.Tensor:
    """Silence at -100 dB, then a note at -20 dB decaying 0.5 dB a frame, from ``onset``."""
    x = torch.full((batch, mels, frames), -100.0)
    t = torch.arange(frames - onset, dtype=torch.float32)
    x[:, :, onset:] = -20.0 - 0.5 * t
    return x


def test_tilt_is_one_linear_ramp_per_example_across_all_bands():
    torch.manual_seed(0)
    x = _note()
    y = reshape_envelope(x, tilt_db=12.0, max_fade=0.0)
    diff = (y - x)[:, :, 5:]  # above the floor: nothing clamped
    assert torch.allclose(diff, diff[:, :1, :].expand_as(diff))  # the same gain for every mel band
    steps = diff[:, 0, 1:] - diff[:, 0, :-1]
    assert torch.allclose(steps, steps[:, :1].expand_as(steps), atol=1e-4)  # linear in time
    slope_db = diff[:, 0, -1] - diff[:, 0, 0] + steps[:, 0] * 5  # over the whole window (frames 0..39)
    assert (slope_db.abs() <= 12.0 + 1e-4).all() and slope_db.abs().max() > 0.5


def test_fade_starts_at_the_onset_and_never_goes_below_the_floor():
    torch.manual_seed(1)
    x = _note(batch=64)
    y = reshape_envelope(x, tilt_db=0.0, max_fade=10.0)
    assert torch.equal(y[:, :, :5], x[:, :, :5])  # before the onset: untouched
    assert (y[:, :, 5] <= x[:, :, 5]).all() and (y[:, :, 5] < x[:, :, 5] - 1.0).any()  # the onset is faded
    assert torch.equal(y[:, :, 16:], x[:, :, 16:])  # 10 frames after the onset: the full level again
    assert (y >= x.amin()).all()
    ramp = y[:, 0, 5:16] - x[:, 0, 5:16]
    assert (ramp[:, 1:] >= ramp[:, :-1] - 1e-5).all()  # the fade only rises


def test_off_by_default_and_identity_in_eval_mode():
    feat = Featurize()
    x = _note(batch=2).unsqueeze(1)
    plain = FeatureAugment(Augment(gain_db=0.0, shift_ms=0.0, noise_db=None), feat).train()
    torch.manual_seed(2)
    before = torch.random.get_rng_state()
    assert torch.equal(plain(x), x)
    assert torch.equal(torch.random.get_rng_state(), before)  # draws nothing: old runs stay byte-identical
    shaped = FeatureAugment(Augment(gain_db=0.0, shift_ms=0.0, noise_db=None, tilt_db=10.0, fade_in_ms=50.0), feat)
    assert torch.equal(shaped.eval()(x), x)
    assert not torch.equal(shaped.train()(x), x)
