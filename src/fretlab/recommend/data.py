"""Playlist and catalogue files: reading with clear errors, the split by playlist and the seeded hidden sets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fretlab.params import PlaylistSplit

SONGS_FILE = "songs.csv"
PLAYLISTS_FILE = "metadata.csv"  # the synthesize stage's name for its table: here, one row per playlist
SPLIT_FILE = "playlists.csv"
PLAYLIST_COLUMNS = ("playlist_id", "title", "songs")
HIDDEN_STREAM = 0x41DDE7  # hidden-set stream, distinct from the split permutation's


class PlaylistError(ValueError):
    """A playlist or catalogue file that is missing, malformed or names unknown songs."""


def read_songs(path: str | Path, feature_columns: tuple[str, ...]) -> pd.DataFrame:
    """The catalogue: ``song_id`` (unique) and numeric ``feature_columns`` without gaps."""
    path = Path(path)
    if not path.is_file():
        raise PlaylistError(f"{path}: not found; run the synthesize stage (dvc repro synthesize)")
    songs = pd.read_csv(path, dtype={"song_id": str})
    missing = [c for c in ("song_id", *feature_columns) if c not in songs]
    if missing:
        raise PlaylistError(f"{path}: missing columns {missing}")
    dup = songs["song_id"][songs["song_id"].duplicated()].tolist()
    if dup:
        raise PlaylistError(f"{path}: song ids repeated: {dup[:10]}")
    bad = songs[list(feature_columns)].isna().any(axis=1).to_numpy().nonzero()[0]
    if bad.size:
        raise PlaylistError(f"{path}, line {int(bad[0]) + 2}: empty feature cell; every song needs every feature")
    return songs


def read_playlists(path: str | Path, known: set[str]) -> pd.DataFrame:
    """Playlists with ``playlist_id``, ``title`` and space-separated ``songs``, all of them in ``known``."""
    path = Path(path)
    if not path.is_file():
        raise PlaylistError(f"{path}: not found; run the synthesize stage (dvc repro synthesize)")
    table = pd.read_csv(path, dtype={"playlist_id": str, "title": str, "songs": str}, keep_default_na=False)
    missing = [c for c in PLAYLIST_COLUMNS if c not in table]
    if missing:
        raise PlaylistError(f"{path}: missing columns {missing}")
    lists = [s.split() for s in table["songs"]]
    for i, songs in enumerate(lists):
        unknown = sorted(set(songs) - known)
        if unknown or len(songs) < 2 or len(set(songs)) != len(songs):
            why = (f"unknown song ids {unknown[:10]}" if unknown else
                   "fewer than 2 songs" if len(songs) < 2 else "a song listed twice")
            raise PlaylistError(f"{path}, line {i + 2} (playlist {table['playlist_id'].iloc[i]}): {why}")
    table["songs"] = [" ".join(s) for s in lists]
    return table


def assign_playlist_splits(n: int, cfg: PlaylistSplit, seed: int) -> np.ndarray:
    """``train``/``val``/``test`` per playlist: a seeded permutation cut at the fractions."""
    order = np.random.default_rng(seed).permutation(n)
    cuts = np.round(np.cumsum([cfg.fractions["train"], cfg.fractions["val"]]) * n).astype(int)
    out = np.empty(n, dtype=object)
    out[order[:cuts[0]]], out[order[cuts[0]:cuts[1]]], out[order[cuts[1]:]] = "train", "val", "test"
    return out


def hide_songs(lists: list[list[str]], split: np.ndarray, cfg: PlaylistSplit, seed: int) -> list[str]:
    """The hidden songs of each held-out playlist (space separated; empty for train): ``hidden_share`` of its
    songs, at least one, leaving ``min_visible``; seeded, so every model is scored on the same sets."""
    rng = np.random.default_rng([seed, HIDDEN_STREAM])
    hidden = []
    for songs, role in zip(lists, split, strict=True):
        if role == "train":
            hidden.append("")
            continue
        k = min(max(1, round(cfg.hidden_share * len(songs))), len(songs) - cfg.min_visible)
        if k < 1:
            raise PlaylistError(f"a {len(songs)}-song playlist cannot keep {cfg.min_visible} visible and hide one")
        hidden.append(" ".join(sorted(rng.choice(songs, size=k, replace=False).tolist())))
    return hidden


@dataclass
class PlaylistSet:
    """Playlists of one split as song indices: ``visible`` (all songs for train) and ``hidden`` (held-out)."""

    ids: list[str]
    titles: list[str]
    visible: list[np.ndarray]
    hidden: list[np.ndarray]
    informative: np.ndarray  # bool per playlist: the title names its theme (the generator's flag; False if absent)

    def __len__(self) -> int:
        return len(self.ids)


def load_split(split_dir: str | Path, role: str, index: dict[str, int]) -> PlaylistSet:
    """Playlists of ``role`` from the split stage's ``playlists.csv`` as song indices."""
    table = pd.read_csv(Path(split_dir) / SPLIT_FILE, dtype=str, keep_default_na=False)
    table = table[table["split"] == role]
    hidden = [np.array([index[s] for s in h.split()], dtype=np.int64) for h in table["hidden"]]
    visible = [np.array([index[s] for s in a.split() if s not in set(h.split())], dtype=np.int64)
               for a, h in zip(table["songs"], table["hidden"], strict=True)]
    informative = (table["title_informative"].str.lower() == "true").to_numpy() if "title_informative" in table \
        else np.zeros(len(table), dtype=bool)
    return PlaylistSet(table["playlist_id"].tolist(), table["title"].tolist(), visible, hidden, informative)


def split_playlists(table: pd.DataFrame, cfg: PlaylistSplit, seed: int) -> pd.DataFrame:
    """``table`` with a ``split`` column and the seeded ``hidden`` songs of every val/test playlist."""
    out = table.copy()
    out["split"] = assign_playlist_splits(len(out), cfg, seed)
    out["hidden"] = hide_songs([s.split() for s in out["songs"]], out["split"].to_numpy(), cfg, seed)
    return out


def split_summary(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Playlists, songs and hidden songs per split."""
    summary = {}
    for role, part in table.groupby("split"):
        n_songs = part["songs"].str.split().str.len()
        summary[str(role)] = {"playlists": len(part), "mean_length": round(float(n_songs.mean()), 3),
                              "hidden_songs": int(part["hidden"].str.split().str.len().sum())}
    return summary


def load_catalogue(split_dir: str | Path, feature_columns: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    """Song ids in vocabulary order and their feature matrix [n_songs, n_features] from the split stage."""
    songs = read_songs(Path(split_dir) / SONGS_FILE, feature_columns)
    return songs["song_id"].tolist(), songs[list(feature_columns)].to_numpy(np.float32)
