"""Stage synthesize: render the embedded synthetic dataset (WAVs + metadata.csv) named by data.source."""

import argparse
import shutil
from pathlib import Path

from fretlab.io import worker_count, write_csv
from fretlab.params import load_params
from fretlab.synth.registry import synthesize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    out_dir = Path(params.paths.synthetic)
    shutil.rmtree(out_dir, ignore_errors=True)
    meta = synthesize(params, out_dir, worker_count(params.base.workers))
    write_csv(out_dir / "metadata.csv", meta)
    counts = meta["label_category"].value_counts().to_dict() if "label_category" in meta else {}
    files = f" in {meta['audio_path'].nunique()} files" if "audio_path" in meta else ""  # playlists: no audio
    print(f"wrote {len(meta)} rows{files} to {out_dir} {counts}")


if __name__ == "__main__":
    main()
