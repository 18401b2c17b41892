"""``fretlab recommend``: read a playlist file, score it with a trained set transformer, pick the next songs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SONG_ID = re.compile(r"^[A-Za-z0-9_.:-]+$")
TITLE_PREFIX = "title:"
FORMAT_HINT = "one song id per line, and optionally one 'title: <text>' line; '#' starts a comment"


class PlaylistFileError(ValueError):
    """A playlist file that is missing, empty, malformed or names songs the model does not know."""


@dataclass(frozen=True)
class PlaylistInput:
    """A parsed playlist file: its title ('' when none) and song ids in file order."""

    title: str
    songs: list[str]


def read_playlist_file(path: Path) -> PlaylistInput:
    """Parse ``path``; every problem names the file, the line and the fix."""
    if not path.is_file():
        raise PlaylistFileError(f"{path}: no such file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise PlaylistFileError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    title, title_line, songs = None, 0, []
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().lower().startswith(TITLE_PREFIX) else raw.strip()
        if not line:
            continue
        if line.lower().startswith(TITLE_PREFIX):
            if title is not None:
                raise PlaylistFileError(f"{path}, line {number}: a second title (the first is on line {title_line}); "
                                        "keep one 'title:' line")
            title, title_line = line[len(TITLE_PREFIX):].strip(), number
        elif SONG_ID.match(line):
            songs.append(line)
        else:
            raise PlaylistFileError(f"{path}, line {number}: malformed line {line[:40]!r}; expected {FORMAT_HINT}")
    if not songs and not title:
        raise PlaylistFileError(f"{path}: empty playlist (no song ids and no title); expected {FORMAT_HINT}")
    return PlaylistInput(title or "", songs)


def recommend(model_dir: Path, playlist: PlaylistInput, source: Path, k: int, top_p: float | None = None,
              seed: int = 0, temperature: float = 1.0) -> dict[str, Any]:
    """The ``k`` best new songs (or ``k`` drawn from the top-``p`` nucleus), never the playlist's own songs."""
    import torch  # only here: parsing and its errors stay fast

    from fretlab.recommend.model import score_playlists
    from fretlab.recommend.modeldir import load_recommender
    from fretlab.recommend.sampling import exclude, top_k
    from fretlab.recommend.sampling import top_p as nucleus

    model, config = load_recommender(model_dir)
    ids: list[str] = config["song_ids"]
    index = {s: i for i, s in enumerate(ids)}
    unknown = sorted({s for s in playlist.songs if s not in index})
    if unknown:
        shown = ", ".join(unknown[:20]) + (f" (+{len(unknown) - 20} more)" if len(unknown) > 20 else "")
        raise PlaylistFileError(f"{source}: {len(unknown)} song id(s) not in the model's catalogue: {shown}; "
                                f"ids look like {ids[0]} (see the recipe's data/split/songs.csv)")
    visible = sorted({index[s] for s in playlist.songs})
    if k < 1 or k > len(ids) - len(visible):
        raise PlaylistFileError(f"-k {k}: must be between 1 and {len(ids) - len(visible)} (the songs not yet in it)")
    scores = exclude(score_playlists(model, [visible], [playlist.title], 1), [visible])
    if top_p is None:
        picks = top_k(scores, k)[0]
    else:
        picks = nucleus(scores, k, top_p, torch.Generator().manual_seed(seed), temperature)[0]
    probs = torch.softmax(scores[0] / temperature, 0)
    return {"title": playlist.title, "n_songs": len(playlist.songs), "mode": "top_k" if top_p is None else "top_p",
            "recommendations": [{"rank": r + 1, "song_id": ids[int(i)], "score": round(float(scores[0, i]), 4),
                                 "probability": round(float(probs[i]), 6)} for r, i in enumerate(picks)]}
