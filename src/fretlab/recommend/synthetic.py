"""Synthetic song catalogue, users and playlists with known structure (docs/synthesis-playlists.md).

Song audio-feature vectors use the attribute recipe's target definitions (``fretlab.synth.attributes.TARGETS``):
unit attributes in [0, 1], tempo in ``SynthesizeTracks.tempo_bpm``, loudness in ``master_rms_dbfs``, the meter
and the key. Each theme has a profile over them; artists sit around a theme's profile, songs around their
artist. Users mix themes; playlists draw one theme, lean on a few of its artists, follow a Zipf popularity
skew and take some off-theme noise. Titles name the theme in words, misspelled or with emoji, or say nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fretlab.io import write_csv
from fretlab.params import SynthesizePlaylists, SynthesizeTracks
from fretlab.synth.attributes import INTEGER_TARGETS, TARGETS, UNIT_TARGETS

# theme -> profile on the [0, 1] scale: the unit targets, then tempo and loudness (scaled to their ranges)
SCALED = (*UNIT_TARGETS, "tempo", "loudness")
PROFILES: dict[str, tuple[float, ...]] = {
    #          dance energy valence live speech instr acoustic tempo loudness
    "workout": (0.70, 0.90, 0.60, 0.15, 0.08, 0.30, 0.10, 0.70, 0.85),
    "chill": (0.50, 0.30, 0.50, 0.10, 0.05, 0.50, 0.60, 0.25, 0.35),
    "party": (0.85, 0.80, 0.80, 0.30, 0.10, 0.20, 0.10, 0.53, 0.90),
    "focus": (0.30, 0.25, 0.40, 0.08, 0.03, 0.90, 0.50, 0.35, 0.15),
    "sad": (0.35, 0.30, 0.15, 0.12, 0.05, 0.30, 0.70, 0.12, 0.40),
    "country": (0.55, 0.60, 0.65, 0.25, 0.05, 0.10, 0.80, 0.42, 0.60),
    "rap": (0.75, 0.65, 0.50, 0.20, 0.35, 0.05, 0.15, 0.30, 0.80),
}
THEMES = tuple(PROFILES)
WORDS: dict[str, tuple[str, ...]] = {
    "workout": ("workout", "gym", "cardio", "running", "lifting", "pump", "sweat", "beast mode", "training", "hiit"),
    "chill": ("chill", "relax", "lofi", "calm", "sunday", "mellow", "cozy", "lazy", "chillout", "unwind"),
    "party": ("party", "dance", "club", "friday", "night out", "banger", "turn up", "pregame", "celebrate", "hype"),
    "focus": ("focus", "study", "concentration", "deep work", "reading", "coding", "productivity", "homework",
              "exam", "brain"),
    "sad": ("sad", "heartbreak", "crying", "breakup", "lonely", "tears", "blue", "melancholy", "rainy day",
            "miss you"),
    "country": ("country", "truck", "boots", "honky tonk", "southern", "ranch", "whiskey", "nashville", "rodeo",
                "backroads"),
    "rap": ("rap", "hip hop", "bars", "trap", "rhymes", "gangsta", "freestyle", "beats", "flow", "cypher"),
}
EMOJI: dict[str, tuple[str, ...]] = {  # 🔥 is shared by two themes on purpose
    "workout": ("💪", "🏋️", "🔥"), "chill": ("😌", "🌙", "☕"), "party": ("🎉", "🥳", "🍾"),
    "focus": ("📚", "🧠", "💻"), "sad": ("😢", "💔", "🌧"), "country": ("🤠", "🐎", "🌾"), "rap": ("🎤", "🔥", "💯"),
}
TEMPLATES = ("{w}", "{w} mix", "{w} {y}", "my {w} playlist", "{w} songs", "{w} & {v}", "{w} vibes")
UNINFORMATIVE = ("my playlist", "playlist", "new playlist", "songs", "mix", "favorites", "stuff", "music",
                 "random", "asdf", "car", "summer", "{y}", "playlist {n}", "for {name}")
NAMES = ("sam", "alex", "jo", "kim", "lee", "max")
YEARS = (2016, 2017, 2018, 2019, 2020, 2021)
EMOJI_ONLY_SHARE = 0.1  # informative titles that are only the emoji
METERS = (3, 4)  # time signature: 4, or 3 for a theme's waltz share
WALTZ_SHARE = {"sad": 0.25, "country": 0.2, "chill": 0.1}
N_KEYS = 12
STREAMS = {"artists": 1, "songs": 2, "users": 3, "playlists": 4, "titles": 5}  # one random stream each


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([seed, STREAMS[stream]])


def _scale(unit: np.ndarray) -> np.ndarray:
    """[0, 1]-scale columns of ``SCALED`` to the attribute recipe's units (tempo BPM, loudness dB)."""
    tracks = SynthesizeTracks()
    out = unit.copy()
    for col, (lo, hi) in ((-2, tracks.tempo_bpm), (-1, tracks.master_rms_dbfs)):
        out[:, col] = lo + unit[:, col] * (hi - lo)
    return out


