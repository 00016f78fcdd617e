"""Text the bridge can always store, send and write, whatever a client or a file name held."""

from __future__ import annotations


def escape_surrogates(text: str) -> str:
    """``text`` with every lone surrogate written as ``\\udXXX`` (the rest unchanged).

    Python spells a byte of a file name that is not UTF-8 (0xE9 of a Latin-1 ``café.mid``), or a
    JSON ``\\ud800`` escape on its own, as a lone surrogate; UTF-8 cannot encode one, so SQLite,
    OSC and text files would refuse the whole string.
    """
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
