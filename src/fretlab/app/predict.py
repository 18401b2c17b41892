"""``fretlab predict``: classify a single-note clip, or find and classify every note of a recording.

Inference runs the training front end, not a copy of it: :func:`fretlab.audio.loading.load_audio` (any
sample rate or channel count, mixed to mono and resampled to ``featurize.sample_rate``),
:func:`fretlab.audio.loading.prepare_windows` (the same event windows and peak normalization) and the
:class:`fretlab.audio.features.FeatureExtractor` built from the model directory's own config. Onsets come
from librosa's spectral-flux detector as re-written in :mod:`fretlab.audio.onsets`; its settings are the
``predict`` section stored in the model directory, which command-line flags can override.

This module is the torch engine and imports torch only when a :class:`Predictor` is built, so that the
ONNX engine (:mod:`fretlab.app.onnx_predict`, which reuses everything here but the model call) never does.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from fretlab.audio.loading import clip_window_onsets, load_audio, prepare_windows
from fretlab.audio.onsets import backtrack, detect_onset_frames, frame_rms, onset_strength
from fretlab.io import atomic_path, write_json

if TYPE_CHECKING:  # torch is imported by Predictor itself: the ONNX engine (app/onnx_predict.py) never loads it
    import pandas as pd

    from fretlab.params import Predict  # pydantic: imported only to validate changed settings (predict_settings)

Mode = Literal["auto", "note", "timeline"]
OUTPUT_SUFFIXES = (".csv", ".json")
PLOT_SUFFIXES = (".png",)


class PredictError(ValueError):
    """A prediction request that cannot be carried out (bad option, output format, ...)."""


@dataclass(frozen=True)
class NotePrediction:
    """One clip classified as a single note."""

    label: str
    confidence: float
    probabilities: dict[str, float]


@dataclass(frozen=True)
class TimelineEvent:
    """One detected note of a recording: its span and class."""

    onset_sec: float
    offset_sec: float
    label: str
    confidence: float
    probabilities: dict[str, float]


def predict_settings(base: Predict, overrides: dict[str, Any] | None = None) -> Predict:
    """``base`` with the non-None ``overrides`` applied, validated like params.yaml (``base`` itself when none)."""
    updates = {k: v for k, v in (overrides or {}).items() if v is not None}
    if not updates:  # already validated (params.yaml, or the exporter's): the ONNX path never imports pydantic
        return base
    from pydantic import ValidationError

    from fretlab.params import Predict

    try:
        return Predict.model_validate({**base.model_dump(), **updates})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise PredictError(f"invalid predict setting: {problems}") from None


def _onset_frames(wave: np.ndarray, sr: int, settings: Predict) -> tuple[np.ndarray, np.ndarray]:
    """The spectral-flux onset envelope of ``wave`` and its picked peak frames."""
    hop = settings.onset_hop_length
    envelope = onset_strength(wave, sr, hop, settings.onset_n_fft, settings.onset_n_mels)
    return envelope, detect_onset_frames(envelope, sr, hop, settings.onset_delta,
                                         round(settings.onset_wait_sec * sr / hop))


def detect_onsets(wave: np.ndarray, sr: int, settings: Predict) -> tuple[np.ndarray, np.ndarray]:
    """Note onsets (seconds) found by spectral flux, and each one's onset strength."""
    hop = settings.onset_hop_length
    envelope, frames = _onset_frames(wave, sr, settings)
    strength = envelope[frames] if len(frames) else np.zeros(0)
    if settings.onset_backtrack and len(frames):
        frames = backtrack(frames, envelope)
    return frames * hop / sr, strength


def note_start(wave: np.ndarray, sr: int, settings: Predict) -> float | None:
    """Where a one-note clip's note begins (seconds), or None when no onset is found.

    The first onset at least ``settings.note_onset_share`` as strong as the strongest, not the
    strongest: a sample library's note-off click or a slap's fret rattle can outdo the attack, and
    a one-shot's note is the first thing in it. The envelope is computed with ``onset_n_fft`` samples
    of silence in front, so that an attack at the file's first sample is as strong an onset as one
    later in a take (without it, the centred first frame already holds the note). Moved back to the
    preceding minimum of the onset envelope, because spectral flux peaks a frame or two after the
    attack begins and training windows start at the attack itself.
    """
    hop = settings.onset_hop_length
    lead = settings.onset_n_fft // hop  # frames of silence in front: an attack at sample 0 has a full flux step
    padded = np.concatenate([np.zeros(lead * hop, dtype=np.float32), np.asarray(wave, dtype=np.float32)])
    envelope, frames = _onset_frames(padded, sr, settings)
    if not len(frames):
        return None
    strength = envelope[frames]
    first = frames[np.flatnonzero(strength >= settings.note_onset_share * strength.max())[0]]
    return max(0.0, float((backtrack(np.array([first]), envelope)[0] - lead) * hop / sr))


