"""Measurements behind ``scripts/bench.py`` (``make bench``): the cached pipeline against the naive way.

Every figure is the median of repeated runs, and every comparison is a ratio of two figures
measured in the same process on the same machine. The training loop is timed from the outside:
hooks on the model's ``forward``, on ``Tensor.backward`` and on the optimizer step sum the time
spent inside the model's own compute, and ``Live.next_step`` marks each epoch's end, so the loop
measured is the real :func:`fretlab.train.loop.train_model`, unmodified.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from fretlab.models.classifier import Classifier
from fretlab.params import Featurize, Params

# ---------------------------------------------------------------------------------------------
# timing helpers


def median(values: list[float]) -> float:
    """Median of a non-empty list, as a float."""
    return float(statistics.median(values))


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``repeats`` calls of ``fn``."""
    walls, cpus = [], []
    for _ in range(repeats):
        c, t = cpu_seconds(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(cpu_seconds() - c)
    return walls, cpus


def machine_info() -> dict[str, Any]:
    """What the figures were measured on, including how busy the machine was."""
    model = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model, "cores": len(os.sched_getaffinity(0)), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available()
        else None, "python": platform.python_version(), "load_average": list(os.getloadavg()),
    }


# ---------------------------------------------------------------------------------------------
# a throwaway copy of the repository (DVC timings never run in the real checkout)


def tool_env() -> dict[str, str]:
    """Environment where ``python``/``dvc`` resolve to this interpreter's venv and git can commit."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(GIT_AUTHOR_NAME="fretlab-bench", GIT_AUTHOR_EMAIL="bench@fretlab.invalid",
               GIT_COMMITTER_NAME="fretlab-bench", GIT_COMMITTER_EMAIL="bench@fretlab.invalid",
               DVC_NO_ANALYTICS="1")
    return env


def run(cmd: list[str], cwd: Path, timeout: float = 3600) -> tuple[float, str]:
    """Run ``cmd`` in ``cwd``; return its wall time and stdout. Raises with the output on failure."""
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=tool_env(), text=True, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd} ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                           f"{proc.stderr[-3000:]}")
    return time.perf_counter() - t, proc.stdout


def make_workspace(repo: Path, dest: Path, params_updates: dict[str, Any] | None = None) -> Path:
    """Copy ``repo``'s tracked and untracked-but-not-ignored files into a fresh git repo at ``dest``."""
    import yaml

    listing = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=repo, capture_output=True,
                             check=True).stdout.decode().split("\0")
    for rel in filter(None, listing):
        src = repo / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest / rel)
    (dest / "dvc.lock").unlink(missing_ok=True)
    if params_updates:
        params = yaml.safe_load((dest / "params.yaml").read_text())
        _deep_update(params, params_updates)
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
        run(cmd, dest)
    return dest


def _deep_update(base: dict[str, Any], updates: dict[str, Any]) -> None:
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value


# ---------------------------------------------------------------------------------------------
# featurize throughput


def source_audio_seconds(meta: pd.DataFrame, root: Path) -> float:
    """Total length of the distinct audio files the events point into."""
    return float(sum(sf.info(str(root / p)).duration for p in meta["audio_path"].unique()))


def bench_featurize(meta: pd.DataFrame, root: Path, cfg: Featurize, classes: list[str], out_dir: Path,
                    workers: int, repeats: int) -> dict[str, Any]:
    """``featurize_all`` on every split with ``workers`` processes: wall, CPU (workers' too), events/s, × real time."""
    from fretlab.cache.featurize import featurize_all

    audio = source_audio_seconds(meta, root)
    walls, cpus = timed(lambda: featurize_all(meta, root, cfg, classes, out_dir, workers), repeats)
    wall = median(walls)
    return {
        "workers": workers, "events": len(meta), "audio_sec": round(audio, 1),
        "window_sec": round(len(meta) * cfg.target_duration, 1), "wall_s": wall, "walls_s": walls,
        "cpu_s": median(cpus), "events_per_s": len(meta) / wall, "x_realtime": audio / wall,
        "x_realtime_windows": len(meta) * cfg.target_duration / wall,
        # what an idle machine would give if the CPU work split perfectly over the workers (a projection)
        "x_realtime_cpu_bound": audio / (median(cpus) / min(workers, len(os.sched_getaffinity(0)))),
    }


# ---------------------------------------------------------------------------------------------
# training: the real loop, instrumented from outside


