"""Cross-validation pieces: dataset adapters, predefined folds, clip windows, clip scoring, aggregation."""

from __future__ import annotations

import ast
import functools
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sync_recipes
import torch
import yaml

from cv_fixtures import ESC_CLASSES, US8K_CLASSES, make_esc50_tree, make_urbansound8k_tree
from fretlab.cache.featurize import clip_window_onsets, expand_clip_windows, featurize_all
from fretlab.data.adapters.esc50 import read_esc50
from fretlab.data.crossval import FoldError, fold_roles, role_clip_ids, role_splits
from fretlab.data.metadata import MetadataError
from fretlab.data.sources import load_source
from fretlab.data.splits import SplitError, assign_splits, predefined_fold_split
from fretlab.io import write_json
from fretlab.models.augment import FeatureAugment, mixup, spec_mask
from fretlab.params import Augment, Featurize, Split, load_params, parse_params
from fretlab.tasks.aggregate import aggregate_folds
from fretlab.tasks.evaluation import clip_scores, write_evaluation
from fretlab.tasks.metrics import confusion

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"


def _recipe_params(name: str, root: Path, classes: list[str], **updates):
    raw = yaml.safe_load((RECIPES / name / "params.yaml").read_text())
    raw["data"].update(root=str(root), classes=classes)
    for section, values in updates.items():
        raw[section].update(values)
    return parse_params(raw)


@pytest.mark.parametrize("folds", [[1, 2, 3, 4, 5], list(range(1, 11)), [3, 1, 2]])
def test_fold_roles_partition_the_folds(folds):
    for k in folds:
        roles = fold_roles(folds, k)
        assert roles["test"] == [k]
        assert roles["val"] == [folds[(folds.index(k) + 1) % len(folds)]]  # the next fold, cyclically
        assert sorted(roles["train"] + roles["val"] + roles["test"]) == sorted(folds)
        assert len(roles["train"]) == len(folds) - 2


def test_fold_argument_must_match_the_strategy():
    with pytest.raises(FoldError, match="pass --fold"):
        role_splits(Split(strategy="predefined_folds", folds=[1, 2, 3]), None, "train")
    with pytest.raises(FoldError, match=r"needs split\.strategy"):
        role_splits(Split(), 1, "train")
    with pytest.raises(FoldError, match="not one of"):
        role_splits(Split(strategy="predefined_folds", folds=[1, 2, 3]), 7, "test")
    with pytest.raises(ValueError, match="at least 3 distinct"):
        Split(strategy="predefined_folds", folds=[1, 1, 2])


def test_esc50_adapter_maps_to_the_standard_metadata(tmp_path):
    raw = make_esc50_tree(tmp_path)
    params = _recipe_params("esc50", tmp_path, list(ESC_CLASSES))
    meta = load_source(params)
    assert len(meta) == len(raw)
    row = meta.set_index("note_id").loc[raw.loc[0, "filename"].removesuffix(".wav")]
    assert row["audio_path"] == f"audio/{raw.loc[0, 'filename']}"
    assert row["label_category"] == raw.loc[0, "category"]
    assert row["fold"] == raw.loc[0, "fold"]
    assert row["group"] == f"src{raw.loc[0, 'src_file']}"
    assert (meta["offset_sec"] >= 1.0).all() and (meta["offset_sec"] <= 2.0).all()  # durations from the files


def test_esc10_subset_and_its_class_check(tmp_path):
    make_esc50_tree(tmp_path)
    esc10 = sorted(c for c, (_, flag) in ESC_CLASSES.items() if flag)
    meta = read_esc50(tmp_path, esc10=True, classes=esc10)
    assert sorted(meta["label_category"].unique()) == esc10
    with pytest.raises(MetadataError, match="ESC-10 categories"):
        read_esc50(tmp_path, esc10=True, classes=list(ESC_CLASSES))


def test_readme_esc10_command_names_the_esc10_classes():
    readme = (REPO / "README.md").read_text()
    line = next(ln for ln in readme.splitlines() if "data.esc10=true" in ln)
    classes = yaml.safe_load(line.split("data.classes=")[1].split("'")[0])
    assert sorted(classes) == sorted(["dog", "rooster", "rain", "sea_waves", "crackling_fire", "crying_baby",
                                      "sneezing", "clock_tick", "helicopter", "chainsaw"])
    esc50 = yaml.safe_load((RECIPES / "esc50" / "params.yaml").read_text())["data"]["classes"]
    assert set(classes) <= set(esc50)


