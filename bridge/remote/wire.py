"""The wire forms shared by the bridge and a remote worker (``stembridge worker``).

Everything the generation stage (:mod:`bridge.job.generation`) takes and returns, as JSON
documents plus content-addressed blobs:

- audio travels as a 32-bit float WAV blob (lossless: a stem arrives sample-identical), named by
  the SHA-256 of its bytes (:func:`blob_id`), so the same file is never uploaded twice;
- a request travels as request v1 made portable (:func:`portable_request`): ``project.dir`` is
  ``"."`` and every input path is relative to the project folder, with the file's blob id in
  ``files``; the worker rebuilds the folder inside its job folder and parses the request there;
- material and takes are JSON (:func:`material_to_json`, :func:`generation_to_json`), their audio
  blob ids in place of samples.

Nothing here does I/O beyond in-memory WAV coding; both sides bring their own blob store.
"""

from __future__ import annotations

import copy
import hashlib
import io
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import soundfile as sf

from bridge.job.generation import Bases, BaseTake, GenerationOutcome, SectionTakes
from bridge.job.material import Material
from bridge.job.request import Request
from conditioning.types import (
    Audio,
    ChordNotes,
    ChordProgression,
    ChordSpan,
    DrumHit,
    DrumPattern,
    Key,
    Melody,
    Note,
)
from models.base import Generation

#: Version of the task/result documents below; a worker refuses another.
WIRE_VERSION = 1
_BLOB_ID = re.compile(r"^[0-9a-f]{64}$")

#: Stores audio and returns its blob id / loads a blob id's audio.
AudioSaver = Callable[[Audio], str]
AudioLoader = Callable[[str], Audio]


class WireError(ValueError):
    """A wire document is malformed; ``code`` is the bridge's error code ("schema" or "path")."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def blob_id(data: bytes) -> str:
    """The content address of ``data``: its SHA-256 as 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def is_blob_id(text: object) -> bool:
    """True for 64 lowercase hex digits (a well-formed blob id)."""
    return isinstance(text, str) and _BLOB_ID.match(text) is not None


_WAVE_FORMAT_IEEE_FLOAT = 3
_RIFF_LIMIT = 2**32 - 1


def audio_to_wav(audio: Audio) -> bytes:
    """``audio`` as a 32-bit float WAV file's bytes (sample-exact round trip).

    The bytes depend on the samples and the rate only, so the same audio always has the same
    blob id: the file is written here (``fmt``, ``fact`` and ``data`` chunks) instead of by
    libsndfile, whose float WAV files carry a ``PEAK`` chunk with the time they were written.

    Raises:
        WireError: code "input" for audio too long for a WAV file (over 4 GiB).
    """
    samples = np.ascontiguousarray(audio.samples.T, dtype="<f4")  # frames x channels, interleaved
    frames, channels = samples.shape
    data = samples.tobytes()
    if 4 + 26 + 12 + 8 + len(data) > _RIFF_LIMIT:
        raise WireError("input", f"{frames / audio.sample_rate:.0f} s of {channels}-channel audio is over "
                                 "a WAV file's 4 GiB; send a shorter range")
    block = 4 * channels
    fmt = struct.pack("<HHIIHHH", _WAVE_FORMAT_IEEE_FLOAT, channels, audio.sample_rate,
                      audio.sample_rate * block, block, 32, 0)  # 18 bytes: cbSize 0 for a non-PCM format
    chunks = b"".join([
        b"fmt ", struct.pack("<I", len(fmt)), fmt,
        b"fact", struct.pack("<II", 4, frames),
        b"data", struct.pack("<I", len(data)), data,
    ])
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def audio_from_wav(data: bytes) -> Audio:
    """Decode WAV bytes into :class:`Audio` (float32, channels first).

    Raises:
        WireError: the bytes are not a readable WAV file.
    """
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise WireError("schema", f"an audio blob is not a readable WAV file ({exc})") from None
    return Audio(np.ascontiguousarray(samples.T), int(rate))


# -- notes and material ---------------------------------------------------------------------------

def _notes_to_json(notes: tuple[Note, ...]) -> list[list[float]]:
    return [[n.pitch, n.start_beat, n.end_beat, n.velocity] for n in notes]


def _notes_from_json(rows: Any, where: str) -> tuple[Note, ...]:
    try:
        return tuple(Note(int(p), float(a), float(b), int(v)) for p, a, b, v in rows)
    except (TypeError, ValueError) as exc:
        raise WireError("schema", f"{where}: notes must be [pitch, start_beat, end_beat, velocity] rows ({exc})") from None


