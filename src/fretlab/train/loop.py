"""Training loop: AdamW, ReduceLROnPlateau, early stopping on val macro-F1, resumable checkpoints."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from dvclive import Live
from sklearn.utils.class_weight import compute_class_weight
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from fretlab.io import atomic_path
from fretlab.models.augment import mixup
from fretlab.models.classifier import Classifier
from fretlab.params import Params, Train
from fretlab.runtime import (
    autocast,
    batches,
    configure_determinism,
    predict_logits,
    select_device,
    to_device_tensor,
)
from fretlab.tasks.metrics import macro_f1
from fretlab.train import distributed

CHECKPOINT = "last.pt"


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch (CPU and CUDA) and return a generator for batch order."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def make_scheduler(opt: torch.optim.Optimizer, cfg: Train) -> Any:
    """``train.scheduler``: plateau (on val macro-F1), cosine (over ``train.epochs``) or none (constant lr)."""
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=cfg.scheduler_factor,
                                                          patience=cfg.scheduler_patience)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)  # has a state_dict, so checkpoints stay uniform


def fingerprint(params: Params, features_dir: Path, data_files: Sequence[Path] | None = None) -> str:
    """Hash of everything a checkpoint depends on: training params and the feature arrays.

    ``data_files`` replaces the default train/val cache files (a cross-validation fold's own set).
    """
    h = hashlib.sha256()
    relevant = {k: params.model_dump(mode="json")[k] for k in ("base", "featurize", "model", "train")}
    relevant["base"].pop("workers")
    h.update(json.dumps(relevant, sort_keys=True).encode())
    files = [features_dir / n for n in ("train.npy", "train.csv", "val.npy", "val.csv")]
    for path in files if data_files is None else data_files:
        if data_files is not None:
            h.update(Path(path).name.encode())  # which folds play which role
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


@dataclass
class TrainState:
    """Everything needed to resume: saved atomically after every epoch."""

    epoch: int
    history: list[dict[str, float]]
    best_f1: float
    best_epoch: int
    best_state: dict[str, torch.Tensor]
    bad_epochs: int
    finished: bool


def save_checkpoint(path: Path, fp: str, model: nn.Module, opt: torch.optim.Optimizer, sched: Any,
                    gen: torch.Generator, state: TrainState) -> None:
    """Atomically write the full training state (tensors and plain types only)."""
    blob = {
        "fingerprint": fp, "model": model.state_dict(), "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state(), "batch_rng": gen.get_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        **state.__dict__,
    }
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load_checkpoint(path: Path, fp: str) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it belongs to this exact run (same fingerprint).

    Loaded with ``weights_only=True`` (tensors and plain types, never arbitrary pickled objects).
    An unreadable or foreign file is reported and ignored: training starts from scratch.
    """
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable checkpoint (truncated, pickled objects): start over, loudly
        print(f"warning: ignoring unreadable checkpoint {path} ({type(exc).__name__}: {str(exc)[:200]}); "
              "training from scratch")
        return None
    if not isinstance(blob, dict) or blob.get("fingerprint") != fp:
        print(f"note: {path} belongs to other params or features; training from scratch")
        return None
    return blob


def train_model(
    params: Params, model: Classifier, data: dict[str, tuple[np.ndarray, np.ndarray]], n_classes: int,
    ckpt_dir: Path, live_dir: Path, features_dir: Path, data_files: Sequence[Path] | None = None,
) -> TrainState:
    """Train with early stopping, resuming from ``ckpt_dir`` when it holds this run's checkpoint."""
    cfg = params.train
    configure_determinism(params.base.deterministic)
    device = select_device(params.base.device)
    gen = seed_everything(params.base.seed)
    ddp = distributed.current()  # rank 0 of 1 unless launched by torchrun (train.ddp)
    mix_gen = gen
    if ddp.world > 1:  # augmentation, dropout and mixup draw per rank; the batch order (gen) stays shared
        torch.manual_seed(params.base.seed + ddp.rank)
        mix_gen = torch.Generator().manual_seed(params.base.seed + ddp.rank)
    x_train = to_device_tensor(data["train"][0], device)
    y_train = torch.as_tensor(np.array(data["train"][1]), device=x_train.device)
    x_val, y_val_np = to_device_tensor(data["val"][0], device), data["val"][1]
    model.fit_standardization(x_train)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)  # 4-d weights NHWC; loading state later keeps the layout
    weights = None
    if cfg.class_weights:
        present = np.unique(data["train"][1])
        w = np.ones(n_classes)
        w[present] = compute_class_weight("balanced", classes=present, y=data["train"][1])
        weights = torch.tensor(w, dtype=torch.float32, device=device)
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = make_scheduler(opt, cfg)
    step_model: nn.Module = model
    if ddp.world > 1:
        gpu = [torch.cuda.current_device()] if device.type == "cuda" else None  # set per LOCAL_RANK by distributed
        step_model = DistributedDataParallel(model, device_ids=gpu)
    if cfg.compile:
        step_model = torch.compile(step_model)
    fp = fingerprint(params, features_dir, data_files)
    ckpt_path = ckpt_dir / CHECKPOINT
    state = TrainState(0, [], -1.0, -1, {}, 0, False)
    blob = load_checkpoint(ckpt_path, fp)
    if blob is not None:
        model.load_state_dict(blob["model"])
        opt.load_state_dict(blob["optimizer"])
        sched.load_state_dict(blob["scheduler"])
        torch.set_rng_state(blob["torch_rng"])
        gen.set_state(blob["batch_rng"])
        if blob["cuda_rng"]:
            torch.cuda.set_rng_state_all(blob["cuda_rng"])
        state = TrainState(**{k: blob[k] for k in TrainState.__dataclass_fields__})
        print(f"resuming from {ckpt_path} after epoch {state.epoch}")

    # only rank 0 logs and checkpoints; the other ranks train and follow its decisions
    with Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=False) if ddp.is_main else nullcontext() as live:
        for record in state.history if ddp.is_main else []:  # replay so the curves cover the whole run
            _log_epoch(live, record)
        while not state.finished and state.epoch < cfg.epochs:
            step_model.train()
            total, count = 0.0, 0
            for idx in tqdm(list(batches(len(x_train), cfg.batch_size, gen, x_train.device)),
                            desc=f"epoch {state.epoch + 1}", leave=False, disable=None if ddp.is_main else True):
                if ddp.world > 1:
                    idx = _shard(idx, ddp)
                xb, yb = x_train[idx].to(device, non_blocking=True), y_train[idx].to(device, non_blocking=True)
                with autocast(device, cfg.amp):
                    if cfg.augment.mixup_alpha > 0:
                        xb, ya, yb2, lam = mixup(xb, yb, cfg.augment.mixup_alpha, mix_gen)
                        out = step_model(xb).float()
                        loss = lam * loss_fn(out, ya) + (1 - lam) * loss_fn(out, yb2)
                    else:
                        loss = loss_fn(step_model(xb).float(), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach() * len(idx)
                count += len(idx)
            total, count = distributed.all_sum(total, count)
            train_loss = total / max(count, 1)
            val_logits = predict_logits(model, x_val, params.evaluate.batch_size, cfg.amp)
            val_loss = float(nn.functional.cross_entropy(val_logits, torch.from_numpy(y_val_np),
                                                         weight=None if weights is None else weights.cpu()))
            val_pred = val_logits.argmax(1).numpy()
            val_f1 = macro_f1(y_val_np, val_pred, n_classes)
            record = {
                "train/loss": train_loss, "val/loss": val_loss, "val/macro_f1": val_f1,
                "val/accuracy": float((val_pred == y_val_np).mean()), "lr": opt.param_groups[0]["lr"],
            }
            record = distributed.from_main(record)  # every rank takes rank 0's lr and stopping decisions
            val_f1 = record["val/macro_f1"]
            if cfg.scheduler == "plateau":
                sched.step(val_f1)
            else:
                sched.step()
            state.epoch += 1
            state.history.append(record)
            if val_f1 > state.best_f1:
                state.best_f1, state.best_epoch, state.bad_epochs = val_f1, state.epoch, 0
                state.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                state.bad_epochs += 1
            state.finished = state.bad_epochs >= cfg.patience or state.epoch >= cfg.epochs
            if ddp.is_main:
                _log_epoch(live, record)
                print(f"epoch {state.epoch}: " + ", ".join(f"{k}={v:.4f}" for k, v in record.items()))
                save_checkpoint(ckpt_path, fp, model, opt, sched, gen, state)
        if ddp.is_main:
            live.summary["best_epoch"] = state.best_epoch
            live.summary["best_val_macro_f1"] = state.best_f1
    model.load_state_dict(state.best_state)
    return state


def _shard(idx: torch.Tensor, ddp: distributed.DistInfo) -> torch.Tensor:
    """This rank's stride of a shared batch (DistributedSampler-style), padded by wrap-around to a
    multiple of the world size so every rank steps on a non-empty batch."""
    short = -len(idx) % ddp.world
    if short:
        idx = torch.cat([idx, idx[:short].repeat(short // max(len(idx), 1) + 1)[:short]])
    return idx[ddp.rank :: ddp.world]


def _log_epoch(live: Live, record: dict[str, float]) -> None:
    for name, value in record.items():
        live.log_metric(name, value)
    live.next_step()
