"""Sequence models on variable-length input: padding and packing never change a clip's output; forest heads
reproduce scikit-learn on the same pooled features."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from fretlab.cache.sequences import SequenceSet, pad_batch
from fretlab.models.augment import crop_sequences
from fretlab.models.classifier import SequenceModel, build_task_model, forest_layout
from fretlab.models.crnn import CRNN
from fretlab.models.gru import GRUNet
from fretlab.models.layers import stride_frames
from fretlab.models.rf import ForestHeads, masked_pooled_features
from fretlab.params import CRNNParams, GRUParams, Params, parse_params
from fretlab.tasks.targets import TargetSpec, resolve_targets
from fretlab.train.baselines import fit_forest_heads
from fretlab.train.inputs import RoleData, SequenceInputs

D = 6
LENGTHS = (30, 14, 21)  # the short clip sits between two longer ones (not length-sorted); even and odd lengths
POOLINGS = ["last", "mean", "meanstd", "attention"]
TARGETS = [
    {"name": "kind", "type": "classification", "classes": ["a", "b", "c"]},
    {"name": "tempo", "type": "regression"},
    {"name": "energy", "type": "regression", "loss": "huber"},
]


def clips(lengths=LENGTHS, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(n, D)).astype(np.float32) for n in lengths]


def padded(items: list[np.ndarray], fill: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Like :func:`pad_batch`, but with ``fill`` in the padded steps."""
    x, lengths = pad_batch(items)
    steps = torch.arange(x.shape[1])[None, :, None]
    return torch.where(steps < lengths[:, None, None], x, torch.full_like(x, fill)), lengths


@torch.no_grad()
def alone_and_batched(model: torch.nn.Module, items: list[np.ndarray], fill: float = 0.0):
    """Each clip run alone (batch of one, its own length) and the same clips padded into one batch."""
    model.eval()
    alone = torch.cat([model(torch.from_numpy(it)[None], torch.tensor([len(it)])) for it in items])
    x, lengths = padded(items, fill)
    return alone, model(x, lengths), x


