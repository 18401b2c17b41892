"""The task layer: what a model predicts, as a declared list of targets.

Every model emits one flat output vector per example; each target owns a slice of it (``n_classes``
logits for a classification target, one value for a regression target). Targets are read from the
feature cache's index table (``<split>.csv``), encoded once into a float matrix with a validity mask,
so a missing cell (an empty CSV field) is masked out of that target's loss and metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from fretlab.params import Params, Target

MAX_LISTED = 5


class TargetError(ValueError):
    """A target value that cannot be used (unknown class, NaN, inf, text in a regression column)."""


@dataclass(frozen=True)
class TargetSpec:
    """One resolved target: its column, kind, classes, loss and where its outputs sit in the model's vector."""

    name: str
    column: str
    kind: str  # "classification" | "regression"
    classes: tuple[str, ...]
    loss: str  # "cross_entropy" | "mse" | "huber"
    huber_delta: float
    weight: float
    class_weights: bool
    positive: str | None  # one-vs-rest: the class that is "positive"; every other label is the rest
    start: int  # first output index
    size: int  # outputs owned: n_classes, or 1
    value_range: tuple[float, float] | None = None  # regression: the values a cell may hold

    @property
    def is_classification(self) -> bool:
        return self.kind == "classification"

    def slice(self, out: torch.Tensor) -> torch.Tensor:
        """This target's columns of a ``(B, n_outputs)`` model output."""
        return out[:, self.start : self.start + self.size]


def resolve_targets(params: Params) -> list[TargetSpec]:
    """The targets of ``params.task`` in output order.

    ``task.targets: null`` (and no ``task.preset``) is the single-label case: one classification target
    over ``data.classes`` read from ``label_category``; ``task.one_vs_rest`` adds one binary head per
    named class.
    """
    task = params.task
    declared = task.selected
    if declared is None:
        declared = [Target(name="label", type="classification", column="label_category",
                           classes=list(params.data.classes))]
    specs: list[TargetSpec] = []
    start = 0
    for t in declared:
        kind = "regression" if task.all_regression else t.type
        classes: tuple[str, ...] = tuple(t.classes or ()) if kind == "classification" else ()
        loss = t.loss or ("cross_entropy" if kind == "classification" else "mse")
        size = len(classes) if kind == "classification" else 1
        specs.append(TargetSpec(t.name, t.column or t.name, kind, classes, loss, t.huber_delta, t.weight,
                                params.train.class_weights if t.class_weights is None else t.class_weights,
                                None, start, size, t.range if kind == "regression" else None))
        start += size
    label = next((s for s in specs if s.is_classification), None)
    for positive in task.one_vs_rest:
        if label is None or positive not in label.classes:
            raise TargetError(f"task.one_vs_rest names '{positive}', which is not a class of the first "
                              f"classification target ({[] if label is None else list(label.classes)})")
        specs.append(TargetSpec(f"{positive}_vs_rest", label.column, "classification", ("rest", positive),
                                "cross_entropy", 1.0, task.one_vs_rest_weight, label.class_weights, positive,
                                start, 2))
        start += 2
    return specs


def label_classes(specs: list[TargetSpec]) -> list[str]:
    """The first classification target's classes (what ``fretlab predict`` reports), or none."""
    return next((list(s.classes) for s in specs if s.is_classification), [])


def n_outputs(specs: list[TargetSpec]) -> int:
    """Length of the model's output vector."""
    return sum(s.size for s in specs)


def _lines(rows: np.ndarray) -> str:
    listed = ", ".join(str(int(r) + 2) for r in rows[:MAX_LISTED])  # CSV line numbers: the header is line 1
    return listed + (f" and {len(rows) - MAX_LISTED} more" if len(rows) > MAX_LISTED else "")


def _class_key(value: object) -> str:
    """A cell as a class name: integral numbers lose their ``.0`` (key 3, 3.0 and "3.0" are one class)."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def encode_targets(index: pd.DataFrame, specs: list[TargetSpec], source: str) -> tuple[np.ndarray, np.ndarray]:
    """``(values, valid)``, both ``(N, n_targets)``: class codes or raw regression values, and the mask.

    An empty cell is missing (masked). A class outside the target's classes, or a regression value that
    is not a finite number, stops with the file, line and column.
    """
    values = np.zeros((len(index), len(specs)), dtype=np.float64)
    valid = np.zeros((len(index), len(specs)), dtype=bool)
    for j, spec in enumerate(specs):
        if spec.column not in index.columns:
            raise TargetError(f"{source}: no column '{spec.column}' for target '{spec.name}'; columns are "
                              f"{list(index.columns)} (fix task.targets or the metadata)")
        raw = index[spec.column]
        text = raw.astype(str).str.strip()
        present = ~(raw.isna() | text.eq(""))  # only an empty cell is missing: "NaN" or "inf" text is an error
        if spec.is_classification:
            keys = raw.map(_class_key)
            if spec.positive is not None:
                keys = keys.where(keys == spec.positive, "rest")
            codes = keys.map({c: i for i, c in enumerate(spec.classes)})
            bad = np.flatnonzero(present.to_numpy() & codes.isna().to_numpy())
            if len(bad):
                found = sorted(set(keys.iloc[bad]))[:MAX_LISTED]
                raise TargetError(f"{source}: unknown class(es) {found} in column '{spec.column}' on line(s) "
                                  f"{_lines(bad)}; target '{spec.name}' allows {list(spec.classes)}")
            values[:, j] = codes.fillna(0).to_numpy(dtype=np.float64)
        else:
            numbers = pd.to_numeric(raw.where(present), errors="coerce")
            bad = np.flatnonzero(present.to_numpy() & ~np.isfinite(numbers.to_numpy(dtype=np.float64)))
            if len(bad):
                raise TargetError(f"{source}: column '{spec.column}' line(s) {_lines(bad)}: "
                                  f"{raw.iloc[bad[0]]!r} is not a finite number; regression target "
                                  f"'{spec.name}' needs numbers (leave the cell empty for a missing value)")
            if spec.value_range is not None:
                low, high = spec.value_range
                bad = np.flatnonzero(present.to_numpy() & ~numbers.between(low, high).to_numpy())
                if len(bad):
                    raise TargetError(f"{source}: column '{spec.column}' line(s) {_lines(bad)}: "
                                      f"{raw.iloc[bad[0]]!r} is outside [{low:g}, {high:g}], the range of "
                                      f"target '{spec.name}' (fix the value, or task.targets' range)")
            values[:, j] = numbers.fillna(0.0).to_numpy(dtype=np.float64)
        valid[:, j] = present.to_numpy()
    return values, valid


@dataclass(frozen=True)
class Standardizer:
    """Per-regression-target mean and std, fitted on the training rows that hold a value."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray, valid: np.ndarray, specs: list[TargetSpec], enabled: bool) -> Standardizer:
        """Train-only statistics; identity (0, 1) for classification targets or when ``enabled`` is false."""
        mean = np.zeros(len(specs))
        std = np.ones(len(specs))
        for j, spec in enumerate(specs):
            col = values[valid[:, j], j]
            if enabled and not spec.is_classification and len(col):
                mean[j] = col.mean()
                sd = col.std()
                std[j] = sd if sd > 0 and math.isfinite(sd) else 1.0
        return cls(mean, std)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.std

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.std + self.mean
