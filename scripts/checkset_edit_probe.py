"""What does a trained model key on? Edit check-set notes one way at a time and count the predicted classes.

Each edit changes one property of every note of a check-set group (its length, decay, attack, spectrum, noise or
level) and the model classifies the edited notes as `fretlab predict` would (one note per file). A class share that
moves under an edit shows a cue the model uses; one that does not, a cue it ignores. docs/synthesis.md
("Transfer to real recordings") quotes these tables.

    python scripts/checkset_edit_probe.py models/default --groups FluidR3_GM/34,FluidR3_GM/31 --json probe.json
    python scripts/checkset_edit_probe.py models/default --groups FluidR3_GM/30,TimGM6mb/30 --pitch-range 40 52

Evaluation only: it reads the rendered check set (`dvc repro render_checkset`) and trains nothing.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from pedalboard import HighpassFilter, HighShelfFilter, LowpassFilter, LowShelfFilter, Pedalboard

from fretlab.app.predict import Predictor

Edit = Callable[[np.ndarray], np.ndarray]
ONSET_SHARE = 0.05  # a note starts at the first sample above this share of its peak
FADE_SEC = 0.02


def onset_index(wave: np.ndarray) -> int:
    peak = np.abs(wave).max()
    return int(np.argmax(np.abs(wave) > ONSET_SHARE * peak)) if peak > 0 else 0


def edits(sr: int, seed: int) -> dict[str, Edit]:
    """Name -> edit of one mono note; each keeps the note's onset where it was."""
    rng = np.random.default_rng(seed)

    def truncate(sec: float) -> Edit:
        def edit(w: np.ndarray) -> np.ndarray:
            o, n = onset_index(w), int(sec * sr)
            out = w.copy()
            fade = min(int(FADE_SEC * sr), n)
            seg = out[o + n - fade : o + n]
            out[o + n - fade : o + n] = seg * np.linspace(1, 0, fade)[: len(seg)]
            out[o + n :] = 0
            return out
        return edit

    def decay(tau: float) -> Edit:
        def edit(w: np.ndarray) -> np.ndarray:
            o = onset_index(w)
            out = w.copy()
            out[o:] *= np.exp(-np.arange(len(w) - o) / sr / tau)
            return out
        return edit

    def fade_in(ms: float) -> Edit:
        def edit(w: np.ndarray) -> np.ndarray:
            o, n = onset_index(w), int(ms / 1000 * sr)
            out = w.copy()
            seg = out[o : o + n]
            out[o : o + n] = seg * np.linspace(0, 1, n)[: len(seg)]
            return out
        return edit

    def click(db: float) -> Edit:  # a 5 ms noise burst at the onset: a pick or finger transient
        def edit(w: np.ndarray) -> np.ndarray:
            o, n = onset_index(w), int(0.005 * sr)
            out = w.copy()
            seg = out[o : o + n]
            out[o : o + n] = seg + np.abs(w).max() * 10 ** (db / 20) * rng.standard_normal(len(seg)) * np.linspace(
                1, 0, len(seg))
            return out
        return edit

    def noise(db: float) -> Edit:
        return lambda w: w + np.abs(w).max() * 10 ** (db / 20) * rng.standard_normal(len(w))

    def board(*plugins: object) -> Edit:
        chain = Pedalboard(list(plugins))
        return lambda w: chain(w.astype(np.float32), sr)

    return {"none": lambda w: w, "cut at 0.3 s": truncate(0.3), "cut at 1.0 s": truncate(1.0),
            "decay tau 0.3 s": decay(0.3), "high shelf +12 dB": board(HighShelfFilter(2000.0, 12.0)),
            "low-pass 1.5 kHz": board(LowpassFilter(1500.0)), "high-pass 300 Hz": board(HighpassFilter(300.0)),
            "low shelf +12 dB": board(LowShelfFilter(200.0, 12.0)), "noise -30 dB": noise(-30.0),
            "click -6 dB": click(-6.0), "fade-in 100 ms": fade_in(100.0), "level -20 dB": lambda w: w * 0.1,
            "high-pass 600 Hz": board(HighpassFilter(600.0)), "low-pass 3 kHz": board(LowpassFilter(3000.0))}


def probe(predictor: Predictor, root: Path, meta: pd.DataFrame, groups: list[str], seed: int) -> pd.DataFrame:
    """One row per (group, edit): the share of the group's notes predicted as each class."""
    rows = []
    waves_of = {g: [predictor.load(root / rel) for rel in meta.loc[meta["group"] == g, "audio_path"]] for g in groups}
    for name, edit in edits(predictor.cfg.sample_rate, seed).items():
        for group, waves in waves_of.items():
            labels = pd.Series([p.label for p in predictor.predict_notes([edit(w).astype(np.float32) for w in waves])])
            shares = labels.value_counts(normalize=True)
            rows.append({"group": group, "edit": name, "n": len(waves),
                         **{c: round(float(shares.get(c, 0.0)), 3) for c in predictor.classes}})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir")
    parser.add_argument("--checkset", default="data/checkset", help="rendered check set (metadata.csv + WAVs)")
    parser.add_argument("--groups", default="", help="comma-separated check-set groups (soundfont/program); all")
    parser.add_argument("--pitch-range", type=int, nargs=2, metavar=("LO", "HI"), default=None,
                        help="only the notes whose key (pitch_midi) is within LO..HI")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise edits")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    root = Path(args.checkset)
    meta = pd.read_csv(root / "metadata.csv")
    groups = [g for g in args.groups.split(",") if g] or sorted(meta["group"].unique())
    unknown = sorted(set(groups) - set(meta["group"]))
    if unknown:
        parser.error(f"unknown group(s) {unknown}; {root / 'metadata.csv'} holds {sorted(meta['group'].unique())}")
    if args.pitch_range:
        meta = meta[meta["pitch_midi"].between(*args.pitch_range)]
        if not meta["group"].isin(groups).any():
            parser.error(f"no note of {groups} has a key within {args.pitch_range[0]}..{args.pitch_range[1]}")
    table = probe(Predictor(args.model_dir, "cpu"), root, meta, groups, args.seed)
    print(table.pivot_table(index="edit", columns="group", values=table.columns[3:].tolist(), sort=False)
          .round(2).to_string())
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(table.to_dict(orient="records"), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
