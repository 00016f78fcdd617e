"""Manifest v1: the typed record of one job, written as ``outbox/<job_id>.json``.

The DAW scripts place stems from it, take lookup finds the take a regeneration starts from in
it, and the server writes one for a failed or cancelled job. :meth:`Manifest.to_json` gives the
exact document the DAW scripts read (key order included); :meth:`Manifest.from_json` reads one
back, so ``from_json(doc).to_json() == doc`` for every manifest stembridge writes.

Shape (``status`` "done")::

    {"version": 1, "job_id", "status": "done", "model", "seed", "sample_rate", "tempo_map",
     "key", "sections": [{"name", "role", "start_bar", "end_bar", "start_beat", "end_beat"}],
     "placements": [<Placement>], "exports": {"midi", "rpp", "request"}, "info": {section: {...}},
     "range": {"start_bar", "end_bar"}, "base_job", "base_jobs": {section: job_id}}

``range``/``base_job``/``base_jobs`` only for a regeneration. A failed or cancelled job has
``"version", "job_id", "status", "model", "seed", "sample_rate", "tempo_map", "error":
{"code", "message"}, "placements": []``. Positions are in bars (1-based), beats and seconds;
lengths in seconds and samples at ``sample_rate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conditioning.timeline import Section, TempoMap

MANIFEST_VERSION = 1
#: ``status`` of a manifest.
STATUSES = ("done", "failed", "cancelled")
#: Track name per stem in the DAW ("SB Drums", ...); unknown stems get "SB <Stem>".
TRACK_PREFIX = "SB "
#: What a failed job's manifest says when its request did not name them.
DEFAULT_SAMPLE_RATE = 48000
DEFAULT_TEMPO_MAP: tuple[Mapping[str, Any], ...] = tuple(TempoMap.constant(120.0).to_json())


def track_name(stem: str) -> str:
    """The DAW track a stem goes on: ``"drums"`` -> ``"SB Drums"``."""
    return TRACK_PREFIX + stem.replace("_", " ").replace("-", " ").title()


def _bar_number(bar: float) -> float | int:
    """Whole bars as ints (as people read them), fractional bars as floats."""
    return int(round(bar)) if abs(bar - round(bar)) < 1e-9 else round(bar, 6)


def _field(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"{where}: {key!r} is missing or not a {getattr(kind, '__name__', kind)}")
    return value


_NUMBER = (int, float)


@dataclass(frozen=True)
class Failure:
    """Why a job did not finish: a stable ``code`` and a message for the musician."""

    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        """``{"code", "message"}``, as in manifests, status.json and ``/stembridge/error``."""
        return {"code": self.code, "message": self.message}

    @classmethod
    def from_json(cls, doc: Any) -> Failure:
        """Read ``{"code", "message"}``.

        Raises:
            ValueError: not such an object.
        """
        if not isinstance(doc, Mapping):
            raise ValueError("error must be an object {code, message}")
        return cls(str(_field(doc, "code", str, "error")), str(doc.get("message", "")))


@dataclass(frozen=True)
class SectionRecord:
    """A song section as the manifest lists it (bars 1-based, end exclusive; beats)."""

    name: str
    role: str
    start_bar: float
    end_bar: float
    start_beat: float
    end_beat: float

    @classmethod
    def of(cls, section: Section) -> SectionRecord:
        """The record of a request's section."""
        return cls(section.name, section.role, section.start_bar, section.end_bar, section.start_beat, section.end_beat)

    def to_json(self) -> dict[str, Any]:
        """The manifest's section object."""
        return {"name": self.name, "role": self.role, "start_bar": self.start_bar, "end_bar": self.end_bar,
                "start_beat": self.start_beat, "end_beat": self.end_beat}

    @classmethod
    def from_json(cls, doc: Any) -> SectionRecord:
        """Read a manifest section object.

        Raises:
            ValueError: a field is missing or of the wrong type.
        """
        if not isinstance(doc, Mapping):
            raise ValueError("a section must be an object")
        return cls(
            _field(doc, "name", str, "section"), str(doc.get("role", "")),
            *(_field(doc, k, _NUMBER, "section") for k in ("start_bar", "end_bar", "start_beat", "end_beat")),
        )


