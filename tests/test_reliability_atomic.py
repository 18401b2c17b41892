"""Atomic outputs: a write that fails or is killed midway leaves nothing a later stage would accept."""

from __future__ import annotations

import ast
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from _reliability import CLASSES, meta_rows, small_cfg, tone, write_audio
from fretlab.artifacts.modeldir import ModelDirError, load_model_dir, save_model_dir
from fretlab.cache import featurize as featurize_mod
from fretlab.cache.featurize import featurize_all
from fretlab.cache.reader import load_features
from fretlab.io import atomic_dir, atomic_path, read_json, write_csv, write_json

REPO = Path(__file__).resolve().parents[1]


def test_atomic_path_failure_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"run": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('{"run": 2, "half', encoding="utf-8")
        raise RuntimeError("disk full")
    assert read_json(target) == {"run": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_write_csv_failure_midway_leaves_no_file(tmp_path, monkeypatch):
    def half_then_fail(self, path, **kwargs):
        Path(path).write_text("note_id,label\nn1,", encoding="utf-8")
        raise OSError("killed")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    with pytest.raises(OSError, match="killed"):
        write_csv(tmp_path / "train.csv", pd.DataFrame({"note_id": ["n1"], "label": [0]}))
    assert list(tmp_path.iterdir()) == []


def test_sigkill_inside_atomic_path_leaves_only_a_temp_name(tmp_path):
    """A real SIGKILL (no cleanup runs): the target never appears; readers ignore the dot-temp file."""
    target = tmp_path / "features" / "train.npy"
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from fretlab.io import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(1000, 64))
            arr[:500] = 1.0
            arr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir()] == [".train.npy.tmp.npy"]
    with pytest.raises(FileNotFoundError):
        load_features(target.parent, "train")
    write_json(target.parent / "x.json", {})  # a later atomic write is unaffected
    with atomic_path(target) as tmp:  # and the same target can be written again
        np.save(tmp, np.zeros(3))
    assert np.load(target).shape == (3,)


def test_atomic_dir_swaps_whole_directories(tmp_path):
    out = tmp_path / "features"
    with atomic_dir(out) as staging:
        (staging / "a.txt").write_text("old", encoding="utf-8")
        (staging / "only_old.txt").write_text("x", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_dir(out) as staging:
        (staging / "a.txt").write_text("new", encoding="utf-8")
        raise RuntimeError("boom")
    assert (out / "a.txt").read_text(encoding="utf-8") == "old"
    with atomic_dir(out) as staging:
        (staging / "a.txt").write_text("new", encoding="utf-8")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]  # no stale file survives a rerun
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features"]


