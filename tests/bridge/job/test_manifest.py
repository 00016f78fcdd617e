"""Manifest v1: typed records that write exactly the JSON the DAW scripts read, and read it back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.job.manifest import Failure, Manifest, Placement
from bridge.job.pipeline import run_request
from bridge.job.request import parse_request
from bridge.job.takes import read_manifest
from tests.bridge.conftest import base_request

DONE_KEYS = ["version", "job_id", "status", "model", "seed", "sample_rate", "tempo_map", "key", "sections",
             "placements", "exports", "info"]
PLACEMENT_KEYS = ["stem", "track", "section", "role", "file", "start_bar", "end_bar", "start_beat", "end_beat",
                  "start_s", "length_s", "length_samples", "take"]


def test_pipeline_manifests_round_trip_byte_for_byte(project: Path) -> None:
    first = run_request(parse_request(base_request(project, stems=["bass", "keys"], variations=2)))
    again = run_request(parse_request(base_request(project, stems=["bass"], range={"start_bar": 2, "end_bar": 4})))
    for result in (first, again):
        text = result.manifest_path.read_text(encoding="utf-8")
        record = Manifest.from_json(json.loads(text))
        assert record == result.record
        assert json.dumps(record.to_json(), indent=2) + "\n" == text
    doc = first.manifest
    assert list(doc) == DONE_KEYS
    assert list(doc["placements"][0]) == PLACEMENT_KEYS
    assert doc["placements"][0]["start_bar"] == 1 and isinstance(doc["placements"][0]["start_bar"], int)
    assert list(again.manifest) == [*DONE_KEYS, "range", "base_job", "base_jobs"]
    assert again.record.base_job == first.job_id and again.manifest["base_jobs"] == {"Verse 1": first.job_id,
                                                                                     "Chorus 1": first.job_id}


def test_failed_manifest_keeps_sample_rate_and_tempo_map(project: Path) -> None:
    raw = base_request(project, model="arranger", seed=11)
    raw["project"]["sample_rate"] = 44100
    raw["project"]["tempo_map"] = [{"beat": 0, "bpm": 90, "time_signature": [3, 4]}, {"beat": 12, "bpm": 140}]
    record = Manifest.failed("20260101-000000-abcdef", "cancelled", raw, Failure("cancelled", "stopped by you"))
    doc = record.to_json()
    assert list(doc) == ["version", "job_id", "status", "model", "seed", "sample_rate", "tempo_map", "error",
                         "placements"]
    assert doc["sample_rate"] == 44100 and doc["seed"] == 11 and doc["placements"] == []
    assert doc["tempo_map"] == parse_request(raw).tempo_map.to_json()  # as a finished job would record it
    assert [p["bpm"] for p in doc["tempo_map"]] == [90.0, 140.0] and doc["tempo_map"][0]["time_signature"] == [3, 4]
    assert doc["error"] == {"code": "cancelled", "message": "stopped by you"}
    assert Manifest.from_json(doc) == record
    bare = Manifest.failed("j1", "failed", {"version": 1}, Failure("internal", "boom")).to_json()
    assert bare["sample_rate"] == 48000 and bare["tempo_map"] == [{"beat": 0.0, "bpm": 120.0, "time_signature": [4, 4]}]


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ([], "JSON object"),
        ({"version": 2, "job_id": "a", "status": "done"}, "version"),
        ({"version": 1, "status": "done"}, "'job_id'"),
        ({"version": 1, "job_id": "a", "status": "lost"}, "status"),
        ({"version": 1, "job_id": "a", "status": "done", "placements": [{"stem": "bass"}]}, "'section'"),
        ({"version": 1, "job_id": "a", "status": "done", "tempo_map": 5}, "tempo_map"),
    ],
)
def test_malformed_manifests_are_refused(doc: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        Manifest.from_json(doc)


def test_take_lookup_skips_what_is_not_a_manifest(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "other.json").write_text(json.dumps({"version": 1, "job_id": "x", "status": "done", "placements": [1]}))
    assert read_manifest(tmp_path / "broken.json") is None
    assert read_manifest(tmp_path / "other.json") is None
    good = Manifest("x", "done", "arranger", 1, 48000, ({"beat": 0.0, "bpm": 120.0, "time_signature": [4, 4]},),
                    placements=(Placement("bass", "SB Bass", "Verse", "verse", "a.wav", 1, 2, 0.0, 4.0, 0.0, 2.0,
                                          96000, 1),))
    (tmp_path / "good.json").write_text(json.dumps(good.to_json()))
    assert read_manifest(tmp_path / "good.json") == good
