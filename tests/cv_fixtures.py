"""Tiny ESC-50- and UrbanSound8K-shaped dataset trees generated with numpy + soundfile.

Each class has its own sound (tone bursts, noise, sweep) so a tiny model can learn something;
clip lengths vary (1-2 s) to exercise clip windowing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

SR = 22050
ESC_CLASSES = {"dog": (0, True), "rain": (10, True), "cat": (5, False)}  # category: (target, esc10)
US8K_CLASSES = {"dog_bark": 3, "drilling": 4, "siren": 8}


def _sound(kind: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    if kind == 0:  # tone bursts with harmonics
        env = (np.sin(2 * np.pi * 3 * t) > 0).astype(float)
        f0 = rng.uniform(300, 600)
        wave = env * sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3))
    elif kind == 1:  # broadband noise
        wave = rng.standard_normal(len(t))
    else:  # slow sweep
        f = rng.uniform(800, 1500) + 600 * np.sin(2 * np.pi * 0.7 * t)
        wave = np.sin(2 * np.pi * np.cumsum(f) / SR)
    wave = wave + 0.01 * rng.standard_normal(len(t))
    return (0.5 * wave / np.max(np.abs(wave))).astype(np.float32)


def make_esc50_tree(root: Path, folds: int = 5, clips_per_class: int = 2, seed: int = 0) -> pd.DataFrame:
    """``root/meta/esc50.csv`` + ``root/audio/*.wav``; each class's clips in a fold share one source (two takes)."""
    rng = np.random.default_rng(seed)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "meta").mkdir(parents=True, exist_ok=True)
    rows = []
    for fold in range(1, folds + 1):
        for kind, (category, (target, esc10)) in enumerate(ESC_CLASSES.items()):
            src = 100032 + 1000 * (fold - 1) + 7 * target  # fold 1's dog clip is ESC-50's 1-100032-A-0.wav
            for take in range(clips_per_class):
                name = f"{fold}-{src}-{'ABCDEFG'[take]}-{target}.wav"
                sf.write(root / "audio" / name, _sound(kind, rng.uniform(1.0, 2.0), rng), SR)
                rows.append({"filename": name, "fold": fold, "target": target, "category": category,
                             "esc10": esc10, "src_file": src, "take": "ABCDEFG"[take]})
    meta = pd.DataFrame(rows)
    meta.to_csv(root / "meta" / "esc50.csv", index=False)
    return meta


def make_urbansound8k_tree(root: Path, folds: int = 10, clips_per_class: int = 2, seed: int = 1) -> pd.DataFrame:
    """``root/metadata/UrbanSound8K.csv`` + ``root/audio/fold<K>/*.wav``; slices of one fsID share a fold."""
    rng = np.random.default_rng(seed)
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    rows = []
    for fold in range(1, folds + 1):
        (root / "audio" / f"fold{fold}").mkdir(parents=True, exist_ok=True)
        for kind, (name, class_id) in enumerate(US8K_CLASSES.items()):
            fs_id = 1000 * fold + class_id
            for i in range(clips_per_class):
                seconds = rng.uniform(1.0, 2.0)
                slice_name = f"{fs_id}-{class_id}-0-{i}.wav"
                sf.write(root / "audio" / f"fold{fold}" / slice_name, _sound(kind, seconds, rng), SR)
                rows.append({"slice_file_name": slice_name, "fsID": fs_id, "start": 2.0 * i, "end": 2.0 * i + seconds,
                             "salience": 1 + i % 2, "fold": fold, "classID": class_id, "class": name})
    meta = pd.DataFrame(rows)
    meta.to_csv(root / "metadata" / "UrbanSound8K.csv", index=False)
    return meta
