"""What early stopping and the plateau scheduler watch, and the per-epoch validation record."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from fretlab.tasks.losses import TaskLoss
from fretlab.tasks.metrics import macro_f1
from fretlab.tasks.targets import TargetSpec


@dataclass(frozen=True)
class Monitor:
    """The validation figure that picks the best epoch: ``macro_f1`` (higher is better) or ``loss`` (lower)."""

    name: str
    mode: str

    @property
    def initial(self) -> float:
        return -1.0 if self.mode == "max" else math.inf

    def better(self, value: float, best: float) -> bool:
        return value > best if self.mode == "max" else value < best


def is_single_label(specs: list[TargetSpec]) -> bool:
    """One classification target, plus only its own one-vs-rest heads."""
    return specs[0].is_classification and all(s.positive is not None for s in specs[1:])


def monitor_for(specs: list[TargetSpec]) -> Monitor:
    """Single-label tasks watch the label's validation macro-F1; every other task its validation loss."""
    return Monitor("macro_f1", "max") if is_single_label(specs) else Monitor("loss", "min")


def validation_record(specs: list[TargetSpec], loss_fn: TaskLoss, out: torch.Tensor, y: np.ndarray,
                      valid: np.ndarray) -> dict[str, float]:
    """``val/loss``; the label's macro-F1 and accuracy for single-label tasks; with several targets, one
    figure per target (macro-F1, or MSE in the loss's (standardized) scale)."""
    y_t, valid_t = torch.from_numpy(y), torch.from_numpy(valid)
    record = {"val/loss": float(loss_fn(out, y_t, valid_t))}
    if is_single_label(specs):
        label = specs[0]
        codes = y[:, 0].astype(np.int64)
        pred = label.slice(out).argmax(1).numpy()
        record["val/macro_f1"] = macro_f1(codes, pred, label.size)
        record["val/accuracy"] = float((pred == codes).mean())
    if len(specs) > 1:
        for j, spec in enumerate(specs):
            mask = valid[:, j]
            pred = spec.slice(out)[torch.from_numpy(mask)]
            if spec.is_classification:
                value = macro_f1(y[mask, j].astype(np.int64), pred.argmax(1).numpy(), spec.size) if mask.any() else 0.0
                record[f"val/{spec.name}/macro_f1"] = value
            else:
                err = pred[:, 0].double().numpy() - y[mask, j]
                record[f"val/{spec.name}/mse"] = float(np.mean(err**2)) if mask.any() else float("nan")
    return record
