"""Write the arrangement as a DAWproject file (Bitwig Studio, Studio One, Cubase, ... open it).

A ``.dawproject`` is a ZIP holding ``project.xml`` and ``metadata.xml`` (schemas:
``Project.xsd`` / ``MetaData.xsd`` of github.com/bitwig/dawproject) and, here, the stem WAVs
under ``audio/``. What goes in:

* the tempo map as tempo and time-signature automation of the arrangement (plus the first
  point as the transport's tempo and metre), held until the next point;
* one cue marker per section at its start;
* one audio track per stem with one clip per placement at its section's start; earlier takes
  of a section are there as disabled clips under the newest one, as in REAPER's take lanes;
* the generated MIDI parts as note clips, one per section, on their own tracks.

Units: the arrangement's timeline is in **beats** (quarter notes from the project start). Audio
content is in **seconds**: each audio clip holds a ``Warps`` timeline mapping clip beats to
file seconds at every tempo change inside the section, so the stem stays locked to the bars
even when the tempo changes under it. Note times are beats relative to their clip's start.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from conditioning.io.atomic import atomic_output
from conditioning.timeline import Section, TempoMap
from conditioning.types import Note

FORMAT_VERSION = "1.0"
APPLICATION = "stembridge"
APPLICATION_VERSION = "0.1.0"
AUDIO_FOLDER = "audio"
DRUM_CHANNEL = 9
#: Characters XML 1.0 cannot hold at all (control characters, lone surrogates, U+FFFE/FFFF).
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 rejects replaced by U+FFFD (escaping is ElementTree's)."""
    return _NOT_XML.sub("\ufffd", text)


@dataclass(frozen=True)
class AudioClip:
    """One stem file placed at its section on ``track``.

    Attributes:
        track: the audio track's name (e.g. "SB Drums").
        section: the section the file covers; the clip starts at ``section.start_beat``.
        file: the WAV on disk (embedded in the ZIP under ``audio/<file name>``).
        name: the clip's name shown in the DAW (e.g. "Chorus 1 take 2").
        active: False for an older take kept under the newest one (written as a disabled clip).
    """

    track: str
    section: Section
    file: Path
    name: str
    active: bool = True


class _Ids:
    """Document-unique ``xs:ID`` values: id0, id1, ..."""

    def __init__(self) -> None:
        self._n = 0

    def __call__(self) -> str:
        self._n += 1
        return f"id{self._n - 1}"


def _num(value: float) -> str:
    """A double as XML text, without float noise (beats and seconds to 1e-9)."""
    text = f"{value:.9f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _sub(parent: ET.Element, tag: str, **attrs: str) -> ET.Element:
    return ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()})


def _channel(parent: ET.Element, ids: _Ids, *, audio_channels: int, role: str, destination: str | None) -> str:
    cid = ids()
    attrs = {"audioChannels": str(audio_channels), "role": role, "solo": "false", "id": cid}
    if destination is not None:
        attrs["destination"] = destination
    ch = _sub(parent, "Channel", **attrs)
    _sub(ch, "Mute", value="false", id=ids(), name="Mute")
    _sub(ch, "Pan", max="1.0", min="0.0", unit="normalized", value="0.5", id=ids(), name="Pan")
    _sub(ch, "Volume", max="2.0", min="0.0", unit="linear", value="1.0", id=ids(), name="Volume")
    return cid


def _warp_points(tempo_map: TempoMap, section: Section, length_s: float) -> Iterator[tuple[float, float]]:
    """(clip beat, file second) pairs at the clip start, every tempo change inside, and the end."""
    start_s = tempo_map.beat_to_seconds(section.start_beat)
    yield 0.0, 0.0
    for p in tempo_map.points:
        if section.start_beat < p.beat < section.end_beat:
            yield p.beat - section.start_beat, tempo_map.beat_to_seconds(p.beat) - start_s
    yield section.length_beats, length_s


