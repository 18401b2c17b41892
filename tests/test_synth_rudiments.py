"""The synthetic drum-rudiment generator: schema, determinism, patterns, skill -> scores, tiers, presets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from fretlab.params import TIERS, SynthesizeRudiments
from fretlab.synth.rudiments import (
    COLUMNS,
    FAMILIES,
    RUDIMENTS,
    SCORES,
    Player,
    apply_preset,
    make_players,
    metadata,
    plan_take,
    plan_takes,
    render_dry,
    render_take,
    synthesize_rudiments,
    tier_bounds,
    tier_of,
)

SEED = 11
TINY = SynthesizeRudiments(n_players=4, takes_per_player=2, duration_sec=(1.0, 2.0), n_rudiments=40)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, pd.DataFrame]]:
    """The tiny dataset rendered with 1 and with 2 worker processes."""
    out = {}
    for workers in (1, 2):
        root = tmp_path_factory.mktemp(f"workers{workers}")
        out[workers] = (root, synthesize_rudiments(TINY, root, SEED, workers))
    return out


def _wav_bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "audio").glob("*.wav"))}


def test_byte_identical_for_any_worker_count_and_seed_matters(rendered, tmp_path):
    (root1, meta1), (root2, meta2) = rendered[1], rendered[2]
    pd.testing.assert_frame_equal(meta1, meta2)
    assert _wav_bytes(root1) == _wav_bytes(root2)
    assert sorted(_wav_bytes(root1)) == sorted(Path(p).name for p in meta1["audio_path"])
    assert not list((root1 / "audio").glob(".*"))  # no temporary files left behind
    again = synthesize_rudiments(TINY, tmp_path, SEED, 1)
    pd.testing.assert_frame_equal(again, meta1)
    assert _wav_bytes(tmp_path) == _wav_bytes(root1)
    other = synthesize_rudiments(TINY.model_copy(update={"n_players": 4, "takes_per_player": 1}),
                                 tmp_path / "other", SEED + 1, 1)
    assert _wav_bytes(tmp_path / "other")[f"{other.track_id[0]}.wav"] != _wav_bytes(root1)["p000_t00.wav"]


def test_schema_and_value_ranges(rendered):
    root, meta = rendered[1]
    assert list(meta.columns) == list(COLUMNS)
    assert "skill" not in meta.columns and "latent_skill" not in meta.columns
    assert len(meta) == TINY.n_players * TINY.takes_per_player
    assert meta.track_id.tolist()[:3] == ["p000_t00", "p000_t01", "p001_t00"]
    assert (meta.audio_path == "audio/" + meta.track_id + ".wav").all()
    assert (meta.group == meta.track_id.str.split("_").str[0]).all()
    assert set(meta.skill_tier) <= set(TIERS)
    novice = meta.skill_tier.isin(["beginner", "intermediate"])
    assert (meta.skill_binary == np.where(novice, "novice", "skilled")).all()
    assert meta.tier_confidence.between(0, 1).all()
    assert meta.tempo_bpm.between(*TINY.tempo_bpm).all()
    assert set(meta.rudiment_family) <= set(FAMILIES)
    for name in SCORES:
        assert meta[name].dropna().between(0, 100).all(), name
    assert (meta.flam_quality.isna() == (meta.rudiment_family != "flam")).all()
    for row in meta.itertuples():
        audio, sr = sf.read(root / row.audio_path, dtype="int16", always_2d=True)
        info = sf.info(root / row.audio_path)
        assert sr == TINY.sample_rate and audio.shape[1] == 1 and info.subtype == "PCM_16"
        assert abs(len(audio) / sr - row.duration_sec) < 1e-6
        assert TINY.duration_sec[0] - 1e-3 <= row.duration_sec <= TINY.duration_sec[1] + 1e-3
        assert 0 < np.abs(audio).max() < 32767  # sounding, and peak-safe


def test_flam_quality_empty_exactly_for_non_flam_rudiments():
    meta = metadata(plan_takes(SynthesizeRudiments(n_players=8, takes_per_player=10, n_rudiments=40,
                                                   duration_sec=(1.0, 2.0)), SEED))
    assert set(meta.rudiment_family) == set(FAMILIES)
    assert (meta.flam_quality.isna() == (meta.rudiment_family != "flam")).all()
    assert meta.drop(columns="flam_quality").notna().all().all()


def test_the_40_patterns_are_distinct_and_valid():
    assert len(RUDIMENTS) == 40
    assert sorted(r.pas_number for r in RUDIMENTS) == list(range(1, 41))
    assert len({r.name for r in RUDIMENTS}) == 40
    assert len({(r.subdivision, r.pattern) for r in RUDIMENTS}) == 40
    assert {r.family for r in RUDIMENTS[:20]} == set(FAMILIES)
    for r in RUDIMENTS:
        assert r.family in FAMILIES and r.subdivision in (2, 3, 4, 6) and r.name == r.name.lower()
        strokes = [s for s in r.pattern if s is not None]
        assert any(not s.accent for s in strokes), r.name  # velocity_consistency needs taps
        assert {s.hand for s in strokes} <= {"R", "L"}
        assert any(s.graces == 1 for s in strokes) == (r.family == "flam"), r.name
        if r.family == "drag":
            assert any(s.graces == 2 for s in strokes), r.name
    assert any(s is not None and s.buzz for s in RUDIMENTS[[r.name for r in RUDIMENTS].index(
        "multiple_bounce_roll")].pattern)


def _player(skill: float, discipline: float = 0.5) -> Player:
    return Player("p000", skill, discipline, {"timing": 0.0, "velocity": 0.0, "accent": 0.0, "grace": 0.0},
                  "advanced", 1.0)


def test_better_skill_gives_better_scores_on_average():
    cfg = SynthesizeRudiments(take_skill_sd=0.0, duration_sec=(2.0, 3.0), n_rudiments=40)
    means = []
    for skill in (0.1, 0.4, 0.7, 1.0):
        meta = metadata([plan_take(cfg, _player(skill), i, f"p000_t{i:02d}", SEED) for i in range(40)])
        means.append(meta[["timing_accuracy", "timing_consistency", "velocity_consistency", "flam_quality",
                           "overall_score"]].mean())
    table = pd.DataFrame(means)
    assert (table.diff().iloc[1:] > 0).all().all(), table


def test_tempo_stability_follows_discipline():
    cfg = SynthesizeRudiments(take_skill_sd=0.0, duration_sec=(4.0, 5.0), tempo_discipline_share=1.0)
    lo = [plan_take(cfg, _player(0.5, 0.0), i, "x", SEED).scores["tempo_stability"] for i in range(20)]
    hi = [plan_take(cfg, _player(0.5, 1.0), i, "x", SEED).scores["tempo_stability"] for i in range(20)]
    assert np.mean(hi) > np.mean(lo) + 10


def test_tier_confidence_hand_computed():
    cfg = SynthesizeRudiments()  # cuts at 0.1, 0.35, 0.78
    bounds = tier_bounds(cfg)
    np.testing.assert_allclose(bounds, [0.1, 0.35, 0.78])
    assert tier_of(0.05, bounds) == ("beginner", 1.0)  # centre of [0, 0.1)
    assert tier_of(0.0, bounds) == ("beginner", 1.0)  # the outer edge is no boundary: clipped
    assert tier_of(0.225, bounds)[0] == "intermediate" and tier_of(0.225, bounds)[1] == pytest.approx(1.0)
    assert tier_of(0.565, bounds)[0] == "advanced" and tier_of(0.565, bounds)[1] == pytest.approx(1.0)
    assert tier_of(0.35, bounds) == ("advanced", 0.0)  # at a boundary
    assert tier_of(0.78, bounds) == ("professional", 0.0)
    assert tier_of(0.3, bounds)[1] == pytest.approx(0.05 / 0.125)  # 0.05 from 0.35, half width 0.125
    assert tier_of(0.95, bounds)[1] == pytest.approx(1.0)  # 0.17 from 0.78 > half width 0.11


def test_tier_counts_follow_tier_fractions():
    cfg = SynthesizeRudiments(n_players=4000)
    tiers = pd.Series([p.tier for p in make_players(cfg, SEED)])
    shares = tiers.value_counts(normalize=True)
    for tier in TIERS:
        assert shares[tier] == pytest.approx(cfg.tier_fractions[tier], abs=0.03)


def test_clean_is_unprocessed_and_phone_is_band_limited():
    cfg = SynthesizeRudiments(duration_sec=(2.0, 2.0), n_rudiments=40)
    plan = plan_take(cfg, _player(0.5), 0, "x", SEED)
    plan.preset = "clean"
    rng = np.random.default_rng(0)
    dry = render_dry(plan, rng)
    lead = int((plan.onsets.min() - 0.01) * cfg.sample_rate)
    assert lead > 0 and not dry[:lead].any()
    np.testing.assert_array_equal(apply_preset(dry, "clean", cfg.sample_rate, rng), dry)
    clean = render_take(plan, SEED, 0)
    assert not clean[:lead].any()  # no added noise before the first stroke
    plan.preset = "phone"
    phone = render_take(plan, SEED, 0).astype(np.float64)
    assert np.abs(phone[:lead]).max() > 0  # line noise

    def high_share(x: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        freqs = np.fft.rfftfreq(len(x), 1.0 / cfg.sample_rate)
        return float(spectrum[(freqs > 5000) | (freqs < 150)].sum() / spectrum.sum())

    assert high_share(clean.astype(np.float64)) > 0.02  # the dry snare reaches well past 5 kHz
    assert high_share(phone) < 0.1 * high_share(clean.astype(np.float64))


def _true_score_tier_accuracy(cfg: SynthesizeRudiments, filtered: bool) -> float:
    """Balanced accuracy of a logistic regression on the true scores, 4-fold CV grouped by player."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    meta = metadata(plan_takes(cfg, SEED))
    if filtered:
        meta = meta[meta["tier_confidence"] > 0.5]
    x = meta[["timing_accuracy", "timing_consistency", "tempo_stability", "velocity_consistency",
              "overall_score"]].to_numpy()
    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))
    pred = cross_val_predict(model, x, meta["skill_tier"], groups=meta["group"], cv=GroupKFold(4))
    return balanced_accuracy_score(meta["skill_tier"], pred)


def test_the_confidence_filter_helps_when_skill_dominates_the_trait_noise():
    """The reference's structure on the true scores: with the recipe's small trait and take noise, dropping the
    players near a tier boundary makes the tier easier to tell; with wide per-dimension offsets it does not."""
    base = {"n_players": 240, "takes_per_player": 2, "duration_sec": (3.0, 4.0)}
    tight = SynthesizeRudiments(**base, trait_sd=0.04, take_skill_sd=0.03)
    wide = SynthesizeRudiments(**base, trait_sd=0.3, take_skill_sd=0.08)
    tight_gain = _true_score_tier_accuracy(tight, True) - _true_score_tier_accuracy(tight, False)
    wide_gain = _true_score_tier_accuracy(wide, True) - _true_score_tier_accuracy(wide, False)
    assert tight_gain > 0.03
    assert tight_gain > wide_gain + 0.03