def event_offsets(wave: np.ndarray, sr: int, onsets: np.ndarray, settings: Predict) -> np.ndarray:
    """Each event's end: where its RMS falls ``offset_db`` below its peak, else the next onset (or the end)."""
    if len(onsets) == 0:
        return np.zeros(0)
    hop = settings.onset_hop_length
    rms = frame_rms(wave, 2 * hop, hop)
    ends = [*onsets[1:], len(wave) / sr]
    out = []
    for onset, end in zip(onsets, ends, strict=True):
        first, last = (int(t * sr) // hop for t in (onset, end))  # librosa.time_to_frames
        segment = rms[first:last]
        offset = end
        if segment.size:
            peak = int(np.argmax(segment))
            quiet = np.flatnonzero(segment[peak:] < segment[peak] * 10 ** (-settings.offset_db / 20))
            if quiet.size:
                offset = min(end, (first + peak + quiet[0]) * hop / sr)
        out.append(max(offset, onset))
    return np.asarray(out, dtype=float)


class _NoBar:
    """What :func:`progress_bar` returns when the bar is off: ``update`` does nothing."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        """Nothing to draw."""


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar over ``total`` events, or a no-op one when ``enabled`` is false.

    tqdm is imported only for a visible bar: its import (~40 ms, most of it ``importlib.metadata``)
    is a tenth of the ONNX engine's whole budget for a 3-minute take.
    """
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="ev", disable=None)