def material_to_json(material: Material) -> dict[str, Any]:
    """The song's material as JSON (positions in beats, exactly as floats)."""
    out: dict[str, Any] = {"chords": None, "drums": None, "melody": None}
    chords = material.chords
    if chords is not None:
        notes = chords.notes
        out["chords"] = {
            "spans": [[s.label, s.start_beat, s.end_beat] for s in chords.spans],
            "key": [chords.key.tonic, chords.key.mode] if chords.key else None,
            "notes": None if notes is None else {
                "notes": _notes_to_json(notes.notes),
                "pedal_spans": [list(p) for p in notes.pedal_spans],
                "start_beat": notes.start_beat,
                "end_beat": notes.end_beat,
            },
        }
    if material.drums is not None:
        out["drums"] = {
            "hits": [[h.pitch, h.role, h.beat, h.velocity] for h in material.drums.hits],
            "notes": _notes_to_json(material.drums.notes),
        }
    if material.melody is not None:
        out["melody"] = {"notes": _notes_to_json(material.melody.notes), "source": material.melody.source}
    return out


def material_from_json(data: Any) -> Material:
    """Inverse of :func:`material_to_json`.

    Raises:
        WireError: the document is malformed.
    """
    if not isinstance(data, Mapping):
        raise WireError("schema", "material must be a JSON object")
    try:
        chords = None
        if data.get("chords") is not None:
            c = data["chords"]
            key = Key(int(c["key"][0]), str(c["key"][1])) if c.get("key") else None
            notes = None
            if c.get("notes") is not None:
                n = c["notes"]
                notes = ChordNotes(
                    _notes_from_json(n["notes"], "material.chords.notes"),
                    tuple((float(a), float(b)) for a, b in n["pedal_spans"]),
                    float(n["start_beat"]),
                    float(n["end_beat"]),
                )
            spans = tuple(ChordSpan(str(label), float(a), float(b)) for label, a, b in c["spans"])
            chords = ChordProgression(spans, key, notes)
        drums = None
        if data.get("drums") is not None:
            d = data["drums"]
            hits = tuple(DrumHit(int(p), str(r), float(b), int(v)) for p, r, b, v in d["hits"])
            drums = DrumPattern(hits, _notes_from_json(d["notes"], "material.drums.notes"))
        melody = None
        if data.get("melody") is not None:
            m = data["melody"]
            melody = Melody(_notes_from_json(m["notes"], "material.melody.notes"), str(m.get("source", "midi")))
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError("schema", f"material is malformed ({type(exc).__name__}: {exc})") from None
    return Material(chords=chords, drums=drums, melody=melody)


# -- takes ------------------------------------------------------------------------------------------

def generation_to_json(gen: Generation, save_audio: AudioSaver) -> dict[str, Any]:
    """One take as JSON; each stem's audio goes through ``save_audio`` and is named by its blob id."""
    return {
        "stems": {name: save_audio(audio) for name, audio in gen.stems.items()},
        "parts": {name: _notes_to_json(notes) for name, notes in gen.parts.items()},
        "programs": {name: int(p) for name, p in gen.programs.items()},
        "info": dict(gen.info),
    }


def generation_from_json(data: Any, load_audio: AudioLoader) -> Generation:
    """Inverse of :func:`generation_to_json`; ``load_audio`` fetches each stem's blob.

    Raises:
        WireError: the document is malformed or names a malformed blob id.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("stems"), Mapping):
        raise WireError("schema", "a take must be a JSON object with a 'stems' object")
    stems = {}
    for name, ref in data["stems"].items():
        if not is_blob_id(ref):
            raise WireError("schema", f"stem {name!r} names {ref!r}, which is not a blob id")
        stems[str(name)] = load_audio(ref)
    parts = {str(k): _notes_from_json(v, f"parts.{k}") for k, v in dict(data.get("parts") or {}).items()}
    try:
        programs = {str(k): int(v) for k, v in dict(data.get("programs") or {}).items()}
    except (TypeError, ValueError):
        raise WireError("schema", "programs must map stem names to integers") from None
    info = data.get("info") or {}
    if not isinstance(info, Mapping):
        raise WireError("schema", "info must be a JSON object")
    return Generation(stems=stems, parts=parts, programs=programs, info=dict(info))


def outcome_to_json(outcome: GenerationOutcome, save_audio: AudioSaver) -> dict[str, Any]:
    """The generation stage's result as the worker returns it."""
    return {
        "version": WIRE_VERSION,
        "generator": outcome.generator,
        "material": material_to_json(outcome.material),
        "sections": [
            {"name": s.name, "takes": [generation_to_json(g, save_audio) for g in s.generations]}
            for s in outcome.sections
        ],
    }


def outcome_from_json(data: Any, load_audio: AudioLoader) -> GenerationOutcome:
    """Inverse of :func:`outcome_to_json`.

    Raises:
        WireError: the document is malformed.
    """
    if not isinstance(data, Mapping) or data.get("version") != WIRE_VERSION:
        raise WireError("schema", f"a generation result must be a version {WIRE_VERSION} JSON object")
    sections = data.get("sections")
    if not isinstance(sections, list):
        raise WireError("schema", "a generation result needs a 'sections' list")
    out = []
    for s in sections:
        if not isinstance(s, Mapping) or not isinstance(s.get("takes"), list):
            raise WireError("schema", "each section of a result needs a 'name' and a 'takes' list")
        out.append(SectionTakes(str(s.get("name")), tuple(generation_from_json(t, load_audio) for t in s["takes"])))
    return GenerationOutcome(
        material=material_from_json(data.get("material")),
        sections=tuple(out),
        generator=str(data.get("generator", "")),
    )


