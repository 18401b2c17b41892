"""Device selection and batched inference shared by training, evaluation and prediction."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import nullcontext

import numpy as np
import torch
from torch import nn


def select_device(preference: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU; ``cuda`` fails clearly without a GPU."""
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("base.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def configure_determinism(enabled: bool) -> None:
    """``base.deterministic``: ask torch for deterministic kernels everywhere it has them.

    Sets ``CUBLAS_WORKSPACE_CONFIG`` (cuBLAS needs it for reproducible matmuls; it must be set
    before the first CUDA call), turns cuDNN autotuning off and its deterministic mode on, and
    enables ``torch.use_deterministic_algorithms`` with ``warn_only`` so an op without a
    deterministic kernel (e.g. NLLLoss on CUDA) warns instead of failing the run. Off: torch defaults.
    """
    if not enabled:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


# Features may fill at most this share of the free GPU memory; the rest is left to the model's activations.
DEVICE_FEATURE_SHARE = 0.5


def to_device_tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    """Copy a (memory-mapped) feature array to ``device`` once, so batches need no host copies.

    On CUDA, an array larger than ``DEVICE_FEATURE_SHARE`` of the free GPU memory stays in host
    memory instead, and each batch is gathered on the host and copied to the GPU.
    """
    host = torch.from_numpy(np.array(x, dtype=np.float32))  # copies the memmap into RAM
    if device.type == "cuda" and host.nbytes > DEVICE_FEATURE_SHARE * torch.cuda.mem_get_info(device)[0]:
        return host
    return host.to(device)


def batches(
    n: int, batch_size: int, generator: torch.Generator | None, device: torch.device | None = None
) -> Iterator[torch.Tensor]:
    """Index batches: shuffled with ``generator``, in order without one.

    The order is drawn on the CPU (the same for every device) and moved to ``device`` once per
    pass, so indexing device-resident features needs no per-batch host-to-device copy.
    """
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    if device is not None:
        order = order.to(device)
    yield from order.split(batch_size)


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when enabled; a no-op elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int, amp: bool = False) -> torch.Tensor:
    """Logits for every row of ``x`` (eval mode), on the CPU as float32."""
    model.eval()
    device = next(itertools.chain(model.parameters(), model.buffers())).device  # the rf model has only buffers
    out = []
    for idx in batches(len(x), batch_size, None, x.device):
        with autocast(device, amp):
            out.append(model(x[idx].to(device, non_blocking=True)).float())
    return torch.cat(out).cpu() if out else torch.zeros(0)  # one device-to-host copy, not one per batch
