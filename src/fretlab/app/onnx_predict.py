"""``fretlab predict --engine onnx``: the same predictions from an exported ``model.onnx``, without torch.

Everything but the model call is :class:`fretlab.app.predict.Predictor`'s own code (audio loading,
windowing and onset detection run on NumPy); this module only swaps the model for an ONNX Runtime
session and reads the classes and the analysis settings from the file's metadata, not from
``config.json``. Nothing here imports torch, pandas, librosa or pydantic (tests/test_onnx_predict.py checks
``sys.modules``): startup is what makes the ONNX path fast.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fretlab.app.predict import PredictError, Predictor, predict_settings
from fretlab.io import available_cores, threaded_map

Engine = Literal["auto", "onnx", "torch"]
ONNX_FILE = "model.onnx"  # what `fretlab export MODEL_DIR` writes into the directory
WEIGHTS = "model.safetensors"  # fretlab.artifacts.modeldir.WEIGHTS, likewise
ONNX_FORMAT = 1  # the exported graph's contract (input, output, metadata keys); bumped when it changes
MAX_BATCH_THREADS = 4  # concurrent session runs, one ORT thread each
# windows per session run: the default CRNN on the benchmark take's 297 windows, 2 threads, took 0.28-0.30 s in
# runs of 16 against 0.33-0.41 s in runs of 64, and 0.26 s against 0.30 s (medians of 5 fresh processes) in runs
# of 4 against 16: the front end's STFT buffers (2.8 MB for 4 windows) stay in cache
RUN_WINDOWS = 4
REQUIRED_METADATA = ("classes", "window_samples", "fretlab.featurize", "fretlab.predict", "fretlab.onnx_format")


class OnnxModelError(PredictError):
    """An ONNX file that cannot be used: unreadable, not from ``fretlab export``, or exported from other weights."""


class ExportedSettings:
    """Read-only attribute view of one settings section as ``fretlab export`` wrote it into the metadata.

    The exporter validated these values with :mod:`fretlab.params` (the one schema) before writing them,
    so the deployed path reads them as they are: importing pydantic and building the params classes took
    0.15-0.2 s of the 1-s budget for a 3-minute take. A file from an older fretlab that lacks a newer
    setting is validated by the schema after all, which fills in that setting's default (or says what is
    wrong). Changed values (``fretlab predict --onset-delta ...``) are validated by the schema too
    (:func:`fretlab.app.predict.predict_settings`).
    """

    def __init__(self, values: dict[str, Any], schema: str, source: str, derived: dict[str, Any]) -> None:
        self._values = {**values, **derived}
        self._schema, self._source, self._derived = schema, source, derived
        self._validated = False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._values and not self._validated:
            self._values = {**self._validate(), **self._derived}
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"{self._source} has no setting {name!r}") from None

    def _validate(self) -> dict[str, Any]:
        """The section validated by its params class, defaults filled in (pydantic imported only now)."""
        from pydantic import ValidationError

        import fretlab.params

        self._validated = True
        values = {k: v for k, v in self._values.items() if k not in self._derived}
        try:
            return getattr(fretlab.params, self._schema).model_validate(values).model_dump()
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise OnnxModelError(f"{self._source}: {problems}; re-export with `fretlab export MODEL_DIR`") from None

    def model_dump(self, mode: str | None = None) -> dict[str, Any]:
        """The values as a dict, as pydantic's ``model_dump`` (for :func:`predict_settings`)."""
        return {k: v for k, v in self._values.items() if k not in self._derived}

    def __repr__(self) -> str:
        return f"ExportedSettings({self._schema}, {self.model_dump()!r})"


def _settings_section(path: Path, metadata: dict[str, str], key: str, schema: str,
                      **derived: Any) -> ExportedSettings:
    """Metadata entry ``key`` (a JSON object of ``fretlab.params.<schema>``) as :class:`ExportedSettings`."""
    values = json.loads(metadata[key])
    if not isinstance(values, dict):
        raise ValueError(f"'{key}' is not a JSON object")
    return ExportedSettings(values, schema, f"{path}: metadata '{key}'", derived)


def onnxruntime_available() -> bool:
    """Whether ``onnxruntime`` can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file (the weights an export came from)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stale_reason(model_dir: Path, metadata: dict[str, str]) -> str | None:
    """Why ``model.onnx`` does not match the directory's weights (they were retrained since), else None."""
    weights = model_dir / WEIGHTS
    if not weights.is_file() or "fretlab.weights_sha256" not in metadata:
        return None
    if file_sha256(weights) != metadata["fretlab.weights_sha256"]:
        return (f"{model_dir / ONNX_FILE} was exported from other weights than {weights}; "
                f"re-export with `fretlab export {model_dir}`")
    return None


