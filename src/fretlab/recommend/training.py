"""Training the set transformer as a denoising autoencoder: random masking, bucketed batches, early stopping."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.preprocessing import normalize
from tqdm import tqdm

from fretlab.params import Recommender
from fretlab.recommend.baselines import interactions
from fretlab.recommend.data import PlaylistSet
from fretlab.recommend.losses import bce_loss, softmax_loss, warp_loss
from fretlab.recommend.metrics import r_precision
from fretlab.recommend.model import SetTransformer, pad_batch, score_playlists, title_batch, title_item_tokens
from fretlab.recommend.sampling import exclude, sample_negatives, top_k


def length_buckets(lengths: np.ndarray, width: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of playlist indices whose lengths share a ``width``-wide bucket; shuffled within and across."""
    batches = []
    keys = lengths // width
    for key in np.unique(keys):
        members = rng.permutation(np.flatnonzero(keys == key))
        batches += [members[i:i + batch_size] for i in range(0, len(members), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def mask_playlist(songs: np.ndarray, ratio: tuple[float, float], rng: np.random.Generator) -> tuple[np.ndarray,
                                                                                                     np.ndarray]:
    """(visible, hidden): a share drawn from ``ratio`` of the songs hidden, at least one, one left visible."""
    k = int(np.clip(round(rng.uniform(*ratio) * len(songs)), 1, len(songs) - 1))
    perm = rng.permutation(len(songs))
    return songs[perm[k:]], songs[perm[:k]]


def batch_loss(model: SetTransformer, cfg: Recommender, visible: list[np.ndarray], hidden: list[np.ndarray],
               titles: list[str], neg_probs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The configured loss of one batch: seen songs weighted ``seen_weight``, hidden ones ``hidden_weight``."""
    logits = model(pad_batch(visible, -1), title_batch(titles, cfg))
    weights = torch.zeros_like(logits)
    for i, (v, h) in enumerate(zip(visible, hidden, strict=True)):
        weights[i, torch.as_tensor(v)] = cfg.seen_weight
        weights[i, torch.as_tensor(h)] = cfg.hidden_weight
    if cfg.loss == "bce":
        return bce_loss(logits, weights)
    if cfg.loss == "softmax":
        return softmax_loss(logits, weights)
    padded = pad_batch([np.concatenate([v, h]) for v, h in zip(visible, hidden, strict=True)], -1)
    pos = padded.clamp_min(0)
    pos_w = weights.gather(1, pos) * (padded >= 0)
    neg = sample_negatives(neg_probs, (*pos.shape, cfg.negatives), gen)
    in_playlist = weights.gather(1, neg.flatten(1)).view_as(neg) > 0
    return warp_loss(logits, pos, pos_w, neg, ~in_playlist, cfg.margin, cfg.rank_weighting)


def validation_r_precision(model: SetTransformer, data: PlaylistSet, batch_size: int) -> float:
    """Mean R-precision of the hidden songs (visible songs excluded from the ranking)."""
    if not len(data):
        return 0.0
    scores = exclude(score_playlists(model, data.visible, data.titles, batch_size), data.visible)
    longest = max(len(h) for h in data.hidden)
    ranked = top_k(scores, longest).numpy()
    return float(np.mean([r_precision(r, h) for r, h in zip(ranked, data.hidden, strict=True)]))


def cooccurrence_cosine(playlists: list[np.ndarray], n_songs: int) -> torch.Tensor:
    """[n_songs, n_songs] cosine similarity of the songs' playlist-membership vectors, zero diagonal (the
    statistic item-kNN ranks by): the item-item matrix's warm start."""
    x = normalize(interactions(playlists, n_songs).T.tocsr(), norm="l2", axis=1)
    sim = torch.from_numpy((x @ x.T).toarray().astype(np.float32))
    sim.fill_diagonal_(0.0)
    return sim


def title_song_distribution(titles: list[str], playlists: list[np.ndarray], n_songs: int,
                            cfg: Recommender) -> torch.Tensor:
    """[title_item_buckets, n_songs]: for each title token row, P(song | a training playlist's title holds it)
    (the title-only baseline's statistic, over the model's hashed tokens); row 0 (padding) and unseen rows 0."""
    counts = torch.zeros(cfg.title_item_buckets, n_songs)
    for title, songs in zip(titles, playlists, strict=True):
        rows = title_item_tokens(title_batch([title], cfg)[0], cfg).unique()
        rows = rows[rows > 0]
        if len(rows) and len(songs):
            counts[rows.unsqueeze(1), torch.as_tensor(np.asarray(songs), dtype=torch.long).unsqueeze(0)] += 1.0
    return counts / counts.sum(1, keepdim=True).clamp_min(1.0)


def make_optimizer(model: SetTransformer, cfg: Recommender) -> torch.optim.Optimizer:
    """Adam at ``cfg.lr`` (decoupled weight decay ``cfg.weight_decay``); the wide terms (the item-item and
    title-item matrices), which start at zeros or counts and must move far, at ``item_item_lr``."""
    wide_names = ("item_item", "title_item.weight")
    rest = [p for n, p in model.named_parameters() if n not in wide_names and p.requires_grad]
    wide = [p for n, p in model.named_parameters() if n in wide_names and p.requires_grad]
    groups = [{"params": rest}]
    if wide:
        groups.append({"params": wide, "lr": cfg.item_item_lr})
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


@dataclass
class TrainResult:
    """The best model (by validation hidden R-precision) and the per-epoch history."""

    model: SetTransformer
    best_epoch: int
    best_val_r_precision: float
    history: list[dict[str, float]] = field(default_factory=list)


def train_recommender(cfg: Recommender, features: torch.Tensor, train: PlaylistSet, val: PlaylistSet,
                      neg_probs: torch.Tensor, seed: int, live_dir: Path | None = None) -> TrainResult:
    """Adam at ``cfg.lr`` for up to ``cfg.epochs``, keeping the epoch with the best validation R-precision."""
    from dvclive import Live  # the stage logs curves; tests may train without

    torch.manual_seed(seed)
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    model = SetTransformer(cfg, features)
    if model.item_item is not None and cfg.item_item_init > 0:
        with torch.no_grad():
            model.item_item.copy_(cfg.item_item_init * cooccurrence_cosine(train.visible, model.n_songs))
    if model.title_item is not None and cfg.title_item_init > 0:
        with torch.no_grad():
            model.title_item.weight.copy_(cfg.title_item_init * title_song_distribution(
                train.titles, train.visible, model.n_songs, cfg))
    opt = make_optimizer(model, cfg)
    songs = [np.asarray(s) for s in train.visible]
    lengths = np.array([len(s) for s in songs])
    best, best_state, best_epoch, stale, history = -1.0, None, 0, 0, []
    live = Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=False) if live_dir is not None else None
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        total, n = 0.0, 0
        for idx in tqdm(length_buckets(lengths, cfg.bucket_width, cfg.batch_size, rng), desc=f"epoch {epoch}",
                        leave=False, mininterval=5):
            parts = [mask_playlist(songs[i], cfg.mask_ratio, rng) for i in idx]
            loss = batch_loss(model, cfg, [p[0] for p in parts], [p[1] for p in parts],
                              [train.titles[i] for i in idx], neg_probs, gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, n = total + float(loss.detach()) * len(idx), n + len(idx)
        score = validation_r_precision(model, val, cfg.batch_size * 4)
        record = {"train_loss": total / max(n, 1), "val_r_precision_hidden": score}
        history.append(record)
        print(f"epoch {epoch}: loss {record['train_loss']:.4f}, val hidden R-precision {score:.4f}")
        if live is not None:
            live.log_metric("train/loss", record["train_loss"])
            live.log_metric("val/r_precision_hidden", score)
            live.next_step()
        if score > best:
            best, best_state, best_epoch, stale = score, copy.deepcopy(model.state_dict()), epoch, 0
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if live is not None:
        live.end()
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model, best_epoch, best, history)
