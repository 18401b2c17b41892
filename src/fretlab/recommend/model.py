"""The title-conditioned set transformer: song and title encoders, Set Attention Blocks, PMA, vocabulary logits."""

from __future__ import annotations

import torch
from torch import nn

from fretlab.params import Recommender
from fretlab.recommend.titles import hash_tokens


class MAB(nn.Module):
    """Multihead Attention Block (Lee et al. 2019): ``LN(h + FFN(h))`` with ``h = LN(q + MHA(q, k, k))``."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, q: torch.Tensor, kv: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        h = self.norm1(q + self.drop(self.attn(q, kv, kv, key_padding_mask=pad, need_weights=False)[0]))
        return self.norm2(h + self.drop(self.ffn(h)))


class SetTransformer(nn.Module):
    """Scores every song of the vocabulary for a playlist given as song indices and a hashed title.

    Tokens: a learned start token, the title (mean of its hashed token embeddings; masked out when there is
    no title or ``title`` is off) and each visible song (MLP of its standardized audio features, plus a learned
    id embedding). ``sab_blocks`` SABs, then PMA with one seed, then a linear layer to ``n_songs`` logits; with
    ``tied_output`` the logits also get the dot product of (pooled vector + mean visible-song embedding) with
    every song's input embedding: a learned item-item similarity, so songs that sound alike (one artist, one
    theme) share what their plays teach.
    """

    def __init__(self, cfg: Recommender, features: torch.Tensor) -> None:
        super().__init__()
        n_songs, n_feat = features.shape
        dim = cfg.embedding
        self.cfg = cfg
        self.register_buffer("features", features.float())
        self.register_buffer("feat_mean", features.float().mean(0))
        self.register_buffer("feat_std", features.float().std(0).clamp_min(1e-6))
        self.song_mlp = nn.Sequential(nn.Linear(n_feat, cfg.song_hidden), nn.ReLU(), nn.Linear(cfg.song_hidden, dim))
        self.song_id = nn.Embedding(n_songs, dim) if cfg.song_id_embedding else None
        self.title_emb = nn.EmbeddingBag(cfg.title_buckets, dim, mode="mean", padding_idx=0)
        self.start = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.kind = nn.Parameter(torch.randn(2, dim) * 0.02)  # title / song type embeddings
        self.sabs = nn.ModuleList(MAB(dim, cfg.heads, cfg.dropout) for _ in range(cfg.sab_blocks))
        self.seed = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pma = MAB(dim, cfg.heads, cfg.dropout)
        self.head = nn.Linear(dim, n_songs)
        if cfg.head_zero_init:  # the network's logits start silent: a residual on the warm-started wide terms
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        self.item_item = nn.Parameter(torch.zeros(n_songs, n_songs)) if cfg.item_item else None
        # the title's own wide term: a song's score rises with how often the title's tokens named playlists
        # holding it; the attention path alone left the title unused (title on and off scored alike)
        self.title_item = (nn.EmbeddingBag(cfg.title_item_buckets, n_songs, mode="mean", padding_idx=0)
                           if cfg.title_item else None)
        if self.title_item is not None:
            nn.init.zeros_(self.title_item.weight)
            self.title_item.weight.requires_grad_(cfg.title_item_train)
        if self.song_id is not None:
            nn.init.normal_(self.song_id.weight, std=0.02)

    @property
    def n_songs(self) -> int:
        return self.head.out_features

    def encode_songs(self, idx: torch.Tensor) -> torch.Tensor:
        """[..., dim] embeddings of song indices (any shape; -1 is padding, embedded as zeros)."""
        safe = idx.clamp_min(0)
        x = self.song_mlp((self.features[safe] - self.feat_mean) / self.feat_std)
        if self.song_id is not None:
            x = x + self.song_id(safe)
        return x * (idx >= 0).unsqueeze(-1)

    def forward(self, songs: torch.Tensor, title: torch.Tensor) -> torch.Tensor:
        """Logits [B, n_songs] from ``songs`` [B, L] (-1 padded) and ``title`` token ids [B, T] (0 padded)."""
        b = songs.shape[0]
        song_vecs = self.encode_songs(songs)
        has_title = (title > 0).any(1) & torch.tensor(self.cfg.title, device=songs.device)
        title_vec = self.title_emb(title) + self.kind[0]
        x = torch.cat([self.start.expand(b, 1, -1), title_vec.unsqueeze(1),
                       song_vecs + self.kind[1]], dim=1)
        pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=songs.device), ~has_title.unsqueeze(1),
                         songs < 0], dim=1)
        for sab in self.sabs:
            x = sab(x, x, pad)
        pooled = self.pma(self.seed.expand(b, 1, -1), x, pad).squeeze(1)
        logits = self.head(pooled)
        if self.cfg.tied_output:
            every = self.encode_songs(torch.arange(self.n_songs, device=songs.device))
            mean_song = song_vecs.sum(1) / (songs >= 0).sum(1, keepdim=True).clamp_min(1)
            logits = logits + (pooled + mean_song) @ every.T / self.cfg.embedding ** 0.5
        if self.item_item is not None:
            logits = logits + self.item_item_scores(songs)
        if self.title_item is not None:
            logits = logits + self.title_item(title_item_tokens(title, self.cfg)) * has_title.unsqueeze(1)
        return logits

    def item_item_scores(self, songs: torch.Tensor) -> torch.Tensor:
        """[B, n_songs]: the mean over the visible songs v of ``item_item[v, s]``, the diagonal left out (a song
        never votes for itself, so the term learns co-occurrence, not reconstruction)."""
        visible = torch.zeros(songs.shape[0], self.n_songs + 1, device=songs.device)
        visible.scatter_(1, torch.where(songs >= 0, songs, self.n_songs), 1.0)
        visible = visible[:, :-1] / visible[:, :-1].sum(1, keepdim=True).clamp_min(1.0)
        return visible @ self.item_item - visible * self.item_item.diagonal()


def title_item_tokens(title: torch.Tensor, cfg: Recommender) -> torch.Tensor:
    """Title token ids ``[B, T]`` (0 padded) re-hashed into the title-item matrix's ``1..title_item_buckets-1``."""
    return torch.where(title > 0, 1 + title % (cfg.title_item_buckets - 1), 0)


def pad_batch(lists: list[torch.Tensor] | list[list[int]], value: int) -> torch.Tensor:
    """Stack variable-length integer lists into [B, max(L, 1)], filling with ``value``."""
    width = max(1, *(len(x) for x in lists)) if lists else 1
    out = torch.full((len(lists), width), value, dtype=torch.long)
    for i, x in enumerate(lists):
        if len(x):
            out[i, :len(x)] = torch.as_tensor(x, dtype=torch.long)
    return out


def title_batch(titles: list[str], cfg: Recommender) -> torch.Tensor:
    """[B, T] hashed title token ids (0 padded); every title is dropped when ``cfg.title`` is off."""
    return pad_batch([hash_tokens(t, cfg.title_encoder, cfg.title_buckets) if cfg.title else [] for t in titles], 0)


@torch.no_grad()
def score_playlists(model: SetTransformer, visible: list, titles: list[str], batch_size: int) -> torch.Tensor:
    """[N, n_songs] logits for playlists given their visible song indices and titles (eval mode)."""
    model.eval()
    out = []
    for i in range(0, len(visible), batch_size):
        songs = pad_batch(visible[i:i + batch_size], -1)
        out.append(model(songs, title_batch(titles[i:i + batch_size], model.cfg)))
    return torch.cat(out) if out else torch.empty(0, model.n_songs)
