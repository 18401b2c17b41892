"""Random-forest baseline as a torch module: pooled features → the fitted trees, stored as plain tensors.

Why tensors and not a pickled (or skops-serialized) scikit-learn object: the fitted trees are just arrays
(split feature, threshold, children, leaf class distribution), so they go into the same ``model.safetensors``
as every other model. Loading runs no code from the file, does not depend on scikit-learn's private
``Tree`` layout or version, and the forest runs through the same Classifier / ``predict_logits`` path as the
neural nets, so evaluate and predict need no special case. :func:`fretlab.train.baselines.fit_forest` fits it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

LEAF = -1  # scikit-learn's marker for "no child"


def pooled_features(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, mels, frames)`` → ``(B, 2*C*mels)``: the mean and (population) std of each band over time.

    The one pooling used both to fit the forest and at inference, so the two see identical float32 values.
    """
    x = x.float()
    return torch.cat([x.mean(dim=-1).flatten(1), x.std(dim=-1, correction=0).flatten(1)], dim=1)


class ForestNet(nn.Module):
    """A fitted random forest whose trees live in buffers; returns log class probabilities.

    All trees are concatenated into flat node arrays; ``roots`` holds each tree's first node and the children
    indices are global. ``softmax`` of the output gives back the forest's averaged leaf distributions.
    """

    def __init__(self, n_classes: int, regression: bool = False) -> None:
        super().__init__()
        self.n_classes = n_classes  # regression: the number of outputs
        self.regression = regression
        self.register_buffer("roots", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("feature", torch.zeros(0, dtype=torch.int64))
        # float64, as in scikit-learn: thresholds sit between two float32 values and must compare exactly
        self.register_buffer("threshold", torch.zeros(0, dtype=torch.float64))
        self.register_buffer("children_left", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("children_right", torch.zeros(0, dtype=torch.int64))
        self.register_buffer("value", torch.zeros(0, n_classes, dtype=torch.float64))

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    def load_forest(self, forest: Any) -> ForestNet:
        """Copy the trees of a fitted ``RandomForestClassifier`` (labels ``0..n_classes-1``) into the buffers."""
        # a class absent from training gets no column; a regressor's outputs are all present
        classes = np.arange(self.n_classes) if self.regression else np.asarray(forest.classes_, dtype=np.int64)
        if classes.min() < 0 or classes.max() >= self.n_classes:
            raise ValueError(f"forest classes {classes.tolist()} do not fit {self.n_classes} classes")
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("feature", "threshold", "left", "right", "value")}
        roots, offset = [], 0
        for est in forest.estimators_:
            tree = est.tree_
            roots.append(offset)
            parts["feature"].append(tree.feature.astype(np.int64))
            parts["threshold"].append(tree.threshold.astype(np.float64))
            for key, child in (("left", tree.children_left), ("right", tree.children_right)):
                child = child.astype(np.int64)
                parts[key].append(np.where(child == LEAF, LEAF, child + offset))
            if self.regression:  # a regressor's leaves hold each output's mean: (nodes, outputs, 1)
                parts["value"].append(tree.value[:, :, 0].astype(np.float64).reshape(tree.node_count, -1))
            else:
                value = tree.value[:, 0, :].astype(np.float64)  # (nodes, classes seen in training)
                total = value.sum(axis=1, keepdims=True)
                full = np.zeros((tree.node_count, self.n_classes))
                full[:, classes] = value / np.where(total == 0, 1.0, total)
                parts["value"].append(full)
            offset += tree.node_count
        self.roots = torch.tensor(roots, dtype=torch.int64)
        self.feature = torch.from_numpy(np.concatenate(parts["feature"]))
        self.threshold = torch.from_numpy(np.concatenate(parts["threshold"]))
        self.children_left = torch.from_numpy(np.concatenate(parts["left"]))
        self.children_right = torch.from_numpy(np.concatenate(parts["right"]))
        self.value = torch.from_numpy(np.concatenate(parts["value"]))
        return self

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # The forest's size comes from the weights file, not from params: take each buffer's shape from it.
        for name, buf in self._buffers.items():
            key = prefix + name
            if buf is not None and key in state_dict:
                self._buffers[name] = torch.empty_like(state_dict[key], device=buf.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def predict_proba(self, feats: torch.Tensor) -> torch.Tensor:
        """Mean over trees of each tree's leaf class distribution, ``(B, n_classes)`` float64."""
        if self.n_trees == 0:
            raise RuntimeError("ForestNet holds no trees: fit it with fretlab.train.baselines.fit_forest "
                               "or load a model dir")
        node = self.roots.expand(len(feats), -1).clone()  # (B, trees): every tree walked in parallel
        while True:
            left = self.children_left[node]
            leaf = left == LEAF
            if bool(leaf.all()):
                break
            split = feats.gather(1, self.feature[node].clamp_min(0)).double() <= self.threshold[node]
            node = torch.where(leaf, node, torch.where(split, left, self.children_right[node]))
        return self.value[node].mean(dim=1)

    def from_pooled(self, feats: torch.Tensor) -> torch.Tensor:
        """Log class probabilities (classification) or the mean leaf values (regression), float32."""
        with torch.autocast(feats.device.type, enabled=False):  # thresholds compare exact float32 features
            out = self.predict_proba(feats)
        return out.float() if self.regression else out.clamp_min(1e-12).log().float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_pooled(pooled_features(x))


def masked_pooled_features(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``(B, T, D)`` sequences → ``(B, 2*D)``: each dimension's mean and (population) std over the valid steps."""
    x = x.float()
    valid = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]).unsqueeze(-1)
    n = lengths.to(x.device, torch.float32)[:, None]
    mean = (x * valid).sum(dim=1) / n
    var = (((x - mean[:, None]) * valid) ** 2).sum(dim=1) / n
    return torch.cat([mean, var.sqrt()], dim=1)


class ForestHeads(nn.Module):
    """One forest per classification target, and one multi-output regression forest for all regression
    targets (or, with ``per_target``, one per regression target), assembled into the task's output vector
    (log probabilities and standardized values).

    ``layout`` lists ``(name, kind, start, size)`` per target, in output order.
    """

    REGRESSION = "regression"

    def __init__(self, layout: list[tuple[str, str, int, int]], per_target: bool = False) -> None:
        super().__init__()
        self.layout = layout
        self.per_target = per_target
        n_reg = sum(size for _, kind, _, size in layout if kind == "regression")
        forests = {name: ForestNet(size, regression=kind == "regression") for name, kind, _, size in layout
                   if kind == "classification" or per_target}
        if n_reg and not per_target:
            forests[self.REGRESSION] = ForestNet(n_reg, regression=True)
        self.forests = nn.ModuleDict(forests)
        self.n_outputs = sum(size for *_, size in layout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        feats = pooled_features(x) if lengths is None else masked_pooled_features(x, lengths)
        return self.from_pooled(feats)

    def from_pooled(self, feats: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(len(feats), self.n_outputs, device=feats.device)
        reg = self.forests[self.REGRESSION].from_pooled(feats) if self.REGRESSION in self.forests else None
        col = 0
        for name, kind, start, size in self.layout:
            if kind == "classification" or self.per_target:  # a target with its own forest
                out[:, start : start + size] = self.forests[name].from_pooled(feats)
            else:
                out[:, start : start + size] = reg[:, col : col + size]
                col += size
        return out
