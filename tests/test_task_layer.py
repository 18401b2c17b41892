"""The task layer: declared targets, their encoding from CSV (with masks and located errors), regression-target
standardization, per-target metrics, the unchanged single-label default, and params validation."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error, r2_score

from fretlab.artifacts.modeldir import WEIGHTS, dump_params, load_task_model, save_model_dir
from fretlab.cache.reader import read_index
from fretlab.data.sources import load_source
from fretlab.io import read_json
from fretlab.models.classifier import build_task_model
from fretlab.params import Params, ParamsError, parse_params
from fretlab.tasks.evaluation import evaluate_targets
from fretlab.tasks.metrics import regression_metrics
from fretlab.tasks.targets import Standardizer, TargetError, encode_targets, resolve_targets

GUITAR = ["general_note", "harmonic", "dead_note"]
TARGETS = [
    {"name": "mood", "type": "classification", "classes": ["calm", "tense", "wild"]},
    {"name": "tempo", "type": "regression", "column": "bpm"},
    {"name": "energy", "type": "regression", "loss": "huber"},
]


def task_params(targets=TARGETS, **sections: object) -> Params:
    return parse_params({"task": {"targets": targets}, **sections})


def index_csv(tmp_path: Path, columns: dict[str, list[str]]) -> tuple[pd.DataFrame, str]:
    """Write a cache index CSV and read it back as the train stage does; returns ``(index, path)``."""
    path = tmp_path / "train.csv"
    pd.DataFrame(columns).to_csv(path, index=False)
    return read_index(tmp_path, "train"), str(path)


# --- encoding targets from CSV ------------------------------------------------------------------------------------


def track_columns(**overrides: list[str]) -> dict[str, list[str]]:
    cols = {"track_id": ["t1", "t2", "t3", "t4"], "mood": ["calm", "wild", "", "tense"],
            "bpm": ["120", "96.5", "141", ""], "energy": ["0.5", "", "-1e-3", "0.25"]}
    return {**cols, **overrides}


def test_encoding_gives_codes_values_and_a_mask_for_empty_cells(tmp_path):
    index, path = index_csv(tmp_path, track_columns())
    values, valid = encode_targets(index, resolve_targets(task_params()), path)
    np.testing.assert_array_equal(valid, [[True, True, True], [True, True, False], [False, True, True],
                                          [True, False, True]])
    np.testing.assert_array_equal(values[valid[:, 0], 0], [0, 2, 1])
    np.testing.assert_allclose(values[valid[:, 1], 1], [120, 96.5, 141])
    np.testing.assert_allclose(values[valid[:, 2], 2], [0.5, -1e-3, 0.25])
    assert np.isfinite(values).all()  # masked cells hold a number, never NaN


@pytest.mark.parametrize("bad", ["NaN", "inf", "-inf", "fast"])
@pytest.mark.parametrize("row", [0, 2])
def test_a_non_finite_or_text_regression_cell_names_file_line_and_column(tmp_path, bad, row):
    bpm = ["120", "96.5", "141", "88"]
    bpm[row] = bad
    index, path = index_csv(tmp_path, track_columns(bpm=bpm))
    with pytest.raises(TargetError) as err:
        encode_targets(index, resolve_targets(task_params()), path)
    message = str(err.value)
    assert message.startswith(path), message
    assert f"column 'bpm' line(s) {row + 2}:" in message, message  # the header is line 1
    assert repr(bad) in message and "'tempo'" in message, message


def test_an_unknown_class_names_the_allowed_classes(tmp_path):
    index, path = index_csv(tmp_path, track_columns(mood=["calm", "furious", "", "tense"]))
    with pytest.raises(TargetError, match=re.escape(f"{path}: unknown class(es) ['furious'] in column 'mood' on "
                                                    "line(s) 3; target 'mood' allows ['calm', 'tense', 'wild']")):
        encode_targets(index, resolve_targets(task_params()), path)


def test_a_missing_target_column_is_named(tmp_path):
    columns = track_columns()
    del columns["energy"]
    index, path = index_csv(tmp_path, columns)
    with pytest.raises(TargetError, match=r"no column 'energy' for target 'energy'"):
        encode_targets(index, resolve_targets(task_params()), path)


@pytest.fixture
def track_dataset(tmp_path):
    """Three WAVs under data.root and the params of a csv track source with a regression target."""
    root = tmp_path / "tracks"
    (root / "audio").mkdir(parents=True)
    for name in ("a", "b", "c"):
        sf.write(root / "audio" / f"{name}.wav", np.zeros(2205, np.float32), 22050)
    params = parse_params({
        "data": {"source": "csv", "root": str(root), "metadata": "tracks.csv"},
        "featurize": {"kind": "tracks"},
        "task": {"targets": [{"name": "tempo", "type": "regression"}]},
    })
    rows = pd.DataFrame({"track_id": ["a", "b", "c"], "audio_path": ["audio/a.wav", "audio/b.wav", "audio/c.wav"],
                         "group": ["g1", "g1", "g2"], "tempo": ["120", "", "90"]})
    return root, params, rows


def test_the_split_stage_source_accepts_empty_cells_and_locates_a_bad_one(track_dataset):
    root, params, rows = track_dataset
    rows.to_csv(root / "tracks.csv", index=False)
    assert load_source(params)["track_id"].tolist() == ["a", "b", "c"]  # the empty tempo cell is only missing
    rows.loc[2, "tempo"] = "fast"
    rows.to_csv(root / "tracks.csv", index=False)
    with pytest.raises(TargetError) as err:
        load_source(params)
    message = str(err.value)
    assert message.startswith(f"{root / 'tracks.csv'}: ") and "column 'tempo' line(s) 4:" in message, message
    assert "'fast' is not a finite number" in message, message


# --- standardization ----------------------------------------------------------------------------------------------


@pytest.fixture
def train_targets() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    values = np.column_stack([rng.integers(0, 3, 12), rng.normal(120, 15, 12), rng.normal(0.4, 0.1, 12)])
    valid = rng.random((12, 3)) > 0.25
    valid[:2] = True
    values[~valid] = 1e6  # an invalid cell's value must not reach the statistics
    return values, valid


def test_standardizer_uses_only_valid_train_cells(train_targets):
    values, valid = train_targets
    specs = resolve_targets(task_params())
    scaler = Standardizer.fit(values, valid, specs, enabled=True)
    for j in (1, 2):
        col = values[valid[:, j], j]
        assert scaler.mean[j] == pytest.approx(np.mean(col))
        assert scaler.std[j] == pytest.approx(np.std(col))  # population std
    assert (scaler.mean[0], scaler.std[0]) == (0.0, 1.0)  # the classification column is left alone
    z = scaler.transform(values)
    np.testing.assert_array_equal(z[:, 0], values[:, 0])  # class codes stay codes
    np.testing.assert_allclose(z[valid[:, 1], 1].mean(), 0, atol=1e-12)
    np.testing.assert_allclose(z[valid[:, 1], 1].std(), 1)
    np.testing.assert_allclose(scaler.inverse(z), values, rtol=1e-12)
    off = Standardizer.fit(values, valid, specs, enabled=False)
    np.testing.assert_array_equal(off.mean, 0)
    np.testing.assert_array_equal(off.std, 1)
    np.testing.assert_array_equal(off.transform(values), values)


def test_standardizer_leaves_constant_or_empty_columns_at_unit_scale():
    specs = resolve_targets(task_params())
    values = np.column_stack([np.zeros(4), np.full(4, 7.0), np.arange(4.0)])
    valid = np.column_stack([np.ones(4, bool), np.ones(4, bool), np.zeros(4, bool)])
    scaler = Standardizer.fit(values, valid, specs, enabled=True)
    np.testing.assert_array_equal(scaler.mean, [0, 7, 0])
    np.testing.assert_array_equal(scaler.std, [1, 1, 1])
    assert np.isfinite(scaler.transform(values)).all()


def test_the_scaler_survives_the_model_directory(tmp_path, train_targets):
    params = task_params(featurize={"kind": "tracks"}, model={"name": "gru", "gru": {"hidden": 4, "head_hidden": 0}})
    specs = resolve_targets(params)
    torch.manual_seed(0)
    model = build_task_model(params, specs, dims=5).eval()
    scaler = Standardizer.fit(*train_targets, specs, enabled=True)
    save_model_dir(tmp_path / "m", model, params, ["calm", "tense", "wild"], {}, scaler)
    loaded = load_task_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.scaler.mean, scaler.mean)
    np.testing.assert_array_equal(loaded.scaler.std, scaler.std)
    assert loaded.specs == specs and loaded.params == params and loaded.classes == ["calm", "tense", "wild"]
    x = torch.randn(2, 7, 5)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x, torch.tensor([7, 3])), model(x, torch.tensor([7, 3])))
    # an identity scaler writes nothing extra, and loads back as the identity
    save_model_dir(tmp_path / "plain", model, params, [], {}, Standardizer(np.zeros(3), np.ones(3)))
    assert not any(k.startswith("target_scaler") for k in load_file(str(tmp_path / "plain" / WEIGHTS)))
    plain = load_task_model(tmp_path / "plain")
    np.testing.assert_array_equal(plain.scaler.mean, 0)
    np.testing.assert_array_equal(plain.scaler.std, 1)


# --- metrics ------------------------------------------------------------------------------------------------------


def test_regression_metrics_match_scikit_learn():
    rng = np.random.default_rng(11)
    true = rng.normal(size=50)
    pred = true + rng.normal(scale=0.4, size=50)
    m = regression_metrics(true, pred)
    assert m["mse"] == pytest.approx(mean_squared_error(true, pred))
    assert m["rmse"] == pytest.approx(math.sqrt(mean_squared_error(true, pred)))
    assert m["mae"] == pytest.approx(mean_absolute_error(true, pred))
    assert m["r2"] == pytest.approx(r2_score(true, pred))
    assert m["n"] == 50
    one = regression_metrics(true[:1], pred[:1])
    assert one["mse"] == pytest.approx((true[0] - pred[0]) ** 2) and math.isnan(one["r2"])
    empty = regression_metrics(true[:0], pred[:0])
    assert empty["n"] == 0 and all(math.isnan(empty[k]) for k in ("mse", "rmse", "mae", "r2"))


def test_evaluate_targets_scores_each_target_on_its_valid_rows(tmp_path):
    specs = resolve_targets(task_params())
    rng = np.random.default_rng(2)
    n = 30
    codes = np.arange(n) % 3
    tempo, energy = rng.normal(120, 20, n), rng.normal(0.5, 0.2, n)
    y = np.column_stack([codes, tempo, energy]).astype(np.float64)
    valid = rng.random((n, 3)) > 0.2
    scaler = Standardizer(np.array([0.0, 118.0, 0.45]), np.array([1.0, 22.0, 0.18]))  # the model's output scale
    report = Standardizer(np.array([0.0, 121.0, 0.5]), np.array([1.0, 19.0, 0.21]))  # the train split's
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), codes] += np.where(rng.random(n) < 0.6, 3.0, 0.0)  # mostly right
    tempo_pred = tempo + rng.normal(0, 8, n)
    energy_pred = energy + rng.normal(0, 0.1, n)
    out = np.column_stack([logits, (tempo_pred - 118.0) / 22.0, (energy_pred - 0.45) / 0.18])
    ids = [f"t{i:02d}" for i in range(n)]
    metrics = evaluate_targets("val", torch.tensor(out, dtype=torch.float64), y, valid, ids, specs, scaler, report,
                               tmp_path / "metrics", tmp_path / "plots")

    rows = valid[:, 0]
    pred = logits[rows].argmax(1)
    assert metrics["mood"]["accuracy"] == pytest.approx(accuracy_score(codes[rows], pred))
    assert metrics["mood"]["macro_f1"] == pytest.approx(f1_score(codes[rows], pred, average="macro", labels=[0, 1, 2]))
    assert metrics["mood"]["n"] == rows.sum()
    raw, standardized = {}, {}
    for j, (name, p) in enumerate((("tempo", tempo_pred), ("energy", energy_pred)), start=1):
        rows = valid[:, j]
        raw[name] = mean_squared_error(y[rows, j], p[rows])
        standardized[name] = raw[name] / report.std[j] ** 2
        assert metrics[name]["mse"] == pytest.approx(raw[name])
        assert metrics[name]["r2"] == pytest.approx(r2_score(y[rows, j], p[rows]))
        assert metrics[name]["standardized"]["mse"] == pytest.approx(standardized[name])
        assert metrics[name]["standardized"]["mae"] == pytest.approx(
            mean_absolute_error(y[rows, j], p[rows]) / report.std[j])
        assert metrics[name]["n"] == rows.sum()
    agg = metrics["aggregate"]
    assert agg["mse"] == pytest.approx(np.mean(list(raw.values())))
    assert agg["mse_standardized"] == pytest.approx(np.mean(list(standardized.values())))
    assert sum(agg["raw_mse_share"].values()) == pytest.approx(1.0)
    assert agg["raw_mse_share"]["tempo"] == pytest.approx(raw["tempo"] / (raw["tempo"] + raw["energy"]))

    saved = read_json(tmp_path / "metrics" / "val.json")
    assert sorted(saved) == ["aggregate", "energy", "mood", "tempo"]
    assert saved["aggregate"]["mse_standardized"] == pytest.approx(agg["mse_standardized"])
    assert saved["tempo"]["standardized"]["mse"] == pytest.approx(standardized["tempo"])
    table = pd.read_csv(tmp_path / "plots" / "targets" / "val.csv")
    assert table["target"].tolist() == ["tempo", "energy"]
    np.testing.assert_allclose(table["mse"], [raw["tempo"], raw["energy"]])
    scatter = pd.read_csv(tmp_path / "plots" / "scatter" / "val.csv")
    assert len(scatter) == valid[:, 1].sum() + valid[:, 2].sum()
    kept = scatter[scatter["target"] == "tempo"]
    assert kept["id"].tolist() == [i for i, v in zip(ids, valid[:, 1], strict=True) if v]
    np.testing.assert_allclose(kept["predicted"], tempo_pred[valid[:, 1]])
    confusion = pd.read_csv(tmp_path / "plots" / "confusion" / "val.csv")
    assert len(confusion) == valid[:, 0].sum()
    for name in ("error_heatmap_val.png", "scatter_val.png", "confusion_val_normalized.png"):
        assert (tmp_path / "plots" / "figures" / name).read_bytes()[:4] == b"\x89PNG"


# --- the single-label default -------------------------------------------------------------------------------------


def test_the_default_task_is_one_label_over_data_classes(tmp_path):
    (spec,) = resolve_targets(Params())
    assert (spec.name, spec.column, spec.kind, spec.classes, spec.loss, spec.start, spec.size, spec.positive) == (
        "label", "label_category", "classification", tuple(GUITAR), "cross_entropy", 0, 3, None)
    labels = ["harmonic", "general_note", "dead_note", "general_note", "harmonic"]
    index, path = index_csv(tmp_path, {"note_id": [f"n{i}" for i in range(5)], "label_category": labels,
                                       "label": [str(GUITAR.index(c)) for c in labels]})
    values, valid = encode_targets(index, [spec], path)
    np.testing.assert_array_equal(values[:, 0], index["label"].astype(int))
    assert valid.all()


def test_one_vs_rest_adds_a_binary_head_on_the_label(tmp_path):
    specs = resolve_targets(parse_params({"task": {"one_vs_rest": ["harmonic"], "one_vs_rest_weight": 0.3}}))
    assert [s.name for s in specs] == ["label", "harmonic_vs_rest"]
    head = specs[1]
    assert (head.kind, head.classes, head.start, head.size, head.weight, head.column) == (
        "classification", ("rest", "harmonic"), 3, 2, 0.3, "label_category")
    labels = ["harmonic", "general_note", "dead_note", "harmonic", "general_note"]
    index, path = index_csv(tmp_path, {"note_id": list("abcde"), "label_category": labels})
    values, valid = encode_targets(index, specs, path)
    np.testing.assert_array_equal(values[:, 1], [1, 0, 0, 1, 0])
    np.testing.assert_array_equal(values[:, 0], [1, 0, 2, 1, 0])
    assert valid.all()
    with pytest.raises(TargetError, match=r"one_vs_rest names 'slap'.*\['general_note', 'harmonic', 'dead_note'\]"):
        resolve_targets(parse_params({"task": {"one_vs_rest": ["slap"]}}))


def test_default_params_dump_as_before_the_task_layer():
    dump = dump_params(Params())
    assert "task" not in dump and "synthesize_tracks" not in dump
    assert "kind" not in dump["featurize"] and "tracks" not in dump["featurize"]
    assert "layer_norm" not in dump["model"]["gru"]
    full = Params().model_dump(mode="json")
    for key in ("task", "synthesize_tracks", "synthesize_rudiments", "checkset", "synthesize_playlists",
                "playlist_split", "recommender", "recommender_baselines", "recommender_eval"):
        del full[key]
    del full["featurize"]["kind"], full["featurize"]["tracks"], full["model"]["gru"]["layer_norm"]
    del full["split"]["min_values"], full["split"]["val_where"], full["model"]["rf"]["per_target"]
    del full["predict"]["onset_n_fft"], full["predict"]["onset_n_mels"]
    del full["paths"]["checkset"], full["paths"]["checkset_report"], full["paths"]["model_card"]
    del full["model"]["gru"]["frame_stride"], full["train"]["augment"]["crop"]
    del full["train"]["augment"]["tilt_db"], full["train"]["augment"]["fade_in_ms"]
    del full["train"]["augment"]["gate_probability"], full["train"]["augment"]["gate_db"], full["train"]["ema_decay"]
    for key in ("harmonic_sustain_sec", "frets", "pitch_sampling", "palm_mute_sec", "palm_mute_decay_sec",
                "finger_rolloff", "pick_rolloff", "damping_power", "harmonic_touch_decay_sec", "slap_click_gain",
                "harmonic_rolloff", "palm_mute_brightness", "palm_mute_noise",
                "harmonic_pluck_position"):
        del full["synthesize"][key]
    del full["synthesize"]["effects"]["swell_probability"], full["synthesize"]["effects"]["swell_ms"]
    assert dump == full
    assert parse_params(dump) == Params()
    # the check set is evaluation only: whatever its params, the model directory's config stays the same
    assert dump_params(parse_params({"checkset": {"enabled": False, "pitch_step": 5}})) == dump


def test_params_away_from_the_defaults_are_dumped_and_load_back():
    params = task_params(featurize={"kind": "tracks"}, model={"gru": {"layer_norm": True}},
                         predict={"onset_n_fft": 2048})
    dump = dump_params(params)
    assert dump["predict"]["onset_n_fft"] == 2048 and "onset_n_mels" not in dump["predict"]
    assert dump["task"]["targets"][1]["column"] == "bpm"
    assert dump["featurize"]["kind"] == "tracks" and "tracks" not in dump["featurize"]  # tracks still at defaults
    assert dump["model"]["gru"]["layer_norm"] is True
    assert parse_params(dump) == params


# --- params validation --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("task", "message"), [
    ({"targets": [{"name": "x", "type": "regression"}, {"name": "x", "type": "regression"}]},
     "target names must be unique, got ['x'] more than once"),
    ({"targets": [{"name": "harmonic_vs_rest", "type": "regression"}], "one_vs_rest": ["harmonic"]},
     "target names must be unique, got ['harmonic_vs_rest']"),
    ({"targets": [{"name": "mood", "type": "classification"}]},
     "target 'mood': a classification target needs at least 2 distinct classes"),
    ({"targets": [{"name": "mood", "type": "classification", "classes": ["a", "a"]}]},
     "target 'mood': a classification target needs at least 2 distinct classes"),
    ({"targets": [{"name": "bpm", "type": "regression", "loss": "cross_entropy"}]},
     "target 'bpm': a regression target takes loss mse or huber"),
    ({"targets": [{"name": "mood", "type": "classification", "classes": ["a", "b"], "loss": "mse"}]},
     "target 'mood': classification uses loss cross_entropy, not mse"),
    ({"targets": []}, "task.targets is empty"),
])
def test_bad_targets_are_refused_with_a_clear_message(task, message):
    with pytest.raises(ParamsError) as err:
        parse_params({"task": task})
    assert message in str(err.value), str(err.value)


@pytest.mark.parametrize(("target", "message"), [
    ({"name": "bpm", "type": "regression", "colum": "tempo"}, "unknown key 'task.targets.0.colum'"),
    ({"name": "bpm", "type": "ordinal"}, "'task.targets.0.type'"),
    ({"name": "bpm", "type": "regression", "weight": -1}, "'task.targets.0.weight'"),
    ({"name": "bpm", "type": "regression", "huber_delta": 0}, "'task.targets.0.huber_delta'"),
    ({"name": "", "type": "regression"}, "'task.targets.0.name'"),
])
def test_a_malformed_target_entry_is_located(target, message):
    with pytest.raises(ParamsError) as err:
        parse_params({"task": {"targets": [target]}})
    assert message in str(err.value), str(err.value)
