"""Run the README's results-table variants with `dvc exp` and print mean ± std over seeds as markdown.

Each (variant, seed) becomes one named, queued DVC experiment (``rt-<variant>-s<seed>``) that starts
from the committed params.yaml; ``dvc queue start -j JOBS`` runs them, and the table is read back from
``dvc exp show --json``. Seeds go through ``base.seed``, which also drives synthesis and the split, so the
spread covers data sampling as well as initialization; every variant sees the same datasets.

    python scripts/results_table.py                       # all variants, seeds 42 43 44, default data
    python scripts/results_table.py --dry-run             # print the dvc commands only
    python scripts/results_table.py --variants crnn-last,rf --seeds 1 \\
        --set synthesize.n_events=200 --set train.epochs=2   # a quick check on tiny params

Finished experiments with the same name and params are reused, so an interrupted run picks up where
it stopped. Run from the repository root with a clean params.yaml (queued experiments start from the
workspace as it is).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    overrides: tuple[str, ...]


VARIANTS = (
    Variant("crnn-last", "CRNN, GRU last step (default)", ()),
    Variant("crnn-mean", "CRNN, mean over time", ("model.crnn.time_pooling=mean",)),
    Variant("crnn-attention", "CRNN, attention pooling", ("model.crnn.time_pooling=attention",)),
    Variant("crnn-bi", "CRNN, bidirectional GRU", ("model.crnn.bidirectional=true",)),
    Variant("cnn", "CNN (UrbanSound8K-style)", ("model.name=cnn",)),
    Variant("gru", "GRU only", ("model.name=gru",)),
    Variant("rf", "Random forest, mean+std pooled", ("model.name=rf",)),
)
DEFAULT_SEEDS = (42, 43, 44)
METRICS_FILE = "metrics/test.json"


@dataclass
class Run:
    variant: Variant
    seed: int
    extra: tuple[str, ...]
    prefix: str = "rt"
    metrics: dict[str, Any] | None = field(default=None, compare=False)
    all_metrics: dict[str, Any] = field(default_factory=dict, compare=False)  # every metrics file of the run

    @property
    def name(self) -> str:
        return f"{self.prefix}-{self.variant.name}-s{self.seed}"

    @property
    def overrides(self) -> tuple[str, ...]:
        return (*self.extra, *self.variant.overrides, f"base.seed={self.seed}")

    def command(self, queue: bool = True) -> list[str]:
        cmd = ["dvc", "exp", "run", *(["--queue"] if queue else []), "-n", self.name]
        for item in self.overrides:
            cmd += ["-S", item]
        return cmd


def plan(variants: list[Variant], seeds: list[int], extra: list[str], prefix: str = "rt") -> list[Run]:
    """Every (variant, seed) pair, variants outermost."""
    return [Run(v, s, tuple(extra), prefix) for v in variants for s in seeds]


def parse_override(item: str) -> tuple[list[str], Any]:
    """``a.b=value`` → (["a", "b"], YAML-parsed value), as ``dvc exp run -S`` reads it (``+a.b=value``, Hydra's
    "add a key that params.yaml lacks", alike)."""
    key, sep, value = item.removeprefix("+").partition("=")
    if not sep or not key:
        raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
    return key.split("."), yaml.safe_load(value)


def with_overrides(baseline: dict[str, Any], overrides: tuple[str, ...]) -> dict[str, Any]:
    """``baseline`` (a params.yaml as data) with every ``-S`` override applied, as ``dvc exp run`` would write it."""
    out = copy.deepcopy(baseline)
    for item in overrides:
        keys, value = parse_override(item)
        node = out
        for part in keys[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SystemExit(f"override {item!r}: {'.'.join(keys)} goes through a value that is not a section")
        node[keys[-1]] = value
    return out


def matches(params: dict[str, Any], overrides: tuple[str, ...], baseline: dict[str, Any]) -> bool:
    """Whether an experiment's params.yaml is exactly ``baseline`` with ``overrides``: a run made before any
    other params change (a new default model, say) is stale even where it holds every override."""
    return params == with_overrides(baseline, overrides)


def exp_records(show: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``dvc exp show --json`` → {experiment name: {"params", "metrics", "state"}}."""
    out: dict[str, dict[str, Any]] = {}
    for baseline in show:
        for exp in baseline.get("experiments") or []:
            rev = exp["revs"][0]
            data = rev.get("data") or {}
            out[rev["name"]] = {
                "params": (data.get("params") or {}).get("params.yaml", {}).get("data", {}),
                "metrics": {p: m.get("data", {}) for p, m in (data.get("metrics") or {}).items()},
                "state": (exp.get("executor") or {}).get("state", "success"),
            }
    return out