def scramble_batchnorm(model: torch.nn.Module) -> None:
    """Non-trivial running statistics, so BatchNorm of a zero (padded) cell is not zero."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) * 2 - 1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=gen) - 0.5)


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_gru_padded_in_a_batch_equals_the_clip_alone(pooling, bidirectional):
    torch.manual_seed(0)
    cfg = GRUParams(hidden=8, layers=2, bidirectional=bidirectional, time_pooling=pooling, layer_norm=True,
                    head_hidden=8)
    model = GRUNet(cfg, (D,), 4)
    items = clips()
    alone, batched, _ = alone_and_batched(model, items, fill=7.5)  # packed: padding values never matter
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    with torch.no_grad():  # negative control: the same zero-padded batch without lengths lets padding in
        unpacked = model(pad_batch(items)[0])
    assert (unpacked[1] - alone[1]).abs().max() > 1e-3  # the short clip changes
    torch.testing.assert_close(unpacked[0], alone[0], atol=1e-5, rtol=0)  # the longest clip has no padding


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gru_with_a_frame_stride_padded_in_a_batch_equals_the_clip_alone(bidirectional):
    torch.manual_seed(0)
    cfg = GRUParams(hidden=8, layers=2, bidirectional=bidirectional, time_pooling="mean", frame_stride=4)
    items = clips()  # 30, 14 and 21 frames: every clip ends in a partial block
    alone, batched, _ = alone_and_batched(GRUNet(cfg, (D,), 4), items, fill=7.5)
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)


def test_stride_frames_averages_each_block_of_valid_frames():
    x = torch.arange(2 * 7 * 1, dtype=torch.float32).view(2, 7, 1)
    x[1, 5:] = 100.0  # padding of the second clip (5 frames)
    blocks, lengths = stride_frames(x, torch.tensor([7, 5]), 3)
    assert lengths.tolist() == [3, 2]
    assert blocks[0, :, 0].tolist() == [1.0, 4.0, 6.0]  # (0+1+2)/3, (3+4+5)/3, the partial block 6 alone
    assert blocks[1, :2, 0].tolist() == [8.0, 10.5]  # (7+8+9)/3, (10+11)/2: the padding is not averaged in
    same, none = stride_frames(x, None, 1)
    assert same is x and none is None


def test_crop_takes_a_contiguous_span_of_each_track_in_training_only():
    torch.manual_seed(0)
    lengths = torch.tensor([40, 12, 25])
    x = torch.zeros(3, 40, 1)
    for i, n in enumerate(lengths.tolist()):
        x[i, :n, 0] = torch.arange(n) + 1000 * i  # each frame holds its own index
    spans, new = crop_sequences(x, lengths, 0.5)
    for i, (n, m) in enumerate(zip(lengths.tolist(), new.tolist(), strict=True)):
        assert -(-n // 2) <= m <= n
        span = spans[i, :m, 0] - 1000 * i
        assert torch.equal(span, span[0] + torch.arange(m, dtype=span.dtype))  # contiguous, in order
        assert span[0] >= 0 and span[-1] < n  # inside the track, never its padding
    draws = {tuple(crop_sequences(x, lengths, 0.5)[1].tolist()) for _ in range(5)}
    assert len(draws) > 1  # a new span per call

    params = parse_params({"featurize": {"kind": "tracks"}, "model": {"name": "gru"},
                           "train": {"augment": {"crop": 0.5}}})
    model = SequenceModel(params, 2, 1)
    model.eval()
    with torch.no_grad():
        out = model(x, lengths)
        torch.testing.assert_close(model(x, lengths), out)  # eval: the whole track, every time
        model.train()
        assert not torch.allclose(model(x, lengths), out)  # training: a random span


def test_gru_linear_head_has_one_row_of_weights_per_output():
    model = GRUNet(GRUParams(hidden=5, head_hidden=0), (D,), 3)
    assert [type(m).__name__ for m in model.head] == ["Linear"]
    assert model.head[0].weight.shape == (3, 5)


def crnn(pooling: str, bidirectional: bool, kernel_size: int) -> CRNN:
    torch.manual_seed(0)
    cfg = CRNNParams(channels=[4, 6], kernel_size=kernel_size, pools=[(2, 2), (1, 2)], rnn_hidden=8, head_hidden=8,
                     time_pooling=pooling, bidirectional=bidirectional)
    model = CRNN(cfg, (D,), 4)
    scramble_batchnorm(model)
    return model


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_crnn_without_time_context_padded_in_a_batch_equals_the_clip_alone(pooling, bidirectional):
    """Kernel 1 in time: the packing and pooled-length bookkeeping alone decide the result."""
    model = crnn(pooling, bidirectional, kernel_size=1)
    items = clips()
    alone, batched, x = alone_and_batched(model, items)
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    with torch.no_grad():
        unpacked = model(x)
    assert (unpacked[1] - alone[1]).abs().max() > 1e-3


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_crnn_padded_in_a_batch_equals_the_clip_alone(pooling, bidirectional):
    model = crnn(pooling, bidirectional, kernel_size=3)
    alone, batched, _ = alone_and_batched(model, clips())
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)


def sequence_params(name: str, **model: object) -> Params:
    return parse_params({
        "base": {"workers": 1},
        "featurize": {"kind": "tracks"},
        "task": {"targets": TARGETS},
        "model": {"name": name, **model},
    })


@pytest.mark.parametrize(("name", "crnn_blocks"), [
    ("gru", 1),
    ("crnn", 1),  # one 3-wide conv reads the step after a clip's end: only zeroed padding matches the clip alone
    ("crnn", 2),  # the padding is zeroed again before each block
])
def test_sequence_model_standardizes_and_zeroes_padding(name, crnn_blocks):
    crnn = {"channels": [4, 6][:crnn_blocks], "pools": [[2, 2], [1, 2]][:crnn_blocks], "rnn_hidden": 8,
            "head_hidden": 8}
    params = sequence_params(name, gru={"hidden": 8, "bidirectional": True, "time_pooling": "mean"}, crnn=crnn)
    specs = resolve_targets(params)
    torch.manual_seed(0)
    model = build_task_model(params, specs, dims=D)
    assert isinstance(model, SequenceModel)
    mean, std = np.linspace(-2, 2, D), np.linspace(0.5, 3, D)
    model.set_standardization(torch.from_numpy(mean), torch.from_numpy(std))
    items = [it * std.astype(np.float32) + mean.astype(np.float32) for it in clips()]
    alone, batched, x = alone_and_batched(model, items, fill=1e3)  # garbage in the padding
    assert alone.shape == (3, 5)
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    with torch.no_grad():  # negative control: treating the padding as frames changes the short clip
        full = model(x, torch.full((3,), x.shape[1]))
    assert (full[1] - alone[1]).abs().max() > 1e-3


class Recorder(torch.nn.Module):
    """Stands in for the network: keeps what it is given."""

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        self.seen = (x.clone(), lengths.clone())
        return x[:, 0]


def test_sequence_model_feeds_the_network_standardized_frames_and_zero_padding():
    model = build_task_model(sequence_params("gru"), resolve_targets(sequence_params("gru")), dims=D)
    mean, std = np.linspace(-2, 2, D).astype(np.float32), np.linspace(0.5, 3, D).astype(np.float32)
    model.set_standardization(torch.from_numpy(mean), torch.from_numpy(std))
    model.net = Recorder()
    items = clips()
    x, lengths = padded(items, fill=-1e4)
    model(x, lengths)
    seen, seen_lengths = model.net.seen
    assert torch.equal(seen_lengths, lengths)
    for i, item in enumerate(items):
        np.testing.assert_allclose(seen[i, : len(item)].numpy(), (item - mean) / std, rtol=1e-5, atol=1e-6)
        assert torch.equal(seen[i, len(item) :], torch.zeros_like(seen[i, len(item) :]))


# --- forests -----------------------------------------------------------------------------------------------------


def test_masked_pooled_features_are_numpy_mean_and_std_over_valid_frames():
    items = clips((9, 4, 1, 12))
    x, lengths = padded(items, fill=-50.0)
    got = masked_pooled_features(x, lengths).numpy()
    want = np.stack([np.concatenate([it.astype(np.float64).mean(0), it.astype(np.float64).std(0)]) for it in items])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.all(got[2, D:] == 0)  # one frame: zero spread


def forest_problem(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Sequences whose frame means carry the targets: class codes, and two regression values."""
    rng = np.random.default_rng(seed)
    items, y = [], np.zeros((n, 3))
    for i in range(n):
        code, tempo, energy = i % 2, rng.normal(), rng.normal()  # class 'c' never occurs
        item = rng.normal(size=(int(rng.integers(3, 15)), D)).astype(np.float32)
        item[:, 0] += 2.0 * code
        item[:, 1] += tempo
        item[:, 2] += energy
        items.append(item)
        y[i] = code, tempo, energy
    return items, y


