"""Request v1: parse and validate the JSON a DAW script, controller or the CLI sends.

Parsing is strict: unknown keys are errors, every path is resolved (symlinks too) and must stay
inside the project folder, and sizes are bounded. Errors are :class:`RequestError` with a stable
``code`` (sent in ``/stembridge/error``) and a message that says what is wrong and how to fix it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.job.layout import is_job_id
from bridge.job.text import escape_surrogates
from conditioning.prompts import matching_section_prompt, normalise_section_prompts
from conditioning.schema import did_you_mean, unknown_keys_message
from conditioning.score import notes_from_json
from conditioning.timeline import Section, TempoMap, validate_sections
from conditioning.types import ChordSpan, Note
from models.registry import MODELS

REQUEST_VERSION = 1
#: Largest request document accepted, in bytes.
MAX_REQUEST_BYTES = 4 * 1024 * 1024
#: Deepest JSON nesting accepted (a request needs 5 levels; inline symbols are the deepest).
MAX_JSON_DEPTH = 32
#: Most inline notes accepted per input.
MAX_NOTES = 50_000
MAX_SECTIONS = 200
MAX_VARIATIONS = 8
#: Largest seed a request may give (variation ``v`` of a job uses seed + v).
MAX_SEED = 2**31 - 1
#: Longest song accepted, in seconds (also bounds audio inputs).
MAX_SONG_SECONDS = 20 * 60.0
SAMPLE_RATES = (22050, 32000, 44100, 48000, 88200, 96000)
DEFAULT_STEMS = ("drums", "bass", "keys", "lead")
_STEM_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class RequestError(ValueError):
    """A request that cannot be run. ``code`` is stable; the message is for the musician."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class InputSource:
    """Where one kind of material comes from.

    Attributes:
        kind: "midi", "notes", "symbols" or "audio".
        path: resolved file path for "midi"/"audio", inside the project folder.
        notes: inline notes (beats) for "notes".
        symbols: inline chord spans for "symbols".
        track: for "midi", the track whose name contains this (case-insensitive), or None.
        offset_beats: for "midi", project beat at which the file's beat 0 plays.
        offset_s: for "audio", project time in seconds at which the item starts.
        source_offset_s: for "audio", seconds into the file where the item starts.
        length_s: for "audio", seconds of the file to use, or None for all of it.
    """

    kind: str
    path: Path | None = None
    notes: tuple[Note, ...] = ()
    symbols: tuple[ChordSpan, ...] = ()
    track: str | None = None
    offset_beats: float = 0.0
    offset_s: float = 0.0
    source_offset_s: float = 0.0
    length_s: float | None = None


@dataclass(frozen=True)
class Request:
    """A validated request v1 (see DESIGN.md). ``raw`` is the JSON it came from.

    ``seed`` is None when the request gives none (or ``null``): every run then draws a new
    seed (see :func:`bridge.job.pipeline.run_request`), so running it again makes a new take.
    """

    project_dir: Path
    sample_rate: int
    tempo_map: TempoMap
    sections: tuple[Section, ...]
    range_bars: tuple[float, float] | None
    chords: InputSource | None
    drums: InputSource | None
    melody: InputSource | None
    prompt: str
    section_prompts: Mapping[str, str]
    stems: tuple[str, ...]
    model: str
    seed: int | None
    variations: int
    base_job: str | None
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def range_beats(self) -> tuple[float, float] | None:
        """The regenerated range in beats, or None for a full generation."""
        if self.range_bars is None:
            return None
        return (self.tempo_map.bar_to_beat(self.range_bars[0]), self.tempo_map.bar_to_beat(self.range_bars[1]))

    def sections_to_generate(self) -> tuple[Section, ...]:
        """Every section, or only those the regeneration range touches."""
        rb = self.range_beats
        if rb is None:
            return self.sections
        return tuple(s for s in self.sections if s.start_beat < rb[1] and rb[0] < s.end_beat)


_TOP_KEYS = {
    "version", "project", "sections", "range", "inputs", "prompt", "section_prompts",
    "stems", "model", "seed", "variations", "base_job", "token",
}
_PROJECT_KEYS = {"dir", "sample_rate", "tempo_map"}
_SECTION_KEYS = {"name", "start_bar", "end_bar", "start_beat", "end_beat"}
#: The keys of ``inputs.<role>`` for each kind of source.
_SOURCE_KEYS: dict[str, set[str]] = {
    "midi": {"midi", "track", "offset_beats"},
    "notes": {"notes"},
    "symbols": {"symbols"},
    "audio": {"audio", "offset_s", "source_offset_s", "length_s"},
}


