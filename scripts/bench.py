"""Benchmark the pipeline against the naive way; print a table and write JSON (``make bench``).

Everything runs in a throwaway copy of the repository (never in this checkout): the default
pipeline is reproduced there with ``train.epochs: 1`` (so a model exists for the inference and
``fretlab predict`` timings and ``dvc repro`` has something to find up to date), then:

* featurize throughput on 1 thread and on all cores (events/s, × real time of the source audio);
* training epoch time from the feature cache (the real ``train_model``) and the share of it
  outside the model's forward/backward/optimizer step, against the same model fed by an
  on-the-fly ``librosa`` Dataset, as a ratio measured in this run; and with ``train.channels_last``;
* inference throughput, and the wall time of ``fretlab predict`` on a 3-minute recording;
* torch vs ONNX on the same model: ``fretlab predict`` wall time (imports included), label and
  probability parity on that recording, and window-to-probability inference events/s;
* the overhead of a no-op ``dvc repro``;
* ``--full``: the default ``dvc repro`` from a clean cache (minutes);
* ``--scale N ...``: synthesize + featurize at several sizes (time per 10k events, peak memory).

    python scripts/bench.py                       # ~5-10 min on 2 cores
    python scripts/bench.py --full --scale 10000 20000 40000
    python scripts/bench.py --engines-only models/default --recording take.wav   # only the torch/ONNX rows
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TARGETS = {  # (figure, comparison, bound) on a 2-core CPU: the targets from docs/performance.md
    "featurize_x_realtime": (">=", 1000.0),
    "cached_epoch_outside_fraction": ("<=", 0.05),
    "predict_3min_wall_s": ("<=", 3.0),
    "predict_3min_onnx_wall_s": ("<=", 1.0),
    "dvc_noop_repro_s": ("<=", 3.0),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (the median is reported)")
    parser.add_argument("--epochs", type=int, default=3, help="cached training epochs (the first is not timed)")
    parser.add_argument("--ref-epochs", type=int, default=2, help="on-the-fly reference epochs")
    parser.add_argument("--ref-workers", type=int, default=0, help="DataLoader workers of the on-the-fly reference")
    parser.add_argument("--full", action="store_true", help="also time the default `dvc repro` from a clean cache")
    parser.add_argument("--scale", type=int, nargs="*", default=[], metavar="N", help="event counts for the scale run")
    parser.add_argument("--only", choices=["all", "sequences"], default="all",
                        help="sequences: only the track-batching row (recipes/attributes model, no pipeline run)")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results.json")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the temporary workspaces here")
    parser.add_argument("--engines-only", type=Path, default=None, metavar="MODEL_DIR",
                        help="only the torch vs ONNX rows, on this model directory and --recording (no dvc repro)")
    parser.add_argument("--recording", type=Path, default=None,
                        help="--engines-only: the recording to predict; made when missing (3 min of the "
                             "synthetic multi-note files, their true onsets beside it)")
    parser.add_argument("--scale-one", type=int, default=None, help=argparse.SUPPRESS)  # internal: one scale size
    return parser.parse_args()


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def scale_runs(sizes: list[int], work: Path) -> list[dict[str, Any]]:
    """Each size in its own process, so each peak-memory figure is its own."""
    out = []
    for n in sizes:
        log(f"scale: synthesize + featurize {n} events")
        folder = work / f"scale_{n}"
        folder.mkdir(parents=True)
        proc = subprocess.run([sys.executable, __file__, "--scale-one", str(n), "--workdir", str(folder)],
                              capture_output=True, text=True, check=True)
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        shutil.rmtree(folder)  # gigabytes of WAVs at the larger sizes
    return out


def main() -> None:
    args = parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")  # progress bars would drown the table
    import benchlib as bm

    if args.scale_one is not None:  # child process of scale_runs
        from fretlab.io import worker_count

        print(json.dumps(bm.scale_one(args.scale_one, args.workdir, worker_count(0), seed=42)))
        return

    if args.engines_only is not None:
        engines_only(args, bm)
        return

    from fretlab.cache.reader import load_features
    from fretlab.data.metadata import read_metadata
    from fretlab.io import worker_count
    from fretlab.params import load_params

    result_sequences = sequence_row(args)
    if args.only == "sequences":
        print_sequences(result_sequences)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": bm.machine_info(), "sequences": result_sequences}, indent=2) + "\n")
        log(f"wrote {args.out}")
        return

    work = Path(tempfile.mkdtemp(prefix="fretlab-bench-")) if args.workdir is None else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"machine": bm.machine_info(), "settings": {k: str(v) for k, v in vars(args).items()}}
    cores = worker_count(0)
    try:
        log(f"workspace {work / 'ws'}: dvc repro (default params, train.epochs 1)")
        ws = bm.make_workspace(REPO, work / "ws", {"train": {"epochs": 1}})
        result["setup_repro_s"] = bm.run(["dvc", "repro"], ws)[0]
        params = load_params(ws / "params.yaml")
        meta = read_metadata(ws / params.paths.split / "metadata.csv")
        root = ws / params.data.root

        result["featurize"] = {}
        for workers in sorted({1, cores}):
            log(f"featurize, {workers} worker(s)")
            result["featurize"][str(workers)] = bm.bench_featurize(
                meta, root, params.featurize, params.data.classes, work / "bench_features", workers, args.repeats)

        log(f"training from the cache: {args.epochs} epochs")
        cached = bm.bench_cached_training(params, ws / params.paths.features, work / "train", args.epochs)
        log(f"training on the fly (librosa in __getitem__): {args.ref_epochs} epochs")
        ref = bm.bench_on_the_fly_training(params, meta, root, args.ref_epochs, args.ref_workers)
        result["training"] = {"cached": cached, "on_the_fly": ref, "speedup": ref["epoch_s"] / cached["epoch_s"]}
        log(f"training from the cache, train.channels_last: {args.epochs} epochs")
        nhwc = params.model_copy(update={"train": params.train.model_copy(update={"channels_last": True})})
        last = bm.bench_cached_training(nhwc, ws / params.paths.features, work / "train_nhwc", args.epochs)
        result["training"]["cached_channels_last"] = {**last, "speedup_vs_cached": cached["epoch_s"] / last["epoch_s"]}
        if params.train.ema_decay is not None:
            log(f"training from the cache, train.ema_decay null (the last step's weights): {args.epochs} epochs")
            plain = params.model_copy(update={"train": params.train.model_copy(update={"ema_decay": None})})
            no_ema = bm.bench_cached_training(plain, ws / params.paths.features, work / "train_no_ema", args.epochs)
            result["training"]["cached_no_ema"] = {**no_ema, "ema_cost": cached["epoch_s"] / no_ema["epoch_s"]}

        log("inference and fretlab predict")
        x_train = load_features(ws / params.paths.features, "train")[0]
        result["inference"] = bm.bench_inference(ws / params.paths.model, x_train, params.evaluate.batch_size,
                                                 args.repeats)
        recording = work / "recording_3min.wav"
        seconds = bm.make_recording(meta, root, recording, 180.0)
        result["predict"] = {"recording_sec": seconds, **bm.bench_predict(ws / params.paths.model, recording, work,
                                                                           args.repeats)}
        log("torch vs ONNX: export, fretlab predict, parity, window inference")
        result["engines"] = bm.bench_engines(ws / params.paths.model, recording, work / "engines", args.repeats,
                                             params.evaluate.batch_size)
        log("onset detection against the recording's true onsets, per onset FFT size")
        result["onsets"] = bm.bench_onsets(work / "engines" / "model_onnx", recording, args.repeats)
        result["onnx_phases"] = bm.bench_onnx_phases(work / "engines" / "model_onnx", recording, args.repeats)

        log("no-op dvc repro")
        noop = [bm.run(["dvc", "repro"], ws) for _ in range(args.repeats)]
        if any("Running stage" in out for _, out in noop):
            raise RuntimeError("`dvc repro` re-ran a stage in the workspace; the no-op timing is void")
        result["dvc"] = {"noop_repro_s": bm.median([t for t, _ in noop]), "noop_walls_s": [t for t, _ in noop]}

        if args.full:
            log("full default dvc repro from a clean cache (minutes)")
            full = bm.make_workspace(REPO, work / "full")
            result["dvc"]["full_repro_s"] = bm.run(["dvc", "repro"], full)[0]
        if args.scale:
            result["scale"] = scale_runs(args.scale, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    result["sequences"] = result_sequences
    result["machine"]["load_average_after"] = list(os.getloadavg())
    result["targets"] = check_targets(result, cores)
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {args.out}")


def sequence_row(args: argparse.Namespace) -> dict[str, Any]:
    """One training epoch of the attribute recipe's model on its track lengths: bucketed vs padded to the longest."""
    import benchlib as bm

    from fretlab.params import load_params

    params = load_params(REPO / "recipes/attributes/params.yaml")
    tracks = params.synthesize_tracks
    n_train = round(tracks.n_tracks * params.split.fractions["train"])
    log(f"track batching: {n_train} tracks of {tracks.duration_sec[0]:g}-{tracks.duration_sec[1]:g} s, "
        f"model {params.model.name}")
    return bm.bench_sequence_batching(params, n_train, tracks.duration_sec, args.repeats)


