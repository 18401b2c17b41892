"""Our metrics agree with scikit-learn's definitions."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, precision_score

from fretlab.tasks.metrics import classification_metrics, confusion, macro_f1

CLASSES = ["general_note", "harmonic", "dead_note"]


@pytest.fixture
def predictions():
    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 3, 200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 3, 200))
    return y_true, y_pred


def test_summary_metrics_match_sklearn(predictions):
    y_true, y_pred = predictions
    m = classification_metrics(y_true, y_pred, CLASSES)
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    per_f1 = f1_score(y_true, y_pred, average=None)
    per_p = precision_score(y_true, y_pred, average=None)
    for i, name in enumerate(CLASSES):
        assert m["per_class"][name]["f1"] == pytest.approx(per_f1[i])
        assert m["per_class"][name]["precision"] == pytest.approx(per_p[i])
        assert m["per_class"][name]["support"] == int((y_true == i).sum())


def test_absent_class_counts_as_zero_in_macro_f1():
    y = np.array([0, 0, 1, 1])
    assert macro_f1(y, y, 3) == pytest.approx(2 / 3)


def test_confusion_rows_are_true_classes(predictions):
    y_true, y_pred = predictions
    np.testing.assert_array_equal(confusion(y_true, y_pred, 3), confusion_matrix(y_true, y_pred))
    norm = confusion(y_true, y_pred, 3, normalize=True)
    np.testing.assert_allclose(norm.sum(axis=1), 1.0)
