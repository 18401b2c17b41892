"""Determinism and kill-resume, on the real DVC pipeline with tiny params (CPU).

One uninterrupted ``dvc repro`` is the reference for both tests:

* a second run from scratch in another workspace gives byte-identical features, model and metrics;
* in the reference workspace, training is forced again, SIGKILLed mid-epoch after a checkpoint
  exists, and ``dvc repro`` resumes it to exactly the reference model and metrics.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import torch
import yaml

from conftest import TINY_PARAMS, Workspace, copy_working_tree, deep_update

pytestmark = pytest.mark.integration

EPOCHS = 4  # the kill lands half way through epoch 3, after two checkpoints: one epoch of margin
OVERRIDES = {
    # 10 guitars: every class lands in every split with this seed; batch 8: a few dozen steps per epoch
    "synthesize": {"n_events": 160, "n_guitars": 10, "lick_fraction": 0.3},
    "train": {"epochs": EPOCHS, "patience": EPOCHS, "batch_size": 8},
    "base": {"workers": 1, "device": "cpu"},
    "checkset": {"enabled": False},  # not among RESULTS: its determinism is test_checkset.py's
}
RESULTS = ["models/default", "metrics", "dvclive/metrics.json"]
CACHE = ["data/synthetic/metadata.csv", "data/split/metadata.csv", "data/features"]


def _workspace(root: Path) -> Workspace:
    root.mkdir()
    copy_working_tree(root)
    (root / "dvc.lock").unlink(missing_ok=True)
    for stale in ("checkpoints", "metrics", "plots", "dvclive", "models"):
        shutil.rmtree(root / stale, ignore_errors=True)
    ws = Workspace(root)
    # one intra-op thread: on a shared 2-core runner OpenMP spin-waiting made training ~5x slower, and
    # both runs being compared use the same thread count (see docs/reliability.md on CPU threads)
    ws.env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    params = deep_update(yaml.safe_load(yaml.safe_dump(TINY_PARAMS)), OVERRIDES)
    ws.set_params(params, commit=False)
    ws.run("git", "init", "-q", "-b", "main")
    ws.run("git", "add", "-A")
    ws.run("git", "commit", "-qm", "workspace")
    return ws


def _snapshot(root: Path, names: list[str]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for name in names:
        path = root / name
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.is_file():
                files[f.relative_to(root).as_posix()] = f.read_bytes()
    assert files, f"nothing under {names}"
    return files


def _curves(root: Path) -> dict[str, list[float]]:
    """dvclive's per-epoch curves without the wall-clock timestamp column."""
    out = {}
    for tsv in sorted((root / "dvclive/plots/metrics").rglob("*.tsv")):
        table = pd.read_csv(tsv, sep="\t").drop(columns="timestamp", errors="ignore")
        out[tsv.relative_to(root).as_posix()] = table.to_numpy().ravel().tolist()
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    ws = _workspace(tmp_path_factory.mktemp("reference") / "ws")
    ws.run("dvc", "repro")
    return ws, _snapshot(ws.root, CACHE), _snapshot(ws.root, RESULTS), _curves(ws.root)


def test_two_runs_from_scratch_are_identical(reference, tmp_path):
    _, ref_cache, ref_results, ref_curves = reference
    ws = _workspace(tmp_path / "again")
    ws.run("dvc", "repro")
    cache = _snapshot(ws.root, CACHE)
    assert sorted(cache) == sorted(ref_cache)
    for name, data in cache.items():
        assert data == ref_cache[name], f"{name} differs between two runs from scratch"
    results = _snapshot(ws.root, RESULTS)
    assert results == ref_results, [n for n in results if results[n] != ref_results.get(n)]
    assert _curves(ws.root) == ref_curves


def _checkpoint_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns  # atomic replace: a new file (and mtime) per epoch


def _train_process(parent: psutil.Process) -> psutil.Process | None:
    """The Python process running stages/train.py: not the ``sh -c`` wrapper DVC may start it through
    (killing that would orphan a still-training Python), nor one of its forked DataLoader workers."""
    found: dict[int, psutil.Process] = {}
    for child in parent.children(recursive=True):
        try:
            cmd = child.cmdline()
        except psutil.Error:
            continue
        if cmd and Path(cmd[0]).name.startswith("python") and any("stages/train.py" in c for c in cmd):
            found[child.pid] = child
    top = [p for p in found.values() if p.ppid() not in found]
    return top[0] if len(top) == 1 else None


def _workspace_trainers(root: Path) -> list[psutil.Process]:
    procs = []
    for p in psutil.process_iter(["cmdline", "cwd"]):
        if p.info["cwd"] == str(root) and any("stages/train.py" in c for c in p.info["cmdline"] or []):
            procs.append(p)
    return procs


def test_training_killed_mid_epoch_resumes_to_the_same_model_and_metrics(reference):
    ws, _, ref_results, ref_curves = reference
    root = ws.root
    for name in ("checkpoints", "metrics"):  # start the stage over; evaluate must really re-run later
        shutil.rmtree(root / name)
    ckpt = root / "checkpoints" / "last.pt"
    log = (root / "killed_run.log").open("w")
    proc = subprocess.Popen(["dvc", "repro", "-f", "-s", "train"], cwd=root, env=ws.env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        seen: list[tuple[tuple[int, int], float]] = []
        deadline = time.monotonic() + 300
        while len(seen) < 2:  # two checkpoints: we know an epoch's length and one is safely on disk
            assert proc.poll() is None, "training ended before the kill:\n" + (root / "killed_run.log").read_text()
            assert time.monotonic() < deadline, "no checkpoints appeared"
            key = _checkpoint_key(ckpt)
            if key is not None and (not seen or seen[-1][0] != key):
                seen.append((key, time.monotonic()))
            time.sleep(0.005)
        time.sleep((seen[1][1] - seen[0][1]) / 2)  # about half way through the next epoch
        train = _train_process(psutil.Process(proc.pid))
        assert train is not None, "train process not found"
        train.send_signal(signal.SIGKILL)
        train.wait(30)
        proc.wait(60)
        _, alive = psutil.wait_procs(_workspace_trainers(root), timeout=30)  # DataLoader workers follow
        assert not alive, f"train processes outlived the kill: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert proc.returncode != 0, "dvc should report the killed stage as failed"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert 2 <= state["epoch"] < EPOCHS and not state["finished"], state["epoch"]
    assert not (root / "models/default/model.safetensors").exists()

    resumed = ws.run("dvc", "repro")
    assert f"resuming from checkpoints/last.pt after epoch {state['epoch']}" in resumed.stdout, resumed.stdout
    assert "Running stage 'evaluate'" in resumed.stdout
    results = _snapshot(root, RESULTS)
    assert sorted(results) == sorted(ref_results)
    for name, data in results.items():
        assert data == ref_results[name], f"{name} differs from the uninterrupted run"
    assert _curves(root) == ref_curves
