"""The music-attribute results table: queued `dvc exp` runs over seeds, per-target figures and a heatmap.

Run from ``recipes/attributes`` with a committed params.yaml. Each (variant, seed) is one named, queued
experiment (``at-<variant>-s<seed>``); the table is read back from ``dvc exp show --json``. Seeds go
through ``base.seed``, which also drives synthesis and the split. Finished experiments are reused.

    cd recipes/attributes
    python ../../scripts/attributes_results.py                     # every variant x seeds 42 43 44
    python ../../scripts/attributes_results.py --variants gru,rf --seeds 42 --set train.epochs=2

Writes ``--json`` (every figure per run), ``--png`` (targets x variants heatmap of the standardized test
MSE, mean over seeds) and prints the markdown tables for the README.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
from results_table import Run, Variant, mean_std, recipe_parser, run_recipe_variants

from fretlab.tasks.plots import plot_error_heatmap

# the source project's frame features plus the harmony block: the tempogram ablation
NO_TEMPOGRAM = "featurize.tracks.features=[mfcc,chroma,contrast,tonnetz,zcr,harmony]"
VARIANTS = (
    Variant("gru", "GRU (2 x 96, stride 8, mean+std pooling, crop 0.3), standardized targets", ()),
    Variant("gru-v1", "GRU as before: every frame, mean pooling, no crop, 40 epochs",
            ("model.gru.frame_stride=1", "model.gru.time_pooling=mean", "train.augment.crop=1.0",
             "train.epochs=40", "train.patience=8")),
    Variant("gru-raw", "GRU, raw targets (no standardization)", ("task.standardize=false",)),
    Variant("crnn", "CRNN, standardized targets", ("model.name=crnn",)),
    Variant("crnn-raw", "CRNN, raw targets (no standardization)", ("model.name=crnn", "task.standardize=false")),
    Variant("rf", "Random forest + RandomizedSearchCV, standardized targets", ("model.name=rf",)),
    Variant("rf-raw", "Random forest + search, raw targets", ("model.name=rf", "task.standardize=false")),
    Variant("gru-notempogram", "GRU (stride 2), features without the tempogram block",
            (NO_TEMPOGRAM, "model.gru.frame_stride=2")),
    Variant("rf-notempogram", "Random forest + search, features without the tempogram block",
            (NO_TEMPOGRAM, "model.name=rf")),
)


def regression_targets(metrics: dict[str, Any]) -> list[str]:
    """Targets with regression figures in one metrics file, in file order."""
    return [k for k, v in metrics.items() if isinstance(v, dict) and "standardized" in v]


def summarize(runs: list[Run]) -> dict[str, Any]:
    """Per variant: aggregate figures and per-target standardized MSE / R² / raw-MSE share, over the seeds."""
    out: dict[str, Any] = {}
    for variant in dict.fromkeys(r.variant for r in runs):
        done = [r for r in runs if r.variant == variant and r.metrics]
        if not done:
            out[variant.name] = {"label": variant.label, "seeds": []}
            continue
        names = regression_targets(done[0].metrics)
        classes = [k for k, v in done[0].metrics.items() if isinstance(v, dict) and "macro_f1" in v]
        out[variant.name] = {
            "label": variant.label, "seeds": [r.seed for r in done], "experiments": [r.name for r in done],
            "command": " ".join(["dvc exp run", *(f"-S {o}" for o in variant.overrides), "-S base.seed=<seed>"]),
            "mse_standardized": [r.metrics["aggregate"]["mse_standardized"] for r in done],
            "mse": [r.metrics["aggregate"]["mse"] for r in done],
            "r2_mean": [r.metrics["aggregate"]["r2_mean"] for r in done],
            "per_target": {t: {"mse_standardized": [r.metrics[t]["standardized"]["mse"] for r in done],
                               "r2": [r.metrics[t]["r2"] for r in done],
                               "raw_mse_share": [r.metrics["aggregate"]["raw_mse_share"][t] for r in done]}
                           for t in names},
            "classification": {c: {"accuracy": [r.metrics[c]["accuracy"] for r in done],
                                   "macro_f1": [r.metrics[c]["macro_f1"] for r in done]} for c in classes},
        }
    return out


def markdown(summary: dict[str, Any]) -> str:
    """The aggregate table, then the per-target standardized-MSE and R² table."""
    rows = [v for v in summary.values() if v["seeds"]]
    lines = ["| variant | mean standardized MSE | mean raw MSE | mean R² | seeds |", "|---|---|---|---|---|"]
    for v in rows:
        lines.append(f"| {v['label']} | {mean_std(v['mse_standardized'])} | {mean_std(v['mse'])} "
                     f"| {mean_std(v['r2_mean'])} | {', '.join(map(str, v['seeds']))} |")
    if not rows:
        return "\n".join(lines)
    targets = list(rows[0]["per_target"])
    names = [k for k, v in summary.items() if v["seeds"]]
    lines += ["", "| target (standardized MSE / R²) | " + " | ".join(names) + " |", "|---" * (len(rows) + 1) + "|"]
    for t in targets:
        cells = [f"{statistics.mean(v['per_target'][t]['mse_standardized']):.3f} / "
                 f"{statistics.mean(v['per_target'][t]['r2']):.2f}" for v in rows]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    share = ["| tempo's share of the raw MSE sum | " + " | ".join(
        f"{statistics.mean(v['per_target']['tempo']['raw_mse_share']):.3f}" for v in rows) + " |"] \
        if "tempo" in targets else []
    return "\n".join(lines + share)


def heatmap(summary: dict[str, Any], path: Path) -> None:
    """Targets x variants: standardized test MSE, mean over seeds."""
    rows = [v for v in summary.values() if v["seeds"]]
    if not rows:
        return
    targets = list(rows[0]["per_target"])
    values = np.array([[statistics.mean(v["per_target"][t]["mse_standardized"]) for v in rows] for t in targets])
    labels = [k for k, v in summary.items() if v["seeds"]]
    plot_error_heatmap(values, targets, labels, path, "test: standardized MSE per target (mean over seeds)")


def merged(summary: dict[str, Any], earlier: Path | None, seeds: list[int]) -> dict[str, Any]:
    """``summary`` plus the variants of an earlier results file that this run did not measure (same seeds only)."""
    if earlier is None:
        return summary
    old = json.loads(earlier.read_text(encoding="utf-8"))
    if old["seeds"] != seeds:
        raise SystemExit(f"--merge {earlier}: seeds {old['seeds']}, this run {seeds}; merge runs of the same seeds")
    return {**summary, **{k: v for k, v in old["variants"].items() if k not in summary}}


def main(argv: list[str] | None = None) -> int:
    parser = recipe_parser(__doc__, [v.name for v in VARIANTS], "at", "attributes_results.json")
    parser.add_argument("--png", default="attributes_heatmap.png")
    parser.add_argument("--merge", type=Path, default=None,
                        help="an earlier --json: its variants not run now are kept in the table, JSON and heatmap")
    args = parser.parse_args(argv)
    runs, seeds = run_recipe_variants(parser, args, VARIANTS, "attributes", "synthesize_tracks")
    summary = merged(summarize(runs), args.merge, seeds)
    Path(args.json_out).write_text(json.dumps({"seeds": seeds, "extra_overrides": args.extra, "variants": summary},
                                              indent=2) + "\n", encoding="utf-8")
    heatmap(summary, Path(args.png))
    print(markdown(summary))
    print(f"\nwrote {args.json_out} and {args.png}")
    return 0 if all(r.metrics for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
