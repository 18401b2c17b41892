"""Atomic file output: a killed stage never leaves a half-written file behind."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas costs ~0.3 s to import; `fretlab predict` writes CSV without it
    import pandas as pd


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty staging directory; swap it in for ``path`` only if the block succeeds.

    A reader sees the complete old directory, the complete new one, or (for an instant during the
    swap, or after a crash in it) none at all, never a mix. A staging directory left by a killed
    run is removed on the next call.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    old = path.with_name(f".{path.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        shutil.rmtree(old, ignore_errors=True)
        if path.exists() or path.is_symlink():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class NpyRowWriter:
    """A preallocated ``.npy`` file filled row by row with positioned writes; readers memory-map it.

    Rows go straight to the kernel's page cache with ``os.pwrite``. Writing through ``np.memmap``
    instead would map every written page into this process, so its resident memory would grow with
    the array; here it stays flat whatever the dataset size.
    """

    def __init__(self, path: str | Path, shape: tuple[int, ...], dtype: np.dtype | type = np.float32) -> None:
        self.path = Path(path)
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.row_bytes = self.dtype.itemsize * math.prod(self.shape[1:])
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
        with open(self.path, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            self.offset = f.tell()
            f.truncate(self.offset + self.row_bytes * self.shape[0])  # sparse until written
        self._fd = os.open(self.path, os.O_RDWR)

    def _at(self, row: int) -> int:
        if not 0 <= row < self.shape[0]:
            raise IndexError(f"row {row} out of range for {self.path} with {self.shape[0]} rows")
        return self.offset + row * self.row_bytes

    def write(self, row: int, values: np.ndarray) -> None:
        """Store ``values`` as row ``row`` (shape ``shape[1:]``) or as rows from ``row`` on (``(k, *shape[1:])``)."""
        values = np.ascontiguousarray(values, dtype=self.dtype)
        if values.shape != self.shape[1:] and values.shape[1:] != self.shape[1:]:
            raise ValueError(f"an array of shape {values.shape} does not fit {self.path} (rows {self.shape[1:]})")
        data = memoryview(values).cast("B")
        pos = self._at(row)
        self._at(row + max(1, data.nbytes // self.row_bytes) - 1)  # the last row must exist too
        done = 0
        while done < data.nbytes:
            done += os.pwrite(self._fd, data[done:], pos + done)

    def read(self, row: int) -> np.ndarray:
        """Row ``row`` as a new array."""
        data = os.pread(self._fd, self.row_bytes, self._at(row))
        return np.frombuffer(data, dtype=self.dtype).reshape(self.shape[1:]).copy()

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> NpyRowWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_json(path: str | Path, data: Any) -> None:
    """Write pretty, key-sorted JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_csv(path: str | Path, df: pd.DataFrame) -> None:
    """Write a CSV atomically (no index column)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def available_cores() -> int:
    """CPU cores this process may use (``sched_getaffinity`` is Linux-only)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_count(requested: int) -> int:
    """Worker processes to use: ``requested``, or every available core when it is 0."""
    return requested or available_cores()


def ordered_map(fn: Callable[[Any], Any], items: Iterable[Any], workers: int) -> Iterator[Any]:
    """``map(fn, items)`` on ``workers`` processes, results in input order (one worker: in this process).

    The generators render each item from its own seeded stream, so the results, and the files they
    write, are the same for any worker count.
    """
    items = list(items)
    if workers <= 1:
        yield from map(fn, items)
        return
    from concurrent.futures import ProcessPoolExecutor  # multiprocessing: not on `fretlab predict`'s import path

    with ProcessPoolExecutor(max_workers=workers) as pool:  # ~8 chunks per worker keeps the cores evenly loaded
        yield from pool.map(fn, items, chunksize=max(1, len(items) // (workers * 8)))


def threaded_map(fn: Callable[[Any], Any], items: Iterable[Any], workers: int) -> Iterator[Any]:
    """``map(fn, items)`` on ``workers`` threads, results in input order, at most ``2 * workers`` items in flight.

    For functions that release the GIL (ONNX Runtime sessions, NumPy's FFT); ``items`` is read lazily,
    so a long recording's windows are not all held at once.
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Any] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
