"""Params typos and out-of-range values are caught when params.yaml is loaded, not mid-pipeline."""

from __future__ import annotations

import pytest

from fretlab.params import ParamsError, load_params, parse_params, pooled_shape


def _error(raw) -> str:
    with pytest.raises(ParamsError) as info:
        parse_params(raw, "params.yaml")
    return str(info.value)


@pytest.mark.parametrize(("raw", "expected"), [
    ({"featurize": {"n_mel": 40}}, "unknown key 'featurize.n_mel'; did you mean 'featurize.n_mels'?"),
    ({"trian": {"epochs": 3}}, "unknown key 'trian'; did you mean 'train'?"),
    ({"model": {"crnn": {"pool": [[2, 2]]}}}, "unknown key 'model.crnn.pool'; did you mean 'model.crnn.pools'?"),
    ({"train": {"augment": {"gain": 3}}}, "did you mean 'train.augment.gain_db'?"),
    ({"base": {"colour": "red"}}, "unknown key 'base.colour'; remove it"),
])
def test_unknown_keys_get_a_did_you_mean(raw, expected):
    msg = _error(raw)
    assert msg.startswith("invalid parameters in params.yaml")
    assert expected in msg


def test_every_problem_is_listed_at_once():
    msg = _error({"featurize": {"n_mel": 40}, "train": {"epochs": 0}})
    assert "featurize.n_mel" in msg and "'train.epochs'" in msg


@pytest.mark.parametrize("n_mels", [0, -8])
def test_n_mels_must_be_positive(n_mels):
    assert "'featurize.n_mels': Input should be greater than or equal to 1" in _error({"featurize": {"n_mels": n_mels}})


@pytest.mark.parametrize("fractions", [
    {"train": 0.8, "val": 0.1, "test": 0.2},
    {"train": 0.5, "val": 0.1, "test": 0.1},
])
def test_split_fractions_must_sum_to_one(fractions):
    assert "split.fractions must sum to 1" in _error({"split": {"fractions": fractions}})


def test_split_fractions_need_all_three_splits():
    assert "exactly the keys train, val and test" in _error({"split": {"fractions": {"train": 0.9, "val": 0.1}}})


def test_fft_window_longer_than_the_event_window_is_refused():
    msg = _error({"featurize": {"n_fft": 4096, "target_duration": 0.1, "sample_rate": 16000}})
    assert "featurize.n_fft=4096 is longer than the event window (1600 samples)" in msg
    assert "lower n_fft or raise target_duration" in msg


def test_event_window_longer_than_allowed_is_refused():
    assert "'featurize.target_duration': Input should be less than or equal to 10" in _error(
        {"featurize": {"target_duration": 30.0}})


def test_fmax_above_nyquist_is_refused():
    assert "fmin < fmax <= sample_rate/2 (8000)" in _error({"featurize": {"sample_rate": 16000, "fmax": 11025.0}})


@pytest.mark.parametrize("model", ["crnn", "cnn"])
def test_pooling_that_shrinks_the_time_axis_to_zero_is_caught_at_load_time(model):
    # 0.25 s at 22050 Hz, hop 256: 22 frames; time pooling 2*2*2*4 = 32 > 22
    raw = {
        "featurize": {"target_duration": 0.25, "n_fft": 512},
        "model": {"name": model, model: {"channels": [4, 4, 4, 4], "pools": [[1, 2], [1, 2], [1, 2], [1, 4]]}},
    }
    msg = _error(raw)
    assert f"model.{model}.pools" in msg and "to 64x0" in msg and "total pooling 1x32" in msg
    assert "use smaller pools" in msg


def test_pooling_that_shrinks_frequency_to_zero_is_caught():
    msg = _error({"featurize": {"n_mels": 16}, "model": {"crnn": {"channels": [8, 8], "pools": [[8, 1], [4, 1]]}}})
    assert "model.crnn.pools" in msg and "16 mels" in msg and "to 0x" in msg


def test_pooling_check_matches_the_built_network():
    """The load-time arithmetic agrees with the real conv stack, for odd and even kernels."""
    import torch

    from fretlab.models import build_model

    for kernel, pools, n_mels in [(3, [(4, 2), (4, 2), (2, 1)], 64), (4, [(2, 3), (3, 5)], 40), (5, [(3, 3)], 17)]:
        crnn = {"channels": [4] * len(pools), "pools": pools, "kernel_size": kernel}
        params = parse_params({"featurize": {"n_mels": n_mels}, "model": {"crnn": crnn}})
        net = build_model(params.model, (1, n_mels, params.featurize.n_frames), 3)
        with torch.no_grad():
            _, _, f, t = net.conv(torch.zeros(1, 1, n_mels, params.featurize.n_frames)).shape
        assert pooled_shape(n_mels, params.featurize.n_frames, kernel, pools) == (f, t)


def test_the_repository_params_file_loads():
    params = load_params("params.yaml")
    assert params.featurize.on_error in ("raise", "skip")
    assert params.base.deterministic is False  # default keeps today's behaviour


def test_missing_and_malformed_params_files(tmp_path):
    with pytest.raises(ParamsError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n", encoding="utf-8")
    with pytest.raises(ParamsError, match="is not valid YAML"):
        load_params(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ParamsError, match="must hold a mapping of sections"):
        load_params(listy)


def test_yaml_tags_that_construct_python_objects_are_refused(tmp_path):
    """safe_load: a params file cannot execute code or build arbitrary objects."""
    evil = tmp_path / "evil.yaml"
    evil.write_text("base: !!python/object/apply:os.system ['echo pwned']\n", encoding="utf-8")
    with pytest.raises(ParamsError, match="is not valid YAML"):
        load_params(evil)