def sequence_set(items: list[np.ndarray]) -> SequenceSet:
    offsets = np.concatenate([[0], np.cumsum([len(it) for it in items])]).astype(np.int64)
    return SequenceSet(np.concatenate(items), offsets)


def forest_model(n_estimators: int = 6) -> tuple[Params, list[TargetSpec], SequenceModel]:
    params = sequence_params("rf", rf={"n_estimators": n_estimators})
    specs = resolve_targets(params)
    model = build_task_model(params, specs, dims=D)
    assert isinstance(model.net, ForestHeads)
    assert model.net.layout == forest_layout(specs) == [("kind", "classification", 0, 3),
                                                        ("tempo", "regression", 3, 1), ("energy", "regression", 4, 1)]
    return params, specs, model


def test_forest_heads_reproduce_scikit_learn_on_pooled_sequence_features():
    _, _, model = forest_model()
    items, y = forest_problem(40, seed=0)
    x, lengths = pad_batch(items)
    feats = masked_pooled_features(x, lengths).numpy()
    reg = RandomForestRegressor(n_estimators=6, random_state=0).fit(feats, y[:, 1:])
    clf = RandomForestClassifier(n_estimators=6, random_state=0).fit(feats, y[:, 0].astype(int))
    model.net.forests["regression"].load_forest(reg)
    model.net.forests["kind"].load_forest(clf)

    new, _ = forest_problem(17, seed=1)
    x_new, len_new = padded(new, fill=9.0)
    f_new = masked_pooled_features(x_new, len_new).numpy()
    want_reg = reg.predict(f_new)
    want_cls = np.log(np.clip(clf.predict_proba(f_new), 1e-12, None))  # columns: classes a, b (c never seen)
    with torch.no_grad():
        out = model.eval()(x_new, len_new).numpy()
    np.testing.assert_allclose(out[:, 3:], want_reg, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[:, :2], want_cls, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[:, 2], np.log(1e-12), rtol=1e-6)  # the unseen class: clamped, not -inf
    # batched prediction over a whole split keeps every row in its place
    got = SequenceInputs(sequence_set(new)).predict(model, batch_size=4).numpy()
    np.testing.assert_allclose(got, out, rtol=1e-5, atol=1e-5)


