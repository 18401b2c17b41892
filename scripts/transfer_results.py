"""Sim-to-real table: the default model's check-set figures over seeds, and what each generator change adds.

Run from the repository root with a committed params.yaml. Each variant is a set of overrides of the params.yaml
it runs from, so a variant's meaning moves with the default; the JSON files under docs/results/ name the commit
and default they were run at (docs/synthesis.md). Each (variant, seed) is one named, queued
experiment (``tr-<variant>-s<seed>``, ``scripts/results_table.py``'s machinery); seeds go through
``base.seed``, which drives synthesis, the split and training. The check set itself is rendered without
randomness and never trained on, so every run is scored on the same 408 notes (TimGM6mb; more when
Debian's soundfonts are installed). Finished experiments are reused.

    python scripts/transfer_results.py                                   # default x 42 43 44
    python scripts/transfer_results.py --variants default,no-effects,class-weights      # the README's ablation
    python scripts/transfer_results.py --variants no-basses,short-one-shots,old-harmonics --seeds 42
    python scripts/transfer_results.py --variants default,no-envelope,old-harmonic-sustain   # the envelope ablation

Variants that only restate the default are removed when it changes: the rows of docs/results/*.json name the
variants of their time (``pure-harmonics``, ``pure-more-instruments``, ``pure-loud-slaps``, ``pure-slow-swells``
and ``more-instruments`` were run on the default before 2026-12-07, which the current default adopted;
``high-nodes`` (nodes 2-8) was run on the default of the afternoon of 2026-12-07 and is the default since;
``loud-slaps``, ``mutes-slaps`` and ``swells-mutes-nodes`` on nodes 2-8, before the louder slaps and shorter palm
mutes became the default in the evening of 2026-12-07; ``ema``, ``ema-frets-24``, ``ema-frets-22`` and
``ema-more-instruments``, which are ``default``, ``frets-24``, ``frets-22`` and ``more-notes`` since the EMA
weights became the default that night; ``uniform-pitch-20``, the default since 2026-12-08, and
``uniform-pitch-20-harmonics-20`` and ``uniform-pitch-20-mixup``, which are ``harmonics-20`` and ``mixup`` since;
``uniform-pitch`` (24 frets, uniform pitch) is ``frets-24`` since).

Writes ``--json`` (every figure per run) and prints the markdown table for docs/synthesis.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from results_table import Run, Variant, check_committed_params, execute, mean_std, recipe_parser, select_runs

VARIANTS = (
    Variant("default", "every change on (the default)", ()),
    Variant("no-effects", "no recording chain (amp, EQ, room, codec)", ("synthesize.effects.enabled=false",)),
    Variant("no-basses", "guitars only", ("synthesize.n_basses=0",)),
    Variant("short-one-shots", "one-shots 0.5-1 s, notes <= 1.5 s (the old layout)",
            ("synthesize.snippet_sec=[0.5,1.0]", "synthesize.snippet_onset_sec=[0.02,0.2]",
             "synthesize.sustain_sec=[0.25,1.5]")),
    Variant("old-harmonics", "harmonics at nodes 2-4 only, 2-12 ms attack",
            ("synthesize.harmonic_nodes=[2,3,4]", "synthesize.harmonic_attack_ms=[2.0,12.0]")),
    Variant("class-weights", "balanced class weights in the loss", ("train.class_weights=true",)),
    Variant("two-polarizations", "two-stage decay on", ("synthesize.two_stage_decay=true",)),
    Variant("strongest-onset", "a long note windowed from its strongest onset", ("predict.note_onset_share=1.0",)),
    Variant("no-envelope", "no level-envelope augmentation (tilt and fade-in off)",
            ("train.augment.tilt_db=0.0", "train.augment.fade_in_ms=0.0")),
    Variant("no-fade", "envelope tilt only, no fade-in", ("train.augment.fade_in_ms=0.0",)),
    Variant("fade-120", "fade-ins up to 120 ms", ("train.augment.fade_in_ms=120.0",)),
    Variant("old-harmonic-sustain", "harmonics ring 0.7-3 s, fretted notes 0.25-3 s (before)",
            ("synthesize.harmonic_sustain_sec=null",)),
    Variant("before-envelope", "the previous default: no envelope augmentation, harmonics ring 0.7-3 s",
            ("train.augment.tilt_db=0.0", "train.augment.fade_in_ms=0.0", "synthesize.harmonic_sustain_sec=null")),
    Variant("fretboard", "24 frets, shorter palm mutes, richer fretted notes (roll-off, damping power 1)",
            ("synthesize.frets=24", "synthesize.palm_mute_sec=[0.05,1.0]",
             "synthesize.palm_mute_decay_sec=[0.015,0.6]", "synthesize.finger_rolloff=[0.9,1.6]",
             "synthesize.pick_rolloff=[0.6,1.2]", "synthesize.damping_power=1.0")),
    Variant("frets-24", "24 frets: fretted notes up to MIDI 88 (with the shorter palm mutes of the default)",
            ("synthesize.frets=24", "synthesize.palm_mute_sec=[0.05,1.0]",
             "synthesize.palm_mute_decay_sec=[0.015,0.6]")),
    Variant("slow-harmonics", "harmonic attacks up to 120 ms, off-node partials ringing up to 1 s",
            ("synthesize.harmonic_attack_ms=[2.0,120.0]", "synthesize.harmonic_touch_decay_sec=[0.004,1.0]")),
    Variant("slow-harmonics-swells", "slow harmonics, and half the driven electric files swell in over 50-300 ms",
            ("synthesize.harmonic_attack_ms=[2.0,120.0]", "synthesize.harmonic_touch_decay_sec=[0.004,1.0]",
             "synthesize.effects.swell_probability=0.5")),
    Variant("impure-harmonics", "harmonic roll-off 1.2-2.8 (before)", ("synthesize.harmonic_rolloff=[1.2,2.8]",)),
    Variant("fewer-instruments", "2000 notes, 20 guitars, 6 basses (before)",
            ("synthesize.n_events=2000", "synthesize.n_guitars=20", "synthesize.n_basses=6")),
    Variant("before-timbre", "the default before 2026-12-07: roll-off 1.2-2.8, 2000 notes, 20 guitars, 6 basses",
            ("synthesize.harmonic_rolloff=[1.2,2.8]", "synthesize.n_events=2000", "synthesize.n_guitars=20",
             "synthesize.n_basses=6")),
    Variant("swells", "half the driven electric files swell in over 50-300 ms",
            ("synthesize.effects.swell_probability=0.5",)),
    Variant("before-mutes-slaps", "the slap click and palm mutes before 2026-12-07 evening (1x click, mutes >= 80 ms)",
            ("synthesize.slap_click_gain=1.0", "synthesize.palm_mute_sec=[0.08,1.0]",
             "synthesize.palm_mute_decay_sec=[0.04,0.6]")),
    Variant("nodes-2-6", "harmonics at nodes 2-6 only, up to MIDI 95 (before the evening of 2026-12-07)",
            ("synthesize.harmonic_nodes=[2,3,4,5,6]",)),
    Variant("clean-50", "half the training examples made clean: log-mel cells 40-70 dB below the peak to the floor",
            ("train.augment.gate_probability=0.5",)),
    Variant("no-ema", "the last step's weights, not their moving average (before the night of 2026-12-07)",
            ("train.ema_decay=null",)),
    Variant("ema-999", "a longer weight average: decay 0.999 (about 1000 steps, 9 epochs; 0.998 by default)",
            ("train.ema_decay=0.999",)),
    Variant("frets-22", "22 frets: fretted notes up to MIDI 86 (84 at 20 frets)", ("synthesize.frets=22",)),
    Variant("more-notes", "1.5x the notes and instruments (6000 notes, 60 guitars, 18 basses)",
            ("synthesize.n_events=6000", "synthesize.n_guitars=60", "synthesize.n_basses=18")),
    Variant("bright-mutes", "brighter palm mutes: low-pass corner 0.3-1.0 of the instrument's (was 0.15-0.45)",
            ("synthesize.palm_mute_brightness=[0.3,1.0]",)),
    Variant("bright-clean-mutes", "brighter palm mutes (0.3-1.0), pick noise 0.02-0.15 of the peak (was 0.08-0.4)",
            ("synthesize.palm_mute_brightness=[0.3,1.0]", "synthesize.palm_mute_noise=[0.02,0.15]")),
    Variant("string-pitch", "a string, then a fret (before 2026-12-08): guitar notes at MIDI 81-83 6.7 % -> 2.5 %",
            ("synthesize.pitch_sampling=string",)),
    Variant("harmonics-20", "20 % harmonics (65 % general notes)",
            ("synthesize.class_fractions.harmonic=0.2", "synthesize.class_fractions.general_note=0.65")),
    Variant("plucked-harmonics", "harmonics plucked 0.06-0.3 of the string from the bridge: the pluck point's comb",
            ("synthesize.harmonic_pluck_position=[0.06,0.3]",)),
    Variant("freq-masks", "SpecAugment frequency masks in training: one band of up to 8 of the 64 mel bins",
            ("train.augment.freq_mask=8",)),
    Variant("mixup", "mixup in training: pairs of examples and their labels blended, lambda ~ Beta(0.2, 0.2)",
            ("train.augment.mixup_alpha=0.2",)),
    Variant("wide-snr", "hum and hiss 12-80 dB below the note (was 12-40): some files as clean as a sample library",
            ("synthesize.snr_db=[12.0,80.0]",)),
)
CHECKSET_FILE = "checkset/metrics.json"
TEST_FILE = "metrics/test.json"


def figures(run: Run) -> dict[str, float]:
    """Synthetic test macro-F1 and the check set's headline figures of one finished run."""
    check = run.all_metrics.get(CHECKSET_FILE, {})
    out = {"synthetic test macro-F1": run.all_metrics[TEST_FILE]["macro_f1"]}
    if check:
        out |= {"check macro-F1": check["macro_f1"], "check accuracy": check["accuracy"],
                "harmonic recall": check["per_class"]["harmonic"]["recall"],
                "general-note recall": check["per_class"]["general_note"]["recall"]}
    return out