class OnnxModel:
    """An exported model: an ONNX Runtime session plus the classes and settings from its metadata."""

    def __init__(self, path: str | Path) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise OnnxModelError(f"{self.path}: file not found; write it with `fretlab export MODEL_DIR`")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: no warnings about unused initializers on stderr
        # idle worker threads sleep instead of spinning: on the shared 2-core CPU a batch of the default CRNN
        # ran in 0.57 instead of 0.69 s, and a machine doing other work keeps its cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # runs side by side on one thread each (map) instead of one batch at a time on every core: the graph
        # part of the 3-minute take fell from 0.39-0.41 to 0.33-0.38 s on the 2-core CPU (docs/performance.md)
        self.workers = min(available_cores(), MAX_BATCH_THREADS)
        options.intra_op_num_threads = 1 if self.workers > 1 else 0
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own (pybind) exception types for bad files
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise OnnxModelError(f"{self.path}: not a readable ONNX model ({reason}); "
                                 "re-export it with `fretlab export MODEL_DIR`") from None
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        missing = [k for k in REQUIRED_METADATA if k not in self.metadata]
        if missing:
            raise OnnxModelError(f"{self.path}: lacks fretlab metadata {missing}; export it with `fretlab export`")
        if self.metadata["fretlab.onnx_format"] != str(ONNX_FORMAT):
            raise OnnxModelError(f"{self.path}: ONNX format {self.metadata['fretlab.onnx_format']} is not supported "
                                 f"(this fretlab reads format {ONNX_FORMAT}); re-export with `fretlab export`")
        try:
            self.classes: list[str] = list(json.loads(self.metadata["classes"]))
            # n_samples (a property of fretlab.params.Featurize) is the graph's own input width
            self.featurize = _settings_section(self.path, self.metadata, "fretlab.featurize", "Featurize",
                                               n_samples=int(self.metadata["window_samples"]))
            self.predict = _settings_section(self.path, self.metadata, "fretlab.predict", "Predict")
        except ValueError as exc:  # JSONDecodeError is a ValueError
            raise OnnxModelError(f"{self.path}: unreadable fretlab metadata ({exc}); "
                                 "re-export with `fretlab export`") from None
        self.input = self.session.get_inputs()[0].name

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """Class probabilities ``(B, classes)`` of peak-normalized windows ``(B, window_samples)``."""
        if len(windows) == 0:  # the nets' flatten (a -1 in Reshape) cannot infer its size on an empty batch
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return self.session.run(None, {self.input: np.ascontiguousarray(windows, dtype=np.float32)})[0]

    def map(self, batches: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """:meth:`__call__` on each batch, in order, as runs of at most :data:`RUN_WINDOWS` windows, ``workers``
        runs at a time (ORT releases the GIL); yields each run's probabilities."""
        runs = (batch[start : start + RUN_WINDOWS] for batch in batches for start in range(0, len(batch), RUN_WINDOWS))
        return threaded_map(self, runs, self.workers)


class OnnxPredictor(Predictor):
    """:class:`Predictor` running an exported ``model.onnx`` through ONNX Runtime (CPU)."""

    def __init__(self, model_dir: str | Path, overrides: dict[str, Any] | None = None,
                 check_weights: bool = True) -> None:
        self.model_dir = Path(model_dir)
        self.onnx = OnnxModel(self.model_dir / ONNX_FILE)
        if check_weights and (reason := stale_reason(self.model_dir, self.onnx.metadata)):
            raise OnnxModelError(reason)
        self.classes = self.onnx.classes
        self.cfg = self.onnx.featurize
        self.settings = predict_settings(self.onnx.predict, overrides)

    def _classify(self, windows: np.ndarray) -> np.ndarray:
        """Class probabilities ``(B, classes)`` from the ONNX graph, features and all."""
        return self.onnx(windows)

    def _classify_batches(self, batches: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        return self.onnx.map(batches)


def make_predictor(model_dir: str | Path, engine: Engine = "auto", device: str = "auto",
                   overrides: dict[str, Any] | None = None) -> Predictor:
    """The predictor for ``engine``: ``auto`` takes ONNX when ``model.onnx`` is there, current and runnable.

    ``auto`` falls back to torch (with a note on stderr) when the ONNX file is stale or ``onnxruntime``
    is missing; ``onnx`` refuses instead. ``--device cuda`` always means torch.
    """
    model_dir = Path(model_dir)
    onnx_file = model_dir / ONNX_FILE
    if engine == "onnx" and device == "cuda":
        raise PredictError("--engine onnx runs on the CPU; drop --device cuda or use --engine torch")
    if engine == "onnx":
        if not onnxruntime_available():
            raise PredictError("--engine onnx needs onnxruntime: pip install onnxruntime (see requirements.txt)")
        if not onnx_file.is_file():
            raise OnnxModelError(f"{onnx_file}: file not found; write it with `fretlab export {model_dir}`")
        return OnnxPredictor(model_dir, overrides)
    if engine == "auto" and device != "cuda" and onnx_file.is_file() and onnxruntime_available():
        try:
            return OnnxPredictor(model_dir, overrides)
        except OnnxModelError as exc:
            if not (model_dir / WEIGHTS).is_file():
                raise
            print(f"fretlab predict: note: {exc}; using the torch engine", file=sys.stderr)
    return Predictor(model_dir, device, overrides)
