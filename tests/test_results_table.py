"""scripts/results_table.py: the run plan, dry run, override matching and the mean ± std table."""

from __future__ import annotations

import importlib.util
import statistics
import sys
from pathlib import Path

import pytest
import yaml

from fretlab.params import parse_params

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "results_table.py"


@pytest.fixture(scope="module")
def rt():
    spec = importlib.util.spec_from_file_location("results_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["results_table"] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_every_variant_is_a_valid_params_change(rt) -> None:
    for variant in rt.VARIANTS:
        raw: dict = {}
        for item in variant.overrides:
            keys, value = rt.parse_override(item)
            node = raw
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            node[keys[-1]] = value
        parse_params(raw)  # raises on an unknown key or a bad value
    names = {v.overrides for v in rt.VARIANTS}
    assert len(names) == len(rt.VARIANTS)  # no two rows run the same thing


def test_dry_run_prints_one_queued_command_per_variant_and_seed(rt, capsys) -> None:
    assert rt.main(["--dry-run", "--variants", "crnn-mean,rf", "--seeds", "1,2", "--set", "train.epochs=2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "dvc queue start -j 1"
    assert lines[:-1] == [
        "dvc exp run --queue -n rt-crnn-mean-s1 -S train.epochs=2 -S model.crnn.time_pooling=mean -S base.seed=1",
        "dvc exp run --queue -n rt-crnn-mean-s2 -S train.epochs=2 -S model.crnn.time_pooling=mean -S base.seed=2",
        "dvc exp run --queue -n rt-rf-s1 -S train.epochs=2 -S model.name=rf -S base.seed=1",
        "dvc exp run --queue -n rt-rf-s2 -S train.epochs=2 -S model.name=rf -S base.seed=2",
    ]


def test_bad_arguments_fail_clearly(rt) -> None:
    with pytest.raises(SystemExit):
        rt.main(["--dry-run", "--variants", "transformer"])
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        rt.main(["--dry-run", "--set", "train.epochs"])


def test_finished_experiments_are_reused_only_with_the_same_params(rt) -> None:
    run = rt.plan([rt.VARIANTS[1]], [7], ["train.epochs=2"])[0]
    baseline = {"train": {"epochs": 30, "lr": 0.01}, "model": {"name": "crnn", "crnn": {"time_pooling": "attention"}},
                "base": {"seed": 42}}
    params = {"train": {"epochs": 2, "lr": 0.01}, "model": {"name": "crnn", "crnn": {"time_pooling": "mean"}},
              "base": {"seed": 7}}
    assert rt.matches(params, run.overrides, baseline)
    assert not rt.matches({**params, "base": {"seed": 8}}, run.overrides, baseline)
    assert not rt.matches({"train": {"epochs": 2}}, run.overrides, baseline)
    # every override held, but the baseline moved on since the run (a new default model): stale, not reused
    assert not rt.matches(params, run.overrides, {**baseline, "model": {"name": "rf", "crnn": {}}})
    assert baseline["train"]["epochs"] == 30  # the baseline is not modified


def test_overrides_add_keys_as_hydra_plus_does(rt) -> None:
    out = rt.with_overrides({"split": {"fractions": [0.7, 0.3]}}, ("+split.min_values.tier_confidence=0.5",))
    assert out == {"split": {"fractions": [0.7, 0.3], "min_values": {"tier_confidence": 0.5}}}


def _metrics(acc: float, f1: float) -> dict:
    return {"accuracy": acc, "macro_f1": f1, "per_class": {"harmonic": {"f1": f1}}}


def test_table_gives_mean_and_sample_std_over_seeds(rt) -> None:
    runs = rt.plan([rt.VARIANTS[0], rt.VARIANTS[-1]], [1, 2, 3], [])
    accs = [0.8, 0.9, 0.7]
    for run, acc in zip(runs[:3], accs, strict=True):
        run.metrics = _metrics(acc, acc - 0.1)
    runs[3].metrics = _metrics(0.5, 0.4)  # rf: one of three seeds finished
    rows = rt.summarize(runs)
    assert rows[0]["seeds"] == [1, 2, 3] and rows[1]["seeds"] == [1] and rows[1]["missing_seeds"] == [2, 3]
    table = rt.markdown(rows)
    assert f"{statistics.mean(accs):.3f} ± {statistics.stdev(accs):.3f}" in table
    assert "| 0.500 | 0.400 | 1 | `dvc exp run -S model.name=rf -S base.seed=<seed>` |" in table
    assert rows[0]["per_class_f1"]["harmonic"] == pytest.approx([0.7, 0.8, 0.6])


def test_exp_show_json_is_read_by_name(rt) -> None:
    show = [
        {"rev": "workspace", "data": {}, "experiments": None},
        {"rev": "abc", "experiments": [
            {"name": "rt-rf-s1", "executor": None, "revs": [{"name": "rt-rf-s1", "data": {
                "params": {"params.yaml": {"data": {"model": {"name": "rf"}}}},
                "metrics": {"metrics/test.json": {"data": _metrics(0.5, 0.4)}}}}]},
            {"name": "rt-cnn-s1", "executor": {"state": "failed"}, "revs": [{"name": "rt-cnn-s1", "data": None}]},
        ]},
    ]
    recs = rt.exp_records(show)
    assert recs["rt-rf-s1"]["state"] == "success" and recs["rt-rf-s1"]["params"]["model"]["name"] == "rf"
    assert recs["rt-rf-s1"]["metrics"]["metrics/test.json"]["accuracy"] == 0.5
    assert recs["rt-cnn-s1"]["state"] == "failed" and recs["rt-cnn-s1"]["metrics"] == {}


QUEUE_STATUS = """Task     Name        Created       Status
a1b2c3d  at-gru-s42  02:09 AM      Queued
b2c3d4e  at-rf-s42   02:09 AM      Running
c3d4e5f  at-gru-s42  Dec 01, 2026  Success
d4e5f6a  at-rf-s42   Dec 01, 2026  Failed
e5f6a7b  at-old-s42  Dec 01, 2026  Success

Worker status: 1 active, 0 idle
"""


def test_an_older_finished_task_does_not_hide_a_queued_one_of_the_same_name(rt, monkeypatch) -> None:
    monkeypatch.setattr(rt, "_dvc", lambda *args, **kw: QUEUE_STATUS)
    assert rt.queue_states() == {"at-gru-s42": "Queued", "at-rf-s42": "Running", "at-old-s42": "Success"}


def test_a_queue_worker_that_stopped_mid_batch_is_restarted(rt, monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("base: {seed: 42}\n")
    statuses = iter([{"at-a-s42": "Queued"}] * 2 + [{"at-a-s42": "Running"}, {"at-a-s42": "Success"}])
    calls: list[tuple[str, ...]] = []

    def dvc(*args, **kw):
        calls.append(args)
        return '[{"rev": "workspace", "experiments": null}]' if args[:2] == ("exp", "show") else ""

    monkeypatch.setattr(rt, "_dvc", dvc)
    monkeypatch.setattr(rt, "queue_states", lambda: next(statuses))
    monkeypatch.setattr(rt.time, "sleep", lambda s: None)
    run = rt.plan([rt.Variant("a", "A", ())], [42], [], "at")
    rt.execute(run, jobs=1, poll_s=0.0)
    starts = [c for c in calls if c[:2] == ("queue", "start")]
    assert len(starts) == 2  # the first start, and one restart after two polls with nothing running


@pytest.mark.parametrize("script", ["attributes_results", "rudiments_results", "transfer_results"])
def test_every_recipe_variant_is_a_valid_change_of_its_recipe_params(rt, script) -> None:
    spec = importlib.util.spec_from_file_location(script, SCRIPT.parent / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    recipes = SCRIPT.parents[1] / "recipes"
    recipe = recipes.parent if script == "transfer_results" else recipes / script.removesuffix("_results")
    baseline = yaml.safe_load((recipe / "params.yaml").read_text())
    seen: dict[str, str] = {}
    for variant in module.VARIANTS:
        changed = parse_params(rt.with_overrides(baseline, variant.overrides))  # raises on an unknown key or value
        if variant.overrides:  # every row but the default changes something: no row re-runs the baseline
            assert changed != parse_params(baseline), f"{script}: {variant.name} only restates params.yaml"
        # two rows whose overrides differ but land on the same params (one restating the default) are one run
        key = repr(changed)
        assert key not in seen, f"{script}: {variant.name} gives the same params as {seen.get(key)}"
        seen[key] = variant.name
