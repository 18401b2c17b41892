"""The cross-validation recipes run end to end through DVC, with the README's own commands.

Each test builds a tiny tree in the dataset's layout (generated audio), shrinks the recipe's
params, and executes the README's command block line by line in a throwaway git+DVC copy.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from conftest import deep_update
from cv_fixtures import ESC_CLASSES, US8K_CLASSES, make_esc50_tree, make_urbansound8k_tree
from fretlab.cache.featurize import clip_window_onsets
from fretlab.params import Featurize

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[1] / "README.md"
ESC_FOLDS = 3  # of ESC-50's five: test on K, validate on K + 1, train on the third
TINY_RECIPE = {
    "base": {"workers": 1},
    "featurize": {"target_duration": 1.0, "window_hop": 0.5, "n_mels": 32, "batch_size": 32},
    "model": {"name": "crnn", "crnn": {"channels": [8, 16], "pools": [[4, 2], [4, 2]], "rnn_hidden": 16,
                                       "head_hidden": 16}},
    "train": {"epochs": 2, "batch_size": 32},
}


def readme_block(first_line: str) -> list[str]:
    """The README's bash block that starts with ``first_line`` and runs ``dvc repro``, as command lines."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    block = next((b for b in blocks if b.startswith(first_line) and "dvc repro" in b), None)
    assert block is not None, f"README has no bash block starting with {first_line!r}"
    return [re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines() if line.strip()]


def run_readme(ws, lines: list[str]) -> dict[str, str]:
    """Run each command line as written (``cd`` moves the working directory); return each one's output."""
    cwd, outputs = ws.root, {}
    for line in lines:
        if line.startswith("cd "):
            cwd = cwd / line[3:]
            continue
        proc = subprocess.run(["bash", "-c", line], cwd=cwd, env=ws.env, text=True, capture_output=True,
                              timeout=900)
        assert proc.returncode == 0, f"`{line}` failed in {cwd}:\n{proc.stdout}\n{proc.stderr}"
        outputs[line] = proc.stdout + proc.stderr
    return outputs


def prepare(ws, recipe: str, classes: list[str], overrides: dict | None = None) -> Path:
    """Shrink the recipe's params (tiny model, the fixture's classes, ``overrides``) and commit."""
    path = ws.root / "recipes" / recipe / "params.yaml"
    params = deep_update(yaml.safe_load(path.read_text()), {**TINY_RECIPE, "data": {"classes": classes}})
    deep_update(params, overrides or {})
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    ws.run("git", "add", "-A")
    ws.run("git", "commit", "-qm", "tiny recipe")
    return path.parent


