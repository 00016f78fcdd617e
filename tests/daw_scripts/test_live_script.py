"""Ableton Live Remote Script: request from the set, replies, stem placement (fake Live objects)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fake_live import (
    FakeApp,
    FakeAppView,
    FakeClip,
    FakeCue,
    FakeNote,
    FakeSong,
    FakeTrack,
    FakeTransport,
)
from stembridge_live.core import INLINE_LIMIT, StemBridgeCore
from stembridge_live.settings import Settings, load_settings, settings_from_dict

from bridge.job.request import parse_request


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _song(tmp_path: Path, **kw: Any) -> FakeSong:
    set_dir = tmp_path / "Funk Project"
    set_dir.mkdir(exist_ok=True)
    chords = FakeClip([FakeNote(57, 0.0, 2.0, 80), FakeNote(60, 2.0, 2.0, 90), FakeNote(64, 1.0, 1.0, 50, mute=True)],
                      length=4.0, looping=True)
    drums = FakeClip([FakeNote(36, 0.0, 0.25, 110), FakeNote(38, 1.0, 0.25, 100)], length=2.0)
    defaults: dict[str, Any] = {
        "tempo": 92.0,
        "cues": [FakeCue("Verse 1", 16.0), FakeCue("Intro", 0.0), FakeCue("End", 48.0)],
        "tracks": [FakeTrack("Chords", clips=[chords, None]), FakeTrack("Drum Rack", clips=[drums, None]),
                   FakeTrack("Pad", clips=[None, None])],
        "file_path": str(set_dir / "Funk.als"),
    }
    defaults.update(kw)
    return FakeSong(**defaults)


def _core(song: FakeSong, app: FakeApp | None = None, **settings: Any) -> tuple[StemBridgeCore, FakeTransport, list[str], list[str]]:
    transport = FakeTransport()
    logs: list[str] = []
    shown: list[str] = []
    core = StemBridgeCore(song, app or FakeApp(), transport, Settings(**settings),  # type: ignore[arg-type]
                          logs.append, shown.append, clock=Clock())
    return core, transport, logs, shown


def test_generate_from_session_view(tmp_path: Path) -> None:
    song = _song(tmp_path)
    song.view.detail_clip = FakeClip([FakeNote(72, 0.0, 1.0)])
    song.tracks[2].clip_slots[1].clip = song.view.detail_clip
    song.view.detail_clip.canonical_parent = song.tracks[2].clip_slots[1]
    core, transport, logs, shown = _core(song, sample_rate=44100, prompt="dusty funk")
    assert transport.by_address("/stembridge/ping") == [()]
    name = core.generate()
    assert name is not None
    (args,) = transport.by_address("/stembridge/generate")
    req = json.loads(args[0])
    set_dir = str(tmp_path / "Funk Project")
    assert req["project"] == {"dir": set_dir, "sample_rate": 44100,
                              "tempo_map": [{"beat": 0, "bpm": 92.0, "time_signature": [4, 4]}]}
    # locators sorted by time; the last one ("End") closes the song
    assert req["sections"] == [{"name": "Intro", "start_bar": 1, "end_bar": 5},
                               {"name": "Verse 1", "start_bar": 5, "end_bar": 13}]
    # the looping 4-beat chord clip repeats over the 48 beats; the muted note is left out
    chords = req["inputs"]["chords"]["notes"]
    assert len(chords) == 24
    assert chords[:3] == [{"pitch": 57, "start_beat": 0.0, "end_beat": 2.0, "velocity": 80},
                          {"pitch": 60, "start_beat": 2.0, "end_beat": 4.0, "velocity": 90},
                          {"pitch": 57, "start_beat": 4.0, "end_beat": 6.0, "velocity": 80}]
    assert req["inputs"]["drums"]["notes"] == [  # not looping: plays once from the song start
        {"pitch": 36, "start_beat": 0.0, "end_beat": 0.25, "velocity": 110},
        {"pitch": 38, "start_beat": 1.0, "end_beat": 1.25, "velocity": 100}]
    assert "melody" not in req["inputs"]
    assert any("track 'Pad'" in line and "name the track" in line for line in logs)
    assert req["prompt"] == "dusty funk" and req["stems"] == ["drums", "bass", "keys", "lead"]
    parsed = parse_request(req)
    assert [s.name for s in parsed.sections] == ["Intro", "Verse 1"]
    saved = json.loads((Path(set_dir) / "stembridge" / "daw" / f"{name}.json").read_text())
    assert saved == req
    assert "sent 2 section(s)" in shown[-1]


def test_generate_from_arrangement_view(tmp_path: Path) -> None:
    melody = FakeClip([FakeNote(70, 0.5, 0.5), FakeNote(72, 3.0, 1.0), FakeNote(74, 9.0, 1.0)],
                      length=4.0, start_marker=2.0, end_marker=6.0, start_time=20.0, arrangement=True)
    outside = FakeClip([FakeNote(60, 0.0, 1.0)], length=4.0, start_time=60.0, arrangement=True)
    song = _song(tmp_path, tracks=[FakeTrack("Lead melody", arrangement=[melody, outside])])
    core, transport, _, _ = _core(song, FakeApp(view=FakeAppView("Arranger")))
    core.generate("hook")
    req = json.loads(transport.by_address("/stembridge/generate")[0][0])
    # clip starts at beat 20 and plays from its start marker (clip beat 2): clip beat 3 -> song 21
    assert req["inputs"] == {"melody": {"notes": [{"pitch": 72, "start_beat": 21.0, "end_beat": 22.0, "velocity": 100}]}}
    assert req["prompt"] == "hook"


def test_generate_sends_a_path_when_the_request_is_large(tmp_path: Path) -> None:
    many = [FakeNote(36 + i % 12, i * 0.125, 0.1) for i in range(384)]
    song = _song(tmp_path, tracks=[FakeTrack("drums", clips=[FakeClip(many, length=48.0), None])])
    core, transport, _, _ = _core(song)
    name = core.generate()
    (args,) = transport.by_address("/stembridge/generate")
    path = Path(args[0])
    assert path.is_absolute() and path.name == f"{name}.json"
    assert len(path.read_text()) > INLINE_LIMIT
    assert len(json.loads(path.read_text())["inputs"]["drums"]["notes"]) == 384


def test_loop_brace_is_the_section_without_locators(tmp_path: Path) -> None:
    song = _song(tmp_path, cues=[], loop=(8.0, 8.0), signature=(6, 8))
    core, transport, _, _ = _core(song)
    core.generate()
    req = json.loads(transport.by_address("/stembridge/generate")[0][0])
    # 6/8: a bar is 3 beats, so beats 8-16 are bars 3.67-6.33: sent as exact beats
    assert req["sections"] == [{"name": "Loop", "start_beat": 8.0, "end_beat": 16.0}]
    assert req["project"]["tempo_map"][0]["time_signature"] == [6, 8]
    parse_request(req)


def test_unsaved_set_is_reported_to_live_and_the_bridge(tmp_path: Path) -> None:
    core, transport, logs, shown = _core(_song(tmp_path, file_path=""))
    assert core.generate() is None
    assert "save the Live set first" in shown[-1] and "save the Live set first" in logs[-1]
    (err,) = transport.by_address("/stembridge/client_error")
    assert err[0] == "live:generate" and "save the Live set" in err[1]


def _manifest(project: Path, job: str, section: str, bar: int, beat: float, take: int, **extra: Any) -> Path:
    placements = []
    for stem in ("drums", "bass"):
        rel = f"stembridge/renders/{job}/{section.lower().replace(' ', '-')}_{stem}_take{take}.wav"
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_bytes(b"RIFF")
        placements.append({"stem": stem, "track": f"SB {stem.capitalize()}", "section": section, "file": rel,
                           "start_bar": bar, "end_bar": bar + 8, "start_beat": beat, "start_s": beat * 60 / 92,
                           "length_s": 32 * 60 / 92, "take": take})
    path = project / "stembridge" / "outbox" / f"{job}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "job_id": job, "status": "done", "placements": placements, **extra}))
    return path


def test_replies_place_stems_and_regenerations_become_take_lanes(tmp_path: Path) -> None:
    song = _song(tmp_path)
    project = tmp_path / "Funk Project"
    core, transport, logs, shown = _core(song)
    core.generate()
    transport.incoming = [("/stembridge/pong", ["0.1.0"]), ("/stembridge/accepted", ["job-a"]),
                          ("/stembridge/progress", ["job-a", 0.42, "rendering drums"])]
    core.tick()
    assert core.connected and core.pending == {}
    assert shown[-1] == "StemBridge: 42% rendering drums"
    _manifest(project, "job-a", "Verse 1", 5, 16.0, 1)
    transport.incoming = [("/stembridge/done", ["job-a", "stembridge/outbox/job-a.json"])]
    core.tick()
    drums = [t for t in song.tracks if t.name == "SB Drums"]
    assert len(drums) == 1 and drums[0].has_audio_input
    (clip,) = drums[0].arrangement_clips
    assert clip.warping is False, "Live's auto-warp would stretch the bar-exact stem"
    assert clip.start_time == 16.0 and clip.file_path == str(project / "stembridge/renders/job-a/verse-1_drums_take1.wav")
    assert "placed 2 stem(s) of job-a" in shown[-1]

    regen = _manifest(project, "job-b", "Verse 1", 5, 16.0, 2, range={"start_bar": 6, "end_bar": 8}, base_job="job-a")
    transport.incoming = [("/stembridge/done", ["job-b", str(regen)]), ("/stembridge/done", ["job-b", str(regen)])]
    core.tick()
    # The new take plays on the main lane (Live plays no take lane until it is comped); the
    # earlier take is kept on a take lane. The duplicate /done did not place twice.
    (main,) = drums[0].arrangement_clips
    assert main.file_path.endswith("verse-1_drums_take2.wav") and main.name == "Verse 1 take 2"
    assert main.start_time == 16.0 and main.warping is False
    (lane,) = drums[0].take_lanes
    assert lane.name == "Verse 1 take 1"
    assert lane.arrangement_clips[0].file_path.endswith("verse-1_drums_take1.wav")
    assert lane.arrangement_clips[0].start_time == 16.0 and lane.arrangement_clips[0].warping is False
    state = json.loads((project / "stembridge" / "daw" / "live_state.json").read_text())
    assert state["last_job"] == {"Verse 1": "job-b"} and state["placed"] == ["job-a", "job-b"]


def test_old_live_gets_files_for_drag_in(tmp_path: Path) -> None:
    song = _song(tmp_path)
    project = tmp_path / "Funk Project"
    core, transport, _, shown = _core(song, FakeApp(version=(11, 3, 25)))
    _manifest(project, "job-a", "Verse 1", 5, 16.0, 1)
    transport.incoming = [("/stembridge/done", ["job-a", "stembridge/outbox/job-a.json"])]
    core.tick()
    folder = project / "StemBridge" / "job-a"
    assert sorted(p.name for p in folder.iterdir()) == ["bar5_verse-1_bass_take1.wav", "bar5_verse-1_drums_take1.wav"]
    assert "Live 11.3.25 cannot place clips" in shown[-1] and str(folder) in shown[-1]
    assert "Warp off" in shown[-1]
    assert not any(t.name.startswith("SB ") for t in song.tracks)


def test_regenerate_loop_brace_and_variation_and_cancel(tmp_path: Path) -> None:
    song = _song(tmp_path)
    project = tmp_path / "Funk Project"
    core, transport, _, _ = _core(song)
    core.generate()
    _manifest(project, "job-a", "Verse 1", 5, 16.0, 1)
    transport.incoming = [("/stembridge/accepted", ["job-a"]),
                          ("/stembridge/done", ["job-a", "stembridge/outbox/job-a.json"])]
    core.tick()
    song.loop_start, song.loop_length = 22.0, 8.0  # bars 6.5-8.5 -> bars 6-9 (end exclusive)
    transport.incoming = [("/stembridge/live/regenerate", []), ("/stembridge/live/variation", [])]
    core.tick()
    gen_req = json.loads(transport.by_address("/stembridge/generate")[0][0])
    regen = json.loads(transport.by_address("/stembridge/generate")[1][0])
    assert regen["range"] == {"start_bar": 6, "end_bar": 9} and regen["base_job"] == "job-a"
    assert regen["seed"] != gen_req["seed"] and regen["sections"] == gen_req["sections"]
    assert parse_request(regen).range_bars == (6.0, 9.0)
    assert transport.by_address("/stembridge/variation") == [("job-a",)]
    transport.incoming = [("/stembridge/accepted", ["job-c"]), ("/stembridge/live/cancel", [])]
    core.tick()
    assert transport.by_address("/stembridge/cancel") == [("job-c",)]


def test_regenerate_before_generate_is_an_error(tmp_path: Path) -> None:
    core, transport, _, shown = _core(_song(tmp_path))
    assert core.regenerate() == []
    assert "has not been generated yet" in shown[-1]
    assert transport.by_address("/stembridge/generate") == []


def test_bridge_errors_and_silence_are_reported(tmp_path: Path) -> None:
    core, transport, logs, shown = _core(_song(tmp_path))
    core.generate()
    core._clock.t += 6.0  # type: ignore[attr-defined]
    core.tick()
    assert "did not answer" in shown[-1] and "stembridge serve" in shown[-1]
    core.generate()
    transport.incoming = [("/stembridge/error", ["", "sections", "sections 'A' and 'B' overlap"]),
                          ("/stembridge/unknown", [1])]
    core.tick()
    assert core.pending == {}
    assert shown[-1] == "StemBridge: sections 'A' and 'B' overlap"
    assert any("ignored OSC /stembridge/unknown" in line for line in logs)
    transport.incoming = [("/stembridge/done", ["job-x", "stembridge/outbox/missing.json"])]
    core.tick()  # a broken reply must not break the tick
    assert "missing.json" in shown[-1]
    assert transport.by_address("/stembridge/client_error")[-1][0] == "live:done"


def test_settings_file_is_checked(tmp_path: Path) -> None:
    assert load_settings(str(tmp_path / "none.json")) == Settings()
    good = tmp_path / "settings.json"
    good.write_text(json.dumps({"bridge_port": 9100, "stems": ["drums"], "accept_timeout_s": 3}))
    s = load_settings(str(good))
    assert (s.bridge_port, s.stems, s.accept_timeout_s) == (9100, ["drums"], 3.0)
    with pytest.raises(ValueError, match="unknown key"):
        settings_from_dict({"bridge_prot": 1})
    with pytest.raises(ValueError, match="sample_rate must be int"):
        settings_from_dict({"sample_rate": "48k"})


def test_live_errors_while_placing_are_reported_and_the_tick_goes_on(tmp_path: Path) -> None:
    """Live raises RuntimeError (frozen track) and LimitationError (track limit): each stem is
    tried, the job is recorded as placed, the musician and the bridge hear about it."""
    song = _song(tmp_path)
    song.tracks.append(FakeTrack("SB Drums", audio=True, frozen=True))
    song.max_tracks = len(song.tracks)  # no room for "SB Bass"
    project = tmp_path / "Funk Project"
    core, transport, logs, shown = _core(song)
    _manifest(project, "job-a", "Verse 1", 5, 16.0, 1)
    transport.incoming = [("/stembridge/done", ["job-a", "stembridge/outbox/job-a.json"]),
                          ("/stembridge/progress", ["job-z", 0.5, "still ticking"])]
    core.tick()
    errors = [args[1] for args in transport.by_address("/stembridge/client_error")]
    assert len(errors) == 2
    assert "drums" in errors[0] and "frozen" in errors[0]
    assert "bass" in errors[1] and "allows" in errors[1]
    assert any("frozen" in line for line in shown)
    assert shown[-1] == "StemBridge: 50% still ticking", "the rest of the batch was dropped"
    state = json.loads((project / "stembridge" / "daw" / "live_state.json").read_text())
    assert state["placed"] == ["job-a"]


def _hum(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + bytes(40))
    return path


def _hum_song(tmp_path: Path, clip: FakeClip, *, melody_midi: bool = False) -> FakeSong:
    tracks = [FakeTrack("Vocal hum", audio=True, arrangement=[clip])]
    if melody_midi:
        tracks.append(FakeTrack("melody", clips=[FakeClip([FakeNote(60, 0.0, 1.0)]), None]))
    song = _song(tmp_path, tracks=tracks)
    song.view.detail_clip = clip
    return song


def test_selected_arrangement_audio_clip_is_the_hummed_melody(tmp_path: Path) -> None:
    project = tmp_path / "Funk Project"
    hum = _hum(project / "Samples" / "Recorded" / "hum 1.wav")
    # Unwarped: markers in seconds. The clip starts at beat 8 (92 bpm: 5.217 s), plays the
    # file from 0.5 s for its 4 beats (2.609 s).
    clip = FakeClip(midi=False, arrangement=True, start_time=8.0, length=4.0, start_marker=0.5,
                    end_marker=10.0, loop_end=10.0, file_path=str(hum), warping=False)
    song = _hum_song(tmp_path, clip, melody_midi=True)
    core, transport, logs, shown = _core(song)
    core.generate()
    req = json.loads(transport.by_address("/stembridge/generate")[0][0])
    melody = req["inputs"]["melody"]
    assert melody["audio"] == "Samples/Recorded/hum 1.wav"
    assert melody["offset_s"] == pytest.approx(8 * 60 / 92)
    assert melody["source_offset_s"] == pytest.approx(0.5)
    assert melody["length_s"] == pytest.approx(4 * 60 / 92)
    assert any("not the MIDI melody" in line for line in logs)
    assert "melody hummed audio" in shown[-1]
    parsed = parse_request(req)
    assert parsed.melody is not None and parsed.melody.kind == "audio"
    assert parsed.melody.path == hum.resolve() and parsed.melody.source_offset_s == pytest.approx(0.5)


def test_warped_hum_markers_are_beats_converted_to_file_seconds(tmp_path: Path) -> None:
    project = tmp_path / "Funk Project"
    hum = _hum(project / "hum.wav")
    # Warped at 120 bpm: clip beat 2 is 1.0 s into the file; 4 beats play 2.0 s of it.
    clip = FakeClip(midi=False, arrangement=True, start_time=16.0, length=4.0, start_marker=2.0,
                    end_marker=32.0, loop_end=32.0, file_path=str(hum), warping=True, warp_bpm=120.0)
    core, transport, logs, _ = _core(_hum_song(tmp_path, clip))
    core.generate()
    melody = json.loads(transport.by_address("/stembridge/generate")[0][0])["inputs"]["melody"]
    assert melody == {"audio": "hum.wav", "offset_s": pytest.approx(16 * 60 / 92),
                      "source_offset_s": pytest.approx(1.0), "length_s": pytest.approx(2.0)}
    assert any("warped" in line for line in logs)


@pytest.mark.parametrize("where", ["outside", "missing"])
def test_hum_the_bridge_cannot_read_is_reported(tmp_path: Path, where: str) -> None:
    path = tmp_path / "elsewhere" / "hum.wav"
    if where == "outside":
        _hum(path)
    clip = FakeClip(midi=False, arrangement=True, start_time=0.0, length=4.0, file_path=str(path))
    core, transport, _, shown = _core(_hum_song(tmp_path, clip))
    assert core.generate() is None
    assert transport.by_address("/stembridge/generate") == []
    expected = "Collect All and Save" if where == "outside" else "is missing"
    assert expected in shown[-1] and str(path) in shown[-1]
    assert expected in transport.by_address("/stembridge/client_error")[-1][1]


@pytest.mark.parametrize("problem", ["recording", "unreadable"])
def test_each_refusal_of_create_audio_clip_is_reported(tmp_path: Path, problem: str) -> None:
    song = _song(tmp_path)
    drums = FakeTrack("SB Drums", audio=True)
    drums.arm, drums._recording = problem == "recording", problem == "recording"
    song.tracks.append(drums)
    project = tmp_path / "Funk Project"
    core, transport, _, _ = _core(song)
    _manifest(project, "job-a", "Verse 1", 5, 16.0, 1)
    if problem == "unreadable":
        (project / "stembridge/renders/job-a/verse-1_drums_take1.wav").write_bytes(b"not audio")
    transport.incoming = [("/stembridge/done", ["job-a", "stembridge/outbox/job-a.json"])]
    core.tick()
    (err,) = transport.by_address("/stembridge/client_error")
    assert err[0] == "live:place" and "Live refused to place drums" in err[1]
    assert [t.name for t in song.tracks].count("SB Bass") == 1, "the other stem was still placed"


def test_session_clips_and_our_own_stems_are_not_hums(tmp_path: Path) -> None:
    project = tmp_path / "Funk Project"
    hum = _hum(project / "hum.wav")
    session = FakeClip(midi=False, file_path=str(hum))
    song = _song(tmp_path, tracks=[FakeTrack("Vocal", audio=True, clips=[session, None])])
    song.view.detail_clip = session
    core, transport, logs, _ = _core(song)
    core.generate()
    assert "melody" not in json.loads(transport.by_address("/stembridge/generate")[0][0])["inputs"]
    assert any("select the hummed clip in the Arrangement" in line for line in logs)
    stem = FakeClip(midi=False, arrangement=True, file_path=str(hum))
    song2 = _song(tmp_path, tracks=[FakeTrack("SB Lead", audio=True, arrangement=[stem])])
    song2.view.detail_clip = stem
    core2, transport2, _, _ = _core(song2)
    core2.generate()
    assert "melody" not in json.loads(transport2.by_address("/stembridge/generate")[0][0])["inputs"]
