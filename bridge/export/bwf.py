"""Broadcast-WAV (EBU Tech 3285) ``bext`` chunks: a stem's timeline position inside its WAV.

A DAW's "move to original position" / "spot" reads ``TimeReference``, the number of samples
from the project start (at the file's own sample rate) to the first sample of the file, so a
stem dragged in from a file browser lands at its bar. The description names section, stem and
take so a person can tell the files apart in a media browser.

This module only builds the chunk's bytes; :func:`conditioning.io.audio.write_wav` writes them
into the WAV before the file becomes visible.
"""

from __future__ import annotations

import struct
import unicodedata
from dataclasses import dataclass
from datetime import datetime

#: The RIFF chunk id of the Broadcast-WAV extension chunk.
BEXT_ID = b"bext"
#: bext version 2 (EBU Tech 3285 v2): loudness fields present, left at "not measured" zero.
BEXT_VERSION = 2
DESCRIPTION_BYTES = 256
ORIGINATOR = "stembridge"


def ascii_text(text: str, size: int) -> bytes:
    """``text`` as printable ASCII of at most ``size`` bytes, NUL-padded to exactly ``size``.

    bext text fields are ASCII: accents are dropped to their base letter ("é" -> "e"), other
    characters outside printable ASCII (control characters, emoji) become "?".
    """
    plain = unicodedata.normalize("NFKD", text)
    out = "".join(
        c if 32 <= ord(c) < 127 else "?" for c in plain if not unicodedata.combining(c)
    )
    return out.encode("ascii")[:size].ljust(size, b"\0")


@dataclass(frozen=True)
class BextInfo:
    """What a stem's bext chunk says.

    Attributes:
        time_reference: samples from the project start to the file's first sample, at the
            file's sample rate (>= 0).
        description: free text (ASCII, at most 256 bytes are kept).
        originator_reference: a short id (at most 32 bytes), e.g. the job id.
        created: origination date and time written into the chunk (local time of the writer).
    """

    time_reference: int
    description: str
    originator_reference: str = ""
    created: datetime | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.time_reference < 2**64:
            raise ValueError(
                f"bext TimeReference {self.time_reference} must be a sample count from the project "
                "start (0 or more); a stem cannot start before the project"
            )


def stem_description(section: str, stem: str, take: int) -> str:
    """The description a stem WAV carries: ``"stembridge: Chorus 1 / drums / take 2"``."""
    return f"stembridge: {section} / {stem} / take {take}"


def bext_payload(info: BextInfo) -> bytes:
    """The bytes of a ``bext`` chunk (without the 8-byte chunk header).

    Layout (EBU Tech 3285 v2): Description 256, Originator 32, OriginatorReference 32,
    OriginationDate 10 (``yyyy-mm-dd``), OriginationTime 8 (``hh:mm:ss``), TimeReference as a
    little-endian 64-bit sample count (low word first), Version 2 bytes, UMID 64, five loudness
    values of 2 bytes, 180 reserved bytes, then an empty CodingHistory.
    """
    created = info.created or datetime.now()
    low, high = info.time_reference & 0xFFFFFFFF, info.time_reference >> 32
    return b"".join(
        [
            ascii_text(info.description, DESCRIPTION_BYTES),
            ascii_text(ORIGINATOR, 32),
            ascii_text(info.originator_reference, 32),
            created.strftime("%Y-%m-%d").encode("ascii"),
            created.strftime("%H:%M:%S").encode("ascii"),
            struct.pack("<IIH", low, high, BEXT_VERSION),
            b"\0" * 64,  # UMID: none
            b"\0" * 10,  # loudness value, range, max true peak, max momentary, max short-term
            b"\0" * 180,  # reserved
        ]
    )


def bext_chunk(info: BextInfo) -> tuple[bytes, bytes]:
    """``(b"bext", payload)``, the form :func:`conditioning.io.audio.write_wav` takes."""
    return BEXT_ID, bext_payload(info)
