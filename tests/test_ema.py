"""train.ema_decay: the weights that are validated and saved are the moving average of the training steps."""

from __future__ import annotations

import torch

from fretlab.train import loop as training
from test_reliability_resume import _setup, _train


def _record_steps(monkeypatch) -> list[dict[str, torch.Tensor]]:
    """Capture the raw weights after every optimizer step of the next training run."""
    steps: list[dict[str, torch.Tensor]] = []
    real_setup = training._setup

    def setup_with_hook(params, model, *args, **kwargs):
        run = real_setup(params, model, *args, **kwargs)
        run.opt.register_step_post_hook(
            lambda *_: steps.append({k: v.detach().clone() for k, v in model.named_parameters()}))
        return run

    monkeypatch.setattr(training, "_setup", setup_with_hook)
    return steps


def test_saved_weights_are_the_hand_computed_moving_average(tmp_path, monkeypatch):
    decay = 0.7
    params, data, features = _setup(tmp_path, "plateau", ema_decay=decay)
    params = params.model_copy(update={"train": params.train.model_copy(update={"epochs": 1, "patience": 1})})
    steps = _record_steps(monkeypatch)
    model, state = _train(params, data, features, tmp_path / "run")
    assert state.best_epoch == 1 and len(steps) == 5  # 40 training examples, batches of 8
    for name, value in model.named_parameters():
        expected = steps[0][name]  # the first update copies the weights
        for step in steps[1:]:
            expected = decay * expected + (1 - decay) * step[name]
        assert torch.allclose(value, expected, atol=1e-6), name
        if value.numel() > 1:
            assert not torch.allclose(value, steps[-1][name]), name  # not simply the last step's weights


def test_off_keeps_the_last_steps_weights(tmp_path, monkeypatch):
    params, data, features = _setup(tmp_path, "plateau")
    params = params.model_copy(update={"train": params.train.model_copy(update={"epochs": 1, "patience": 1})})
    steps = _record_steps(monkeypatch)
    model, _ = _train(params, data, features, tmp_path / "run")
    for name, value in model.named_parameters():
        assert torch.equal(value, steps[-1][name]), name
