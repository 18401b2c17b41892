"""What tells a harmonic apart, on the check set and in the generator: pitch register and spectral purity.

Two measurements, both printed as tables and written to ``--json``:

- ``spectra``: per check-set program (and per class of a rendered synthetic dataset, ``--synthetic``), the
  medians of where a note sounds (MIDI; GM harmonics sound 24 semitones above their key), how pure it is (share of
  the power within 3 % of the strongest peak; level of the partial an octave above the sounding pitch, dB, over
  0.1-0.6 s), when its level peaks and how far it decays from 0.15 s to 0.9 s.
- ``bands`` (``--experiments PREFIX ...``): for every finished ``dvc exp`` whose name starts with a prefix,
  check-set harmonic recall for harmonics sounding at or below / above ``--top`` (the highest fretted note of the
  generator), and the share of fretted notes called ``harmonic`` below / at or above ``--high-key``.

    python scripts/checkset_pitch_probe.py --synthetic data/synthetic --experiments tr-before tr-old-timbre \\
        --json docs/results/checkset_pitch.json
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import soundfile as sf

SR = 22050
HARMONIC_KEY_OFFSET = 24  # a GM "guitar harmonics" note sounds two octaves above its key


def note_profile(path: Path, onset: float, pitch: float) -> dict[str, float]:
    """Purity and envelope of one note sounding at MIDI ``pitch``, from its onset."""
    y, sr = sf.read(path, dtype="float32", always_2d=True)
    y = librosa.resample(y.mean(axis=1)[int(onset * sr): int((onset + 1.0) * sr)], orig_sr=sr, target_sr=SR)
    rms = librosa.feature.rms(y=y, frame_length=512, hop_length=256)[0]
    level = 20 * np.log10(rms / (rms.max() + 1e-12) + 1e-6)
    frame = lambda t: min(int(t * SR / 256), level.size - 1)  # noqa: E731
    seg = y[int(0.1 * SR): int(0.6 * SR)]
    seg = np.pad(seg, (0, max(0, 4096 - seg.size)))  # a short note: zero-padded to one FFT frame
    power = (np.abs(librosa.stft(seg, n_fft=4096, hop_length=1024)) ** 2).mean(axis=1)
    freqs = librosa.fft_frequencies(sr=SR, n_fft=4096)
    power[freqs < 30] = 0.0
    peak, f0 = freqs[np.argmax(power)], librosa.midi_to_hz(pitch)
    band = lambda f: power[(freqs > 0.97 * f) & (freqs < 1.03 * f)].sum()  # noqa: E731
    return {"peak_share": float(band(peak) / (power.sum() + 1e-20)),
            "octave_db": float(10 * np.log10((band(2 * f0) + 1e-20) / (band(f0) + 1e-20))),
            "t_peak_sec": float(np.argmax(rms) * 256 / SR), "decay_db": float(level[frame(0.9)] - level[frame(0.15)])}


def spectra(meta: pd.DataFrame, root: Path, by: str, limit: int | None = None) -> pd.DataFrame:
    """Median note profile per value of metadata column ``by`` (the first ``limit`` notes of each)."""
    if limit:
        meta = meta.groupby(by).head(limit)
    rows = [{by: key, "sounding_midi": pitch, **note_profile(root / path, onset, pitch)}
            for key, path, onset, pitch in zip(meta[by], meta.audio_path, meta.onset_sec, meta.sounding, strict=True)]
    return pd.DataFrame(rows).groupby(by).median().round(2)


def pitch_bands(prefixes: list[str], checkset: Path, top: int, high_key: int) -> pd.DataFrame:
    """Per finished experiment: harmonic recall by register and false harmonics by key, from its confusion CSV."""
    meta = pd.read_csv(checkset / "metadata.csv")[["note_id", "pitch_midi"]]
    refs = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], capture_output=True,
                          text=True, check=True).stdout.split()
    rows = []
    for ref in sorted(r for r in refs if r.rsplit("/", 1)[-1].startswith(tuple(prefixes))):
        text = subprocess.run(["git", "show", f"{ref}:checkset/confusion.csv"], capture_output=True, text=True).stdout
        if not text:
            continue
        conf = pd.read_csv(io.StringIO(text)).merge(meta, on="note_id")
        harm, fretted = conf[conf.actual == "harmonic"], conf[conf.actual == "general_note"]
        sounding = harm.pitch_midi + HARMONIC_KEY_OFFSET
        called = lambda d: float((d.predicted == "harmonic").mean())  # noqa: E731
        rows.append({"experiment": ref.rsplit("/", 1)[-1],
                     f"harmonic recall, sounding <= {top}": called(harm[sounding <= top]),
                     f"harmonic recall, sounding > {top}": called(harm[sounding > top]),
                     f"fretted called harmonic, key < {high_key}": called(fretted[fretted.pitch_midi < high_key]),
                     f"fretted called harmonic, key >= {high_key}": called(fretted[fretted.pitch_midi >= high_key])})
    return pd.DataFrame(rows).round(3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkset", type=Path, default=Path("data/checkset"), help="rendered check set")
    parser.add_argument("--synthetic", type=Path, default=None, help="a rendered synthetic dataset to profile too")
    parser.add_argument("--per-class", type=int, default=150, help="synthetic one-shots profiled per class")
    parser.add_argument("--experiments", nargs="*", default=[], help="dvc exp name prefixes for the pitch bands")
    parser.add_argument("--top", type=int, default=84, help="highest fretted MIDI pitch of the generator")
    parser.add_argument("--high-key", type=int, default=76, help="fretted check-set keys from here count as high")
    parser.add_argument("--json", type=Path, default=None, help="write every table here")
    args = parser.parse_args()

    out: dict[str, dict] = {}
    meta = pd.read_csv(args.checkset / "metadata.csv")
    meta["sounding"] = meta.pitch_midi + np.where(meta.label_category == "harmonic", HARMONIC_KEY_OFFSET, 0)
    check = spectra(meta[meta.velocity == meta.velocity.max()], args.checkset, "group")
    print("check set, per program (loudest velocity):\n" + check.to_string() + "\n")
    out["checkset_spectra"] = check.to_dict(orient="index")
    if args.synthetic:
        meta = pd.read_csv(args.synthetic / "metadata.csv")
        meta = meta[meta.note_id.str.endswith("_00")].assign(kind=meta.label_category + "/" + meta.excitation_style,
                                                             sounding=meta.pitch_midi)
        synth = spectra(meta, args.synthetic, "kind", args.per_class)
        print("synthetic, first note of each file, per class/excitation:\n" + synth.to_string() + "\n")
        out["synthetic_spectra"] = synth.to_dict(orient="index")
    if args.experiments:
        bands = pitch_bands(args.experiments, args.checkset, args.top, args.high_key)
        print(bands.to_string(index=False))
        out["pitch_bands"] = bands.to_dict(orient="records")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
