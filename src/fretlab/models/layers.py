"""Building blocks shared by the neural models: conv blocks, time pooling, shape probing, the MLP head."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


def conv_block(c_in: int, c_out: int, kernel: int, pool: tuple[int, int], dropout: float) -> nn.Sequential:
    """Conv2d → BatchNorm → ReLU → MaxPool(freq, time) → Dropout."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(pool),
        nn.Dropout(dropout),
    )


@torch.no_grad()
def probe_shape(module: nn.Module, in_shape: tuple[int, ...], what: str = "the model") -> tuple[int, ...]:
    """Output shape (without batch) of ``module`` for one zero input of ``in_shape``.

    Runs in eval mode so BatchNorm running statistics are not updated by the probe. ``what`` names the
    params to blame when the input is too small for the layers (pooling below one cell).
    """
    was_training = module.training
    module.eval()
    try:
        shape = tuple(module(torch.zeros(1, *in_shape)).shape[1:])
    except RuntimeError as exc:
        raise ValueError(f"{what} shrink a {'x'.join(map(str, in_shape[1:]))} input below one cell ({exc}); "
                         "use smaller pools or more mels / frames") from None
    finally:
        module.train(was_training)
    if min(shape, default=1) < 1:
        raise ValueError(f"{what} shrink a {'x'.join(map(str, in_shape[1:]))} input to {shape}; use smaller pools")
    return shape


class AttentionPool(nn.Module):
    """Learned softmax weights over time steps."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.score(seq), dim=1)
        return (weights * seq).sum(dim=1)


def pool_sequence(out: torch.Tensor, mode: Literal["last", "mean", "attention"], attention: nn.Module | None,
                  hidden: int, bidirectional: bool) -> torch.Tensor:
    """Reduce RNN outputs ``(B, T, H)`` to ``(B, H)``.

    ``last`` takes the final step; for a bidirectional RNN that is the forward half's last step and the
    backward half's first step (the backward pass ends at t=0).
    """
    if mode == "mean":
        return out.mean(dim=1)
    if mode == "attention":
        if attention is None:
            raise ValueError("time_pooling 'attention' needs an AttentionPool module")
        return attention(out)
    if bidirectional:
        return torch.cat([out[:, -1, :hidden], out[:, 0, hidden:]], dim=1)
    return out[:, -1]


def mlp_head(in_dim: int, hidden: int, dropout: float, n_classes: int) -> nn.Sequential:
    """Linear → ReLU → Dropout → Linear to class logits."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, n_classes),
    )
