"""Build the feature cache: one memory-mapped array per split, streamed from parallel workers.

DataLoader worker processes each load a handful of files, window and normalize their events, and
run the shared :class:`~fretlab.audio.features.FeatureExtractor`; the parent writes the results straight
into a preallocated ``.npy`` file per split (positioned writes; readers memory-map it), with a
bounded number of chunks in flight and at most ``batch_size`` events per file task, so peak memory
does not grow with the dataset.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from fretlab.audio.features import FeatureExtractor, extract
from fretlab.audio.loading import (
    AudioError,
    clip_window_onsets,
    load_audio_up_to,
    peak_normalize,
    prepare_windows,
    read_window,
)
from fretlab.data.metadata import AudioRoot
from fretlab.io import NpyRowWriter, atomic_dir, atomic_path, write_csv, write_json
from fretlab.params import Featurize

_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter (malloc.h)


class FeaturizeError(ValueError):
    """An event that cannot be featurized while ``featurize.on_error`` is ``raise``."""


@dataclass
class FileTask:
    """Events of one audio file (at most ``featurize.batch_size``, so a task's memory is bounded)."""

    path: str
    positions: list[int]
    note_ids: list[str]
    onsets: list[float | None]  # None: a snippet, centre-padded (onset-cropped when longer than the window)
    error: str | None = None  # set when the path is unusable (e.g. escapes data.root): skip every event
    given: list[float] = field(default_factory=list)  # metadata onsets, checked against the length even for snippets


@dataclass
class ChunkResult:
    """Featurized events of a chunk: rows ``positions`` of the split, their ``features``, and what was skipped."""

    positions: list[int] = field(default_factory=list)
    features: np.ndarray | None = None
    skipped: list[dict[str, str]] = field(default_factory=list)


AudioLoader = Callable[[str, int, float], tuple[tuple[np.ndarray, int] | None, float]]


class LastFileLoader:
    """:func:`~fretlab.audio.loading.load_audio_up_to` that keeps the last file decoded.

    A file with more events than ``featurize.batch_size`` is split into consecutive tasks; without
    this, each task decoded and resampled the whole file again (at 8000 events per 30-s file, most of
    featurize's time). One file at most is kept, and only files below ``stream_above_sec``, so
    memory stays bounded.
    """

    def __init__(self) -> None:
        self._last: tuple[str, tuple[tuple[np.ndarray, int] | None, float]] | None = None

    def __call__(self, path: str, sample_rate: int, max_sec: float) -> tuple[tuple[np.ndarray, int] | None, float]:
        if self._last is None or self._last[0] != path:
            self._last = None  # drop the old file before decoding the next one
            self._last = (path, load_audio_up_to(path, sample_rate, max_sec))
        return self._last[1]


def process_chunk(
    extractor: FeatureExtractor, tasks: list[FileTask], load: AudioLoader = load_audio_up_to
) -> ChunkResult:
    """Load, window and featurize the events of ``tasks``; unusable ones go to ``skipped`` with the reason."""
    cfg = extractor.cfg
    out = ChunkResult()
    windows = np.empty((sum(len(t.positions) for t in tasks), cfg.n_samples), dtype=np.float32)
    for task in tasks:
        try:
            if task.error:
                raise AudioError(task.error)
            # a long file is decoded one window at a time, so its length never sets the memory peak
            loaded, duration = load(task.path, cfg.sample_rate, cfg.stream_above_sec)
        except AudioError as exc:
            out.skipped += [{"note_id": n, "audio_path": task.path, "reason": str(exc)} for n in task.note_ids]
            continue
        given = task.given or [0.0 if o is None else o for o in task.onsets]
        for pos, note_id, onset, claimed in zip(task.positions, task.note_ids, task.onsets, given, strict=True):
            if claimed >= duration:
                reason = (f"{task.path}: onset_sec {claimed:.3f} is past the end of the file ({duration:.3f} s); "
                          "correct the metadata row")
                out.skipped.append({"note_id": note_id, "audio_path": task.path, "reason": reason})
                continue
            if onset is None and duration > cfg.target_duration:
                onset = claimed  # a one-note file longer than the window: a centre crop would cut off the attack
            row = windows[len(out.positions)]
            try:
                if loaded is not None:
                    prepare_windows(*loaded, [onset], cfg, out=row[np.newaxis])
                else:
                    start = max(0.0, (duration - cfg.target_duration) / 2) if onset is None else onset
                    peak_normalize(read_window(task.path, cfg.sample_rate, cfg.n_samples, start), out=row)
            except AudioError as exc:
                out.skipped.append({"note_id": note_id, "audio_path": task.path, "reason": str(exc)})
                continue
            out.positions.append(pos)
    out.features = extract(extractor, windows[: len(out.positions)])
    return out


class ChunkDataset(Dataset):
    """Item ``i`` is chunk ``i`` of file tasks, featurized: the unit of work of a DataLoader worker."""

    def __init__(self, extractor: FeatureExtractor, chunks: Sequence[list[FileTask]]) -> None:
        self.extractor = extractor
        self.chunks = chunks
        self.load = LastFileLoader()  # each forked worker has its own

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int) -> ChunkResult:
        return process_chunk(self.extractor, self.chunks[i], self.load)


