"""Synthetic snare-drum rudiment performances with skill scores defined by construction (SOUSA-like).

Virtual players with a latent skill perform the PAS International Drum Rudiments on a synthetic snare
(see ``docs/synthesis-rudiments.md``). A take is planned first (stroke times, velocities, grace-note
spacing, all drawn from the take's effective skill) and scored from the errors as realised; only then is
it rendered: every stroke is a snare template (membrane and shell modes, snare-wire noise, stick click)
from a small per-velocity bank, added at its onset sample, and the take goes through its recording
preset (``pedalboard``) and a fixed loudness with a peak guard. Each take is planned and rendered from
its own seed, so the output is byte-identical whatever the number of worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyloudnorm
import soundfile as sf
from pedalboard import Compressor, LowpassFilter, Pedalboard, Reverb
from scipy.signal import butter, lfilter, sosfilt
from tqdm import tqdm

from fretlab.io import atomic_path, ordered_map
from fretlab.params import RECORDING_PRESETS, TIERS, SynthesizeRudiments

SCORES = ("timing_accuracy", "timing_consistency", "tempo_stability", "velocity_consistency", "flam_quality",
          "overall_score")
COLUMNS = ("track_id", "audio_path", "group", "rudiment", "rudiment_family", "tempo_bpm", "duration_sec", "preset",
           "skill_tier", "skill_binary", "tier_confidence", *SCORES)
FAMILIES = ("roll", "diddle", "flam", "drag")
NOVICE_TIERS = ("beginner", "intermediate")  # skill_binary: these are "novice", the others "skilled"
DECIMALS = 2  # scores are rounded to this many decimals; tier_confidence to 4, tempo to 2

# --- random streams: the take stream is [seed, index]; the others end in distinct non-zero words --------
PLAYER_STREAM, RENDER_STREAM = 0x9A7E5, 0x5E4D3


# --- rudiment notation -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stroke:
    """One slot of a rudiment: the primary stroke's hand, accent, and its ornament.

    ``graces`` is 1 for a flam (one soft grace note from the other hand just before), 2 for a drag (two
    graces from the other hand); ``buzz`` marks a multiple-bounce (press) stroke.
    """

    hand: str
    accent: bool = False
    graces: int = 0
    buzz: bool = False


def parse_pattern(text: str) -> tuple[Stroke | None, ...]:
    """Parse ``">fR L dL -"``: one token per slot; ``>`` accent, ``f`` flam, ``d`` drag, ``z`` buzz, ``-`` rest."""
    slots: list[Stroke | None] = []
    for token in text.split():
        if token == "-":
            slots.append(None)
            continue
        accent = token.startswith(">")
        body = token[1:] if accent else token
        ornament, hand = body[:-1], body[-1]
        if hand not in "RL" or ornament not in ("", "f", "d", "z"):
            raise ValueError(f"bad rudiment token {token!r}")
        slots.append(Stroke(hand, accent, {"f": 1, "d": 2}.get(ornament, 0), ornament == "z"))
    return tuple(slots)


@dataclass(frozen=True)
class Rudiment:
    """A PAS rudiment: snake_case name, family, its PAS number, slots per beat and one cycle of strokes."""

    name: str
    family: str
    pas_number: int
    subdivision: int  # slots per beat: 2 eighths, 3 eighth triplets, 4 sixteenths, 6 sixteenth triplets
    pattern: tuple[Stroke | None, ...]


def _r(name: str, family: str, number: int, subdivision: int, text: str) -> Rudiment:
    return Rudiment(name, family, number, subdivision, parse_pattern(text))


PAS_40 = (  # in PAS order; RUDIMENTS interleaves the families
    _r("single_stroke_roll", "roll", 1, 4, "R L R L R L R L"),
    _r("single_stroke_four", "roll", 2, 6, "R L R >L - - L R L >R - -"),
    _r("single_stroke_seven", "roll", 3, 6, "R L R L R L >R - - - - - L R L R L R >L - - - - -"),
    _r("multiple_bounce_roll", "roll", 4, 4, "zR zL zR zL"),
    _r("triple_stroke_roll", "roll", 5, 6, "R R R L L L"),
    _r("double_stroke_open_roll", "roll", 6, 4, "R R L L"),
    _r("five_stroke_roll", "roll", 7, 4, "R R L L >R - - - L L R R >L - - -"),
    _r("six_stroke_roll", "roll", 8, 4, ">R L L R R >L - -"),
    _r("seven_stroke_roll", "roll", 9, 6, "R R L L R R >L - - - - - L L R R L L >R - - - - -"),
    _r("nine_stroke_roll", "roll", 10, 4, "R R L L R R L L >R - - -"),
    _r("ten_stroke_roll", "roll", 11, 4, "R R L L R R L L >R - >L -"),
    _r("eleven_stroke_roll", "roll", 12, 4, "R R L L R R L L R R >L - - - - -"),
    _r("thirteen_stroke_roll", "roll", 13, 4, "R R L L R R L L R R L L >R - - -"),
    _r("fifteen_stroke_roll", "roll", 14, 4, "R R L L R R L L R R L L R R >L -"),
    _r("seventeen_stroke_roll", "roll", 15, 4, "R R L L R R L L R R L L R R L L >R - - -"),
    _r("single_paradiddle", "diddle", 16, 4, ">R L R R >L R L L"),
    _r("double_paradiddle", "diddle", 17, 6, ">R L R L R R >L R L R L L"),
    _r("triple_paradiddle", "diddle", 18, 4, ">R L R L R L R R >L R L R L R L L"),
    _r("single_paradiddle_diddle", "diddle", 19, 6, ">R L R R L L >L R L L R R"),
    _r("flam", "flam", 20, 2, "fR fL"),
    _r("flam_accent", "flam", 21, 3, ">fR L R >fL R L"),
    _r("flam_tap", "flam", 22, 4, ">fR R >fL L"),
    _r("flamacue", "flam", 23, 4, "fR >L R L fR - - - fL >R L R fL - - -"),
    _r("flam_paradiddle", "flam", 24, 4, ">fR L R R >fL R L L"),
    _r("single_flammed_mill", "flam", 25, 4, ">fR R L R >fL L R L"),
    _r("flam_paradiddle_diddle", "flam", 26, 6, ">fR L R R L L >fL R L L R R"),
    _r("pataflafla", "flam", 27, 4, "fR L R fL"),
    _r("swiss_army_triplet", "flam", 28, 3, "fR R L"),
    _r("inverted_flam_tap", "flam", 29, 4, ">fR L >fL R"),
    _r("flam_drag", "flam", 30, 3, ">fR dR L >fL dL R"),
    _r("drag", "drag", 31, 2, "dR dL"),
    _r("single_drag_tap", "drag", 32, 2, "dR >L dL >R"),
    _r("double_drag_tap", "drag", 33, 3, "dR dR >L dL dL >R"),
    _r("lesson_25", "drag", 34, 4, "dR L >R - dL R >L -"),
    _r("single_dragadiddle", "drag", 35, 4, ">R dR L L >L dL R R"),
    _r("drag_paradiddle_1", "drag", 36, 4, ">R dR L R R - - - >L dL R L L - - -"),
    _r("drag_paradiddle_2", "drag", 37, 4, ">R dR >L dL R L L - >L dL >R dR L R R -"),
    _r("single_ratamacue", "drag", 38, 6, "dR L R >L - - dL R L >R - -"),
    _r("double_ratamacue", "drag", 39, 6, "dR dR L R >L - dL dL R L >R -"),
    _r("triple_ratamacue", "drag", 40, 6, "dR dR dR L R >L dL dL dL R L >R"),
)


def _interleave(rudiments: tuple[Rudiment, ...]) -> tuple[Rudiment, ...]:
    """Round-robin over the families (roll, diddle, flam, drag), each in PAS order."""
    queues = [[r for r in rudiments if r.family == f] for f in FAMILIES]
    out: list[Rudiment] = []
    while any(queues):
        out.extend(q.pop(0) for q in queues if q)
    return tuple(out)


RUDIMENTS = _interleave(PAS_40)  # the first n_rudiments (20) hold 5 rolls, 4 diddles, 6 flams, 5 drags

# --- performance model (docs/synthesis-rudiments.md) -------------------------------------------------------
LEAD_IN_SEC, END_MARGIN_SEC = 0.3, 0.25  # silence before the first grid slot; no stroke this close to the end
JITTER_SD_SEC = (0.030, 0.002)  # onset-jitter std at skill 0 and at skill 1
JITTER_SHAPE = 1.5  # the std falls as (1 - skill)^shape between them
MAX_JITTER_SD = 3.0  # onset errors are clipped at this many stds
DRIFT_SD = (0.030, 0.002)  # per-beat std of the log-tempo random walk at tempo control 0 and 1
DRIFT_REVERSION = 0.1  # share of the log-tempo offset pulled back to the target each beat
TAP_VELOCITY = 0.45  # intended velocity of an unaccented stroke
ACCENT_RATIO = (1.15, 2.0)  # intended accent / tap velocity ratio at skill 0 and 1
VELOCITY_SD = (0.30, 0.04)  # log-velocity std of primary strokes at skill 0 and 1
GRACE_VELOCITY, GRACE_VELOCITY_SD = 0.15, 0.25  # grace notes are soft strokes
BUZZ_BOUNCES, BUZZ_DECAY = 3, 0.6  # extra bounces of a press stroke within its slot; each softer by this
FLAM_IDEAL_SEC = 0.030  # ideal grace-to-primary spacing of a flam
DRAG_GAP_SEC = 0.035  # ideal spacing of a drag's graces (capped at DRAG_GAP_SLOTS of a slot)
DRAG_GAP_SLOTS = 0.3
GRACE_ERR_SD_SEC = (0.014, 0.002)  # std of a grace's spacing error at skill 0 and 1
GRACE_BIAS_SD_SEC = (0.008, 0.001)  # a take's systematic spacing bias (flat or wide flams) at skill 0 and 1
GRACE_MIN_SEC, GRACE_MAX_SLOTS = 0.004, 0.8  # grace spacing is clipped to [min, 0.8 slot]
TRAITS = ("timing", "velocity", "accent", "grace")
VELOCITY_RANGE = (0.03, 1.0)

# --- scores: 100 * exp(-error / tau), accent 100 * (1 - exp(-dB / tau)) ------------------------------------
TAU_ACCURACY_SEC = 0.010  # mean |onset - intended grid|
TAU_CONSISTENCY_SEC = 0.014  # std of inter-onset-interval errors
TAU_TEMPO_CV = 0.04  # coefficient of variation of the per-beat tempo
TAU_VELOCITY_CV = 0.15  # coefficient of variation of unaccented primary velocities
TAU_ACCENT_DB = 3.0  # accent contrast, 20 log10(mean accent / mean tap velocity)
TAU_FLAM_SEC = 0.008  # mean |flam grace spacing - FLAM_IDEAL_SEC|
OVERALL_WEIGHTS = {"timing_accuracy": 0.3, "timing_consistency": 0.25, "velocity_consistency": 0.2,
                   "accent_contrast": 0.1, "flam_quality": 0.15}  # renormalised over the parts a take has

# --- snare sound -----------------------------------------------------------------------------------------
MEMBRANE_RATIOS = (1.0, 1.594, 2.136, 2.296, 2.653, 2.918, 3.156, 3.501)  # Bessel zeros j_mn / j_01
FUNDAMENTAL_HZ = (170.0, 260.0)  # per take (each take is its own drum)
MODE_TAU_SEC = (0.08, 0.16)  # decay of the fundamental; mode k decays as tau / ratio_k
MODE_BRIGHTNESS = (0.8, 3.0)  # mode k's amplitude is exp(-(ratio_k - 1) / b), b from soft to hard stroke
SHELL_HZ, SHELL_LEVEL, SHELL_TAU_SEC = (450.0, 700.0), 0.25, 0.03
WIRE_BAND_HZ = (1800.0, 8000.0)  # snare-wire noise band (upper corner capped by NYQUIST_GUARD)
WIRE_LEVEL = (0.15, 1.1)  # wire level relative to the modes at velocity 0 and 1
WIRE_TAU_SEC = (0.03, 0.12)  # wire decay at velocity 0 and 1
CLICK_SEC, CLICK_HP_HZ, CLICK_LEVEL = 0.0015, 3000.0, (0.1, 0.8)  # stick attack: short high-passed burst
TEMPLATE_SEC = 0.6  # every stroke template lasts this long (the longest decay is well under it)
VELOCITY_LEVELS = 12  # templates per take, at evenly spaced velocities; strokes scale the nearest one
NYQUIST_GUARD = 0.45
FADE_SEC = 0.02

# --- recording presets -----------------------------------------------------------------------------------
PRESET_LUFS = {"clean": -20.0, "room": -20.0, "overhead": -26.0, "phone": -22.0, "live": -21.0}
PEAK_CEILING = 0.89  # about -1 dBFS: after loudness normalisation a take is scaled down if it peaks higher
ROOM = {"room_size": 0.35, "wet_level": 0.2, "damping": 0.5}
OVERHEAD = {"lowpass_hz": 4500.0, "room_size": 0.6, "wet_level": 0.35, "damping": 0.6}
PHONE_BAND_HZ, PHONE_ORDER, PHONE_NOISE_DB = (300.0, 3400.0), 4, -45.0  # noise RMS relative to the signal RMS
PHONE_COMPRESSOR = {"threshold_db": -24.0, "ratio": 4.0, "attack_ms": 2.0, "release_ms": 80.0}
LIVE = {"room_size": 0.7, "wet_level": 0.3, "damping": 0.4}
LIVE_CROWD_DB = -24.0  # pink crowd/room noise RMS relative to the signal RMS
LIVE_COMPRESSOR = {"threshold_db": -18.0, "ratio": 3.0, "attack_ms": 5.0, "release_ms": 120.0}
PINK_B = (0.049922035, -0.095993537, 0.050612699, -0.004408786)  # Kellet's pink-noise filter
PINK_A = (1.0, -2.494956002, 2.017265875, -0.522189400)
PCM_SCALE = 32767


# --- players and takes -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Player:
    """A virtual player: latent skill, tempo-discipline trait and per-dimension skill offsets."""

    name: str
    skill: float
    discipline: float
    traits: dict[str, float]
    tier: str
    tier_confidence: float


def tier_bounds(cfg: SynthesizeRudiments) -> np.ndarray:
    """The inner cut points of the latent skill: cumulative ``tier_fractions`` in TIERS order."""
    return np.cumsum([cfg.tier_fractions[t] for t in TIERS])[:-1]


def tier_of(skill: float, bounds: np.ndarray) -> tuple[str, float]:
    """The tier holding ``skill`` and its confidence (distance to the nearest inner boundary / half width)."""
    i = int(np.searchsorted(bounds, skill, side="right"))
    edges = np.concatenate(([0.0], bounds, [1.0]))
    lo, hi = edges[i], edges[i + 1]
    inner = [b for b, is_inner in ((lo, i > 0), (hi, i < len(bounds))) if is_inner]
    distance = min(abs(skill - b) for b in inner)
    return TIERS[i], float(np.clip(distance / ((hi - lo) / 2.0), 0.0, 1.0))


def make_players(cfg: SynthesizeRudiments, seed: int) -> list[Player]:
    """Draw every player from its own seed: skill ~ U(0, 1), discipline ~ U(0, 1), trait offsets ~ N(0, sd)."""
    bounds = tier_bounds(cfg)
    width = max(3, len(str(cfg.n_players - 1)))
    players = []
    for p in range(cfg.n_players):
        rng = np.random.default_rng([seed, p, PLAYER_STREAM])
        skill, discipline = float(rng.random()), float(rng.random())
        traits = {name: float(v) for name, v in zip(TRAITS, rng.normal(0.0, cfg.trait_sd, len(TRAITS)), strict=True)}
        tier, confidence = tier_of(skill, bounds)
        players.append(Player(f"p{p:0{width}d}", skill, discipline, traits, tier, confidence))
    return players


@dataclass
class TakePlan:
    """Everything decided and measured about one take before rendering."""

    take_id: str
    player: Player
    rudiment: Rudiment
    preset: str
    tempo: float
    n: int  # samples
    sr: int
    onsets: np.ndarray  # seconds, every sounding stroke (primaries, graces, bounces)
    velocities: np.ndarray
    scores: dict[str, float]


def _lerp(pair: tuple[float, float], s: float) -> float:
    return float(pair[0] + (pair[1] - pair[0]) * s)


def _unit(x: float) -> float:
    return float(np.clip(x, 0.0, 1.0))


def _grid(rng: np.random.Generator, rudiment: Rudiment, tempo: float, duration: float,
          control: float) -> tuple[np.ndarray, np.ndarray]:
    """The player's intended slot times (a mean-reverting random walk in log tempo, one step per beat)
    and the tempo of every beat."""
    sub = rudiment.subdivision
    n_beats = int(np.ceil(duration * tempo / 60.0)) + 1
    sd = _lerp(DRIFT_SD, control)
    offsets = np.zeros(n_beats)
    for b in range(1, n_beats):
        offsets[b] = (1.0 - DRIFT_REVERSION) * offsets[b - 1] + rng.normal(0.0, sd)
    beat_tempo = tempo * np.exp(offsets)
    slot = np.repeat(60.0 / beat_tempo / sub, sub)
    times = LEAD_IN_SEC + np.concatenate(([0.0], np.cumsum(slot)[:-1]))
    return times, beat_tempo


def plan_take(cfg: SynthesizeRudiments, player: Player, index: int, take_id: str, seed: int) -> TakePlan:
    """Draw one take's rudiment, preset, tempo and performance; score it from the realised errors."""
    rng = np.random.default_rng([seed, index])
    s = _unit(player.skill + rng.normal(0.0, cfg.take_skill_sd)) if cfg.take_skill_sd > 0 else player.skill
    dim = {name: _unit(s + player.traits[name]) for name in TRAITS}
    rudiment = RUDIMENTS[int(rng.integers(cfg.n_rudiments))]
    names = [p for p in RECORDING_PRESETS if cfg.presets.get(p, 0.0) > 0]
    weights = np.array([cfg.presets[p] for p in names], dtype=float)
    preset = str(rng.choice(names, p=weights / weights.sum()))
    tempo = round(float(rng.uniform(*cfg.tempo_bpm)), 2)
    n = round(rng.uniform(*cfg.duration_sec) * cfg.sample_rate)
    duration = n / cfg.sample_rate
    control = cfg.tempo_discipline_share * player.discipline + (1.0 - cfg.tempo_discipline_share) * s

    grid, beat_tempo = _grid(rng, rudiment, tempo, duration, control)
    cycle = len(rudiment.pattern)
    slots = [k for k in range(len(grid)) if grid[k] < duration - END_MARGIN_SEC]
    strokes = [(k, rudiment.pattern[k % cycle]) for k in slots if rudiment.pattern[k % cycle] is not None]
    jit_sd = _lerp((JITTER_SD_SEC[0], JITTER_SD_SEC[1]), 1.0 - (1.0 - dim["timing"]) ** JITTER_SHAPE)
    err = np.clip(rng.normal(0.0, jit_sd, len(strokes)), -MAX_JITTER_SD * jit_sd, MAX_JITTER_SD * jit_sd)
    accent_ratio = _lerp(ACCENT_RATIO, dim["accent"])
    vel_sd = _lerp(VELOCITY_SD, dim["velocity"])
    grace_sd, grace_bias = _lerp(GRACE_ERR_SD_SEC, dim["grace"]), rng.normal(0.0, _lerp(GRACE_BIAS_SD_SEC,
                                                                                        dim["grace"]))
    onsets: list[float] = []
    velocities: list[float] = []
    taps, accents, flam_err = [], [], []
    for (k, stroke), e in zip(strokes, err, strict=True):
        t = grid[k] + e
        slot = float(grid[k + 1] - grid[k]) if k + 1 < len(grid) else float(grid[k] - grid[k - 1])
        v = (TAP_VELOCITY * (accent_ratio if stroke.accent else 1.0)) * np.exp(rng.normal(0.0, vel_sd))
        v = float(np.clip(v, *VELOCITY_RANGE))
        (accents if stroke.accent else taps).append(v)
        onsets.append(t)
        velocities.append(v)
        gap = FLAM_IDEAL_SEC if stroke.graces == 1 else min(DRAG_GAP_SEC, DRAG_GAP_SLOTS * slot)
        before = 0.0
        for _ in range(stroke.graces):
            spacing = float(np.clip(gap + grace_bias + rng.normal(0.0, grace_sd), GRACE_MIN_SEC,
                                    GRACE_MAX_SLOTS * slot))
            if stroke.graces == 1:
                flam_err.append(abs(spacing - FLAM_IDEAL_SEC))
            before += spacing
            onsets.append(t - before)
            velocities.append(float(np.clip(GRACE_VELOCITY * np.exp(rng.normal(0.0, GRACE_VELOCITY_SD)),
                                            *VELOCITY_RANGE)))
        if stroke.buzz:
            for b in range(1, BUZZ_BOUNCES + 1):
                onsets.append(t + b * slot / (BUZZ_BOUNCES + 1) + rng.normal(0.0, jit_sd / 4))
                velocities.append(float(np.clip(v * BUZZ_DECAY**b, *VELOCITY_RANGE)))

    primary_err = err
    ioi_err = np.diff(primary_err)
    n_full_beats = max(1, int(np.floor((duration - LEAD_IN_SEC) * tempo / 60.0)))
    beats = beat_tempo[:n_full_beats]
    parts = {
        "timing_accuracy": 100.0 * np.exp(-np.mean(np.abs(primary_err)) / TAU_ACCURACY_SEC),
        "timing_consistency": 100.0 * np.exp(-(np.std(ioi_err) if len(ioi_err) else 0.0) / TAU_CONSISTENCY_SEC),
        "tempo_stability": 100.0 * np.exp(-(np.std(beats) / np.mean(beats)) / TAU_TEMPO_CV),
        "velocity_consistency": 100.0 * np.exp(-(np.std(taps) / np.mean(taps)) / TAU_VELOCITY_CV),
    }
    if accents:
        contrast_db = max(0.0, 20.0 * np.log10(np.mean(accents) / np.mean(taps)))
        parts["accent_contrast"] = 100.0 * (1.0 - np.exp(-contrast_db / TAU_ACCENT_DB))
    if rudiment.family == "flam" and flam_err:
        parts["flam_quality"] = 100.0 * np.exp(-np.mean(flam_err) / TAU_FLAM_SEC)
    used = {k: w for k, w in OVERALL_WEIGHTS.items() if k in parts}
    overall = sum(w * parts[k] for k, w in used.items()) / sum(used.values())
    scores = {name: round(float(parts[name]), DECIMALS) if name in parts else float("nan") for name in SCORES[:-1]}
    scores["overall_score"] = round(float(overall), DECIMALS)
    order = np.argsort(onsets, kind="stable")
    return TakePlan(take_id, player, rudiment, preset, tempo, n, cfg.sample_rate,
                    np.asarray(onsets)[order], np.asarray(velocities)[order], scores)


