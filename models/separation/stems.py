"""Map Demucs' four sources onto the stems a request asks for.

Demucs (htdemucs) splits a mix into ``drums``, ``bass``, ``other`` and ``vocals``. Requested
stems take sources in request order, each from its preference list below; a source goes to one
stem only. Sources nobody took are added to the first requested melodic stem (one that would
accept ``other``), so the requested stems still sum to the mix; with no melodic stem they are
dropped. A stem whose sources were all taken is silent (and says so in the notes).

=========================  =====================================
requested stem             takes (first free one)
=========================  =====================================
drums, percussion          drums
bass                       bass
vocals, voice, vox         vocals
lead, melody               vocals, then other
anything else (keys, …)    other
=========================  =====================================

So ``drums, bass, keys, lead`` gets drums, bass, other, vocals (an instrumental's lead line
usually lands in Demucs' vocals source), and ``drums, bass, keys`` gets drums, bass,
other + vocals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from conditioning.types import Audio

SOURCES: tuple[str, ...] = ("drums", "bass", "other", "vocals")

_PREFERENCES: dict[str, tuple[str, ...]] = {
    "drums": ("drums",),
    "percussion": ("drums",),
    "bass": ("bass",),
    "vocals": ("vocals",),
    "voice": ("vocals",),
    "vox": ("vocals",),
    "lead": ("vocals", "other"),
    "melody": ("vocals", "other"),
}
_DEFAULT_PREFERENCE: tuple[str, ...] = ("other",)


def source_assignment(requested: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Which Demucs sources make up each requested stem (empty tuple: silent).

    Args:
        requested: stem names in request order.

    Returns:
        stem -> sources summed into it.

    Raises:
        ValueError: no stems, or a stem named twice.
    """
    if not requested:
        raise ValueError("no stems were requested; ask for at least one, e.g. drums")
    if len(set(requested)) != len(requested):
        raise ValueError(f"stems {list(requested)} name a stem twice; list each stem once")
    taken: dict[str, str] = {}
    out: dict[str, list[str]] = {}
    for stem in requested:
        prefs = _PREFERENCES.get(stem.lower(), _DEFAULT_PREFERENCE)
        free = [s for s in prefs if s not in taken]
        out[stem] = free[:1]
        if free:
            taken[free[0]] = stem
    catch_all = next(
        (s for s in requested if "other" in _PREFERENCES.get(s.lower(), _DEFAULT_PREFERENCE)), None
    )
    if catch_all is not None:
        out[catch_all] += [s for s in SOURCES if s not in taken]
    return {stem: tuple(srcs) for stem, srcs in out.items()}


def stems_from_sources(
    sources: Mapping[str, Audio], requested: Sequence[str]
) -> tuple[dict[str, Audio], dict[str, str]]:
    """Sum separated sources into the requested stems.

    Args:
        sources: Demucs source name -> audio (all the same rate and shape).
        requested: stem names in request order.

    Returns:
        (stem -> audio, stem -> a note naming its sources, for the manifest).

    Raises:
        ValueError: ``sources`` is empty or lacks one of :data:`SOURCES`.
    """
    missing = [s for s in SOURCES if s not in sources]
    if missing:
        raise ValueError(f"separated audio lacks the {', '.join(missing)} source(s)")
    first = sources[SOURCES[0]]
    stems: dict[str, Audio] = {}
    notes: dict[str, str] = {}
    for stem, srcs in source_assignment(requested).items():
        total = np.zeros_like(first.samples)
        for s in srcs:
            total += sources[s].samples
        stems[stem] = Audio(total, first.sample_rate)
        notes[stem] = "+".join(srcs) if srcs else "silent: its Demucs source went to another stem"
    return stems, notes
