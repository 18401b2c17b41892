"""The synthetic music-attribute generator: determinism, target ranges, measured loudness, tempo, artists."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pyloudnorm
import pytest
import soundfile as sf

from fretlab.params import SynthesizeTracks
from fretlab.synth.attributes import (
    COLUMNS,
    INTEGER_TARGETS,
    NEVER_MISSING,
    TARGETS,
    UNIT_TARGETS,
    artist_styles,
    assign_artists,
    missing_mask,
    plan_track,
    render_stems,
    render_track,
    synthesize_tracks,
)

SEED = 7
TINY = SynthesizeTracks(n_tracks=8, n_artists=2, duration_sec=(2.0, 3.0), missing_fraction=0.15)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, pd.DataFrame]]:
    """The tiny dataset rendered with 1 and with 2 worker processes."""
    out = {}
    for workers in (1, 2):
        root = tmp_path_factory.mktemp(f"workers{workers}")
        out[workers] = (root, synthesize_tracks(TINY, root, SEED, workers))
    return out


def _wav_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "audio").glob("*.wav"))}


def test_same_seed_is_byte_identical_for_any_worker_count(rendered, tmp_path):
    (root1, meta1), (root2, meta2) = rendered[1], rendered[2]
    pd.testing.assert_frame_equal(meta1, meta2)
    assert meta1.to_csv(index=False) == meta2.to_csv(index=False)
    assert _wav_bytes(root1) == _wav_bytes(root2)
    assert sorted(_wav_bytes(root1)) == sorted(Path(p).name for p in meta1["audio_path"])
    assert not list((root1 / "audio").glob(".*"))  # no temporary files left behind
    synthesize_tracks(TINY.model_copy(update={"n_tracks": 2}), tmp_path, SEED + 1, 1)
    assert _wav_bytes(tmp_path)["t0000.wav"] != _wav_bytes(root1)["t0000.wav"]  # the seed matters


def test_columns_durations_and_target_ranges(rendered):
    root, meta = rendered[1]
    assert tuple(meta.columns) == COLUMNS
    assert meta["track_id"].is_unique and meta["group"].nunique() == TINY.n_artists
    low, high = TINY.duration_sec
    assert meta["duration_sec"].between(low, high).all() and meta["duration_sec"].nunique() > 1
    for path, duration in zip(meta["audio_path"], meta["duration_sec"], strict=True):
        info = sf.info(root / path)
        assert info.samplerate == TINY.sample_rate and info.channels == 1 and info.subtype == "PCM_16"
        assert info.frames / info.samplerate == pytest.approx(duration, abs=1e-6)
    for name in UNIT_TARGETS:
        assert meta[name].dropna().between(0.0, 1.0).all(), name
    assert meta["tempo"].between(*TINY.tempo_bpm).all()
    assert meta["loudness"].dropna().between(-70.0, 0.0).all()
    assert meta["time_signature"].dropna().isin(list(TINY.time_signatures)).all()
    assert meta["key"].dropna().between(0, 11).all()
    for name in INTEGER_TARGETS:
        assert pd.api.types.is_integer_dtype(meta[name]), name
    csv_lines = meta[list(INTEGER_TARGETS)].to_csv(index=False).splitlines()[1:]
    assert all("." not in line for line in csv_lines)  # written as integers, missing ones as empty cells
    assert meta[[t for t in TARGETS if t not in ("tempo", "loudness")]].std().gt(0).all()


def test_loudness_is_pyloudnorm_of_the_written_wav(rendered):
    root, meta = rendered[1]
    rows = meta.dropna(subset=["loudness"])
    assert len(rows) >= 4
    for path, loudness in zip(rows["audio_path"], rows["loudness"], strict=True):
        audio, sr = sf.read(root / path)
        assert pyloudnorm.Meter(sr).integrated_loudness(audio) == pytest.approx(loudness, abs=1e-3)


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.3])
def test_missing_cells_are_a_fixed_share_and_never_a_whole_row(fraction):
    cfg = TINY.model_copy(update={"missing_fraction": fraction})
    mask = missing_mask(200, cfg, SEED)
    assert mask.sum() == round(fraction * mask.size)
    assert not mask.all(axis=1).any()
    assert not mask[:, [TARGETS.index(t) for t in NEVER_MISSING]].any()
    assert np.array_equal(mask, missing_mask(200, cfg, SEED))
    if fraction:
        assert not np.array_equal(mask, missing_mask(200, cfg, SEED + 1))
        assert mask.any(axis=0)[[TARGETS.index(t) for t in TARGETS if t not in NEVER_MISSING]].all()


def test_the_metadata_holds_the_missing_mask(rendered):
    _, meta = rendered[1]
    expected = missing_mask(len(meta), TINY, SEED)
    assert np.array_equal(meta[list(TARGETS)].isna().to_numpy(), expected) and expected.any()


def _comb_tempo(onset_env: np.ndarray, fps: float, candidates: np.ndarray) -> float:
    """The BPM whose beat lag and its first multiples best match the onset envelope's autocorrelation."""
    env = onset_env - onset_env.mean()
    ac = np.correlate(env, env, mode="full")[len(env) - 1:]
    lags = np.arange(len(ac))
    scores = [sum(np.interp(m * 60.0 * fps / bpm, lags, ac) for m in range(1, 5)) for bpm in candidates]
    return float(candidates[int(np.argmax(scores))])