class ComputeTimer:
    """Seconds spent inside the model's forward, ``backward()`` and ``optimizer.step()``, and epoch ends."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.model, self.device = model, device
        self.inside = 0.0
        self.marks: list[tuple[float, float]] = []  # (wall clock, inside) at each epoch end
        self._step_start = 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    @contextmanager
    def installed(self) -> Iterator[ComputeTimer]:
        """Install the hooks for the duration of the block."""
        from dvclive import Live

        timer = self
        real_forward, real_backward, real_next_step = self.model.forward, torch.Tensor.backward, Live.next_step

        def forward(*args: Any, **kwargs: Any) -> Any:
            timer._sync()
            t = time.perf_counter()
            out = real_forward(*args, **kwargs)
            timer._sync()
            timer.inside += time.perf_counter() - t
            return out

        def backward(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            out = real_backward(tensor, *args, **kwargs)
            timer._sync()
            timer.inside += time.perf_counter() - t
            return out

        def next_step(live: Any, *args: Any, **kwargs: Any) -> Any:
            timer.marks.append((time.perf_counter(), timer.inside))
            return real_next_step(live, *args, **kwargs)

        def step_pre(*_: Any) -> None:
            timer._sync()
            timer._step_start = time.perf_counter()

        def step_post(*_: Any) -> None:
            timer._sync()
            timer.inside += time.perf_counter() - timer._step_start

        self.model.forward = forward  # instance attribute: nn.Module.__call__ dispatches to it
        torch.Tensor.backward = backward
        Live.next_step = next_step
        pre = register_optimizer_step_pre_hook(step_pre)
        post = register_optimizer_step_post_hook(step_post)
        try:
            yield self
        finally:
            del self.model.forward
            torch.Tensor.backward = real_backward
            Live.next_step = real_next_step
            pre.remove()
            post.remove()

    def epochs(self) -> list[dict[str, float]]:
        """Per-epoch wall time and the share outside forward/backward/step (from the 2nd epoch on)."""
        out = []
        for (t0, in0), (t1, in1) in zip(self.marks, self.marks[1:], strict=False):
            wall = t1 - t0
            out.append({"wall_s": wall, "compute_s": in1 - in0, "outside_fraction": 1 - (in1 - in0) / wall})
        return out


def bench_cached_training(params: Params, features_dir: Path, work: Path, epochs: int) -> dict[str, Any]:
    """Epoch time of the real ``train_model`` from the feature cache, and the share outside model compute."""
    from fretlab.runtime import select_device
    from fretlab.tasks.targets import n_outputs, resolve_targets
    from fretlab.train.inputs import load_role_data
    from fretlab.train.loop import seed_everything, train_model

    params = params.model_copy(update={"train": params.train.model_copy(update={"epochs": epochs,
                                                                                 "patience": epochs + 1})})
    specs = resolve_targets(params)
    device = select_device(params.base.device)
    data = {split: load_role_data(params, specs, [split], device, features_dir) for split in ("train", "val")}
    seed_everything(params.base.seed)
    model = Classifier(params, n_outputs(specs))
    shutil.rmtree(work, ignore_errors=True)
    timer = ComputeTimer(model, device)
    with timer.installed():
        train_model(params, model, data, specs, work / "checkpoints", work / "live", features_dir)
    per_epoch = timer.epochs()
    return {
        "epochs_timed": len(per_epoch), "train_events": len(data["train"].y), "val_events": len(data["val"].y),
        "epoch_s": median([e["wall_s"] for e in per_epoch]),
        "compute_s": median([e["compute_s"] for e in per_epoch]),
        "outside_fraction": median([e["outside_fraction"] for e in per_epoch]),
        "epochs": per_epoch,
    }


# ---------------------------------------------------------------------------------------------
# the reference: decode and compute the log-mel in __getitem__, every epoch


class OnTheFlyDataset(torch.utils.data.Dataset):
    """The naive loader many audio training scripts use: ``librosa.load`` + log-mel in ``__getitem__``.

    Same windows as the featurize stage (onset crop in multi-event files, centre crop/pad for
    snippets, peak normalization) and the same log-mel settings, recomputed on every access.
    """

    def __init__(self, meta: pd.DataFrame, root: Path, cfg: Featurize, classes: list[str]) -> None:
        counts = meta["audio_path"].map(meta["audio_path"].value_counts())
        self.items = [
            (str(root / path), float(onset), n == 1, classes.index(label))
            for path, onset, label, n in zip(meta["audio_path"], meta["onset_sec"], meta["label_category"], counts,
                                             strict=True)
        ]
        self.cfg = cfg

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        import librosa

        path, onset, snippet, label = self.items[i]
        cfg = self.cfg
        if snippet:  # a one-note file: centre crop/pad, or from the onset when longer than the window
            y, _ = librosa.load(path, sr=cfg.sample_rate)
            if len(y) > cfg.n_samples:
                y = librosa.util.fix_length(y[round(onset * cfg.sample_rate):], size=cfg.n_samples)
            else:
                left = (cfg.n_samples - len(y)) // 2
                y = np.pad(y, (left, cfg.n_samples - len(y) - left))
        else:
            y, _ = librosa.load(path, sr=cfg.sample_rate, offset=onset, duration=cfg.target_duration)
            y = librosa.util.fix_length(y, size=cfg.n_samples)
        y = y / max(float(np.abs(y).max()), 1e-8)
        mel = librosa.feature.melspectrogram(y=y, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                                             n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax, pad_mode="constant")
        db = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=80.0)
        return torch.from_numpy(db[None].astype(np.float32)), label


def bench_on_the_fly_training(params: Params, split_meta: pd.DataFrame, root: Path, epochs: int,
                              loader_workers: int) -> dict[str, Any]:
    """Epoch time (train pass + val pass) of the same model fed by :class:`OnTheFlyDataset`."""
    from torch.utils.data import DataLoader

    cfg, classes = params.featurize, params.data.classes
    torch.manual_seed(params.base.seed)
    model = Classifier(params, len(classes))
    train = OnTheFlyDataset(split_meta[split_meta["split"] == "train"], root, cfg, classes)
    val = OnTheFlyDataset(split_meta[split_meta["split"] == "val"], root, cfg, classes)
    loader = DataLoader(train, batch_size=params.train.batch_size, shuffle=True, num_workers=loader_workers,
                        generator=torch.Generator().manual_seed(params.base.seed))
    val_loader = DataLoader(val, batch_size=params.evaluate.batch_size, num_workers=loader_workers)
    opt = torch.optim.AdamW(model.parameters(), lr=params.train.lr, weight_decay=params.train.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    walls = []
    for _ in range(epochs):
        t = time.perf_counter()
        model.train()
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for xb, yb in val_loader:
                loss_fn(model(xb), yb)
        walls.append(time.perf_counter() - t)
    return {"epochs_timed": epochs, "loader_workers": loader_workers, "epoch_s": median(walls), "walls_s": walls,
            "train_events": len(train), "val_events": len(val)}


# ---------------------------------------------------------------------------------------------
# inference and predict


def bench_inference(model_dir: Path, features: np.ndarray, batch_size: int, repeats: int) -> dict[str, Any]:
    """Events/s of the trained model on cached features (``predict_logits``, eval mode)."""
    from fretlab.artifacts.modeldir import load_model_dir
    from fretlab.runtime import predict_logits, select_device, to_device_tensor

    device = select_device("auto")
    model = load_model_dir(model_dir, device)[0]
    x = to_device_tensor(features, device)
    predict_logits(model, x[:batch_size], batch_size)  # warm-up
    walls, _ = timed(lambda: predict_logits(model, x, batch_size), repeats)
    return {"events": len(x), "batch_size": batch_size, "wall_s": median(walls), "events_per_s": len(x) / median(walls)}


def make_recording(meta: pd.DataFrame, root: Path, out: Path, seconds: float) -> float:
    """Concatenate the multi-note recordings of ``meta`` into one file of at least ``seconds``; return its length.

    The notes' true onsets and labels go next to it (:func:`truth_path`), for :func:`bench_onsets`.
    """
    multi = meta.groupby("audio_path").size()
    pieces, notes, total, sr = [], [], 0.0, None
    for path in sorted(multi[multi > 1].index):
        wave, sr_i = sf.read(str(root / path), dtype="float32")
        sr = sr or sr_i
        rows = meta[meta["audio_path"] == path]
        notes += [(total + t, label) for t, label in zip(rows["onset_sec"], rows["label_category"], strict=True)]
        pieces.append(wave if wave.ndim == 1 else wave.mean(axis=1))
        total += len(pieces[-1]) / sr
        if total >= seconds:
            break
    if sr is None or total < seconds:
        raise RuntimeError(f"only {total:.0f} s of multi-note audio in the dataset; need {seconds:.0f} s")
    sf.write(out, np.concatenate(pieces)[: int(seconds * sr)], sr, subtype="PCM_16")
    truth = pd.DataFrame(notes, columns=["onset_sec", "label"])
    truth[truth["onset_sec"] < seconds].to_csv(truth_path(out), index=False)
    return seconds


def truth_path(recording: Path) -> Path:
    """Where :func:`make_recording` writes a recording's true note onsets and labels."""
    return recording.with_suffix(".onsets.csv")