# -- the task: request + files + bases -----------------------------------------------------------

@dataclass(frozen=True)
class PortableRequest:
    """A request v1 that can be run in another folder.

    Attributes:
        raw: the request document with ``project.dir`` = ``"."``, input paths relative to the
            project folder (POSIX form), and no ``token``.
        files: relative path -> the file on this machine, for every input file the request names.
    """

    raw: dict[str, Any]
    files: dict[str, Path]


def portable_request(request: Request) -> PortableRequest:
    """Make ``request`` portable (its input paths were already checked to lie inside the project)."""
    raw = copy.deepcopy(dict(request.raw))
    raw.pop("token", None)
    raw["project"] = {**dict(raw.get("project") or {}), "dir": "."}
    files: dict[str, Path] = {}
    inputs = raw.get("inputs") or {}
    project = request.project_dir.resolve()
    for role in ("chords", "drums", "melody"):
        source = getattr(request, role)
        if source is None or source.path is None:
            continue
        rel = source.path.resolve().relative_to(project).as_posix()
        entry = inputs.get(role)
        for key in ("midi", "audio"):
            if isinstance(entry, dict) and key in entry:
                entry[key] = rel
        files[rel] = source.path
    return PortableRequest(raw=raw, files=files)


def safe_relative_path(text: object) -> PurePosixPath:
    """A relative POSIX path that cannot leave the folder it is joined to.

    Raises:
        WireError: code "path" for an absolute path, a ``..`` part, a backslash or an empty name.
    """
    if not isinstance(text, str) or not text or len(text) > 1000:
        raise WireError("path", f"file name {text!r} must be a non-empty relative path")
    path = PurePosixPath(text)
    if path.is_absolute() or "\\" in text or any(part in ("..", "") for part in text.split("/")) or "\0" in text:
        raise WireError("path", f"file name {text!r} must stay inside the job folder (no '..', no absolute path)")
    return path


def bases_to_json(bases: Bases, save_audio: AudioSaver) -> dict[str, Any]:
    """What a regeneration starts from, as JSON (audio through ``save_audio``)."""
    return {
        "takes": {
            name: {"job_id": t.job_id, "take": generation_to_json(t.generation, save_audio)}
            for name, t in bases.takes.items()
        },
        "previous_mix": None if bases.previous_mix is None else save_audio(bases.previous_mix),
    }


def bases_from_json(data: Any, load_audio: AudioLoader) -> Bases:
    """Inverse of :func:`bases_to_json`.

    Raises:
        WireError: the document is malformed.
    """
    if data is None:
        return Bases()
    if not isinstance(data, Mapping) or not isinstance(data.get("takes", {}), Mapping):
        raise WireError("schema", "bases must be a JSON object with a 'takes' object")
    takes = {}
    for name, t in dict(data.get("takes") or {}).items():
        if not isinstance(t, Mapping):
            raise WireError("schema", f"base take of {name!r} must be a JSON object")
        takes[str(name)] = BaseTake(str(t.get("job_id", "")), generation_from_json(t.get("take"), load_audio))
    prev = data.get("previous_mix")
    if prev is not None and not is_blob_id(prev):
        raise WireError("schema", "bases.previous_mix must be a blob id or null")
    return Bases(takes=takes, previous_mix=None if prev is None else load_audio(prev))


@dataclass(frozen=True)
class TaskUpload:
    """What a bridge sends for one job: the ``POST /v1/jobs`` body and the blobs it names.

    Attributes:
        document: the task without its ``job_id`` (the sender adds one per attempt).
        blobs: blob id -> bytes of every input file and base-take audio the task names.
    """

    document: dict[str, Any]
    blobs: dict[str, bytes]


def task_upload(request: Request, *, seed: int, bases: Bases | None = None) -> TaskUpload:
    """The task of ``request`` (made portable) with its input files and bases as blobs."""
    portable = portable_request(request)
    blobs: dict[str, bytes] = {}
    files: dict[str, str] = {}
    for rel, path in portable.files.items():
        data = path.read_bytes()
        files[rel] = blob_id(data)
        blobs[files[rel]] = data

    def save_audio(audio: Audio) -> str:
        data = audio_to_wav(audio)
        ref = blob_id(data)
        blobs[ref] = data
        return ref

    bases_doc = None
    if bases is not None and (bases.takes or bases.previous_mix is not None):
        bases_doc = bases_to_json(bases, save_audio)
    document = {"version": WIRE_VERSION, "request": portable.raw, "files": files, "seed": seed, "bases": bases_doc}
    return TaskUpload(document=document, blobs=blobs)
