"""Stage featurize: event windows as log-mel arrays, or whole tracks as variable-length frame sequences."""

import argparse
from pathlib import Path

from fretlab.cache.featurize import featurize_all
from fretlab.cache.featurize_tracks import featurize_tracks
from fretlab.data.metadata import read_metadata
from fretlab.io import worker_count
from fretlab.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    meta = read_metadata(Path(params.paths.split) / "metadata.csv")
    root, out, workers = Path(params.data.root), Path(params.paths.features), worker_count(params.base.workers)
    if params.featurize.kind == "tracks":
        summary = featurize_tracks(meta, root, params.featurize.tracks, out, workers, params.split.names)
        print(f"features: {summary['dims']} dims per frame; {summary['splits']}")
        return
    summary = featurize_all(meta, root, params.featurize, params.data.classes, out, workers, params.split.names)
    print(f"features {summary['shape']}: {summary['splits']}; skipped {summary['skipped_total']}")


if __name__ == "__main__":
    main()