def _audio_clip(parent: ET.Element, ids: _Ids, clip: AudioClip, tempo_map: TempoMap) -> None:
    info = sf.info(str(clip.file))
    length_s = info.frames / info.samplerate
    sec = clip.section
    el = _sub(
        parent, "Clip", time=_num(sec.start_beat), duration=_num(sec.length_beats), contentTimeUnit="beats",
        playStart="0.0", playStop=_num(sec.length_beats), enable="true" if clip.active else "false", name=clip.name,
    )
    warps = _sub(el, "Warps", contentTimeUnit="seconds", timeUnit="beats", id=ids())
    audio = _sub(
        warps, "Audio", channels=str(info.channels), sampleRate=str(info.samplerate), duration=_num(length_s),
        timeUnit="seconds", id=ids(), name=clip.file.stem,
    )
    _sub(audio, "File", path=f"{AUDIO_FOLDER}/{clip.file.name}")
    for beat, second in _warp_points(tempo_map, sec, length_s):
        _sub(warps, "Warp", time=_num(beat), contentTime=_num(second))


def _note_clip(parent: ET.Element, ids: _Ids, section: Section, notes: Sequence[Note], channel: int) -> None:
    """A note clip covering ``section``; notes are cut at the section's end."""
    el = _sub(parent, "Clip", time=_num(section.start_beat), duration=_num(section.length_beats),
              playStart="0.0", name=section.name)
    lane = _sub(el, "Notes", id=ids())
    for n in notes:
        end = min(n.end_beat, section.end_beat)
        _sub(lane, "Note", time=_num(n.start_beat - section.start_beat), duration=_num(end - n.start_beat),
             channel=str(channel), key=str(n.pitch), vel=_num(n.velocity / 127))


def project_xml(
    tempo_map: TempoMap,
    sections: Sequence[Section],
    clips: Sequence[AudioClip],
    parts: Mapping[str, Sequence[Note]],
) -> ET.Element:
    """The ``<Project>`` element.

    Args:
        tempo_map: becomes the transport's tempo/metre and the tempo/time-signature automation.
        sections: one marker each, at its start beat; note clips are cut along them.
        clips: audio placements; one audio track per distinct ``track``, in first-seen order.
        parts: part name (e.g. "bass") -> notes in absolute beats; one note track each,
            named "<part> (MIDI)"; "drums" plays on MIDI channel 10.
    """
    ids = _Ids()
    root = ET.Element("Project", version=FORMAT_VERSION)
    _sub(root, "Application", name=APPLICATION, version=APPLICATION_VERSION)
    first = tempo_map.points[0]
    bpms = [p.bpm for p in tempo_map.points]
    transport = _sub(root, "Transport")
    tempo_id, ts_id = ids(), ids()
    _sub(transport, "Tempo", max=_num(max(999.0, *bpms)), min=_num(min(20.0, *bpms)), unit="bpm",
         value=_num(first.bpm), id=tempo_id, name="Tempo")
    _sub(transport, "TimeSignature", denominator=str(first.time_signature.denominator),
         numerator=str(first.time_signature.numerator), id=ts_id)

    structure = _sub(root, "Structure")
    track_ids: dict[str, str] = {}
    pending: list[tuple[str, str, int]] = []  # (track id, name, audio channels)
    for clip in clips:
        if clip.track not in track_ids:
            track_ids[clip.track] = ids()
            pending.append((track_ids[clip.track], clip.track, sf.info(str(clip.file)).channels))
    part_ids = {name: ids() for name, notes in parts.items() if notes}
    master_track, master_id = ids(), ids()
    for tid, name, channels in pending:
        track = _sub(structure, "Track", contentType="audio", loaded="true", id=tid, name=name)
        _channel(track, ids, audio_channels=channels, role="regular", destination=master_id)
    for name, tid in part_ids.items():
        track = _sub(structure, "Track", contentType="notes", loaded="true", id=tid, name=f"{name} (MIDI)")
        _channel(track, ids, audio_channels=2, role="regular", destination=master_id)
    master = _sub(structure, "Track", contentType="audio notes", loaded="true", id=master_track, name="Master")
    # the master channel's id is the destination every track above names
    ch = _sub(master, "Channel", audioChannels="2", role="master", solo="false", id=master_id)
    _sub(ch, "Volume", max="2.0", min="0.0", unit="linear", value="1.0", id=ids(), name="Volume")

    arrangement = _sub(root, "Arrangement", id=ids())
    lanes = _sub(arrangement, "Lanes", timeUnit="beats", id=ids())
    for name, tid in track_ids.items():
        track_lane = _sub(lanes, "Lanes", track=tid, id=ids())
        clip_lane = _sub(track_lane, "Clips", id=ids())
        mine = [c for c in clips if c.track == name]
        # older takes first, the active one last: an importer that stacks clips shows it on top
        for clip in sorted(mine, key=lambda c: (c.section.start_beat, c.active)):
            _audio_clip(clip_lane, ids, clip, tempo_map)
    for name, tid in part_ids.items():
        track_lane = _sub(lanes, "Lanes", track=tid, id=ids())
        clip_lane = _sub(track_lane, "Clips", id=ids())
        channel = DRUM_CHANNEL if name == "drums" else 0
        for sec in sections:
            inside = [n for n in parts[name] if sec.contains_beat(n.start_beat)]
            if inside:
                _note_clip(clip_lane, ids, sec, inside, channel)
    if sections:
        markers = _sub(arrangement, "Markers", id=ids())
        for sec in sections:
            _sub(markers, "Marker", time=_num(sec.start_beat), name=sec.name)
    tempo = _sub(arrangement, "TempoAutomation", timeUnit="beats", unit="bpm", id=ids())
    _sub(tempo, "Target", parameter=tempo_id)
    for p in tempo_map.points:
        _sub(tempo, "RealPoint", time=_num(p.beat), value=_num(p.bpm), interpolation="hold")
    metre = _sub(arrangement, "TimeSignatureAutomation", timeUnit="beats", id=ids())
    _sub(metre, "Target", parameter=ts_id)
    last = None
    for p in tempo_map.points:
        if p.time_signature != last:
            _sub(metre, "TimeSignaturePoint", time=_num(p.beat), numerator=str(p.time_signature.numerator),
                 denominator=str(p.time_signature.denominator))
            last = p.time_signature
    return root