def test_missing_layout_csv_is_a_clear_error(tmp_path):
    params = _recipe_params("urbansound8k", tmp_path, list(US8K_CLASSES))
    with pytest.raises(MetadataError, match="UrbanSound8K metadata file not found"):
        load_source(params)


def test_predefined_folds_reject_leaks_and_unknown_folds():
    df = pd.DataFrame({"group": ["a", "a", "b", "c"], "fold": [1, 2, 2, 3]})
    with pytest.raises(SplitError, match="more than one fold"):
        predefined_fold_split(df, [1, 2, 3])
    df = pd.DataFrame({"group": ["a", "b", "c"], "fold": [1, 2, 4]})
    with pytest.raises(SplitError, match=r"fold\(s\) \[4\] not listed"):
        predefined_fold_split(df, [1, 2, 3])
    with pytest.raises(SplitError, match="needs a 'fold' column"):
        predefined_fold_split(df.drop(columns="fold"), [1, 2, 3])


def test_urbansound8k_test_set_is_exactly_the_official_fold(tmp_path):
    """Through adapter, split and feature cache: fold K's test clips are the CSV's fold K, for all 10 folds."""
    raw = make_urbansound8k_tree(tmp_path / "UrbanSound8K")
    params = _recipe_params("urbansound8k", tmp_path / "UrbanSound8K", list(US8K_CLASSES),
                            featurize={"target_duration": 1.0, "n_mels": 32})
    meta = load_source(params)
    cfg = params.split
    meta["split"] = assign_splits(meta, cfg.strategy, cfg.fractions, cfg.folds, params.base.seed)
    featurize_all(meta, tmp_path / "UrbanSound8K", params.featurize, params.data.classes, tmp_path / "features", 1,
                  cfg.names)
    official = {k: set(part["slice_file_name"].str.removesuffix(".wav")) for k, part in raw.groupby("fold")}
    assert cfg.folds == list(range(1, 11)) and sorted(official) == cfg.folds
    for k in cfg.folds:
        roles = {r: set(role_clip_ids(tmp_path / "features", cfg, k, r)) for r in ("train", "val", "test")}
        assert roles["test"] == official[k]
        assert roles["val"] == official[k % 10 + 1]
        assert roles["train"] == set().union(*official.values()) - official[k] - official[k % 10 + 1]


def test_clip_windows_cover_the_clip():
    cfg = Featurize(target_duration=1.0, window_hop=0.5)
    assert clip_window_onsets(0.0, 5.0, cfg) == [0.5 * i for i in range(9)]
    assert clip_window_onsets(0.0, 0.4, cfg) == [0.0]  # shorter than a window: one, zero-padded
    assert clip_window_onsets(2.0, 3.7, cfg) == [2.0, 2.5]
    meta = pd.DataFrame({"note_id": ["a", "b"], "onset_sec": [0.0, 0.0], "offset_sec": [2.0, 1.0]})
    windows = expand_clip_windows(meta, cfg)
    assert windows["note_id"].tolist() == ["a#w000", "a#w001", "a#w002", "b#w000"]
    assert windows["clip_id"].tolist() == ["a", "a", "a", "b"]


def test_clip_score_averages_probabilities_not_votes():
    # clip "a": two windows lean weakly to class 0, one is confident about class 1 -> mean probability picks 1
    logits = torch.tensor([[0.2, 0.0], [0.2, 0.0], [0.0, 6.0], [3.0, 0.0]])
    y_true, y_pred, clips = clip_scores(logits, np.array([1, 1, 1, 0]), ["a", "a", "a", "b"])
    assert clips == ["a", "b"]
    assert y_true.tolist() == [1, 0]
    assert y_pred.tolist() == [1, 0]
    with pytest.raises(ValueError, match="different labels"):
        clip_scores(logits, np.array([1, 0, 1, 0]), ["a", "a", "a", "b"])


