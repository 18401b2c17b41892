"""Stage evaluate_checkset: score the trained model on the real-sampled check set, as `fretlab predict` would.

Writes paths.checkset_report: metrics.json (a DVC metric), confusion.csv (a DVC plot) and figures/.
"""

import argparse
import shutil
from pathlib import Path

from fretlab.app.predict import Predictor
from fretlab.data.metadata import read_metadata, validate_metadata
from fretlab.params import load_params
from fretlab.runtime import configure_determinism
from fretlab.tasks.checkset import predict_checkset, write_checkset_report, write_disabled_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    root = Path(params.paths.checkset)
    out_dir = Path(params.paths.checkset_report)
    shutil.rmtree(out_dir, ignore_errors=True)
    if not params.checkset.enabled:
        write_disabled_report(out_dir)
        print(f"checkset.enabled is false: nothing scored; wrote {out_dir}")
        return
    configure_determinism(params.base.deterministic)
    # the model directory's own featurize + predict settings and classes, not params.yaml's
    predictor = Predictor(params.paths.model, params.base.device)
    meta = validate_metadata(read_metadata(root / "metadata.csv"), predictor.classes, root,
                             source=str(root / "metadata.csv"))
    scored = predict_checkset(predictor, meta, root, predictor.settings.batch_size)
    metrics = write_checkset_report(scored, predictor.classes, out_dir)
    print(f"check set ({metrics['n']} notes, classes {metrics['classes_present']}): accuracy "
          f"{metrics['accuracy']:.4f}, balanced accuracy {metrics['balanced_accuracy']:.4f}, "
          f"macro-F1 {metrics['macro_f1']:.4f}; written to {out_dir}")


if __name__ == "__main__":
    main()
