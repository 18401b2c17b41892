"""The model card: a short Markdown file next to the weights saying what the model was trained on and for.

Written by the train stage into the model directory (``model_card.md``), from the params, the split
metadata and the training summary only: no timestamps or host names, so an unchanged run writes
the same card. The card stage then writes the evaluated card (:func:`evaluated_card`): the same text with the
synthetic test figures and the real-sampled check-set figures read from the metrics files that
``dvc metrics show`` prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from fretlab import __version__
from fretlab.io import atomic_path
from fretlab.params import Params
from fretlab.tasks.monitor import monitor_for
from fretlab.tasks.targets import TargetSpec, resolve_targets

CARD = "model_card.md"


def _data_table(meta: pd.DataFrame, classes: list[str]) -> list[str]:
    """Events per split and class, and groups per split, as Markdown table rows."""
    table = pd.crosstab(meta["split"], meta["label_category"]).reindex(columns=classes, fill_value=0)
    groups = meta.groupby("split")["group"].nunique()
    rows = ["| split | events | " + " | ".join(classes) + " | groups |", "|---" * (len(classes) + 3) + "|"]
    for split, counts in table.iterrows():
        rows.append(f"| {split} | {int(counts.sum())} | " + " | ".join(str(int(v)) for v in counts)
                    + f" | {int(groups[split])} |")
    total = table.sum()
    rows.append(f"| **all** | {int(total.sum())} | " + " | ".join(str(int(v)) for v in total)
                + f" | {meta['group'].nunique()} |")
    return rows


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def model_card(params: Params, classes: list[str], summary: dict[str, Any], meta: pd.DataFrame | None,
               n_parameters: int) -> str:
    """The card's Markdown text."""
    data, feat, train = params.data, params.featurize, params.train
    model_cfg = getattr(params.model, params.model.name, None)
    synthetic = data.source == "synthetic"
    tracks = feat.kind == "tracks"
    specs = resolve_targets(params)
    lines = [
        f"# Model card: `{params.paths.model}`",
        "",
        f"Written by the fretlab {__version__} train stage. Weights: `model.safetensors`; everything needed to "
        "rebuild the model and its feature front end (params, class list, `predict` settings): `config.json`.",
        "",
        "## Data",
        "",
        f"- Source: `{data.source}`, root `{data.root}`"
        + (f", metadata `{data.metadata}`" if data.source == "csv" else ""),
        f"- Classes (label index order): {', '.join(f'`{c}`' for c in classes)}",
        f"- Split: `{params.split.strategy}`, groups never shared between splits; seed {params.base.seed}",
        "",
    ]
    if meta is not None and {"split", "label_category", "group"} <= set(meta.columns):
        lines += [*_data_table(meta, classes), ""]
    lines += [
        "## Model and training",
        "",
        f"- Architecture: `{params.model.name}` ({n_parameters:,} trainable parameters)"
        + (f": `{model_cfg.model_dump(mode='json')}`" if model_cfg is not None else ""),
        _features_line(params),
        f"- Training: up to {train.epochs} epochs, batch {train.batch_size}, AdamW lr {train.lr:g}, weight decay "
        f"{train.weight_decay:g}, class weights {'on' if train.class_weights else 'off'}, early stopping patience "
        f"{train.patience} on validation {'macro-F1' if monitor_for(specs).name == 'macro_f1' else 'loss'}",
        *_target_lines(params, specs),
        "",
        "## Validation metrics",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {k} | {_fmt(v)} |" for k, v in summary.items() if isinstance(v, int | float | str)),
        "",
        f"Test-set figures are computed afterwards by the evaluate stage (`{params.paths.metrics}/test.json`).",
        "",
        "## Intended use",
        "",
    ]
    if tracks:
        lines += [f"Predicting {', '.join(s.name for s in specs)} of whole music tracks from their frame features. "
                  "A research and teaching model, not a production system.", "", "## Limits", ""]
        if data.source == "synthetic_tracks":
            lines.append("- **Trained on synthetic tracks only** (docs/synthesis-attributes.md): the targets are "
                         "defined by the generator's formulas, not by listeners; retrain on real data first.")
        lines += ["- Missing target values were masked out of the loss; regression outputs are mapped back to "
                  "each target's own scale with the train split's mean and std.", ""]
        return "\n".join(lines)
    lines += [
        f"Classifying monophonic guitar note events as {', '.join(classes)}: a single-note clip, or each note of a "
        "recording found by onset detection (`fretlab predict`). A research and teaching model, "
        "not a production system.",
        "",
        "## Limits",
        "",
    ]
    if synthetic:
        lines.append("- **Trained on synthetic notes only** (the embedded generator). Accuracy on real recordings is "
                     "unknown and likely lower; retrain on real data (README: Use your own data) before relying on it.")
    lines += [
        f"- Sees only {feat.target_duration:g} s from each onset (or the centre of a short clip); longer techniques "
        "are judged on their start.",
        "- One note at a time: chords and overlapping notes are outside what it was trained on.",
        "- In timeline mode, missed or spurious onsets (librosa onset detection, `predict` settings in "
        "`config.json`) become missed or spurious events.",
        "- Validation figures come from the validation split above; with few events or groups they are noisy.",
        "",
    ]
    return "\n".join(lines)


