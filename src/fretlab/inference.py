"""Device selection and batched inference shared by training, evaluation and prediction."""

from __future__ import annotations

import itertools
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


def to_device_tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    """Copy a (memory-mapped) feature array to ``device`` once, so batches need no host copies."""
    return torch.from_numpy(np.array(x, dtype=np.float32)).to(device)  # copies the memmap into RAM


def batches(n: int, batch_size: int, generator: torch.Generator | None) -> Iterator[torch.Tensor]:
    """Index batches: shuffled with ``generator``, in order without one."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
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
    for idx in batches(len(x), batch_size, None):
        with autocast(device, amp):
            out.append(model(x[idx].to(device, non_blocking=True)).float().cpu())
    return torch.cat(out) if out else torch.zeros(0)
