"""Phases of ``fretlab predict --engine onnx`` in this fresh process, as JSON ``{phase: [wall_s, cpu_s]}``.

Run by ``scripts/bench.py`` (``benchlib.bench_onnx_phases``); imports nothing but what the ONNX engine imports,
so the import phases are the command's own.

    python scripts/onnx_phases.py MODEL_DIR RECORDING
"""

import time

MARKS = [("start", time.perf_counter(), time.process_time())]


def mark(name: str) -> None:
    MARKS.append((name, time.perf_counter(), time.process_time()))


def main(model_dir: str, recording: str) -> None:
    import itertools
    import json

    from fretlab.app.onnx_predict import OnnxPredictor  # NumPy, the pydantic params, audio, onsets
    from fretlab.app.predict import detect_onsets, event_offsets

    mark("imports (NumPy, params, audio)")
    import onnxruntime  # noqa: F401

    mark("import onnxruntime")
    engine = OnnxPredictor(model_dir)
    mark("session, metadata, weights check")
    wave = engine.load(recording)
    mark("decode + resample")
    sr = engine.cfg.sample_rate
    onsets, _ = detect_onsets(wave, sr, engine.settings)
    mark("onsets")
    event_offsets(wave, sr, onsets, engine.settings)
    mark("offsets")
    engine.probabilities(wave, [float(t) for t in onsets])
    mark("graph on every window")
    print(json.dumps({name: [t - t0, c - c0] for (_, t0, c0), (name, t, c) in itertools.pairwise(MARKS)}))


if __name__ == "__main__":
    import sys

    main(*sys.argv[1:3])
