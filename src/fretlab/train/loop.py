"""Training loop: AdamW, ReduceLROnPlateau, early stopping on the task's monitor, resumable checkpoints."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from dvclive import Live
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from fretlab.io import atomic_path
from fretlab.models.augment import mixup
from fretlab.params import Params, Train
from fretlab.runtime import autocast, configure_determinism, select_device
from fretlab.tasks.losses import TaskLoss, make_task_loss
from fretlab.tasks.monitor import Monitor, monitor_for, validation_record
from fretlab.tasks.targets import TargetSpec
from fretlab.train import distributed
from fretlab.train.inputs import RoleData

CHECKPOINT = "last.pt"
# (section, key) pairs left out of the checkpoint fingerprint (key None: the whole section); every other
# param, including sections added later, invalidates a checkpoint when it changes.
NOT_IN_FINGERPRINT = (("paths", None), ("predict", None), ("base", "workers"))


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch (CPU and CUDA) and return a generator for batch order."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def make_scheduler(opt: torch.optim.Optimizer, cfg: Train, mode: str = "max") -> Any:
    """``train.scheduler``: plateau (on the monitored validation figure, ``mode`` max or min), cosine (over
    ``train.epochs``) or none (constant lr)."""
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=cfg.scheduler_factor,
                                                          patience=cfg.scheduler_patience)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)  # has a state_dict, so checkpoints stay uniform


def fingerprint(params: Params, features_dir: Path, data_files: Sequence[Path] | None = None) -> str:
    """Hash of everything a checkpoint depends on: training params and the feature arrays.

    ``data_files`` replaces the default train/val cache files (a cross-validation fold's own set).
    """
    h = hashlib.sha256()
    relevant = params.model_dump(mode="json")
    for section, key in NOT_IN_FINGERPRINT:  # where files go and how many workers: not what is learned
        relevant[section].pop(key) if key else relevant.pop(section)
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
    best_score: float  # the monitored validation figure at best_epoch
    best_epoch: int
    best_state: dict[str, torch.Tensor]
    bad_epochs: int
    finished: bool


def save_checkpoint(path: Path, fp: str, model: nn.Module, opt: torch.optim.Optimizer, sched: Any,
                    gen: torch.Generator, state: TrainState, ema: AveragedModel | None = None) -> None:
    """Atomically write the full training state (tensors and plain types only)."""
    blob = {
        "fingerprint": fp, "model": model.state_dict(), "optimizer": opt.state_dict(),
        "ema": ema.state_dict() if ema is not None else {},
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


@dataclass
class Setup:
    """What one training run needs besides the model: data, loss, optimizer, scheduler and RNG streams."""

    train: RoleData
    val: RoleData
    loss_fn: TaskLoss
    opt: torch.optim.Optimizer
    sched: Any
    gen: torch.Generator
    mix_gen: torch.Generator
    monitor: Monitor
    ema: AveragedModel | None = None  # train.ema_decay: the averaged weights, validated and kept

    def evaluated(self, model: nn.Module) -> nn.Module:
        """The weights that are validated and kept: the average when there is one."""
        return self.ema.module if self.ema is not None else model


def _setup(params: Params, model: nn.Module, data: dict[str, RoleData], specs: list[TargetSpec],
           device: torch.device, ddp: distributed.DistInfo) -> Setup:
    cfg = params.train
    gen = seed_everything(params.base.seed)
    mix_gen = gen
    if ddp.world > 1:  # augmentation, dropout and mixup draw per rank; the batch order (gen) stays shared
        torch.manual_seed(params.base.seed + ddp.rank)
        mix_gen = torch.Generator().manual_seed(params.base.seed + ddp.rank)
    data["train"].inputs.fit_standardization(model)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)  # 4-d weights NHWC; loading state later keeps the layout
    loss_fn = make_task_loss(specs, data["train"].y, data["train"].valid)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    monitor = monitor_for(specs)
    ema = None
    if cfg.ema_decay is not None:  # buffers too: BatchNorm statistics of the averaged weights, not the last step's
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    return Setup(data["train"], data["val"], loss_fn, opt, make_scheduler(opt, cfg, monitor.mode), gen, mix_gen,
                 monitor, ema)


def _resume(path: Path, fp: str, model: nn.Module, run: Setup) -> TrainState | None:
    """Restore model, optimizer, scheduler and RNG state from this run's checkpoint, if there is one."""
    blob = load_checkpoint(path, fp)
    if blob is None:
        return None
    model.load_state_dict(blob["model"])
    run.opt.load_state_dict(blob["optimizer"])
    run.sched.load_state_dict(blob["scheduler"])
    if run.ema is not None:
        run.ema.load_state_dict(blob["ema"])
    torch.set_rng_state(blob["torch_rng"])
    run.gen.set_state(blob["batch_rng"])
    if blob["cuda_rng"]:
        torch.cuda.set_rng_state_all(blob["cuda_rng"])
    print(f"resuming from {path} after epoch {blob['epoch']}")
    return TrainState(**{k: blob[k] for k in TrainState.__dataclass_fields__})


def _train_epoch(params: Params, step_model: nn.Module, run: Setup, state: TrainState, device: torch.device,
                 ddp: distributed.DistInfo) -> float:
    """One pass over the training data; returns the mean training loss (summed over DDP ranks)."""
    cfg = params.train
    step_model.train()
    y_train = torch.from_numpy(run.train.y)
    valid_train = torch.from_numpy(run.train.valid)
    loss_fn = run.loss_fn.to_device(device)
    total, count = 0.0, 0
    for idx in tqdm(run.train.inputs.epoch(cfg.batch_size, run.gen), desc=f"epoch {state.epoch + 1}", leave=False,
                    disable=None if ddp.is_main else True):
        if ddp.world > 1:
            idx = _shard(idx, ddp)
        inputs = run.train.inputs.gather(idx, device)
        host_idx = idx.cpu()
        yb = y_train[host_idx].to(device, non_blocking=True)
        vb = valid_train[host_idx].to(device, non_blocking=True)
        with autocast(device, cfg.amp):
            if cfg.augment.mixup_alpha > 0:
                xb, (ya, va), (yb2, vb2), lam = _mixup(inputs[0], yb, vb, cfg.augment.mixup_alpha, run.mix_gen)
                out = step_model(xb, *inputs[1:]).float()
                loss = lam * loss_fn(out, ya, va) + (1 - lam) * loss_fn(out, yb2, vb2)
            else:
                loss = loss_fn(step_model(*inputs).float(), yb, vb)
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        run.opt.step()
        if run.ema is not None:
            run.ema.update_parameters(step_model.module if ddp.world > 1 else step_model)
        total += loss.detach() * len(idx)
        count += len(idx)
    total, count = distributed.all_sum(total, count)
    return total / max(count, 1)


def _mixup(x: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, alpha: float, gen: torch.Generator) -> tuple:
    """:func:`mixup` with the validity mask carried alongside the targets (one permutation for both)."""
    both = torch.stack([y, valid.to(y.dtype)], dim=1)
    xb, a, b, lam = mixup(x, both, alpha, gen)
    return xb, (a[:, 0], a[:, 1].bool()), (b[:, 0], b[:, 1].bool()), lam


def train_model(
    params: Params, model: nn.Module, data: dict[str, RoleData], specs: list[TargetSpec],
    ckpt_dir: Path, live_dir: Path, features_dir: Path, data_files: Sequence[Path] | None = None,
) -> TrainState:
    """Train with early stopping on the task's monitor, resuming from ``ckpt_dir`` when it holds this run's
    checkpoint. ``data`` maps ``train`` and ``val`` to their :class:`RoleData`."""
    cfg = params.train
    configure_determinism(params.base.deterministic)
    device = select_device(params.base.device)
    ddp = distributed.current()  # rank 0 of 1 unless launched by torchrun (train.ddp)
    run = _setup(params, model, data, specs, device, ddp)
    step_model: nn.Module = model
    if ddp.world > 1:
        gpu = [torch.cuda.current_device()] if device.type == "cuda" else None  # set per LOCAL_RANK by distributed
        step_model = DistributedDataParallel(model, device_ids=gpu)
    if cfg.compile:
        step_model = torch.compile(step_model)
    fp = fingerprint(params, features_dir, data_files)
    ckpt_path = ckpt_dir / CHECKPOINT
    state = _resume(ckpt_path, fp, model, run) or TrainState(0, [], run.monitor.initial, -1, {}, 0, False)
    watched = f"val/{run.monitor.name}"

    # only rank 0 logs and checkpoints; the other ranks train and follow its decisions
    with Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=False) if ddp.is_main else nullcontext() as live:
        for record in state.history if ddp.is_main else []:  # replay so the curves cover the whole run
            _log_epoch(live, record)
        while not state.finished and state.epoch < cfg.epochs:
            train_loss = _train_epoch(params, step_model, run, state, device, ddp)
            val_out = run.val.inputs.predict(run.evaluated(model), params.evaluate.batch_size, cfg.amp)
            record = {"train/loss": train_loss,
                      **validation_record(specs, run.loss_fn, val_out, run.val.y, run.val.valid),
                      "lr": run.opt.param_groups[0]["lr"]}
            record = distributed.from_main(record)  # every rank takes rank 0's lr and stopping decisions
            value = record[watched]
            if cfg.scheduler == "plateau":
                run.sched.step(value)
            else:
                run.sched.step()
            state.epoch += 1
            state.history.append(record)
            if run.monitor.better(value, state.best_score):
                state.best_score, state.best_epoch, state.bad_epochs = value, state.epoch, 0
                state.best_state = {k: v.detach().cpu().clone() for k, v in run.evaluated(model).state_dict().items()}
            else:
                state.bad_epochs += 1
            state.finished = state.bad_epochs >= cfg.patience or state.epoch >= cfg.epochs
            if ddp.is_main:
                _log_epoch(live, record)
                print(f"epoch {state.epoch}: " + ", ".join(f"{k}={v:.4f}" for k, v in record.items()))
                save_checkpoint(ckpt_path, fp, model, run.opt, run.sched, run.gen, state, run.ema)
        if ddp.is_main:
            live.summary["best_epoch"] = state.best_epoch
            live.summary[f"best_val_{run.monitor.name}"] = state.best_score
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
