"""Where featurize puts each event's window: onset crops in tracks, centre pads and onset crops for snippets."""

import numpy as np
import pandas as pd
import soundfile as sf

from fretlab.cache.featurize import featurize_all
from fretlab.cache.reader import load_features
from fretlab.params import Featurize

SR = 22050
CFG = Featurize(n_mels=16, batch_size=8)


def _burst_file(path, length_sec: float, at_sec: float) -> None:
    wave = np.zeros(round(length_sec * SR), dtype=np.float32)
    start = round(at_sec * SR)
    wave[start : start + 441] = np.random.default_rng(0).standard_normal(441) * 0.5
    sf.write(path, wave, SR)


def _loudest_frame(root, rows) -> list[int]:
    meta = pd.DataFrame(rows).assign(pitch_midi=60, expression_style="NO", label_category="general_note",
                                      group="g", split="train")
    featurize_all(meta, root, CFG, ["general_note"], root / "features", workers=1, splits=("train",))
    x, _, ids = load_features(root / "features", "train")
    order = {note: i for i, note in enumerate(ids)}
    return [int(np.argmax(x[order[r["note_id"]], 0].mean(axis=0))) for r in rows]


def test_windows_start_at_onsets_and_long_snippets_keep_their_attack(tmp_path):
    _burst_file(tmp_path / "track.wav", 4.0, 2.0)  # two events, burst at the second onset
    _burst_file(tmp_path / "short.wav", 0.5, 0.1)  # snippet shorter than the window: centre-padded
    _burst_file(tmp_path / "long.wav", 3.0, 1.5)  # one note, 3 s long, attack at its onset 1.5 s
    rows = [
        {"note_id": "t1", "audio_path": "track.wav", "onset_sec": 0.5, "offset_sec": 1.0},
        {"note_id": "t2", "audio_path": "track.wav", "onset_sec": 2.0, "offset_sec": 2.5},
        {"note_id": "s", "audio_path": "short.wav", "onset_sec": 0.1, "offset_sec": 0.2},
        {"note_id": "l", "audio_path": "long.wav", "onset_sec": 1.5, "offset_sec": 2.0},
    ]
    _, t2, short, long_ = _loudest_frame(tmp_path, rows)
    hop_sec = CFG.hop_length / CFG.sample_rate
    assert t2 <= 2  # the burst sits at the start of the onset-cropped window
    assert abs(short * hop_sec - (0.25 + 0.1)) < 0.05  # 0.25 s of centre padding, then 0.1 s in
    assert long_ <= 2  # cropped from the onset, not the centre (which would start at 1.0 s and hold the burst late)
