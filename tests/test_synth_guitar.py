"""The guitar/bass note generator: plan, instruments, one-shot layout, partial rendering, recording chain."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fretlab.params import ParamsError, SynthEffects, Synthesize, load_params
from fretlab.synth.guitar import (
    BASS_STRINGS,
    HARMONIC_NODES,
    LOW_B,
    OPEN_STRINGS,
    _partials,
    draw_note,
    make_bass,
    make_guitar,
    plan_dataset,
    render_file,
)
from fretlab.synth.recording_chain import band_limit, colour

CLASSES = ["general_note", "harmonic", "dead_note"]
SR = 22050


def _cfg(**changes) -> Synthesize:
    return Synthesize(**{"n_events": 300, "sample_rate": SR, **changes})


def test_the_plan_is_deterministic_and_holds_the_class_counts_asked_for():
    cfg = _cfg()
    a, b = plan_dataset(cfg, CLASSES, 7), plan_dataset(cfg, CLASSES, 7)
    assert [(j.file_id, j.seed, j.notes) for j in a] == [(j.file_id, j.seed, j.notes) for j in b]
    labels = [n.label for j in a for n in j.notes]
    assert len(labels) == 300
    assert labels.count("harmonic") == 45 and labels.count("dead_note") == 45


def test_basses_play_in_their_own_range_and_their_harmonics_sit_on_nodes():
    cfg = _cfg(n_guitars=2, n_basses=4, bass_pitch_range=(28, 67))
    jobs = plan_dataset(cfg, CLASSES, 3)
    bass_jobs = [j for j in jobs if j.guitar.is_bass]
    assert bass_jobs and any(not j.guitar.is_bass for j in jobs)
    for job in bass_jobs:
        assert job.guitar.name.startswith("bass_")
        for note in job.notes:
            if note.label == "harmonic":  # on a node of a string: not bounded by the highest fret
                open_pitch = job.guitar.open_strings[note.string]
                assert note.pitch - open_pitch in HARMONIC_NODES.values() and note.pitch >= 28
            else:
                assert 28 <= note.pitch <= 67
    excitations = {n.excitation for j in bass_jobs for n in j.notes}
    assert excitations & {"ST", "SP"}, "basses are slapped too"


def test_guitars_only_when_n_basses_is_zero():
    jobs = plan_dataset(_cfg(n_basses=0), CLASSES, 1)
    assert not any(j.guitar.is_bass for j in jobs)


def test_detune_shifts_every_string_by_one_offset_in_range():
    rng = np.random.default_rng(0)
    for i in range(20):
        strings = make_guitar(i, rng, (-2, 0)).open_strings
        offsets = {s - o for s, o in zip(strings, OPEN_STRINGS, strict=True)}
        assert len(offsets) == 1 and offsets.pop() in (-2, -1, 0)
        bass = make_bass(i, rng, (0, 0)).open_strings
        assert bass in (BASS_STRINGS, (LOW_B, *BASS_STRINGS))
    assert make_guitar(0, rng).open_strings == OPEN_STRINGS  # no detune by default


def test_a_one_shot_file_is_as_long_and_starts_where_the_params_say():
    cfg = _cfg(snippet_sec=(2.0, 2.5), snippet_onset_sec=(0.0, 0.01), sustain_sec=(3.0, 3.5),
               effects=SynthEffects(enabled=False))
    rng = np.random.default_rng(5)
    guitar = make_guitar(0, rng)
    for seed in range(4):
        note = draw_note("general_note", cfg, rng, guitar)
        if note.excitation == "MU":
            continue
        audio, times = render_file([note], guitar, cfg, seed)
        assert 2.0 <= len(audio) / SR <= 2.5 + 1e-3
        onset, offset = times[0]
        assert 0.0 <= onset <= 0.01
        tail = audio[int((offset - 0.3) * SR): int((offset - 0.1) * SR)]
        assert np.abs(tail).max() > 0.01, "a long note still rings near the end of the file"


def test_block_rendering_equals_the_direct_sum_of_decaying_partials():
    n = 3 * 8192 + 100  # crosses block boundaries
    freqs = np.array([110.0, 220.0, 3000.0])
    amps = np.array([1.0, 0.5, 0.3])
    rates = np.array([1.0, 3.0, 400.0])  # the third dies below the floor in the first block
    ratio = np.ones(n, dtype=np.float32)
    got = _partials(freqs, amps, rates, ratio, SR, np.random.default_rng(1))
    phase0 = np.random.default_rng(1).uniform(0, 2 * np.pi, (3, 1))
    t = np.arange(n) / SR
    base = 2 * np.pi / SR * np.cumsum(np.ones(n))
    want = (amps[:, None] * np.exp(-rates[:, None] * t) * np.sin(freqs[:, None] * base + phase0)).sum(axis=0)
    assert np.max(np.abs(got - want)) < 1e-3


def test_the_recording_chain_is_off_when_disabled_and_band_limits_when_on():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SR).astype(np.float32) * 0.1
    off = SynthEffects(enabled=False)
    assert colour(x, SR, True, off, rng) is x and band_limit(x, SR, off, rng) is x
    on = SynthEffects(lowpass_probability=1.0, lowpass_hz=(2000.0, 2000.0))
    y = band_limit(x, SR, on, rng)
    spec_x, spec_y = np.abs(np.fft.rfft(x)), np.abs(np.fft.rfft(y))
    hz = np.fft.rfftfreq(len(x), 1 / SR)
    assert spec_y[hz > 6000].mean() < 0.2 * spec_x[hz > 6000].mean()
    assert spec_y[hz < 500].mean() > 0.8 * spec_x[hz < 500].mean()
    coloured = colour(x, SR, True, SynthEffects(drive_probability=1.0, reverb_probability=1.0), rng)
    assert coloured.shape == x.shape and np.isfinite(coloured).all() and not np.allclose(coloured, x)


@pytest.mark.parametrize("bad", ["room_size: [0.2, 1.5]", "lowpass_hz: [0.0, 8000.0]", "drive_db: [30.0, 6.0]"])
def test_bad_effect_params_are_refused_by_name(tmp_path, bad):
    path = tmp_path / "params.yaml"
    path.write_text(f"synthesize:\n  effects:\n    {bad}\n")
    with pytest.raises(ParamsError, match=r"synthesize\.effects"):
        load_params(path)


def test_two_polarizations_split_each_partial_into_a_fast_and_a_slower_detuned_one():
    from fretlab.synth.guitar import _two_polarizations

    freqs, amps, rates = np.array([100.0, 200.0, 300.0]), np.array([1.0, 0.5, 0.25]), np.array([2.0, 4.0, 8.0])
    f2, a2, r2 = _two_polarizations(freqs, amps, rates, np.random.default_rng(0))
    assert f2.shape == a2.shape == r2.shape == (6,)
    np.testing.assert_allclose(a2[:3] + a2[3:], amps)  # the amplitude is shared, not added
    np.testing.assert_array_equal(f2[:3], freqs)
    assert np.all(np.abs(f2[3:] / freqs - 1) <= 1.5e-3) and np.all(r2[3:] < rates) and np.all(r2[:3] == rates)
    cfg = _cfg(two_stage_decay=True, effects=SynthEffects(enabled=False))
    rng = np.random.default_rng(1)
    audio, _ = render_file([draw_note("general_note", cfg, rng, make_guitar(0, rng))], make_guitar(0, rng), cfg, 2)
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0


def test_harmonics_ring_for_harmonic_sustain_sec_and_the_old_range_without_it():
    rng = np.random.default_rng(11)
    guitar = make_guitar(0, rng)
    shared = [draw_note("harmonic", _cfg(harmonic_sustain_sec=(0.25, 0.5)), rng, guitar).duration for _ in range(200)]
    assert min(shared) >= 0.25 and max(shared) <= 0.5
    before = [draw_note("harmonic", _cfg(), rng, guitar).duration for _ in range(200)]
    assert min(before) >= 0.7 and max(before) <= 3.0 and max(before) > 2.0  # 0.7 .. max(2, sustain_sec's top)


@pytest.mark.parametrize("bad", ["[0.5, 0.25]", "[0.0, 1.0]"])
def test_bad_harmonic_sustain_is_refused_by_name(tmp_path, bad):
    path = tmp_path / "params.yaml"
    path.write_text(f"synthesize:\n  harmonic_sustain_sec: {bad}\n")
    with pytest.raises(ParamsError, match=r"synthesize\.harmonic_sustain_sec"):
        load_params(path)


def _fretted(cfg: Synthesize, n: int = 3000, seed: int = 5) -> tuple[list, object]:
    rng = np.random.default_rng(seed)
    guitar = make_guitar(2, rng)  # an electric guitar in standard tuning or lower
    return [draw_note("general_note", cfg, rng, guitar) for _ in range(n)], guitar


def test_fretted_notes_reach_the_highest_fret_and_no_further():
    for frets in (20, 24):
        notes, guitar = _fretted(_cfg(frets=frets, pitch_range=(40, 100)))
        top = max(guitar.open_strings)
        assert max(n.pitch for n in notes) == top + frets
        for n in notes:
            assert 0 <= n.pitch - guitar.open_strings[n.string] <= frets


def test_palm_mutes_take_their_length_and_decay_range_from_params():
    cfg = _cfg(palm_mute_sec=(0.05, 0.06), palm_mute_decay_sec=(0.015, 0.02))
    mutes = [n for n in _fretted(cfg, 400)[0] if n.excitation == "MU"]
    assert len(mutes) > 50 and all(0.05 <= n.duration <= 0.06 for n in mutes)
    # a 15-20 ms time constant: the note falls by more than 15 dB within 50 ms of its onset
    from fretlab.synth.guitar import render_plucked
    sig = render_plucked(mutes[0], make_guitar(2, np.random.default_rng(0)), SR, np.random.default_rng(1), cfg)
    early, late = np.abs(sig[: int(0.01 * SR)]).max(), np.abs(sig[int(0.045 * SR): int(0.05 * SR)]).max()
    assert 20 * np.log10(late / early) < -15


def _partial_db(sig: np.ndarray, f0: float, k: int) -> float:
    spec = np.abs(np.fft.rfft(sig * np.hanning(sig.size)))
    freqs = np.fft.rfftfreq(sig.size, 1 / SR)
    band = lambda f: spec[(freqs > f * 0.97) & (freqs < f * 1.03)].max()  # noqa: E731
    return float(20 * np.log10(band(k * f0) / band(f0)))


@pytest.mark.parametrize("changes,richer", [
    ({"finger_rolloff": (0.8, 0.8)}, {"finger_rolloff": (2.4, 2.4)}),
    ({"damping_power": 1.0}, {"damping_power": 2.5}),
])
def test_a_lower_rolloff_or_damping_power_gives_stronger_upper_partials(changes, richer):
    from fretlab.synth.guitar import NoteSpec, render_plucked
    guitar = make_guitar(0, np.random.default_rng(3))  # acoustic: no pickup comb
    levels = []
    for cfg in (_cfg(**changes), _cfg(**richer)):
        note = NoteSpec("general_note", "NO", "FS", 76, 5, 1.0)
        sig = render_plucked(note, guitar, SR, np.random.default_rng(9), cfg)[int(0.1 * SR): int(0.6 * SR)]
        levels.append(_partial_db(sig, 440.0 * 2 ** ((76 - 69) / 12), 3))
    assert levels[0] > levels[1] + 3.0  # same note, same random draws: only the param differs


@pytest.mark.parametrize("key,bad", [("palm_mute_sec", "[0.5, 0.1]"), ("palm_mute_decay_sec", "[0.0, 0.1]"),
                                     ("finger_rolloff", "[2.0, 1.0]"), ("frets", "40"), ("damping_power", "-1")])
def test_bad_fretboard_and_timbre_params_are_refused_by_name(tmp_path, key, bad):
    path = tmp_path / "params.yaml"
    path.write_text(f"synthesize:\n  {key}: {bad}\n")
    with pytest.raises(ParamsError, match=rf"synthesize\.{key}"):
        load_params(path)


def test_uniform_pitch_sampling_covers_the_top_frets_as_often_as_mid_neck():
    counts = {}
    for sampling in ("string", "uniform"):
        notes, guitar = _fretted(_cfg(frets=24, pitch_range=(40, 100), pitch_sampling=sampling), n=6000)
        pitches = np.array([n.pitch for n in notes])
        for n in notes:  # the string drawn reaches the pitch
            assert 0 <= n.pitch - guitar.open_strings[n.string] <= 24
        top, mid = max(guitar.open_strings) + 24, min(guitar.open_strings) + 24
        assert pitches.min() == min(guitar.open_strings) and pitches.max() == top
        counts[sampling] = ((pitches > top - 4).mean(), (np.abs(pitches - mid) < 2).mean())
    top_share, mid_share = counts["uniform"]
    assert abs(top_share / 4 - mid_share / 3) < 0.01  # per semitone, the top frets as often as mid-neck
    assert counts["string"][0] < top_share / 2  # a string, then a fret: the top frets are rare


def test_a_swell_fades_a_driven_file_in_and_is_never_drawn_while_off():
    t = np.arange(SR, dtype=np.float32) / SR
    note = (np.sin(2 * np.pi * 220 * t) * np.exp(-t / 0.3)).astype(np.float32)  # a plucked, decaying note
    rms = lambda x, a, b: float(np.sqrt(np.mean(x[int(a * SR): int(b * SR)] ** 2)))  # noqa: E731
    swell = SynthEffects(drive_probability=1.0, swell_probability=1.0, swell_ms=(200.0, 200.0), reverb_probability=0.0)
    out = colour(note, SR, True, swell, np.random.default_rng(0))
    plain = colour(note, SR, True, swell.model_copy(update={"swell_probability": 0.0}), np.random.default_rng(0))
    assert rms(out, 0.0, 0.02) < 0.3 * rms(out, 0.25, 0.3)  # starts low, rises over 200 ms
    assert rms(plain, 0.0, 0.02) > rms(plain, 0.25, 0.3)  # without it the drive keeps the pluck's peak first
    # off: no random number is drawn for it, so the rest of the chain (and the dataset) is as before
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    colour(note, SR, True, swell.model_copy(update={"swell_probability": 0.0}), rng_a)
    colour(note, SR, True, SynthEffects(drive_probability=1.0, reverb_probability=0.0), rng_b)
    assert rng_a.random() == rng_b.random()


def test_a_louder_slap_click_raises_the_attack_over_the_tone():
    from fretlab.synth.guitar import NoteSpec, render_plucked
    bass = make_bass(0, np.random.default_rng(2))
    ratios = []
    for gain in (1.0, 4.0):
        note = NoteSpec("general_note", "NO", "SP", 40, 2, 1.0)
        sig = render_plucked(note, bass, SR, np.random.default_rng(4), _cfg(slap_click_gain=gain))
        rms = lambda a, b: np.sqrt(np.mean(sig[int(a * SR): int(b * SR)] ** 2))  # noqa: E731,B023
        ratios.append(20 * np.log10(rms(0.0, 0.005) / rms(0.1, 0.2)))
    assert ratios[1] > ratios[0] + 6.0  # same draws: only the click's level differs


def test_palm_mute_brightness_and_noise_set_a_mutes_timbre():
    from fretlab.synth.guitar import NoteSpec, render_plucked
    guitar = make_guitar(0, np.random.default_rng(2))
    note = NoteSpec("general_note", "NO", "MU", 52, 1, 0.5)

    def centroid(sig: np.ndarray) -> float:
        spec = np.abs(np.fft.rfft(sig[: SR // 10]))
        return float((np.fft.rfftfreq(SR // 10, 1 / SR) * spec).sum() / spec.sum())

    def render(**changes) -> np.ndarray:
        return render_plucked(note, guitar, SR, np.random.default_rng(4), _cfg(**changes))

    dark, bright = render(palm_mute_brightness=(0.2, 0.2)), render(palm_mute_brightness=(1.0, 1.0))
    assert centroid(bright) > 1.5 * centroid(dark)  # same draws: only the low-pass corner differs
    quiet, noisy = render(palm_mute_noise=(0.0, 0.0)), render(palm_mute_noise=(0.8, 0.8))
    assert np.abs(noisy - quiet)[: SR // 50].max() > 0.2 * np.abs(quiet).max()  # the pick noise, on its own


def test_a_harmonic_plucked_at_a_partials_node_loses_that_partial():
    from fretlab.synth.guitar import NoteSpec, render_harmonic
    guitar = dataclasses.replace(make_guitar(0, np.random.default_rng(3)), pickup_pos=None)  # no pickup comb on top
    open_pitch = guitar.open_strings[2]
    note = NoteSpec("harmonic", "HA", "FS", open_pitch + 12, 2, 1.0, 0.002)  # node 2: partials 2, 4, 6 of the string
    f0 = 440.0 * 2 ** ((open_pitch - 69) / 12)

    def level(sig: np.ndarray, k: int) -> float:
        seg = sig[int(0.05 * SR): int(0.45 * SR)]
        spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
        freqs = np.fft.rfftfreq(len(seg), 1 / SR)
        return float(spec[(freqs > 0.97 * k * f0) & (freqs < 1.03 * k * f0)].max())

    def render(position) -> np.ndarray:
        return render_harmonic(note, guitar, SR, np.random.default_rng(5), _cfg(harmonic_pluck_position=position))

    plain, at_quarter = render(None), render((0.25, 0.25))  # a quarter of the way: the 4th partial's node
    assert level(at_quarter, 4) / level(at_quarter, 2) < 0.1 * level(plain, 4) / level(plain, 2)
    with pytest.raises(ValueError, match="harmonic_pluck_position must lie in"):
        _cfg(harmonic_pluck_position=(0.2, 0.7))


def test_palm_mute_ranges_are_checked():
    with pytest.raises(ValueError, match="palm_mute_brightness must be positive"):
        _cfg(palm_mute_brightness=(0.0, 0.5))
    with pytest.raises(ValueError, match="palm_mute_noise must not be negative"):
        _cfg(palm_mute_noise=(-0.1, 0.5))
    with pytest.raises(ValueError, match="palm_mute_noise"):
        _cfg(palm_mute_noise=(0.5, 0.1))


def test_a_steeper_harmonic_rolloff_gives_a_purer_harmonic():
    from fretlab.synth.guitar import NoteSpec, render_harmonic
    guitar = make_guitar(0, np.random.default_rng(3))
    open_pitch = guitar.open_strings[5]
    note = NoteSpec("harmonic", "HA", "FS", open_pitch + HARMONIC_NODES[2], 5, 1.0, attack_sec=0.005)
    f0 = 440.0 * 2 ** ((note.pitch - 69) / 12)
    levels = [_partial_db(render_harmonic(note, guitar, SR, np.random.default_rng(9), _cfg(harmonic_rolloff=r))
                          [int(0.1 * SR): int(0.6 * SR)], f0, 2) for r in ((1.2, 1.2), (4.0, 4.0))]
    assert levels[1] < levels[0] - 10.0  # the octave partial: 1/2**4 against 1/2**1.2 at the start, ~17 dB


@pytest.mark.parametrize("node", [7, 8])
def test_high_nodes_sound_at_their_partial_of_the_open_string(node):
    from fretlab.synth.guitar import NoteSpec, render_harmonic
    cfg = _cfg(harmonic_nodes=[node], n_basses=0)
    offsets = {n.pitch - j.guitar.open_strings[n.string] for j in plan_dataset(cfg, CLASSES, 5) for n in j.notes
               if n.label == "harmonic"}
    assert offsets == {HARMONIC_NODES[node]}
    guitar = make_guitar(0, np.random.default_rng(3))
    note = NoteSpec("harmonic", "HA", "FS", OPEN_STRINGS[0] + HARMONIC_NODES[node], 0, 1.0, attack_sec=0.005)
    sig = render_harmonic(note, guitar, SR, np.random.default_rng(9), cfg)[int(0.1 * SR): int(0.6 * SR)]
    f_open = 440.0 * 2 ** ((guitar.open_strings[0] - 69) / 12)
    # the sounding partial is the node's multiple of the open string, well above the open string's own
    assert _partial_db(sig, f_open, node) > 20.0


def test_harmonic_nodes_outside_2_to_8_are_rejected():
    with pytest.raises(ValueError, match="harmonic_nodes"):
        _cfg(harmonic_nodes=[9])
