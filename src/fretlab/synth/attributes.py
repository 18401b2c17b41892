"""Synthetic music tracks whose Spotify-style attributes are defined by construction.

Each track is rendered from a generated arrangement (see ``docs/synthesis-attributes.md``): drums in
the track's meter and tempo with timing jitter, bass on the chord roots, a chord progression in the
track's key and mode, a melody on the scale, optional speech-like formant phrases or a sung line,
optional crowd noise, a ``pedalboard`` room reverb and a master level with a soft limiter. Every
target is a documented function of those choices or is measured on the rendered signal (loudness in
LUFS with ``pyloudnorm``, spectral centroid). Tracks belong to artists who share an arrangement
style, so a split grouped by artist is harder than a random one. Each track is rendered from its own
seed, so the output is byte-identical whatever the number of worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyloudnorm
import scipy.fft
import soundfile as sf
from pedalboard import Reverb
from scipy.signal import butter, lfilter, sosfilt
from tqdm import tqdm

from fretlab.io import atomic_path, ordered_map
from fretlab.params import SynthesizeTracks

TARGETS = ("danceability", "energy", "valence", "tempo", "liveness", "speechiness", "instrumentalness",
           "acousticness", "loudness", "time_signature", "key")
INTEGER_TARGETS = ("time_signature", "key")
UNIT_TARGETS = ("danceability", "energy", "valence", "liveness", "speechiness", "instrumentalness", "acousticness")
NEVER_MISSING = ("tempo",)  # every row keeps one target, so no row is ever fully masked
COLUMNS = ("track_id", "audio_path", "group", "duration_sec", *TARGETS)

# --- target formulas (docs/synthesis-attributes.md) -------------------------------------------------------
DANCE_W_REGULARITY, DANCE_W_STRENGTH, DANCE_W_TEMPO = 0.4, 0.35, 0.25
JITTER_REF = 0.1  # timing-jitter std (fraction of a beat) at which regularity reaches 0
DRUM_SHARE_FULL = 0.5  # drum energy share at which beat strength reaches 1
DANCE_TEMPO_CENTER, DANCE_TEMPO_WIDTH = 120.0, 40.0  # BPM
ENERGY_W_DENSITY, ENERGY_W_BRIGHTNESS = 0.5, 0.5
ONSET_RATE_LO, ONSET_RATE_HI = 2.0, 16.0  # onsets per second: density 0 and 1 (log scale)
CENTROID_LO, CENTROID_HI = 800.0, 4500.0  # Hz: brightness 0 and 1 (log scale)
VALENCE_W_MODE, VALENCE_W_TEMPO, VALENCE_W_CONSONANCE = 0.45, 0.25, 0.3
VALENCE_TEMPO_LO, VALENCE_TEMPO_HI = 60.0, 180.0  # BPM mapped to 0 and 1
LIVE_W_CROWD, LIVE_W_ROOM = 0.7, 0.3
CROWD_SHARE_FULL = 0.25  # crowd energy share at which crowd presence reaches 1
ROOM_FULL = 0.4  # room_size * wet_level at which the room term reaches 1
SPEECH_W_TIME, SPEECH_W_ENERGY = 0.6, 0.4
DISSONANT_INTERVALS = frozenset({1, 6, 11})  # pitch-class distances: minor second, tritone, major seventh
DECIMALS = 4  # [0, 1] targets are rounded to this many decimals; loudness to 3, tempo to 2

# --- random streams: the track stream is [seed, index]; SeedSequence pads with zeros, so the others end in
# distinct non-zero words and can never coincide with it or with each other
ARTIST_STREAM, ASSIGN_STREAM, MISSING_STREAM = 0xA57157, 0xA55167, 0x415516
ARTIST_CONCENTRATION = 4.0  # Beta(c*m, c*(1-m)) artist propensities around the dataset mean m

# --- arrangement --------------------------------------------------------------------------------------------
STEPS_PER_BEAT = 2  # the grid is in eighth notes
METER_GROUPS = {3: (3,), 4: (2, 2), 5: (3, 2), 6: (3, 3), 7: (2, 2, 3)}  # beat grouping of each meter
MAX_JITTER_BEATS = 0.25  # timing offsets are clipped so that notes keep their order
LEAD_IN_SEC = 0.05
DOWNBEAT_GAIN, GROUP_GAIN, SNARE_GAIN = 1.0, 0.6, 0.8  # accents: the bar's first beat is the loudest
STRIKE_GAIN = 0.8  # chord strikes after the bar's first
HAT_GAINS = {"open": 0.7, "beat": 0.5, "offbeat": 0.3}
VELOCITY_SPREAD = 0.15  # every hit is scaled by U(1 - spread, 1)
MAJOR, MINOR = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)
DEGREE_WEIGHTS = {True: (0.0, 1.0, 0.6, 2.0, 2.0, 1.6, 0.4), False: (0.0, 0.5, 1.6, 1.6, 1.4, 2.0, 1.6)}
LOOP_BARS = (2, 4)  # the chord progression repeats every 2 or 4 bars
CHORD_ROOT_LOW, BASS_LOW, MELODY_RANGE = 48, 36, (64, 84)  # MIDI
BASS_FIFTH_PROB = 0.25
MELODY_STEPS, MELODY_STEP_P = (-2, -1, 0, 1, 2), (0.15, 0.3, 0.1, 0.3, 0.15)
MELODY_MAX_STEPS = 4  # longest melody note, in eighths
GATE = 0.95  # share of its slot a note sounds for
SPEECH_SLOT_SEC = 2.0
SYLLABLE_SEC, SYLLABLE_GAP_SEC, PHRASE_PAUSE_SEC = (0.12, 0.3), (0.0, 0.05), 0.15
PHRASE_F0_SEMIS, SYLLABLE_F0_SEMIS = (3.0, -2.0), 1.5  # intonation: falls over a phrase, jitters per syllable
SYLLABLE_GLIDE_SEMIS = 1.0  # and falls within each syllable
CONSONANT_PROB, CONSONANT_SEC, CONSONANT_LEVEL = 0.6, (0.02, 0.06), 0.35
SING_RANGE_OCTAVES = 1.0  # sung notes are moved by octaves into the octave above the speaking pitch
VIBRATO_HZ, VIBRATO_SEMIS, VIBRATO_ONSET_SEC = 5.5, 0.3, 0.15

# --- sound (physical / timbre constants) --------------------------------------------------------------------
NYQUIST_GUARD = 0.45  # partials and filter corners stay below this share of the sample rate
DECAY_FLOOR = float(np.log(1e3))  # a partial is rendered until it has decayed by 60 dB
ATTACK_SEC, FADE_SEC = 0.003, 0.02
PLUCKED = {  # acoustic family: decaying harmonic partials (modal Karplus-Strong), per part
    "bass": {"partials": 10, "tau": (0.6, 1.6), "brightness": (400.0, 1200.0), "pluck": (0.15, 0.3)},
    "chords": {"partials": 8, "tau": (0.8, 2.5), "brightness": (1500.0, 4000.0), "pluck": (0.1, 0.25)},
    "melody": {"partials": 10, "tau": (0.4, 1.5), "brightness": (2000.0, 6000.0), "pluck": (0.08, 0.2)},
}
HF_DAMPING = (0.5, 3.0)  # extra decay per (kHz)^2: high partials die first, as on a real string
INHARMONICITY = (0.0, 2e-4)  # stiff-string B: f_k = k f0 sqrt(1 + B k^2)
STRUM_SEC = (0.005, 0.03)  # delay between the strings of a strummed acoustic chord
SYNTH = {  # electronic family: band-limited saw/square through a 2-pole low-pass, ADSR envelope
    "bass": {"waves": ("saw", "square"), "cutoff": (300.0, 1200.0), "attack": (0.003, 0.01), "sustain": (0.6, 0.9)},
    "chords": {"waves": ("saw",), "cutoff": (800.0, 3000.0), "attack": (0.05, 0.3), "sustain": (0.7, 1.0)},
    "melody": {"waves": ("square", "saw"), "cutoff": (1500.0, 5000.0), "attack": (0.005, 0.03),
               "sustain": (0.6, 0.9)},
}
SYNTH_DECAY_SEC = 0.15
PAD_DETUNE_CENTS = (5.0, 15.0)
KICK = {
    "acoustic": {"f_start": (90.0, 130.0), "f_end": (50.0, 65.0), "pitch_tau": (0.02, 0.04), "tau": (0.08, 0.18),
                 "click": (0.2, 0.5)},
    "electronic": {"f_start": (120.0, 180.0), "f_end": (40.0, 55.0), "pitch_tau": (0.03, 0.07),
                   "tau": (0.2, 0.45), "click": (0.0, 0.1)},
}
SNARE = {
    "acoustic": {"tone": (170.0, 230.0), "tone_tau": (0.04, 0.08), "noise_tau": (0.05, 0.1), "noise_hp": 800.0,
                 "tone_mix": (0.3, 0.6)},
    "electronic": {"tone": (180.0, 260.0), "tone_tau": (0.03, 0.06), "noise_tau": (0.03, 0.07),
                   "noise_hp": 1500.0, "tone_mix": (0.2, 0.5)},
}
HAT = {"hp_hz": (5000.0, 7000.0), "closed_tau": (0.01, 0.03), "open_tau": (0.08, 0.2)}
DRUM_TAILS = 5.0  # a drum sample lasts this many amplitude decay times
VOWELS = {  # Peterson & Barney (1952) adult-male formants F1-F3, Hz
    "a": (730.0, 1090.0, 2440.0), "e": (530.0, 1840.0, 2480.0), "i": (270.0, 2290.0, 3010.0),
    "o": (570.0, 840.0, 2410.0), "u": (300.0, 870.0, 2240.0),
}
FORMANT_BANDWIDTHS = (80.0, 100.0, 140.0)  # Hz
FORMANT_REF_F0 = 120.0  # Hz: the speaking pitch of the voices VOWELS was measured on
FORMANT_SCALE_PER_OCTAVE = 0.25  # higher voices have shorter vocal tracts: formants rise with f0
GLOTTAL_OPEN, GLOTTAL_CLOSE = 0.4, 0.16  # Rosenberg pulse: opening and closing phase, share of a period
CONSONANT_HP = 3000.0
PINK_B = (0.049922035, -0.095993537, 0.050612699, -0.004408786)  # Kellet's pink-noise filter
PINK_A = (1.0, -2.494956002, 2.017265875, -0.522189400)
CROWD_SWELL_SEC, CROWD_SWELL = 0.5, (0.4, 1.0)
CLAP_BAND, CLAP_BURSTS, CLAP_TAU, CLAP_SPAN_SEC, CLAP_VARIANTS = (800.0, 2500.0), (3, 5), 0.01, 0.03, 3
CLAP_LEVEL = 4.0  # clap peak relative to the unit-RMS crowd noise
REVERB_DAMPING = 0.5
LIMITER_CEILING = 0.98  # the soft limiter's tanh ceiling, below PCM full scale
PCM_SCALE = 32767
PCM_READ_SCALE = 32768  # soundfile reads PCM_16 as int / 32768
STEMS = ("drums", "bass", "chords", "melody", "voice", "crowd")
PARTS = ("drums", "bass", "chords", "melody")  # instrument parts: acousticness is their acoustic energy share
CENTERED = ("beat_jitter", "drum_level_db", "dissonance", "voice_level_db", "voice_f0_hz", "crowd_level_db",
            "room_size", "reverb_wet", "master_rms_dbfs")
PROPENSITIES = ("drums_probability", "acoustic_probability", "major_probability", "seventh_probability",
                "speech_probability", "sung_probability", "crowd_probability")

Event = tuple[float, tuple, float]  # (onset sec, template key, gain)


@dataclass(frozen=True)
class ArtistStyle:
    """An artist's shared arrangement style: tempo range, main meter, range centres and propensities."""

    name: str
    tempo_range: tuple[float, float]
    meter: int
    centers: dict[str, float]
    probs: dict[str, float]


