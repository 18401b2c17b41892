"""Stage render_checkset: render the real-sampled check set (GM soundfont notes: WAVs + metadata.csv).

Evaluation only: no training, featurize or model-selection stage reads paths.checkset.
"""

import argparse
import shutil
import sys
from pathlib import Path

from fretlab.io import write_csv, write_json
from fretlab.params import load_params
from fretlab.synth.soundfont import METADATA_COLUMNS, disabled_summary, render_checkset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    cfg = params.checkset
    out_dir = Path(params.paths.checkset)
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    if not cfg.enabled:
        import pandas as pd

        write_csv(out_dir / "metadata.csv", pd.DataFrame(columns=list(METADATA_COLUMNS)))
        write_json(out_dir / "summary.json", disabled_summary())
        print(f"checkset.enabled is false: wrote an empty check set to {out_dir}")
        return
    # rendered at the analysis rate of the featurize stage: what the model hears, with no resampling step
    meta, summary = render_checkset(cfg, params.data.classes, params.featurize.sample_rate, out_dir)
    for entry in summary["soundfonts_missing"]:
        print(f"render_checkset: soundfont {entry} not found; skipped (install it or drop it from "
              "checkset.soundfonts)", file=sys.stderr)
    write_csv(out_dir / "metadata.csv", meta)
    write_json(out_dir / "summary.json", summary)
    print(f"wrote {len(meta)} notes from {list(summary['soundfonts_used'])} to {out_dir} {summary['labels']}")


if __name__ == "__main__":
    main()