def print_sequences(s: dict[str, Any]) -> None:
    print(f"track epoch, bucketed ({s['model']})            {s['bucketed_epoch_s']:.2f} s ({s['tracks']} tracks, "
          f"{s['frames']} frames)")
    print(f"track epoch, padded to the longest clip    {s['padded_epoch_s']:.2f} s ({s['padded_frames']} frames): "
          f"bucketing {s['speedup']:.2f}x faster, same run")
    print(f"track epoch, bucketed + packed GRU         {s['packed_epoch_s']:.2f} s: packing "
          f"{s['packing_slowdown']:.2f}x the causal unpacked run")
    print(f"track epoch, bucketed, every frame a step  {s['stride1_epoch_s']:.2f} s: frame_stride "
          f"{s['frame_stride']} is {s['stride_speedup']:.2f}x faster")


def check_targets(result: dict[str, Any], cores: int) -> dict[str, Any]:
    measured = {
        "featurize_x_realtime": result["featurize"][str(cores)]["x_realtime"],
        "cached_epoch_outside_fraction": result["training"]["cached"]["outside_fraction"],
        "predict_3min_wall_s": result["predict"]["wall_s"],
        "predict_3min_onnx_wall_s": result["engines"]["predict"]["onnx"]["wall_s"],
        "dvc_noop_repro_s": result["dvc"]["noop_repro_s"],
    }
    out = {}
    for name, (op, bound) in TARGETS.items():
        value = measured[name]
        out[name] = {"target": f"{op} {bound:g}", "measured": value,
                     "met": value >= bound if op == ">=" else value <= bound}
    return out