@dataclass
class TrackPlan:
    """Everything decided about one track before rendering."""

    sr: int
    n: int
    tempo: float
    meter: int
    key: int
    major: bool
    jitter: float
    acoustic: dict[str, bool]
    levels: dict[str, float | None]  # stem -> level in dB, None when the stem is absent
    events: dict[str, list[Event]]
    chords: list[tuple[int, ...]]  # MIDI notes of each chord of the progression loop
    bar_chords: list[int]  # loop index of each bar that starts inside the track
    speech: list[tuple[float, float, str, str, float, bool]] = field(default_factory=list)
    sung: list[tuple[float, float, int, str, str]] = field(default_factory=list)
    claps: list[tuple[float, int, float]] = field(default_factory=list)
    voice_f0: float = FORMANT_REF_F0
    room_size: float = 0.0
    wet: float = 0.0
    master_db: float = -20.0

    @property
    def duration(self) -> float:
        return self.n / self.sr

    @property
    def step(self) -> float:
        return 60.0 / self.tempo / STEPS_PER_BEAT


def _meter_choices(cfg: SynthesizeTracks) -> tuple[np.ndarray, np.ndarray]:
    meters = np.array(sorted(cfg.time_signatures), dtype=int)
    weights = np.array([cfg.time_signatures[m] for m in meters], dtype=float)
    return meters, weights / weights.sum()