def metadata_xml(title: str, comment: str = "") -> ET.Element:
    """The ``<MetaData>`` element (title and a free comment)."""
    root = ET.Element("MetaData")
    ET.SubElement(root, "Title").text = xml_text(title)
    if comment:
        ET.SubElement(root, "Comment").text = xml_text(comment)
    return root


def _xml_bytes(root: ET.Element) -> bytes:
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def write_dawproject(
    path: Path,
    tempo_map: TempoMap,
    sections: Sequence[Section],
    clips: Sequence[AudioClip],
    parts: Mapping[str, Sequence[Note]],
    *,
    title: str,
    comment: str = "",
) -> Path:
    """Write a ``.dawproject`` ZIP with the stems embedded (see :func:`project_xml`).

    The file is written next to ``path`` under a temporary name and renamed when complete.

    Raises:
        FileExistsError: ``path`` exists (results are never overwritten).
        ValueError: two clips name files with the same file name (they would collide in the ZIP).
    """
    if path.exists():
        raise FileExistsError(f"{path} already exists; stembridge never overwrites results")
    names = [c.file.name for c in clips]
    if len(set(names)) != len(names):
        raise ValueError("two stem files share a file name; each placement needs its own WAV")
    project = _xml_bytes(project_xml(tempo_map, sections, clips, parts))
    metadata = _xml_bytes(metadata_xml(title, comment))
    with atomic_output(path) as tmp, zipfile.ZipFile(tmp, "w") as z:
        z.writestr("project.xml", project, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("metadata.xml", metadata, compress_type=zipfile.ZIP_DEFLATED)
        for clip in clips:  # float audio barely deflates: store it, fast
            z.write(clip.file, f"{AUDIO_FOLDER}/{clip.file.name}", compress_type=zipfile.ZIP_STORED)
    return path
