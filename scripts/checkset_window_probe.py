"""How much the choice of window moves a model's check-set score: the note's start vs its strongest onset.

A check-set note is held 3 s and released, as sample libraries record one; ``fretlab predict`` classifies
one window of it. This scores MODEL_DIR on the rendered check set twice, with the model's own
``predict.note_onset_share`` (the first strong onset, backtracked: the default) and with 1.0 (the
strongest onset, what fretlab did before), and prints both, per soundfont.

    python scripts/checkset_window_probe.py models/default --json docs/results/checkset_window.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fretlab.app.predict import Predictor
from fretlab.data.metadata import read_metadata, validate_metadata
from fretlab.tasks.checkset import checkset_metrics, predict_checkset

STRONGEST = {"note_onset_share": 1.0}


def score(model_dir: Path, root: Path, overrides: dict | None) -> dict:
    predictor = Predictor(model_dir, "cpu", overrides)
    meta = validate_metadata(read_metadata(root / "metadata.csv"), predictor.classes, root,
                             source=str(root / "metadata.csv"))
    metrics = checkset_metrics(predict_checkset(predictor, meta, root, predictor.settings.batch_size),
                               predictor.classes)
    return {"note_onset_share": predictor.settings.note_onset_share, "macro_f1": metrics["macro_f1"],
            "accuracy": metrics["accuracy"], "harmonic_recall": metrics["per_class"]["harmonic"]["recall"],
            "general_note_recall": metrics["per_class"]["general_note"]["recall"],
            "per_soundfont": metrics["per_soundfont"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dirs", nargs="+", type=Path)
    parser.add_argument("--checkset", type=Path, default=Path("data/checkset"), help="rendered check set")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = parser.parse_args()
    out = {}
    print("| model | window | macro-F1 | accuracy | harmonic recall | general-note recall |")
    print("|---|---|---|---|---|---|")
    for model_dir in args.model_dirs:
        rows = {"note start": score(model_dir, args.checkset, None),
                "strongest onset": score(model_dir, args.checkset, STRONGEST)}
        out[str(model_dir)] = rows
        for name, r in rows.items():
            print(f"| {model_dir} | {name} | {r['macro_f1']:.3f} | {r['accuracy']:.3f} | "
                  f"{r['harmonic_recall']:.3f} | {r['general_note_recall']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"checkset": str(args.checkset), "models": out}, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
