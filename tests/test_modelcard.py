"""The model card written next to the model by the train stage."""

from __future__ import annotations

import pandas as pd
from torch import nn

from fretlab.artifacts.modelcard import CARD, write_model_card
from fretlab.params import parse_params

CLASSES = ["general_note", "harmonic", "dead_note"]


def _split_csv(tmp_path):
    rows = ([("train", "general_note", "g1")] * 5 + [("train", "harmonic", "g2")] * 2 + [("train", "dead_note", "g2")]
            + [("val", "general_note", "g3"), ("val", "harmonic", "g3"), ("val", "dead_note", "g4")]
            + [("test", "general_note", "g5"), ("test", "harmonic", "g5"), ("test", "dead_note", "g5")])
    meta = pd.DataFrame(rows, columns=["split", "label_category", "group"])
    path = tmp_path / "metadata.csv"
    meta.to_csv(path, index=False)
    return path


def test_card_states_data_counts_params_metrics_and_limits(tmp_path):
    params = parse_params({"data": {"source": "csv", "root": "data/raw/my_guitar"}, "train": {"lr": 0.0005}})
    model = nn.Linear(4, 3)  # 15 trainable parameters
    path = write_model_card(tmp_path / "model", params, CLASSES,
                            {"best_epoch": 7, "best_val_macro_f1": 0.8125, "epochs_run": 12},
                            _split_csv(tmp_path), model)
    assert path == tmp_path / "model" / CARD
    text = path.read_text()
    assert "Source: `csv`, root `data/raw/my_guitar`, metadata `metadata.csv`" in text
    assert "| split | events | general_note | harmonic | dead_note | groups |" in text
    assert "| train | 8 | 5 | 2 | 1 | 2 |" in text
    assert "| val | 3 | 1 | 1 | 1 | 2 |" in text
    assert "| **all** | 14 | 7 | 4 | 3 | 5 |" in text
    assert "(15 trainable parameters)" in text
    assert "AdamW lr 0.0005" in text
    assert "| best_val_macro_f1 | 0.8125 |" in text and "| best_epoch | 7 |" in text
    assert "## Intended use" in text and "## Limits" in text
    assert "synthetic notes only" not in text


def test_synthetic_models_carry_the_synthetic_only_warning(tmp_path):
    text = write_model_card(tmp_path, parse_params({}), CLASSES, {"best_val_macro_f1": 0.5}, None,
                            nn.Linear(2, 2)).read_text()
    assert "**Trained on synthetic notes only**" in text
    assert "| split |" not in text  # no split metadata given: no table, no crash
