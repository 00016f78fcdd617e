"""Melody: cleaning basic-pitch notes, quantisation, key snapping, chroma, skyline, JSON.

The pure-maths tests use synthetic note lists. The end-to-end tests run basic-pitch on a short
synthetic hum; they share one warm session (module-scoped fixture) and are marked slow.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from conditioning.melody import (
    CleaningOptions,
    RawNote,
    clean_notes,
    melody_chroma,
    melody_from_notes,
    melody_to_raw_notes,
    notes_to_melody,
    quantize_melody,
    snap_melody_to_key,
    snap_pitch_to_key,
)
from conditioning.timeline import TempoMap, TempoPoint, TimeSignature
from conditioning.types import Audio, Key, Melody, Note

REPO = Path(__file__).resolve().parents[2]


def _pitches(notes: list[RawNote]) -> list[int]:
    return [n.pitch for n in notes]


# -- cleaning -------------------------------------------------------------------------------


def test_clean_keeps_a_clean_line_unchanged() -> None:
    line = [RawNote(0.0, 0.4, 60, 0.7), RawNote(0.5, 0.9, 62, 0.7), RawNote(1.0, 1.5, 64, 0.7)]
    out = clean_notes(line)
    assert _pitches(out) == [60, 62, 64]
    assert [round(n.start_s, 3) for n in out] == [0.0, 0.5, 1.0]
    assert [round(n.end_s, 3) for n in out] == [0.4, 0.9, 1.5]


def test_overlap_keeps_the_dominant_note() -> None:
    # A quieter octave-up ghost sounds over the whole sung note.
    raw = [RawNote(0.0, 1.0, 57, 0.8), RawNote(0.0, 1.0, 69, 0.4)]
    out = clean_notes(raw)
    assert _pitches(out) == [57]
    assert (out[0].start_s, out[0].end_s) == (0.0, 1.0)


def test_new_onset_takes_over_from_previous_tail() -> None:
    # The previous note's release overlaps the next onset by 60 ms: the new note starts on time.
    raw = [RawNote(0.0, 0.56, 65, 0.7), RawNote(0.5, 1.0, 62, 0.5)]
    out = clean_notes(raw)
    assert _pitches(out) == [65, 62]
    assert out[0].end_s == pytest.approx(0.5, abs=0.006)
    assert out[1].start_s == pytest.approx(0.5)


def test_output_never_overlaps() -> None:
    rng = np.random.default_rng(0)
    raw = []
    for _ in range(60):
        t = float(rng.uniform(0, 10))
        raw.append(RawNote(t, t + float(rng.uniform(0.02, 1.0)), int(rng.integers(50, 80)), float(rng.uniform(0.2, 1))))
    out = clean_notes(raw)
    assert out
    for prev, cur in zip(out, out[1:], strict=False):
        assert prev.end_s <= cur.start_s + 1e-9
        assert prev.end_s > prev.start_s


def test_octave_error_between_neighbours_is_fixed() -> None:
    raw = [RawNote(0.0, 0.4, 60, 0.7), RawNote(0.5, 0.9, 74, 0.7), RawNote(1.0, 1.4, 64, 0.7)]
    assert _pitches(clean_notes(raw)) == [60, 62, 64]
    raw_down = [RawNote(0.0, 0.4, 67, 0.7), RawNote(0.5, 0.9, 53, 0.7), RawNote(1.0, 1.4, 64, 0.7)]
    assert _pitches(clean_notes(raw_down)) == [67, 65, 64]


def test_genuine_leap_is_not_an_octave_error() -> None:
    # A leap up that stays up (the next note is near the new pitch) is kept.
    raw = [RawNote(0.0, 0.4, 60, 0.7), RawNote(0.5, 0.9, 72, 0.7), RawNote(1.0, 1.4, 71, 0.7)]
    assert _pitches(clean_notes(raw)) == [60, 72, 71]
    # Neighbours far away in time do not count.
    far = [RawNote(0.0, 0.4, 60, 0.7), RawNote(3.0, 3.4, 74, 0.7), RawNote(6.0, 6.4, 62, 0.7)]
    assert _pitches(clean_notes(far)) == [60, 74, 62]


def test_short_isolated_blip_is_removed() -> None:
    raw = [RawNote(0.0, 0.4, 60, 0.7), RawNote(0.7, 0.73, 66, 0.7), RawNote(1.0, 1.4, 62, 0.7)]
    assert _pitches(clean_notes(raw)) == [60, 62]


def test_quiet_blip_is_removed() -> None:
    raw = [RawNote(0.0, 0.4, 60, 0.7), RawNote(0.6, 0.8, 70, 0.1), RawNote(1.0, 1.4, 62, 0.7)]
    assert _pitches(clean_notes(raw)) == [60, 62]


def test_scoop_blip_hands_its_onset_to_the_note() -> None:
    # A 30 ms scoop a semitone below, then the real note: one note starting at the scoop.
    raw = [RawNote(1.0, 1.03, 63, 0.5), RawNote(1.03, 1.6, 64, 0.8)]
    out = clean_notes(raw)
    assert _pitches(out) == [64]
    assert out[0].start_s == pytest.approx(1.0)


def test_vibrato_fragments_are_merged() -> None:
    # A held 62 that flickers to 63 for 20 ms: one note, not three.
    raw = [RawNote(0.0, 0.5, 62, 0.7), RawNote(0.5, 0.52, 63, 0.6), RawNote(0.52, 1.0, 62, 0.7)]
    out = clean_notes(raw)
    assert _pitches(out) == [62]
    assert (out[0].start_s, out[0].end_s) == (0.0, 1.0)


def test_repeated_notes_with_their_own_onsets_stay_separate() -> None:
    raw = [RawNote(0.0, 0.3, 62, 0.7), RawNote(0.35, 0.6, 62, 0.7), RawNote(0.6, 0.9, 62, 0.7)]
    assert len(clean_notes(raw)) == 3


def test_pitch_range_is_enforced() -> None:
    raw = [RawNote(0.0, 0.5, 30, 0.9), RawNote(0.0, 0.5, 60, 0.5), RawNote(1.0, 1.5, 100, 0.9)]
    assert _pitches(clean_notes(raw, CleaningOptions(min_pitch=36, max_pitch=96))) == [60]


def test_clean_empty() -> None:
    assert clean_notes([]) == []


def test_trim_to_envelope_cuts_release_tails() -> None:
    from conditioning.melody import trim_to_envelope

    env = np.full(100, -80.0)  # 100 frames/s
    env[10:40] = -10.0  # the note sounds 0.1-0.4 s, then a reverb tail at -35 dB
    env[40:60] = -35.0
    out = trim_to_envelope([RawNote(0.1, 0.6, 60, 0.7)], env, 100.0, drop_db=20.0)
    assert out[0].start_s == 0.1
    assert out[0].end_s == pytest.approx(0.4)
    kept = trim_to_envelope([RawNote(0.1, 0.6, 60, 0.7)], env, 100.0, drop_db=30.0)
    assert kept[0].end_s == pytest.approx(0.6)


def test_repeats_merge_only_without_a_level_dip() -> None:
    from conditioning.melody import merge_unarticulated_repeats

    env = np.full(200, -80.0)  # 100 frames/s
    env[10:150] = -12.0  # one held sound 0.1-1.5 s ...
    env[98:102] = -24.0  # ... re-articulated at 1.0 s
    notes = [RawNote(0.1, 0.5, 62, 0.6), RawNote(0.5, 1.0, 62, 0.7), RawNote(1.0, 1.5, 62, 0.7)]
    out = merge_unarticulated_repeats(notes, env, 100.0)
    assert [(n.start_s, n.end_s) for n in out] == [(0.1, 1.0), (1.0, 1.5)]
    # Different pitches are never merged.
    mixed = [RawNote(0.1, 0.5, 62, 0.6), RawNote(0.5, 1.0, 64, 0.7)]
    assert merge_unarticulated_repeats(mixed, env, 100.0) == mixed


# -- seconds <-> beats ------------------------------------------------------------------------


def test_notes_to_melody_uses_offset_and_tempo_map() -> None:
    tm = TempoMap.constant(120.0)  # 0.5 s per beat
    mel = notes_to_melody([RawNote(0.0, 0.5, 60, 1.0), RawNote(1.0, 2.0, 62, 0.5)], tm, offset_s=2.0)
    assert mel.source == "audio"
    assert [(n.start_beat, n.end_beat) for n in mel.notes] == [(4.0, 5.0), (6.0, 8.0)]
    assert [n.velocity for n in mel.notes] == [127, 64]
    back = melody_to_raw_notes(mel, tm, offset_s=2.0)
    assert [(r.start_s, r.end_s) for r in back] == [(0.0, 0.5), (1.0, 2.0)]


def test_notes_before_project_start_are_dropped() -> None:
    tm = TempoMap.constant(60.0)
    mel = notes_to_melody([RawNote(0.0, 0.5, 60), RawNote(1.5, 2.0, 62)], tm, offset_s=-1.0)
    assert [n.pitch for n in mel.notes] == [62]
    assert mel.notes[0].start_beat == pytest.approx(0.5)


# -- quantisation and key snapping -----------------------------------------------------------


def test_quantize_to_sixteenths_and_eighths() -> None:
    tm = TempoMap.constant(100.0)
    mel = Melody((Note(60, 0.07, 0.93), Note(62, 1.13, 1.6), Note(64, 2.49, 2.52)))
    q = quantize_melody(mel, tm, subdivision=4)
    assert [(n.start_beat, n.end_beat) for n in q.notes] == [(0.0, 1.0), (1.25, 1.5), (2.5, 2.75)]
    q2 = quantize_melody(mel, tm, subdivision=2)
    assert [(n.start_beat, n.end_beat) for n in q2.notes] == [(0.0, 1.0), (1.0, 1.5), (2.5, 3.0)]


def test_quantize_grid_follows_bar_lines_in_odd_metres() -> None:
    # 7/8 bars are 3.5 beats; with a quarter-note grid, bar 2 starts at 3.5 (not on an integer).
    tm = TempoMap([TempoPoint(0.0, 120.0, TimeSignature(7, 8))])
    mel = Melody((Note(60, 3.6, 4.4),))
    q = quantize_melody(mel, tm, subdivision=1)
    assert (q.notes[0].start_beat, q.notes[0].end_beat) == (3.5, 4.5)


def test_quantize_never_overlaps_and_drops_collisions() -> None:
    tm = TempoMap.constant(120.0)
    mel = Melody((Note(60, 0.0, 0.6), Note(62, 0.45, 1.0), Note(64, 0.49, 1.2)))
    q = quantize_melody(mel, tm, subdivision=2)
    assert [n.pitch for n in q.notes] == [60, 62]
    assert q.notes[0].end_beat <= q.notes[1].start_beat


def test_quantize_rejects_bad_subdivision() -> None:
    with pytest.raises(ValueError, match="subdivision"):
        quantize_melody(Melody(()), TempoMap.constant(120.0), subdivision=0)


def test_snap_to_key() -> None:
    a_minor = Key(9, "minor")  # A B C D E F G
    assert snap_pitch_to_key(61, a_minor) == 60  # C# -> C (tie goes down)
    assert snap_pitch_to_key(61, a_minor, prefer=64) == 62  # ... or toward the previous note
    assert snap_pitch_to_key(69, a_minor) == 69
    c_major = Key(0, "major")
    mel = Melody((Note(66, 0, 1), Note(70, 1, 2), Note(64, 2, 3)))
    # Bb is between A and B: it leans to A, nearer the previous note (F).
    assert [n.pitch for n in snap_melody_to_key(mel, c_major).notes] == [65, 69, 64]
    assert all(n.pitch % 12 in c_major.scale for n in snap_melody_to_key(mel, c_major).notes)


# -- MIDI skyline ----------------------------------------------------------------------------


def test_melody_from_notes_takes_the_highest_line() -> None:
    notes = [
        Note(48, 0.0, 4.0),  # bass under everything
        Note(60, 0.0, 1.0),
        Note(64, 0.0, 1.0),  # chord: 64 is the top
        Note(67, 1.0, 2.0),
        Note(62, 1.5, 2.5),  # under the held 67: dropped
        Note(72, 1.75, 2.0),  # higher: cuts the 67
        Note(65, 3.0, 4.0),
    ]
    mel = melody_from_notes(notes)
    assert mel.source == "midi"
    assert [(n.pitch, n.start_beat, n.end_beat) for n in mel.notes] == [
        (64, 0.0, 1.0),
        (67, 1.0, 1.75),
        (72, 1.75, 2.0),
        (65, 3.0, 4.0),
    ]


# -- chroma ----------------------------------------------------------------------------------


@pytest.mark.parametrize("frame_rate", [50.0, 25.0, 86.1328125, 12.5])
def test_chroma_one_hot_at_several_frame_rates(frame_rate: float) -> None:
    tm = TempoMap.constant(120.0)  # 0.5 s per beat
    mel = Melody((Note(69, 0.0, 2.0), Note(60, 2.0, 3.0), Note(67, 4.0, 6.0)))
    ch = melody_chroma(mel, tm, 0.0, 8.0, frame_rate)
    assert ch.shape == (round(4.0 * frame_rate), 12)
    assert ch.dtype == np.float32
    assert set(np.unique(ch)) <= {0.0, 1.0}
    assert np.all(ch.sum(axis=1) <= 1.0)

    def at(seconds: float) -> int | None:
        row = ch[int(seconds * frame_rate)]
        return int(np.argmax(row)) if row.any() else None

    assert at(0.3) == 9  # A
    assert at(1.2) == 0  # C
    assert at(1.7) is None  # rest
    assert at(2.5) == 7  # G
    assert at(3.5) is None


def test_chroma_honours_tempo_changes() -> None:
    # 120 bpm for 4 beats (2 s), then 60 bpm: beat 6 is at 4 s.
    tm = TempoMap([TempoPoint(0.0, 120.0), TempoPoint(4.0, 60.0)])
    mel = Melody((Note(62, 5.0, 6.0),))  # 3 s .. 4 s
    ch = melody_chroma(mel, tm, 0.0, 8.0, 10.0)
    assert ch.shape == (60, 12)  # 2 s + 4 s
    voiced = np.nonzero(ch.any(axis=1))[0]
    assert voiced.min() == 30 and voiced.max() == 39
    assert np.all(ch[voiced, 2] == 1.0)
    # A window starting mid-song counts frames from its own start.
    ch2 = melody_chroma(mel, tm, 4.0, 6.0, 10.0)
    assert ch2.shape == (20, 12)
    assert np.nonzero(ch2.any(axis=1))[0].tolist() == list(range(10, 20))


def test_chroma_dominant_class_wins_a_shared_frame() -> None:
    tm = TempoMap.constant(60.0)  # 1 s per beat; 2 Hz frames are 0.5 s
    mel = Melody((Note(60, 0.0, 0.3), Note(64, 0.3, 1.0)))
    ch = melody_chroma(mel, tm, 0.0, 1.0, 2.0)
    assert np.argmax(ch[0]) == 0 and ch[0].sum() == 1.0  # C 0.3 s beats E 0.2 s
    assert np.argmax(ch[1]) == 4
    mel2 = Melody((Note(60, 0.0, 0.1),))
    assert not melody_chroma(mel2, tm, 0.0, 1.0, 2.0).any()  # 20% of a frame is not enough


def test_chroma_rejects_bad_arguments() -> None:
    tm = TempoMap.constant(120.0)
    with pytest.raises(ValueError, match="frame rate"):
        melody_chroma(Melody(()), tm, 0.0, 4.0, 0.0)
    with pytest.raises(ValueError, match="backwards"):
        melody_chroma(Melody(()), tm, 4.0, 4.0, 50.0)


# -- end to end with basic-pitch --------------------------------------------------------------


def _make_hum_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_hum", REPO / "examples" / "make_hum.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_hum"] = module
    spec.loader.exec_module(module)
    return module


#: (beat, length in beats, pitch) at 100 bpm: a hummed A-minor phrase with a leap and a repeat.
PHRASE = ((0, 1, 57), (1, 1, 60), (2, 0.5, 64), (2.5, 0.5, 62), (3, 1, 60), (4, 1, 60), (5, 2, 69), (7, 1, 64))


@pytest.fixture(scope="module")
def hum() -> tuple[list[RawNote], Audio, list[RawNote], Melody]:
    """Reference notes (seconds), the hum at 44.1 kHz, raw and cleaned transcriptions."""
    from conditioning.io.basic_pitch import transcribe_melody, transcribe_raw

    mh = _make_hum_module()
    spb = 0.6
    offset = 0.25
    sung = [mh.SungNote(offset + b * spb, offset + (b + n) * spb - 0.08, p, 0.8) for b, n, p in PHRASE]
    take = mh.synth_voice(sung, 44100, seed=5, style=mh.VoiceStyle(vowels=("m",)))
    audio = Audio(np.stack([take.samples, take.samples]) * 0.3, 44100)
    ref = [RawNote(n.start_s, n.end_s, n.pitch) for n in take.notes]
    raw = transcribe_raw(audio)
    melody = transcribe_melody(audio, TempoMap.constant(100.0), offset_s=2.4)
    return ref, audio, raw, melody


@pytest.mark.slow
def test_transcribed_pitches_and_onsets(hum: tuple[list[RawNote], Audio, list[RawNote], Melody]) -> None:
    ref, _, _, melody = hum
    # offset 2.4 s at 100 bpm = 4 beats; the phrase starts 0.25 s into the recording.
    assert melody.source == "audio"
    assert [n.pitch for n in melody.notes] == [p for _, _, p in PHRASE]
    starts = [n.start_beat for n in melody.notes]
    expected = [4.0 + (0.25 / 0.6) + b for b, _, _ in PHRASE]
    np.testing.assert_allclose(starts, expected, atol=0.05 / 0.6)  # 50 ms
    for a, b in zip(melody.notes, melody.notes[1:], strict=False):
        assert a.end_beat <= b.start_beat + 1e-9


@pytest.mark.slow
def test_cleaning_is_not_worse_than_raw(hum: tuple[list[RawNote], Audio, list[RawNote], Melody]) -> None:
    import mir_eval

    ref, _, raw, melody = hum
    clean = melody_to_raw_notes(melody, TempoMap.constant(100.0), offset_s=2.4)

    def f1(est: list[RawNote]) -> float:
        iv = lambda ns: np.array([[n.start_s, n.end_s] for n in ns])  # noqa: E731
        hz = lambda ns: np.array([440.0 * 2 ** ((n.pitch - 69) / 12) for n in ns])  # noqa: E731
        return float(mir_eval.transcription.precision_recall_f1_overlap(iv(ref), hz(ref), iv(est), hz(est), offset_ratio=None)[2])

    assert f1(clean) >= f1(raw)
    assert f1(clean) >= 0.9


@pytest.mark.slow
def test_chroma_of_transcription_matches_reference(hum: tuple[list[RawNote], Audio, list[RawNote], Melody]) -> None:
    ref, audio, _, melody = hum
    tm = TempoMap.constant(100.0)
    ref_mel = notes_to_melody(ref, tm, offset_s=2.4)
    span = (4.0, tm.seconds_to_beat(2.4 + audio.duration_s))
    got = melody_chroma(melody, tm, *span, frame_rate=50.0)
    want = melody_chroma(ref_mel, tm, *span, frame_rate=50.0)
    voiced = want.any(axis=1)
    agree = np.mean(np.argmax(got[voiced], axis=1) == np.argmax(want[voiced], axis=1))
    assert agree >= 0.9


def test_transcribe_rejects_empty_audio() -> None:
    from conditioning.io.basic_pitch import transcribe_raw

    with pytest.raises(ValueError, match="no samples"):
        transcribe_raw(Audio.silence(0, 48000))
