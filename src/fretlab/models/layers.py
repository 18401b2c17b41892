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

    def forward(self, seq: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        scores = self.score(seq)
        if valid is not None:  # padded steps get no weight
            scores = scores.masked_fill(~valid, float("-inf"))
        weights = torch.softmax(scores, dim=1)
        return (weights * seq).sum(dim=1)


def stride_frames(seq: torch.Tensor, lengths: torch.Tensor | None,
                  stride: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Average ``(B, T, F)`` over non-overlapping blocks of ``stride`` frames: ``(B, ceil(T / stride), F)``.

    Each block averages only its valid frames (the last block of a clip may be partial), so a clip alone and
    padded in a batch give the same blocks; the returned lengths count each clip's blocks (``None`` stays
    ``None``: every block of an unpadded batch holds at least one frame).
    """
    if stride == 1:
        return seq, lengths
    batch, steps, dims = seq.shape
    full = torch.full((batch,), steps, device=seq.device)
    n_valid = full if lengths is None else lengths.to(seq.device)
    valid = (torch.arange(steps, device=seq.device)[None, :] < n_valid[:, None]).to(seq.dtype).unsqueeze(-1)
    pad = (-steps) % stride
    sums = nn.functional.pad(seq * valid, (0, 0, 0, pad)).view(batch, -1, stride, dims).sum(dim=2)
    counts = nn.functional.pad(valid, (0, 0, 0, pad)).view(batch, -1, stride, 1).sum(dim=2)
    blocks = sums / counts.clamp_min(1.0)
    return blocks, None if lengths is None else (lengths + stride - 1) // stride


PoolMode = Literal["last", "mean", "meanstd", "attention"]


def pooled_width(mode: PoolMode, out_dim: int) -> int:
    """Width of :func:`pool_sequence`'s output for RNN outputs of ``out_dim``."""
    return 2 * out_dim if mode == "meanstd" else out_dim


def pool_sequence(out: torch.Tensor, mode: PoolMode, attention: nn.Module | None,
                  hidden: int, bidirectional: bool, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Reduce RNN outputs ``(B, T, H)`` to ``(B, H)`` (``(B, 2H)`` for ``meanstd``); with ``lengths``, padded
    steps are ignored.

    ``last`` takes the final (valid) step; for a bidirectional RNN that is the forward half's last step and
    the backward half's first step (the backward pass ends at t=0). ``meanstd`` is statistics pooling (the
    mean and the standard deviation over the valid steps, as x-vectors pool): a track-level regressor then
    sees how much each hidden unit varies, which the forest gets from its per-track std features.
    """
    if mode == "attention" and attention is None:
        raise ValueError("time_pooling 'attention' needs an AttentionPool module")
    if mode == "meanstd":
        mean = pool_sequence(out, "mean", None, hidden, bidirectional, lengths)
        square = pool_sequence(out.square(), "mean", None, hidden, bidirectional, lengths)
        return torch.cat([mean, (square - mean.square()).clamp_min(STD_FLOOR).sqrt()], dim=1)
    if lengths is None:
        if mode == "mean":
            return out.mean(dim=1)
        if mode == "attention":
            return attention(out)
        if bidirectional:
            return torch.cat([out[:, -1, :hidden], out[:, 0, hidden:]], dim=1)
        return out[:, -1]
    lengths = lengths.to(out.device)
    valid = (torch.arange(out.shape[1], device=out.device)[None, :] < lengths[:, None]).unsqueeze(-1)
    if mode == "mean":
        return (out * valid).sum(dim=1) / lengths[:, None].to(out.dtype)
    if mode == "attention":
        return attention(out, valid)
    last = out[torch.arange(len(out), device=out.device), lengths - 1]
    return torch.cat([last[:, :hidden], out[:, 0, hidden:]], dim=1) if bidirectional else last


# variance floor of meanstd pooling: the sqrt's gradient stays finite on a constant (or one-step) sequence
STD_FLOOR = 1e-6


# True packs unidirectional RNNs too: same outputs, slower on the CPU; the benchmark flips it to measure that.
PACK_UNIDIRECTIONAL = False


def run_rnn(rnn: nn.RNNBase, seq: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """``rnn`` over ``(B, T, F)`` whose rows are valid up to ``lengths``; :func:`pool_sequence` reads only
    the valid steps.

    A bidirectional RNN is packed (``pack_padded_sequence``), so its backward pass starts at each clip's
    own last step. A unidirectional RNN runs on the padded batch: it is causal, so the output at every valid
    step is exactly the packed one, and padding only changes outputs that pooling never reads. Packing it
    anyway made a training step about 7x slower on the CPU (torch 2.13; docs/performance.md), and the
    bucketed batches carry little padding.
    """
    if lengths is None or not (rnn.bidirectional or PACK_UNIDIRECTIONAL):
        return rnn(seq)[0]
    packed = nn.utils.rnn.pack_padded_sequence(seq, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = nn.utils.rnn.pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=seq.shape[1])
    return out


def mlp_head(in_dim: int, hidden: int, dropout: float, n_classes: int) -> nn.Sequential:
    """Linear → ReLU → Dropout → Linear to the outputs; ``hidden`` 0 gives one Linear (a linear head per
    target, since every output has its own row of weights)."""
    if hidden == 0:
        return nn.Sequential(nn.Linear(in_dim, n_classes))
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, n_classes),
    )
