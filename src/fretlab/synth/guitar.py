"""Synthetic guitar- and bass-note generator: the embedded default dataset.

A physically motivated plucked-string model (see ``docs/synthesis.md``): inharmonic partials
weighted by pluck and pickup position, frequency-dependent decay, body resonances, attack
noise, and expression styles NO/BE/SL/VI (general notes, incl. palm mutes and bass slaps), HA
(natural harmonics) and DN (dead notes), played on guitars and on basses (as in IDMT-SMT-Bass),
then through a randomized recording chain (``fretlab.synth.recording_chain``). Each file is
rendered from its own seed, so the dataset is identical whatever the number of worker processes.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from scipy.signal import lfilter
from tqdm import tqdm

from fretlab.io import atomic_path
from fretlab.params import Synthesize
from fretlab.synth.recording_chain import band_limit, colour

OPEN_STRINGS = (40, 45, 50, 55, 59, 64)  # standard tuning, MIDI
BASS_STRINGS = (28, 33, 38, 43)  # four-string bass, MIDI; a five-string adds a low B (23)
LOW_B = 23
ELECTRIC_KINDS = ("electric", "bass_electric", "bass_fretless")
# node divisor -> semitones above the open string (nearest: the 7th partial sounds 31 cents below +34; the
# rendered partials sit at exact multiples of the open string either way)
HARMONIC_NODES = {2: 12, 3: 19, 4: 24, 5: 28, 6: 31, 7: 34, 8: 36}
GENERAL_STYLES = ("NO", "BE", "SL", "VI")
LABEL_STYLES = {"harmonic": "HA", "dead_note": "DN"}
FADE_SEC = 0.02
DEFAULT = Synthesize()  # the renderers' timbre ranges when no config is given


@dataclass(frozen=True)
class Guitar:
    """One virtual instrument: its body, strings, pickup and player."""

    name: str
    kind: str  # acoustic | classical | electric | bass_electric | bass_fretless | bass_acoustic
    body_freqs: tuple[float, ...]
    body_q: tuple[float, ...]
    body_gains: tuple[float, ...]
    brightness_hz: float
    decay_sec: float
    hf_damping: float
    inharmonicity: float
    pickup_pos: float | None
    open_strings: tuple[int, ...] = OPEN_STRINGS  # MIDI, lowest first, after the instrument's tuning offset

    @property
    def is_bass(self) -> bool:
        return self.kind.startswith("bass")

    @property
    def is_electric(self) -> bool:
        return self.kind in ELECTRIC_KINDS


@dataclass(frozen=True)
class NoteSpec:
    label: str
    style: str
    excitation: str  # FS finger, PK pick, MU palm-muted, ST slap thumb, SP slap pop (bass)
    pitch: int
    string: int  # index into the instrument's open_strings, lowest first
    duration: float  # sounding length before the player damps it
    attack_sec: float | None = None  # harmonics: the amplitude ramp (None: drawn at render time)


def make_guitar(index: int, rng: np.random.Generator, detune: tuple[int, int] = (0, 0)) -> Guitar:
    """Draw one virtual guitar's construction and setup (tuned ``detune`` semitones from standard)."""
    kind = ("acoustic", "classical", "electric")[index % 3]
    n_modes = int(rng.integers(3, 6))
    base = {"acoustic": 100.0, "classical": 95.0, "electric": 180.0}[kind]
    freqs = np.sort(base * np.exp(rng.uniform(0.0, 3.2, n_modes)))
    gains = rng.uniform(0.5, 3.0, n_modes) * (0.4 if kind == "electric" else 1.0)
    return Guitar(
        name=f"guitar_{index:03d}",
        kind=kind,
        body_freqs=tuple(freqs),
        body_q=tuple(rng.uniform(4.0, 25.0, n_modes)),
        body_gains=tuple(gains),
        # a roll-off in Hz, so it darkens high notes most: kept high enough that a 20th-fret note still
        # has strong 2nd and 3rd partials, as recorded ones do (a harmonic is the pure one)
        brightness_hz=float(rng.uniform(2500, 5000) if kind == "classical" else rng.uniform(4000, 10000)),
        decay_sec=float(rng.uniform(0.8, 1.6) if kind == "classical" else rng.uniform(1.2, 3.0)),
        hf_damping=float(rng.uniform(0.5, 2.0)),
        inharmonicity=float(rng.uniform(2e-5, 2.5e-4)),
        pickup_pos=float(rng.uniform(0.05, 0.25)) if kind == "electric" else None,
        open_strings=_tuned(OPEN_STRINGS, detune, rng),
    )