def mean_std(values: list[float]) -> str:
    """``mean ± sample std`` (ddof = 1); the bare value for a single run."""
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def summarize(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per variant: its command, seeds, and the test metrics of each finished run."""
    rows = []
    for variant in dict.fromkeys(r.variant for r in runs):
        mine = [r for r in runs if r.variant == variant]
        done = [r for r in mine if r.metrics]
        shown = " ".join(["dvc exp run", *(f"-S {o}" for o in (*mine[0].extra, *variant.overrides)),
                          "-S base.seed=<seed>"])
        rows.append({
            "variant": variant.name, "label": variant.label, "command": shown,
            "seeds": [r.seed for r in done], "missing_seeds": [r.seed for r in mine if not r.metrics],
            "accuracy": [r.metrics["accuracy"] for r in done],
            "macro_f1": [r.metrics["macro_f1"] for r in done],
            "per_class_f1": {c: [r.metrics["per_class"][c]["f1"] for r in done]
                             for c in (done[0].metrics["per_class"] if done else {})},
            "experiments": [r.name for r in done],
        })
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| variant | test accuracy | test macro-F1 | seeds | command |", "|---|---|---|---|---|"]
    for row in rows:
        seeds = ", ".join(map(str, row["seeds"])) or "none finished"
        lines.append(f"| {row['label']} | {mean_std(row['accuracy'])} | {mean_std(row['macro_f1'])} | {seeds} "
                     f"| `{row['command']}` |")
    return "\n".join(lines)


def _dvc(*args: str, capture: bool = True) -> str:
    proc = subprocess.run(["dvc", *args], text=True, capture_output=capture)
    if proc.returncode != 0:
        raise SystemExit(f"`dvc {' '.join(args)}` failed ({proc.returncode}):\n{proc.stdout or ''}{proc.stderr or ''}")
    return proc.stdout or ""


def queue_states() -> dict[str, str]:
    """Task name → status from ``dvc queue status``. The status list keeps finished tasks of earlier runs under
    the same names, so a name with any queued or running task is busy whatever its older tasks say."""
    states: dict[str, str] = {}
    for line in _dvc("queue", "status").splitlines():
        m = re.match(r"^\s*[0-9a-f]{7,}\s+(\S+)\s+.*\b(Queued|Running|Success|Failed)\s*$", line)
        if m and states.get(m.group(1)) not in BUSY:
            states[m.group(1)] = m.group(2)
    return states


BUSY = ("Queued", "Running")


def execute(runs: list[Run], jobs: int, poll_s: float) -> None:
    """Queue what is not already done, run the queue, and attach each run's test metrics."""
    # every commit's experiments: a run finished before the last commit is reused if its params match
    existing = exp_records(json.loads(_dvc("exp", "show", "--json", "--all-commits")))
    baseline = yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))  # committed: check_committed_params
    todo = []
    for run in runs:
        rec = existing.get(run.name)
        if rec and rec["state"] == "success" and METRICS_FILE in rec["metrics"] and matches(rec["params"],
                                                                                              run.overrides, baseline):
            print(f"reusing finished experiment {run.name}")
            continue
        if rec:
            print(f"removing stale experiment {run.name} (other params or unfinished)")
            _dvc("exp", "remove", run.name)
        _dvc(*run.command(queue=True)[1:])
        todo.append(run.name)
    if todo:
        print(f"queued {len(todo)} experiment(s); running them with `dvc queue start -j {jobs}`", flush=True)
        # not captured: the detached queue workers inherit the command's stdout, and a captured pipe would keep
        # this call waiting until they exit (they idle on after the queue is empty)
        _dvc("queue", "start", "-j", str(jobs), capture=False)
        idle_polls = 0
        while True:
            states = {n: s for n, s in queue_states().items() if n in todo}
            busy = [n for n, s in states.items() if s in BUSY]
            done = len(todo) - len(busy)
            print(f"  {done}/{len(todo)} finished", flush=True)
            if not busy:
                break
            # a queue worker can exit mid-batch and leave tasks queued with nothing running: start another
            idle_polls = 0 if "Running" in states.values() else idle_polls + 1
            if idle_polls >= 2:
                print(f"  no experiment running with {len(busy)} queued: restarting the queue worker", flush=True)
                _dvc("queue", "start", "-j", str(jobs), capture=False)
                idle_polls = 0
            time.sleep(poll_s)
        _dvc("queue", "stop")  # the idle workers
    records = exp_records(json.loads(_dvc("exp", "show", "--json", "--all-commits")))
    for run in runs:
        rec = records.get(run.name)
        if rec and rec["state"] == "success" and METRICS_FILE in rec["metrics"]:
            run.metrics = rec["metrics"][METRICS_FILE]
            run.all_metrics = rec["metrics"]


