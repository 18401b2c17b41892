"""IDMT-SMT-Guitar adapter: ``dataset*/…/{audio,annotation}/`` WAV + XML pairs → the standard metadata.

The archive unpacks to ``dataset1/<guitar setup>/{audio,annotation}/``, ``dataset2/{audio,annotation}/``
and ``dataset3/{audio,annotation}/``. Each XML (root ``instrumentRecording``) lists one ``event`` per
note under ``transcription``. Known quirks handled here:

- ``globalParameter/audioFileName`` is unreliable (a leading backslash, names from an older
  release), so files are paired by stem, never by that field;
- some annotation stems carry an extra suffix after their audio file's stem, so an annotation with
  no exact match pairs with the longest audio stem that prefixes its own;
- every file that cannot be paired is reported (a warning listing them all, and a count); nothing
  pairing at all is an error.

Groups (for leakage-safe splits): the guitar setup folder in ``dataset1`` (each setup holds many
single-note files of one instrument), the recording everywhere else.
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fretlab.data.metadata import MetadataError

STYLE_LABELS = {"HA": "harmonic", "DN": "dead_note"}  # every other expression style is a general note
DEFAULT_LABEL = "general_note"
EVENT_FIELDS = ("pitch", "onsetSec", "offsetSec", "fretNumber", "stringNumber", "excitationStyle", "expressionStyle")
GLOBAL_FIELDS = {"instrument": "instrument", "instrumentModel": "instrument_model", "pickUpSetting": "pickup"}
SETUP_PARTS = ("dataset1",)  # parts whose second path level is a guitar setup (the group)
AUDIO_DIR, ANNOTATION_DIR = "audio", "annotation"


class IdmtError(MetadataError):
    """An IDMT-SMT-Guitar tree or annotation that cannot be read; the message names the file and fix."""


class UnpairedFilesWarning(UserWarning):
    """Audio or annotation files that could not be paired (they are left out of the metadata)."""


@dataclass
class Pairing:
    """Annotation → audio pairs, and every file left unpaired with the reason."""

    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    unpaired: list[tuple[Path, str]] = field(default_factory=list)

    def report(self, root: Path) -> str:
        """A readable list of the unpaired files (paths relative to ``root``)."""
        lines = [f"  - {p.relative_to(root).as_posix()}: {why}" for p, why in sorted(self.unpaired)]
        return f"{len(self.unpaired)} file(s) under {root} could not be paired and are left out:\n" + "\n".join(lines)


def _audio_dir(xml_path: Path) -> Path:
    """Where an annotation's audio lives: the sibling ``audio/`` folder, else the same folder."""
    parent = xml_path.parent
    if parent.name.lower() == ANNOTATION_DIR:
        capital = parent.parent / AUDIO_DIR.capitalize()
        return capital if capital.is_dir() else parent.parent / AUDIO_DIR
    return parent


def _match(stem: str, audio: dict[str, Path]) -> Path | None:
    """The audio file with ``stem``, else the one with the longest stem that prefixes it (extra suffixes)."""
    if stem in audio:
        return audio[stem]
    prefixes = [s for s in audio if stem.startswith(s)]
    return audio[max(prefixes, key=len)] if prefixes else None


def pair_files(root: str | Path) -> Pairing:
    """Pair every ``*.xml`` annotation under ``root`` with its WAV by file stem (see the module notes)."""
    root = Path(root)
    xmls = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() == ".xml")
    wavs = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() == ".wav")
    by_dir: dict[Path, dict[str, Path]] = {}
    for wav in wavs:
        by_dir.setdefault(wav.parent, {})[wav.stem] = wav
    out = Pairing()
    claims: dict[Path, list[Path]] = {}
    for xml in xmls:
        wav = _match(xml.stem, by_dir.get(_audio_dir(xml), {}))
        if wav is None:
            out.unpaired.append((xml, f"annotation without audio (no WAV named {xml.stem}*.wav in "
                                      f"{_audio_dir(xml).relative_to(root).as_posix() or '.'})"))
        else:
            claims.setdefault(wav, []).append(xml)
    for wav in wavs:
        xmls_for = claims.get(wav, [])
        if not xmls_for:
            out.unpaired.append((wav, "audio without annotation"))
            continue
        exact = [x for x in xmls_for if x.stem == wav.stem]
        if len(xmls_for) == 1 or len(exact) == 1:
            chosen = xmls_for[0] if len(xmls_for) == 1 else exact[0]
            out.pairs.append((chosen, wav))
            out.unpaired += [(x, f"another annotation ({chosen.name}) already pairs with {wav.name}")
                             for x in xmls_for if x != chosen]
        else:
            out.unpaired += [(x, f"ambiguous: {len(xmls_for)} annotations match {wav.name}") for x in xmls_for]
    out.pairs.sort()
    return out


