"""Messages for JSON objects with keys they may not have, with a "did you mean" for typos.

Every parser of a part of request v1 (the request itself, ``project``, ``sections[i]``,
``inputs``, a tempo-map point, an inline note) refuses unknown keys; this module words that
refusal the same way everywhere, naming the closest allowed key (``'promt'`` -> ``'prompt'``).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable

#: How alike (0-1, :class:`difflib.SequenceMatcher` ratio) a key must be to an allowed one to
#: be suggested; 0.6 suggests 'prompt' for 'promt' and 'drums' for 'drum', nothing for 'colour'.
SUGGEST_CUTOFF = 0.6


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``word`` (case-insensitive), or None when none is close enough."""
    by_folded = {c.lower(): c for c in candidates}
    matches = difflib.get_close_matches(word.strip().lower(), list(by_folded), n=1, cutoff=SUGGEST_CUTOFF)
    return by_folded[matches[0]] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``" (did you mean 'prompt'?)"`` for the closest candidate, or ``""`` when none is close."""
    match = closest(word, candidates)
    return f" (did you mean {match!r}?)" if match is not None else ""


def unknown_keys_message(keys: Iterable[object], allowed: Collection[str], where: str) -> str | None:
    """The message for the keys of ``where`` that are not in ``allowed``, or None when all are.

    Args:
        keys: the object's keys (non-text keys are named with ``repr``).
        allowed: the keys the object may have.
        where: how the message names the object ("the request", "sections[2]").

    Returns:
        e.g. ``"the request has unknown key 'promt' (did you mean 'prompt'?); allowed keys:
        inputs, model, prompt, ..."``.
    """
    unknown = sorted((k for k in keys if k not in allowed), key=str)
    if not unknown:
        return None
    named = ", ".join(
        f"{k!r}{did_you_mean(k, allowed) if isinstance(k, str) else ''}" for k in unknown
    )
    noun = "key" if len(unknown) == 1 else "keys"
    return f"{where} has unknown {noun} {named}; allowed keys: {', '.join(sorted(allowed))}"