@pytest.fixture
def small_dataset(tmp_path):
    root = tmp_path / "audio"
    rows = []
    for i in range(9):
        write_audio(root / f"f{i}.wav", tone(0.6, freq=200.0 + 40 * i))
        rows.append({"audio_path": f"f{i}.wav", "split": ("train", "val", "test")[i // 3]})
    meta = meta_rows(rows)
    return root, meta


def test_featurize_killed_midway_leaves_no_cache_and_reruns_cleanly(tmp_path, small_dataset):
    """SIGKILL after train.npy is written but before the index: no half cache is visible."""
    root, meta = small_dataset
    meta_path = tmp_path / "meta.csv"
    meta.to_csv(meta_path, index=False)
    out = tmp_path / "features"
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        import pandas as pd
        from fretlab.cache import featurize
        from fretlab.params import Featurize

        real = featurize.write_csv
        def write_csv(path, df):
            real(path, df)
            if Path(path).name == "train.csv":
                os.kill(os.getpid(), signal.SIGKILL)  # between two files of the cache
        featurize.write_csv = write_csv
        cfg = Featurize(**{small_cfg().model_dump()!r})
        featurize.featurize_all(pd.read_csv({str(meta_path)!r}), Path({str(root)!r}), cfg, {CLASSES!r},
                                Path({str(out)!r}), workers=1)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not out.exists(), "a killed featurize must not leave data/features for train to pick up"
    assert (tmp_path / ".features.tmp" / "train.npy").is_file()  # the evidence stays in the staging dir

    summary = featurize_all(meta, root, small_cfg(), CLASSES, out, workers=1)
    assert summary["skipped_total"] == 0 and not (tmp_path / ".features.tmp").exists()
    assert load_features(out, "train")[0].shape[0] == 3


def test_featurize_failure_keeps_the_previous_complete_cache(tmp_path, small_dataset, monkeypatch):
    root, meta = small_dataset
    out = tmp_path / "features"
    featurize_all(meta, root, small_cfg(), CLASSES, out, workers=1)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def fail(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(featurize_mod, "write_json", fail)  # the very last write of the run
    with pytest.raises(OSError):
        featurize_all(meta.assign(label_category="harmonic"), root, small_cfg(), CLASSES, out, workers=1)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_model_dir_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    from fretlab.artifacts import modeldir
    from fretlab.models.classifier import Classifier
    from fretlab.params import parse_params

    params = parse_params({"featurize": {"n_mels": 16}, "model": {"crnn": {"channels": [4], "pools": [[2, 2]],
                                                                           "rnn_hidden": 4, "head_hidden": 4}}})
    model = Classifier(params, 3)
    out = tmp_path / "model"

    def fail(*args, **kwargs):
        raise OSError("killed while writing config.json")

    monkeypatch.setattr(modeldir, "write_json", fail)
    with pytest.raises(OSError):
        save_model_dir(out, model, params, CLASSES, {})
    assert not out.exists()
    with pytest.raises(ModelDirError, match=r"missing model\.safetensors"):
        load_model_dir(out)
    monkeypatch.undo()
    save_model_dir(out, model, params, CLASSES, {})
    loaded, _, classes = load_model_dir(out)
    assert classes == CLASSES
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


# --- audit: every file writer in src/ and stages/ goes through atomic_path / atomic_dir ---------------------

WRITERS = {"save", "savez", "savez_compressed", "open_memmap", "to_csv", "to_json", "to_parquet", "write_text",
           "write_bytes", "savefig", "save_file", "write", "dump"}
ALLOWED = {  # (file, function): the atomic primitives themselves, and writes into a staging path
    ("src/fretlab/io.py", "atomic_path"), ("src/fretlab/io.py", "NpyRowWriter.__init__"),
}


def _is_file_write(node: ast.Call) -> bool:
    func = node.func
    if isinstance(func, ast.Name) and func.id == "open":
        mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
        return isinstance(mode, ast.Constant) and any(c in str(mode.value) for c in "wax+")
    if not isinstance(func, ast.Attribute) or func.attr not in WRITERS:
        return False
    target = ast.unparse(func.value)
    if func.attr == "write":
        return target in {"sf", "soundfile"}
    if func.attr == "dump":
        return target in {"json", "yaml"}
    return True


def _unprotected_writes(path: Path, root: Path = REPO) -> list[str]:
    """File writes that are not lexically inside ``with atomic_path(...)`` / ``atomic_dir`` / ``NpyRowWriter``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rel = path.relative_to(root).as_posix()
    found: list[str] = []

    def visit(node: ast.AST, protected: bool, scope: str) -> None:
        if isinstance(node, ast.With | ast.AsyncWith):
            names = {ast.unparse(item.context_expr.func).split(".")[-1] for item in node.items
                     if isinstance(item.context_expr, ast.Call)}
            protected = protected or bool(names & {"atomic_path", "atomic_dir", "NpyRowWriter"})
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            scope = f"{scope}.{node.name}" if scope else node.name
        if isinstance(node, ast.Call) and _is_file_write(node) and not protected and (rel, scope) not in ALLOWED:
            found.append(f"{rel}:{node.lineno} {ast.unparse(node)[:80]} (in {scope or 'module'})")
        for child in ast.iter_child_nodes(node):
            visit(child, protected, scope)

    visit(tree, False, "")
    return found


def pipeline_code() -> list[Path]:
    """Every stage script and every src module a DVC stage depends on (root and recipe dvc.yaml files)."""
    files = set(REPO.glob("stages/*.py"))
    for dvc_yaml in [REPO / "dvc.yaml", *REPO.glob("recipes/*/dvc.yaml")]:
        for stage in (yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")) or {}).get("stages", {}).values():
            for dep in stage.get("do", stage).get("deps", []):
                dep = next(iter(dep)) if isinstance(dep, dict) else str(dep)
                if "${" in dep:
                    continue  # data paths
                path = (dvc_yaml.parent / dep).resolve()
                if path.is_relative_to(REPO / "src") or path.is_relative_to(REPO / "stages"):
                    files |= set(path.rglob("*.py")) if path.is_dir() else {path}
    return sorted(files)


def test_every_writer_in_the_pipeline_code_is_atomic():
    files = pipeline_code()
    assert REPO / "src/fretlab/cache/featurize.py" in files and REPO / "src/fretlab/artifacts/modeldir.py" in files
    # the track recipes' code (recipes/attributes/dvc.yaml, generated from recipes/pipelines/tracks.yaml)
    for module in ("synth/attributes.py", "cache/sequences.py", "cache/featurize_tracks.py", "tasks/evaluation.py"):
        assert REPO / "src/fretlab" / module in files, module
    problems = [hit for f in files if f.suffix == ".py" for hit in _unprotected_writes(f)]
    assert not problems, "non-atomic file writes (use fretlab.io.atomic_path/atomic_dir/write_json/write_csv):\n" + \
        "\n".join(problems)


def test_the_audit_catches_plain_writes(tmp_path):
    probe = tmp_path / "src" / "probe.py"
    probe.parent.mkdir()
    probe.write_text(textwrap.dedent("""
        import json, numpy as np, soundfile as sf
        from pathlib import Path
        from fretlab.io import atomic_path

        def plain(p, df, x):
            Path(p).write_text(json.dumps({}))
            df.to_csv(p)
            np.save(p, x)
            sf.write(p, x, 16000)
            with open(p, "w") as f:
                json.dump({}, f)

        def safe(p, x):
            with atomic_path(p) as tmp:
                np.save(tmp, x)
            with open(p) as f:
                return f.read()
    """), encoding="utf-8")
    hits = _unprotected_writes(probe, tmp_path)
    assert len(hits) == 6 and all("(in plain)" in h for h in hits), hits
