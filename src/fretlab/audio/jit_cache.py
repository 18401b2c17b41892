"""Fill numba's on-disk cache of librosa's compiled kernels one process at a time.

librosa declares its gufuncs with ``cache=True`` and explicit signatures, so numba compiles them when
their module is first imported and writes two files per kernel. When two processes do that at the
same time on an empty cache, the pair can come from different processes and the next process that
loads it segfaults (numba/numba#10128; seen here as ``dvc repro`` exiting 139 in ``featurize`` while
another test process featurized). Importing those modules under an inter-process lock, once after
install (``make setup``) and before the test processes start, leaves a complete cache that every
later process only reads.

``python -m fretlab.audio.jit_cache`` does it and prints where the lock lives.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path

from filelock import FileLock

# librosa 0.11's modules that define @guvectorize(cache=True) kernels (grep guvectorize in librosa/)
GUFUNC_MODULES = ("librosa.core.audio", "librosa.util.utils", "librosa.core.pitch", "librosa.beat")


def lock_path() -> Path:
    """The lock file, per user in the temporary directory (one machine's processes share it)."""
    user = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return Path(tempfile.gettempdir()) / f"fretlab-numba-cache-{user}.lock"


def warm_librosa_kernels(timeout: float = 600.0) -> list[str]:
    """Import librosa's cached-gufunc modules while holding :func:`lock_path`; returns the modules imported.

    A process that finds the cache complete only reads it (milliseconds); one that finds it empty
    compiles it (about a minute on two cores) while the others wait.
    """
    with FileLock(lock_path(), timeout=timeout):
        for name in GUFUNC_MODULES:
            importlib.import_module(name)
    return list(GUFUNC_MODULES)


if __name__ == "__main__":
    modules = warm_librosa_kernels()
    print(f"numba cache of {', '.join(modules)} is complete (lock {lock_path()})")