def _check_keys(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    """Refuse keys outside ``allowed``, naming the closest allowed key for each ("did you mean")."""
    message = unknown_keys_message(obj, allowed, where)
    if message is not None:
        raise RequestError("schema", message)


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RequestError("schema", f"{where} must be a JSON object")
    return value


def _number(value: Any, where: str, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestError("schema", f"{where} must be a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise RequestError("schema", f"{where} must be at least {minimum:g}, got {value!r}")
    return float(value)


def _int(value: Any, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise RequestError("schema", f"{where} must be a whole number from {lo} to {hi}, got {value!r}")
    return value


def _text(value: Any, where: str, max_len: int = 2000) -> str:
    if not isinstance(value, str):
        raise RequestError("schema", f"{where} must be text, got {type(value).__name__}")
    if len(value) > max_len:
        raise RequestError("schema", f"{where} is longer than {max_len} characters; shorten it")
    return value.strip()


def resolve_inside(project_dir: Path, path_text: Any, where: str) -> Path:
    """Resolve ``path_text`` against the project folder, refusing anything outside it.

    Symlinks are resolved before the check, so a link pointing out of the project is refused.

    Raises:
        RequestError: code "path" when the path escapes the project or does not exist.
    """
    if not isinstance(path_text, str) or not path_text.strip():
        raise RequestError("schema", f"{where} must be a file path (relative to the project folder)")
    if "\x00" in path_text:
        raise RequestError("path", f"{where} contains a NUL character; send a plain file path")
    candidate = Path(path_text)
    if not candidate.is_absolute():
        candidate = project_dir / candidate
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError) as exc:  # symlink loops, unreadable folders
        raise RequestError("path", f"{where} {path_text!r} cannot be resolved ({exc})") from None
    if not resolved.is_relative_to(project_dir):
        raise RequestError(
            "path",
            f"{where} {path_text!r} is outside the project folder {str(project_dir)!r}; "
            "copy the file into the project folder and use a path inside it",
        )
    try:
        is_file = resolved.is_file()
    except OSError as exc:  # a name too long for the file system, a folder that cannot be read
        raise RequestError("path", f"{where} {path_text[:200]!r} cannot be read ({exc.strerror})") from None
    if not is_file:
        raise RequestError("path", f"{where} {path_text!r} does not exist in the project folder")
    return resolved


def _parse_source(raw: Any, role: str, project_dir: Path, allowed_kinds: tuple[str, ...]) -> InputSource:
    where = f"inputs.{role}"
    obj = _obj(raw, where)
    kinds = [k for k in ("midi", "notes", "symbols", "audio") if k in obj]
    if not kinds:  # a typo of the kind ('midl') gets a "did you mean"
        _check_keys(obj, {key for kind in allowed_kinds for key in _SOURCE_KEYS[kind]}, where)
    if len(kinds) != 1 or kinds[0] not in allowed_kinds:
        raise RequestError(
            "schema",
            f"{where} must have exactly one of {', '.join(repr(k) for k in allowed_kinds)}",
        )
    kind = kinds[0]
    if kind == "midi":
        _check_keys(obj, _SOURCE_KEYS["midi"], where)
        track = obj.get("track")
        return InputSource(
            kind="midi",
            path=resolve_inside(project_dir, obj["midi"], f"{where}.midi"),
            track=_text(track, f"{where}.track", 200) if track is not None else None,
            offset_beats=_number(obj.get("offset_beats", 0.0), f"{where}.offset_beats"),
        )
    if kind == "notes":
        _check_keys(obj, _SOURCE_KEYS["notes"], where)
        if isinstance(obj["notes"], list) and len(obj["notes"]) > MAX_NOTES:
            raise RequestError("limit", f"{where}.notes has more than {MAX_NOTES} notes; select less")
        try:
            notes = notes_from_json(obj["notes"], f"{where}.notes")
        except ValueError as exc:
            raise RequestError("input", str(exc)) from None
        return InputSource(kind="notes", notes=notes)
    if kind == "symbols":
        _check_keys(obj, _SOURCE_KEYS["symbols"], where)
        return InputSource(kind="symbols", symbols=_parse_symbols(obj["symbols"], f"{where}.symbols"))
    _check_keys(obj, _SOURCE_KEYS["audio"], where)
    length = obj.get("length_s")
    return InputSource(
        kind="audio",
        path=resolve_inside(project_dir, obj["audio"], f"{where}.audio"),
        offset_s=_number(obj.get("offset_s", 0.0), f"{where}.offset_s", minimum=0.0),
        source_offset_s=_number(obj.get("source_offset_s", 0.0), f"{where}.source_offset_s", minimum=0.0),
        length_s=None if length is None else _number(length, f"{where}.length_s", minimum=0.01),
    )


def _parse_symbols(raw: Any, where: str) -> tuple[ChordSpan, ...]:
    if not isinstance(raw, list) or not raw:
        raise RequestError("input", f'{where} must be a non-empty list like [["A:min", 0, 4], ["F:maj", 4, 8]]')
    if len(raw) > MAX_NOTES:
        raise RequestError("limit", f"{where} has more than {MAX_NOTES} chords")
    spans = []
    for i, item in enumerate(raw):
        if not isinstance(item, list) or len(item) != 3 or not isinstance(item[0], str):
            raise RequestError("input", f'{where}[{i}] must be [label, start_beat, end_beat], e.g. ["A:min", 0, 4]')
        start = _number(item[1], f"{where}[{i}] start beat", minimum=0.0)
        end = _number(item[2], f"{where}[{i}] end beat")
        if end <= start:
            raise RequestError("input", f"{where}[{i}] ({item[0]}) ends at beat {end:g}, before it starts at {start:g}")
        spans.append(ChordSpan(item[0].strip(), start, end))
    return tuple(sorted(spans, key=lambda s: s.start_beat))


def _parse_sections(raw: Any, tempo_map: TempoMap) -> tuple[Section, ...]:
    if not isinstance(raw, list) or not raw:
        raise RequestError(
            "schema",
            'sections must be a non-empty list like [{"name": "Verse 1", "start_bar": 1, "end_bar": 9}]; '
            "mark regions (REAPER) or locators (Live) for your song sections",
        )
    if len(raw) > MAX_SECTIONS:
        raise RequestError("limit", f"more than {MAX_SECTIONS} sections; merge some")
    sections = []
    for i, item in enumerate(raw):
        where = f"sections[{i}]"
        obj = _obj(item, where)
        _check_keys(obj, _SECTION_KEYS, where)
        name = _text(obj.get("name", f"Section {i + 1}"), f"{where}.name", 200) or f"Section {i + 1}"
        try:
            if "start_bar" in obj or "end_bar" in obj:
                sections.append(
                    Section.from_bars(
                        name,
                        _number(obj.get("start_bar"), f"{where}.start_bar"),
                        _number(obj.get("end_bar"), f"{where}.end_bar"),
                        tempo_map,
                    )
                )
            else:
                sections.append(
                    Section.from_beats(
                        name,
                        _number(obj.get("start_beat"), f"{where}.start_beat"),
                        _number(obj.get("end_beat"), f"{where}.end_beat"),
                        tempo_map,
                    )
                )
        except ValueError as exc:
            if isinstance(exc, RequestError):
                raise
            raise RequestError("sections", str(exc)) from None
    try:
        ordered = validate_sections(sections)
    except ValueError as exc:
        raise RequestError("sections", str(exc)) from None
    _check_unique_names(ordered)
    end_s = tempo_map.beat_to_seconds(ordered[-1].end_beat)
    if end_s > MAX_SONG_SECONDS:
        raise RequestError("limit", f"the song runs {end_s / 60:.1f} minutes; the limit is {MAX_SONG_SECONDS / 60:.0f}")
    return tuple(ordered)


def _check_unique_names(sections: list[Section]) -> None:
    """Refuse two sections whose takes would share file names (the same name, or the same slug).

    Raises:
        RequestError: code "sections", naming both sections and their bars.
    """
    seen: dict[str, Section] = {}
    for sec in sections:
        other = seen.setdefault(sec.slug, sec)
        if other is sec:
            continue
        bars = f"(bars {other.start_bar:g}-{other.end_bar:g} and {sec.start_bar:g}-{sec.end_bar:g})"
        if other.name == sec.name:
            raise RequestError(
                "sections",
                f"two sections are named {sec.name!r} {bars}; give every section its own name, e.g. "
                f"{sec.name + ' 1'!r} and {sec.name + ' 2'!r} (rename the regions or locators in the DAW)",
            )
        raise RequestError(
            "sections",
            f"sections {other.name!r} and {sec.name!r} {bars} would share the take files {sec.slug}_*.wav; "
            "rename one of them (names are compared without case and punctuation)",
        )


def _check_section_prompts(section_prompts: Mapping[str, str], sections: tuple[Section, ...]) -> None:
    """Refuse a ``section_prompts`` key that no section would use.

    A key is used when it names a section, a section without its number ("Chorus" for
    "Chorus 2") or a section's role (see :func:`conditioning.prompts.matching_section_prompt`).

    Raises:
        RequestError: code "schema", naming the key, the closest section name and every section.
    """
    for key in section_prompts:
        if any(matching_section_prompt(sec, {key: "used"}) for sec in sections):
            continue
        names = [sec.name for sec in sections]
        bases = {sec.name.rstrip("0123456789 ").strip() for sec in sections}
        roles = {sec.role for sec in sections}
        raise RequestError(
            "schema",
            f"section_prompts key {key!r} matches no section{did_you_mean(key, [*names, *bases, *roles])}; "
            f"the sections are {', '.join(map(repr, names))} (a key is a section's name, its name without "
            "the number, or its kind such as 'chorus')",
        )


def _parse_range(raw: Any, sections: tuple[Section, ...], tempo_map: TempoMap) -> tuple[float, float]:
    obj = _obj(raw, "range")
    _check_keys(obj, {"start_bar", "end_bar"}, "range")
    start = _number(obj.get("start_bar"), "range.start_bar", minimum=1)
    end = _number(obj.get("end_bar"), "range.end_bar")
    if end <= start:
        raise RequestError("range", f"range bars {start:g}-{end:g} run backwards; the end bar (exclusive) must be after the start bar")
    first, last = sections[0], sections[-1]
    a, b = tempo_map.bar_to_beat(start), tempo_map.bar_to_beat(end)
    touched = [s for s in sections if s.start_beat < b and a < s.end_beat]
    if a < first.start_beat - 1e-6 or b > last.end_beat + 1e-6 or not touched:
        raise RequestError(
            "range",
            f"range bars {start:g}-{end:g} is outside the song's sections (bars {first.start_bar:g}-"
            f"{last.end_bar:g}); select bars inside a section",
        )
    return (start, end)


def _check_stems(stems: list[str], model: str) -> None:
    """Refuse stems the model does not make (its registry spec declares them).

    Raises:
        RequestError: code "schema", naming the stem, the closest one the model makes and all of them.
    """
    makes = MODELS[model].stems
    if makes is None:
        return
    for stem in stems:
        if stem not in makes:
            others = sorted(n for n, spec in MODELS.items() if spec.stems is None and not n.endswith("-debug"))
            elsewhere = f"; for other stems choose a model that splits a mix into any stems ({', '.join(others)})" if others else ""
            raise RequestError(
                "schema",
                f"model {model!r} cannot make stem {stem!r}{did_you_mean(stem, makes)}; it makes "
                f"{', '.join(makes)}{elsewhere}",
            )


def _too_large(what: str) -> RequestError:
    return RequestError("limit", f"{what} is larger than {MAX_REQUEST_BYTES // 1024 // 1024} MB")


def _check_structure(value: Any, what: str) -> None:
    """Refuse JSON nested deeper than :data:`MAX_JSON_DEPTH`, and text that is not Unicode
    (walked without recursion).

    JSON's ``\\ud800``-style escapes can spell half of a UTF-16 pair on its own, which no file
    name, label or prompt can hold; such text could be neither stored nor sent back over OSC.
    """
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        item, depth, where = stack.pop()
        if isinstance(item, str):
            _check_text(item, where, what)
        elif isinstance(item, Mapping | list):
            if depth > MAX_JSON_DEPTH:
                raise RequestError("invalid_json", f"{what}'s JSON is nested too deeply to be a request")
            if isinstance(item, Mapping):
                for key, child in item.items():
                    name = f"{where}.{key}" if where else str(key)
                    _check_text(str(key), name, what)
                    stack.append((child, depth + 1, name))
            else:
                stack.extend((child, depth + 1, f"{where}[{i}]") for i, child in enumerate(item))


def _check_text(text: str, where: str, what: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end].encode("unicode_escape").decode("ascii")
        shown = escape_surrogates(where)  # a key may hold it too
        raise RequestError(
            "invalid_json",
            f"{f'in {what}, {shown}' if shown else what} holds {bad}, half of a UTF-16 surrogate pair, which is not a character; "
            "write the text as UTF-8 (or escape both halves of the pair)",
        ) from None


def _read_file(path: Path, shown: str) -> bytes:
    try:
        if path.stat().st_size > MAX_REQUEST_BYTES:
            raise _too_large(shown)
        return path.read_bytes()
    except OSError as exc:
        raise RequestError("path", f"cannot read {shown} ({exc.strerror}); check the path") from None


def decode_request(
    payload: Mapping[str, Any] | str | bytes | Path,
    *,
    project_dir: Path | None = None,
    what: str = "the request",
) -> dict[str, Any]:
    """Turn what a transport received into a JSON object: the one decoder OSC, mailbox and CLI use.

    Checks, in order: the size bound (:data:`MAX_REQUEST_BYTES`), UTF-8 and JSON syntax, the
    nesting depth (:data:`MAX_JSON_DEPTH`; Python's own recursion limit never shows) and that the
    document is an object. Which keys a request may have is :func:`parse_request`'s check (a
    mailbox control file is decoded here too).

    Args:
        payload: a decoded object; a :class:`~pathlib.Path` of a JSON file (the CLI); JSON text
            or bytes; or, when ``project_dir`` is given, text not starting with ``{`` is the path
            of a JSON file inside that project (OSC may send a path instead of the JSON).
        project_dir: the project folder that request paths must stay inside, or None when
            text is always JSON.
        what: how messages name the document ("the request", "the file", "request <path>").

    Raises:
        RequestError: codes "limit", "path", "invalid_json" or "schema".
    """
    if isinstance(payload, Mapping):
        obj: Any = dict(payload)
    else:
        if isinstance(payload, Path):
            payload = _read_file(payload, what)
        elif len(payload) > MAX_REQUEST_BYTES:
            raise _too_large(what)
        if project_dir is not None:
            head = payload.lstrip()[:1]
            if head not in ("{", b"{"):
                text = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else payload
                if "\0" in text:
                    raise RequestError("path", f"{what} path contains a NUL character; send a file path or JSON")
                path = resolve_inside(project_dir, text.strip(), f"{what} path")
                payload = _read_file(path, f"{what} file {text!r}")
        try:
            obj = json.loads(payload.decode("utf-8") if isinstance(payload, bytes) else payload)
        except UnicodeDecodeError as exc:
            raise RequestError("invalid_json", f"{what} is not UTF-8 text ({exc}); write UTF-8 JSON") from None
        except json.JSONDecodeError as exc:
            raise RequestError("invalid_json", f"{what} is not valid JSON ({exc}); write UTF-8 JSON") from None
        except ValueError:  # Python refuses integers of over 4300 digits
            raise RequestError(
                "invalid_json", f"{what} holds a number with thousands of digits; seeds, bars and tempos are short numbers"
            ) from None
        except RecursionError:
            raise RequestError("invalid_json", f"{what}'s JSON is nested too deeply to be a request") from None
    if not isinstance(obj, dict):
        raise RequestError("schema", f"{what} must be a JSON object")
    _check_structure(obj, what)
    return obj


def parse_request(data: Mapping[str, Any] | str | bytes, *, base_dir: Path | None = None) -> Request:
    """Validate request v1 and resolve its paths.

    Args:
        data: the decoded JSON object, or the JSON text (decoded by :func:`decode_request`).
        base_dir: folder that a relative ``project.dir`` is resolved against (the folder of the
            request file for the CLI); absolute ``project.dir`` is the norm.

    Raises:
        RequestError: the request is malformed; ``code`` says which kind of problem.
    """
    if isinstance(data, str | bytes):
        data = decode_request(data)
    obj = _obj(data, "the request")
    _check_keys(obj, _TOP_KEYS, "the request")
    version = obj.get("version")
    if "version" not in obj:
        raise RequestError("version", f'the request has no "version"; send "version": {REQUEST_VERSION}')
    if isinstance(version, bool) or version != REQUEST_VERSION:
        raise RequestError(
            "version",
            f"request version {json.dumps(version, default=str)[:40]} is not supported; "
            f'send "version": {REQUEST_VERSION} (the only version this bridge reads)',
        )
    project = _obj(obj.get("project"), "project")
    _check_keys(project, _PROJECT_KEYS, "project")
    dir_text = project.get("dir")
    if not isinstance(dir_text, str) or not dir_text:
        raise RequestError("schema", "project.dir must be the project folder's path")
    project_dir = Path(dir_text)
    if not project_dir.is_absolute():
        project_dir = (base_dir or Path.cwd()) / project_dir  # CLI convenience; DAWs send absolute paths
    project_dir = project_dir.resolve()
    if not project_dir.is_dir():
        raise RequestError("path", f"project.dir {dir_text!r} is not a folder; save the project first")
    sample_rate = project.get("sample_rate", 48000)
    if sample_rate not in SAMPLE_RATES or isinstance(sample_rate, bool):
        raise RequestError("schema", f"project.sample_rate {sample_rate!r} is not supported; use one of {SAMPLE_RATES}")
    try:
        tempo_map = TempoMap.from_json(project.get("tempo_map", [{"beat": 0, "bpm": 120}]))
    except ValueError as exc:
        raise RequestError("tempo", str(exc)) from None
    sections = _parse_sections(obj.get("sections"), tempo_map)
    range_bars = _parse_range(obj["range"], sections, tempo_map) if obj.get("range") is not None else None
    inputs = _obj(obj.get("inputs", {}), "inputs")
    _check_keys(inputs, {"chords", "drums", "melody"}, "inputs")
    chords = _parse_source(inputs["chords"], "chords", project_dir, ("midi", "notes", "symbols")) if "chords" in inputs else None
    drums = _parse_source(inputs["drums"], "drums", project_dir, ("midi", "notes")) if "drums" in inputs else None
    melody = _parse_source(inputs["melody"], "melody", project_dir, ("audio", "midi", "notes")) if "melody" in inputs else None
    section_prompts_raw = _obj(obj.get("section_prompts", {}), "section_prompts")
    section_prompts = {
        _text(k, "section_prompts key", 200): _text(v, f"section_prompts[{k!r}]") for k, v in section_prompts_raw.items()
    }
    try:
        normalise_section_prompts(section_prompts)
    except ValueError as exc:
        raise RequestError("schema", str(exc)) from None
    _check_section_prompts(section_prompts, sections)
    model = _text(obj.get("model", "arranger"), "model", 100)
    if model not in MODELS:
        raise RequestError(
            "unknown_model",
            f"unknown model {model!r}{did_you_mean(model, MODELS)}; choose one of: {', '.join(sorted(MODELS))} "
            "(see `stembridge models`)",
        )
    stems_raw = obj.get("stems", list(DEFAULT_STEMS))
    if not isinstance(stems_raw, list) or not stems_raw:
        raise RequestError("schema", 'stems must be a non-empty list like ["drums", "bass", "keys", "lead"]')
    stems = []
    for s in stems_raw:
        if not isinstance(s, str) or not _STEM_NAME.match(s):
            raise RequestError("schema", f"stem name {s!r} must be lower-case letters/digits, e.g. \"drums\"")
        if s in stems:
            raise RequestError("schema", f"stem {s!r} is listed twice")
        stems.append(s)
    _check_stems(stems, model)
    seed = None if obj.get("seed") is None else _int(obj["seed"], "seed", 0, MAX_SEED)
    variations = _int(obj.get("variations", 1), "variations", 1, MAX_VARIATIONS)
    base_job = obj.get("base_job")
    if base_job is not None and not is_job_id(base_job):
        raise RequestError("schema", "base_job must be a job id like 20261122-101500-ab12cd")
    if base_job is not None and range_bars is None:
        raise RequestError("schema", "base_job is only meaningful with a range to regenerate")
    return Request(
        project_dir=project_dir,
        sample_rate=int(sample_rate),
        tempo_map=tempo_map,
        sections=sections,
        range_bars=range_bars,
        chords=chords,
        drums=drums,
        melody=melody,
        prompt=_text(obj.get("prompt", ""), "prompt"),
        section_prompts=section_prompts,
        stems=tuple(stems),
        model=model,
        seed=seed,
        variations=variations,
        base_job=base_job,
        raw=dict(obj),
    )
