"""Build the feature cache: one memory-mapped array per split, streamed from parallel workers.

Worker threads each load a handful of files, window and normalize their events, and run the shared
:class:`~fretlab.features.FeatureExtractor` (decoding, soxr and torch release the GIL, so threads
run in parallel without the seconds each spawned process spends importing torch); the parent
writes results straight into a preallocated ``.npy`` file (positioned writes; readers memory-map
it), with a bounded number of chunks in flight and at most ``batch_size`` events per file task, so
peak memory does not grow with the dataset.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from fretlab.audio import (
    AudioError,
    clip_window_onsets,
    load_audio_up_to,
    peak_normalize,
    prepare_windows,
    read_window,
)
from fretlab.features import FeatureExtractor, extract
from fretlab.io import NpyRowWriter, atomic_dir, atomic_path, write_csv, write_json
from fretlab.metadata import AudioRoot
from fretlab.params import Featurize

_EXTRACTOR: FeatureExtractor | None = None
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
    positions: list[int] = field(default_factory=list)
    features: list[np.ndarray] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def _init_worker(extractor: FeatureExtractor) -> None:
    global _EXTRACTOR
    torch.set_num_threads(1)
    _EXTRACTOR = extractor


def _process_chunk(tasks: list[FileTask]) -> ChunkResult:
    assert _EXTRACTOR is not None, "worker not initialised"
    cfg = _EXTRACTOR.cfg
    out = ChunkResult()
    windows = []
    for task in tasks:
        try:
            if task.error:
                raise AudioError(task.error)
            # a long file is decoded one window at a time, so its length never sets the memory peak
            loaded, duration = load_audio_up_to(task.path, cfg.sample_rate, cfg.stream_above_sec)
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
            try:
                if loaded is not None:
                    window = prepare_windows(*loaded, [onset], cfg)[0]
                else:
                    start = max(0.0, (duration - cfg.target_duration) / 2) if onset is None else onset
                    window = peak_normalize(read_window(task.path, cfg.sample_rate, cfg.n_samples, start))
            except AudioError as exc:
                out.skipped.append({"note_id": note_id, "audio_path": task.path, "reason": str(exc)})
                continue
            windows.append(window)
            out.positions.append(pos)
    if windows:
        out.features = list(extract(_EXTRACTOR, np.stack(windows)))
    return out


def make_pool(workers: int, extractor: FeatureExtractor) -> Executor | None:
    """A pool of ``workers`` threads sharing ``extractor``, or None to work in the caller when ``workers <= 1``.

    Threads, not processes: the heavy calls (libsndfile decoding, soxr, torch's STFT and matmul) release
    the GIL, and a spawned process would first spend about 2 s of CPU importing torch, longer than the
    default dataset takes to featurize. Each torch call runs on one thread; the pool supplies the
    parallelism.
    """
    _init_worker(extractor)
    return ThreadPoolExecutor(workers, thread_name_prefix="featurize") if workers > 1 else None


def bounded_map(
    fn: Callable[[Any], Any], items: Iterable[Any], pool: Executor | None, in_flight: int
) -> Iterator[Any]:
    """Ordered map over ``pool`` with at most ``in_flight`` tasks submitted at once (bounded memory)."""
    if pool is None:
        yield from map(fn, items)
        return
    it = iter(items)
    pending = deque(pool.submit(fn, item) for _, item in zip(range(in_flight), it, strict=False))
    while pending:
        result = pending.popleft().result()
        nxt = next(it, None)
        if nxt is not None:
            pending.append(pool.submit(fn, nxt))
        yield result


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
    audio_root = AudioRoot(root)
    for begin, end in zip(starts, [*starts[1:], len(paths)], strict=True):
        path = paths[begin]
        snippet = snippets and end - begin == 1
        error = None
        if audio_root.resolve(path) is None:
            error = f"{root / path}: audio_path escapes the audio root {root}; keep audio files inside data.root"
        step = max_events or end - begin
        for start in range(begin, end, step):
            stop = min(start + step, end)
            tasks.append(FileTask(
                path=str(root / path),
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


def featurize_split(
    df: pd.DataFrame, root: Path, cfg: Featurize, out_path: Path, pool: Executor | None,
    in_flight: int = 1, desc: str = "featurize", snippets: bool = True,
) -> tuple[np.ndarray, list[dict[str, str]]]:
    """Featurize one split's events (row order kept) into ``out_path``.

    Returns a boolean mask of the rows kept and the skipped items. Raises
    :class:`FeaturizeError` on the first bad item unless ``cfg.on_error == "skip"``.
    """
    df = df.reset_index(drop=True)
    shape = (len(df), cfg.n_channels, cfg.n_mels, cfg.n_frames)
    kept = np.zeros(len(df), dtype=bool)
    skipped: list[dict[str, str]] = []
    with atomic_path(out_path) as tmp, NpyRowWriter(tmp, shape) as arr:
        chunks = _chunks(file_tasks(df, root, snippets, cfg.batch_size), cfg.batch_size)
        results = bounded_map(_process_chunk, chunks, pool, in_flight)
        with tqdm(total=len(df), desc=desc, unit="ev") as bar:
            for res in results:
                if res.skipped and cfg.on_error == "raise":
                    item = res.skipped[0]
                    raise FeaturizeError(
                        f"{item['reason']} (note_id {item['note_id']}). Fix or remove the file, or set "
                        "featurize.on_error: skip to skip and report such items"
                    )
                for pos, feat in zip(res.positions, res.features, strict=True):
                    arr.write(pos, feat)
                    kept[pos] = True
                skipped += res.skipped
                bar.update(len(res.positions) + len(res.skipped))
        if not kept.all():
            _compact(arr, kept)
    return kept, skipped


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
    :data:`fretlab.features.SUB_BATCH_BYTES`) in the heap, where they are reused instead of mapped and
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
    torch_threads = torch.get_num_threads()  # the pool pins torch to one thread per call; restored below
    pool = make_pool(workers, FeatureExtractor(cfg))
    try:
        results = {
            split: featurize_split(meta[meta["split"] == split].sort_values("note_id").reset_index(drop=True), root,
                                   cfg, out_dir / f"{split}.npy", pool, 2 * workers, f"featurize {split}",
                                   snippets=not windowed)
            for split in splits
        }
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        torch.set_num_threads(torch_threads)
    for split, (kept, skipped) in results.items():
        part = meta[meta["split"] == split].sort_values("note_id").reset_index(drop=True)
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
