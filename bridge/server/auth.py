"""Token authentication for requests from untrusted transports (OSC with ``--allow-remote``).

Tokens are compared in constant time (:func:`hmac.compare_digest`), so response timing tells a
stranger nothing about how much of a guess was right.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any


class TokenAuth:
    """Checks the shared secret an untrusted sender must present.

    Args:
        token: the secret, or None when no token is required (loopback-only bridges).
    """

    def __init__(self, token: str | None) -> None:
        if token is not None and not token:
            raise ValueError("the token must not be empty; pass a secret or no token at all")
        self._token = token

    @property
    def required(self) -> bool:
        """True when untrusted senders must present the token."""
        return self._token is not None

    def accepts(self, given: object) -> bool:
        """True if ``given`` is the token (always True when none is required)."""
        if self._token is None:
            return True
        return isinstance(given, str) and hmac.compare_digest(given.encode(), self._token.encode())

    def strip_from_args(self, args: Sequence[Any]) -> tuple[list[Any], bool]:
        """``(args without a trailing token, True)`` if the last argument is the token, else ``(args, False)``."""
        out = list(args)
        if self._token is not None and out and isinstance(out[-1], str) and self.accepts(out[-1]):
            out.pop()
            return out, True
        return out, False