def test_aggregate_mean_std_and_summed_confusion(tmp_path):
    classes = ["x", "y", "z"]
    rng = np.random.default_rng(0)
    matrices = []
    for k in (1, 2, 3):
        y = rng.integers(0, 3, 12)
        pred = np.where(rng.random(12) < 0.6, y, rng.integers(0, 3, 12))
        write_evaluation("test", y, pred, [f"{k}-{i}" for i in range(12)], classes, tmp_path / "metrics" / f"fold{k}",
                         tmp_path / "plots" / f"fold{k}")
        matrices.append(confusion(y, pred, 3))
    summary = aggregate_folds([1, 2, 3], classes, tmp_path / "metrics", tmp_path / "plots", tmp_path / "cv")
    accs = [np.trace(m) / m.sum() for m in matrices]
    assert summary["accuracy"]["mean"] == pytest.approx(np.mean(accs))
    assert summary["accuracy"]["std"] == pytest.approx(np.std(accs, ddof=1))
    table = pd.read_csv(tmp_path / "cv" / "folds.csv")
    assert table["fold"].tolist() == [1, 2, 3]
    assert table["accuracy"].tolist() == pytest.approx(accs)
    summed = pd.read_csv(tmp_path / "cv" / "confusion_matrix.csv", index_col="actual").to_numpy()
    np.testing.assert_array_equal(summed, sum(matrices))
    pooled = pd.read_csv(tmp_path / "cv" / "confusion.csv")
    assert len(pooled) == 36 and set(pooled["fold"]) == {1, 2, 3}
    assert (tmp_path / "cv" / "confusion.png").stat().st_size > 0
    write_json(tmp_path / "metrics" / "fold3" / "test.json", {})  # a broken fold is named, not averaged away
    (tmp_path / "metrics" / "fold2" / "test.json").unlink()
    with pytest.raises(ValueError, match="evaluate@2"):
        aggregate_folds([1, 2, 3], classes, tmp_path / "metrics", tmp_path / "plots", tmp_path / "cv")


def test_spec_masks_are_off_by_default_and_bounded_when_on():
    feat = Featurize()
    x = torch.randn(4, 1, 64, 87)
    aug = FeatureAugment(Augment(gain_db=0.0, shift_ms=0.0, noise_db=None), feat).train()
    state = torch.get_rng_state()
    assert torch.equal(aug(x), x)
    assert torch.equal(torch.get_rng_state(), state)  # off: the guitar default's random stream is untouched
    torch.manual_seed(0)
    masked = spec_mask(x, 10, dim=-2)
    changed = (masked != x).any(dim=-1)[:, 0]  # (B, mels): which mel rows were masked
    assert changed.sum(dim=1).max() <= 10
    assert changed.any()
    for b, rows in enumerate(changed):  # masked rows hold the example's mean, the rest is untouched
        torch.testing.assert_close(masked[b, 0, rows], x[b].mean().expand_as(masked[b, 0, rows]))
        assert torch.equal(masked[b, 0, ~rows], x[b, 0, ~rows])
    timed = spec_mask(x, 5, dim=-1)
    assert ((timed != x).any(dim=-2)[:, 0].sum(dim=1) <= 5).all()


def test_mixup_blends_pairs_with_one_lambda():
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(8, dtype=torch.float32).view(4, 1, 1, 2)
    y = torch.tensor([0, 1, 2, 3])
    mixed, ya, yb, lam = mixup(x, y, 0.4, gen)
    assert 0.0 <= lam <= 1.0
    assert torch.equal(ya, y)
    perm = yb  # labels are 0..3, so yb is the partner permutation itself
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[perm])


def test_guitar_defaults_keep_windowing_and_augmentation_off():
    params = load_params(REPO / "params.yaml")
    assert params.split.strategy == "grouped" and params.split.names == ["train", "val", "test"]
    assert params.featurize.window_hop is None
    aug = params.train.augment
    assert (aug.freq_mask, aug.time_mask, aug.mixup_alpha) == (0, 0, 0.0)


@functools.cache
def _inert(path: Path) -> bool:
    """A package ``__init__.py`` that holds only its docstring and dunder metadata (``__version__ = ...``).

    Run implicitly (as the parent package of an imported submodule) it cannot change a stage's output.
    Imported by name (``from fretlab import __version__``) it counts unless it is docstring-only.
    """
    body = ast.parse(path.read_text()).body
    return path.name == "__init__.py" and all(
        (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
        or (isinstance(n, ast.Assign) and all(isinstance(t, ast.Name) and t.id.startswith("__") for t in n.targets))
        for n in body)


@functools.cache
def _docstring_only(path: Path) -> bool:
    """A package ``__init__.py`` that holds nothing but its docstring cannot change a stage's output."""
    body = ast.parse(path.read_text()).body
    return path.name == "__init__.py" and all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
                                              for n in body)


def _module_file(name: str) -> Path | None:
    """The source file of fretlab module ``name`` (a module or a package's ``__init__.py``), if there is one."""
    parts = name.split(".")
    for path in (REPO / "src" / Path(*parts).with_suffix(".py"), REPO / "src" / Path(*parts) / "__init__.py"):
        if path.is_file():
            return path
    return None


