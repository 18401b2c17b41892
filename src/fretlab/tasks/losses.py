"""Masked multi-target loss: each target's loss over the rows that hold a value, weighted and summed."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch import nn
from torch.nn import functional as F

from fretlab.tasks.targets import TargetSpec


def balanced_class_weights(codes: np.ndarray, valid: np.ndarray, n_classes: int) -> np.ndarray:
    """scikit-learn's 'balanced' weights for the classes present; 1 for a class absent from training."""
    w = np.ones(n_classes)
    labels = codes[valid].astype(np.int64)
    present = np.unique(labels)
    if len(present):
        w[present] = compute_class_weight("balanced", classes=present, y=labels)
    return w


class TaskLoss(nn.Module):
    """Sum over targets of ``weight * loss``, each loss a mean over that target's valid rows.

    A target with no valid row in the batch contributes exactly zero (no NaN from an empty mean).
    """

    def __init__(self, specs: list[TargetSpec], class_weights: dict[str, torch.Tensor | None]) -> None:
        super().__init__()
        self.specs = specs
        self.class_weights = class_weights

    def to_device(self, device: torch.device) -> TaskLoss:
        """A copy whose class weights live on ``device``."""
        moved = {k: None if w is None else w.to(device) for k, w in self.class_weights.items()}
        return TaskLoss(self.specs, moved)

    def per_target(self, out: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> list[torch.Tensor]:
        """One scalar loss per target (zero where the batch holds no value for it)."""
        losses = []
        for j, spec in enumerate(self.specs):
            pred, target, mask = spec.slice(out), y[:, j], valid[:, j]
            if not bool(mask.all()):  # index only when something is missing: the full batch stays one tensor op
                if not bool(mask.any()):
                    losses.append(pred.sum() * 0.0)  # keeps the graph and the device, contributes nothing
                    continue
                pred, target = pred[mask], target[mask]
            losses.append(self._loss(spec, pred, target))
        return losses

    def _loss(self, spec: TargetSpec, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if spec.loss == "cross_entropy":
            return F.cross_entropy(pred, target.long(), weight=self.class_weights.get(spec.name))
        pred = pred[:, 0]
        target = target.to(pred.dtype)
        if spec.loss == "huber":
            return F.huber_loss(pred, target, delta=spec.huber_delta)
        return F.mse_loss(pred, target)

    def forward(self, out: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        terms = [spec.weight * loss if spec.weight != 1.0 else loss
                 for spec, loss in zip(self.specs, self.per_target(out, y, valid), strict=True)]
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total


def make_task_loss(specs: list[TargetSpec], y: np.ndarray, valid: np.ndarray) -> TaskLoss:
    """The training loss, with balanced class weights from the training rows where a target asks for them."""
    weights: dict[str, torch.Tensor | None] = {}
    for j, spec in enumerate(specs):
        weights[spec.name] = None
        if spec.is_classification and spec.class_weights:
            w = balanced_class_weights(y[:, j], valid[:, j], spec.size)
            weights[spec.name] = torch.tensor(w, dtype=torch.float32)
    return TaskLoss(specs, weights)