def test_fit_forest_heads_fills_missing_targets_and_fits_classes_on_valid_rows(tmp_path):
    params, specs, model = forest_model(n_estimators=5)
    items, y = forest_problem(36, seed=2)
    valid = np.ones_like(y, dtype=bool)
    valid[[1, 4, 9], 1] = False
    valid[[0, 7], 0] = False
    y[~valid] = 0.0  # as encode_targets leaves a missing cell
    val_items, val_y = forest_problem(10, seed=3)
    data = {"train": RoleData(SequenceInputs(sequence_set(items)), y, valid, [f"t{i}" for i in range(36)]),
            "val": RoleData(SequenceInputs(sequence_set(val_items)), val_y, np.ones_like(val_y, dtype=bool),
                            [f"v{i}" for i in range(10)])}
    summary = fit_forest_heads(params, model, specs, data, np.arange(36) % 4, tmp_path / "live")
    assert summary["n_trees"] == 10 and "best_val_loss" in summary

    feats = masked_pooled_features(*pad_batch(items)).numpy()
    y_reg = y[:, 1:].copy()
    y_reg[~valid[:, 1], 0] = y[valid[:, 1], 1].mean()  # a missing cell takes the column's training mean
    kwargs = {"n_estimators": 5, "max_features": "sqrt", "random_state": params.base.seed, "n_jobs": 1}  # model.rf
    reg = RandomForestRegressor(**kwargs).fit(feats, y_reg)
    rows = valid[:, 0]
    clf = RandomForestClassifier(class_weight="balanced", **kwargs).fit(feats[rows], y[rows, 0].astype(int))
    x_val, len_val = pad_batch(val_items)
    f_val = masked_pooled_features(x_val, len_val).numpy()
    with torch.no_grad():
        out = model.eval()(x_val, len_val).numpy()
    np.testing.assert_allclose(out[:, 3:], reg.predict(f_val), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[:, :2], np.log(np.clip(clf.predict_proba(f_val), 1e-12, None)), atol=1e-5)


def test_a_single_label_forest_on_sequences_takes_the_heads_and_learns_the_class(tmp_path):
    """One classification target over tracks: pooled-sequence forest heads, not the window-cache forest."""
    target = [{"name": "kind", "type": "classification", "classes": ["a", "b", "c"]}]
    params = parse_params({"base": {"workers": 1}, "featurize": {"kind": "tracks"}, "task": {"targets": target},
                           "model": {"name": "rf", "rf": {"n_estimators": 10}}})
    specs = resolve_targets(params)
    model = build_task_model(params, specs, dims=D)
    assert isinstance(model.net, ForestHeads) and forest_layout(specs) is None  # windows keep the plain forest
    items, y = forest_problem(40, seed=4)
    data = {role: RoleData(SequenceInputs(sequence_set(it)), yy[:, :1], np.ones((len(it), 1), dtype=bool),
                           [f"{role}{i}" for i in range(len(it))])
            for role, (it, yy) in {"train": (items, y), "val": forest_problem(12, seed=5)}.items()}
    fit_forest_heads(params, model, specs, data, np.arange(40) % 4, tmp_path / "live")
    test_items, test_y = forest_problem(20, seed=6)
    out = SequenceInputs(sequence_set(test_items)).predict(model, batch_size=8).numpy()
    assert out.shape == (20, 3) and (out.argmax(1) == test_y[:, 0]).mean() >= 0.9  # the class is in frame means


def test_per_target_forests_equal_scikit_learn_fitted_on_each_targets_valid_rows(tmp_path):
    params = sequence_params("rf", rf={"n_estimators": 5, "per_target": True})
    specs = resolve_targets(params)
    model = build_task_model(params, specs, dims=D)
    assert sorted(model.net.forests) == ["energy", "kind", "tempo"]  # no shared regression forest
    items, y = forest_problem(36, seed=7)
    valid = np.ones_like(y, dtype=bool)
    valid[[2, 5, 11], 1] = False  # tempo missing on three rows: its forest never sees them
    y[~valid] = 0.0
    val_items, val_y = forest_problem(10, seed=8)
    data = {"train": RoleData(SequenceInputs(sequence_set(items)), y, valid, [f"t{i}" for i in range(36)]),
            "val": RoleData(SequenceInputs(sequence_set(val_items)), val_y, np.ones_like(val_y, dtype=bool),
                            [f"v{i}" for i in range(10)])}
    fit_forest_heads(params, model, specs, data, np.arange(36) % 4, tmp_path / "live")
    feats = masked_pooled_features(*pad_batch(items)).numpy()
    kwargs = {"n_estimators": 5, "max_features": "sqrt", "random_state": params.base.seed, "n_jobs": 1}
    rows = valid[:, 1]
    tempo = RandomForestRegressor(**kwargs).fit(feats[rows], y[rows, 1])
    energy = RandomForestRegressor(**kwargs).fit(feats, y[:, 2])
    x_val, len_val = pad_batch(val_items)
    f_val = masked_pooled_features(x_val, len_val).numpy()
    with torch.no_grad():
        out = model.eval()(x_val, len_val).numpy()
    np.testing.assert_allclose(out[:, 3], tempo.predict(f_val), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[:, 4], energy.predict(f_val), rtol=1e-5, atol=1e-6)
