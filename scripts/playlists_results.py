"""Run the playlist-continuation recipe over seeds and write docs/results/playlists.{json,md} (mean ± std).

For each seed: synthesize -> split_playlists -> train_recommender -> evaluate_recommender on
recipes/playlists/params.yaml with ``base.seed`` set, then the title-off variant (``recommender.title: false``)
on the same data. Runs go to build/playlists_results/seed<N>/ (gitignored); ``--reuse`` skips runs whose metrics
are there. Reproducible: every random choice follows base.seed.

    python scripts/playlists_results.py --seeds 42 43 44
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "playlists"
VARIANTS = {"default": {}, "title_off": {"recommender": {"title": False}}}
COLUMNS = (("r_precision_hidden", "R-prec (hidden)"), ("ndcg@10", "NDCG@10"), ("coverage@10", "coverage@10"),
           ("popular_share@10", "top-1% share@10"), ("informative", "R-prec, informative titles"),
           ("uninformative", "R-prec, uninformative titles"))


def run_variant(seed: int, variant: str, out: Path, reuse: bool) -> dict:
    """Metrics of one seed and variant (running the stages unless ``reuse`` finds them)."""
    metrics = out / variant / "metrics" / "test.json"
    if reuse and metrics.is_file():
        return json.loads(metrics.read_text())
    params = yaml.safe_load((RECIPE / "params.yaml").read_text())
    params["base"]["seed"] = seed
    for section, values in VARIANTS[variant].items():
        params[section].update(values)
    params["paths"] = {"synthetic": str(out / "data" / "synthetic"), "split": str(out / "data" / "split"),
                       "model": str(out / variant / "model"), "live": str(out / variant / "dvclive"),
                       "metrics": str(out / variant / "metrics"), "plots": str(out / variant / "plots")}
    params["data"]["root"] = params["paths"]["synthetic"]
    (out / variant).mkdir(parents=True, exist_ok=True)
    path = out / variant / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    stages = ["train_recommender", "evaluate_recommender"]
    if variant == "default" or not (out / "data" / "split" / "playlists.csv").is_file():
        stages = ["synthesize", "split_playlists", *stages]
    for stage in stages:
        subprocess.run([sys.executable, str(REPO / "stages" / f"{stage}.py"), "--params", str(path)], cwd=RECIPE,
                       check=True, stdout=subprocess.DEVNULL)
    return json.loads(metrics.read_text())


def flatten(m: dict) -> dict[str, float]:
    return {**{k: v for k, v in m.items() if isinstance(v, float)}, **m["r_precision_hidden_by_title"]}


def table(runs: dict[str, dict[int, dict]]) -> tuple[dict, str]:
    """Per model (and title-off set transformer): mean and std over seeds of every column; the markdown table."""
    rows: dict[str, dict[int, dict[str, float]]] = {}
    for seed, m in runs["default"].items():
        for model, figures in m.items():
            rows.setdefault(model, {})[seed] = flatten(figures)
    for seed, m in runs.get("title_off", {}).items():
        rows.setdefault("set_transformer (title off)", {})[seed] = flatten(m["set_transformer"])
    summary, lines = {}, ["| model | " + " | ".join(c[1] for c in COLUMNS) + " |",
                          "|---|" + "---|" * len(COLUMNS)]
    for model, by_seed in rows.items():
        summary[model] = {}
        cells = []
        for key, _ in COLUMNS:
            values = np.array([by_seed[s][key] for s in sorted(by_seed)])
            summary[model][key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1
                                   else 0.0, "values": values.tolist()}
            cells.append(f"{values.mean():.3f} ± {summary[model][key]['std']:.3f}")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return summary, "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=REPO / "build" / "playlists_results")
    parser.add_argument("--reuse", action="store_true", help="skip runs whose metrics already exist")
    args = parser.parse_args(argv)
    runs: dict[str, dict[int, dict]] = {v: {} for v in args.variants}
    for seed in args.seeds:
        for variant in args.variants:
            runs[variant][seed] = run_variant(seed, variant, args.out / f"seed{seed}", args.reuse)
            print(f"seed {seed} {variant}: set transformer hidden R-precision "
                  f"{runs[variant][seed]['set_transformer']['r_precision_hidden']:.4f}", flush=True)
    summary, markdown = table(runs)
    docs = REPO / "docs" / "results"
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "playlists.json").write_text(json.dumps({"seeds": args.seeds, "models": summary, "runs": runs},
                                                    indent=2, sort_keys=True) + "\n")
    (docs / "playlists.md").write_text(f"Test playlists, seeds {args.seeds}, mean ± std (sample std over seeds).\n\n"
                                       + markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
