"""The README's "Use your own data" and "Predict" commands, run as written in a temporary clone.

Each test puts a small dataset where the README says, runs the README's bash block verbatim
(``dvc add`` + ``dvc exp run … -S data.source=…``), and checks the pipeline trained on that data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import REPO
from fretlab.audio.loading import resample
from idmt_fixtures import make_idmt_tree, render_take

pytestmark = pytest.mark.integration
CLASSES = ["general_note", "harmonic", "dead_note"]
NO_CHECKSET = {"checkset": {"enabled": False}}  # scored in test_checkset.py and the baseline tests; CI time here


def readme_block(containing: str) -> str:
    """The README's ```bash block that contains ``containing``."""
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    matches = [b for b in blocks if containing in b]
    assert len(matches) == 1, f"expected one README bash block with {containing!r}, found {len(matches)}"
    return matches[0]


def run_block(ws, block: str):
    """Run a README block with bash, stopping at the first failing command."""
    return ws.run("bash", "-euo", "pipefail", "-c", block)


def _trained(ws, source: str) -> str:
    root = ws.root
    assert (root / "models/default/model.safetensors").is_file()
    card = (root / "models/default/model_card.md").read_text()
    assert f"Source: `{source}`" in card
    for split in ("val", "test"):
        metrics = json.loads((root / f"metrics/{split}.json").read_text())
        assert set(metrics["per_class"]) == set(CLASSES) and metrics["n"] > 0
    assert not (root / "data/synthetic").exists(), "the synthetic set was rendered though another source was chosen"
    status = ws.run("dvc", "status", "evaluate", "--json")  # the stages the README ran: all up to date
    assert json.loads(status.stdout or "{}") == {}, status.stdout
    return card


def make_csv_dataset(root: Path) -> pd.DataFrame:
    """A small dataset in the standard schema: 4 guitars, each with snippets of every class and one lick.

    One guitar's files are 48 kHz stereo FLAC, the rest 44.1 kHz mono WAV.
    """
    rows = []
    for g in range(4):
        flac = g == 3
        takes = [(f"note{k}", (label,)) for k, label in enumerate([*CLASSES, "general_note"])]
        takes.append(("lick", ("general_note", "harmonic", "dead_note", "general_note")))
        for name, labels in takes:
            audio, events = render_take(labels, seed=1000 + 10 * g + len(rows))
            rel = f"audio/guitar{g}/{name}.{'flac' if flac else 'wav'}"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            if flac:
                audio = resample(audio, 44100, 48000)
                sf.write(root / rel, np.stack([audio, 0.8 * audio], axis=1), 48000)
            else:
                sf.write(root / rel, audio, 44100)
            rows += [{"note_id": f"g{g}_{name}_{k}", "audio_path": rel, "onset_sec": ev["onsetSec"],
                      "offset_sec": ev["offsetSec"], "pitch_midi": ev["pitch"],
                      "expression_style": ev["expressionStyle"], "label_category": ev["label"],
                      "group": f"guitar{g}"} for k, ev in enumerate(events)]
    meta = pd.DataFrame(rows)
    meta.to_csv(root / "metadata.csv", index=False)
    return meta


def test_own_csv_dataset_trains_through_the_readme_commands(make_workspace):
    ws = make_workspace(NO_CHECKSET)
    meta = make_csv_dataset(ws.root / "data/raw/my_guitar")

    run_block(ws, readme_block("dvc add data/raw/my_guitar"))

    assert ws.params()["data"] == {**ws.params()["data"], "source": "csv", "root": "data/raw/my_guitar"}
    assert (ws.root / "data/raw/my_guitar.dvc").is_file()
    split = pd.read_csv(ws.root / "data/split/metadata.csv", dtype={"note_id": str})
    assert sorted(split["note_id"]) == sorted(meta["note_id"])
    assert f"| **all** | {len(meta)} |" in _trained(ws, "csv")


def test_idmt_tree_trains_through_the_readme_commands(make_workspace):
    ws = make_workspace(NO_CHECKSET)
    expected = make_idmt_tree(ws.root / "data/raw/IDMT-SMT-GUITAR_V2")

    proc = run_block(ws, readme_block("dvc add data/raw/IDMT-SMT-GUITAR_V2"))

    output = proc.stdout + proc.stderr
    assert "2 file(s) under data/raw/IDMT-SMT-GUITAR_V2 could not be paired" in output
    split = pd.read_csv(ws.root / "data/split/metadata.csv", dtype={"group": str})
    assert len(split) == len(expected["rows"])
    assert sorted(split["group"].unique()) == expected["groups"]
    assert (split.groupby("group")["split"].nunique() == 1).all()
    _trained(ws, "idmt")


def test_predict_readme_commands_run_after_repro(baseline_workspace):
    ws = baseline_workspace  # after `dvc repro`
    proc = run_block(ws, readme_block('fretlab predict "$NOTE"'))

    note = json.loads(proc.stdout[: proc.stdout.index("\n}") + 2])  # the first command's JSON
    assert note["mode"] == "note" and set(note["probabilities"]) == set(CLASSES)
    assert note["label"] in CLASSES and 0 < note["confidence"] <= 1
    timeline = pd.read_csv(ws.root / "timeline.csv")
    assert list(timeline.columns[:4]) == ["onset_sec", "offset_sec", "label", "confidence"]
    assert len(timeline) >= 3  # the longest take is a multi-note lick
    assert set(timeline["label"]) <= set(CLASSES)
