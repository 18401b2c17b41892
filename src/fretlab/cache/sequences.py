"""A variable-length sequence cache: one flat memory-mapped array per split, plus row offsets.

Item ``i`` of a split is rows ``offsets[i]:offsets[i + 1]`` of ``<split>.npy`` (float32
``[total_frames, dims]``); ``<split>.offsets.npy`` holds the ``n + 1`` int64 offsets. Readers
memory-map the array, so an item is a view and a split never has to fit in memory; no per-item
files or pickles. Batching helpers for recurrent models: :class:`BucketBatchSampler` groups items
of similar length (less padding), :func:`pad_batch` pads a batch for ``pack_padded_sequence``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from fretlab.cache.reader import FeatureCacheError
from fretlab.io import atomic_path

DTYPE = np.dtype(np.float32)


def sequence_paths(directory: str | Path, split: str) -> tuple[Path, Path]:
    """``(<dir>/<split>.npy, <dir>/<split>.offsets.npy)``."""
    directory = Path(directory)
    return directory / f"{split}.npy", directory / f"{split}.offsets.npy"


def _npy_header(rows: int, dims: int) -> bytes:
    out = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(DTYPE), "fortran_order": False, "shape": (rows, dims)}
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue()


class SequenceWriter:
    """Writes one split's items, in order, as a sequence cache; the files appear only if the block succeeds.

    ``with SequenceWriter(dir, split, dims) as w: w.append(x)`` for each ``[T, dims]`` item. Rows
    are streamed to a temporary ``.npy`` whose header is rewritten with the final row count on exit
    (numpy pads the header so that the first axis can grow in place), so memory holds one item at a
    time, not the split. ``dims`` may be left to the first item.
    """

    def __init__(self, directory: str | Path, split: str, dims: int | None = None) -> None:
        self.data_path, self.offsets_path = sequence_paths(directory, split)
        self.dims = dims
        self.offsets: list[int] = [0]
        self._file: BinaryIO | None = None
        self._session: AbstractContextManager[BinaryIO] | None = None

    @contextmanager
    def _open(self) -> Iterator[BinaryIO]:
        with atomic_path(self.data_path) as tmp_data, atomic_path(self.offsets_path) as tmp_offsets:
            with open(tmp_data, "wb") as f:
                yield f
                self._finish(f)
            np.save(tmp_offsets, np.asarray(self.offsets, dtype=np.int64))

    def __enter__(self) -> SequenceWriter:
        self._session = self._open()
        self._file = self._session.__enter__()
        return self

    def __exit__(self, *exc: object) -> bool | None:
        assert self._session is not None, "SequenceWriter exited without being entered"
        self._file, session, self._session = None, self._session, None
        return session.__exit__(*exc)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def append(self, item: np.ndarray) -> None:
        """Add the next item, ``[T, dims]`` with ``T >= 1`` (cast to float32)."""
        if self._file is None:
            raise RuntimeError("SequenceWriter.append outside its `with` block")
        item = np.ascontiguousarray(item, dtype=DTYPE)
        if item.ndim != 2 or item.shape[0] == 0:
            # an empty item has no mean/std and pack_padded_sequence refuses length 0
            raise ValueError(f"{self.data_path}: item {len(self)} must be [frames >= 1, dims], got shape {item.shape}")
        if self.dims is None:
            self.dims = item.shape[1]
        if item.shape[1] != self.dims:
            raise ValueError(f"{self.data_path}: item {len(self)} has {item.shape[1]} dims, the split {self.dims}")
        if len(self) == 0:
            self._file.write(_npy_header(0, self.dims))  # placeholder, rewritten with the row count on exit
        self._file.write(memoryview(item).cast("B"))
        self.offsets.append(self.offsets[-1] + item.shape[0])

    def _finish(self, f: BinaryIO) -> None:
        header = _npy_header(self.offsets[-1], self.dims or 0)
        if len(self) == 0:
            f.write(header)
            return
        if len(header) != len(_npy_header(0, self.dims or 0)):  # numpy reserves room for axis 0 to grow
            raise RuntimeError(f"{self.data_path}: the .npy header grew with the row count; cannot patch it")
        f.seek(0)
        f.write(header)


def _fail(path: Path, problem: str) -> FeatureCacheError:
    return FeatureCacheError(f"{path}: {problem}; re-run the featurize stage that writes it")


class SequenceSet:
    """A split of the sequence cache: ``len``, ``set[i] -> [T_i, dims]`` (a view of the memory map), ``lengths``."""

    def __init__(self, data: np.ndarray, offsets: np.ndarray) -> None:
        self.data = data
        self.offsets = offsets
        self.lengths = np.diff(offsets)

    @property
    def dims(self) -> int:
        """Feature dimensions per frame."""
        return int(self.data.shape[1])

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> np.ndarray:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"item {i} out of range for a sequence set of {n} items")
        i %= n
        return self.data[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))

    def pooled_stats(self) -> np.ndarray:
        """Each item's mean, then std, over time of every dim: float32 ``[n, 2 * dims]`` (the forest's input).

        Accumulated in float64, one item at a time, so the memory map is read once and never whole.
        """
        out = np.empty((len(self), 2 * self.dims), dtype=np.float32)
        for i, item in enumerate(self):
            x = np.asarray(item, dtype=np.float64)
            out[i, : self.dims] = x.mean(axis=0)
            out[i, self.dims :] = x.std(axis=0)
        return out

    def stats(self, chunk_rows: int = 1 << 16) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of every dim over all frames of the split, float32 ``[dims]`` each (for normalizing).

        Computed in float64 chunks of ``chunk_rows`` frames (sum and sum of squared deviations from a
        first-chunk shift, which keeps the one-pass variance accurate).
        """
        rows = self.data.shape[0]
        if rows == 0:
            raise ValueError("stats of an empty sequence set")
        shift = np.asarray(self.data[: min(rows, chunk_rows)], dtype=np.float64).mean(axis=0)
        total = np.zeros(self.dims)
        squares = np.zeros(self.dims)
        for start in range(0, rows, chunk_rows):
            x = np.asarray(self.data[start : start + chunk_rows], dtype=np.float64) - shift
            total += x.sum(axis=0)
            squares += np.square(x).sum(axis=0)
        mean = total / rows
        var = np.maximum(squares / rows - np.square(mean), 0.0)
        return (mean + shift).astype(np.float32), np.sqrt(var).astype(np.float32)


