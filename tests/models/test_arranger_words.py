"""Prompt words and musical details a listener notices: every listed word changes the audio,
"fading, sparse" is quiet, "brushes" picks the brush kit, bar 1 sounds like bar 1."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from conditioning.timeline import Section, TempoMap
from conditioning.types import (
    ChordProgression,
    ChordSpan,
    DrumPattern,
    Key,
    Note,
    SectionConditioning,
)
from models.arranger import style as style_module
from models.arranger.drums import BRUSH_KIT, CRASH, KICKS
from models.arranger.generator import ArrangerGenerator, arrange, section_rng
from models.arranger.grid import section_bars
from models.arranger.style import PROMPT_WORDS, style_from_prompt

README = Path(__file__).resolve().parents[2] / "README.md"
STEMS = ("drums", "bass", "keys", "lead")
SR = 16000


def _cond(prompt: str, *, name: str = "Verse 1", tm: TempoMap | None = None, bars: tuple[int, int] = (1, 3),
          drums: DrumPattern | None = None, stems: tuple[str, ...] = STEMS) -> SectionConditioning:
    tm = tm or TempoMap.constant(120)
    spans = tuple(ChordSpan(("A:min", "F:maj", "C:maj", "G:maj")[i % 4], tm.bar_to_beat(i + 1), tm.bar_to_beat(i + 2))
                  for i in range(bars[1] + 2))
    return SectionConditioning(
        section=Section.from_bars(name, bars[0], bars[1], tm), tempo_map=tm, sample_rate=SR, prompt=prompt,
        stems=stems, chords=ChordProgression(spans, Key(9, "minor")), drums=drums,
        next=Section.from_bars("Chorus 9", bars[1], bars[1] + 2, tm),
    )


@pytest.fixture(scope="module")
def generator() -> ArrangerGenerator:
    return ArrangerGenerator(workers=1)


def _mix(generator: ArrangerGenerator, prompt: str, **kwargs: object) -> np.ndarray:
    gen = generator.generate(_cond(prompt, **kwargs), seed=5)  # type: ignore[arg-type]
    return np.sum([a.samples.mean(axis=0) for a in gen.stems.values()], axis=0)


def _rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12))


def _bands(x: np.ndarray, n: int = 48) -> np.ndarray:
    """Share of the energy in ``n`` log-spaced bands from 40 Hz to 8 kHz."""
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / SR)
    edges = np.geomspace(40, SR / 2, n + 1)
    energy = np.array([spectrum[(freqs >= a) & (freqs < b)].sum() for a, b in zip(edges, edges[1:], strict=False)])
    return energy / energy.sum()


def _difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(loudness change in dB, spectral change: half the L1 distance of the band shares, 0-1)."""
    return abs(_rms_db(a) - _rms_db(b)), 0.5 * float(np.abs(_bands(a) - _bands(b)).sum())


def test_the_readme_lists_every_word() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [w for words in PROMPT_WORDS.values() for w in words if f"`{w}`" not in text]
    assert missing == []


def test_every_word_pattern_is_represented_by_a_listed_word() -> None:
    patterns = [p for _genre, p in style_module._GENRE_WORDS]
    for name in ("_KEYS_WORDS", "_LEAD_WORDS", "_BASS_WORDS", "_KIT_WORDS", "_DYNAMICS_WORDS"):
        patterns += [p for p, _value in getattr(style_module, name)]
    listed = [w for words in PROMPT_WORDS.values() for w in words]
    for pattern in patterns:
        regex = re.compile(style_module._whole_word(pattern, ""))
        assert any(regex.search(w) for w in listed), pattern


@pytest.mark.slow
def test_every_listed_word_audibly_changes_the_render(generator: ArrangerGenerator) -> None:
    baselines = {b: _mix(generator, b) for b in ("", "rock")}
    silent = []
    for kind, words in PROMPT_WORDS.items():
        for word in words:
            changes = [_difference(_mix(generator, f"{word}, {b}".strip(", ")), base) for b, base in baselines.items()]
            if not any(db > 1.0 or spectral > 0.03 for db, spectral in changes):
                silent.append((kind, word, changes))
    assert silent == []


