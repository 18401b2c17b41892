"""Typed loader for ``params.yaml``: the one place parameters are read and validated."""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_PARAMS = Path("params.yaml")


class ParamsError(ValueError):
    """A params file that is missing, malformed, or holds an invalid value."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Paths(_Section):
    synthetic: str = "data/synthetic"
    split: str = "data/split"
    features: str = "data/features"
    model: str = "models/default"
    checkpoints: str = "checkpoints"
    live: str = "dvclive"
    metrics: str = "metrics"
    plots: str = "plots"
    cv: str = "cv"  # cross-validation summary (aggregate stage of recipes/*)
    checkset: str = "data/checkset"  # real-sampled check set (render_checkset): WAVs + metadata.csv
    # check-set metrics, confusion data and figures (evaluate_checkset); not under metrics/ or plots/,
    # which are the evaluate stage's outputs, because DVC refuses outputs that overlap
    checkset_report: str = "checkset"
    # the evaluated model card (card stage): the train stage's card plus the test and check-set figures
    model_card: str = "reports/model_card.md"


class Base(_Section):
    seed: int = 42
    workers: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    deterministic: bool = False  # deterministic torch kernels (cuDNN/cuBLAS flags); see docs/reliability.md


class Data(_Section):
    # synthetic / synthetic_tracks / synthetic_rudiments / synthetic_playlists: the embedded generators
    # (synthesize, synthesize_tracks, synthesize_rudiments and synthesize_playlists sections)
    source: Literal["synthetic", "synthetic_tracks", "synthetic_rudiments", "synthetic_playlists", "csv", "idmt",
                    "esc50", "urbansound8k"] = "synthetic"
    root: str = "data/synthetic"
    metadata: str = "metadata.csv"
    classes: list[str] = Field(default_factory=lambda: ["general_note", "harmonic", "dead_note"])
    esc10: bool = False  # esc50 source: keep only the ESC-10 subset (the esc10 column)

    @model_validator(mode="after")
    def _classes_unique(self) -> Data:
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"data.classes must hold at least 2 distinct names, got {self.classes}")
        return self


def _check_range(name: str, pair: tuple[float, float]) -> None:
    if pair[0] > pair[1]:
        raise ValueError(f"{name} must be [low, high] with low <= high, got {list(pair)}")


class SynthEffects(_Section):
    """The recording chain drawn per synthetic guitar/bass file (fretlab.synth.recording_chain)."""

    enabled: bool = True
    drive_probability: float = Field(0.4, ge=0.0, le=1.0)  # electric instruments through an overdriven amp
    drive_db: tuple[float, float] = (6.0, 30.0)  # pedalboard.Distortion drive
    swell_probability: float = Field(0.0, ge=0.0, le=1.0)  # a driven file's input fades in (volume swell, bloom)
    swell_ms: tuple[float, float] = (50.0, 300.0)  # how long that fade-in takes
    eq_db: float = Field(6.0, ge=0.0, le=24.0)  # low shelf, one peak and high shelf, each +- this
    reverb_probability: float = Field(0.5, ge=0.0, le=1.0)
    room_size: tuple[float, float] = (0.05, 0.6)  # pedalboard.Reverb room_size
    reverb_wet: tuple[float, float] = (0.05, 0.3)  # wet_level (dry = 1 - wet)
    lowpass_probability: float = Field(0.4, ge=0.0, le=1.0)  # codec / cheap microphone band limit
    lowpass_hz: tuple[float, float] = (3500.0, 16000.0)

    @model_validator(mode="after")
    def _check(self) -> SynthEffects:
        for name in ("drive_db", "swell_ms", "room_size", "reverb_wet", "lowpass_hz"):
            _check_range(f"synthesize.effects.{name}", getattr(self, name))
        if not (self.room_size[0] >= 0.0 and self.room_size[1] <= 1.0 and self.reverb_wet[0] >= 0.0
                and self.reverb_wet[1] <= 1.0):
            raise ValueError("synthesize.effects.room_size and reverb_wet must lie in [0, 1]")
        if self.lowpass_hz[0] <= 0:
            raise ValueError("synthesize.effects.lowpass_hz must be positive")
        if self.swell_ms[0] <= 0:
            raise ValueError(f"synthesize.effects.swell_ms must be positive, got {list(self.swell_ms)}")
        return self


class Synthesize(_Section):
    n_events: int = Field(2000, ge=3)
    n_guitars: int = Field(20, ge=1)
    n_basses: int = Field(6, ge=0)  # electric (4/5-string, fretless) and acoustic basses; 0: guitars only
    class_fractions: dict[str, float] = Field(
        default_factory=lambda: {"general_note": 0.7, "harmonic": 0.15, "dead_note": 0.15}
    )
    lick_fraction: float = Field(0.35, ge=0.0, le=1.0)
    notes_per_lick: tuple[int, int] = (3, 6)
    sample_rate: int = Field(44100, ge=8000)
    pitch_range: tuple[int, int] = (40, 88)
    snr_db: tuple[float, float] = (12.0, 40.0)
    gain_db: tuple[float, float] = (-24.0, 0.0)
    bass_pitch_range: tuple[int, int] = (28, 67)
    detune_semitones: tuple[int, int] = (-2, 0)  # per-instrument tuning offset (drop / half-step-down tunings)
    snippet_sec: tuple[float, float] = (0.6, 3.0)  # one-note file length
    snippet_onset_sec: tuple[float, float] = (0.0, 0.1)  # where a one-note file's note starts
    sustain_sec: tuple[float, float] = (0.25, 3.0)  # how long a normal note rings before the player damps it
    harmonic_attack_ms: tuple[float, float] = (2.0, 60.0)  # a harmonic's amplitude ramp (softer than a pluck)
    # how long a harmonic rings before it is damped; None: 0.7 s up to max(2 s, sustain_sec's top)
    harmonic_sustain_sec: tuple[float, float] | None = None
    # how long the off-node partials of a harmonic ring (uniform): a clean touch kills them within ms, a finger
    # lifted early lets them ring on under the harmonic
    harmonic_touch_decay_sec: tuple[float, float] = (0.004, 0.03)
    harmonic_rolloff: tuple[float, float] = (1.2, 2.8)  # a harmonic's j-th partial starts at 1 / j ** this
    # where a harmonic is plucked (fraction of the string from the bridge): the pluck point's comb shapes its partials
    # as it does a fretted note's, so a higher on-node partial can outsound a lower one; None: no comb
    harmonic_pluck_position: tuple[float, float] | None = None
    # 12th, 7th, 5th, 4th and 3rd-fret nodes (string length / node); 7 and 8 (near frets 2.7 and 2.3) ring
    # weakly on a real string and reach MIDI 100 on a guitar's top string
    harmonic_nodes: list[Literal[2, 3, 4, 5, 6, 7, 8]] = Field(default_factory=lambda: [2, 3, 4, 5, 6])
    frets: int = Field(20, ge=12, le=27)  # the highest fret: fretted notes reach open string + frets
    pitch_sampling: Literal["string", "uniform"] = "string"  # a string then a fret | every reachable pitch alike
    palm_mute_sec: tuple[float, float] = (0.08, 1.0)  # how long a palm-muted note sounds before it is damped
    palm_mute_decay_sec: tuple[float, float] = (0.04, 0.6)  # a palm mute's decay time constant (log-uniform)
    # a palm mute's low-pass corner, times the instrument's brightness (a fretted note's: 0.7-1.3)
    palm_mute_brightness: tuple[float, float] = (0.15, 0.45)
    palm_mute_noise: tuple[float, float] = (0.08, 0.4)  # a palm mute's pick noise, times the tone's peak
    finger_rolloff: tuple[float, float] = (1.4, 2.0)  # a finger pluck's partial k starts at 1 / k ** this
    pick_rolloff: tuple[float, float] = (1.0, 1.5)  # a pick's (sharper, so brighter)
    slap_click_gain: float = Field(1.0, ge=0.0, le=10.0)  # a bass slap's fret click: times 0.2-0.8 of the tone's peak
    damping_power: float = Field(2.0, ge=0.0, le=3.0)  # partial decay rate grows as (f / 1 kHz) ** this
    two_stage_decay: bool = False  # each partial as two polarizations: a quick drop, then a long, beating tail
    effects: SynthEffects = Field(default_factory=SynthEffects)

    @model_validator(mode="after")
    def _check(self) -> Synthesize:
        for name in ("notes_per_lick", "pitch_range", "snr_db", "gain_db", "bass_pitch_range", "detune_semitones",
                     "snippet_sec", "snippet_onset_sec", "sustain_sec", "harmonic_attack_ms", "palm_mute_sec",
                     "palm_mute_decay_sec", "palm_mute_brightness", "palm_mute_noise", "finger_rolloff",
                     "pick_rolloff", "harmonic_touch_decay_sec", "harmonic_rolloff"):
            _check_range(f"synthesize.{name}", getattr(self, name))
        if not self.harmonic_nodes or len(set(self.harmonic_nodes)) != len(self.harmonic_nodes):
            raise ValueError(f"synthesize.harmonic_nodes must list distinct nodes from 2-8, got {self.harmonic_nodes}")
        for name in ("snippet_onset_sec", "palm_mute_noise"):
            if getattr(self, name)[0] < 0:
                raise ValueError(f"synthesize.{name} must not be negative, got {list(getattr(self, name))}")
        for name in ("snippet_sec", "sustain_sec", "palm_mute_sec", "palm_mute_decay_sec", "palm_mute_brightness",
                     "harmonic_touch_decay_sec"):
            if getattr(self, name)[0] <= 0:
                raise ValueError(f"synthesize.{name} must be positive, got {list(getattr(self, name))}")
        if self.harmonic_pluck_position is not None:
            _check_range("synthesize.harmonic_pluck_position", self.harmonic_pluck_position)
            if not 0 < self.harmonic_pluck_position[0] <= self.harmonic_pluck_position[1] <= 0.5:
                raise ValueError("synthesize.harmonic_pluck_position must lie in (0, 0.5] (a fraction of the string "
                                 f"from the bridge), got {list(self.harmonic_pluck_position)}")
        if self.harmonic_sustain_sec is not None:
            _check_range("synthesize.harmonic_sustain_sec", self.harmonic_sustain_sec)
            if self.harmonic_sustain_sec[0] <= 0:
                raise ValueError("synthesize.harmonic_sustain_sec must be positive")
        if self.notes_per_lick[0] < 2:
            raise ValueError("synthesize.notes_per_lick must start at 2 or more")
        if any(v < 0 for v in self.class_fractions.values()) or sum(self.class_fractions.values()) <= 0:
            raise ValueError("synthesize.class_fractions must be non-negative with a positive sum")
        return self


class SynthesizeTracks(_Section):
    """Synthetic music tracks with attributes defined by construction (see docs/synthesis-attributes.md).

    Pairs ``(low, high)`` are the range a per-track value is drawn from; each artist draws a centre in
    it and its tracks stay within ``artist_spread`` of the range's width around that centre.
    ``*_probability`` fields are dataset means of per-artist propensities.
    """

    n_tracks: int = Field(360, ge=2)
    n_artists: int = Field(24, ge=1)
    sample_rate: int = Field(22050, ge=8000)
    duration_sec: tuple[float, float] = (8.0, 30.0)
    tempo_bpm: tuple[float, float] = (60.0, 180.0)
    artist_tempo_spread: float = Field(12.0, ge=0.0)  # BPM either side of an artist's tempo centre
    artist_spread: float = Field(0.2, ge=0.0, le=1.0)  # other ranges: ± this share of the width around the centre
    time_signatures: dict[int, float] = Field(  # beats per bar -> weight of being an artist's main meter
        default_factory=lambda: {3: 0.2, 4: 0.35, 5: 0.15, 6: 0.15, 7: 0.15}
    )
    meter_loyalty: float = Field(0.75, ge=0.0, le=1.0)  # share of an artist's tracks in its main meter
    beat_jitter: tuple[float, float] = (0.0, 0.08)  # timing-jitter std, as a fraction of a beat
    drums_probability: float = Field(0.9, ge=0.0, le=1.0)
    drum_level_db: tuple[float, float] = (-18.0, 6.0)  # drum bus relative to one pitched part
    hat_eighths_probability: float = Field(0.5, ge=0.0, le=1.0)  # hi-hat on every eighth, not every beat
    part_level_db: tuple[float, float] = (-8.0, 0.0)  # bass, chords and melody levels
    bass_density: tuple[float, float] = (0.3, 1.0)  # chance the bass plays on a beat other than the downbeat
    melody_density: tuple[float, float] = (0.15, 0.6)  # chance a melody note starts on an eighth-note step
    acoustic_probability: float = Field(0.5, ge=0.0, le=1.0)  # a part played on an acoustic-family timbre
    major_probability: float = Field(0.6, ge=0.0, le=1.0)
    seventh_probability: float = Field(0.3, ge=0.0, le=1.0)  # a chord of the progression is a seventh chord
    dissonance: tuple[float, float] = (0.0, 0.5)  # chance a chord gets an added minor second or tritone
    speech_probability: float = Field(0.25, ge=0.0, le=1.0)  # a track has spoken phrases
    speech_share: tuple[float, float] = (0.2, 0.9)  # share of the track's 2-s slots that hold speech
    sung_probability: float = Field(0.35, ge=0.0, le=1.0)  # a track has a sung vocal line
    sung_share: tuple[float, float] = (0.3, 1.0)  # share of bars whose melody is sung
    voice_level_db: tuple[float, float] = (-6.0, 6.0)
    voice_f0_hz: tuple[float, float] = (90.0, 240.0)  # an artist's speaking pitch
    crowd_probability: float = Field(0.2, ge=0.0, le=1.0)  # a track is a live recording with an audience
    crowd_level_db: tuple[float, float] = (-24.0, -3.0)
    clap_rate_hz: tuple[float, float] = (0.5, 6.0)  # audience claps per second
    room_size: tuple[float, float] = (0.05, 0.95)  # pedalboard.Reverb room_size
    reverb_wet: tuple[float, float] = (0.0, 0.45)  # pedalboard.Reverb wet_level (dry_level = 1 - wet)
    master_rms_dbfs: tuple[float, float] = (-30.0, -10.0)  # master level before the soft limiter
    label_noise: float = Field(0.03, ge=0.0, le=0.5)  # Gaussian std added to the [0, 1] targets
    missing_fraction: float = Field(0.05, ge=0.0, le=0.5)  # share of target cells left empty (never tempo)

    @model_validator(mode="after")
    def _check(self) -> SynthesizeTracks:
        pairs = ("duration_sec", "tempo_bpm", "beat_jitter", "drum_level_db", "part_level_db", "bass_density",
                 "melody_density", "dissonance", "speech_share", "sung_share", "voice_level_db", "voice_f0_hz",
                 "crowd_level_db", "clap_rate_hz", "room_size", "reverb_wet", "master_rms_dbfs")
        for name in pairs:
            _check_range(f"synthesize_tracks.{name}", getattr(self, name))
        for name in ("bass_density", "melody_density", "dissonance", "speech_share", "sung_share", "room_size",
                     "reverb_wet"):
            low, high = getattr(self, name)
            if low < 0.0 or high > 1.0:
                raise ValueError(f"synthesize_tracks.{name} must lie within [0, 1], got {[low, high]}")
        if self.duration_sec[0] < 1.0:
            raise ValueError("synthesize_tracks.duration_sec must start at 1 s or more (loudness needs 0.4-s blocks)")
        if self.tempo_bpm[0] < 30.0 or self.beat_jitter[0] < 0.0 or self.beat_jitter[1] > 0.25:
            raise ValueError("synthesize_tracks needs tempo_bpm >= 30 and beat_jitter within [0, 0.25]")
        if self.voice_f0_hz[0] <= 0 or self.clap_rate_hz[0] < 0 or self.master_rms_dbfs[1] > 0:
            raise ValueError("synthesize_tracks needs voice_f0_hz > 0, clap_rate_hz >= 0 and master_rms_dbfs <= 0")
        meters, weights = set(self.time_signatures), list(self.time_signatures.values())
        if not meters <= {3, 4, 5, 6, 7} or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError("synthesize_tracks.time_signatures maps beats per bar (3-7) to non-negative weights "
                             f"with a positive sum, got {dict(self.time_signatures)}")
        if self.n_artists > self.n_tracks:
            raise ValueError(f"synthesize_tracks.n_artists ({self.n_artists}) exceeds n_tracks ({self.n_tracks})")
        return self


TIERS = ("beginner", "intermediate", "advanced", "professional")


class SynthesizeRudiments(_Section):
    """Synthetic snare-drum rudiment performances by virtual players (see docs/synthesis-rudiments.md).

    Each player has a latent skill in [0, 1]; the tiers cut it at the cumulative ``tier_fractions``.
    A take's errors (timing jitter, tempo drift, velocity spread, accent contrast, flam spacing) are
    drawn from the player's skill plus a per-take ``take_skill_sd``, and the scores are computed from
    the errors as realised.
    """

    n_players: int = Field(360, ge=4)
    takes_per_player: int = Field(4, ge=1)
    n_rudiments: int = Field(20, ge=2, le=40)  # the first N of the PAS 40 (docs/synthesis-rudiments.md)
    sample_rate: int = Field(22050, ge=8000)
    tempo_bpm: tuple[float, float] = (60.0, 180.0)
    duration_sec: tuple[float, float] = (4.0, 12.0)
    tier_fractions: dict[Literal["beginner", "intermediate", "advanced", "professional"], float] = Field(
        default_factory=lambda: {"beginner": 0.1, "intermediate": 0.25, "advanced": 0.43, "professional": 0.22}
    )
    take_skill_sd: float = Field(0.03, ge=0.0, le=0.5)  # a take's effective skill around the player's
    trait_sd: float = Field(0.04, ge=0.0, le=0.5)  # per-player offsets of the skill each dimension sees
    tempo_discipline_share: float = Field(0.7, ge=0.0, le=1.0)  # share of tempo drift set by a trait, not skill
    presets: dict[str, float] = Field(  # recording preset -> share of takes (docs/synthesis-rudiments.md)
        default_factory=lambda: {"clean": 0.3, "room": 0.2, "overhead": 0.2, "phone": 0.15, "live": 0.15}
    )

    @model_validator(mode="after")
    def _check(self) -> SynthesizeRudiments:
        for name in ("tempo_bpm", "duration_sec"):
            _check_range(f"synthesize_rudiments.{name}", getattr(self, name))
        if self.tempo_bpm[0] < 30 or self.duration_sec[0] < 1.0:
            raise ValueError("synthesize_rudiments needs tempo_bpm >= 30 and duration_sec >= 1")
        if set(self.tier_fractions) != set(TIERS) or any(v <= 0 for v in self.tier_fractions.values()):
            raise ValueError(f"synthesize_rudiments.tier_fractions needs every tier {list(TIERS)} with a share > 0")
        if abs(sum(self.tier_fractions.values()) - 1.0) > 1e-6:
            raise ValueError("synthesize_rudiments.tier_fractions must sum to 1")
        unknown = sorted(set(self.presets) - set(RECORDING_PRESETS))
        if unknown or not self.presets or any(v < 0 for v in self.presets.values()) or sum(self.presets.values()) <= 0:
            raise ValueError(f"synthesize_rudiments.presets maps presets {list(RECORDING_PRESETS)} to shares >= 0 "
                             f"(some > 0); got {dict(self.presets)}")
        return self


RECORDING_PRESETS = ("clean", "room", "overhead", "phone", "live")


class SynthesizePlaylists(_Section):
    """Synthetic song catalogue, users and playlists with known structure (see docs/synthesis-playlists.md).

    Songs belong to artists, artists to themes; a song's audio-feature vector is drawn around its artist's
    style, itself drawn around its theme's profile over the attribute recipe's targets. Users hold a mixture
    over themes; a playlist draws one theme from its user's taste, a few focus artists of it, then songs with
    a Zipf popularity skew and some off-theme noise. Titles come from theme words (misspelled, with emoji),
    or are uninformative.
    """

    n_songs: int = Field(2000, ge=20)  # catalogue (vocabulary) size
    n_artists: int = Field(200, ge=7)  # each artist has one main theme; at least one per theme
    n_users: int = Field(800, ge=1)
    n_playlists: int = Field(6000, ge=10)
    length: tuple[int, int] = (5, 40)  # songs per playlist (inclusive range)
    taste_concentration: float = Field(0.3, gt=0.0)  # Dirichlet alpha of a user's theme mixture: small = focused
    zipf_exponent: float = Field(1.0, ge=0.0)  # song popularity weight 1 / rank^s over a random ranking
    focus_artists: tuple[int, int] = (1, 3)  # artists a playlist leans on (inclusive range)
    focus_share: float = Field(0.4, ge=0.0, le=1.0)  # chance a slot is filled from the focus artists
    noise_share: float = Field(0.15, ge=0.0, le=1.0)  # chance a slot is any song by popularity (off-theme)
    artist_spread: float = Field(0.08, ge=0.0, le=0.5)  # artist style around its theme profile ([0, 1] scale)
    song_spread: float = Field(0.06, ge=0.0, le=0.5)  # song features around its artist style ([0, 1] scale)
    informative_share: float = Field(0.6, ge=0.0, le=1.0)  # titles built from theme words; the rest "my playlist"
    misspell_share: float = Field(0.25, ge=0.0, le=1.0)  # informative title words with one typo
    emoji_share: float = Field(0.3, ge=0.0, le=1.0)  # titles with a theme emoji
    features_csv: str | None = None  # CSV of track_id + attribute columns (e.g. the attributes recipe's
    # predictions): song vectors are drawn from its rows (nearest theme profile); None: drawn from the profiles

    @model_validator(mode="after")
    def _check(self) -> SynthesizePlaylists:
        for name in ("length", "focus_artists"):
            _check_range(f"synthesize_playlists.{name}", getattr(self, name))
        if self.length[0] < 2 or self.focus_artists[0] < 1:
            raise ValueError("synthesize_playlists needs length >= 2 (one visible, one hidden) and focus_artists >= 1")
        if self.length[1] > self.n_songs // 2:
            raise ValueError(f"synthesize_playlists.length {list(self.length)} needs n_songs >= 2x the longest")
        if self.n_artists > self.n_songs:
            raise ValueError(f"synthesize_playlists.n_artists ({self.n_artists}) exceeds n_songs ({self.n_songs})")
        return self


class PlaylistSplit(_Section):
    """``playlist_split``: train/val/test by playlist; val and test playlists get a seeded hidden set."""

    fractions: dict[Literal["train", "val", "test"], float] = Field(
        default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1}
    )
    hidden_share: float = Field(0.5, gt=0.0, lt=1.0)  # share of a held-out playlist's songs hidden (rounded)
    min_visible: int = Field(1, ge=0)  # songs every held-out playlist keeps visible

    @model_validator(mode="after")
    def _check(self) -> PlaylistSplit:
        if set(self.fractions) != {"train", "val", "test"} or any(v <= 0 for v in self.fractions.values()):
            raise ValueError("playlist_split.fractions needs train, val and test, each > 0")
        if abs(sum(self.fractions.values()) - 1.0) > 1e-6:
            raise ValueError("playlist_split.fractions must sum to 1")
        return self


class Recommender(_Section):
    """``recommender``: the title-conditioned set transformer and its training (README "Playlist continuation")."""

    embedding: int = Field(64, ge=8)  # song / title embedding and attention width
    song_hidden: int = Field(128, ge=8)  # song encoder MLP hidden width
    song_id_embedding: bool = True  # add a learned per-song embedding to the audio-feature MLP
    tied_output: bool = False  # logits add the playlist vector's dot product with every song's input embedding
    item_item: bool = False  # logits add the mean over visible songs of a learned song x song matrix (zero diagonal)
    item_item_init: float = Field(0.0, ge=0.0)  # 0: that matrix starts at zeros; >0: this times the training cosine
    item_item_lr: float = Field(0.01, gt=0.0)  # Adam step of that matrix (its entries start at 0 and need to move)
    head_zero_init: bool = False  # the vocabulary head starts at zero: training starts from the wide terms alone
    title: bool = True  # false: the title is ignored (title-conditioning check)
    title_item: bool = False  # logits add the mean over the title's tokens of a learned token x song matrix
    title_item_buckets: int = Field(2048, ge=16)  # that matrix's rows: the title tokens hashed again into this many
    title_item_init: float = Field(0.0, ge=0.0)  # 0: zeros; >0: this times P(song | token) in the training titles
    title_item_train: bool = True  # false: the matrix stays at its initial counts (a fixed title prior)
    title_encoder: Literal["hashing", "words"] = "hashing"  # hashing: words + char 3-5-grams; words: words only
    title_buckets: int = Field(8192, ge=16)  # hashing trick buckets of the title encoder
    sab_blocks: int = Field(3, ge=1)  # Set Attention Blocks before the PMA
    heads: int = Field(4, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    loss: Literal["warp", "bce", "softmax"] = "warp"  # hybrid WARP margin ranking, or full-vocabulary BCE/softmax
    negatives: int = Field(50, ge=1)  # sampled negatives per positive (warp)
    margin: float = Field(1.0, ge=0.0)  # hinge margin (warp)
    rank_weighting: bool = True  # warp: weight each positive by log(1 + estimated rank) from its violations
    negative_power: float = Field(0.75, ge=0.0)  # negatives drawn in proportion to popularity^p; 0 = uniform
    seen_weight: float = Field(0.5, ge=0.0)  # loss weight of the visible songs (reconstruction)
    hidden_weight: float = Field(1.0, ge=0.0)  # loss weight of the hidden songs (recommendation)
    mask_ratio: tuple[float, float] = (0.1, 0.5)  # share of a training playlist's songs hidden, drawn per step
    lr: float = Field(3e-4, gt=0.0)  # Adam
    weight_decay: float = Field(0.0, ge=0.0)  # AdamW-style decoupled weight decay (0 = plain Adam)
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1)
    bucket_width: int = Field(8, ge=1)  # playlists are batched with others within this many songs in length
    patience: int = Field(5, ge=1)  # early stopping on validation hidden R-precision
    threads: int = Field(1, ge=0)  # torch (and ALS) threads; 0 = all cores (2 threads on 2 busy cores are far slower)

    @model_validator(mode="after")
    def _check(self) -> Recommender:
        _check_range("recommender.mask_ratio", self.mask_ratio)
        if not (self.mask_ratio[0] > 0.0 and self.mask_ratio[1] < 1.0):
            raise ValueError(f"recommender.mask_ratio must lie within (0, 1), got {list(self.mask_ratio)}")
        if self.embedding % self.heads:
            raise ValueError(f"recommender.embedding ({self.embedding}) must be divisible by heads ({self.heads})")
        if self.seen_weight + self.hidden_weight <= 0:
            raise ValueError("recommender.seen_weight + hidden_weight must be > 0")
        return self


class RecommenderBaselines(_Section):
    """``recommender_baselines``: the baselines scored next to the set transformer in evaluate_recommender."""

    knn_neighbours: int = Field(200, ge=1)  # item-item kNN: neighbours kept per song (cosine co-occurrence)
    als_factors: int = Field(64, ge=1)  # implicit ALS
    als_iterations: int = Field(15, ge=1)
    als_regularization: float = Field(0.05, ge=0.0)
    als_alpha: float = Field(2.0, gt=0.0)  # confidence 1 + alpha * count


class RecommenderEval(_Section):
    """``recommender_eval``: ranking cut-offs and the mode-collapse detector."""

    k: int = Field(10, ge=1)  # NDCG@k, recall@k, coverage@k, popular share@k
    popular_top: float = Field(0.01, gt=0.0, lt=1.0)  # share of songs (by train plays) counted as "most popular"
    models: list[Literal["set_transformer", "popularity", "item_knn", "title_only", "als"]] = Field(
        default_factory=lambda: ["set_transformer", "popularity", "item_knn", "title_only", "als"], min_length=1)


class Split(_Section):
    strategy: Literal["grouped", "predefined_folds"] = "grouped"
    folds: list[int] = Field(default_factory=list)  # predefined_folds: the dataset's fold ids, in order
    fractions: dict[Literal["train", "val", "test"], float] = Field(
        default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1}
    )
    min_values: dict[str, float] = Field(default_factory=dict)  # column -> lowest kept value; rows below: no split
    val_where: dict[str, str] = Field(default_factory=dict)  # column -> value every validation row must hold

    @model_validator(mode="after")
    def _check(self) -> Split:
        if set(self.fractions) != {"train", "val", "test"}:
            raise ValueError("split.fractions needs exactly the keys train, val and test")
        if any(v <= 0 for v in self.fractions.values()):
            raise ValueError(f"split.fractions must all be > 0, got {dict(self.fractions)}")
        total = sum(self.fractions.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split.fractions must sum to 1, got {total:g}")
        if self.strategy == "predefined_folds" and (len(self.folds) < 3 or len(set(self.folds)) != len(self.folds)):
            raise ValueError(f"split.folds must list at least 3 distinct fold ids for predefined_folds, "
                             f"got {self.folds}")
        return self

    @property
    def names(self) -> list[str]:
        """Feature-cache split names: train/val/test, or one ``fold<K>`` per predefined fold."""
        if self.strategy == "predefined_folds":
            return [f"fold{k}" for k in self.folds]
        return ["train", "val", "test"]


class StrokeFeatures(_Section):
    """The take-level ``strokes`` block (fretlab.audio.strokes): onset detection and the timing statistics."""

    hop_length: int = Field(64, ge=1)  # onset-envelope hop: 4 ms at 16 kHz, finer than the timing errors
    n_fft: int = Field(512, ge=16)
    n_mels: int = Field(64, ge=1)
    wait_sec: float = Field(0.02, ge=0.0)  # at least this long between two detected strokes
    delta: float = Field(0.05, ge=0.0)  # librosa peak-picking threshold above the local mean
    peak_sec: float = Field(0.03, gt=0.0)  # a stroke's level: peak RMS this long after its onset (or to the next)
    grace_sec: float = Field(0.045, gt=0.0)  # a gap shorter than this: the first stroke is a grace note
    grace_slot_share: float = Field(0.6, gt=0.0)  # or shorter than this share of the median IOI and softer
    grace_softer_db: float = Field(6.0, ge=0.0)  # ... by this much than the stroke after it
    main_band: tuple[float, float] = (0.6, 1.6)  # IOIs within this share of the median: the main subdivision
    grid_window: int = Field(8, ge=1)  # strokes on each side of the local straight-line grid fit

    @model_validator(mode="after")
    def _check(self) -> StrokeFeatures:
        if not 0 < self.main_band[0] < 1 < self.main_band[1]:
            raise ValueError(f"featurize.tracks.strokes.main_band must be (low < 1, high > 1), got {self.main_band}")
        return self


class TrackFeatures(_Section):
    """Frame features of whole tracks (variable length): stacked librosa blocks sharing one STFT."""

    sample_rate: int = Field(22050, ge=8000)
    n_fft: int = Field(2048, ge=16)
    hop_length: int = Field(512, ge=1)
    n_mfcc: int = Field(20, ge=1)
    n_mels: int = Field(64, ge=1)
    fmin: float = Field(0.0, ge=0.0)  # logmel block: lowest mel band edge (Hz)
    fmax: float | None = Field(None, gt=0.0)  # logmel block: highest band edge; None: sample_rate / 2
    features: list[Literal["mfcc", "chroma", "contrast", "tonnetz", "zcr", "logmel", "tempogram", "harmony",
                         "strokes"]] = Field(
        default_factory=lambda: ["mfcc", "chroma", "contrast", "tonnetz", "zcr"], min_length=1
    )
    max_duration: float | None = Field(None, gt=0.0)  # seconds from the start of each track; None: the whole track
    tempogram_lags: int = Field(32, ge=1)  # tempogram block: autocorrelation lags 1..N frames
    tempogram_window: int = Field(96, ge=2)  # tempogram block: frames in each local autocorrelation window
    chroma_n_fft: int | None = Field(None, ge=16)  # FFT size of the chroma, tonnetz and harmony blocks; None: n_fft
    key_window: int = Field(512, ge=1)  # harmony block: frames of chroma averaged for the key-profile correlation
    strokes: StrokeFeatures = Field(default_factory=StrokeFeatures)  # strokes block: one row per take

    @property
    def take_level(self) -> bool:
        """True for the ``strokes`` block: one feature row per take instead of one per frame."""
        return "strokes" in self.features

    @model_validator(mode="after")
    def _check(self) -> TrackFeatures:
        if self.tempogram_lags >= self.tempogram_window:
            raise ValueError(f"featurize.tracks.tempogram_lags={self.tempogram_lags} must be below tempogram_window="
                             f"{self.tempogram_window}")
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"featurize.tracks.features must not repeat a block, got {self.features}")
        if self.take_level and len(self.features) > 1:
            raise ValueError(f"featurize.tracks.features: 'strokes' is one row per take and cannot be stacked with "
                             f"frame blocks, got {self.features}; use features: [strokes] alone")
        if self.hop_length > self.n_fft:
            raise ValueError(f"featurize.tracks.hop_length={self.hop_length} exceeds n_fft={self.n_fft}; "
                             "frames would skip samples")
        if self.fmax is not None and not self.fmin < self.fmax <= self.sample_rate / 2:
            raise ValueError(f"featurize.tracks needs fmin < fmax <= sample_rate / 2, got fmin={self.fmin}, "
                             f"fmax={self.fmax}, sample_rate={self.sample_rate}")
        if self.chroma_n_fft is not None and self.hop_length > self.chroma_n_fft:
            raise ValueError(f"featurize.tracks.hop_length={self.hop_length} exceeds chroma_n_fft="
                             f"{self.chroma_n_fft}; chroma frames would skip samples")
        # librosa's spectral contrast (fmin 200 Hz, 6 bands) needs its band edges up to 6400 Hz below Nyquist
        if "contrast" in self.features and self.sample_rate / 2 <= 6400:
            raise ValueError(f"featurize.tracks: spectral contrast needs sample_rate > 12800, got {self.sample_rate}; "
                             "raise sample_rate or drop 'contrast' from features")
        return self


class Featurize(_Section):
    sample_rate: int = Field(22050, ge=4000)
    target_duration: float = Field(1.0, gt=0.0, le=10.0)
    n_fft: int = Field(1024, ge=16)
    hop_length: int = Field(256, ge=1)
    n_mels: int = Field(64, ge=1)
    fmin: float = Field(30.0, ge=0.0)
    fmax: float | None = 11025.0
    deltas: bool = False
    rms: bool = False
    batch_size: int = Field(64, ge=1)
    on_error: Literal["raise", "skip"] = "raise"
    stream_above_sec: float = Field(60.0, gt=0.0)  # longer files are decoded one event window at a time
    window_hop: float | None = Field(None, gt=0.0)  # clips: windows of target_duration every window_hop s
    kind: Literal["windows", "tracks"] = "windows"  # windows: fixed event windows; tracks: whole-track sequences
    tracks: TrackFeatures = Field(default_factory=TrackFeatures)  # kind tracks: the frame features

    @model_validator(mode="after")
    def _check(self) -> Featurize:
        n_samples = round(self.target_duration * self.sample_rate)
        if self.n_fft > n_samples:
            raise ValueError(
                f"featurize.n_fft={self.n_fft} is longer than the event window "
                f"({n_samples} samples); lower n_fft or raise target_duration"
            )
        nyquist = self.sample_rate / 2
        fmax = nyquist if self.fmax is None else self.fmax
        if not self.fmin < fmax <= nyquist:
            raise ValueError(f"featurize needs fmin < fmax <= sample_rate/2 ({nyquist:g}), got {self.fmin}, {fmax}")
        return self

    @property
    def n_samples(self) -> int:
        """Samples in one event window."""
        return round(self.target_duration * self.sample_rate)

    @property
    def n_frames(self) -> int:
        """Frames in one event's feature map (centred STFT)."""
        return 1 + self.n_samples // self.hop_length

    @property
    def n_channels(self) -> int:
        """Feature channels: log-mel, plus delta and RMS when enabled."""
        return 1 + int(self.deltas) + int(self.rms)