def _text(node: ET.Element, tag: str) -> str | None:
    child = node.find(tag)
    return None if child is None or child.text is None else child.text.strip()


def parse_annotation(path: str | Path) -> tuple[dict[str, str], list[dict[str, object]]]:
    """One XML file's global parameters and its events (raw IDMT field names, numbers parsed)."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise IdmtError(f"{path}: not well-formed XML ({exc}); re-extract the file from the archive") from None
    if root.tag != "instrumentRecording":
        raise IdmtError(f"{path}: root element is <{root.tag}>, expected <instrumentRecording> "
                        "(not an IDMT-SMT-Guitar annotation)")
    glob = root.find("globalParameter")
    info = {name: (_text(glob, tag) if glob is not None else None) or "" for tag, name in GLOBAL_FIELDS.items()}
    events = []
    for k, ev in enumerate(root.findall("transcription/event"), start=1):
        values = {f: _text(ev, f) or "" for f in EVENT_FIELDS}
        missing = [f for f, v in values.items() if not v]
        if missing:
            raise IdmtError(f"{path}: event {k} lacks {missing}; every <event> needs {list(EVENT_FIELDS)}")
        try:
            onset, offset, pitch = float(values["onsetSec"]), float(values["offsetSec"]), float(values["pitch"])
            fret, string = int(float(values["fretNumber"])), int(float(values["stringNumber"]))
        except ValueError as exc:
            raise IdmtError(f"{path}: event {k} has a non-numeric value ({exc}); fix the XML") from None
        if offset < onset:
            raise IdmtError(f"{path}: event {k} ends ({offset} s) before it starts ({onset} s); "
                            "fix offsetSec in the XML")
        events.append({
            "pitch": pitch, "onsetSec": onset, "offsetSec": offset, "fretNumber": fret, "stringNumber": string,
            "excitationStyle": values["excitationStyle"], "expressionStyle": values["expressionStyle"],
        })
    if not events:
        raise IdmtError(f"{path}: no <transcription>/<event> elements; is this an IDMT-SMT-Guitar annotation?")
    return info, events


def label_for(expression_style: str) -> str:
    """HA → harmonic, DN → dead_note, everything else → general_note."""
    return STYLE_LABELS.get(expression_style.strip().upper(), DEFAULT_LABEL)


def group_for(audio_rel: Path) -> str:
    """The guitar setup folder in ``dataset1``, the recording (path without suffix) elsewhere."""
    parts = audio_rel.parts
    if len(parts) > 2 and parts[0].lower() in SETUP_PARTS:
        return "/".join(parts[:2])
    return audio_rel.with_suffix("").as_posix()


def read_idmt(root: str | Path) -> pd.DataFrame:
    """Read an unpacked IDMT-SMT-Guitar archive into the standard metadata (plus IDMT's own columns).

    Warns with :class:`UnpairedFilesWarning` listing every unpaired file; raises :class:`IdmtError`
    when ``root`` is missing or nothing pairs.
    """
    root = Path(root)
    if not root.is_dir():
        raise IdmtError(f"{root}: IDMT-SMT-Guitar folder not found; set data.root to the unpacked archive "
                        "(the folder holding dataset1/, dataset2/, dataset3/)")
    pairing = pair_files(root)
    if not pairing.pairs:
        raise IdmtError(f"{root}: no annotation (*.xml) pairs with an audio file (*.wav); expected "
                        f"dataset*/…/{ANNOTATION_DIR}/*.xml next to {AUDIO_DIR}/*.wav.\n{pairing.report(root)}")
    if pairing.unpaired:
        warnings.warn(pairing.report(root), UnpairedFilesWarning, stacklevel=2)
    rows = []
    for xml, wav in pairing.pairs:
        info, events = parse_annotation(xml)
        audio_rel = wav.relative_to(root)
        xml_rel = xml.relative_to(root)
        base = "/".join(p for p in xml_rel.with_suffix("").parts if p.lower() != ANNOTATION_DIR)
        for k, ev in enumerate(events):
            rows.append({
                "note_id": f"{base}#{k:03d}",
                "audio_path": audio_rel.as_posix(),
                "onset_sec": ev["onsetSec"],
                "offset_sec": ev["offsetSec"],
                "pitch_midi": ev["pitch"],
                "expression_style": ev["expressionStyle"],
                "excitation_style": ev["excitationStyle"],
                "label_category": label_for(str(ev["expressionStyle"])),
                "group": group_for(audio_rel),
                "fret_number": ev["fretNumber"],
                "string_number": ev["stringNumber"],
                "annotation_path": xml_rel.as_posix(),
                **info,
            })
    return pd.DataFrame(rows)