def check_folds(recipe_dir: Path, official: dict[int, set[str]]) -> None:
    """Each fold's test clips are exactly its official fold; the aggregate matches the per-fold files."""
    accuracies, f1s, matrices = [], [], []
    for k, clips in official.items():
        tested = pd.read_csv(recipe_dir / "plots" / f"fold{k}" / "confusion" / "test.csv", dtype=str)
        assert set(tested["note_id"]) == clips and len(tested) == len(clips)
        assert (recipe_dir / "models" / f"fold{k}" / "model.safetensors").is_file()
        metrics = json.loads((recipe_dir / "metrics" / f"fold{k}" / "test.json").read_text())
        accuracies.append(metrics["accuracy"])
        f1s.append(metrics["macro_f1"])
        matrices.append(pd.crosstab(tested["actual"], tested["predicted"]))
    summary = json.loads((recipe_dir / "cv" / "metrics.json").read_text())
    assert summary["folds"] == len(official)
    assert summary["accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert summary["accuracy"]["std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert summary["macro_f1"]["mean"] == pytest.approx(np.mean(f1s))
    assert summary["macro_f1"]["std"] == pytest.approx(np.std(f1s, ddof=1))
    summed = pd.read_csv(recipe_dir / "cv" / "confusion_matrix.csv", index_col="actual")
    expected = sum(m.reindex(index=summed.index, columns=summed.columns, fill_value=0) for m in matrices)
    np.testing.assert_array_equal(summed.to_numpy(), expected.to_numpy())
    assert summed.to_numpy().sum() == sum(len(c) for c in official.values())
    assert len(pd.read_csv(recipe_dir / "cv" / "folds.csv")) == len(official)
    assert (recipe_dir / "cv" / "confusion.png").stat().st_size > 0


def test_esc50_recipe_cross_validates_through_dvc(make_workspace):
    """The README's ESC-50 block on three official folds (`split.folds: [1, 2, 3]`; five cost CI a minute more)."""
    ws = make_workspace()
    raw = make_esc50_tree(ws.root / "data" / "ESC-50", folds=ESC_FOLDS)
    recipe_dir = prepare(ws, "esc50", list(ESC_CLASSES), {"split": {"folds": list(range(1, ESC_FOLDS + 1))}})
    lines = readme_block("cd recipes/esc50")
    out = run_readme(ws, lines)

    repro = out["dvc repro"]
    assert "train@4" not in repro
    for k in range(1, ESC_FOLDS + 1):
        assert f"Running stage 'train@{k}'" in repro and f"Running stage 'evaluate@{k}'" in repro
    official = {k: set(part["filename"].str.removesuffix(".wav")) for k, part in raw.groupby("fold")}
    check_folds(recipe_dir, official)
    assert "cv/metrics.json" in out["dvc metrics show"] and "accuracy.mean" in out["dvc metrics show"]

    # `dvc repro train@3` ran last: with nothing changed it does nothing
    assert "Stage 'train@3' didn't change, skipping" in out["dvc repro train@3"]
    assert "Running stage" not in out["dvc repro train@3"]
    weights = (recipe_dir / "models" / "fold3" / "model.safetensors").read_bytes()

    # `fretlab predict --fold 1` uses models/fold1 and agrees with fold 1's evaluation of that clip
    predicted = json.loads(out["fretlab predict ../../data/ESC-50/audio/1-100032-A-0.wav --fold 1"])
    assert predicted["mode"] == "note" and Path(predicted["model_dir"]) == Path("models/fold1")
    evaluated = pd.read_csv(recipe_dir / "plots" / "fold1" / "confusion" / "test.csv").set_index("note_id")
    assert predicted["label"] == evaluated.loc["1-100032-A-0", "predicted"]

    # forcing fold 3 again resumes from its persisted checkpoint: no epoch re-trained, same weights
    forced = ws.run("bash", "-c", "cd recipes/esc50 && dvc repro -f -s train@3").stdout
    assert "resuming from checkpoints/fold3/last.pt after epoch 2" in forced
    assert "epoch 1:" not in forced
    assert (recipe_dir / "models" / "fold3" / "model.safetensors").read_bytes() == weights


def test_urbansound8k_recipe_first_fold_through_dvc(make_workspace):
    """The README's quick check: one fold through DVC, testing on exactly official fold 1, validating on fold 2.

    All ten folds' roles are asserted in test_crossval.py (adapter, split and feature cache, no DVC);
    the full `dvc repro` + aggregate path is the ESC-50 test's.
    """
    ws = make_workspace()
    raw = make_urbansound8k_tree(ws.root / "data" / "UrbanSound8K")
    recipe_dir = prepare(ws, "urbansound8k", list(US8K_CLASSES))
    out = run_readme(ws, readme_block("cd recipes/urbansound8k"))

    first = out["dvc repro evaluate@1"]
    assert "Running stage 'train@1'" in first and "Running stage 'evaluate@1'" in first
    assert "train@2" not in first  # one fold alone
    official = {k: set(part["slice_file_name"].str.removesuffix(".wav")) for k, part in raw.groupby("fold")}
    for split, fold in (("test", 1), ("val", 2)):
        scored = pd.read_csv(recipe_dir / "plots" / "fold1" / "confusion" / f"{split}.csv", dtype=str)
        assert set(scored["note_id"]) == official[fold] and len(scored) == len(official[fold])
    metrics = json.loads(out["cat metrics/fold1/test.json"])
    cfg = Featurize(**TINY_RECIPE["featurize"])
    fold1 = raw[raw["fold"] == 1]
    windows = sum(len(clip_window_onsets(0.0, sf.info(ws.root / "data" / "UrbanSound8K" / "audio" / "fold1" / n)
                                         .duration, cfg)) for n in fold1["slice_file_name"])
    assert metrics["n"] == len(official[1]) and metrics["n_windows"] == windows  # clip-level, from windows
    assert (recipe_dir / "models" / "fold1" / "model.safetensors").is_file()
