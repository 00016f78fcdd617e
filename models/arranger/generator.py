"""The embedded default generator: arranges the conditioning into drums, bass, keys and lead,
then renders them with FluidSynth. Needs no weights and runs on a CPU."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from conditioning.prompts import ROLE_CHARACTER
from conditioning.types import Key, Note, SectionConditioning
from models.base import Generation, GenerationContext, Generator
from models.render import FluidRenderer, Part, shared_renderer

from .bass import bass_part
from .drums import drum_part, kick_onsets, on_pulses_only
from .grid import Bar, section_bars
from .harmony import ChordEvent, section_chords
from .keys import keys_part
from .lead import improvise, place_melody
from .style import (
    FADE_END,
    Dynamics,
    Shape,
    Style,
    clamp_velocity,
    dynamics_from_prompt,
    shape_for_role,
    style_from_prompt,
)

#: Stems the arranger can play, in the order they are arranged.
SUPPORTED_STEMS: tuple[str, ...] = ("drums", "bass", "keys", "lead")


@dataclass(frozen=True)
class Arrangement:
    """Everything decided about a section before rendering.

    Attributes:
        style: the style read from the prompt.
        shape: the section role's shape.
        key: the key the section is in (given, or estimated).
        bars: the section's bars.
        chords: the chord timeline used (given, or derived).
        parts: stem name -> notes (beats).
        programs: stem name -> General MIDI program (drum-kit preset for "drums").
    """

    style: Style
    shape: Shape
    key: Key
    bars: tuple[Bar, ...]
    chords: tuple[ChordEvent, ...]
    parts: dict[str, tuple[Note, ...]]
    programs: dict[str, int]


def section_rng(seed: int, conditioning: SectionConditioning, range_beats: tuple[float, float] | None) -> np.random.Generator:
    """The section's random generator: from the seed and the section (and a regenerated range).

    A regeneration draws from a different stream than the take it regenerates, so the notes
    inside the range change even with the same seed.
    """
    sec = conditioning.section
    section_key = zlib.crc32(f"{sec.name}|{sec.start_beat:.6f}|{sec.end_beat:.6f}".encode())
    entropy = [int(seed) & 0xFFFFFFFF, section_key]
    if range_beats is not None:
        entropy += [0x5E6E, int(round(range_beats[0] * 1000)) & 0xFFFFFFFF, int(round(range_beats[1] * 1000)) & 0xFFFFFFFF]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def arrange(
    conditioning: SectionConditioning,
    rng: np.random.Generator,
    *,
    check: Callable[[str, float], None] | None = None,
) -> Arrangement:
    """Decide the notes of every requested stem of a section.

    Args:
        conditioning: the section and its conditioning.
        rng: the section's random generator (see :func:`section_rng`).
        check: called as ``check(stem, fraction)`` after each part (progress, cancellation).

    Raises:
        ValueError: a stem name the arranger does not play.
    """
    unknown = [s for s in conditioning.stems if s not in SUPPORTED_STEMS]
    if unknown:
        raise ValueError(
            f"the arranger cannot play stem(s) {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(SUPPORTED_STEMS)}"
        )
    sec = conditioning.section
    style = style_from_prompt(conditioning.prompt)
    shape = shape_for_role(sec.role)
    # dynamics come from the musician's words, not from the role description the prompt carries
    character = ROLE_CHARACTER.get(sec.role, "")
    dynamics = dynamics_from_prompt(conditioning.prompt.replace(character, "") if character else conditioning.prompt)
    if dynamics.sparse:
        shape = replace(shape, energy=min(shape.energy, 0.35), keys_sustain=True, lead_density=shape.lead_density / 2)
    bars = section_bars(conditioning.tempo_map, sec.start_beat, sec.end_beat)
    melody = conditioning.melody.in_range(sec.start_beat, sec.end_beat) if conditioning.melody else ()
    chords, key = section_chords(conditioning.chords, bars, melody, conditioning.key, int(rng.integers(0, 3)))
    fill = conditioning.next is not None
    # independent streams per part: changing one part's choices never shifts another's
    streams = {name: np.random.default_rng(rng.integers(0, 2**63)) for name in SUPPORTED_STEMS}
    wanted = set(conditioning.stems)
    parts: dict[str, tuple[Note, ...]] = {}
    drums = drum_part(bars, style, shape, streams["drums"], given=conditioning.drums, fill=fill)
    if dynamics.sparse:
        drums = on_pulses_only(drums, bars)
    steps = [s for s in SUPPORTED_STEMS if s in wanted]
    done = 0

    def report(stem: str) -> None:
        nonlocal done
        done += 1
        if check is not None:
            check(stem, done / max(1, len(steps)))

    if "drums" in wanted:
        parts["drums"] = tuple(drums)
        report("drums")
    if "bass" in wanted:
        parts["bass"] = tuple(bass_part(bars, chords, kick_onsets(drums), style, shape, key, streams["bass"], fill=fill))
        report("bass")
    if "keys" in wanted:
        parts["keys"] = tuple(keys_part(bars, chords, style, shape, streams["keys"], fill=fill))
        report("keys")
    if "lead" in wanted:
        if melody:
            lead = place_melody(melody, style.lead_program, shape, sec.end_beat)
        else:
            lead = improvise(bars, chords, key, style, shape, streams["lead"])
        parts["lead"] = tuple(lead)
        report("lead")
    parts = {stem: apply_dynamics(notes, dynamics, sec.start_beat, sec.end_beat) for stem, notes in parts.items()}
    programs = {"drums": style.drum_kit, "bass": style.bass_program, "keys": style.keys_program, "lead": style.lead_program}
    return Arrangement(
        style=style,
        shape=shape,
        key=key,
        bars=tuple(bars),
        chords=tuple(chords),
        parts={s: parts[s] for s in conditioning.stems},
        programs={s: programs[s] for s in conditioning.stems},
    )


def apply_dynamics(notes: tuple[Note, ...], dynamics: Dynamics, start: float, end: float) -> tuple[Note, ...]:
    """Scale the velocities of ``notes`` as ``dynamics`` asks (a fade falls from ``start`` to
    ``end`` beats); unchanged when nothing is asked."""
    if dynamics.velocity == 1.0 and not dynamics.fade:
        return notes
    span = max(end - start, 1e-9)

    def scale(beat: float) -> float:
        fade = 1.0 - (1.0 - FADE_END) * (beat - start) / span if dynamics.fade else 1.0
        return dynamics.velocity * fade

    return tuple(replace(n, velocity=clamp_velocity(n.velocity * scale(n.start_beat))) for n in notes)


class ArrangerGenerator(Generator):
    """Arranges drums, bass, keys and lead from chords, drums, melody and prompt; renders them
    with FluidSynth and a General MIDI SoundFont.

    Args:
        soundfont: path of a .sf2 SoundFont; None uses the one shipped with pretty_midi.
        workers: render threads; None uses one per CPU core.
    """

    name = "arranger"

    def __init__(self, soundfont: str | Path | None = None, workers: int | None = None) -> None:
        self._renderer: FluidRenderer = shared_renderer(soundfont)
        self._workers = workers

    def _generate(self, conditioning: SectionConditioning, ctx: GenerationContext) -> Generation:
        sec = conditioning.section
        rng = section_rng(ctx.seed, conditioning, ctx.range_beats)

        def check(stem: str, fraction: float) -> None:
            ctx.cancel.check()
            ctx.progress(0.3 * fraction, f"{sec.name}: arranged {stem}")

        arrangement = arrange(conditioning, rng, check=check)
        ctx.cancel.check()
        ctx.progress(0.3, f"{sec.name}: rendering {len(arrangement.parts)} stems")
        parts = {
            stem: Part(notes, arrangement.programs[stem], drums=stem == "drums")
            for stem, notes in arrangement.parts.items()
        }
        rendered: list[str] = []

        def stem_done(stem: str) -> None:
            rendered.append(stem)
            ctx.progress(0.3 + 0.65 * len(rendered) / len(parts), f"{sec.name}: rendered {stem}")
            ctx.cancel.check()

        stems = self._renderer.render_many(
            parts,
            conditioning.tempo_map,
            sec.start_beat,
            sec.end_beat,
            conditioning.sample_rate,
            workers=self._workers,
            on_done=stem_done,
        )
        return Generation(
            stems=stems,
            parts=arrangement.parts,
            programs=arrangement.programs,
            info={
                "style": arrangement.style.name,
                "key": arrangement.key.name,
                "chords": [ev.chord.label for ev in arrangement.chords],
            },
        )