@dataclass(frozen=True)
class Placement:
    """One stem file placed at a section's position: the manifest's placement record.

    Attributes:
        stem: stem name ("drums").
        track: the DAW track it goes on ("SB Drums").
        section: the section's name.
        role: the section's role ("chorus").
        file: the WAV's path relative to the project folder (forward slashes).
        start_bar, end_bar: the section's bars (1-based, end exclusive; whole bars as ints).
        start_beat, end_beat: the section's beats.
        start_s: where the file starts on the timeline, seconds.
        length_s: the file's length, seconds.
        length_samples: the file's exact length in samples.
        take: take number (1-based, grows with every generation of the section).
    """

    stem: str
    track: str
    section: str
    role: str
    file: str
    start_bar: float
    end_bar: float
    start_beat: float
    end_beat: float
    start_s: float
    length_s: float
    length_samples: int
    take: int

    @classmethod
    def of(cls, stem: str, section: Section, file: str, take: int, length_samples: int, tempo_map: TempoMap,
           sample_rate: int) -> Placement:
        """The placement of one stem WAV covering ``section``.

        Args:
            stem: stem name.
            section: the section it covers.
            file: the WAV's path relative to the project folder.
            take: take number.
            length_samples: the WAV's length in samples.
            tempo_map: the song's tempo map (for ``start_s``).
            sample_rate: the project's rate, Hz (for ``length_s``).
        """
        return cls(
            stem=stem, track=track_name(stem), section=section.name, role=section.role, file=file,
            start_bar=_bar_number(section.start_bar), end_bar=_bar_number(section.end_bar),
            start_beat=round(section.start_beat, 9), end_beat=round(section.end_beat, 9),
            start_s=round(tempo_map.beat_to_seconds(section.start_beat), 6),
            length_s=round(length_samples / sample_rate, 6), length_samples=length_samples, take=take,
        )

    def to_json(self) -> dict[str, Any]:
        """The manifest v1 placement object."""
        return {
            "stem": self.stem, "track": self.track, "section": self.section, "role": self.role, "file": self.file,
            "start_bar": self.start_bar, "end_bar": self.end_bar, "start_beat": self.start_beat,
            "end_beat": self.end_beat, "start_s": self.start_s, "length_s": self.length_s,
            "length_samples": self.length_samples, "take": self.take,
        }

    @classmethod
    def from_json(cls, doc: Any) -> Placement:
        """Read a manifest placement object.

        Raises:
            ValueError: a field is missing or of the wrong type.
        """
        if not isinstance(doc, Mapping):
            raise ValueError("a placement must be an object")
        w = "placement"
        stem = _field(doc, "stem", str, w)
        return cls(
            stem=stem, track=str(doc.get("track", track_name(stem))), section=_field(doc, "section", str, w),
            role=str(doc.get("role", "")), file=_field(doc, "file", str, w),
            start_bar=_field(doc, "start_bar", _NUMBER, w), end_bar=_field(doc, "end_bar", _NUMBER, w),
            start_beat=_field(doc, "start_beat", _NUMBER, w), end_beat=_field(doc, "end_beat", _NUMBER, w),
            start_s=_field(doc, "start_s", _NUMBER, w), length_s=_field(doc, "length_s", _NUMBER, w),
            length_samples=_field(doc, "length_samples", int, w), take=_field(doc, "take", int, w),
        )