def _stage_imports(script: Path) -> set[str]:
    """fretlab modules a stage script imports, transitively, as repo-relative paths.

    Counts ``import fretlab.x``, ``from fretlab.x import y`` (and ``fretlab.x.y`` where ``y`` is a submodule, as
    in ``from fretlab.train import distributed``), ``from fretlab import __version__``, and the parent packages
    each import initializes first, unless they are inert (docstring and dunder metadata only).
    """
    seen: set[str] = set()
    todo = [script]

    def add(path: Path | None, implicit: bool = False) -> None:
        if path is None or (_inert(path) if implicit else _docstring_only(path)):
            return
        rel = path.relative_to(REPO).as_posix()
        if rel not in seen:
            seen.add(rel)
            todo.append(path)

    while todo:
        for name in _fretlab_imports(todo.pop()):
            parts = name.split(".")
            for depth in range(1, len(parts)):  # the packages Python initializes before the module
                add(_module_file(".".join(parts[:depth])), implicit=True)
            add(_module_file(name))
    return seen


@functools.cache
def _fretlab_imports(path: Path) -> tuple[str, ...]:
    """The fretlab module names one file imports (parsed once per test session: many stages share modules)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module]
            names += [f"{node.module}.{a.name}" for a in node.names if _module_file(f"{node.module}.{a.name}")]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return tuple(n for n in names if n == "fretlab" or n.startswith("fretlab."))


def _check_stage_deps(dvc_yaml: Path) -> None:
    """The fretlab modules each stage of ``dvc_yaml`` imports (transitively) are exactly its code deps."""
    where = dvc_yaml.relative_to(REPO).as_posix()
    for name, stage in yaml.safe_load(dvc_yaml.read_text())["stages"].items():
        body = stage.get("do", stage)
        deps = [Path(os.path.normpath(dvc_yaml.parent / d)).relative_to(REPO).as_posix()
                for d in body["deps"] if "${" not in d]
        script = f"stages/{name}.py"
        assert script in deps, f"{where} stage {name} does not list {script} in deps"
        imported = _stage_imports(REPO / script)
        for module in sorted(imported):
            covered = module in deps or any(module.startswith(d.rstrip("/") + "/") for d in deps)
            assert covered, f"{where} stage {name} imports {module} but does not list it in deps"
        for dep in deps:  # and no more: an unused module in deps re-runs the stage for nothing
            if dep.startswith("src/"):
                used = any(m == dep or m.startswith(dep.rstrip("/") + "/") for m in imported)
                assert used, f"{where} stage {name} lists {dep} in deps but never imports it"


@pytest.mark.parametrize("recipe", ["esc50", "urbansound8k", "attributes", "rudiments", "playlists"])
def test_recipe_stages_list_every_module_they_import(recipe):
    _check_stage_deps(RECIPES / recipe / "dvc.yaml")


def test_root_stages_list_every_module_they_import():
    _check_stage_deps(REPO / "dvc.yaml")


def test_the_import_scan_sees_submodules_the_package_itself_and_parent_packages():
    found = _stage_imports(REPO / "stages" / "train.py")
    assert "src/fretlab/train/distributed.py" in found  # from fretlab.train import distributed
    assert "src/fretlab/__init__.py" in found  # from fretlab import __version__ (artifacts/modeldir.py)
    assert "src/fretlab/models/__init__.py" in found  # initialized before fretlab.models.rf
    assert "src/fretlab/train/__init__.py" not in found  # docstring only
    assert "src/fretlab/__init__.py" not in _stage_imports(REPO / "stages" / "synthesize.py")  # only as a parent


def test_recipes_share_one_pipeline_definition():
    """Each recipe's dvc.yaml is generated from recipes/pipelines/ (a symlink would break `dvc exp show` and
    `metrics diff`, which read dvc.yaml from git revisions, where a symlink is only its target's path)."""
    for recipe, pipeline in sync_recipes.PIPELINES.items():
        path = RECIPES / recipe / "dvc.yaml"
        assert not path.is_symlink(), f"{path} must be a real file (scripts/sync_recipes.py writes it)"
        assert path.read_text() == sync_recipes.generated(pipeline), \
            f"{path} is out of date with recipes/pipelines/{pipeline}.yaml: run python scripts/sync_recipes.py"
    assert sync_recipes.main(["--check"]) == 0