def summarize(runs: list[Run]) -> dict[str, Any]:
    """Per variant: every figure over the seeds that finished, and per-instrument check-set accuracy."""
    out: dict[str, Any] = {}
    for variant in dict.fromkeys(r.variant for r in runs):
        done = [r for r in runs if r.variant == variant and r.metrics]
        per_run = [figures(r) for r in done]
        groups = [r.all_metrics.get(CHECKSET_FILE, {}).get("per_group", {}) for r in done]
        out[variant.name] = {
            "label": variant.label, "seeds": [r.seed for r in done], "experiments": [r.name for r in done],
            "command": " ".join(["dvc exp run", *(f"-S {o}" for o in variant.overrides), "-S base.seed=<seed>"]),
            "figures": {k: [f[k] for f in per_run] for k in (per_run[0] if per_run else {})},
            "per_group_accuracy": {g: [p[g]["accuracy"] for p in groups if g in p]
                                   for g in (groups[0] if groups else {})},
        }
    return out


def markdown(summary: dict[str, Any]) -> str:
    """One row per variant: mean ± std over seeds of each figure."""
    names = next((list(v["figures"]) for v in summary.values() if v["figures"]), [])
    lines = ["| variant | seeds | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for v in summary.values():
        cells = [mean_std(v["figures"].get(n, [])) for n in names]
        lines.append(f"| {v['label']} | {', '.join(map(str, v['seeds'])) or 'none'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = recipe_parser(__doc__, ["default"], "tr", "docs/results/transfer.json", poll_s=30.0)
    args = parser.parse_args(argv)
    runs, seeds = select_runs(parser, args, VARIANTS)
    if not Path("dvc.yaml").is_file() or "checkset" not in Path("params.yaml").read_text():
        parser.error("run from the repository root")
    check_committed_params(parser)
    execute(runs, args.jobs, args.poll)
    summary = summarize(runs)
    Path(args.json_out).write_text(json.dumps({"seeds": seeds, "extra_overrides": args.extra, "variants": summary},
                                              indent=2) + "\n", encoding="utf-8")
    print(markdown(summary))
    print(f"\nwrote {args.json_out}")
    return 0 if all(r.metrics for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