@pytest.mark.parametrize(("tempo", "meter"), [(72.0, 3), (100.0, 4), (150.0, 7)])
def test_tempo_target_matches_the_rendered_drum_pattern(tempo, meter):
    cfg = TINY.model_copy(update={"tempo_bpm": (tempo, tempo), "duration_sec": (8.0, 8.0), "beat_jitter": (0.0, 0.0),
                                  "time_signatures": {meter: 1.0}, "drums_probability": 1.0})
    style = artist_styles(cfg, SEED)[0]
    rng = np.random.default_rng([SEED, 0])
    plan = plan_track(cfg, style, rng)
    _, targets = render_track(0, style, cfg, SEED)  # the same seed: this plan's targets
    assert (plan.tempo, plan.meter) == (targets["tempo"], targets["time_signature"]) == (tempo, meter)
    drums = render_stems(plan, rng)["drums"]
    hop = 128
    env = librosa.onset.onset_strength(y=drums, sr=cfg.sample_rate, hop_length=hop)
    candidates = np.arange(0.8 * tempo, 1.25 * tempo, 0.25)  # one tempo octave: no half/double-time answers
    assert _comb_tempo(env, cfg.sample_rate / hop, candidates) == pytest.approx(tempo, rel=0.01)


def test_tracks_share_their_artists_style():
    cfg = SynthesizeTracks(n_tracks=48, n_artists=4, meter_loyalty=1.0)
    styles = artist_styles(cfg, SEED)
    artists = assign_artists(cfg, SEED)
    assert np.bincount(artists).tolist() == [12] * 4
    ranges = [s.tempo_range for s in styles]
    assert len(set(ranges)) == 4 and all(hi - lo <= 2 * cfg.artist_tempo_spread for lo, hi in ranges)
    for index, a in enumerate(artists):
        plan = plan_track(cfg, styles[a], np.random.default_rng([SEED, index]))
        assert ranges[a][0] <= plan.tempo <= ranges[a][1]
        assert plan.meter == styles[a].meter


def test_rendered_tracks_stay_in_their_artists_tempo_range(rendered):
    _, meta = rendered[1]
    ranges = {s.name: s.tempo_range for s in artist_styles(TINY, SEED)}
    for group, tempo in zip(meta["group"], meta["tempo"], strict=True):
        assert ranges[group][0] <= tempo <= ranges[group][1]


@pytest.mark.parametrize("update", [
    {"duration_sec": (0.5, 3.0)},
    {"tempo_bpm": (180.0, 60.0)},
    {"time_signatures": {2: 1.0}},
    {"time_signatures": {4: 0.0}},
    {"n_artists": 9, "n_tracks": 8},
    {"room_size": (0.2, 1.5)},
    {"beat_jitter": (0.0, 0.5)},
])
def test_params_reject_invalid_values(update):
    with pytest.raises(ValueError):
        SynthesizeTracks(**{**TINY.model_dump(), **update})
