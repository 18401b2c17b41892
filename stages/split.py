"""Stage split: load and validate the data source, assign grouped train/val/test splits or predefined folds."""

import argparse
from pathlib import Path

from fretlab.data.sources import load_source
from fretlab.data.splits import assign_splits, check_split_classes
from fretlab.io import write_csv, write_json
from fretlab.params import load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    meta = load_source(params)
    cfg = params.split
    meta["split"] = assign_splits(meta, cfg.strategy, cfg.fractions, cfg.folds, params.base.seed)
    check_split_classes(meta, params.data.classes, splits=cfg.names)
    out_dir = Path(params.paths.split)
    write_csv(out_dir / "metadata.csv", meta)
    table = meta.groupby(["split", "label_category"]).size().unstack(fill_value=0)
    write_json(out_dir / "summary.json", {
        "events": {s: {c: int(n) for c, n in row.items()} for s, row in table.iterrows()},
        "groups": {s: sorted(g["group"].unique().tolist()) for s, g in meta.groupby("split")},
    })
    print(table.to_string())


if __name__ == "__main__":
    main()