def bench_onsets(model_dir: Path, recording: Path, repeats: int, n_ffts: tuple[int, ...] = (2048, 1024),
                 tolerance: float = 0.05) -> dict[str, Any]:
    """Onset detection of ``fretlab predict`` against the recording's true onsets, per onset FFT size.

    For each ``predict.onset_n_fft``: the detector's median wall time on the whole take, onset
    precision/recall/F-measure within ``tolerance`` s (``mir_eval.onset.f_measure``), and the
    accuracy and macro-F1 (scikit-learn) of the predicted labels on the matched notes.
    """
    import mir_eval
    from sklearn.metrics import accuracy_score, f1_score

    from fretlab.app.onnx_predict import OnnxPredictor
    from fretlab.app.predict import detect_onsets

    truth = pd.read_csv(truth_path(recording))
    true_onsets = truth["onset_sec"].to_numpy()
    out: dict[str, Any] = {"true_notes": len(truth), "tolerance_s": tolerance, "by_n_fft": {}}
    for n_fft in n_ffts:
        engine = OnnxPredictor(model_dir, {"onset_n_fft": n_fft})
        wave = engine.load(recording)
        walls, _ = timed(lambda e=engine, w=wave: detect_onsets(w, e.cfg.sample_rate, e.settings), repeats)
        events = engine.predict_timeline(wave, progress=False)
        found = np.array([e.onset_sec for e in events])
        f, p, r = mir_eval.onset.f_measure(true_onsets, found, window=tolerance)
        pairs = mir_eval.util.match_events(true_onsets, found, tolerance)
        y_true = [truth["label"].iloc[i] for i, _ in pairs]
        y_pred = [events[j].label for _, j in pairs]
        out["by_n_fft"][str(n_fft)] = {
            "onsets_wall_s": median(walls), "events": len(events), "matched": len(pairs),
            "precision": p, "recall": r, "f_measure": f,
            "label_accuracy": accuracy_score(y_true, y_pred),
            "label_macro_f1": f1_score(y_true, y_pred, average="macro"),
            "median_abs_error_ms": float(np.median([abs(found[j] - true_onsets[i]) for i, j in pairs]) * 1000),
        }
    return out


