"""fretlab.audio.jit_cache: librosa's gufunc modules are imported under an inter-process lock."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest
from filelock import FileLock, Timeout

from fretlab.audio import jit_cache


def test_every_librosa_module_with_cached_gufuncs_is_listed() -> None:
    # a librosa upgrade that adds a cached gufunc module must add it here, or its first compile can race
    root = Path(importlib.import_module("librosa").__file__).parent
    found = set()
    for path in root.rglob("*.py"):
        if re.search(r"@(numba\.)?guvectorize\(", path.read_text(encoding="utf-8")):
            parts = path.relative_to(root.parent).with_suffix("").parts
            found.add(".".join(parts))
    assert found == set(jit_cache.GUFUNC_MODULES)


def test_every_module_is_imported_while_the_lock_is_held(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lock = tmp_path / "numba.lock"
    monkeypatch.setattr(jit_cache, "lock_path", lambda: lock)
    held = []

    def record(name: str) -> object:  # is another process shut out at this moment?
        try:
            FileLock(lock).acquire(timeout=0)
        except Timeout:
            held.append(name)
        return sys.modules.get(name)

    monkeypatch.setattr(jit_cache.importlib, "import_module", record)
    assert jit_cache.warm_librosa_kernels() == list(jit_cache.GUFUNC_MODULES)
    assert held == list(jit_cache.GUFUNC_MODULES)


def test_warm_waits_for_the_lock_another_process_holds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lock = tmp_path / "numba.lock"
    monkeypatch.setattr(jit_cache, "lock_path", lambda: lock)
    with FileLock(lock), pytest.raises(Timeout):  # held elsewhere: warm must not go ahead without it
        jit_cache.warm_librosa_kernels(timeout=0.2)
    jit_cache.warm_librosa_kernels(timeout=0.2)  # free again: it proceeds
