"""DistributedDataParallel through the real train stage: torchrun, 2 CPU processes, gloo."""

import json

import pandas as pd
import pytest

pytestmark = pytest.mark.integration

# No augmentation or dropout: the two runs then differ only by DDP itself (per-rank BatchNorm
# statistics on half batches, and the class-weighted loss averaged per rank).
QUIET = {
    "train": {"epochs": 3, "augment": {"gain_db": 0.0, "shift_ms": 0.0, "noise_db": None}},
    "model": {"crnn": {"dropout": 0.0, "head_dropout": 0.0}},
}


def _curves(root):
    loss = pd.read_csv(root / "dvclive/plots/metrics/train/loss.tsv", sep="\t")["loss"].tolist()
    val = pd.read_csv(root / "dvclive/plots/metrics/val/loss.tsv", sep="\t")["loss"].tolist()
    return loss, val


def test_two_gloo_processes_track_the_single_process_run(baseline_workspace):
    ws = baseline_workspace  # synthesize, split and featurize done: train re-runs for the QUIET params
    ws.set_params(QUIET)
    single = ws.run("dvc", "repro", "train")
    assert "train.ddp" not in single.stdout  # nproc: 1 never starts torch.distributed
    single_loss, single_val = _curves(ws.root)

    ws.set_params({"train": {"ddp": {"nproc": 2, "backend": "gloo"}}})
    ddp = ws.run("dvc", "repro", "train")
    assert "train.ddp: 2 processes, gloo backend" in ddp.stdout
    ddp_loss, ddp_val = _curves(ws.root)

    # rank 0 alone logged: one row per epoch, not one per process
    assert len(ddp_loss) == len(single_loss) == 3
    assert (ws.root / "models/default/model.safetensors").is_file()
    summary = json.loads((ws.root / "dvclive/metrics.json").read_text())
    assert summary["best_epoch"] >= 1
    # same global batches and learning rate, so the curves stay close to the single-process ones
    for a, b in zip(single_loss + single_val, ddp_loss + ddp_val, strict=True):
        assert abs(a - b) <= 0.05 * abs(a), (single_loss, single_val, ddp_loss, ddp_val)
    assert ddp_loss[-1] < ddp_loss[0]  # and it learns
