"""The drum-rudiment results table: queued `dvc exp` runs over seeds, balanced accuracy next to accuracy.

Run from ``recipes/rudiments`` with a committed params.yaml. Each (variant, seed) is one named, queued
experiment (``ru-<variant>-s<seed>``); seeds go through ``base.seed``, which also drives the synthetic
players and the split. Finished experiments are reused. The default variants are the reference's
structure (binary > confidence-filtered 4-class > unfiltered 4-class); ``--variants`` adds the others.

    cd recipes/rudiments
    python ../../scripts/rudiments_results.py                          # tier, tier-conf, binary x 42 43 44
    python ../../scripts/rudiments_results.py --variants score,multitask,rudiment --seeds 42

Writes ``--json`` (every figure per run) and prints the markdown table for the README.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from results_table import Run, Variant, mean_std, recipe_parser, run_recipe_variants

VARIANTS = (
    Variant("tier", "skill tier, 4 classes, every player", ()),
    Variant("tier-conf", "skill tier, 4 classes, tier_confidence >= 0.5", ("+split.min_values.tier_confidence=0.5",)),
    Variant("binary", "novice / skilled", ("task.preset=skill_binary",)),
    Variant("score", "overall_score regression (0-100)", ("task.preset=overall_score",)),
    Variant("multitask", "overall_score + tempo_stability", ("task.preset=multitask",)),
    Variant("rudiment", "rudiment, 20 classes", ("task.preset=rudiment",)),
    Variant("masked-gru", "overall_score + tempo_stability + flam_quality (masked), GRU",
            ("task.preset=masked", "model.name=gru")),
    Variant("tier-crnn", "skill tier, 4 classes, log-mel CRNN", ("featurize.tracks.features=[logmel]",
                                                                 "model.name=crnn")),
)
DEFAULT_VARIANTS = ("tier", "tier-conf", "binary")
CLASSIFICATION = ("balanced_accuracy", "accuracy", "macro_f1")
REGRESSION = ("r2", "mae", "rmse")


def figures(metrics: dict[str, Any]) -> dict[str, float]:
    """The headline figures of one test.json: flat for a single classification target, else per target."""
    if "balanced_accuracy" in metrics:
        return {k: metrics[k] for k in CLASSIFICATION}
    out = {}
    for target, block in metrics.items():
        if isinstance(block, dict) and "r2" in block:
            out.update({f"{target}.{k}": block[k] for k in REGRESSION})
        elif isinstance(block, dict) and "balanced_accuracy" in block:
            out.update({f"{target}.{k}": block[k] for k in CLASSIFICATION})
    return out


def summarize(runs: list[Run]) -> dict[str, Any]:
    """Per variant: every figure over the seeds that finished."""
    out: dict[str, Any] = {}
    for variant in dict.fromkeys(r.variant for r in runs):
        done = [r for r in runs if r.variant == variant and r.metrics]
        per_run = [figures(r.metrics) for r in done]
        out[variant.name] = {
            "label": variant.label, "seeds": [r.seed for r in done], "experiments": [r.name for r in done],
            "command": " ".join(["dvc exp run", *(f"-S {o}" for o in variant.overrides), "-S base.seed=<seed>"]),
            "figures": {k: [f[k] for f in per_run] for k in (per_run[0] if per_run else {})},
        }
    return out


def markdown(summary: dict[str, Any]) -> str:
    """One row per variant and figure: mean ± std over seeds, and the values."""
    lines = ["| variant | figure | mean ± std | per seed |", "|---|---|---|---|"]
    for v in summary.values():
        for name, values in v["figures"].items():
            lines.append(f"| {v['label']} | {name} | {mean_std(values)} | "
                         f"{', '.join(f'{x:.3f}' for x in values)} (seeds {', '.join(map(str, v['seeds']))}) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = recipe_parser(__doc__, list(DEFAULT_VARIANTS), "ru", "rudiments_results.json", poll_s=30.0)
    args = parser.parse_args(argv)
    runs, seeds = run_recipe_variants(parser, args, VARIANTS, "rudiments", "synthesize_rudiments")
    summary = summarize(runs)
    Path(args.json_out).write_text(json.dumps({"seeds": seeds, "extra_overrides": args.extra, "variants": summary},
                                              indent=2) + "\n", encoding="utf-8")
    print(markdown(summary))
    means = {n: statistics.mean(v["figures"]["balanced_accuracy"]) for n, v in summary.items()
             if "balanced_accuracy" in v["figures"]}
    if {"tier", "tier-conf", "binary"} <= set(means):
        held = means["binary"] > means["tier-conf"] > means["tier"]
        verdict = "holds" if held else "DOES NOT hold"
        print(f"\nreference structure binary > filtered 4-class > unfiltered 4-class: {verdict}")
    print(f"wrote {args.json_out}")
    return 0 if all(r.metrics for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
