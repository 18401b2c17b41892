"""train.augment.gate_probability / gate_db: clean (noise-free) training examples made from noisy ones."""

from __future__ import annotations

import pytest
import torch

from fretlab.models.augment import FeatureAugment, spectral_gate
from fretlab.params import Augment, Featurize, ParamsError, parse_params


def _noisy_note(batch: int = 8) -> torch.Tensor:
    """A -10 dB peak, a partial at -30 dB, hiss at -60 dB, and a floor at -90 dB in one corner."""
    x = torch.full((batch, 6, 20), -60.0)
    x[:, 2, 3:] = -30.0
    x[:, 2, 3] = -10.0
    x[:, 5, 19] = -90.0
    return x


def test_gate_drops_cells_below_the_depth_to_the_floor_and_keeps_the_rest():
    torch.manual_seed(0)
    x = _noisy_note()
    y = spectral_gate(x, probability=1.0, gate_db=(40.0, 45.0))  # threshold -50..-55 dB: the hiss goes
    assert torch.equal(y[:, 2, 3:], x[:, 2, 3:])  # the note is untouched
    hiss = torch.ones_like(x, dtype=torch.bool)
    hiss[:, 2, 3:] = False
    assert (y[hiss] == -90.0).all()  # the hiss is at the floor, the floor stays the floor


def test_gate_depth_decides_what_goes():
    x = _noisy_note(batch=2)
    deep = spectral_gate(x, probability=1.0, gate_db=(60.0, 70.0))  # threshold -70..-80: the hiss stays
    assert torch.equal(deep, x)
    shallow = spectral_gate(x, probability=1.0, gate_db=(10.0, 15.0))  # threshold -20..-25: the partial goes too
    assert (shallow[:, 2, 4:] == -90.0).all() and (shallow[:, 2, 3] == -10.0).all()


def test_gate_probability_is_the_share_of_examples_gated():
    torch.manual_seed(1)
    y = spectral_gate(_noisy_note(batch=4000), probability=0.3, gate_db=(40.0, 45.0))
    share = (y[:, 0, 0] == -90.0).float().mean().item()
    assert 0.26 < share < 0.34
    assert torch.equal(spectral_gate(_noisy_note(), probability=0.0, gate_db=(40.0, 45.0)), _noisy_note())


def test_feature_augment_gates_only_in_training_and_draws_nothing_when_off():
    feat = Featurize()
    x = _noisy_note(batch=4).unsqueeze(1)
    off = FeatureAugment(Augment(gain_db=0.0, shift_ms=0.0, noise_db=None), feat).train()
    before = torch.random.get_rng_state()
    assert torch.equal(off(x), x)
    assert torch.equal(torch.random.get_rng_state(), before)  # off: old runs stay byte-identical
    on = FeatureAugment(Augment(gain_db=0.0, shift_ms=0.0, noise_db=None, gate_probability=1.0,
                                gate_db=(40.0, 45.0)), feat)
    assert torch.equal(on.eval()(x), x)
    assert (on.train()(x)[:, 0, 0, 0] == -90.0).all()


@pytest.mark.parametrize(("gate", "needle"), [([70.0, 40.0], "gate_db"), ([0.0, 40.0], "gate_db")])
def test_bad_gate_depth_is_a_clear_error(gate, needle):
    with pytest.raises(ParamsError, match=needle):
        parse_params({"train": {"augment": {"gate_db": gate}}})


def test_gate_probability_out_of_range_is_a_clear_error():
    with pytest.raises(ParamsError, match="gate_probability"):
        parse_params({"train": {"augment": {"gate_probability": 1.5}}})
