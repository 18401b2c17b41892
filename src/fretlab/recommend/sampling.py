"""Sampling: popularity-corrected negatives for training, and top-k / nucleus (top-p) recommendations."""

from __future__ import annotations

import numpy as np
import torch


def negative_distribution(counts: np.ndarray, power: float) -> torch.Tensor:
    """Probability of drawing each song as a negative: ``(count + 1)^power``, normalized (0 = uniform).

    Drawing popular songs more often as negatives stops the ranking loss from rewarding "always popular"."""
    w = (np.asarray(counts, dtype=np.float64) + 1.0) ** power
    return torch.as_tensor(w / w.sum(), dtype=torch.float)


def sample_negatives(probs: torch.Tensor, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Song indices of ``shape`` drawn with replacement from ``probs``."""
    n = int(np.prod(shape))
    return torch.multinomial(probs, n, replacement=True, generator=generator).view(shape)


def exclude(scores: torch.Tensor, visible: list) -> torch.Tensor:
    """A copy of ``scores`` [N, V] with each playlist's visible songs at -inf (never recommended again)."""
    out = scores.clone()
    for i, v in enumerate(visible):
        if len(v):
            out[i, torch.as_tensor(v, dtype=torch.long)] = -torch.inf
    return out


def top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """[N, k] indices of the highest scores, best first."""
    return torch.topk(scores, min(k, scores.shape[1]), dim=1).indices


def top_p(scores: torch.Tensor, k: int, p: float, generator: torch.Generator,
          temperature: float = 1.0) -> torch.Tensor:
    """[N, k] songs drawn without replacement from each row's nucleus: the fewest best songs whose softmax
    probability sums to at least ``p`` (at least ``k`` songs, so ``k`` can always be drawn)."""
    probs = torch.softmax(scores / temperature, dim=1)
    order = torch.argsort(probs, dim=1, descending=True)
    sorted_p = probs.gather(1, order)
    before = sorted_p.cumsum(1) - sorted_p  # mass of the better songs
    keep = (before < p) | (torch.arange(probs.shape[1]) < k)
    kept = torch.zeros_like(probs).scatter(1, order, sorted_p * keep)
    return torch.multinomial(kept, k, replacement=False, generator=generator)
