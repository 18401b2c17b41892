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

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.n_classes = n_classes
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
        classes = np.asarray(forest.classes_, dtype=np.int64)  # a class absent from training gets no column
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):  # thresholds compare exact float32 features
            proba = self.predict_proba(pooled_features(x))
        return proba.clamp_min(1e-12).log().float()
