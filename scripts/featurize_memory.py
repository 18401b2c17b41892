"""Measure the featurize stage's peak memory at several dataset sizes (is it flat?).

Synthesizes a few long WAV files once, then for each size writes a split metadata table whose
events point into those files (many events per file), runs ``stages/featurize.py`` in a
subprocess and polls the memory of its whole process tree (the stage and its DataLoader workers):
total RSS, PSS (pages shared between the forked workers counted once) and anonymous RSS (heap;
excludes shared libraries and page cache). Prints a
table and writes JSON (with a sampled memory trace per run).

    python scripts/featurize_memory.py --events 1000 20000 --workers 2 --out docs/featurize_memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import soundfile as sf
import yaml

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["general_note", "harmonic", "dead_note"]


def make_audio(root: Path, n_files: int, seconds: float, sr: int, seed: int) -> list[str]:
    """Write ``n_files`` long mono WAVs of decaying tones in noise; return their relative paths."""
    rng = np.random.default_rng(seed)
    rels = []
    t = np.arange(int(seconds * sr)) / sr
    for i in range(n_files):
        freq = 110.0 * 2 ** (i / 12)
        wave = 0.3 * np.sin(2 * np.pi * freq * t) * np.exp(-(t % 1.0) * 3) + 0.01 * rng.standard_normal(t.size)
        rel = f"audio/long_{i:02d}.wav"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, wave.astype(np.float32), sr, subtype="PCM_16")
        rels.append(rel)
    return rels


def make_metadata(rels: list[str], n_events: int, seconds: float, seed: int) -> pd.DataFrame:
    """``n_events`` events spread over the files, split 80/10/10 by file group."""
    rng = np.random.default_rng(seed)
    files = rng.integers(len(rels), size=n_events)
    onsets = np.round(rng.uniform(0.0, seconds - 1.5, size=n_events), 4)
    splits = np.array(["train"] * 8 + ["val", "test"])
    return pd.DataFrame({
        "note_id": [f"e{i:06d}" for i in range(n_events)],
        "audio_path": [rels[f] for f in files],
        "onset_sec": onsets,
        "offset_sec": onsets + 0.5,
        "pitch_midi": 60,
        "expression_style": "NO",
        "label_category": [CLASSES[i % len(CLASSES)] for i in range(n_events)],
        "group": [f"g{i % 10}" for i in range(n_events)],
        "split": splits[np.arange(n_events) % 10],
    })


def _proc_kib(path: str, key: str) -> int:
    """The ``key:`` line of a /proc file, in bytes (0 when the process is gone)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _rss_anon(proc: psutil.Process) -> int:
    """Anonymous resident memory (heap, not file-backed pages), from /proc/<pid>/status."""
    return _proc_kib(f"/proc/{proc.pid}/status", "RssAnon:")


def _pss(proc: psutil.Process) -> int:
    """Proportional set size: pages shared with forked workers are split between them, not counted twice."""
    return _proc_kib(f"/proc/{proc.pid}/smaps_rollup", "Pss:")


def run_featurize(params_path: Path, log_path: Path, poll_s: float) -> dict[str, float]:
    """Run the featurize stage once; poll the process tree's memory until it exits."""
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen([sys.executable, "stages/featurize.py", "--params", str(params_path)], cwd=REPO,
                                stdout=log, stderr=subprocess.STDOUT)
    root = psutil.Process(proc.pid)
    peak_rss = peak_anon = peak_pss = peak_procs = peak_parent = 0
    trace: list[tuple[float, float, float]] = []  # (seconds, tree anon MiB, parent anon MiB)
    start = time.perf_counter()
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:  # exited; ru_maxrss: the largest single process of the tree (KiB on Linux)
            break
        try:
            tree = [root, *root.children(recursive=True)]
            rss = sum(p.memory_info().rss for p in tree)
            anon = sum(_rss_anon(p) for p in tree)
            pss = sum(_pss(p) for p in tree)
            parent = root.memory_info().rss
        except psutil.Error:
            continue
        peak_rss, peak_anon, peak_procs = max(peak_rss, rss), max(peak_anon, anon), max(peak_procs, len(tree))
        peak_parent, peak_pss = max(peak_parent, parent), max(peak_pss, pss)
        trace.append((round(time.perf_counter() - start, 2), round(anon / 2**20, 1), round(_rss_anon(root) / 2**20, 1)))
        time.sleep(poll_s)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"featurize failed ({proc.returncode}):\n{log_path.read_text(encoding='utf-8')[-4000:]}")
    anon_samples = sorted(a for _, a, _ in trace)
    p95 = anon_samples[int(0.95 * (len(anon_samples) - 1))] if anon_samples else 0.0
    return {"wall_s": wall, "peak_tree_rss_mb": peak_rss / 2**20, "peak_tree_pss_mb": peak_pss / 2**20,
            "peak_tree_anon_mb": peak_anon / 2**20,
            "p95_tree_anon_mb": p95,
            "peak_parent_rss_mb": peak_parent / 2**20, "max_single_process_rss_mb": usage.ru_maxrss / 2**10,
            "processes": peak_procs, "trace": trace[:: max(1, len(trace) // 200)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[1000, 20000])
    parser.add_argument("--files", type=int, default=12, help="long audio files the events point into")
    parser.add_argument("--file-sec", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between memory polls")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/featurize_memory.json"))
    args = parser.parse_args()

    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="fretlab-mem-") as tmp:
        tmp_dir = Path(tmp)
        audio_root = tmp_dir / "audio_root"
        rels = make_audio(audio_root, args.files, args.file_sec, 44100, args.seed)
        for n_events in args.events:
            run_dir = tmp_dir / f"n{n_events}"
            meta = make_metadata(rels, n_events, args.file_sec, args.seed)
            (run_dir / "split").mkdir(parents=True)
            meta.to_csv(run_dir / "split" / "metadata.csv", index=False)
            params["paths"].update(split=str(run_dir / "split"), features=str(run_dir / "features"))
            params["data"].update(root=str(audio_root), classes=CLASSES)
            params["base"]["workers"] = args.workers
            params_path = run_dir / "params.yaml"
            params_path.write_text(yaml.safe_dump(params), encoding="utf-8")
            result = run_featurize(params_path, run_dir / "featurize.log", args.poll)
            size = sum(f.stat().st_size for f in (run_dir / "features").glob("*.npy"))
            rows.append({"events": n_events, "features_mb": size / 2**20, "workers": args.workers, **result})
            print(f"{n_events} events done in {result['wall_s']:.1f} s", file=sys.stderr)
    table = pd.DataFrame(rows).drop(columns="trace")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"files": args.files, "file_sec": args.file_sec, "rows": rows}, indent=2) + "\n",
                        encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