def test_fading_sparse_outro_drums_are_quieter_than_the_chorus(generator: ArrangerGenerator) -> None:
    """The demo's case: the musician's drum track under "full band" and "fading, sparse"."""
    hits = tuple(Note(p, b + o, b + o + 0.25, 100) for b in range(0, 40, 4) for p, o in
                 ((36, 0), (42, 0), (42, 0.5), (38, 1), (42, 1), (42, 1.5), (36, 2), (42, 2), (42, 2.5), (38, 3)))
    drums = DrumPattern((), hits)
    chorus = generator.generate(_cond("full band, more energy", name="Chorus 1", drums=drums), seed=1)
    outro = generator.generate(_cond("fading, sparse", name="Outro", bars=(1, 3), drums=drums), seed=1)
    c, o = chorus.stems["drums"].samples, outro.stems["drums"].samples
    assert _rms_db(o) < _rms_db(c) - 6.0
    # and it fades: the second bar is quieter than the first
    half = o.shape[1] // 2
    assert _rms_db(o[:, half:]) < _rms_db(o[:, :half]) - 3.0
    assert len(outro.parts["drums"]) < len(chorus.parts["drums"])  # sparse: only the hits on the pulses


def test_brushes_select_the_general_midi_brush_kit(generator: ArrangerGenerator) -> None:
    assert style_from_prompt("jazz trio, brushes").drum_kit == BRUSH_KIT == 40
    from models.render import DRUM_BANK, default_soundfont

    fluidsynth = pytest.importorskip("fluidsynth")
    synth = fluidsynth.Synth()
    try:
        sfid = synth.sfload(str(default_soundfont()))
        assert synth.sfpreset_name(sfid, DRUM_BANK, BRUSH_KIT) == "Brush"  # TimGM6mb's brush kit
    finally:
        synth.delete()
    sticks, brushes = _mix(generator, "jazz", stems=("drums",)), _mix(generator, "jazz, brushes", stems=("drums",))
    db, spectral = _difference(sticks, brushes)
    assert spectral > 0.05 or db > 2.0


@pytest.mark.parametrize("metre", [(4, 4), (3, 4), (6, 8)])
@pytest.mark.parametrize("bpm", [70, 110, 150])
def test_bar_lines_carry_kick_bass_chord_and_a_crash(metre: tuple[int, int], bpm: int) -> None:
    tm = TempoMap.constant(bpm, metre)
    for genre in ("pop", "rock", "funk", "jazz", "techno", "house", "hiphop", "lofi", "country", "reggae",
                  "bossa nova", "ballad", "disco", "metal", "r&b", "latin", "ambient"):
        for name in ("Verse 1", "Chorus 1", "Bridge"):
            cond = _cond(genre, name=name, tm=tm, bars=(3, 7))
            parts = arrange(cond, section_rng(bpm, cond, None)).parts
            bars = section_bars(tm, cond.section.start_beat, cond.section.end_beat)
            starts = {stem: {round(n.start_beat, 6) for n in notes} for stem, notes in parts.items()}
            kicks = {round(n.start_beat, 6) for n in parts["drums"] if n.pitch in KICKS}
            where = (genre, name, metre, bpm)
            assert round(bars[0].start, 6) in {round(n.start_beat, 6) for n in parts["drums"] if n.pitch == CRASH}, where
            for bar in bars:
                b = round(bar.start, 6)
                assert b in starts["bass"], where
                assert b in kicks or style_from_prompt(genre).groove == "onedrop", where
            for span in cond.chords.in_range(cond.section.start_beat, cond.section.end_beat):  # type: ignore[union-attr]
                # the chord change is played on the bar line (a laid-back feel may drag it by < 0.05 beats)
                assert any(0 <= k - span.start_beat < 0.05 for k in starts["keys"]), where