def print_table(r: dict[str, Any]) -> None:
    m, t, pr = r["machine"], r["training"], r["predict"]
    load = " / ".join(f"{v:.1f}" for v in m["load_average"])
    rows = [("machine", f"{m['cpu']}, {m['cores']} cores, torch {m['torch']}"),
            ("load average 1/5/15 min (before)", load)]
    for w, f in r["featurize"].items():
        rows.append((f"featurize, {w} worker(s)",
                     f"{f['events_per_s']:.0f} events/s = {f['x_realtime']:.0f}x real time ({f['events']} events, "
                     f"{f['audio_sec']:.0f} s of audio in {f['wall_s']:.2f} s; CPU {f['cpu_s']:.2f} s)"))
    rows += [
        ("epoch from cached features", f"{t['cached']['epoch_s']:.2f} s ({t['cached']['train_events']} train + "
                                       f"{t['cached']['val_events']} val events)"),
        ("  share outside fwd/bwd/step", f"{100 * t['cached']['outside_fraction']:.1f} %"),
        ("epoch from the cache, train.channels_last", f"{t['cached_channels_last']['epoch_s']:.2f} s "
                                                      f"({t['cached_channels_last']['speedup_vs_cached']:.2f}x the "
                                                      "default layout, same run)"),
        *([("epoch from the cache, train.ema_decay null", f"{t['cached_no_ema']['epoch_s']:.2f} s (the default's "
            f"weight average costs {t['cached_no_ema']['ema_cost']:.2f}x, same run)")] if "cached_no_ema" in t else []),
        ("epoch on the fly (librosa in __getitem__)", f"{t['on_the_fly']['epoch_s']:.2f} s"),
        ("  cached speed-up, same run", f"{t['speedup']:.1f}x"),
        ("inference", f"{r['inference']['events_per_s']:.0f} events/s (batch {r['inference']['batch_size']})"),
        ("fretlab predict, 3-min recording",
         f"{pr['wall_s']:.2f} s (first run {pr['first_run_s']:.2f} s; {pr['notes_found']} notes)"),
        *engine_rows(r["engines"]),
        *onset_rows(r["onsets"]),
        *phase_rows(r["onnx_phases"]),
        ("no-op dvc repro", f"{r['dvc']['noop_repro_s']:.2f} s"),
    ]
    if "full_repro_s" in r["dvc"]:
        rows.append(("full default dvc repro, clean cache", f"{r['dvc']['full_repro_s']:.0f} s"))
    for s in r.get("scale", []):
        rows.append((f"scale: {s['events']} events", f"synthesize {s['synthesize_s_per_10k']:.0f} s/10k, featurize "
                                                     f"{s['featurize_s_per_10k']:.1f} s/10k, peak RSS "
                                                     f"{s['peak_rss_mb']:.0f} MB"))
    if "sequences" in r:
        sq = r["sequences"]
        rows += [(f"track epoch, bucketed ({sq['model']})", f"{sq['bucketed_epoch_s']:.2f} s"),
                 ("track epoch, bucketed, packed GRU", f"{sq['packed_epoch_s']:.2f} s ({sq['packing_slowdown']:.2f}x)"),
                 ("track epoch, padded to the longest clip", f"{sq['padded_epoch_s']:.2f} s "
                                                             f"(bucketing {sq['speedup']:.2f}x faster, same run)")]
    for name, tgt in r["targets"].items():
        verdict = "met" if tgt["met"] else "MISSED"
        rows.append((f"target {name}", f"{tgt['measured']:.3g} (target {tgt['target']}): {verdict}"))
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"{a:<{width}}  {b}")

