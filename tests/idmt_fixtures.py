"""A tiny IDMT-SMT-Guitar-shaped tree: XML annotations and synthesized WAVs, with the archive's quirks.

Layout (as in the public archive):

    dataset1/<guitar setup>/{audio,annotation}/   single notes, one file each
    dataset2/{audio,annotation}/                   licks (several notes per file)
    dataset3/{audio,annotation}/                   a longer piece

Quirks reproduced: ``audioFileName`` with a leading backslash or an outdated name, an annotation
whose stem carries an extra suffix, an annotation without audio and audio without annotation.
Every group (setup, lick, piece) holds all three classes, so any grouped split keeps every class.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from fretlab.params import Synthesize
from fretlab.synth.guitar import OPEN_STRINGS, draw_note, make_guitar, render_file

SETUPS = ("Fender Strat Clean Neck SC", "Ibanez Power Strat Clean Bridge HU", "Career SG Clean Bridge HU")
SETUP_LABELS = ("general_note", "harmonic", "dead_note", "general_note", "harmonic", "dead_note")
LICK_LABELS = ("general_note", "harmonic", "dead_note", "general_note")
PIECE_LABELS = ("general_note", "dead_note", "harmonic", "general_note", "dead_note", "harmonic")
SR = 44100


def write_annotation(path: Path, audio_file_name: str, events: list[dict[str, Any]]) -> None:
    """An IDMT-style XML annotation (``instrumentRecording`` / ``globalParameter`` / ``transcription``)."""
    root = ET.Element("instrumentRecording")
    glob = ET.SubElement(root, "globalParameter")
    for tag, text in (("audioFileName", audio_file_name), ("instrument", "EG"),
                      ("instrumentModel", "Fender Stratocaster"), ("pickUpSetting", "Neck"),
                      ("instrumentTuning", "40 45 50 55 59 64")):
        ET.SubElement(glob, tag).text = text
    trans = ET.SubElement(root, "transcription")
    for ev in events:
        node = ET.SubElement(trans, "event")
        for tag in ("pitch", "onsetSec", "offsetSec", "fretNumber", "stringNumber", "excitationStyle",
                    "expressionStyle"):
            ET.SubElement(node, tag).text = str(ev[tag])
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def render_take(labels: tuple[str, ...], seed: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Synthetic audio (44.1 kHz) of notes of ``labels`` in a row, and their IDMT-style events."""
    cfg = Synthesize(sample_rate=SR)
    rng = np.random.default_rng(seed)
    notes = [draw_note(label, cfg, rng) for label in labels]
    audio, times = render_file(notes, make_guitar(seed % 7, rng), cfg, seed)
    events = [{
        "pitch": n.pitch, "onsetSec": round(on, 4), "offsetSec": round(off, 4),
        "fretNumber": max(0, n.pitch - OPEN_STRINGS[n.string]), "stringNumber": 6 - n.string,
        "excitationStyle": n.excitation, "expressionStyle": n.style, "label": n.label,
    } for n, (on, off) in zip(notes, times, strict=True)]
    return audio, events


def _recording(root: Path, part: Path, stem: str, labels: tuple[str, ...], seed: int, group: str,
               xml_stem: str | None = None, audio_file_name: str | None = None) -> list[dict[str, Any]]:
    audio, events = render_take(labels, seed)
    wav = root / part / "audio" / f"{stem}.wav"
    wav.parent.mkdir(parents=True, exist_ok=True)
    sf.write(wav, audio, SR, subtype="PCM_16")
    write_annotation(root / part / "annotation" / f"{xml_stem or stem}.xml",
                     audio_file_name if audio_file_name is not None else f"{stem}.wav", events)
    return [{"audio_path": (part / "audio" / f"{stem}.wav").as_posix(), "onset_sec": ev["onsetSec"],
             "offset_sec": ev["offsetSec"], "pitch_midi": float(ev["pitch"]), "expression_style": ev["expressionStyle"],
             "label_category": ev["label"], "group": group} for ev in events]


def make_idmt_tree(root: Path) -> dict[str, Any]:
    """Write the tree under ``root``; return the expected metadata rows and the unpaired files."""
    expected: list[dict[str, Any]] = []
    seed = 100
    for s, setup in enumerate(SETUPS):
        part = Path("dataset1") / setup
        for k, label in enumerate(SETUP_LABELS):
            seed += 1
            stem = f"G{s + 1}-{40100 + k}-1111-{k + 1:05d}"
            quirk = {0: f"\\{stem}.wav", 1: f"old_take_{k}.wav"}.get(k)  # leading backslash, outdated name
            expected += _recording(root, part, stem, (label,), seed, f"dataset1/{setup}", audio_file_name=quirk)
    for i, (stem, xml_stem) in enumerate((("AR_Lick1_FN", None), ("AR_Lick2_KN", "AR_Lick2_KN_corrected"),
                                          ("FS_Lick3_FN", None))):
        rec = f"dataset2/audio/{stem}"
        expected += _recording(root, Path("dataset2"), stem, LICK_LABELS, 500 + i, rec, xml_stem=xml_stem)
    expected += _recording(root, Path("dataset3"), "nocturne_take1", PIECE_LABELS, 900,
                           "dataset3/audio/nocturne_take1")
    # unpairable files: an annotation without audio, audio without annotation
    write_annotation(root / "dataset2/annotation/XX_Lick9_missing.xml", "XX_Lick9_missing.wav",
                     [{"pitch": 60, "onsetSec": 0.1, "offsetSec": 0.5, "fretNumber": 5, "stringNumber": 3,
                       "excitationStyle": "PK", "expressionStyle": "NO"}])
    sf.write(root / "dataset3/audio/unannotated_jam.wav", np.zeros(SR // 4, dtype=np.float32), SR)
    (root / "dataset2/readme.txt").write_text("not audio, not an annotation\n")
    return {
        "rows": expected,
        "unpaired": ["dataset2/annotation/XX_Lick9_missing.xml", "dataset3/audio/unannotated_jam.wav"],
        "groups": sorted({r["group"] for r in expected}),
    }
