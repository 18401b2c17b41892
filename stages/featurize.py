"""Stage featurize: window, normalize and log-mel every event into memory-mapped arrays."""

import argparse
from pathlib import Path

from fretlab.cache.featurize import featurize_all
from fretlab.data.metadata import read_metadata
from fretlab.io import worker_count
from fretlab.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    meta = read_metadata(Path(params.paths.split) / "metadata.csv")
    summary = featurize_all(meta, Path(params.data.root), params.featurize, params.data.classes,
                            Path(params.paths.features), worker_count(params.base.workers), params.split.names)
    print(f"features {summary['shape']}: {summary['splits']}; skipped {summary['skipped_total']}")


if __name__ == "__main__":
    main()
