"""The real-sampled check set: single notes rendered from General MIDI soundfonts (evaluation only).

Each GM guitar and bass program listed in ``checkset.programs`` is played with TinySoundFont
(``tinysoundfont``) across its pitch range at a few velocities, one WAV per note, held for
``note_sec`` and followed by its ``release_sec`` release tail, as sample libraries ship a note.
Rendering is pure computation (no randomness, no clock): the same params and soundfonts give the
same bytes. See docs/checkset.md for what the set can and cannot show.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from fretlab.io import atomic_path
from fretlab.params import Checkset

PACKAGE_PREFIX = "pretty_midi:"  # 'pretty_midi:TimGM6mb.sf2': a file inside the installed pretty_midi package
GM_BANK = 0  # General MIDI melodic programs live in bank 0
CHANNEL = 0
STEREO = 2
# IDMT-SMT-Guitar expression-style codes, as in the synthetic metadata; every other label is a normal note
LABEL_STYLES = {"harmonic": "HA", "dead_note": "DN"}
METADATA_COLUMNS = ("note_id", "audio_path", "onset_sec", "offset_sec", "pitch_midi", "expression_style",
                    "label_category", "group", "soundfont", "program", "program_name", "velocity")


class CheckSetError(ValueError):
    """A check-set configuration that cannot be rendered (labels, soundfonts)."""


def resolve_soundfont(entry: str) -> Path:
    """The file a ``checkset.soundfonts`` entry names: a path, or ``pretty_midi:<file>`` inside that package."""
    if entry.startswith(PACKAGE_PREFIX):
        spec = importlib.util.find_spec("pretty_midi")  # its location only: importing it would load mido
        if spec is None or spec.origin is None:
            return Path(entry)  # not installed: reported as missing
        return Path(spec.origin).parent / entry.removeprefix(PACKAGE_PREFIX)
    return Path(entry).expanduser()


@dataclass
class SoundfontSearch:
    """The soundfonts found (by short name) and the entries that are not there."""

    found: dict[str, Path] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # a second file with a name already used


def find_soundfonts(entries: list[str]) -> SoundfontSearch:
    """Look up each entry in order; the short name (file stem) becomes the ``group`` prefix."""
    search = SoundfontSearch()
    for entry in entries:
        path = resolve_soundfont(entry)
        if not path.is_file():
            search.missing.append(entry)
        elif path.stem in search.found:  # e.g. Debian's TimGM6mb.sf2 next to pretty_midi's own copy
            search.duplicates.append(entry)
        else:
            search.found[path.stem] = path
    return search


def render_note(synth: Any, sfid: int, program: int, pitch: int, velocity: int, sample_rate: int,
                note_sec: float, release_sec: float) -> np.ndarray:
    """One note as mono float32: key down for ``note_sec``, then ``release_sec`` of release tail.

    The soundfont is reset first, so a note never hears the tail of the one before: each note is
    what a fresh synthesizer gives, whatever was rendered earlier.
    """
    synth.soundfonts[sfid].reset()
    synth.program_select(CHANNEL, sfid, GM_BANK, program)
    synth.noteon(CHANNEL, pitch, velocity)
    held = np.frombuffer(synth.generate(round(note_sec * sample_rate)), dtype=np.float32)
    synth.noteoff(CHANNEL, pitch)
    tail = np.frombuffer(synth.generate(round(release_sec * sample_rate)), dtype=np.float32)
    stereo = np.concatenate([held, tail]).reshape(-1, STEREO)
    return stereo.mean(axis=1, dtype=np.float32)


def pitches(pitch_range: tuple[int, int], step: int) -> list[int]:
    """Every ``step``-th MIDI pitch from the bottom of ``pitch_range``, inclusive."""
    return list(range(pitch_range[0], pitch_range[1] + 1, step))


def check_labels(cfg: Checkset, classes: list[str]) -> None:
    """Every program's label must be one of the model's classes."""
    unknown = sorted({p.label for p in cfg.programs.values()} - set(classes))
    if unknown:
        raise CheckSetError(f"checkset.programs use labels {unknown} that are not in data.classes {classes}; "
                            "fix the labels in params.yaml or set checkset.enabled: false")


def render_checkset(cfg: Checkset, classes: list[str], sample_rate: int,
                    out_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Render every soundfont x program x pitch x velocity into ``out_dir``; return metadata and a summary.

    Programs a soundfont lacks and notes that render silent (a preset with no sample at that key)
    are left out and listed in the summary, as are the soundfonts that were not found.
    """
    import tinysoundfont  # here: only this stage needs it

    check_labels(cfg, classes)
    search = find_soundfonts(cfg.soundfonts)
    if not search.found:
        raise CheckSetError(f"no soundfont found among checkset.soundfonts {cfg.soundfonts}; install pretty_midi "
                            "(requirements.txt) or add the path of a General MIDI .sf2 file")
    floor = 10 ** (cfg.silence_db / 20)
    rows: list[dict[str, Any]] = []
    lacking: dict[str, list[int]] = {}
    silent: list[str] = []
    for name, path in search.found.items():
        synth = tinysoundfont.Synth(samplerate=sample_rate)
        sfid = synth.sfload(str(path))
        for program, spec in sorted(cfg.programs.items()):
            preset = synth.sfpreset_name(sfid, GM_BANK, program)
            if preset is None:
                lacking.setdefault(name, []).append(program)
                continue
            for pitch in pitches(spec.pitch_range, cfg.pitch_step):
                for velocity in cfg.velocities:
                    note_id = f"{name}_{program:03d}_{pitch:03d}_v{velocity:03d}"
                    wave = render_note(synth, sfid, program, pitch, velocity, sample_rate, cfg.note_sec,
                                       cfg.release_sec)
                    peak = float(np.abs(wave).max()) if wave.size else 0.0
                    if peak < floor:
                        silent.append(note_id)
                        continue
                    if peak > 1.0:  # loud presets at high velocity exceed full scale; PCM would clip
                        wave = wave / np.float32(peak)
                    rel = Path("audio") / name / f"{program:03d}" / f"p{pitch:03d}_v{velocity:03d}.wav"
                    target = out_dir / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with atomic_path(target) as tmp:
                        sf.write(tmp, wave, sample_rate, subtype="PCM_16", format="WAV")
                    rows.append({
                        "note_id": note_id, "audio_path": rel.as_posix(), "onset_sec": 0.0,
                        "offset_sec": cfg.note_sec, "pitch_midi": pitch,
                        "expression_style": LABEL_STYLES.get(spec.label, "NO"), "label_category": spec.label,
                        "group": f"{name}/{program}", "soundfont": name, "program": program,
                        "program_name": spec.name or preset, "velocity": velocity,
                    })
    meta = pd.DataFrame(rows, columns=list(METADATA_COLUMNS))
    summary = {
        "enabled": True,
        "sample_rate": sample_rate,
        "n_notes": len(meta),
        "soundfonts_used": {name: str(path) for name, path in search.found.items()},
        "soundfonts_missing": search.missing,
        "soundfonts_duplicate_names": search.duplicates,
        "programs_missing": lacking,
        "silent_notes_skipped": silent,
        "labels": {c: int((meta["label_category"] == c).sum()) for c in classes},
        "classes_absent": [c for c in classes if not (meta["label_category"] == c).any()],
        "groups": {g: int(n) for g, n in meta["group"].value_counts().sort_index().items()},
        "note": "General MIDI has no dead-note programs: the check set holds no dead_note rows, and its "
                "macro-F1 is over the classes present",
    }
    return meta, summary


def disabled_summary() -> dict[str, Any]:
    """The summary written when ``checkset.enabled`` is false (the stage's outputs must still exist)."""
    return {"enabled": False, "n_notes": 0}
