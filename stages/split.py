"""Stage split: load and validate the data source, assign grouped train/val/test splits or predefined folds."""

import argparse
from pathlib import Path

from fretlab.data.sources import load_source
from fretlab.data.splits import apply_min_values, assign_splits, check_split_classes, restrict_validation, split_summary
from fretlab.io import write_csv, write_json
from fretlab.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    cfg = params.split
    meta, filtered = apply_min_values(load_source(params), cfg.min_values, params.data.metadata)
    events = params.featurize.kind == "windows"  # event rows carry a class label to stratify and check
    meta["split"] = assign_splits(meta, cfg.strategy, cfg.fractions, cfg.folds, params.base.seed,
                                  stratify="label_category" if events else None)
    meta, restricted = restrict_validation(meta, cfg.val_where, params.data.metadata)
    if events:
        check_split_classes(meta, params.data.classes, splits=cfg.names)
    out_dir = Path(params.paths.split)
    write_csv(out_dir / "metadata.csv", meta)
    summary, table = split_summary(meta, "label_category" if events else None)
    filters = {**(filtered if cfg.min_values else {}), **restricted}
    write_json(out_dir / "summary.json", {**summary, **({"filters": filters} if filters else {})})
    print(table + (f"\nfilters: {filters}" if filters else ""))


if __name__ == "__main__":
    main()