def _as_is(result: ChunkResult) -> ChunkResult:
    return result


def featurize_chunks(
    extractor: FeatureExtractor, chunks: Sequence[list[FileTask]], workers: int
) -> Iterator[ChunkResult]:
    """Featurize ``chunks`` in order with ``workers`` DataLoader processes (in this process when ``workers <= 1``).

    Processes, not threads: the per-event Python glue holds the GIL, so threads gave 1.4x on 2 cores.
    On Linux the workers are forked, so they inherit the imported torch and the extractor instead of
    spending seconds importing them; the DataLoader bounds the chunks in flight (``2 * workers``),
    keeps their order, runs each worker's torch on one thread and stops its workers when the parent
    dies. Each torch call in this process also runs on one thread, restored afterwards.
    """
    parallel = workers > 1 and len(chunks) > 1
    loader = DataLoader(
        ChunkDataset(extractor, chunks), batch_size=None, collate_fn=_as_is,
        num_workers=workers if parallel else 0, prefetch_factor=2 if parallel else None,
        multiprocessing_context=_start_method() if parallel else None,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _gc_frozen():
            results = iter(loader)  # forks the workers
        yield from results
    finally:
        torch.set_num_threads(threads)


@contextmanager
def _gc_frozen() -> Iterator[None]:
    """Keep the garbage collector off the objects that exist now (the task lists) in processes forked here.

    A forked worker shares the parent's memory until it writes to a page; the collector's passes
    over every object write to each one, so without this every worker ended up with its own copy of
    the per-event bookkeeping (``gc.freeze`` is made for this; see the ``gc`` module docs).
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _start_method() -> str | None:
    """``fork`` on Linux (cheap workers); elsewhere the platform default, as fork is unsafe on macOS."""
    return "fork" if sys.platform.startswith("linux") else None


def file_tasks(
    df: pd.DataFrame, root: Path, snippets: bool = True, max_events: int | None = None
) -> list[FileTask]:
    """Group a split's events by audio file; one-event files are snippets (centre crop) when ``snippets``.

    A file with more than ``max_events`` events becomes several tasks, so the windows in flight stay
    bounded however many events point into one file. Paths that escape ``root`` (``..``, absolute
    paths, symlinks) become tasks with an ``error``, reported like unreadable audio.
    """
    tasks: list[FileTask] = []
    if df.empty:
        return tasks
    # plain lists sorted once: per-group pandas indexing cost more than featurizing the default dataset
    order = np.argsort(df["audio_path"].astype(str).to_numpy(), kind="stable")  # file order, rows in order
    paths = df["audio_path"].astype(str).to_numpy()[order].tolist()
    positions = df.index.to_numpy()[order].tolist()
    note_ids = df["note_id"].to_numpy()[order].tolist()
    onsets = df["onset_sec"].astype(float).to_numpy()[order].tolist()
    starts = [i for i in range(len(paths)) if i == 0 or paths[i] != paths[i - 1]]
    audio_root, root_dir = AudioRoot(root), str(root)
    for begin, end in zip(starts, [*starts[1:], len(paths)], strict=True):
        path = paths[begin]
        snippet = snippets and end - begin == 1
        error = None
        if audio_root.real_path(path) is None:
            error = f"{root / path}: audio_path escapes the audio root {root}; keep audio files inside data.root"
        step = max_events or end - begin
        for start in range(begin, end, step):
            stop = min(start + step, end)
            tasks.append(FileTask(
                path=os.path.join(root_dir, path),
                positions=positions[start:stop],
                note_ids=note_ids[start:stop],
                onsets=[None] * (stop - start) if snippet else onsets[start:stop],
                error=error,
                given=onsets[start:stop],
            ))
    return tasks


def _chunks(tasks: list[FileTask], events_per_chunk: int) -> Iterator[list[FileTask]]:
    chunk: list[FileTask] = []
    size = 0
    for task in tasks:
        chunk.append(task)
        size += len(task.positions)
        if size >= events_per_chunk:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


@dataclass
class SplitResult:
    """Which rows of a split were featurized (``kept``) and the items skipped, with reasons."""

    kept: np.ndarray
    skipped: list[dict[str, str]] = field(default_factory=list)


def featurize_splits(
    frames: Mapping[str, pd.DataFrame], root: Path, cfg: Featurize, out_dir: Path, workers: int,
    snippets: bool = True,
) -> dict[str, SplitResult]:
    """Featurize each split's events (row order kept) into ``out_dir/<split>.npy``, all through one worker pool.

    Raises :class:`FeaturizeError` on the first bad item unless ``cfg.on_error == "skip"``; skipped
    rows are then dropped from the arrays.
    """
    frames = {split: df.reset_index(drop=True) for split, df in frames.items()}
    jobs = [(split, chunk) for split, df in frames.items()
            for chunk in _chunks(file_tasks(df, root, snippets, cfg.batch_size), cfg.batch_size)]
    out = {split: SplitResult(np.zeros(len(df), dtype=bool)) for split, df in frames.items()}
    with ExitStack() as stack:
        writers = {
            split: stack.enter_context(NpyRowWriter(
                stack.enter_context(atomic_path(out_dir / f"{split}.npy")),
                (len(df), cfg.n_channels, cfg.n_mels, cfg.n_frames),
            ))
            for split, df in frames.items()
        }
        bar = stack.enter_context(tqdm(total=sum(map(len, frames.values())), desc="featurize", unit="ev"))
        # entered last, so closed first on any exit: an error or interrupt stops the workers before the
        # half-written arrays are removed
        results = stack.enter_context(closing(featurize_chunks(FeatureExtractor(cfg), [c for _, c in jobs], workers)))
        for (split, _), res in zip(jobs, results, strict=True):
            if res.skipped and cfg.on_error == "raise":
                item = res.skipped[0]
                raise FeaturizeError(
                    f"{item['reason']} (note_id {item['note_id']}). Fix or remove the file, or set "
                    "featurize.on_error: skip to skip and report such items"
                )
            for begin, end in _consecutive_runs(res.positions):  # one write per run of adjacent rows
                writers[split].write(res.positions[begin], res.features[begin:end])
            out[split].kept[res.positions] = True
            out[split].skipped += res.skipped
            bar.update(len(res.positions) + len(res.skipped))
        for split, writer in writers.items():
            if not out[split].kept.all():
                _compact(writer, out[split].kept)
    return out


def _consecutive_runs(positions: Sequence[int]) -> Iterator[tuple[int, int]]:
    """``(begin, end)`` index ranges of ``positions`` whose values go up by exactly one."""
    begin = 0
    for i in range(1, len(positions) + 1):
        if i == len(positions) or positions[i] != positions[i - 1] + 1:
            yield begin, i
            begin = i


def _compact(arr: NpyRowWriter, kept: np.ndarray) -> None:
    """Drop skipped rows from ``arr``'s file, one row at a time so memory stays bounded."""
    dense_path = arr.path.with_name(arr.path.name + ".dense.npy")
    with NpyRowWriter(dense_path, (int(kept.sum()), *arr.shape[1:]), arr.dtype) as dense:
        for row, pos in enumerate(np.flatnonzero(kept)):
            dense.write(row, arr.read(int(pos)))
    os.replace(dense_path, arr.path)


def expand_clip_windows(meta: pd.DataFrame, cfg: Featurize) -> pd.DataFrame:
    """One row per fixed-length window of each clip (its ``onset_sec``..``offset_sec`` span).

    Window rows get ``note_id`` ``<clip>#w<i>`` and keep the clip's id in ``clip_id``.
    """
    rows = []
    for rec in meta.to_dict("records"):
        for i, start in enumerate(clip_window_onsets(float(rec["onset_sec"]), float(rec["offset_sec"]), cfg)):
            rows.append({**rec, "clip_id": rec["note_id"], "note_id": f"{rec['note_id']}#w{i:03d}",
                         "onset_sec": start})
    return pd.DataFrame(rows, columns=[*meta.columns, "clip_id"])


def return_large_buffers_to_os(threshold: int = 4 << 20) -> None:
    """Pin glibc's mmap threshold so freed buffers above ``threshold`` bytes go straight back to the OS.

    By default glibc raises the threshold after each large free, so the per-chunk window and feature
    arrays (several MB) end up recycled inside a fragmenting heap and resident memory creeps up over
    a long run (measured, one worker: 320 -> 378 MiB from 1k to 6k events; pinned: 193 -> 200 MiB,
    see docs/reliability.md). 4 MiB keeps the front end's per-call STFT buffers (about
    :data:`fretlab.audio.features.SUB_BATCH_BYTES`) in the heap, where they are reused instead of mapped and
    page-faulted afresh on every call. A no-op where libc has no ``mallopt``.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, threshold)
    except (OSError, AttributeError):
        pass


def featurize_all(
    meta: pd.DataFrame, root: Path, cfg: Featurize, classes: list[str], out_dir: Path, workers: int,
    splits: Sequence[str] = ("train", "val", "test"),
) -> dict[str, Any]:
    """Featurize every split of ``meta`` into ``out_dir``; return a summary (counts, skipped).

    With ``cfg.window_hop`` set, each clip becomes overlapping windows and the index gets ``clip_id``.
    Everything is written into a staging directory that replaces ``out_dir`` only once complete, so a
    killed or failed run never leaves arrays and indexes from different runs side by side.
    """
    return_large_buffers_to_os()
    with atomic_dir(out_dir) as staging:
        return _featurize_into(meta, root, cfg, classes, staging, workers, splits)


def _featurize_into(
    meta: pd.DataFrame, root: Path, cfg: Featurize, classes: list[str], out_dir: Path, workers: int,
    splits: Sequence[str],
) -> dict[str, Any]:
    windowed = cfg.window_hop is not None
    if windowed:
        meta = expand_clip_windows(meta, cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"classes": classes, "shape": [cfg.n_channels, cfg.n_mels, cfg.n_frames], "splits": {}}
    all_skipped: list[dict[str, str]] = []
    frames = {split: meta[meta["split"] == split].sort_values("note_id").reset_index(drop=True) for split in splits}
    results = featurize_splits(frames, root, cfg, out_dir, workers, snippets=not windowed)
    for split, part in frames.items():
        kept, skipped = results[split].kept, results[split].skipped
        lost = sorted(set(part["label_category"]) - set(part.loc[kept, "label_category"]))
        if lost:  # the split stage guarantees every class in every split; skipping must not undo that
            raise FeaturizeError(
                f"skipping bad items removed every {lost} event from split '{split}' ({len(skipped)} skipped there, "
                f"e.g. {skipped[0]['reason']}); fix or replace those files: metrics for an empty class are undefined"
            )
        part = part[kept].reset_index(drop=True)
        index = pd.DataFrame({
            "note_id": part["note_id"],
            "label_category": part["label_category"],
            "label": part["label_category"].map({c: i for i, c in enumerate(classes)}).astype(int),
        })
        if windowed:
            index.insert(1, "clip_id", part["clip_id"])
        write_csv(out_dir / f"{split}.csv", index)
        all_skipped += [{**item, "split": split} for item in skipped]
        summary["splits"][split] = {"events": len(part), "skipped": len(skipped)}
    report = pd.DataFrame(all_skipped, columns=["split", "note_id", "audio_path", "reason"])
    write_csv(out_dir / "skipped.csv", report)
    summary["skipped_total"] = len(report)
    write_json(out_dir / "summary.json", summary)
    return summary