def bench_predict(model_dir: Path, recording: Path, work: Path, repeats: int, engine: str = "torch",
                  out: Path | None = None) -> dict[str, Any]:
    """Wall time of ``fretlab predict --engine ENGINE``.

    A fresh process per run: imports, model load, onsets, features, model, CSV.
    """
    out = work / f"predict_{engine}.csv" if out is None else out
    cmd = [sys.executable, "-m", "fretlab.app.cli", "predict", str(recording), "--model-dir", str(model_dir),
           "--mode", "timeline", "--engine", engine, "-o", str(out), "--quiet"]
    first = run(cmd, work)[0]  # also warms librosa's numba cache, as any second call by a user would find it
    walls = [run(cmd, work)[0] for _ in range(repeats)]
    notes = len(pd.read_csv(out)) if out.is_file() else None
    return {"command": f"fretlab predict --mode timeline --engine {engine}", "first_run_s": first,
            "wall_s": median(walls), "walls_s": walls, "notes_found": notes, "csv": str(out)}


def bench_engines(model_dir: Path, recording: Path, work: Path, repeats: int, batch_size: int) -> dict[str, Any]:
    """torch vs ONNX on one model: ``fretlab predict`` wall time on ``recording``, parity, window inference.

    The model directory is copied and exported there (the workspace's DVC output stays untouched).
    Both predict runs alternate run by run, so a load change on the machine hits both alike. Window
    inference is raw peak-normalized windows (the take's, at its onsets) to probabilities: the torch
    front end + model against the ONNX graph, which holds both.
    """
    from fretlab.app.export import export_onnx
    from fretlab.app.onnx_predict import OnnxPredictor
    from fretlab.app.predict import Predictor

    exported = work / "model_onnx"
    shutil.copytree(model_dir, exported, dirs_exist_ok=True)
    t = time.perf_counter()
    export_onnx(exported)
    export_s = time.perf_counter() - t
    csvs = {e: work / f"predict_{e}.csv" for e in ("torch", "onnx")}
    cmds = {e: [sys.executable, "-m", "fretlab.app.cli", "predict", str(recording), "--model-dir", str(exported),
                "--mode", "timeline", "--engine", e, "-o", str(csvs[e]), "--quiet"] for e in csvs}
    first = {e: run(cmds[e], work)[0] for e in cmds}
    walls: dict[str, list[float]] = {e: [] for e in cmds}
    cpus: dict[str, list[float]] = {e: [] for e in cmds}
    for _ in range(repeats):
        for e in cmds:
            c = cpu_seconds()
            walls[e].append(run(cmds[e], work)[0])
            cpus[e].append(cpu_seconds() - c)  # the finished child's user + system time
    tables = {e: pd.read_csv(csvs[e]) for e in csvs}
    columns = [c for c in tables["torch"].columns if c.startswith("p_")]
    same_events = len(tables["torch"]) == len(tables["onnx"]) and bool(
        np.allclose(tables["torch"]["onset_sec"], tables["onnx"]["onset_sec"]))
    parity = {
        "events": len(tables["torch"]), "same_events": same_events,
        "labels_identical": same_events and bool((tables["torch"]["label"] == tables["onnx"]["label"]).all()),
        "max_abs_prob_diff": float(np.abs(tables["torch"][columns].to_numpy() - tables["onnx"][columns].to_numpy())
                                   .max()) if same_events else None,
    }
    overrides = {"batch_size": batch_size}  # validated by the schema, as `fretlab predict --batch-size` is
    torch_engine, onnx_engine = Predictor(exported, "cpu", overrides), OnnxPredictor(exported, overrides)
    wave = torch_engine.load(recording)
    onsets = [float(x) for x in tables["torch"]["onset_sec"]]
    inference = {}
    for name, engine in (("torch", torch_engine), ("onnx", onnx_engine)):
        engine.probabilities(wave, onsets[:batch_size])  # warm-up
        w, _ = timed(lambda engine=engine: engine.probabilities(wave, onsets), repeats)
        inference[name] = {"events": len(onsets), "batch_size": batch_size, "wall_s": median(w),
                           "events_per_s": len(onsets) / median(w)}
    return {
        "export_s": export_s, "onnx_bytes": (exported / "model.onnx").stat().st_size,
        "predict": {e: {"first_run_s": first[e], "wall_s": median(walls[e]), "walls_s": walls[e],
                        "cpu_s": median(cpus[e])} for e in cmds},
        "speedup": median(walls["torch"]) / median(walls["onnx"]),
        "parity": parity, "window_inference": inference,
    }