def _features_line(params: Params) -> str:
    feat = params.featurize
    if feat.kind == "tracks":
        t = feat.tracks
        return (f"- Features: {', '.join(t.features)} per frame at {t.sample_rate} Hz (n_fft {t.n_fft}, hop "
                f"{t.hop_length}), whole tracks as variable-length sequences")
    return (f"- Features: {feat.n_mels}-band log-mel at {feat.sample_rate} Hz, {feat.target_duration:g} s window per "
            f"event (n_fft {feat.n_fft}, hop {feat.hop_length})" + (", + delta" if feat.deltas else "")
            + (", + RMS" if feat.rms else "") + "; input mixed to mono and peak-normalized")


def _target_lines(params: Params, specs: list[TargetSpec]) -> list[str]:
    """One line per target, unless the task is the single-label default."""
    if params.task.selected is None and not params.task.one_vs_rest:
        return []
    scale = "standardized by the train split" if params.task.standardize else "on their own scale"
    return [f"- Targets (regression {scale}): " + "; ".join(
        f"`{s.name}` ({s.kind}, {s.loss}, weight {s.weight:g})" for s in specs)]


def write_model_card(model_dir: str | Path, params: Params, classes: list[str], summary: dict[str, Any],
                     split_metadata: str | Path | None, model: Any) -> Path:
    """Write ``model_card.md`` for the trained ``model`` (an ``nn.Module``) into ``model_dir``; return its path."""
    n_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    meta = None
    if split_metadata is not None and Path(split_metadata).is_file():
        meta = pd.read_csv(split_metadata, dtype={"group": str, "split": str}, keep_default_na=False)
    path = Path(model_dir) / CARD
    with atomic_path(path) as tmp:
        tmp.write_text(model_card(params, classes, summary, meta, n_parameters), encoding="utf-8")
    return path


TEST_PENDING = "Test-set figures are computed afterwards by the evaluate stage (`metrics/test.json`)."
UNKNOWN_ON_REAL = "Accuracy on real recordings is unknown and likely lower"


def _figures_row(name: str, metrics: dict[str, Any], classes: list[str]) -> str:
    recall = [_fmt(metrics["per_class"][c]["recall"]) if c in metrics.get("per_class", {})
              and metrics["per_class"][c].get("support", 0) > 0 else "-" for c in classes]
    return (f"| {name} | {metrics['n']} | {_fmt(metrics['macro_f1'])} | {_fmt(metrics['balanced_accuracy'])} | "
            f"{_fmt(metrics['accuracy'])} | " + " | ".join(recall) + " |")


def evaluated_card(card: str, test: dict[str, Any], checkset: dict[str, Any], classes: list[str],
                   sources: tuple[str, str]) -> str:
    """The train stage's ``card`` with an "Evaluation" section: the synthetic test split (``test``, the evaluate
    stage's metrics) next to the real-sampled check set (``checkset``, evaluate_checkset's; ``{"enabled":
    False}`` when it was switched off). ``sources`` names the two metrics files, as the card cites them."""
    lines = ["## Evaluation", "",
             f"From `{sources[0]}` and `{sources[1]}`, the files `dvc metrics show` prints. Macro-F1 over the classes "
             "each set holds; recall per class (`-`: the set has none).", "",
             "| set | notes | macro-F1 | balanced accuracy | accuracy | " + " | ".join(f"{c} recall" for c in classes)
             + " |", "|---" * (len(classes) + 5) + "|", _figures_row("synthetic test split", test, classes)]
    real = checkset.get("enabled", True) and checkset.get("n", 0) > 0
    if real:
        lines.append(_figures_row("real-sampled check set (GM soundfonts)", checkset, classes))
        lines += ["", "The check set holds sampled instruments of General MIDI soundfonts (no dead notes; a few "
                  "samples per program, pitch-shifted): how the model transfers to real instrument recordings, not "
                  "a test on recorded guitar playing. Per soundfont: " + ", ".join(
                      f"{name} macro-F1 {_fmt(m['macro_f1'])} ({m['n']} notes)"
                      for name, m in checkset.get("per_soundfont", {}).items()) + "."]
    else:
        lines += ["", "The real-sampled check set was switched off (`checkset.enabled: false`): no figure on real "
                  "audio."]
    section = "\n".join(lines)
    if TEST_PENDING not in card:
        raise ValueError(f"the model card has no line {TEST_PENDING!r} to replace: was it written by this "
                         "version's train stage? Re-run `dvc repro train`")
    out = card.replace(TEST_PENDING, section)
    if real:
        out = out.replace(UNKNOWN_ON_REAL, f"On the real-sampled check set above macro-F1 is "
                          f"{_fmt(checkset['macro_f1'])} against {_fmt(test['macro_f1'])} on synthetic test notes")
    return out