def _propensity(rng: np.random.Generator, mean: float) -> float:
    """An artist's propensity: Beta around the dataset mean (exactly 0 or 1 at the ends)."""
    if mean <= 0.0 or mean >= 1.0:
        return float(mean >= 1.0)
    return float(rng.beta(ARTIST_CONCENTRATION * mean, ARTIST_CONCENTRATION * (1.0 - mean)))


def artist_styles(cfg: SynthesizeTracks, seed: int) -> list[ArtistStyle]:
    """Draw every artist's style, each from its own seed."""
    meters, weights = _meter_choices(cfg)
    width = max(2, len(str(cfg.n_artists - 1)))
    styles = []
    for a in range(cfg.n_artists):
        rng = np.random.default_rng([seed, a, ARTIST_STREAM])
        lo, hi = cfg.tempo_bpm
        center = rng.uniform(lo, hi)
        tempo_range = (max(lo, center - cfg.artist_tempo_spread), min(hi, center + cfg.artist_tempo_spread))
        styles.append(ArtistStyle(
            name=f"artist{a:0{width}d}",
            tempo_range=(float(tempo_range[0]), float(tempo_range[1])),
            meter=int(rng.choice(meters, p=weights)),
            centers={name: float(rng.uniform(*getattr(cfg, name))) for name in CENTERED},
            probs={name: _propensity(rng, getattr(cfg, name)) for name in PROPENSITIES},
        ))
    return styles


def assign_artists(cfg: SynthesizeTracks, seed: int) -> np.ndarray:
    """Artist index of every track: balanced counts in a seeded order."""
    rng = np.random.default_rng([seed, 0, ASSIGN_STREAM])
    return rng.permutation(np.arange(cfg.n_tracks) % cfg.n_artists)


def _around(rng: np.random.Generator, cfg: SynthesizeTracks, style: ArtistStyle, name: str) -> float:
    """A per-track value near the artist's centre, within the configured range."""
    lo, hi = getattr(cfg, name)
    half = cfg.artist_spread * (hi - lo)
    return float(np.clip(style.centers[name] + rng.uniform(-half, half), lo, hi))


def _draw_meter(rng: np.random.Generator, cfg: SynthesizeTracks, style: ArtistStyle) -> int:
    meters, weights = _meter_choices(cfg)
    others = meters != style.meter
    if rng.random() < cfg.meter_loyalty or not (weights[others] > 0).any():
        return style.meter
    return int(rng.choice(meters[others], p=weights[others] / weights[others].sum()))


def _grid(rng: np.random.Generator, plan: TrackPlan) -> np.ndarray:
    """Onset time of every eighth-note step, shared by all players, with the track's timing jitter.

    It runs two bars past the end, so that the last bar that starts inside the track is complete.
    """
    beat = 60.0 / plan.tempo
    n_steps = int(np.ceil(plan.duration / plan.step)) + 2 * STEPS_PER_BEAT * plan.meter
    offsets = np.clip(rng.normal(0.0, plan.jitter * beat, n_steps), -MAX_JITTER_BEATS * beat, MAX_JITTER_BEATS * beat)
    return np.maximum(LEAD_IN_SEC + np.arange(n_steps) * plan.step + offsets, 0.0)


def _velocity(rng: np.random.Generator) -> float:
    return float(rng.uniform(1.0 - VELOCITY_SPREAD, 1.0))


def _drum_events(rng: np.random.Generator, plan: TrackPlan, grid: np.ndarray, eighths: bool) -> list[Event]:
    """Kick on each beat group's start, snare on its last beat, hats on beats (and eighths); accented downbeat."""
    groups = METER_GROUPS[plan.meter]
    starts = np.cumsum((0, *groups[:-1]))
    kicks = set(starts.tolist())
    snares = {int(s + g - 1) for s, g in zip(starts, groups, strict=True)}
    events: list[Event] = []
    for step, t in enumerate(grid):
        t = float(t)
        if t >= plan.duration:
            break
        beat, on_beat = divmod(step % (STEPS_PER_BEAT * plan.meter), STEPS_PER_BEAT)
        if on_beat == 0:
            if beat in kicks:
                events.append((t, ("kick",), (DOWNBEAT_GAIN if beat == 0 else GROUP_GAIN) * _velocity(rng)))
            if beat in snares and beat != 0:
                events.append((t, ("snare",), SNARE_GAIN * _velocity(rng)))
            hat = "open" if beat == 0 else "beat"
            events.append((t, ("hat", hat), HAT_GAINS[hat] * _velocity(rng)))
        elif eighths:
            events.append((t, ("hat", "closed"), HAT_GAINS["offbeat"] * _velocity(rng)))
    return events


def _is_dissonant(notes: tuple[int, ...]) -> bool:
    return any((b - a) % 12 in DISSONANT_INTERVALS for i, a in enumerate(notes) for b in notes[i + 1:])