def _profile_features(cfg: SynthesizePlaylists, theme: np.ndarray, artist: np.ndarray, seed: int) -> np.ndarray:
    """[n_songs, len(SCALED)] features in [0, 1]: theme profile + artist offset + song noise."""
    rng = _rng(seed, "songs")
    profiles = np.array([PROFILES[t] for t in THEMES])
    artist_off = _rng(seed, "artists").normal(0.0, cfg.artist_spread, (cfg.n_artists, len(SCALED)))
    unit = profiles[theme] + artist_off[artist] + rng.normal(0.0, cfg.song_spread, (len(theme), len(SCALED)))
    return np.clip(unit, 0.0, 1.0)


def _csv_features(path: str, theme: np.ndarray, seed: int) -> np.ndarray:
    """Song features drawn from the rows of ``path`` (attribute columns) whose nearest theme profile is theirs."""
    table = pd.read_csv(path)
    missing = [c for c in SCALED if c not in table]
    if missing or table.empty:
        raise ValueError(f"{path}: synthesize_playlists.features_csv needs the columns {list(SCALED)} and a row; "
                         f"missing {missing}")
    tracks = SynthesizeTracks()
    unit = table[list(SCALED)].to_numpy(float)
    for col, (lo, hi) in ((-2, tracks.tempo_bpm), (-1, tracks.master_rms_dbfs)):
        unit[:, col] = (unit[:, col] - lo) / (hi - lo)
    profiles = np.array([PROFILES[t] for t in THEMES])
    nearest = np.argmin(((unit[:, None, :] - profiles[None]) ** 2).sum(-1), axis=1)
    rng = _rng(seed, "songs")
    rows = np.empty(len(theme), dtype=int)
    for t in range(len(THEMES)):
        pool = np.flatnonzero(nearest == t)
        if pool.size == 0:  # no row near this theme: the rows nearest its profile
            pool = np.argsort(((unit - profiles[t]) ** 2).sum(-1))[:max(1, len(unit) // len(THEMES))]
        rows[theme == t] = rng.choice(pool, size=int((theme == t).sum()))
    return np.clip(unit[rows], 0.0, 1.0)


def make_catalogue(cfg: SynthesizePlaylists, seed: int) -> pd.DataFrame:
    """Songs: id, artist, theme, popularity weight and the attribute columns (``TARGETS``)."""
    rng = _rng(seed, "artists")
    artist_theme = np.concatenate([np.arange(len(THEMES)), rng.integers(0, len(THEMES), cfg.n_artists - len(THEMES))])
    song_rng = _rng(seed, "songs")
    artist = np.concatenate([np.arange(cfg.n_artists), song_rng.integers(0, cfg.n_artists,
                                                                         cfg.n_songs - cfg.n_artists)])
    theme = artist_theme[artist]
    rank = song_rng.permutation(cfg.n_songs) + 1  # popularity rank: a random order, Zipf weights
    unit = _csv_features(cfg.features_csv, theme, seed) if cfg.features_csv else _profile_features(
        cfg, theme, artist, seed)
    feats = _scale(unit)
    df = pd.DataFrame({"song_id": [f"s{i:05d}" for i in range(cfg.n_songs)], "artist": artist,
                       "theme": [THEMES[t] for t in theme], "popularity": np.round(1.0 / rank ** cfg.zipf_exponent, 8)})
    for j, name in enumerate(SCALED):
        df[name] = np.round(feats[:, j], 4)
    waltz = np.array([WALTZ_SHARE.get(THEMES[t], 0.0) for t in theme])
    df["time_signature"] = np.where(song_rng.random(cfg.n_songs) < waltz, METERS[0], METERS[1])
    df["key"] = song_rng.integers(0, N_KEYS, cfg.n_songs)
    return df[["song_id", "artist", "theme", "popularity", *TARGETS]]


def _misspell(word: str, rng: np.random.Generator) -> str:
    """One typo: a dropped, doubled or swapped letter."""
    if len(word) < 3:
        return word
    i = int(rng.integers(1, len(word) - 1))
    kind = rng.integers(0, 3)
    if kind == 0:
        return word[:i] + word[i + 1:]
    if kind == 1:
        return word[:i] + word[i] + word[i:]
    return word[:i - 1] + word[i] + word[i - 1] + word[i + 1:]


def make_title(theme: str, informative: bool, cfg: SynthesizePlaylists, rng: np.random.Generator) -> str:
    """A playlist title: theme words (maybe misspelled, with emoji) or an uninformative one."""
    year, n, name = rng.choice(YEARS), rng.integers(1, 10), rng.choice(NAMES)
    if not informative:
        return str(rng.choice(UNINFORMATIVE)).format(y=year, n=n, name=name)
    emoji = str(rng.choice(EMOJI[theme])) if rng.random() < cfg.emoji_share else ""
    if emoji and rng.random() < EMOJI_ONLY_SHARE:
        return emoji * int(rng.integers(1, 4))
    w, v = rng.choice(WORDS[theme], size=2, replace=False)
    if rng.random() < cfg.misspell_share:
        w = _misspell(str(w), rng)
    title = str(rng.choice(TEMPLATES)).format(w=w, v=v, y=year)
    title = {0: title, 1: title.title(), 2: title.upper()}[int(rng.choice(3, p=[0.6, 0.3, 0.1]))]
    return f"{title} {emoji}" if emoji else title


def _draw(pool: np.ndarray, weights: np.ndarray, taken: set[int], rng: np.random.Generator) -> int | None:
    """One song of ``pool`` by weight, not yet in the playlist (None when the pool is used up)."""
    for _ in range(8):  # popular songs are drawn again often: retry, then fall back to the unused rest
        s = int(pool[np.searchsorted(weights, rng.random() * weights[-1])])
        if s not in taken:
            return s
    rest = [int(s) for s in pool if int(s) not in taken]
    return int(rng.choice(rest)) if rest else None


def make_playlists(cfg: SynthesizePlaylists, songs: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Playlists: id, user, theme, title, whether the title is informative, and their songs (space separated)."""
    rng, title_rng = _rng(seed, "playlists"), _rng(seed, "titles")
    theme_of = songs["theme"].map(THEMES.index).to_numpy()
    artist_of = songs["artist"].to_numpy()
    pop = songs["popularity"].to_numpy()
    everyone = np.arange(len(songs))
    cum_all = np.cumsum(pop)
    by_theme = [np.flatnonzero(theme_of == t) for t in range(len(THEMES))]
    cum_theme = [np.cumsum(pop[p]) for p in by_theme]
    by_artist = [np.flatnonzero(artist_of == a) for a in range(int(artist_of.max()) + 1)]
    theme_artists = [np.unique(artist_of[p]) for p in by_theme]
    ids = songs["song_id"].tolist()
    tastes = _rng(seed, "users").dirichlet(np.full(len(THEMES), cfg.taste_concentration), cfg.n_users)
    rows = []
    for i in range(cfg.n_playlists):
        user = int(rng.integers(cfg.n_users))
        t = int(rng.choice(len(THEMES), p=tastes[user]))
        artists = theme_artists[t]
        n_focus = min(len(artists), int(rng.integers(cfg.focus_artists[0], cfg.focus_artists[1] + 1)))
        focus = np.concatenate([by_artist[a] for a in rng.choice(artists, n_focus, replace=False)])
        cum_focus = np.cumsum(pop[focus])
        length = int(rng.integers(cfg.length[0], cfg.length[1] + 1))
        taken: list[int] = []
        seen: set[int] = set()
        while len(taken) < length:
            r = rng.random()
            if r < cfg.noise_share:
                s = _draw(everyone, cum_all, seen, rng)
            elif r < cfg.noise_share + cfg.focus_share:
                s = _draw(focus, cum_focus, seen, rng)
            else:
                s = _draw(by_theme[t], cum_theme[t], seen, rng)
            if s is None:
                s = _draw(everyone, cum_all, seen, rng)
            taken.append(s)
            seen.add(s)
        informative = bool(title_rng.random() < cfg.informative_share)
        rows.append({"playlist_id": f"p{i:06d}", "user": user, "theme": THEMES[t],
                     "title": make_title(THEMES[t], informative, cfg, title_rng), "title_informative": informative,
                     "songs": " ".join(ids[s] for s in taken)})
    return pd.DataFrame(rows)


def synthesize_playlists(cfg: SynthesizePlaylists, out_dir: Path, seed: int) -> pd.DataFrame:
    """Write ``songs.csv`` to ``out_dir``; return the playlists (the stage writes them as ``metadata.csv``)."""
    songs = make_catalogue(cfg, seed)
    write_csv(Path(out_dir) / "songs.csv", songs)
    return make_playlists(cfg, songs, seed)


__all__ = ["INTEGER_TARGETS", "TARGETS", "THEMES", "make_catalogue", "make_playlists", "synthesize_playlists"]
