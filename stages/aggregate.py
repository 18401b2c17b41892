"""Stage aggregate: cross-validation summary over the folds (mean ± std, per-fold table, summed confusion)."""

import argparse
from pathlib import Path

from fretlab.params import load_params
from fretlab.tasks.aggregate import aggregate_folds, format_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    if params.split.strategy != "predefined_folds":
        raise SystemExit("aggregate needs split.strategy: predefined_folds (see recipes/esc50, recipes/urbansound8k)")
    paths = params.paths
    summary = aggregate_folds(params.split.folds, params.data.classes, Path(paths.metrics), Path(paths.plots),
                              Path(paths.cv))
    print(format_summary(summary))


if __name__ == "__main__":
    main()
