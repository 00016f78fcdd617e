"""End to end: request v1 -> arranger -> stems, manifest, MIDI and RPP in the project."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rpp
import soundfile as sf

from bridge.job.pipeline import JobResult, run_request
from bridge.job.request import RequestError, parse_request
from conditioning.timeline import TempoMap
from models.base import CancelToken, GenerationCancelled
from tests.bridge.conftest import base_request


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def _check_manifest_against_wavs(project: Path, manifest: dict[str, Any]) -> None:
    tm = TempoMap.from_json(manifest["tempo_map"])
    sr = manifest["sample_rate"]
    assert manifest["placements"], "nothing was placed"
    for p in manifest["placements"]:
        data, file_sr = sf.read(project / p["file"], always_2d=True, dtype="float32")
        assert file_sr == sr
        expected = tm.beat_to_samples(p["end_beat"], sr) - tm.beat_to_samples(p["start_beat"], sr)
        assert data.shape[0] == expected == p["length_samples"], p["file"]
        assert p["start_beat"] == pytest.approx(tm.bar_to_beat(p["start_bar"]))
        assert p["start_s"] == pytest.approx(tm.beat_to_seconds(p["start_beat"]), abs=1e-6)
        assert p["length_s"] == pytest.approx(expected / sr, abs=1e-6)
        peak = float(np.max(np.abs(data)))
        rms = float(np.sqrt(np.mean(data.astype(np.float64) ** 2)))
        assert peak <= 1.0, f"{p['file']} clips"
        assert rms > 1e-4, f"{p['file']} is silent"
        assert p["track"] == "SB " + p["stem"].title()


def test_generate_places_every_stem_of_every_section(project: Path) -> None:
    steps: list[tuple[float, str]] = []
    result = run_request(parse_request(base_request(project)), progress=lambda f, m: steps.append((f, m)))
    m = result.manifest
    assert result.manifest_path == project / "stembridge" / "outbox" / f"{result.job_id}.json"
    assert json.loads(result.manifest_path.read_text()) == m
    assert m["version"] == 1 and m["status"] == "done" and m["model"] == "arranger" and m["seed"] == 7
    assert {(p["section"], p["stem"]) for p in m["placements"]} == {
        (s, stem) for s in ("Verse 1", "Chorus 1") for stem in ("drums", "bass", "keys", "lead")
    }
    assert all(p["take"] == 1 for p in m["placements"])
    _check_manifest_against_wavs(project, m)
    chorus = next(p for p in m["placements"] if p["section"] == "Chorus 1")
    assert (chorus["start_bar"], chorus["end_bar"], chorus["start_beat"], chorus["start_s"]) == (3, 5, 8.0, 4.0)
    assert steps[-1][0] == 1.0 and all(0 <= f <= 1 for f, _ in steps)
    assert [f for f, _ in steps] == sorted(f for f, _ in steps)
    reaper = rpp.loads((project / m["exports"]["rpp"]).read_text())
    assert len(reaper.findall("TRACK")) == 4
    assert (project / m["exports"]["midi"]).is_file()
    assert not list((project / "stembridge" / "renders").glob("*.partial"))


def test_tempo_and_metre_change_mid_song(project: Path) -> None:
    tempo_map = [
        {"beat": 0, "bpm": 100, "time_signature": [4, 4]},
        {"beat": 8, "bpm": 140, "time_signature": [7, 8]},
        {"beat": 15, "bpm": 84.5, "time_signature": [6, 8]},
    ]
    req = base_request(
        project,
        project={"dir": str(project), "sample_rate": 44100, "tempo_map": tempo_map},
        sections=[{"name": "Verse", "start_bar": 1, "end_bar": 3}, {"name": "Odd Bridge", "start_bar": 3, "end_bar": 5},
                  {"name": "Outro", "start_bar": 5, "end_bar": 7}],
        stems=["drums", "bass"],
    )
    m = run_request(parse_request(req)).manifest
    _check_manifest_against_wavs(project, m)
    starts = {p["section"]: p["start_s"] for p in m["placements"]}
    assert starts["Odd Bridge"] == pytest.approx(8 * 60 / 100)
    assert starts["Outro"] == pytest.approx(8 * 60 / 100 + 7 * 60 / 140)


def test_second_run_adds_takes_and_keeps_the_first(project: Path) -> None:
    first = run_request(parse_request(base_request(project)))
    before = _files(project)
    second = run_request(parse_request(base_request(project, seed=8)))
    after = _files(project)
    assert all(after[k] == v for k, v in before.items()), "an earlier file changed"
    assert {p["take"] for p in second.manifest["placements"]} == {2}
    # the given drum track is played as written; the parts the arranger invents change with the seed
    for stem in ("bass", "keys", "lead"):
        a_p = next(p for p in first.manifest["placements"] if p["stem"] == stem)
        b_p = next(p for p in second.manifest["placements"] if p["stem"] == stem)
        a, b = sf.read(project / a_p["file"])[0], sf.read(project / b_p["file"])[0]
        assert a.shape == b.shape and not np.array_equal(a, b), f"another seed should give another {stem} part"


def test_a_new_take_without_a_seed_draws_a_new_seed_and_records_it(project: Path) -> None:
    unseeded = base_request(project, stems=["bass", "keys"], sections=[{"name": "Verse 1", "start_bar": 1, "end_bar": 3}])
    del unseeded["seed"]
    first = run_request(parse_request(unseeded))
    second = run_request(parse_request({**unseeded, "seed": None}))  # null means "no seed" too
    seeds = [first.manifest["seed"], second.manifest["seed"]]
    assert seeds[0] != seeds[1] and all(isinstance(s, int) for s in seeds)

    def take_audio(result: JobResult) -> dict[str, np.ndarray]:
        return {p["stem"]: sf.read(project / p["file"])[0] for p in result.manifest["placements"]}

    a, b = take_audio(first), take_audio(second)
    assert any(not np.array_equal(a[stem], b[stem]) for stem in a), "take 2 must differ from take 1"
    # the job's request.json carries the seed it used, and that seed makes the same take again
    recorded = json.loads((project / first.manifest["exports"]["request"]).read_text())
    assert recorded["seed"] == seeds[0]
    again = take_audio(run_request(parse_request(recorded)))
    assert all(np.array_equal(again[stem], a[stem]) for stem in a)


def test_regeneration_keeps_samples_outside_the_range(project: Path) -> None:
    base = run_request(parse_request(base_request(project)))
    regen = run_request(parse_request(base_request(project, seed=99, range={"start_bar": 2, "end_bar": 3})))
    m = regen.manifest
    assert m["range"] == {"start_bar": 2, "end_bar": 3} and m["base_job"] == base.job_id
    assert {p["section"] for p in m["placements"]} == {"Verse 1"}
    assert {p["take"] for p in m["placements"]} == {2}
    sr = m["sample_rate"]
    cut = TempoMap.constant(120).beat_to_samples(4.0, sr)
    for p in m["placements"]:
        old_p = next(q for q in base.manifest["placements"] if q["section"] == p["section"] and q["stem"] == p["stem"])
        old = sf.read(project / old_p["file"], dtype="float32")[0]
        new = sf.read(project / p["file"], dtype="float32")[0]
        assert new.shape == old.shape
        np.testing.assert_array_equal(new[:cut], old[:cut])
        assert not np.array_equal(new[cut:], old[cut:]), f"{p['stem']}: range not regenerated"
    _check_manifest_against_wavs(project, m)


def test_regeneration_without_a_take_is_explained(project: Path) -> None:
    with pytest.raises(RequestError, match="generate the song first"):
        run_request(parse_request(base_request(project, range={"start_bar": 1, "end_bar": 2})))


def test_corrupt_midi_fails_cleanly_and_leaves_nothing(project: Path) -> None:
    run_request(parse_request(base_request(project)))
    before = _files(project / "stembridge")
    (project / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01garbage")
    with pytest.raises(RequestError) as info:
        run_request(parse_request(base_request(project, inputs={"chords": {"midi": "broken.mid"}})))
    assert info.value.code == "input" and "broken.mid" in str(info.value) and "export the clip again" in str(info.value)
    assert _files(project / "stembridge") == before


def test_cancel_writes_nothing(project: Path) -> None:
    token = CancelToken()

    def progress(fraction: float, message: str) -> None:
        if fraction > 0.3:
            token.cancel()

    with pytest.raises(GenerationCancelled):
        run_request(parse_request(base_request(project)), progress=progress, cancel=token)
    assert not (project / "stembridge").exists()  # not even empty folders


@pytest.mark.parametrize("threshold", [0.0, 0.92])  # while reading the material / once stems are written
def test_a_failed_first_job_leaves_no_folders_in_the_project(project: Path, threshold: float) -> None:
    token = CancelToken()
    before = sorted(project.rglob("*"))

    def progress(fraction: float, message: str) -> None:
        if fraction >= threshold:
            token.cancel()

    with pytest.raises(GenerationCancelled):
        run_request(parse_request(base_request(project, stems=["bass"])), progress=progress, cancel=token)
    assert sorted(project.rglob("*")) == before
    (project / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01garbage")
    with pytest.raises(RequestError):
        run_request(parse_request(base_request(project, inputs={"chords": {"midi": "broken.mid"}})))
    assert not (project / "stembridge").exists()


def test_variations_make_consecutive_takes(project: Path) -> None:
    m = run_request(parse_request(base_request(project, variations=2, stems=["keys"]))).manifest
    takes = sorted((p["section"], p["take"]) for p in m["placements"])
    assert takes == [("Chorus 1", 1), ("Chorus 1", 2), ("Verse 1", 1), ("Verse 1", 2)]


def test_variations_arrangement_midi_is_the_first_take(project: Path) -> None:
    from conditioning.io.midi import read_midi

    def arrangement(**overrides: object) -> dict[str, list[tuple[int, float, float]]]:
        m = run_request(parse_request(base_request(project, stems=["bass", "keys"], **overrides))).manifest
        midi = read_midi(project / m["exports"]["midi"])
        return {t.name: [(n.pitch, round(n.start_beat, 4), round(n.end_beat, 4)) for n in t.notes] for t in midi.tracks}

    first_take = arrangement(seed=7)
    second_take = arrangement(seed=8)
    assert first_take != second_take  # seeds give different parts, so the check below can fail
    assert arrangement(seed=7, variations=2) == first_take


def test_rerun_after_publish_without_manifest_keeps_the_orphan(project: Path) -> None:
    first = run_request(parse_request(base_request(project, stems=["bass"])), job_id="20260101-000000-abcdef")
    # simulate a crash between publishing the renders and writing the manifest
    first.manifest_path.unlink()
    orphan = _files(project / "stembridge" / "renders" / first.job_id)
    again = run_request(parse_request(base_request(project, stems=["bass"])), job_id=first.job_id)
    kept = project / "stembridge" / "renders" / f"{first.job_id}.unannounced"
    assert _files(kept) == orphan
    assert {p["take"] for p in again.manifest["placements"]} == {2}


def test_unreadable_melody_wav_is_explained(project: Path) -> None:
    (project / "hum.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    with pytest.raises(RequestError) as info:
        run_request(parse_request(base_request(project, inputs={"melody": {"audio": "hum.wav"}})))
    assert info.value.code == "input" and "hum.wav" in str(info.value)
    assert not (project / "stembridge" / "outbox").exists() or not list((project / "stembridge" / "outbox").glob("*.json"))


def test_regeneration_hands_the_previous_section_to_the_generator(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from models.arranger.generator import ArrangerGenerator

    run_request(parse_request(base_request(project)))
    seen: list[int | None] = []
    original = ArrangerGenerator.regenerate

    def spy(self, conditioning, **kwargs):  # type: ignore[no-untyped-def]
        prev = kwargs.get("previous_audio")
        seen.append(None if prev is None else prev.num_samples)
        return original(self, conditioning, **kwargs)

    monkeypatch.setattr(ArrangerGenerator, "regenerate", spy)
    run_request(parse_request(base_request(project, seed=5, range={"start_bar": 3, "end_bar": 4})))
    # Chorus 1 starts at bar 3; the Verse 1 take before it lasts 4 s at 120 bpm (2 bars)
    assert seen == [4 * 48000]


def test_variations_are_one_generator_call_per_section(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from models.arranger.generator import ArrangerGenerator

    calls: list[tuple[str, list[int], int | None]] = []
    original = ArrangerGenerator.generate_variations

    def spy(self, conditioning, **kwargs):  # type: ignore[no-untyped-def]
        prev = kwargs.get("previous_audio")
        calls.append((conditioning.section.name, list(kwargs["seeds"]), None if prev is None else prev.num_samples))
        return original(self, conditioning, **kwargs)

    monkeypatch.setattr(ArrangerGenerator, "generate_variations", spy)
    m = run_request(parse_request(base_request(project, seed=7, variations=2, stems=["keys"]))).manifest
    # both takes of Chorus 1 continue from Verse 1's first take (4 s at 120 bpm)
    assert calls == [("Verse 1", [7, 8], None), ("Chorus 1", [7, 8], 4 * 48000)]
    second = next(p for p in m["placements"] if p["section"] == "Verse 1" and p["take"] == 2)
    alone = run_request(parse_request(base_request(project, seed=8, stems=["keys"]))).manifest
    same_seed = next(p for p in alone["placements"] if p["section"] == "Verse 1")
    np.testing.assert_array_equal(sf.read(project / second["file"])[0], sf.read(project / same_seed["file"])[0])