def recipe_parser(description: str, variants: list[str], prefix: str, json_out: str, poll_s: float = 20.0,
                  seeds: tuple[int, ...] = DEFAULT_SEEDS) -> argparse.ArgumentParser:
    """The command line of a results script: which variants and seeds, overrides, queue jobs, output."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default=",".join(variants), help="comma-separated subset of the variants")
    parser.add_argument("--seeds", default=",".join(map(str, seeds)), help="comma-separated base.seed values")
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                        help="param override applied to every run (repeatable), e.g. train.epochs=2")
    parser.add_argument("--jobs", type=int, default=1, help="experiments run in parallel (dvc queue start -j)")
    parser.add_argument("--prefix", default=prefix, help="experiment name prefix")
    parser.add_argument("--json", dest="json_out", default=json_out, help="where to write the results")
    parser.add_argument("--poll", type=float, default=poll_s, help="seconds between queue status checks")
    return parser


def select_runs(parser: argparse.ArgumentParser, args: argparse.Namespace,
                variants: tuple[Variant, ...]) -> tuple[list[Run], list[int]]:
    """The (variant, seed) runs the arguments ask for; bad variants, overrides or seeds are parser errors."""
    by_name = {v.name: v for v in variants}
    unknown = [n for n in args.variants.split(",") if n not in by_name]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {sorted(by_name)}")
    for item in args.extra:
        parse_override(item)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError:
        parser.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    return plan([by_name[n] for n in args.variants.split(",")], seeds, args.extra, args.prefix), seeds


def check_committed_params(parser: argparse.ArgumentParser) -> None:
    """Queued experiments start from the workspace: params.yaml must be the committed one."""
    if subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "params.yaml"]).returncode != 0:
        parser.error("params.yaml differs from HEAD: queued experiments would inherit those edits. Commit them, "
                     "or restore the baseline with `git restore params.yaml`")


def run_recipe_variants(parser: argparse.ArgumentParser, args: argparse.Namespace, variants: tuple[Variant, ...],
                        recipe: str, marker: str) -> tuple[list[Run], list[int]]:
    """Check the arguments and the recipe's committed params.yaml (which holds ``marker``), then run every
    (variant, seed) through :func:`execute`; returns the runs, metrics attached, and the seeds."""
    runs, seeds = select_runs(parser, args, variants)
    if not Path("params.yaml").is_file() or marker not in Path("params.yaml").read_text():
        parser.error(f"run from recipes/{recipe}")
    check_committed_params(parser)
    execute(runs, args.jobs, args.poll)
    return runs, seeds


def main(argv: list[str] | None = None) -> int:
    parser = recipe_parser(__doc__, [v.name for v in VARIANTS], "rt", "results_table.json", poll_s=15.0)
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    runs, seeds = select_runs(parser, args, VARIANTS)

    if args.dry_run:
        for run in runs:
            print(" ".join(run.command(queue=True)))
        print(f"dvc queue start -j {args.jobs}")
        return 0
    if not Path("dvc.yaml").is_file():
        parser.error("run from the repository root (no dvc.yaml here)")
    check_committed_params(parser)

    execute(runs, args.jobs, args.poll)
    rows = summarize(runs)
    Path(args.json_out).write_text(json.dumps({"seeds": seeds, "extra_overrides": args.extra, "rows": rows},
                                              indent=2) + "\n", encoding="utf-8")
    print()
    print(markdown(rows))
    print(f"\nwrote {args.json_out}")
    failed = [r.name for r in runs if not r.metrics]
    if failed:
        print(f"experiments without results: {', '.join(failed)} (see `dvc queue logs <name>`)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