def plan_takes(cfg: SynthesizeRudiments, seed: int) -> list[TakePlan]:
    """Every take of the dataset, planned and scored, in take order (no audio)."""
    players = make_players(cfg, seed)
    return [plan_take(cfg, players[i // cfg.takes_per_player], i, _take_id(cfg, players, i), seed)
            for i in range(cfg.n_players * cfg.takes_per_player)]


def _take_id(cfg: SynthesizeRudiments, players: list[Player], i: int) -> str:
    width = max(2, len(str(cfg.takes_per_player - 1)))
    return f"{players[i // cfg.takes_per_player].name}_t{i % cfg.takes_per_player:0{width}d}"


# --- sound -------------------------------------------------------------------------------------------------
def _decay(n: int, sr: int, tau: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (tau * sr)).astype(np.float32)


def snare_bank(sr: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One drum's stroke templates at VELOCITY_LEVELS velocities (row i peaks near velocity ``levels[i]``).

    Harder strokes are brighter (higher modes stronger, louder click) and carry more and longer wire noise.
    """
    n = int(TEMPLATE_SEC * sr)
    t = np.arange(n) / sr
    f0, tau0 = rng.uniform(*FUNDAMENTAL_HZ), rng.uniform(*MODE_TAU_SEC)
    phases = rng.uniform(0.0, 2 * np.pi, len(MEMBRANE_RATIOS))
    limit = NYQUIST_GUARD * sr
    modes = np.stack([np.sin(2 * np.pi * f0 * r * t + ph) * np.exp(-t * r / tau0)
                      for r, ph in zip(MEMBRANE_RATIOS, phases, strict=True) if f0 * r < limit])
    ratios = np.array([r for r in MEMBRANE_RATIOS if f0 * r < limit])
    shell = SHELL_LEVEL * np.sin(2 * np.pi * rng.uniform(*SHELL_HZ) * t) * np.exp(-t / SHELL_TAU_SEC)
    wire_sos = butter(2, [WIRE_BAND_HZ[0], min(WIRE_BAND_HZ[1], limit)], btype="bandpass", fs=sr, output="sos")
    wire = sosfilt(wire_sos, rng.standard_normal(n))
    wire /= np.abs(wire).max() + 1e-12
    click_n = max(4, int(CLICK_SEC * 4 * sr))
    click_sos = butter(2, min(CLICK_HP_HZ, limit), btype="highpass", fs=sr, output="sos")
    click = sosfilt(click_sos, rng.standard_normal(click_n)) * np.exp(-np.arange(click_n) / (CLICK_SEC * sr))
    click /= np.abs(click).max() + 1e-12
    levels = np.linspace(1.0 / VELOCITY_LEVELS, 1.0, VELOCITY_LEVELS)
    fade = np.minimum(1.0, (n - np.arange(n)) / (FADE_SEC * sr))
    bank = np.zeros((VELOCITY_LEVELS, n), dtype=np.float32)
    for i, v in enumerate(levels):
        amp = np.exp(-(ratios - 1.0) / _lerp(MODE_BRIGHTNESS, v))
        body = amp @ modes + shell
        body /= np.abs(body).max() + 1e-12
        y = body + _lerp(WIRE_LEVEL, v) * wire * np.exp(-t / _lerp(WIRE_TAU_SEC, v))
        y[:click_n] += _lerp(CLICK_LEVEL, v) * click
        y *= fade
        bank[i] = (v * y / (np.abs(y).max() + 1e-12)).astype(np.float32)
    return levels, bank


def render_dry(plan: TakePlan, rng: np.random.Generator) -> np.ndarray:
    """The close-miked take: each stroke is its nearest-velocity template, scaled to its velocity."""
    levels, bank = snare_bank(plan.sr, rng)
    m = bank.shape[1]
    out = np.zeros(plan.n + m, dtype=np.float32)
    idx = np.clip(np.rint(plan.velocities * VELOCITY_LEVELS - 1).astype(int), 0, VELOCITY_LEVELS - 1)
    for t, v, i in zip(plan.onsets, plan.velocities, idx, strict=True):
        s = max(0, round(t * plan.sr))
        out[s:s + m] += np.float32(v / levels[i]) * bank[i]
    return out[:plan.n]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) + 1e-12


def apply_preset(x: np.ndarray, preset: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    """The recording chain of ``preset`` (see RECORDING_PRESETS); float32 in, float32 out, unnormalised."""
    x = x.astype(np.float32)
    if preset == "clean":
        return x
    if preset == "room":
        board = Pedalboard([Reverb(room_size=ROOM["room_size"], wet_level=ROOM["wet_level"],
                                   dry_level=1.0 - ROOM["wet_level"], damping=ROOM["damping"])])
        return board(x[None, :], sr)[0]
    if preset == "overhead":
        board = Pedalboard([LowpassFilter(cutoff_frequency_hz=min(OVERHEAD["lowpass_hz"], NYQUIST_GUARD * sr)),
                            Reverb(room_size=OVERHEAD["room_size"], wet_level=OVERHEAD["wet_level"],
                                   dry_level=1.0 - OVERHEAD["wet_level"], damping=OVERHEAD["damping"])])
        return board(x[None, :], sr)[0]
    if preset == "phone":
        noisy = x + np.float32(_rms(x) * 10 ** (PHONE_NOISE_DB / 20)) * rng.standard_normal(len(x)).astype(np.float32)
        band = butter(PHONE_ORDER, [PHONE_BAND_HZ[0], min(PHONE_BAND_HZ[1], NYQUIST_GUARD * sr)], btype="bandpass",
                      fs=sr, output="sos")
        y = sosfilt(band, noisy).astype(np.float32)
        return Pedalboard([Compressor(**PHONE_COMPRESSOR)])(y[None, :], sr)[0]
    if preset == "live":
        wet = Pedalboard([Reverb(room_size=LIVE["room_size"], wet_level=LIVE["wet_level"],
                                 dry_level=1.0 - LIVE["wet_level"], damping=LIVE["damping"])])(x[None, :], sr)[0]
        crowd = lfilter(PINK_B, PINK_A, rng.standard_normal(len(x)))
        wet = wet + np.float32(_rms(wet) * 10 ** (LIVE_CROWD_DB / 20) / _rms(crowd)) * crowd.astype(np.float32)
        return Pedalboard([Compressor(**LIVE_COMPRESSOR)])(wet.astype(np.float32)[None, :], sr)[0]
    raise ValueError(f"unknown recording preset {preset!r}; known: {list(RECORDING_PRESETS)}")


def normalise(y: np.ndarray, preset: str, sr: int) -> np.ndarray:
    """Scale to the preset's integrated loudness (pyloudnorm), then down to PEAK_CEILING if it peaks higher;
    return PCM_16 samples."""
    y = y.astype(np.float64)
    loudness = pyloudnorm.Meter(sr).integrated_loudness(y)
    if np.isfinite(loudness):
        y = y * 10 ** ((PRESET_LUFS[preset] - loudness) / 20)
    peak = np.abs(y).max()
    if peak > PEAK_CEILING:
        y *= PEAK_CEILING / peak
    return np.round(y * PCM_SCALE).astype(np.int16)


def render_take(plan: TakePlan, seed: int, index: int) -> np.ndarray:
    """The PCM_16 samples of a planned take (its render stream is [seed, index, RENDER_STREAM])."""
    rng = np.random.default_rng([seed, index, RENDER_STREAM])
    return normalise(apply_preset(render_dry(plan, rng), plan.preset, plan.sr, rng), plan.preset, plan.sr)


def _row(plan: TakePlan) -> dict:
    p = plan.player
    return {"track_id": plan.take_id, "audio_path": f"audio/{plan.take_id}.wav", "group": p.name,
            "rudiment": plan.rudiment.name, "rudiment_family": plan.rudiment.family, "tempo_bpm": plan.tempo,
            "duration_sec": round(plan.n / plan.sr, 6), "preset": plan.preset, "skill_tier": p.tier,
            "skill_binary": "novice" if p.tier in NOVICE_TIERS else "skilled",
            "tier_confidence": round(p.tier_confidence, 4), **plan.scores}


def _render_job(args: tuple[int, Player, SynthesizeRudiments, int, str, str]) -> dict:
    index, player, cfg, seed, take_id, out_dir = args
    plan = plan_take(cfg, player, index, take_id, seed)
    pcm = render_take(plan, seed, index)
    with atomic_path(Path(out_dir) / f"audio/{take_id}.wav") as tmp:  # a killed run leaves no truncated WAV
        sf.write(tmp, pcm, cfg.sample_rate, subtype="PCM_16", format="WAV")
    return _row(plan)


def metadata(plans: list[TakePlan]) -> pd.DataFrame:
    """The metadata table of planned takes (what synthesize_rudiments returns, without rendering)."""
    return pd.DataFrame([_row(p) for p in plans], columns=list(COLUMNS))


def synthesize_rudiments(cfg: SynthesizeRudiments, out_dir: Path, seed: int, workers: int) -> pd.DataFrame:
    """Render every take as audio/<take_id>.wav under out_dir; return the metadata (one row per take)."""
    players = make_players(cfg, seed)
    n_takes = cfg.n_players * cfg.takes_per_player
    args = [(i, players[i // cfg.takes_per_player], cfg, seed, _take_id(cfg, players, i), str(out_dir))
            for i in range(n_takes)]
    rows = list(tqdm(ordered_map(_render_job, args, workers), total=n_takes, desc="synthesize rudiments"))
    return pd.DataFrame(rows, columns=list(COLUMNS))
