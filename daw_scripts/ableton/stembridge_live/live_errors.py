"""The exceptions Live's API raises: ``RuntimeError`` and ``Live.Base.LimitationError``.

Live reports a refused call (a frozen or recording track, an unreadable file, a position out of
range) as ``RuntimeError`` and a licence or size limit (too many tracks in Intro/Lite) as
``LimitationError``. Catch ``LIVE_ERRORS`` where a Live call is made, report it, keep going.
"""

from __future__ import annotations

from typing import Tuple, Type


def _limitation_error() -> Type[Exception]:
    try:
        from Live.Base import LimitationError
    except ImportError:  # outside Live (tools that import the package without it)
        return RuntimeError
    return LimitationError


LIVE_ERRORS: Tuple[Type[Exception], ...] = (RuntimeError, _limitation_error())