def bench_onnx_phases(model_dir: Path, recording: Path, repeats: int) -> dict[str, Any]:
    """Where ``fretlab predict --engine onnx`` spends its time: each phase's wall and CPU seconds, medians over
    ``repeats`` fresh processes of ``scripts/onnx_phases.py`` (imports included; one OpenBLAS thread, as the
    CLI sets)."""
    cmd = [sys.executable, str(Path(__file__).with_name("onnx_phases.py")), str(model_dir), str(recording)]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    runs = [json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)
            for _ in range(repeats)]
    return {name: {"wall_s": median([r[name][0] for r in runs]), "cpu_s": median([r[name][1] for r in runs])}
            for name in runs[0]}


# ---------------------------------------------------------------------------------------------
# scale: generator + featurize at growing sizes, each in its own process (so peak memory is its own)


def scale_one(n_events: int, work: Path, workers: int, seed: int) -> dict[str, Any]:
    """Synthesize and featurize ``n_events`` default-style events; times and peak memory of this process."""
    from fretlab.cache.featurize import featurize_all
    from fretlab.params import Synthesize
    from fretlab.synth.guitar import synthesize_dataset

    params = Params()
    cfg = Synthesize(n_events=n_events, n_guitars=max(20, n_events // 100))
    t = time.perf_counter()
    meta = synthesize_dataset(cfg, params.data.classes, work / "synthetic", seed, workers)
    synth_s = time.perf_counter() - t
    meta["split"] = "train"  # one split: the cost of the grouped split is not what is measured here
    t = time.perf_counter()
    featurize_all(meta, work / "synthetic", params.featurize, params.data.classes, work / "features", workers,
                  splits=("train",))
    featurize_s = time.perf_counter() - t
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "events": n_events, "synthesize_s": synth_s, "featurize_s": featurize_s,
        "synthesize_s_per_10k": synth_s * 1e4 / n_events, "featurize_s_per_10k": featurize_s * 1e4 / n_events,
        "peak_rss_mb": own.ru_maxrss / 1024, "synthesize_worker_peak_rss_mb": kids.ru_maxrss / 1024,
        "features_mb": (work / "features/train.npy").stat().st_size / 2**20,
    }


def bench_sequence_batching(params: Params, n_tracks: int, duration_sec: tuple[float, float], repeats: int,
                            seed: int = 0) -> dict[str, Any]:
    """One training epoch of the track model: length-bucketed batches (the lab's path), the same batches with a
    packed unidirectional GRU, and random batches each padded to the longest clip of the data set.

    Same random frames, same model and batch size, same run. Frame values do not change the cost. Crop
    augmentation is off (it would shorten each epoch at random); the recipe's ``model.gru.frame_stride`` is
    timed against stride 1 (every frame a GRU step) on the bucketed path.
    """
    import torch

    from fretlab.audio.track_features import feature_dim
    from fretlab.cache.sequences import BucketBatchSampler, SequenceSet, pad_batch
    from fretlab.models import layers
    from fretlab.models.classifier import build_task_model
    from fretlab.params import parse_params
    from fretlab.tasks.targets import n_outputs, resolve_targets

    def without_crop(recipe: Params, **gru: Any) -> Params:
        data = recipe.model_dump(mode="json")
        data["train"]["augment"]["crop"] = 1.0
        data["model"]["gru"].update(gru)
        return parse_params(data)

    stride = params.model.gru.frame_stride
    params, per_frame = without_crop(params), without_crop(params, frame_stride=1)
    rng = np.random.default_rng(seed)
    cfg = params.featurize.tracks
    fps = cfg.sample_rate / cfg.hop_length
    lengths = np.round(rng.uniform(*duration_sec, n_tracks) * fps).astype(np.int64)
    dims = feature_dim(cfg)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    seqs = SequenceSet(rng.standard_normal((int(offsets[-1]), dims)).astype(np.float32), offsets)
    specs = resolve_targets(params)
    target = torch.zeros(params.train.batch_size, n_outputs(specs))
    longest = int(lengths.max())

    def epoch(bucketed: bool, packed: bool = False, run_params: Params = params) -> float:
        layers.PACK_UNIDIRECTIONAL = packed
        torch.manual_seed(seed)
        model = build_task_model(run_params, specs, dims).train()
        opt = torch.optim.AdamW(model.parameters(), lr=params.train.lr)
        gen = torch.Generator().manual_seed(seed)
        if bucketed:
            order = list(BucketBatchSampler(lengths, params.train.batch_size, gen))
        else:
            order = torch.randperm(n_tracks, generator=gen).split(params.train.batch_size)
        start = time.perf_counter()
        for batch in order:
            batch = [int(i) for i in batch]
            x, lens = pad_batch([seqs[i] for i in batch])
            if not bucketed:  # pad to the longest clip of the data set; the GRU runs over the padding
                x = torch.nn.functional.pad(x, (0, 0, 0, longest - x.shape[1]))
                lens = torch.full_like(lens, longest)
            loss = torch.nn.functional.mse_loss(model(x, lens), target[: len(batch)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return time.perf_counter() - start

    try:
        bucket = [epoch(True) for _ in range(repeats)]
        packed = [epoch(True, packed=True) for _ in range(repeats)]
        padded = [epoch(False) for _ in range(repeats)]
        every_frame = [epoch(True, run_params=per_frame) for _ in range(repeats)] if stride > 1 else bucket
    finally:
        layers.PACK_UNIDIRECTIONAL = False
    frames = int(lengths.sum())
    return {"tracks": n_tracks, "frames": frames, "padded_frames": n_tracks * longest, "model": params.model.name,
            "batch_size": params.train.batch_size, "bucketed_epoch_s": median(bucket),
            "padded_epoch_s": median(padded), "packed_epoch_s": median(packed), "bucketed_walls_s": bucket,
            "padded_walls_s": padded, "packed_walls_s": packed, "speedup": median(padded) / median(bucket),
            "packing_slowdown": median(packed) / median(bucket), "frame_stride": stride,
            "stride1_epoch_s": median(every_frame), "stride1_walls_s": every_frame,
            "stride_speedup": median(every_frame) / median(bucket)}