class Predictor:
    """A trained model directory ready to classify audio files."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", overrides: dict[str, Any] | None = None) -> None:
        import torch

        from fretlab.artifacts.modeldir import load_model_dir
        from fretlab.audio.features import FeatureExtractor
        from fretlab.runtime import select_device

        try:
            self.device = select_device(device)
        except RuntimeError as exc:  # --device cuda without a GPU
            raise PredictError(str(exc).replace("base.device", "--device")) from None
        self.model, self.params, self.classes = load_model_dir(model_dir, self.device)
        if self.device.type == "cpu":
            # oneDNN's channels-last convolutions ran the CRNN 1.8x faster on the CPU (0.27 vs 0.48 s for a
            # 3-minute take); logits agree with the default layout to ~1e-6 (tested)
            self.model.to(memory_format=torch.channels_last)
        self.model_dir = Path(model_dir)
        self.cfg = self.params.featurize
        self.settings = predict_settings(self.params.predict, overrides)
        self.extractor = FeatureExtractor(self.cfg)  # runs on the CPU, as in the featurize stage

    def load(self, path: str | Path) -> np.ndarray:
        """The file as mono float32 at the model's analysis rate (raises AudioError when unreadable)."""
        wave, _ = load_audio(path, self.cfg.sample_rate)
        return wave

    def probabilities(self, wave: np.ndarray, onsets: list[float | None], progress: bool = False) -> np.ndarray:
        """Class probabilities ``(events, classes)`` for windows at ``onsets`` (None: centre crop/pad)."""
        batch = self.settings.batch_size
        batches = (prepare_windows(wave, self.cfg.sample_rate, onsets[start : start + batch], self.cfg)
                   for start in range(0, len(onsets), batch))
        out = []
        with progress_bar(len(onsets), "classify", progress) as bar:
            for probs in self._classify_batches(batches):
                out.append(probs)
                bar.update(len(probs))
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), dtype=np.float32)

    def _classify_batches(self, batches: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """:meth:`_classify` of each batch, in order (one at a time: torch parallelizes inside each call)."""
        return map(self._classify, batches)

    def _classify(self, windows: np.ndarray) -> np.ndarray:
        """Class probabilities ``(B, classes)`` of prepared windows ``(B, window_samples)``: the engine's part."""
        import torch

        from fretlab.audio.features import extract
        from fretlab.runtime import predict_logits

        features = torch.from_numpy(extract(self.extractor, windows))
        logits = predict_logits(self.model, features, len(windows), self.params.train.amp)
        return torch.softmax(logits, dim=1).numpy()

    def note_onsets(self, wave: np.ndarray) -> list[float | None]:
        """Windows for a single-note clip, chosen the way training windows such a clip.

        Clip models (``featurize.window_hop``) average windows over the whole clip; a clip that fits
        one window is centre-padded like a training snippet; a longer one is windowed from its
        note's start (:func:`note_start`) like a note inside a training recording.
        """
        sr = self.cfg.sample_rate
        if self.cfg.window_hop is not None:
            return list(clip_window_onsets(0.0, len(wave) / sr, self.cfg))
        if len(wave) <= self.cfg.n_samples:
            return [None]
        return [note_start(wave, sr, self.settings)]

    def predict_note(self, wave: np.ndarray) -> NotePrediction:
        """Classify ``wave`` as one note: the mean window probability when it spans several windows."""
        probs = self.probabilities(wave, self.note_onsets(wave)).mean(axis=0)
        best = int(np.argmax(probs))
        return NotePrediction(self.classes[best], float(probs[best]), self._named(probs))

    def predict_notes(self, waves: list[np.ndarray]) -> list[NotePrediction]:
        """:meth:`predict_note` for many clips, their windows batched together: the same windows and
        the same per-clip mean, in ``settings.batch_size`` windows per model call instead of one call per clip.
        """
        sr = self.cfg.sample_rate
        parts, owners = [], []
        for i, wave in enumerate(waves):
            onsets = self.note_onsets(wave)
            parts.append(prepare_windows(wave, sr, onsets, self.cfg))
            owners += [i] * len(onsets)
        if not parts:
            return []
        windows = np.concatenate(parts)
        batch = self.settings.batch_size
        probs = np.concatenate(list(self._classify_batches(windows[s : s + batch]
                                                           for s in range(0, len(windows), batch))))
        sums = np.zeros((len(waves), probs.shape[1]))
        np.add.at(sums, np.asarray(owners), probs)
        means = sums / np.bincount(owners, minlength=len(waves))[:, None]
        return [NotePrediction(self.classes[int(np.argmax(m))], float(m.max()), self._named(m)) for m in means]

    def predict_timeline(self, wave: np.ndarray, progress: bool = True) -> list[TimelineEvent]:
        """Detect every onset in ``wave`` and classify the window starting there."""
        sr = self.cfg.sample_rate
        onsets, _ = detect_onsets(wave, sr, self.settings)
        offsets = event_offsets(wave, sr, onsets, self.settings)
        probs = self.probabilities(wave, [float(t) for t in onsets], progress=progress)
        events = []
        for onset, offset, p in zip(onsets, offsets, probs, strict=True):
            best = int(np.argmax(p))
            events.append(TimelineEvent(round(float(onset), 4), round(float(offset), 4), self.classes[best],
                                        float(p[best]), self._named(p)))
        return events

    def predict_file(self, path: str | Path, mode: Mode = "auto", progress: bool = True) -> dict[str, Any]:
        """Classify one audio file; ``auto`` picks note or timeline mode by the clip's duration."""
        return self.predict_wave(self.load(path), path, mode, progress)

    def predict_wave(self, wave: np.ndarray, path: str | Path, mode: Mode = "auto",
                     progress: bool = True) -> dict[str, Any]:
        """:meth:`predict_file` on an already loaded ``wave`` (from :meth:`load`); ``path`` is only reported."""
        duration = len(wave) / self.cfg.sample_rate
        if mode == "auto":
            mode = "timeline" if duration > self.settings.note_max_sec else "note"
        result: dict[str, Any] = {"file": str(path), "model_dir": str(self.model_dir), "mode": mode,
                                  "duration_sec": round(duration, 4), "classes": list(self.classes)}
        if mode == "note":
            result.update(asdict(self.predict_note(wave)))
        elif mode == "timeline":
            # vars, not dataclasses.asdict: its deep copy of every event took ~20 ms of the ONNX budget on 300 notes
            result["events"] = [{**vars(e), "probabilities": dict(e.probabilities)}
                                for e in self.predict_timeline(wave, progress)]
        else:
            raise PredictError(f"unknown mode '{mode}'; choose auto, note or timeline")
        return result

    def _named(self, probs: np.ndarray) -> dict[str, float]:
        return {c: round(float(p), 6) for c, p in zip(self.classes, probs, strict=True)}


def check_output_path(path: str | Path | None) -> None:
    """Refuse an output file type other than CSV or JSON before any work is done."""
    if path is not None and Path(path).suffix.lower() not in OUTPUT_SUFFIXES:
        raise PredictError(f"--output {path}: unsupported file type; use a .csv or .json file name")


def check_plot_path(path: str | Path | None) -> None:
    """Refuse a ``--plot`` path that cannot be written, before any audio is loaded or model built."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise PredictError(f"--plot {path}: is a directory; give a file name such as {path / 'timeline.png'}")
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise PredictError(f"--plot {path}: unsupported file type; use a .png file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise PredictError(f"--plot {path}: folder {folder} does not exist; create it or choose another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PredictError(f"--plot {path}: folder {folder} is not writable; choose another path")


def result_rows(result: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """A prediction as columns and rows: one row per timeline event, or one for a note; ``p_<class>`` per class."""
    classes = result["classes"]
    rows = result["events"] if result["mode"] == "timeline" else [result]
    head = ["onset_sec", "offset_sec"] if result["mode"] == "timeline" else ["file"]
    columns = [*head, "label", "confidence", *(f"p_{c}" for c in classes)]
    table = [
        {**{c: row[c] for c in head}, "label": row["label"], "confidence": round(row["confidence"], 6),
         **{f"p_{c}": row["probabilities"][c] for c in classes}}
        for row in rows
    ]
    return columns, table


def result_table(result: dict[str, Any]) -> pd.DataFrame:
    """:func:`result_rows` as a DataFrame."""
    import pandas as pd

    columns, rows = result_rows(result)
    return pd.DataFrame(rows, columns=columns)


def write_result(result: dict[str, Any], path: str | Path) -> None:
    """Write a prediction as CSV (one row per event) or JSON (the whole result), by file suffix.

    The CSV goes through the csv module: importing pandas would add ~0.3 s to every call.
    """
    check_output_path(path)
    if Path(path).suffix.lower() == ".csv":
        columns, rows = result_rows(result)
        with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    else:
        write_json(path, result)


def to_json(result: dict[str, Any]) -> str:
    """The result as indented JSON (what the CLI prints)."""
    return json.dumps(result, indent=2)