def _progression(rng: np.random.Generator, plan: TrackPlan, seventh_p: float, dissonance: float) -> list[tuple]:
    """A loop of diatonic triads/sevenths from the tonic; some chords get an added minor second or tritone."""
    scale = MAJOR if plan.major else MINOR
    weights = np.array(DEGREE_WEIGHTS[plan.major])
    degrees = [0]
    for _ in range(int(rng.choice(LOOP_BARS)) - 1):
        w = weights.copy()
        w[degrees[-1]] = 0.0  # a chord change every bar
        degrees.append(int(rng.choice(7, p=w / w.sum())))
    chords = []
    for d in degrees:
        size = 4 if rng.random() < seventh_p else 3
        tones = [scale[(d + 2 * i) % 7] + 12 * ((d + 2 * i) // 7) for i in range(size)]
        if rng.random() < dissonance and not _is_dissonant(tuple(tones)):
            tones.append(tones[0] + int(rng.choice((13, 6))))  # b9 or tritone above the root
        root = CHORD_ROOT_LOW + (plan.key + tones[0]) % 12
        chords.append(tuple(root + t - tones[0] for t in tones))
    return chords


def _gaps(times: list[int], end: int, longest: int | None = None) -> list[int]:
    """Length of every slot from one onset step to the next (the last one ends at ``end``)."""
    lengths = np.diff([*times, end]).tolist()
    return [min(n, longest) if longest else n for n in lengths]


def _pitched_events(rng: np.random.Generator, plan: TrackPlan, grid: np.ndarray, bass_density: float,
                    melody_density: float, sung_bars: set[int]) -> dict[str, list[Event]]:
    """Bass on chord roots, chord strikes, and a melody walking on the scale (sung bars go to the voice)."""
    bar_steps = STEPS_PER_BEAT * plan.meter
    n_bars = len(plan.bar_chords)
    total = n_bars * bar_steps
    groups = np.cumsum((0, *METER_GROUPS[plan.meter][:-1])) * STEPS_PER_BEAT
    bass: list[tuple] = []
    chords: list[tuple] = []
    melody: list[tuple[int, int, int]] = []  # (step, MIDI, bar)
    scale = MAJOR if plan.major else MINOR
    pitches = [m for m in range(MELODY_RANGE[0], MELODY_RANGE[1] + 1) if (m - plan.key) % 12 in scale]
    idx = len(pitches) // 2
    for bar, loop_idx in enumerate(plan.bar_chords):
        start = bar * bar_steps
        chord = plan.chords[loop_idx]
        strikes = [start + int(g) for g in groups] if plan.acoustic["chords"] else [start]
        for s, length in zip(strikes, _gaps(strikes, start + bar_steps), strict=True):
            gain = (DOWNBEAT_GAIN if s == start else STRIKE_GAIN) * _velocity(rng)
            chords.append((s, ("chords", loop_idx, length), gain))
        beats = [start + STEPS_PER_BEAT * b for b in range(plan.meter) if b == 0 or rng.random() < bass_density]
        for s, length in zip(beats, _gaps(beats, start + bar_steps), strict=True):
            fifth = s != start and rng.random() < BASS_FIFTH_PROB
            note = BASS_LOW + (chord[0] - BASS_LOW) % 12 + (7 if fifth else 0)
            bass.append((s, ("bass", note, length), _velocity(rng)))
        for s in range(start, start + bar_steps):
            if rng.random() >= melody_density:
                continue
            idx = int(np.clip(idx + rng.choice(MELODY_STEPS, p=MELODY_STEP_P), 0, len(pitches) - 1))
            if s == start:  # downbeats land on a chord tone
                tones = [i for i, p in enumerate(pitches) if any((p - c) % 12 == 0 for c in chord)]
                idx = min(tones, key=lambda i: abs(i - idx))
            melody.append((s, pitches[idx], bar))
    lengths = _gaps([s for s, _, _ in melody], total, MELODY_MAX_STEPS)
    lead = []
    for (s, midi, bar), length in zip(melody, lengths, strict=True):
        if bar in sung_bars:
            if grid[s] < plan.duration:
                plan.sung.append((float(grid[s]), length * plan.step * GATE, midi, *_two_vowels(rng)))
        else:
            lead.append((s, ("melody", midi, length), _velocity(rng)))
    return {"bass": _timed(bass, grid, plan.duration), "chords": _timed(chords, grid, plan.duration),
            "melody": _timed(lead, grid, plan.duration)}


def _timed(events: list[tuple], grid: np.ndarray, duration: float) -> list[Event]:
    """Grid steps to onset times; notes that would start after the track's end are dropped."""
    return [(float(grid[s]), key, gain) for s, key, gain in events if grid[s] < duration]


def _two_vowels(rng: np.random.Generator) -> tuple[str, str]:
    names = list(VOWELS)
    return str(rng.choice(names)), str(rng.choice(names))


def _speech(rng: np.random.Generator, duration: float, share: float) -> list[tuple]:
    """Spoken phrases filling a share of the track's 2-s slots, one tuple per syllable.

    A syllable is (start, length, vowel from, vowel to, f0 offset in semitones, starts with a consonant).
    """
    n_slots = max(1, int(duration // SPEECH_SLOT_SEC))
    chosen = np.sort(rng.choice(n_slots, size=max(1, round(share * n_slots)), replace=False))
    syllables = []
    for slot in chosen:
        start = slot * SPEECH_SLOT_SEC
        end = min(duration, start + SPEECH_SLOT_SEC) - PHRASE_PAUSE_SEC
        t = start + rng.uniform(*SYLLABLE_GAP_SEC)
        while True:
            length = rng.uniform(*SYLLABLE_SEC)
            if t + length > end:
                break
            progress = (t - start) / SPEECH_SLOT_SEC
            semis = PHRASE_F0_SEMIS[0] + progress * (PHRASE_F0_SEMIS[1] - PHRASE_F0_SEMIS[0])
            semis += rng.uniform(-SYLLABLE_F0_SEMIS, SYLLABLE_F0_SEMIS)
            syllables.append((float(t), float(length), *_two_vowels(rng), float(semis),
                              bool(rng.random() < CONSONANT_PROB)))
            t += length + rng.uniform(*SYLLABLE_GAP_SEC)
    return syllables


def plan_track(cfg: SynthesizeTracks, style: ArtistStyle, rng: np.random.Generator) -> TrackPlan:
    """Decide one track's tempo, meter, key, parts, levels and every note, from the artist's style."""
    sr = cfg.sample_rate
    duration = rng.uniform(*cfg.duration_sec)
    probs = style.probs
    plan = TrackPlan(
        sr=sr, n=round(duration * sr), tempo=round(float(rng.uniform(*style.tempo_range)), 2),
        meter=_draw_meter(rng, cfg, style), key=int(rng.integers(12)),
        major=bool(rng.random() < probs["major_probability"]), jitter=_around(rng, cfg, style, "beat_jitter"),
        acoustic={p: bool(rng.random() < probs["acoustic_probability"]) for p in PARTS},
        levels={}, events={}, chords=[], bar_chords=[],
    )
    grid = _grid(rng, plan)
    bar_steps = STEPS_PER_BEAT * plan.meter
    n_bars = int(np.sum(grid[::bar_steps] < plan.duration))
    plan.chords = _progression(rng, plan, probs["seventh_probability"], _around(rng, cfg, style, "dissonance"))
    plan.bar_chords = [b % len(plan.chords) for b in range(n_bars)]
    drums = rng.random() < probs["drums_probability"]
    eighths = rng.random() < cfg.hat_eighths_probability
    plan.events["drums"] = _drum_events(rng, plan, grid, eighths) if drums else []
    sung_bars: set[int] = set()
    if rng.random() < probs["sung_probability"]:
        k = max(1, round(rng.uniform(*cfg.sung_share) * n_bars))
        sung_bars = set(rng.choice(n_bars, size=k, replace=False).tolist())
    plan.events.update(_pitched_events(rng, plan, grid, rng.uniform(*cfg.bass_density),
                                       rng.uniform(*cfg.melody_density), sung_bars))
    if rng.random() < probs["speech_probability"]:
        plan.speech = _speech(rng, plan.duration, rng.uniform(*cfg.speech_share))
    plan.voice_f0 = _around(rng, cfg, style, "voice_f0_hz")
    crowd = None
    if rng.random() < probs["crowd_probability"]:
        rate = rng.uniform(*cfg.clap_rate_hz)
        times = np.sort(rng.uniform(0.0, plan.duration, rng.poisson(rate * plan.duration)))
        plan.claps = [(float(t), int(rng.integers(CLAP_VARIANTS)), _velocity(rng)) for t in times]
        crowd = _around(rng, cfg, style, "crowd_level_db")
    plan.levels = {
        "drums": _around(rng, cfg, style, "drum_level_db") if drums else None,
        **{p: float(rng.uniform(*cfg.part_level_db)) for p in ("bass", "chords", "melody")},
        "voice": _around(rng, cfg, style, "voice_level_db") if plan.speech or plan.sung else None,
        "crowd": crowd,
    }
    plan.room_size = _around(rng, cfg, style, "room_size")
    plan.wet = _around(rng, cfg, style, "reverb_wet")
    plan.master_db = _around(rng, cfg, style, "master_rms_dbfs")
    return plan


# --- rendering ---------------------------------------------------------------------------------------------


def _midi_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def _decay(n: int, sr: int, tau: float) -> np.ndarray:
    return np.exp(-np.arange(n, dtype=np.float32) / np.float32(tau * sr))


def _fade(sig: np.ndarray, sr: int) -> np.ndarray:
    """Short attack ramp and release fade, so no template starts or stops with a click."""
    a, f = min(len(sig), int(ATTACK_SEC * sr)), min(len(sig), int(FADE_SEC * sr))
    sig[:a] *= np.linspace(0.0, 1.0, a, dtype=np.float32)
    sig[len(sig) - f:] *= np.linspace(1.0, 0.0, f, dtype=np.float32)
    return sig


def _plucked(f0: float, n: int, sr: int, timbre: dict, rng: np.random.Generator) -> np.ndarray:
    """Acoustic-family note: the modal form of a plucked string (decaying, slightly inharmonic partials)."""
    k = np.arange(1, timbre["partials"] + 1, dtype=np.float64)
    freqs = k * f0 * np.sqrt(1.0 + timbre["b"] * k**2)
    keep = freqs < NYQUIST_GUARD * sr
    k, freqs = k[keep], freqs[keep]
    amps = np.abs(np.sin(np.pi * k * timbre["pluck"])) / k * np.exp(-freqs / timbre["brightness"])
    rates = 1.0 / timbre["tau"] + timbre["hf_damping"] * (freqs / 1000.0) ** 2
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    out = np.zeros(n, dtype=np.float32)
    for f, a, r, phase in zip(freqs, amps, rates, rng.uniform(0, 2 * np.pi, freqs.size), strict=True):
        m = min(n, int(DECAY_FLOOR / r * sr) + 1)  # stop once this partial is inaudible
        out[:m] += np.float32(a) * np.exp(np.float32(-r) * t[:m]) * np.sin(np.float32(2 * np.pi * f) * t[:m]
                                                                            + np.float32(phase))
    return _fade(out / (np.abs(out).max() + 1e-9), sr)


def _oscillator(wave: str, f0: float, n: int, sr: int, phase0: float) -> np.ndarray:
    """PolyBLEP band-limited sawtooth or square (a square is the difference of two half-period saws)."""
    dt = f0 / sr
    phase = (phase0 + dt * np.arange(n)) % 1.0

    def saw(p: np.ndarray) -> np.ndarray:
        y = 2.0 * p - 1.0
        lo, hi = p < dt, p > 1.0 - dt
        x = p[lo] / dt
        y[lo] -= x + x - x * x - 1.0
        x = (p[hi] - 1.0) / dt
        y[hi] -= x * x + x + x + 1.0
        return y

    y = saw(phase) if wave == "saw" else 0.5 * (saw(phase) - saw((phase + 0.5) % 1.0))
    return y.astype(np.float32)


def _adsr(n: int, sr: int, attack: float, sustain: float) -> np.ndarray:
    a, d = attack * sr, SYNTH_DECAY_SEC * sr
    return np.interp(np.arange(n), [0, a, a + d, max(a + d, n - FADE_SEC * sr), n],
                     [0.0, 1.0, sustain, sustain, 0.0]).astype(np.float32)


def _synth(f0: float, n: int, sr: int, timbre: dict, rng: np.random.Generator) -> np.ndarray:
    """Electronic-family note: oscillator(s) through the part's low-pass filter with an ADSR envelope."""
    osc = _oscillator(timbre["wave"], f0, n, sr, rng.random())
    if timbre["detune"]:  # pads: a second oscillator a few cents off, for the chorus beating
        osc += _oscillator(timbre["wave"], f0 * 2 ** (timbre["detune"] / 1200), n, sr, rng.random())
    out = sosfilt(timbre["sos"], osc).astype(np.float32) * _adsr(n, sr, timbre["attack"], timbre["sustain"])
    return out / (np.abs(out).max() + 1e-9)


def _part_timbre(part: str, acoustic: bool, sr: int, rng: np.random.Generator) -> dict:
    if acoustic:
        spec = PLUCKED[part]
        return {"partials": spec["partials"], "tau": rng.uniform(*spec["tau"]),
                "brightness": rng.uniform(*spec["brightness"]), "pluck": rng.uniform(*spec["pluck"]),
                "hf_damping": rng.uniform(*HF_DAMPING), "b": rng.uniform(*INHARMONICITY),
                "strum": rng.uniform(*STRUM_SEC)}
    spec = SYNTH[part]
    cutoff = min(rng.uniform(*spec["cutoff"]), NYQUIST_GUARD * sr)
    return {"wave": str(rng.choice(spec["waves"])), "sos": butter(2, cutoff, fs=sr, output="sos"),
            "attack": rng.uniform(*spec["attack"]), "sustain": rng.uniform(*spec["sustain"]),
            "detune": rng.uniform(*PAD_DETUNE_CENTS) if part == "chords" else 0.0}


def _note(part: str, midi_notes: tuple[int, ...], n: int, plan: TrackPlan, timbre: dict,
          rng: np.random.Generator) -> np.ndarray:
    """One note or chord template of ``n`` samples."""
    acoustic = plan.acoustic[part]
    out = np.zeros(n, dtype=np.float32)
    for i, midi in enumerate(midi_notes):
        offset = min(n - 1, int(i * timbre["strum"] * plan.sr)) if acoustic else 0  # strummed strings
        render = _plucked if acoustic else _synth
        out[offset:] += render(_midi_hz(midi), n - offset, plan.sr, timbre, rng)
    return _fade(out, plan.sr)


def _noise(n: int, rng: np.random.Generator, sos: np.ndarray | None = None) -> np.ndarray:
    x = rng.standard_normal(n).astype(np.float32)
    return x if sos is None else sosfilt(sos, x).astype(np.float32)


def _kick(family: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Pitched decaying sine (the drum head's pitch falls as it relaxes) plus a beater click."""
    spec = KICK[family]
    tau = rng.uniform(*spec["tau"])
    n = int(DRUM_TAILS * tau * sr)
    t = np.arange(n) / sr
    f_end = rng.uniform(*spec["f_end"])
    freq = f_end + (rng.uniform(*spec["f_start"]) - f_end) * np.exp(-t / rng.uniform(*spec["pitch_tau"]))
    body = np.sin(2 * np.pi * np.cumsum(freq) / sr).astype(np.float32) * _decay(n, sr, tau)
    click = _noise(n, rng) * _decay(n, sr, ATTACK_SEC) * np.float32(rng.uniform(*spec["click"]))
    return _fade(body + click, sr)


def _snare(family: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Noise burst (the snares) plus a decaying tone (the head)."""
    spec = SNARE[family]
    tau = rng.uniform(*spec["noise_tau"])
    n = int(DRUM_TAILS * tau * sr)
    sos = butter(2, min(spec["noise_hp"], NYQUIST_GUARD * sr), btype="highpass", fs=sr, output="sos")
    noise = _noise(n, rng, sos)
    noise *= _decay(n, sr, tau) / (np.abs(noise).max() + 1e-9)
    tone = np.sin(2 * np.pi * rng.uniform(*spec["tone"]) * np.arange(n) / sr).astype(np.float32)
    mix = rng.uniform(*spec["tone_mix"])
    return _fade((1 - mix) * noise + mix * tone * _decay(n, sr, rng.uniform(*spec["tone_tau"])), sr)


def _hat(kind: str, sr: int, rng: np.random.Generator, sos: np.ndarray) -> np.ndarray:
    """High-passed noise; the open hat rings longer."""
    tau = rng.uniform(*HAT[f"{kind}_tau"])
    n = int(DRUM_TAILS * tau * sr)
    x = _noise(n, rng, sos) * _decay(n, sr, tau)
    return _fade(x / (np.abs(x).max() + 1e-9), sr)


def _templates(plan: TrackPlan, rng: np.random.Generator) -> dict[tuple, np.ndarray]:
    """Render each distinct drum sound, note and chord once; the score reuses them."""
    sr = plan.sr
    family = "acoustic" if plan.acoustic["drums"] else "electronic"
    hat_sos = butter(2, min(rng.uniform(*HAT["hp_hz"]), NYQUIST_GUARD * sr), btype="highpass", fs=sr,
                     output="sos")
    out: dict[tuple, np.ndarray] = {}
    if plan.events["drums"]:
        out[("kick",)] = _kick(family, sr, rng)
        out[("snare",)] = _snare(family, sr, rng)
        out[("hat", "open")] = _hat("open", sr, rng, hat_sos)
        out[("hat", "closed")] = out[("hat", "beat")] = _hat("closed", sr, rng, hat_sos)
    for part in ("bass", "chords", "melody"):
        timbre = _part_timbre(part, plan.acoustic[part], sr, rng)
        for key in sorted({k for _, k, _ in plan.events[part]}):
            notes = plan.chords[key[1]] if part == "chords" else (key[1],)
            out[key] = _note(part, notes, max(1, int(key[2] * plan.step * GATE * sr)), plan, timbre, rng)
    return out


def _place(events: list[Event], templates: dict[tuple, np.ndarray], n: int, sr: int) -> np.ndarray:
    longest = max((len(templates[k]) for _, k, _ in events), default=0)
    out = np.zeros(n + longest, dtype=np.float32)
    for t, key, gain in events:
        s = round(t * sr)
        tmpl = templates[key]
        out[s:s + len(tmpl)] += np.float32(gain) * tmpl
    return out[:n]


def _formant_sos(vowel: str, scale: float, sr: int) -> np.ndarray:
    """Klatt-style cascade of DC-normalized two-pole resonators at the vowel's formants."""
    rows = []
    for f, bw in zip(VOWELS[vowel], FORMANT_BANDWIDTHS, strict=True):
        r = np.exp(-np.pi * bw / sr)
        c = 2.0 * r * np.cos(2.0 * np.pi * min(f * scale, NYQUIST_GUARD * sr) / sr)
        rows.append([1.0 - c + r * r, 0.0, 0.0, 1.0, -c, r * r])
    return np.array(rows)


def _glottal(f0: np.ndarray, sr: int, phase0: float) -> np.ndarray:
    """Rosenberg glottal-flow pulses at the instantaneous ``f0``, differentiated (lip radiation)."""
    frac = (phase0 + np.cumsum(f0) / sr) % 1.0
    opening = 0.5 * (1.0 - np.cos(np.pi * frac / GLOTTAL_OPEN))
    closing = np.cos(0.5 * np.pi * (frac - GLOTTAL_OPEN) / GLOTTAL_CLOSE)
    flow = np.where(frac < GLOTTAL_OPEN, opening, np.where(frac < GLOTTAL_OPEN + GLOTTAL_CLOSE, closing, 0.0))
    return np.diff(flow, prepend=flow[0])


def _voiced(f0: np.ndarray, vowels: tuple[str, str], sos: dict[str, np.ndarray], sr: int,
            rng: np.random.Generator) -> np.ndarray:
    """Pulses through formants that move from one vowel to the next (cross-faded resonator outputs)."""
    src = _glottal(f0, sr, rng.random())
    w = np.linspace(0.0, 1.0, len(f0))
    y = (1.0 - w) * sosfilt(sos[vowels[0]], src) + w * sosfilt(sos[vowels[1]], src)
    return (y / (np.abs(y).max() + 1e-12)).astype(np.float32)


def _voice(plan: TrackPlan, rng: np.random.Generator) -> np.ndarray:
    """Spoken syllables (falling intonation, syllable-rate envelope, consonant noise) and sung notes."""
    sr = plan.sr
    scale = 1.0 + FORMANT_SCALE_PER_OCTAVE * np.log2(plan.voice_f0 / FORMANT_REF_F0)
    sos = {v: _formant_sos(v, scale, sr) for v in VOWELS}
    hp = butter(2, min(CONSONANT_HP, NYQUIST_GUARD * sr), btype="highpass", fs=sr, output="sos")
    pieces: list[tuple[float, np.ndarray]] = []
    for t, length, va, vb, semis, consonant in plan.speech:
        m = int(length * sr)
        f0 = plan.voice_f0 * 2.0 ** (np.linspace(semis, semis - SYLLABLE_GLIDE_SEMIS, m) / 12.0)
        y = _voiced(f0, (va, vb), sos, sr, rng) * np.sin(np.pi * np.linspace(0.0, 1.0, m)).astype(np.float32)
        if consonant:  # a fricative: high-passed noise fading into the vowel
            c = int(rng.uniform(*CONSONANT_SEC) * sr)
            burst = _noise(c, rng, hp)
            y[:c] += CONSONANT_LEVEL * burst / (np.abs(burst).max() + 1e-9) * np.linspace(1.0, 0.0, c,
                                                                                          dtype=np.float32)
        pieces.append((t, y))
    for t, length, midi, va, vb in plan.sung:
        m = max(1, int(length * sr))
        f = _midi_hz(midi)
        while f > plan.voice_f0 * 2.0**SING_RANGE_OCTAVES:
            f /= 2.0
        while f < plan.voice_f0:
            f *= 2.0
        tt = np.arange(m) / sr
        vib = VIBRATO_SEMIS * np.minimum(tt / VIBRATO_ONSET_SEC, 1.0) * np.sin(2 * np.pi * VIBRATO_HZ * tt)
        pieces.append((t, _fade(_voiced(f * 2.0 ** (vib / 12.0), (va, vb), sos, sr, rng), sr)))
    longest = max((len(p) for _, p in pieces), default=0)
    out = np.zeros(plan.n + longest, dtype=np.float32)
    for t, y in pieces:
        s = round(t * sr)
        out[s:s + len(y)] += y
    return out[:plan.n]


def _crowd(plan: TrackPlan, rng: np.random.Generator) -> np.ndarray:
    """Pink noise with a slow swell, plus hand claps at random (not beat-locked) times."""
    sr, n = plan.sr, plan.n
    noise = lfilter(PINK_B, PINK_A, rng.standard_normal(n)).astype(np.float32)
    points = np.arange(0.0, plan.duration + CROWD_SWELL_SEC, CROWD_SWELL_SEC)
    swell = np.interp(np.arange(n) / sr, points, rng.uniform(*CROWD_SWELL, points.size)).astype(np.float32)
    noise *= swell / (np.sqrt(np.mean(noise**2)) + 1e-12)
    band = butter(2, [CLAP_BAND[0], min(CLAP_BAND[1], NYQUIST_GUARD * sr)], btype="bandpass", fs=sr, output="sos")
    m = int((CLAP_SPAN_SEC + DRUM_TAILS * CLAP_TAU) * sr)
    claps = []
    for _ in range(CLAP_VARIANTS):  # a clap is a few hands a few ms apart
        clap = np.zeros(m, dtype=np.float32)
        for _ in range(int(rng.integers(CLAP_BURSTS[0], CLAP_BURSTS[1] + 1))):
            s = int(rng.uniform(0.0, CLAP_SPAN_SEC) * sr)
            clap[s:] += _noise(m - s, rng, band) * _decay(m - s, sr, CLAP_TAU)
        claps.append(CLAP_LEVEL * clap / (np.abs(clap).max() + 1e-9))
    events = [(t, (v,), g) for t, v, g in plan.claps]
    return noise + _place(events, {(v,): c for v, c in enumerate(claps)}, n, sr)


def render_stems(plan: TrackPlan, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Each stem of the track, unscaled (absent stems are silent)."""
    templates = _templates(plan, rng)
    stems = {part: _place(plan.events[part], templates, plan.n, plan.sr) for part in PARTS}
    stems["voice"] = _voice(plan, rng)
    stems["crowd"] = _crowd(plan, rng) if plan.levels["crowd"] is not None else np.zeros(plan.n, np.float32)
    return stems


def _active_seconds(plan: TrackPlan) -> dict[str, float]:
    """How long each stem sounds: whole-track parts, or the summed length of melody, speech and sung notes."""
    d = plan.duration
    melody = sum(k[2] * plan.step * GATE for _, k, _ in plan.events["melody"])
    speech = sum(s[1] for s in plan.speech)
    sung = sum(s[1] for s in plan.sung)
    return {"drums": d if plan.events["drums"] else 0.0, "bass": d, "chords": d, "melody": min(d, melody),
            "voice": min(d, speech + sung), "speech": min(d, speech), "sung": min(d, sung),
            "crowd": d if plan.levels["crowd"] is not None else 0.0}


def _mix(stems: dict[str, np.ndarray], plan: TrackPlan, active: dict[str, float]) -> tuple[np.ndarray, dict]:
    """Scale every stem to its level (RMS over the time it sounds), sum; return the mix and energy shares."""
    mix = np.zeros(plan.n, dtype=np.float32)
    power = {}
    for name in STEMS:
        db, x = plan.levels[name], stems[name]
        energy = float(np.dot(x, x))
        if db is None or active[name] <= 0 or energy <= 0:
            power[name] = 0.0
            continue
        rms = np.sqrt(energy / (active[name] * plan.sr))
        mix += x * np.float32(10 ** (db / 20) / rms)
        power[name] = 10 ** (db / 10) * active[name]
    voice = max(active["voice"], 1e-9)
    power["speech"] = power["voice"] * active["speech"] / voice
    power["sung"] = power["voice"] * active["sung"] / voice
    total = sum(power[name] for name in STEMS)
    return mix, {name: p / total for name, p in power.items()}


def master(mix: np.ndarray, plan: TrackPlan) -> np.ndarray:
    """Room reverb (pedalboard), master level, soft limiter, PCM_16 quantization."""
    room = Reverb(room_size=plan.room_size, damping=REVERB_DAMPING, wet_level=plan.wet, dry_level=1.0 - plan.wet)
    y = room(mix[None, :].astype(np.float32), plan.sr)[0].astype(np.float64)
    y *= 10 ** (plan.master_db / 20) / (np.sqrt(np.mean(y**2)) + 1e-12)
    y = LIMITER_CEILING * np.tanh(y / LIMITER_CEILING)
    return np.round(y * PCM_SCALE).astype(np.int16)


def _centroid(x: np.ndarray, sr: int) -> float:
    """Magnitude-weighted spectral centroid of the whole signal (Hz), zero-padded to a fast FFT length."""
    n_fft = scipy.fft.next_fast_len(len(x), real=True)
    spectrum = np.abs(scipy.fft.rfft(x.astype(np.float32), n=n_fft))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    return float(np.dot(freqs[1:], spectrum[1:]) / (spectrum[1:].sum() + 1e-12))


def _unit(x: float) -> float:
    return float(np.clip(x, 0.0, 1.0))


def track_targets(plan: TrackPlan, shares: dict[str, float], active: dict[str, float], pcm: np.ndarray,
                  rng: np.random.Generator, label_noise: float) -> dict[str, float | int]:
    """Every target of one track (formulas in docs/synthesis-attributes.md)."""
    audio = pcm.astype(np.float64) / PCM_READ_SCALE  # exactly what soundfile reads back
    d = plan.duration
    regularity = _unit(1.0 - plan.jitter / JITTER_REF)
    strength = _unit(shares["drums"] / DRUM_SHARE_FULL)
    tempo_fit = float(np.exp(-(((plan.tempo - DANCE_TEMPO_CENTER) / DANCE_TEMPO_WIDTH) ** 2)))
    onsets = sum(len(plan.events[p]) for p in PARTS) + len(plan.sung)
    density = _unit(np.log(max(onsets / d, ONSET_RATE_LO) / ONSET_RATE_LO) / np.log(ONSET_RATE_HI / ONSET_RATE_LO))
    brightness = _unit(np.log(max(_centroid(audio, plan.sr), 1.0) / CENTROID_LO) / np.log(CENTROID_HI / CENTROID_LO))
    dissonant = np.mean([_is_dissonant(plan.chords[i]) for i in plan.bar_chords]) if plan.bar_chords else 0.0
    tempo_norm = _unit((plan.tempo - VALENCE_TEMPO_LO) / (VALENCE_TEMPO_HI - VALENCE_TEMPO_LO))
    instrument = sum(shares[p] for p in PARTS)
    acoustic = sum(shares[p] for p in PARTS if plan.acoustic[p])
    voice_time = _voice_time(plan)
    unit = {
        "danceability": DANCE_W_REGULARITY * regularity + DANCE_W_STRENGTH * strength + DANCE_W_TEMPO * tempo_fit,
        "energy": ENERGY_W_DENSITY * density + ENERGY_W_BRIGHTNESS * brightness,
        "valence": VALENCE_W_MODE * plan.major + VALENCE_W_TEMPO * tempo_norm
        + VALENCE_W_CONSONANCE * (1.0 - dissonant),
        "liveness": LIVE_W_CROWD * _unit(shares["crowd"] / CROWD_SHARE_FULL)
        + LIVE_W_ROOM * _unit(plan.room_size * plan.wet / ROOM_FULL),
        "speechiness": SPEECH_W_TIME * active["speech"] / d + SPEECH_W_ENERGY * shares["speech"],
        "instrumentalness": (1.0 - voice_time / d) * (1.0 - shares["voice"]),
        "acousticness": acoustic / instrument if instrument > 0 else 0.0,
    }
    noise = rng.normal(0.0, label_noise, len(UNIT_TARGETS)) if label_noise > 0 else np.zeros(len(UNIT_TARGETS))
    values: dict[str, float | int] = {
        name: round(_unit(unit[name] + eps), DECIMALS) for name, eps in zip(UNIT_TARGETS, noise, strict=True)
    }
    values.update(tempo=plan.tempo, loudness=round(float(pyloudnorm.Meter(plan.sr).integrated_loudness(audio)), 3),
                  time_signature=plan.meter, key=plan.key)
    return {name: values[name] for name in TARGETS}


def _voice_time(plan: TrackPlan) -> float:
    """Seconds during which any voice (spoken or sung) sounds; overlapping phrases count once."""
    spans = sorted([(t, t + n) for t, n, *_ in plan.speech] + [(t, t + n) for t, n, *_ in plan.sung])
    total, end = 0.0, -np.inf
    for a, b in spans:
        b = min(b, plan.duration)
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def render_track(index: int, style: ArtistStyle, cfg: SynthesizeTracks, seed: int) -> tuple[np.ndarray, dict]:
    """Plan, render and measure one track; return its PCM_16 samples and its targets."""
    rng = np.random.default_rng([seed, index])
    plan = plan_track(cfg, style, rng)
    stems = render_stems(plan, rng)
    active = _active_seconds(plan)
    mix, shares = _mix(stems, plan, active)
    pcm = master(mix, plan)
    return pcm, track_targets(plan, shares, active, pcm, rng, cfg.label_noise)


def _render_job(args: tuple[int, ArtistStyle, SynthesizeTracks, int, str, str]) -> dict:
    index, style, cfg, seed, track_id, out_dir = args
    pcm, targets = render_track(index, style, cfg, seed)
    rel = f"audio/{track_id}.wav"
    with atomic_path(Path(out_dir) / rel) as tmp:  # a killed run leaves no truncated WAV behind
        sf.write(tmp, pcm, cfg.sample_rate, subtype="PCM_16", format="WAV")
    return {"track_id": track_id, "audio_path": rel, "group": style.name,
            "duration_sec": round(len(pcm) / cfg.sample_rate, 6), **targets}


def missing_mask(n_rows: int, cfg: SynthesizeTracks, seed: int) -> np.ndarray:
    """Which target cells are left empty: ``missing_fraction`` of all cells, never in ``NEVER_MISSING``."""
    eligible = [j for j, name in enumerate(TARGETS) if name not in NEVER_MISSING]
    n_missing = min(round(cfg.missing_fraction * n_rows * len(TARGETS)), n_rows * len(eligible))
    rng = np.random.default_rng([seed, 0, MISSING_STREAM])
    cells = rng.choice(n_rows * len(eligible), size=n_missing, replace=False)
    mask = np.zeros((n_rows, len(TARGETS)), dtype=bool)
    mask[cells // len(eligible), np.asarray(eligible)[cells % len(eligible)]] = True
    return mask


def synthesize_tracks(cfg: SynthesizeTracks, out_dir: Path, seed: int, workers: int) -> pd.DataFrame:
    """Render ``cfg.n_tracks`` WAVs under ``out_dir/audio/``; return the metadata table (targets may be NaN)."""
    styles = artist_styles(cfg, seed)
    artists = assign_artists(cfg, seed)
    width = max(4, len(str(cfg.n_tracks - 1)))
    args = [(i, styles[a], cfg, seed, f"t{i:0{width}d}", str(out_dir)) for i, a in enumerate(artists)]
    rows = list(tqdm(ordered_map(_render_job, args, workers), total=len(args), desc="synthesize tracks"))
    meta = pd.DataFrame(rows, columns=list(COLUMNS))
    mask = missing_mask(len(meta), cfg, seed)
    for j, name in enumerate(TARGETS):
        column = meta[name].astype("Int64" if name in INTEGER_TARGETS else "float64")
        meta[name] = column.mask(mask[:, j])
    return meta