def _check_conv_blocks(prefix: str, channels: list[int], pools: list[tuple[int, int]]) -> None:
    """One positive (freq, time) pool per conv block, and positive channel counts."""
    if len(pools) != len(channels):
        raise ValueError(
            f"{prefix}.pools has {len(pools)} entries but channels has {len(channels)}; "
            "give one (freq, time) pool per block"
        )
    if any(c < 1 for c in channels) or any(p < 1 for pool in pools for p in pool):
        raise ValueError(f"{prefix}.channels and pools must be positive")


class CRNNParams(_Section):
    channels: list[int] = Field(default_factory=lambda: [32, 64, 96], min_length=1)
    kernel_size: int = Field(3, ge=1)
    pools: list[tuple[int, int]] = Field(default_factory=lambda: [(4, 2), (4, 2), (2, 1)])
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    rnn_hidden: int = Field(64, ge=1)
    rnn_layers: int = Field(1, ge=1)
    bidirectional: bool = False
    time_pooling: Literal["last", "mean", "meanstd", "attention"] = "last"
    head_hidden: int = Field(64, ge=0)  # 0: a plain linear head
    head_dropout: float = Field(0.3, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check(self) -> CRNNParams:
        _check_conv_blocks("model.crnn", self.channels, self.pools)
        return self


class CNNParams(_Section):
    """The UrbanSound8K-style CNN: conv blocks → mean over time → Conv1d over frequency → dense head."""

    channels: list[int] = Field(default_factory=lambda: [32, 64, 128], min_length=1)
    kernel_size: int = Field(3, ge=1)
    pools: list[tuple[int, int]] = Field(default_factory=lambda: [(2, 2), (2, 2), (2, 4)])  # (freq, time)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    conv1d_channels: int = Field(64, ge=1)
    conv1d_kernel: int = Field(3, ge=1)
    head_hidden: int = Field(128, ge=1)
    head_dropout: float = Field(0.5, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check(self) -> CNNParams:
        _check_conv_blocks("model.cnn", self.channels, self.pools)
        return self


class GRUParams(_Section):
    """Stacked GRU over the frame sequence (all channels × mels, or all track-feature dims, per frame)."""

    hidden: int = Field(64, ge=1)
    layers: int = Field(1, ge=1)
    bidirectional: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # between stacked GRU layers (needs layers >= 2)
    layer_norm: bool = False  # LayerNorm on the pooled GRU output, before the head
    time_pooling: Literal["last", "mean", "meanstd", "attention"] = "last"
    head_hidden: int = Field(64, ge=0)  # 0: a plain linear head (one output per target value)
    head_dropout: float = Field(0.3, ge=0.0, lt=1.0)
    frame_stride: int = Field(1, ge=1)  # average k frames into one GRU step: k x shorter sequences


MaxFeatures = Literal["sqrt", "log2"] | Annotated[float, Field(gt=0.0, le=1.0)]


class RFSearch(_Section):
    """Optional RandomizedSearchCV over the forest's main knobs (grouped CV on the train split)."""

    enabled: bool = False
    n_iter: int = Field(10, ge=1)
    cv_folds: int = Field(3, ge=2)
    n_estimators: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [100, 200, 400], min_length=1)
    max_depth: list[Annotated[int, Field(ge=1)] | None] = Field(default_factory=lambda: [None, 8, 16, 32],
                                                                 min_length=1)
    max_features: list[MaxFeatures] = Field(default_factory=lambda: ["sqrt", "log2", 0.3], min_length=1)
    bootstrap: list[bool] = Field(default_factory=lambda: [True, False], min_length=1)


class RFParams(_Section):
    """Random-forest baseline on mean and std pooled features (scikit-learn)."""

    n_estimators: int = Field(300, ge=1)
    max_depth: int | None = Field(None, ge=1)
    max_features: MaxFeatures = "sqrt"
    min_samples_leaf: int = Field(1, ge=1)
    bootstrap: bool = True
    per_target: bool = False  # multi-target tasks: one regression forest per target instead of one for all
    search: RFSearch = Field(default_factory=RFSearch)


class Model(_Section):
    name: Literal["crnn", "cnn", "gru", "rf"] = "crnn"
    crnn: CRNNParams = Field(default_factory=CRNNParams)
    cnn: CNNParams = Field(default_factory=CNNParams)
    gru: GRUParams = Field(default_factory=GRUParams)
    rf: RFParams = Field(default_factory=RFParams)


class Augment(_Section):
    gain_db: float = Field(6.0, ge=0.0)
    shift_ms: float = Field(50.0, ge=0.0)
    noise_db: float | None = -80.0
    freq_mask: int = Field(0, ge=0)  # SpecAugment: widest frequency mask in mel bins; 0 = off
    time_mask: int = Field(0, ge=0)  # SpecAugment: widest time mask in frames; 0 = off
    n_masks: int = Field(1, ge=1)  # masks of each kind per example
    mixup_alpha: float = Field(0.0, ge=0.0)  # mixup Beta(alpha, alpha); 0 = off
    # the note's level envelope, randomized so decay rate and attack speed stop deciding the class alone:
    # a dB ramp of -tilt_db..+tilt_db across the window, and a fade-in of 0..fade_in_ms from the onset
    tilt_db: float = Field(0.0, ge=0.0)
    fade_in_ms: float = Field(0.0, ge=0.0)
    # a clean or noise-gated recording (sample libraries, gated DI takes): with this probability an example's
    # log-mel cells more than gate_db (drawn per example) below its peak drop to its floor, hum and hiss gone
    gate_probability: float = Field(0.0, ge=0.0, le=1.0)
    gate_db: tuple[float, float] = (40.0, 70.0)
    # frame sequences (featurize.kind tracks): each training track is cut to a random span of at least this
    # fraction of its frames, a new span every epoch; 1 = off
    crop: float = Field(1.0, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _check(self) -> Augment:
        _check_range("train.augment.gate_db", self.gate_db)
        if self.gate_db[0] <= 0:
            raise ValueError(f"train.augment.gate_db must be positive dB below the peak, got {list(self.gate_db)}")
        return self


class DDP(_Section):
    """``train.ddp``: DistributedDataParallel training, launched through ``torchrun`` (see docs/performance.md)."""

    nproc: int = Field(1, ge=1)  # processes on this machine; > 1 re-launches the train stage under torchrun
    backend: Literal["auto", "gloo", "nccl"] = "auto"  # auto: nccl on CUDA, gloo on CPU


class Train(_Section):
    epochs: int = Field(25, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(0.002, gt=0.0)
    weight_decay: float = Field(0.0001, ge=0.0)
    class_weights: bool = True
    patience: int = Field(8, ge=1)
    scheduler: Literal["plateau", "cosine", "none"] = "plateau"  # plateau: on val macro-F1; cosine: over epochs
    scheduler_factor: float = Field(0.5, gt=0.0, lt=1.0)
    scheduler_patience: int = Field(2, ge=0)
    augment: Augment = Field(default_factory=Augment)
    # weights averaged over the training steps (an exponential moving average, torch.optim.swa_utils); validation,
    # early stopping and the saved model use the average. null: off
    ema_decay: float | None = Field(None, gt=0.0, lt=1.0)
    amp: bool = True
    compile: bool = False
    channels_last: bool = False  # NHWC convolutions: faster steps on the CPU (oneDNN); results differ in the last bits
    ddp: DDP = Field(default_factory=DDP)


class Target(_Section):
    """One entry of ``task.targets``: a column of the metadata, what kind of value it is, and its loss."""

    name: str = Field(min_length=1)
    type: Literal["classification", "regression"]
    column: str | None = None  # metadata column; default: the target's name
    classes: list[str] | None = None  # classification: the class names, in output order
    loss: Literal["cross_entropy", "mse", "huber"] | None = None  # default: cross_entropy / mse by type
    huber_delta: float = Field(1.0, gt=0.0)
    weight: float = Field(1.0, ge=0.0)  # this target's share of the summed loss
    class_weights: bool | None = None  # balanced class weights; default: train.class_weights
    range: tuple[float, float] | None = None  # regression: the values allowed; one outside stops with its line

    @model_validator(mode="after")
    def _check(self) -> Target:
        if self.type == "classification":
            if not self.classes or len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
                raise ValueError(f"target '{self.name}': a classification target needs at least 2 distinct classes")
            if self.loss not in (None, "cross_entropy"):
                raise ValueError(f"target '{self.name}': classification uses loss cross_entropy, not {self.loss}")
        elif self.loss == "cross_entropy":
            raise ValueError(f"target '{self.name}': a regression target takes loss mse or huber")
        if self.range is not None and (self.is_classification or self.range[0] >= self.range[1]):
            raise ValueError(f"target '{self.name}': range is [low, high] with low < high, for regression only")
        return self

    @property
    def is_classification(self) -> bool:
        return self.type == "classification"


class Task(_Section):
    """``task``: what the model predicts. The default is one classification target over ``data.classes``."""

    targets: list[Target] | None = None  # null: one target 'label' = label_category over data.classes
    preset: str | None = None  # the entry of ``presets`` to train instead of ``targets``
    presets: dict[str, list[Target]] = Field(default_factory=dict)  # named target lists, one -S away
    one_vs_rest: list[str] = Field(default_factory=list)  # extra binary heads 'X_vs_rest', sharing the encoder
    one_vs_rest_weight: float = Field(1.0, ge=0.0)
    all_regression: bool = False  # every target becomes a regression target (class names must be numbers)
    standardize: bool = True  # regression targets scaled by the train split's mean and std (undone at prediction)

    @model_validator(mode="after")
    def _check(self) -> Task:
        if self.preset is not None:
            if self.targets is not None:
                raise ValueError("task: set targets or preset, not both (null one of them)")
            if self.preset not in self.presets:
                raise ValueError(f"task.preset '{self.preset}' is not one of task.presets {sorted(self.presets)}")
        names = [t.name for t in self.selected or []] + [f"{c}_vs_rest" for c in self.one_vs_rest]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"task: target names must be unique, got {dup} more than once")
        if self.targets is not None and not self.targets:
            raise ValueError("task.targets is empty; list at least one target, or null for the single-label default")
        empty = sorted(k for k, v in self.presets.items() if not v)
        if empty:
            raise ValueError(f"task.presets {empty} list no target")
        return self

    @property
    def selected(self) -> list[Target] | None:
        """The targets to train: ``presets[preset]`` when a preset is chosen, else ``targets``."""
        return self.presets[self.preset] if self.preset is not None else self.targets


class Evaluate(_Section):
    splits: list[Literal["train", "val", "test"]] = Field(default_factory=lambda: ["val", "test"])
    batch_size: int = Field(256, ge=1)


class CheckProgram(_Section):
    """One General MIDI program of the check set: the class its notes get and the MIDI pitches it plays."""

    label: str
    pitch_range: tuple[int, int]
    name: str = ""  # readable name for the summary and plots; default: the soundfont's preset name

    @model_validator(mode="after")
    def _check(self) -> CheckProgram:
        _check_range("checkset.programs.*.pitch_range", self.pitch_range)
        if not 0 <= self.pitch_range[0] <= self.pitch_range[1] <= 127:
            raise ValueError(f"pitch_range must lie within MIDI 0-127, got {list(self.pitch_range)}")
        return self


def _default_check_programs() -> dict[int, CheckProgram]:
    guitar, bass = (40, 84), (28, 67)
    general = {24: "nylon", 25: "steel", 26: "jazz", 27: "clean", 28: "muted", 29: "overdriven", 30: "distortion"}
    programs = {p: CheckProgram(label="general_note", pitch_range=guitar, name=n) for p, n in general.items()}
    programs[31] = CheckProgram(label="harmonic", pitch_range=guitar, name="harmonics")
    basses = {32: "acoustic_bass", 33: "finger_bass", 34: "pick_bass", 35: "fretless_bass", 36: "slap_bass_1",
              37: "slap_bass_2"}
    programs.update({p: CheckProgram(label="general_note", pitch_range=bass, name=n) for p, n in basses.items()})
    return programs


class Checkset(_Section):
    """``checkset``: the real-sampled check set rendered from General MIDI soundfonts (evaluation only)."""

    enabled: bool = True
    # searched in order; a missing file is reported and skipped. 'pretty_midi:TimGM6mb.sf2' is the file
    # shipped inside the pretty_midi package, so at least one soundfont is always there
    soundfonts: list[str] = Field(default_factory=lambda: [
        "pretty_midi:TimGM6mb.sf2", "/usr/share/sounds/sf2/FluidR3_GM.sf2",
        "/usr/share/sounds/sf2/MuseScore_General.sf2", "/usr/share/sounds/sf2/FreePatsGM.sf2"], min_length=1)
    programs: dict[int, CheckProgram] = Field(default_factory=_default_check_programs, min_length=1)
    pitch_step: int = Field(3, ge=1)  # render every Nth semitone of each program's pitch_range
    velocities: list[Annotated[int, Field(ge=1, le=127)]] = Field(default_factory=lambda: [80, 120], min_length=1)
    note_sec: float = Field(3.0, gt=0.0)  # key held this long, as sample libraries record a note
    release_sec: float = Field(1.0, ge=0.0)  # rendered after the key is released (the release tail)
    silence_db: float = Field(-60.0, lt=0.0)  # a note whose peak is below this (dBFS) is skipped as silent

    @model_validator(mode="after")
    def _check(self) -> Checkset:
        bad = sorted(p for p in self.programs if not 0 <= p <= 127)
        if bad:
            raise ValueError(f"checkset.programs: GM programs are 0-127 (0-based), got {bad}")
        if len(set(self.velocities)) != len(self.velocities):
            raise ValueError(f"checkset.velocities must not repeat a value, got {self.velocities}")
        return self


class Predict(_Section):
    """``predict``: how ``fretlab predict`` finds and windows notes; stored in the model directory by train."""

    note_max_sec: float = Field(3.0, gt=0.0)  # --mode auto: clips up to this long are one note, longer ones a timeline
    onset_hop_length: int = Field(256, ge=1)  # onset-envelope hop, in samples at featurize.sample_rate
    onset_n_fft: int = Field(1024, ge=16)  # onset-envelope FFT size (librosa's default: 2048; docs/performance.md)
    onset_n_mels: int = Field(128, ge=1)  # mel bands of the onset envelope
    onset_delta: float = Field(0.07, ge=0.0)  # peak-picking threshold on the normalized onset envelope
    onset_wait_sec: float = Field(0.03, ge=0.0)  # shortest gap between two detected onsets
    onset_backtrack: bool = False  # move each onset back to the preceding energy minimum
    # a one-note clip longer than a window starts at its first onset at least this share as strong as the
    # strongest (fretlab.app.predict.note_start); 1.0: the strongest onset
    note_onset_share: float = Field(0.5, gt=0.0, le=1.0)
    offset_db: float = Field(30.0, gt=0.0)  # an event ends once its RMS is this far below its peak (or at next onset)
    batch_size: int = Field(64, ge=1)  # windows per front-end + model call


class Params(_Section):
    """All of ``params.yaml``."""

    paths: Paths = Field(default_factory=Paths)
    base: Base = Field(default_factory=Base)
    data: Data = Field(default_factory=Data)
    synthesize: Synthesize = Field(default_factory=Synthesize)
    synthesize_tracks: SynthesizeTracks = Field(default_factory=SynthesizeTracks)
    synthesize_rudiments: SynthesizeRudiments = Field(default_factory=SynthesizeRudiments)
    synthesize_playlists: SynthesizePlaylists = Field(default_factory=SynthesizePlaylists)
    playlist_split: PlaylistSplit = Field(default_factory=PlaylistSplit)
    recommender: Recommender = Field(default_factory=Recommender)
    recommender_baselines: RecommenderBaselines = Field(default_factory=RecommenderBaselines)
    recommender_eval: RecommenderEval = Field(default_factory=RecommenderEval)
    split: Split = Field(default_factory=Split)
    featurize: Featurize = Field(default_factory=Featurize)
    task: Task = Field(default_factory=Task)
    model: Model = Field(default_factory=Model)
    train: Train = Field(default_factory=Train)
    evaluate: Evaluate = Field(default_factory=Evaluate)
    predict: Predict = Field(default_factory=Predict)
    checkset: Checkset = Field(default_factory=Checkset)

    @model_validator(mode="after")
    def _check(self) -> Params:
        # synthesize only feeds the synthetic source; dataset recipes keep its defaults
        uses_synth = self.data.source == "synthetic"
        if uses_synth and self.synthesize.class_fractions and set(self.synthesize.class_fractions) - set(
                self.data.classes):
            unknown = sorted(set(self.synthesize.class_fractions) - set(self.data.classes))
            raise ValueError(f"synthesize.class_fractions names classes not in data.classes: {unknown}")
        _check_pooling(self.model, self.featurize)
        if self.featurize.kind == "tracks" and self.featurize.tracks.take_level and self.model.name == "crnn":
            raise ValueError("model.name=crnn convolves over time, but featurize.tracks.features [strokes] is one "
                             "row per take; use model.name=rf (or gru), or features [logmel] for the CRNN")
        return self


def pooled_shape(n_mels: int, n_frames: int, kernel_size: int, pools: list[tuple[int, int]]) -> tuple[int, int]:
    """(freq, time) size after conv blocks of ``kernel_size`` (padding k//2) and MaxPool2d ``pools``."""
    grow = 2 * (kernel_size // 2) - kernel_size + 1  # 'same' conv for odd kernels, +1 for even ones
    f, t = n_mels, n_frames
    for pf, pt in pools:
        f, t = (f + grow) // pf, (t + grow) // pt
    return f, t


def _check_pooling(model: Model, feat: Featurize) -> None:
    """Reject a conv stack whose pools shrink the feature map to nothing, at load time, not mid-training."""
    cfg = getattr(model, model.name, None)
    if not hasattr(cfg, "pools") or not hasattr(cfg, "kernel_size"):
        return
    f, t = pooled_shape(feat.n_mels, feat.n_frames, cfg.kernel_size, cfg.pools)
    if f < 1 or t < 1:
        pf = math.prod(p[0] for p in cfg.pools)
        pt = math.prod(p[1] for p in cfg.pools)
        raise ValueError(
            f"model.{model.name}.pools {[list(p) for p in cfg.pools]} shrink the {feat.n_mels} mels x {feat.n_frames} "
            f"frames feature map to {f}x{t} (total pooling {pf}x{pt}); use smaller pools, fewer blocks, "
            "or more featurize.n_mels / a longer featurize.target_duration"
        )


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names valid at ``loc``'s parent, for did-you-mean hints."""
    current: Any = model
    for part in loc[:-1]:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = field.annotation
    return list(getattr(current, "model_fields", {}))


def _describe(err: dict[str, Any]) -> str:
    loc = tuple(err["loc"])
    dotted = ".".join(str(p) for p in loc)
    if err["type"] == "extra_forbidden":
        hint = difflib.get_close_matches(str(loc[-1]), _allowed_keys(Params, loc), n=1)
        fix = f"; did you mean '{'.'.join(map(str, (*loc[:-1], hint[0])))}'?" if hint else "; remove it"
        return f"unknown key '{dotted}'{fix}"
    msg = err["msg"].removeprefix("Value error, ")
    return f"'{dotted}': {msg}" if dotted else msg


def parse_params(raw: dict[str, Any], source: str = "params") -> Params:
    """Validate a params mapping; raise :class:`ParamsError` listing every problem."""
    try:
        return Params.model_validate(raw or {})
    except ValidationError as exc:
        problems = "\n  - ".join(_describe(e) for e in exc.errors())
        raise ParamsError(f"invalid parameters in {source}:\n  - {problems}") from None


def load_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Read and validate ``params.yaml`` (``yaml.safe_load`` only)."""
    import yaml  # here, not at the top: ``fretlab predict`` on a model directory never reads YAML

    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file not found: {path} (run from the repository root)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path} is not valid YAML: {exc}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ParamsError(f"{path} must hold a mapping of sections, got {type(raw).__name__}")
    return parse_params(raw, str(path))