def _tuned(strings: tuple[int, ...], detune: tuple[int, int], rng: np.random.Generator) -> tuple[int, ...]:
    offset = int(rng.integers(detune[0], detune[1] + 1))
    return tuple(p + offset for p in strings)


def make_bass(index: int, rng: np.random.Generator, detune: tuple[int, int] = (0, 0)) -> Guitar:
    """Draw one virtual bass: electric (four or five strings), fretless or acoustic."""
    kind = ("bass_electric", "bass_fretless", "bass_electric", "bass_acoustic")[index % 4]
    n_modes = int(rng.integers(2, 5))
    base = 70.0 if kind == "bass_acoustic" else 150.0
    freqs = np.sort(base * np.exp(rng.uniform(0.0, 2.8, n_modes)))
    gains = rng.uniform(0.5, 3.0, n_modes) * (1.0 if kind == "bass_acoustic" else 0.3)
    strings = ((LOW_B,) if kind == "bass_electric" and rng.random() < 0.4 else ()) + BASS_STRINGS
    return Guitar(
        name=f"bass_{index:03d}",
        kind=kind,
        body_freqs=tuple(freqs),
        body_q=tuple(rng.uniform(3.0, 15.0, n_modes)),
        body_gains=tuple(gains),
        brightness_hz=float(rng.uniform(900, 2500) if kind == "bass_acoustic" else rng.uniform(1200, 5000)),
        decay_sec=float(rng.uniform(1.0, 2.0) if kind == "bass_acoustic" else rng.uniform(1.5, 4.0)),
        hf_damping=float(rng.uniform(0.8, 3.0)),
        inharmonicity=float(rng.uniform(5e-5, 4e-4)),
        pickup_pos=float(rng.uniform(0.08, 0.3)) if kind != "bass_acoustic" else None,
        open_strings=_tuned(strings, detune, rng),
    )


def _body_response(guitar: Guitar, freqs: np.ndarray) -> np.ndarray:
    resp = np.ones_like(freqs)
    for f, q, g in zip(guitar.body_freqs, guitar.body_q, guitar.body_gains, strict=True):
        resp += g / (1.0 + ((freqs - f) / (f / q)) ** 2)
    return resp


