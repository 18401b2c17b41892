"""The masked multi-target loss (``fretlab.tasks.losses``) against formulas computed by hand in numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fretlab.params import parse_params
from fretlab.tasks.losses import TaskLoss, balanced_class_weights, make_task_loss
from fretlab.tasks.targets import TargetSpec, resolve_targets

KINDS = ["low", "mid", "high"]


def specs_for(*targets: dict) -> list[TargetSpec]:
    return resolve_targets(parse_params({"task": {"targets": list(targets)}}))


@pytest.fixture
def mixed() -> list[TargetSpec]:
    """A 3-class target, an MSE target (weight 0.5) and a Huber target (delta 0.7, weight 2): 5 outputs."""
    return specs_for(
        {"name": "kind", "type": "classification", "classes": KINDS},
        {"name": "tempo", "type": "regression", "weight": 0.5},
        {"name": "energy", "type": "regression", "loss": "huber", "huber_delta": 0.7, "weight": 2.0},
    )


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def huber(err: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(err)
    return np.where(a <= delta, 0.5 * err**2, delta * (a - delta / 2))


def test_the_specs_lay_out_the_output_vector(mixed):
    assert [(s.name, s.kind, s.loss, s.start, s.size) for s in mixed] == [
        ("kind", "classification", "cross_entropy", 0, 3), ("tempo", "regression", "mse", 3, 1),
        ("energy", "regression", "huber", 4, 1)]
    assert (mixed[1].weight, mixed[2].weight, mixed[2].huber_delta) == (0.5, 2.0, 0.7)


def test_a_target_with_no_valid_row_contributes_exactly_zero():
    specs = specs_for({"name": "a", "type": "regression"}, {"name": "b", "type": "regression", "weight": 3.0})
    out = torch.tensor([[0.5, 9.0], [-1.0, -4.0], [2.0, 7.0]], requires_grad=True)
    # missing cells hold NaN: whatever sits in a masked cell must never reach the loss
    y = torch.tensor([[1.0, math.nan], [0.0, math.nan], [1.5, math.nan]])
    valid = torch.tensor([[True, False]] * 3)
    loss_fn = TaskLoss(specs, {})
    per = loss_fn.per_target(out, y, valid)
    assert per[1].item() == 0.0
    total = loss_fn(out, y, valid)
    expected = np.mean((np.array([0.5, -1.0, 2.0]) - np.array([1.0, 0.0, 1.5])) ** 2)  # (0.25 + 1 + 0.25) / 3
    assert torch.isfinite(total)
    assert total.item() == pytest.approx(expected, rel=1e-6)
    total.backward()
    assert torch.isfinite(out.grad).all()
    np.testing.assert_array_equal(out.grad[:, 1].numpy(), 0.0)  # the empty target pushes nothing
    np.testing.assert_allclose(out.grad[:, 0].numpy(), 2 * (out[:, 0] - y[:, 0]).detach().numpy() / 3, rtol=1e-6)


def test_a_batch_with_nothing_valid_gives_zero_and_finite_gradients(mixed):
    out = torch.randn(4, 5, requires_grad=True)
    y = torch.full((4, 3), math.nan)
    valid = torch.zeros(4, 3, dtype=torch.bool)
    loss_fn = TaskLoss(mixed, {"kind": torch.tensor([0.2, 1.0, 5.0])})
    total = loss_fn(out, y, valid)
    assert total.item() == 0.0
    total.backward()
    assert out.grad is not None and torch.equal(out.grad, torch.zeros_like(out))


def test_mixed_masked_batch_equals_the_hand_computed_total(mixed):
    rng = np.random.default_rng(3)
    n = 8
    out = rng.normal(size=(n, 5)).astype(np.float32)
    out[:, 4] *= 2.0  # spread the Huber errors on both sides of delta
    codes = np.array([0, 2, 1, 2, 0, 1, 2, 2])
    tempo = rng.normal(size=n)
    energy = rng.normal(size=n)
    valid = np.ones((n, 3), dtype=bool)
    valid[[1, 5], 0] = False
    valid[[0, 2, 3], 1] = False
    valid[[4], 2] = False
    y = np.column_stack([codes, tempo, energy]).astype(np.float32)
    y[~valid] = np.nan  # what a masked cell holds must not matter
    w = np.array([0.5, 2.0, 1.5])

    rows = valid[:, 0]
    lsm = log_softmax(out[rows, :3].astype(np.float64))
    picked = lsm[np.arange(rows.sum()), codes[rows]]
    ce = np.sum(w[codes[rows]] * -picked) / np.sum(w[codes[rows]])
    rows = valid[:, 1]
    mse = np.mean((out[rows, 3].astype(np.float64) - y[rows, 1]) ** 2)
    rows = valid[:, 2]
    err = out[rows, 4].astype(np.float64) - y[rows, 2]
    assert (np.abs(err) > 0.7).any() and (np.abs(err) <= 0.7).any()  # both branches of the Huber loss
    hub = np.mean(huber(err, 0.7))
    expected = 1.0 * ce + 0.5 * mse + 2.0 * hub

    loss_fn = TaskLoss(mixed, {"kind": torch.tensor(w, dtype=torch.float32), "tempo": None, "energy": None})
    out_t = torch.tensor(out, requires_grad=True)
    per = loss_fn.per_target(out_t, torch.from_numpy(y), torch.from_numpy(valid))
    np.testing.assert_allclose([p.item() for p in per], [ce, mse, hub], rtol=1e-5)
    total = loss_fn(out_t, torch.from_numpy(y), torch.from_numpy(valid))
    assert total.item() == pytest.approx(expected, rel=1e-5)
    total.backward()
    assert torch.isfinite(out_t.grad).all()
    np.testing.assert_array_equal(out_t.grad[~torch.from_numpy(valid[:, 1]), 3].numpy(), 0.0)  # masked rows: no push


def test_unweighted_cross_entropy_when_class_weights_are_off():
    specs = specs_for({"name": "kind", "type": "classification", "classes": KINDS, "class_weights": False})
    out = np.array([[2.0, 0.0, -1.0], [0.1, 0.2, 0.3], [-3.0, 1.0, 0.0]], dtype=np.float32)
    codes = np.array([0, 2, 1])
    y = codes.astype(np.float64)[:, None]
    valid = np.ones((3, 1), dtype=bool)
    loss_fn = make_task_loss(specs, y, valid)
    assert loss_fn.class_weights == {"kind": None}
    expected = -np.mean(log_softmax(out.astype(np.float64))[np.arange(3), codes])
    got = loss_fn(torch.from_numpy(out), torch.from_numpy(y).float(), torch.from_numpy(valid))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_balanced_class_weights_count_only_valid_training_rows():
    codes = np.array([0, 0, 0, 1, 1, 2, 1, 0], dtype=np.float64)
    valid = np.array([True, True, True, True, False, False, True, True])  # valid: four 0s, two 1s, no 2
    w = balanced_class_weights(codes, valid, 3)
    # sklearn 'balanced': n_samples / (n_present_classes * count): 6 / (2 * 4) and 6 / (2 * 2); an absent class 1
    np.testing.assert_allclose(w, [6 / 8, 6 / 4, 1.0])
    specs = specs_for({"name": "kind", "type": "classification", "classes": KINDS},
                      {"name": "tempo", "type": "regression"})
    y = np.column_stack([codes, np.arange(8.0)])
    loss_fn = make_task_loss(specs, y, np.column_stack([valid, valid]))
    np.testing.assert_allclose(loss_fn.class_weights["kind"].numpy(), [6 / 8, 6 / 4, 1.0], rtol=1e-6)
    assert loss_fn.class_weights["tempo"] is None