@dataclass(frozen=True)
class Manifest:
    """Manifest v1 of one job (see the module docstring for the JSON).

    Attributes:
        job_id: the job's id.
        status: "done", "failed" or "cancelled".
        model: the generator's name.
        seed: the request's seed.
        sample_rate: the project's sample rate, Hz.
        tempo_map: the song's tempo map in its JSON form (``TempoMap.to_json``).
        key: the estimated key ("A minor"), or None (done jobs only).
        sections: every section of the song (done jobs only).
        placements: the stems placed (empty unless done).
        exports: paths of arrangement.mid/.rpp and request.json, by kind (done jobs only).
        info: generator notes per section name (done jobs only).
        range_bars: the regenerated bars (start, end exclusive), or None for a full generation.
        base_jobs: for a regeneration, the job each section's base take came from.
        error: why the job did not finish (failed/cancelled only).
        warnings: what went wrong without failing the job, e.g. a session report that could not
            be drawn (done jobs only; the key is left out when there are none).
    """

    job_id: str
    status: str
    model: str
    seed: int
    sample_rate: int
    tempo_map: tuple[Mapping[str, Any], ...]
    key: str | None = None
    sections: tuple[SectionRecord, ...] = ()
    placements: tuple[Placement, ...] = ()
    exports: Mapping[str, str] = field(default_factory=dict)
    info: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    range_bars: tuple[float, float] | None = None
    base_jobs: Mapping[str, str] = field(default_factory=dict)
    error: Failure | None = None
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"manifest status {self.status!r} is not one of {', '.join(STATUSES)}")

    @property
    def base_job(self) -> str | None:
        """The first section's base job (regenerations), or None."""
        return next(iter(self.base_jobs.values()), None)

    def tempo(self) -> TempoMap:
        """The tempo map as a :class:`~conditioning.timeline.TempoMap`."""
        return TempoMap.from_json(list(self.tempo_map))

    @classmethod
    def failed(cls, job_id: str, status: str, request: Mapping[str, Any], error: Failure) -> Manifest:
        """The manifest of a job that failed or was cancelled, from its raw request v1 object.

        ``model``, ``seed``, ``sample_rate`` and ``tempo_map`` come from the request (the
        defaults request v1 gives them when it leaves them out), so the DAW script can still
        tell what the job was for.
        """
        project = request.get("project")
        project = project if isinstance(project, Mapping) else {}
        rate = project.get("sample_rate", DEFAULT_SAMPLE_RATE)
        tempo = project.get("tempo_map", list(DEFAULT_TEMPO_MAP))
        tempo_json: tuple[Mapping[str, Any], ...]
        try:
            tempo_json = tuple(TempoMap.from_json(tempo).to_json())
        except (TypeError, ValueError):  # a queued request was validated; this guards old queues
            tempo_json = DEFAULT_TEMPO_MAP
        return cls(
            job_id=job_id, status=status, model=str(request.get("model", "arranger")),
            seed=request.get("seed", 0) if isinstance(request.get("seed", 0), int) else 0,
            sample_rate=rate if isinstance(rate, int) and not isinstance(rate, bool) else DEFAULT_SAMPLE_RATE,
            tempo_map=tempo_json, error=error,
        )

    def to_json(self) -> dict[str, Any]:
        """The manifest document, keys in the order the DAW scripts and earlier manifests use."""
        doc: dict[str, Any] = {
            "version": MANIFEST_VERSION, "job_id": self.job_id, "status": self.status, "model": self.model,
            "seed": self.seed, "sample_rate": self.sample_rate, "tempo_map": [dict(p) for p in self.tempo_map],
        }
        if self.status != "done":
            doc["error"] = (self.error or Failure(self.status, "")).to_json()
            doc["placements"] = [p.to_json() for p in self.placements]
            return doc
        doc["key"] = self.key
        doc["sections"] = [s.to_json() for s in self.sections]
        doc["placements"] = [p.to_json() for p in self.placements]
        doc["exports"] = dict(self.exports)
        doc["info"] = {name: dict(notes) for name, notes in self.info.items()}
        if self.warnings:
            doc["warnings"] = list(self.warnings)
        if self.range_bars is not None:
            doc["range"] = {"start_bar": self.range_bars[0], "end_bar": self.range_bars[1]}
            doc["base_job"] = self.base_job
            doc["base_jobs"] = dict(self.base_jobs)
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> Manifest:
        """Read a manifest v1 document.

        Older failure manifests without ``sample_rate``/``tempo_map`` read with the defaults.

        Raises:
            ValueError: not a v1 manifest, or a field is missing or of the wrong type.
        """
        if not isinstance(doc, Mapping):
            raise ValueError("a manifest must be a JSON object")
        if doc.get("version") != MANIFEST_VERSION:
            raise ValueError(f"manifest version {doc.get('version')!r} is not {MANIFEST_VERSION}")
        w = "manifest"
        status = _field(doc, "status", str, w)
        tempo = doc.get("tempo_map", list(DEFAULT_TEMPO_MAP))
        if not isinstance(tempo, list) or not all(isinstance(p, Mapping) for p in tempo):
            raise ValueError("manifest: 'tempo_map' must be a list of objects")
        placements = doc.get("placements", [])
        sections = doc.get("sections", [])
        if not isinstance(placements, list) or not isinstance(sections, list):
            raise ValueError("manifest: 'placements' and 'sections' must be lists")
        exports, info, base_jobs = doc.get("exports", {}), doc.get("info", {}), doc.get("base_jobs", {})
        if not all(isinstance(x, Mapping) for x in (exports, info, base_jobs)):
            raise ValueError("manifest: 'exports', 'info' and 'base_jobs' must be objects")
        range_doc = doc.get("range")
        range_bars = None
        if range_doc is not None:
            if not isinstance(range_doc, Mapping):
                raise ValueError("manifest: 'range' must be an object")
            range_bars = (_field(range_doc, "start_bar", _NUMBER, "range"), _field(range_doc, "end_bar", _NUMBER, "range"))
        return cls(
            job_id=_field(doc, "job_id", str, w), status=status, model=str(doc.get("model", "")),
            seed=doc.get("seed", 0), sample_rate=doc.get("sample_rate", DEFAULT_SAMPLE_RATE),
            tempo_map=tuple(dict(p) for p in tempo), key=doc.get("key"),
            sections=tuple(SectionRecord.from_json(s) for s in sections),
            placements=tuple(Placement.from_json(p) for p in placements),
            exports={str(k): str(v) for k, v in exports.items()},
            info={str(k): dict(v) if isinstance(v, Mapping) else {} for k, v in info.items()},
            range_bars=range_bars, base_jobs={str(k): str(v) for k, v in base_jobs.items()},
            error=Failure.from_json(doc["error"]) if doc.get("error") is not None else None,
            warnings=tuple(str(x) for x in doc.get("warnings", []) if isinstance(x, str)),
        )