def _midi_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def _pitch_curve(style: str, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Instantaneous frequency ratio over time for bends, slides and vibrato."""
    t = np.arange(n, dtype=np.float32) / sr
    if style == "BE":
        depth = rng.choice([1.0, 2.0]) * rng.uniform(0.8, 1.05)
        start, rise = rng.uniform(0.05, 0.25), rng.uniform(0.08, 0.3)
        semis = depth * np.clip((t - start) / rise, 0.0, 1.0)
        if rng.random() < 0.4:  # bend and release
            semis = semis * np.clip(1.0 - (t - start - rise - 0.2) / rise, 0.0, 1.0)
        return (2.0 ** (semis / 12.0)).astype(np.float32)
    if style == "SL":
        span = rng.integers(2, 7) * rng.choice([-1, 1])
        glide = rng.uniform(0.05, 0.2)
        semis = span * (np.clip(t / glide, 0.0, 1.0) - 1.0)  # arrives at the annotated pitch
        return (2.0 ** (semis / 12.0)).astype(np.float32)
    if style == "VI":
        rate, depth = rng.uniform(4.0, 7.0), rng.uniform(0.15, 0.5)
        onset = np.clip(t / 0.15, 0.0, 1.0)
        return (2.0 ** (depth * onset * np.sin(2 * np.pi * rate * t) / 12.0)).astype(np.float32)
    return np.ones(n, dtype=np.float32)


PARTIAL_FLOOR = 1e-5  # -100 dB of the loudest partial: a partial is not rendered once it decays below
BLOCK = 8192  # samples per rendering block: only the partials still sounding are summed in a block


def _partials(
    freqs: np.ndarray, amps: np.ndarray, rates: np.ndarray, ratio: np.ndarray, sr: int, rng: np.random.Generator
) -> np.ndarray:
    """Sum of exponentially decaying sinusoids following a shared pitch curve.

    Rendered block by block, each block summing only the partials above ``PARTIAL_FLOOR``: on a
    several-second note the upper partials are gone in a fraction of a second, so long notes cost
    little more than short ones.
    """
    n = len(ratio)
    keep = (freqs * ratio.max() < 0.45 * sr) & (amps > 1e-4)
    freqs, amps, rates = freqs[keep], amps[keep], rates[keep]
    out = np.zeros(n, dtype=np.float32)
    if freqs.size == 0:
        return out
    phase0 = rng.uniform(0, 2 * np.pi, (freqs.size, 1))
    peak = amps.max()
    life = np.log(np.maximum(amps / (peak * PARTIAL_FLOOR), 1.0)) / np.maximum(rates, 1e-6)  # seconds
    base_phase = ((2 * np.pi / sr) * np.cumsum(ratio, dtype=np.float64)).astype(np.float32)
    for start in range(0, n, BLOCK):
        alive = life * sr > start
        if not alive.any():
            break
        stop = min(n, start + BLOCK)
        t = np.arange(start, stop, dtype=np.float32) / sr
        f, a, r = freqs[alive, None].astype(np.float32), amps[alive, None], rates[alive, None].astype(np.float32)
        block = a.astype(np.float32) * np.exp(-r * t[None, :]) * np.sin(f * base_phase[None, start:stop]
                                                                      + phase0[alive])
        out[start:stop] = block.sum(axis=0)
    return out


def _two_polarizations(
    freqs: np.ndarray, amps: np.ndarray, rates: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each partial as two string polarizations: a fast-decaying one and a slower, slightly detuned one.

    A real string's vertical and horizontal motions decay at different rates (the bridge loads them
    differently) and at slightly different frequencies, so a recorded note shows a two-stage decay (a
    quick drop, then a long tail) and beating; one exponential per partial shows neither.
    """
    share = rng.uniform(0.15, 0.6, freqs.size)  # of each partial's amplitude in the slow polarization
    detune = 1.0 + rng.uniform(-1.0, 1.0, freqs.size) * 1.5e-3
    slow = rng.uniform(0.2, 0.6, freqs.size)
    return (np.concatenate([freqs, freqs * detune]), np.concatenate([amps * (1 - share), amps * share]),
            np.concatenate([rates, rates * slow]))


def _attack_noise(n: int, sr: int, level: float, tau: float, cutoff: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n, dtype=np.float32) / sr
    alpha = float(np.exp(-2 * np.pi * cutoff / sr))
    noise = lfilter([1 - alpha], [1, -alpha], rng.standard_normal(n)).astype(np.float32)
    return level * noise * np.exp(-t / tau) / (np.std(noise) + 1e-9)


def _release(sig: np.ndarray, duration: float, sr: int) -> np.ndarray:
    """The player damps the string after ``duration``: a short fade, then silence."""
    stop = min(len(sig), int(duration * sr))
    fade = min(int(FADE_SEC * sr), len(sig) - stop)
    sig[stop : stop + fade] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    sig[stop + fade :] = 0.0
    return sig


def render_plucked(note: NoteSpec, guitar: Guitar, sr: int, rng: np.random.Generator,
                   cfg: Synthesize = DEFAULT) -> np.ndarray:
    """A fretted note (normal, bend, slide, vibrato or palm-muted); ``cfg`` sets the plucks' timbre ranges."""
    n = int((note.duration + FADE_SEC) * sr) + 1
    f0 = _midi_hz(note.pitch)
    k = np.arange(1, 41, dtype=np.float64)
    freqs = k * f0 * np.sqrt(1.0 + _inharmonicity(guitar, note.string) * k**2)
    muted = note.excitation == "MU"
    pluck = rng.uniform(0.06, 0.14) if note.excitation in ("PK", "SP", "ST") else rng.uniform(0.12, 0.3)
    slope = {"PK": rng.uniform(*cfg.pick_rolloff), "FS": rng.uniform(*cfg.finger_rolloff),
             "MU": rng.uniform(1.6, 2.4), "ST": rng.uniform(0.9, 1.4), "SP": rng.uniform(0.7, 1.2)}[note.excitation]
    amps = np.abs(np.sin(np.pi * k * pluck)) / k**slope
    if guitar.pickup_pos is not None:
        amps *= 0.3 + np.abs(np.sin(np.pi * k * guitar.pickup_pos))
    brightness = guitar.brightness_hz * (rng.uniform(*cfg.palm_mute_brightness) if muted else rng.uniform(0.7, 1.3))
    amps *= _body_response(guitar, freqs) * np.exp(-freqs / brightness)
    tau = guitar.decay_sec * rng.uniform(0.7, 2.0) * (110.0 / f0) ** 0.3
    if muted:  # from a hard chug to a light palm touch that lets the note ring for half a second
        tau = float(np.exp(rng.uniform(*np.log(cfg.palm_mute_decay_sec))))
    rates = 1.0 / tau + guitar.hf_damping * (1.0 + 6.0 * muted) * (freqs / 1000.0) ** cfg.damping_power
    ratio = _pitch_curve(note.style, n, sr, rng)
    amps = amps / amps.max()
    if cfg.two_stage_decay:
        freqs, amps, rates = _two_polarizations(freqs, amps, rates, rng)
    sig = _partials(freqs, amps, rates, ratio, sr, rng)
    noise_level = {"PK": rng.uniform(0.05, 0.4), "FS": rng.uniform(0.01, 0.12), "MU": rng.uniform(*cfg.palm_mute_noise),
                   "ST": rng.uniform(0.2, 0.6) * cfg.slap_click_gain,  # slaps: the string hits the frets
                   "SP": rng.uniform(0.3, 0.8) * cfg.slap_click_gain}
    sig += _attack_noise(n, sr, noise_level[note.excitation] * np.abs(sig).max(), rng.uniform(0.002, 0.012),
                         rng.uniform(1500, 6000), rng)
    attack = int(rng.uniform(0.001, 0.004) * sr)
    sig[:attack] *= np.linspace(0.0, 1.0, attack, dtype=np.float32)
    return _release(sig, note.duration, sr)


def _inharmonicity(guitar: Guitar, string: int) -> float:
    """B grows towards the instrument's lowest, thickest string."""
    n = len(guitar.open_strings)
    return guitar.inharmonicity * (1.0 + 0.5 * (n - 1 - string) / max(n - 1, 1))


def render_harmonic(note: NoteSpec, guitar: Guitar, sr: int, rng: np.random.Generator,
                    cfg: Synthesize = DEFAULT) -> np.ndarray:
    """A natural harmonic: only partials at multiples of the node number survive, purer and longer."""
    n = int((note.duration + FADE_SEC) * sr) + 1
    open_pitch = guitar.open_strings[note.string]
    node = next(d for d, semis in HARMONIC_NODES.items() if open_pitch + semis == note.pitch)
    f_open = _midi_hz(open_pitch)
    k = np.arange(1, 41, dtype=np.float64)
    freqs = k * f_open * np.sqrt(1.0 + _inharmonicity(guitar, note.string) * k**2)
    on_node = (k % node) == 0
    order = k / node
    # off-node partials: from a clean touch (-50 dB) to a sloppy one (-12 dB), damped by the touching finger
    amps = np.where(on_node, 1.0 / order ** rng.uniform(*cfg.harmonic_rolloff),
                    np.exp(rng.uniform(np.log(0.003), np.log(0.25))) / k)
    if cfg.harmonic_pluck_position is not None:  # the pluck point's comb, as in render_plucked
        amps *= np.abs(np.sin(np.pi * k * rng.uniform(*cfg.harmonic_pluck_position)))
    if guitar.pickup_pos is not None:
        amps *= 0.3 + np.abs(np.sin(np.pi * k * guitar.pickup_pos))
    amps *= _body_response(guitar, freqs) * np.exp(-freqs / (guitar.brightness_hz * rng.uniform(0.8, 1.5)))
    # as long as, or longer than, a fretted note's: sustain alone must not tell the two apart (real
    # one-shots of both ring for seconds)
    tau = guitar.decay_sec * rng.uniform(0.7, 2.0) * (110.0 / freqs[node - 1]) ** 0.2
    rates = np.where(on_node, 1.0 / tau + 0.5 * guitar.hf_damping * (freqs / 1000.0) ** cfg.damping_power,
                     1.0 / rng.uniform(*cfg.harmonic_touch_decay_sec))  # the touching finger damps off-node partials
    ratio = _pitch_curve("VI" if rng.random() < 0.1 else "NO", n, sr, rng)
    amps = amps / amps.max()
    if cfg.two_stage_decay:
        freqs, amps, rates = _two_polarizations(freqs, amps, rates, rng)
    sig = _partials(freqs, amps, rates, ratio, sr, rng)
    sig += _attack_noise(n, sr, rng.uniform(0.01, 0.2) * np.abs(sig).max(), rng.uniform(0.002, 0.01),
                         rng.uniform(1500, 6000), rng)
    attack = int((note.attack_sec if note.attack_sec is not None else rng.uniform(0.002, 0.012)) * sr)
    sig[:attack] *= np.linspace(0.0, 1.0, attack, dtype=np.float32)
    return _release(sig, note.duration, sr)


def render_dead(note: NoteSpec, guitar: Guitar, sr: int, rng: np.random.Generator,
                cfg: Synthesize = DEFAULT) -> np.ndarray:
    """A fretting-hand muted 'dead' note: percussive burst, a few heavily damped partials."""
    n = int((note.duration + FADE_SEC) * sr) + 1
    burst = _attack_noise(n, sr, 1.0, note.duration / rng.uniform(2.0, 4.0), rng.uniform(800, 4000), rng)
    f0 = _midi_hz(note.pitch)
    k = np.arange(1, int(rng.integers(2, 6)) + 1, dtype=np.float64)
    freqs = k * f0
    amps = rng.uniform(0.2, 1.2) / k ** rng.uniform(1.0, 2.0)
    rates = 1.0 / rng.uniform(0.008, 0.04, k.size)
    tonal = _partials(freqs, amps, rates, np.ones(n, dtype=np.float32), sr, rng)
    body_f = np.asarray(guitar.body_freqs[:2])
    thump = _partials(body_f, rng.uniform(0.2, 0.8, body_f.size), 1.0 / rng.uniform(0.01, 0.05, body_f.size),
                      np.ones(n, dtype=np.float32), sr, rng)
    sig = burst + tonal * np.abs(burst).max() + thump * np.abs(burst).max()
    return _release(sig.astype(np.float32), note.duration, sr)


RENDERERS = {"harmonic": render_harmonic, "dead_note": render_dead, "general_note": render_plucked}


def harmonic_sustain(cfg: Synthesize) -> tuple[float, float]:
    """How long a harmonic may ring (seconds): ``synthesize.harmonic_sustain_sec``, else the original range."""
    return cfg.harmonic_sustain_sec or (0.7, max(2.0, cfg.sustain_sec[1]))


def _fretted_position(strings_midi: tuple[int, ...], frets: int, pitch_range: tuple[int, int], sampling: str,
                      rng: np.random.Generator) -> tuple[int, int]:
    """The string and MIDI pitch of a fretted (or dead) note within ``pitch_range``.

    ``string``: a string, then a fret, so mid-neck pitches that several strings reach are the most common and
    the top few frets of the highest string are rare. ``uniform``: every reachable pitch equally likely, then a
    string that reaches it, so pitch alone says little about the class (harmonics reach the top of the range too).
    """
    lo, hi = pitch_range
    strings = [s for s, open_p in enumerate(strings_midi) if open_p <= hi and open_p + frets >= lo] or [0]
    if sampling == "uniform":
        low = max(lo, min(strings_midi[s] for s in strings))
        high = max(low, min(hi, max(strings_midi[s] for s in strings) + frets))
        pitch = int(rng.integers(low, high + 1))
        playable = [s for s in strings if strings_midi[s] <= pitch <= strings_midi[s] + frets] or strings
        return int(rng.choice(playable)), pitch
    string = int(rng.choice(strings))
    return string, int(np.clip(strings_midi[string] + rng.integers(0, frets + 1), lo, hi))


def draw_note(label: str, cfg: Synthesize, rng: np.random.Generator, instrument: Guitar | None = None) -> NoteSpec:
    """Draw the style, excitation, string, pitch and duration of one note of class ``label``.

    ``instrument`` sets the strings and pitch range (``synthesize.bass_pitch_range`` for a bass);
    None: a guitar in standard tuning.
    """
    strings_midi = instrument.open_strings if instrument is not None else OPEN_STRINGS
    bass = instrument is not None and instrument.is_bass
    lo, hi = cfg.bass_pitch_range if bass else cfg.pitch_range
    plucks = ["FS", "PK", "ST", "SP"] if bass else ["FS", "PK"]
    if label == "harmonic":
        # every node of every string the player has: a harmonic is not bounded by the highest fret
        options = [(s, d) for s, open_p in enumerate(strings_midi) for d, semis in HARMONIC_NODES.items()
                   if d in cfg.harmonic_nodes and lo <= open_p + semis]
        if not options:  # a range holding no node of these strings: the nearest-fitting 12th-fret harmonic
            options = [(len(strings_midi) - 1, 2)]
        string, node = options[rng.integers(len(options))]
        return NoteSpec(label, "HA", str(rng.choice(["FS", "PK"])), strings_midi[string] + HARMONIC_NODES[node],
                        string, float(rng.uniform(*harmonic_sustain(cfg))),
                        float(rng.uniform(*cfg.harmonic_attack_ms)) / 1000.0)
    string, pitch = _fretted_position(strings_midi, cfg.frets, (lo, hi), cfg.pitch_sampling, rng)
    if label == "dead_note":
        return NoteSpec(label, "DN", str(rng.choice(plucks)), pitch, string, float(rng.uniform(0.015, 0.08)))
    if rng.random() < 0.25:
        return NoteSpec(label, "NO", "MU", pitch, string, float(rng.uniform(*cfg.palm_mute_sec)))
    style = str(rng.choice(GENERAL_STYLES, p=[0.4, 0.2, 0.2, 0.2]))
    weights = [0.45, 0.2, 0.2, 0.15] if bass else [0.5, 0.5]
    return NoteSpec(label, style, str(rng.choice(plucks, p=weights)), pitch, string,
                    float(rng.uniform(*cfg.sustain_sec)))


def _hum_and_hiss(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n, dtype=np.float32) / sr
    mains = rng.choice([50.0, 60.0])
    hum = sum(rng.uniform(0.1, 1.0) / h * np.sin(2 * np.pi * mains * h * t + rng.uniform(0, 2 * np.pi))
              for h in range(1, 6))
    hiss = rng.standard_normal(n).astype(np.float32) * rng.uniform(0.5, 2.0)
    return (hum + hiss).astype(np.float32)


def render_file(
    notes: list[NoteSpec], guitar: Guitar, cfg: Synthesize, seed: int
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Render one recording (a snippet or a multi-note lick); return audio and (onset, offset) pairs."""
    rng = np.random.default_rng(seed)
    sr = cfg.sample_rate
    lick = len(notes) > 1
    onsets, t = [], rng.uniform(*cfg.snippet_onset_sec) if not lick else rng.uniform(0.02, 0.2)
    for _ in notes:
        onsets.append(t)
        t += rng.uniform(0.2, 0.8) if lick else 0.0
    length = onsets[-1] + notes[-1].duration + FADE_SEC + rng.uniform(0.05, 0.3)
    if not lick:  # a one-shot: cut where the file ends, or the note dies out inside it
        length = max(min(length, rng.uniform(*cfg.snippet_sec)), onsets[0] + 0.05)
    out = np.zeros(int(length * sr), dtype=np.float32)
    times = []
    for i, (note, onset) in enumerate(zip(notes, onsets, strict=True)):
        sig = RENDERERS[note.label](note, guitar, sr, rng, cfg) * rng.uniform(0.5, 1.0)
        sounding = note.duration
        if i + 1 < len(notes) and rng.random() < 0.7:  # the next pluck chokes this note
            sounding = min(sounding, onsets[i + 1] - onset)
            sig = _release(sig, sounding, sr)
        start = int(onset * sr)
        piece = sig[: len(out) - start]
        out[start : start + len(piece)] += piece
        times.append((onset, min(onset + sounding, length)))
    if not lick:
        out = _release(out, length - FADE_SEC, sr)
    out = colour(out, sr, guitar.is_electric, cfg.effects, rng)
    active = out[np.abs(out) > 1e-4 * (np.abs(out).max() + 1e-12)]
    signal_rms = float(np.sqrt(np.mean(active**2))) if active.size else 1.0
    noise = _hum_and_hiss(len(out), sr, rng)
    snr = rng.uniform(*cfg.snr_db)
    out += noise * signal_rms / (np.sqrt(np.mean(noise**2)) + 1e-12) * 10 ** (-snr / 20)
    out = band_limit(out, sr, cfg.effects, rng)
    gain = 10 ** (rng.uniform(*cfg.gain_db) / 20)
    out *= gain / (np.abs(out).max() + 1e-9) * 0.99
    return out, times


@dataclass(frozen=True)
class FileJob:
    file_id: str
    guitar: Guitar
    notes: list[NoteSpec]
    seed: int


def plan_dataset(cfg: Synthesize, classes: list[str], seed: int) -> list[FileJob]:
    """Decide every file's guitar, notes and seed (the whole dataset, before rendering)."""
    rng = np.random.default_rng(seed)
    instruments = ([make_guitar(i, rng, cfg.detune_semitones) for i in range(cfg.n_guitars)]
                   + [make_bass(i, rng, cfg.detune_semitones) for i in range(cfg.n_basses)])
    fractions = np.array([cfg.class_fractions.get(c, 0.0) for c in classes], dtype=np.float64)
    counts = np.floor(fractions / fractions.sum() * cfg.n_events).astype(int)
    counts[int(np.argmax(fractions))] += cfg.n_events - counts.sum()
    labels = rng.permutation(np.repeat(classes, counts))
    jobs, i = [], 0
    lick_budget = round(cfg.lick_fraction * cfg.n_events)
    while i < len(labels):
        size = 1
        if lick_budget >= cfg.notes_per_lick[0]:
            size = min(int(rng.integers(cfg.notes_per_lick[0], cfg.notes_per_lick[1] + 1)), lick_budget)
            lick_budget -= size
        instrument = instruments[rng.integers(len(instruments))]
        notes = [draw_note(str(label), cfg, rng, instrument) for label in labels[i : i + size]]
        jobs.append(FileJob(f"{len(jobs):06d}", instrument, notes, int(rng.integers(2**31))))
        i += size
    return list(rng.permutation(np.array(jobs, dtype=object)))


def _render_job(args: tuple[FileJob, Synthesize, str]) -> list[dict]:
    job, cfg, out_dir = args
    audio, times = render_file(job.notes, job.guitar, cfg, job.seed)
    rel = Path("audio") / job.guitar.name / f"{job.file_id}.wav"
    path = Path(out_dir) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # a killed run leaves no truncated WAV behind
        sf.write(tmp, audio, cfg.sample_rate, subtype="PCM_16", format="WAV")
    return [
        {
            "note_id": f"{job.file_id}_{k:02d}",
            "audio_path": rel.as_posix(),
            "onset_sec": round(onset, 6),
            "offset_sec": round(offset, 6),
            "pitch_midi": note.pitch,
            "expression_style": note.style,
            "excitation_style": note.excitation,
            "label_category": note.label,
            "group": job.guitar.name,
        }
        for k, (note, (onset, offset)) in enumerate(zip(job.notes, times, strict=True))
    ]


def synthesize_dataset(cfg: Synthesize, classes: list[str], out_dir: Path, seed: int, workers: int) -> pd.DataFrame:
    """Render the whole dataset into ``out_dir``; return its metadata (standard schema)."""
    jobs = plan_dataset(cfg, classes, seed)
    args = [(job, cfg, str(out_dir)) for job in jobs]
    rows: list[dict] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for file_rows in tqdm(pool.map(_render_job, args, chunksize=8), total=len(args), desc="synthesize"):
            rows.extend(file_rows)
    return pd.DataFrame(rows).sort_values("note_id", ignore_index=True)
