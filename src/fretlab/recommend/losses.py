"""Training losses over vocabulary logits: the hybrid WARP margin ranking loss, and BCE / softmax variants.

Every loss takes ``weights`` [B, V]: the seen weight on a playlist's visible songs, the hidden weight on its
hidden ones, 0 elsewhere; songs with weight > 0 are the positives.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def warp_loss(logits: torch.Tensor, pos: torch.Tensor, pos_w: torch.Tensor, neg: torch.Tensor,
              neg_valid: torch.Tensor, margin: float, rank_weighting: bool) -> torch.Tensor:
    """Hybrid WARP loss.

    ``pos`` [B, P] positive song indices with weights ``pos_w`` [B, P] (0 = padding); ``neg`` [B, P, N] sampled
    negatives, ``neg_valid`` [B, P, N] false where a sample is one of the playlist's songs. For each positive p
    the hinge ``h_pj = max(0, margin - s_p + s_nj)`` is averaged over its valid negatives; with
    ``rank_weighting`` it is scaled by ``log(1 + r_p)``, where ``r_p = (V - |playlist|) * violations / valid``
    estimates the positive's rank (WARP). The result is ``sum_p w_p * loss_p / sum_p w_p``.
    """
    s_pos = logits.gather(1, pos)
    s_neg = logits.gather(1, neg.flatten(1)).view_as(neg)
    valid = neg_valid.float()
    hinge = F.relu(margin - s_pos.unsqueeze(-1) + s_neg) * valid
    n_valid = valid.sum(-1).clamp_min(1.0)
    per_pos = hinge.sum(-1) / n_valid
    if rank_weighting:
        n_pos = (pos_w > 0).sum(1, keepdim=True).float()
        violations = ((hinge > 0).float() * valid).sum(-1)
        rank = (logits.shape[1] - n_pos) * violations / n_valid
        per_pos = per_pos * torch.log1p(rank.detach())
    return (per_pos * pos_w).sum() / pos_w.sum().clamp_min(1e-12)


def bce_loss(logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per playlist: weighted mean of ``-log sigmoid(s)`` over positives plus the mean ``-log(1 - sigmoid(s))``
    over the other songs; averaged over the batch."""
    positive = weights > 0
    pos_term = (F.softplus(-logits) * weights).sum(1) / weights.sum(1).clamp_min(1e-12)
    neg = (~positive).float()
    neg_term = (F.softplus(logits) * neg).sum(1) / neg.sum(1).clamp_min(1.0)
    return (pos_term + neg_term).mean()


def softmax_loss(logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per playlist: weighted mean of ``-log softmax(s)_p`` over its positives; averaged over the batch."""
    logp = F.log_softmax(logits, dim=1)
    return (-(logp * weights).sum(1) / weights.sum(1).clamp_min(1e-12)).mean()


def harmonic_rank_weight(rank: float) -> float:
    """``log(1 + rank)``: the smooth rank weight ``warp_loss`` applies (exposed for tests and docs)."""
    return math.log1p(rank)