def engine_rows(e: dict[str, Any]) -> list[tuple[str, str]]:
    """Table rows of :func:`benchlib.bench_engines`."""
    pt, po, par = e["predict"]["torch"], e["predict"]["onnx"], e["parity"]
    wt, wo = e["window_inference"]["torch"], e["window_inference"]["onnx"]
    diff = "n/a" if par["max_abs_prob_diff"] is None else f"{par['max_abs_prob_diff']:.1e}"
    return [
        ("fretlab predict, 3-min, --engine torch", f"{pt['wall_s']:.2f} s (runs {min(pt['walls_s']):.2f}-"
                                                   f"{max(pt['walls_s']):.2f} s; CPU {pt['cpu_s']:.2f} s)"),
        ("fretlab predict, 3-min, --engine onnx", f"{po['wall_s']:.2f} s (runs {min(po['walls_s']):.2f}-"
                                                  f"{max(po['walls_s']):.2f} s; CPU {po['cpu_s']:.2f} s; "
                                                  f"{e['speedup']:.1f}x torch, same run)"),
        ("  onnx vs torch on that take", f"{par['events']} events, labels identical: {par['labels_identical']}, "
                                         f"max |p diff| {diff}"),
        ("window inference, torch (front end + model)",
         f"{wt['events_per_s']:.0f} events/s (batch {wt['batch_size']})"),
        ("window inference, onnx (one graph)", f"{wo['events_per_s']:.0f} events/s (batch {wo['batch_size']})"),
        ("fretlab export", f"{e['export_s']:.1f} s, {e['onnx_bytes'] / 1e6:.1f} MB"),
    ]


