"""Every committed dvc.lock matches the code and params it was made from: a stale lock is a bug.

A lock goes stale when a module that a stage imports, or a param that it reads, changes without a
``dvc repro`` of that project. Shared modules make this easy to miss: a change to ``fretlab.synth.guitar``
touches every recipe's synthesize stage. Data dependencies (generated or downloaded) are not checked here;
only files that git tracks, and params.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def _tracked_files() -> frozenset[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    return frozenset((ROOT / p).resolve() for p in out.decode().split("\0") if p)


def _locks() -> list[Path]:
    return [p for p in [ROOT / "dvc.lock", *sorted(ROOT.glob("recipes/*/dvc.lock"))] if p.is_file()]


def _lookup(tree: dict[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        node = node[part]
    return node


def _stale(lock: Path, tracked: frozenset[Path]) -> list[str]:
    """One line per code dependency or param of ``lock`` that no longer matches the working tree."""
    project = lock.parent
    stages = yaml.safe_load(lock.read_text())["stages"]
    problems = []
    for name, stage in stages.items():
        for dep in stage.get("deps", []):
            path = (project / dep["path"]).resolve()
            if path not in tracked or "md5" not in dep:
                continue  # data, or a directory: not code
            if hashlib.md5(path.read_bytes()).hexdigest() != dep["md5"]:
                problems.append(f"{name}: {dep['path']} changed")
        for params_file, values in (stage.get("params") or {}).items():
            current = yaml.safe_load((project / params_file).read_text())
            for key, value in values.items():
                try:
                    now = _lookup(current, key)
                except (KeyError, TypeError):
                    problems.append(f"{name}: param {key} is gone from {params_file}")
                    continue
                if now != value:
                    problems.append(f"{name}: param {key} is {now!r}, the lock has {value!r}")
    return problems


@pytest.mark.parametrize("lock", _locks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_lock_matches_code_and_params(lock: Path) -> None:
    problems = _stale(lock, _tracked_files())
    fix = f"run `dvc repro` in {lock.parent.relative_to(ROOT) or '.'} and commit its dvc.lock"
    assert not problems, f"{lock.relative_to(ROOT)} is stale ({fix}): " + "; ".join(problems[:8])


def test_stale_dependency_is_reported(tmp_path: Path) -> None:
    """The check itself: a changed module and a changed param are both named."""
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "params.yaml").write_text("train:\n  lr: 0.1\n")
    old = hashlib.md5(b"x = 0\n").hexdigest()
    lock = tmp_path / "dvc.lock"
    lock.write_text(yaml.safe_dump({"schema": "2.0", "stages": {"train": {
        "cmd": "python code.py",
        "deps": [{"path": "code.py", "hash": "md5", "md5": old, "size": 6}],
        "params": {"params.yaml": {"train.lr": 0.2}}}}}))
    problems = _stale(lock, frozenset({(tmp_path / "code.py").resolve()}))
    assert problems == ["train: code.py changed", "train: param train.lr is 0.1, the lock has 0.2"]
