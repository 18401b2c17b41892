"""Featurize whole tracks into the variable-length sequence cache, one split at a time, on all workers.

Output (``out_dir``, swapped in only once complete): per split ``<split>.npy`` + ``<split>.offsets.npy``
(see :mod:`fretlab.cache.sequences`) and ``<split>.csv`` (the split's metadata rows, in cache
order), and ``summary.json``. Each track is decoded and featurized independently in a worker and
written in metadata order, with every worker's BLAS on one thread, so the bytes do not depend on
the worker count.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from fretlab.audio.loading import AudioError, load_audio
from fretlab.audio.track_features import feature_dim, feature_names, track_frame_features
from fretlab.cache.sequences import SequenceWriter
from fretlab.data.metadata import AudioRoot
from fretlab.io import atomic_dir, worker_count, write_csv, write_json
from fretlab.params import TrackFeatures

REQUIRED = ("audio_path", "split")


@dataclass(frozen=True)
class TrackTask:
    """One track to featurize: its resolved file and where it came from, for error messages."""

    path: str
    where: str  # "row 3 of the metadata (line 5 of its CSV), note_id 'x', split 'train'"


def _where(meta: pd.DataFrame, pos: int, split: str) -> str:
    note = f", note_id {meta['note_id'].iat[pos]!r}" if "note_id" in meta.columns else ""
    return f"row {pos} of the metadata (line {pos + 2} of its CSV){note}, split {split!r}"


def track_tasks(meta: pd.DataFrame, root: Path, positions: Sequence[int], split: str) -> list[TrackTask]:
    """Resolve the audio of rows ``positions`` inside ``root``; fail fast on an escaping or missing file."""
    audio_root = AudioRoot(root)
    tasks = []
    for pos in positions:
        given = str(meta["audio_path"].iat[pos])
        where = _where(meta, pos, split)
        real = audio_root.real_path(given)
        if real is None:
            raise AudioError(f"{root / given}: audio_path escapes the audio root {root} ({where}); "
                             "keep audio files inside data.root")
        if not os.path.isfile(real):
            raise AudioError(f"{root / given}: audio file not found ({where})")
        tasks.append(TrackTask(real, where))
    return tasks


def load_track(path: str | Path, cfg: TrackFeatures) -> np.ndarray:
    """Mono float32 audio at ``cfg.sample_rate``, the first ``cfg.max_duration`` seconds when set."""
    wave, sr = load_audio(path, cfg.sample_rate, duration_sec=cfg.max_duration)
    if cfg.max_duration is not None:  # the decoded span is rounded at the native rate: cut it exactly
        wave = wave[: round(cfg.max_duration * sr)]
    return wave


def featurize_track(cfg: TrackFeatures, task: TrackTask) -> np.ndarray:
    """Frame features ``[frames, dims]`` of one track; :class:`AudioError` naming the file and its row."""
    try:
        wave = load_track(task.path, cfg)
    except AudioError as exc:
        raise AudioError(f"{exc} ({task.where})") from None
    if wave.size == 0:
        raise AudioError(f"{task.path}: the clip holds no samples ({task.where}); re-export it or drop its row")
    return track_frame_features(wave, cfg.sample_rate, cfg)


def _one_blas_thread() -> None:
    # workers run side by side on the cores: BLAS threads on top would oversubscribe them
    threadpool_limits(1)


def _start_method() -> str | None:
    """``fork`` on Linux (workers inherit the imported librosa); the platform default elsewhere."""
    return "fork" if sys.platform.startswith("linux") else None


def _featurized(cfg: TrackFeatures, tasks: list[TrackTask], pool: Pool | None, workers: int) -> Iterator[np.ndarray]:
    """Features of ``tasks`` in order: in ``pool`` (of ``workers`` processes), or here when it is None."""
    work = partial(featurize_track, cfg)
    if pool is None:
        with threadpool_limits(1):  # as in the workers: the same BLAS path, so the same bytes
            yield from map(work, tasks)
        return
    # a track takes ~0.1-1 s, so small chunks keep the workers evenly loaded; results (~8 kB per second of
    # audio at the defaults) are written as they arrive, so the few that finish ahead of the writer stay small
    yield from pool.imap(work, tasks, chunksize=max(1, min(4, len(tasks) // (4 * workers))))


def _length_stats(lengths: list[int]) -> dict[str, Any]:
    if not lengths:
        return {"frames_min": None, "frames_median": None, "frames_max": None}
    return {"frames_min": int(np.min(lengths)), "frames_median": float(np.median(lengths)),
            "frames_max": int(np.max(lengths))}


def featurize_tracks(
    meta: pd.DataFrame, root: Path, cfg: TrackFeatures, out_dir: Path, workers: int, split_names: list[str]
) -> dict[str, Any]:
    """Featurize the tracks of each split in ``split_names`` (rows with ``meta["split"] == name``, in order).

    ``workers`` processes (0: every core). Writes the sequence cache, ``<split>.csv`` and
    ``summary.json`` into ``out_dir`` atomically and returns the summary. Raises
    :class:`~fretlab.audio.loading.AudioError` naming the file and metadata row for a path outside
    ``root``, a missing file or undecodable audio (rows are positions in ``meta``; the CSV line
    given assumes ``meta`` was read straight from a CSV with a header).
    """
    missing = [c for c in REQUIRED if c not in meta.columns]
    if missing:
        raise ValueError(f"featurize_tracks: metadata lacks column(s) {missing}; it needs {list(REQUIRED)}")
    root, workers = Path(root), worker_count(workers)
    split_of = meta["split"].astype(str).to_numpy()
    positions = {name: np.flatnonzero(split_of == name).tolist() for name in split_names}
    tasks = {name: track_tasks(meta, root, pos, name) for name, pos in positions.items()}  # fail before the work
    config = cfg.model_dump(mode="json")
    if not cfg.take_level:  # the stroke settings do not shape frame features: keep those caches' bytes as they were
        config.pop("strokes")
    summary: dict[str, Any] = {
        "config": config, "dims": feature_dim(cfg), "feature_names": feature_names(cfg),
        "frame_rate": cfg.sample_rate / cfg.hop_length, "splits": {},
    }
    total = sum(map(len, tasks.values()))
    with atomic_dir(out_dir) as staging, ExitStack() as stack:
        bar = stack.enter_context(tqdm(total=total, desc="featurize tracks", unit="track"))
        pool = None
        if workers > 1 and total > 1:  # entered last, so an error stops the workers first
            pool = stack.enter_context(multiprocessing.get_context(_start_method()).Pool(workers, _one_blas_thread))
        for name in split_names:
            lengths = []
            with SequenceWriter(staging, name, feature_dim(cfg)) as writer:
                for features in _featurized(cfg, tasks[name], pool, workers):
                    writer.append(features)
                    lengths.append(len(features))
                    bar.update()
            write_csv(staging / f"{name}.csv", meta.iloc[positions[name]])
            summary["splits"][name] = {"tracks": len(lengths), "frames": int(sum(lengths)), **_length_stats(lengths),
                                       "events": len(lengths), "skipped": 0}  # the counts every cache reports
        summary["skipped_total"] = 0  # a bad track stops featurize (no skip mode for whole tracks)
        write_json(staging / "summary.json", summary)
    return summary
