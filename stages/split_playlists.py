"""Stage split_playlists: validate songs and playlists, split by playlist, hide the held-out playlists' songs."""

import argparse
import shutil
from pathlib import Path

from fretlab.io import write_csv, write_json
from fretlab.params import load_params
from fretlab.recommend.data import (
    PLAYLISTS_FILE,
    SONGS_FILE,
    SPLIT_FILE,
    read_playlists,
    read_songs,
    split_playlists,
    split_summary,
)
from fretlab.recommend.synthetic import TARGETS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    root, out_dir = Path(params.data.root), Path(params.paths.split)
    songs = read_songs(root / SONGS_FILE, TARGETS)
    playlists = read_playlists(root / PLAYLISTS_FILE, set(songs["song_id"]))
    table = split_playlists(playlists, params.playlist_split, params.base.seed)
    shutil.rmtree(out_dir, ignore_errors=True)
    write_csv(out_dir / SONGS_FILE, songs)
    write_csv(out_dir / SPLIT_FILE, table)
    summary = split_summary(table)
    write_json(out_dir / "summary.json", summary)
    print(summary)


if __name__ == "__main__":
    main()