def phase_rows(p: dict[str, Any]) -> list[tuple[str, str]]:
    """Table rows of :func:`benchlib.bench_onnx_phases`."""
    return [(f"  onnx phase: {name}", f"{d['wall_s']:.3f} s (CPU {d['cpu_s']:.3f} s)") for name, d in p.items()]


def onset_rows(o: dict[str, Any]) -> list[tuple[str, str]]:
    """Table rows of :func:`benchlib.bench_onsets`."""
    return [(f"onsets, predict.onset_n_fft={n}",
             f"{d['onsets_wall_s']:.3f} s; F {d['f_measure']:.3f} (P {d['precision']:.3f}, R {d['recall']:.3f}, "
             f"±{o['tolerance_s'] * 1000:.0f} ms, {o['true_notes']} notes); labels on matched notes: acc "
             f"{d['label_accuracy']:.3f}, macro-F1 {d['label_macro_f1']:.3f}") for n, d in o["by_n_fft"].items()]


def engines_only(args: argparse.Namespace, bm: Any) -> None:
    """``--engines-only``: the torch vs ONNX rows on a given model directory and recording, nothing else."""
    if args.recording is None:
        raise SystemExit("--engines-only needs --recording PATH (e.g. a 3-minute multi-note take)")
    if not args.recording.is_file():  # made from this workspace's synthetic notes, with their true onsets
        import pandas as pd

        from fretlab.params import load_params

        params = load_params(REPO / "params.yaml")
        root = REPO / params.data.root
        bm.make_recording(pd.read_csv(root / params.data.metadata), root, args.recording, 180.0)
        log(f"wrote {args.recording} and {bm.truth_path(args.recording)} from {root}")
    from fretlab.params import Evaluate

    work = Path(tempfile.mkdtemp(prefix="fretlab-bench-")) if args.workdir is None else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"machine": bm.machine_info(), "settings": {k: str(v) for k, v in vars(args).items()}}
    try:
        log(f"torch vs ONNX on {args.engines_only}, {args.recording}")
        result["engines"] = bm.bench_engines(args.engines_only, args.recording, work, args.repeats,
                                             Evaluate().batch_size)
        if bm.truth_path(args.recording).is_file():  # written by make_recording next to the take
            result["onsets"] = bm.bench_onsets(work / "model_onnx", args.recording, args.repeats)
        result["onnx_phases"] = bm.bench_onnx_phases(work / "model_onnx", args.recording, args.repeats)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    result["machine"]["load_average_after"] = list(os.getloadavg())
    wall = result["engines"]["predict"]["onnx"]["wall_s"]
    result["targets"] = {"predict_3min_onnx_wall_s": {"target": "<= 1", "measured": wall, "met": wall <= 1.0}}
    load = " / ".join(f"{v:.1f}" for v in result["machine"]["load_average"])
    rows = [("machine", f"{result['machine']['cpu']}, {result['machine']['cores']} cores"),
            ("load average 1/5/15 min (before)", load), *engine_rows(result["engines"]),
            *(onset_rows(result["onsets"]) if "onsets" in result else []), *phase_rows(result["onnx_phases"]),
            ("target predict_3min_onnx_wall_s", f"{wall:.3g} (target <= 1): {'met' if wall <= 1.0 else 'MISSED'}")]
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"{a:<{width}}  {b}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