def pooled_feature_names(names: Sequence[str]) -> list[str]:
    """Column names of :meth:`SequenceSet.pooled_stats` for per-frame dims ``names``."""
    return [f"{n}_mean" for n in names] + [f"{n}_std" for n in names]


def load_sequences(directory: str | Path, split: str) -> SequenceSet:
    """Memory-map a split written by :class:`SequenceWriter`; :class:`FeatureCacheError` if it is inconsistent."""
    data_path, offsets_path = sequence_paths(directory, split)
    for path in (data_path, offsets_path):
        if not path.is_file():
            raise _fail(path, "sequence cache file not found")
    try:
        data = np.load(data_path, mmap_mode="r")
        offsets = np.load(offsets_path)
    except (ValueError, OSError, EOFError) as exc:
        raise _fail(data_path, f"unreadable sequence cache ({exc})") from None
    if data.ndim != 2 or data.dtype != DTYPE:
        raise _fail(data_path, f"expected a float32 [frames, dims] array, got {data.dtype} {data.shape}")
    if offsets.ndim != 1 or offsets.size == 0 or offsets.dtype.kind not in "iu":
        raise _fail(offsets_path, f"expected a 1-D integer array of n + 1 offsets, got {offsets.dtype} {offsets.shape}")
    offsets = offsets.astype(np.int64, copy=False)
    if offsets[0] != 0 or np.any(np.diff(offsets) < 0):
        raise _fail(offsets_path, "offsets must start at 0 and never decrease")
    if offsets[-1] != data.shape[0]:
        raise _fail(offsets_path, f"the last offset is {offsets[-1]} but {data_path.name} has {data.shape[0]} rows")
    return SequenceSet(data, offsets)


class BucketBatchSampler:
    """Batches of indices of similar length, for ``DataLoader(batch_sampler=...)``; every index once per epoch.

    ``shuffle=True`` (training): each epoch shuffles the indices, sorts each chunk of ``batch_size *
    bucket_size_multiplier`` of them by length, cuts the chunks into batches and shuffles the batch
    order, so batches hold similar lengths (little padding) yet vary from epoch to epoch. All
    randomness is drawn from ``generator``: the same generator state gives the same epoch.
    ``shuffle=False`` (evaluation): batches in ascending length order, no randomness.
    """

    def __init__(
        self, lengths: Sequence[int] | np.ndarray, batch_size: int, generator: torch.Generator | None = None,
        shuffle: bool = True, bucket_size_multiplier: int = 50,
    ) -> None:
        if batch_size < 1 or bucket_size_multiplier < 1:
            raise ValueError(f"batch_size ({batch_size}) and bucket_size_multiplier ({bucket_size_multiplier}) "
                             "must be >= 1")
        if shuffle and generator is None:
            raise ValueError("BucketBatchSampler(shuffle=True) needs a torch.Generator, so epochs are reproducible")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.generator = generator
        self.shuffle = shuffle
        self.bucket = batch_size * bucket_size_multiplier

    def __len__(self) -> int:
        # every bucket but the last holds a whole number of batches
        return math.ceil(len(self.lengths) / self.batch_size)

    def _cut(self, order: np.ndarray) -> list[list[int]]:
        return [order[i : i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]

    def __iter__(self) -> Iterator[list[int]]:
        if not self.shuffle:
            yield from self._cut(np.argsort(self.lengths, kind="stable"))
            return
        perm = torch.randperm(len(self.lengths), generator=self.generator).numpy()
        batches: list[list[int]] = []
        for start in range(0, len(perm), self.bucket):
            chunk = perm[start : start + self.bucket]
            batches += self._cut(chunk[np.argsort(self.lengths[chunk], kind="stable")])
        for b in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[b]


def pad_batch(seqs: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad ``[T_i, D]`` items to float32 ``[B, T_max, D]``; also return their lengths (int64, CPU)."""
    if not seqs:
        raise ValueError("pad_batch needs at least one sequence")
    # torch.tensor copies: items are often read-only memory-map views, which as_tensor would share (with a warning)
    tensors = [torch.tensor(np.asarray(s), dtype=torch.float32) for s in seqs]
    lengths = torch.tensor([t.shape[0] for t in tensors], dtype=torch.int64)
    return pad_sequence(tensors, batch_first=True), lengths
