"""Stage split: load and validate the data source, assign grouped train/val/test splits or predefined folds."""

import argparse
from pathlib import Path

from fretlab.data.sources import load_source
from fretlab.data.splits import assign_splits, check_split_classes, split_summary
from fretlab.io import write_csv, write_json
from fretlab.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    meta = load_source(params)
    cfg = params.split
    events = params.featurize.kind == "windows"  # event rows carry a class label to stratify and check
    meta["split"] = assign_splits(meta, cfg.strategy, cfg.fractions, cfg.folds, params.base.seed,
                                  stratify="label_category" if events else None)
    if events:
        check_split_classes(meta, params.data.classes, splits=cfg.names)
    out_dir = Path(params.paths.split)
    write_csv(out_dir / "metadata.csv", meta)
    summary, table = split_summary(meta, "label_category" if events else None)
    write_json(out_dir / "summary.json", summary)
    print(table)


if __name__ == "__main__":
    main()
