"""The command line: generate, analyze, demo, models; exit status 2 with a clear message on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.cli.demo import bundled_session
from bridge.cli.main import main
from tests.bridge.conftest import base_request


def test_generate_prints_table_and_writes_manifest(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    req = project / "req.json"
    req.write_text(json.dumps(base_request(project, stems=["bass"])))
    assert main(["generate", str(req), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "SB Bass" in out and "Chorus 1" in out and "manifest:" in out


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda r: r.update(sections=[{"name": "A", "start_bar": 4, "end_bar": 2}]), "after the start bar"),
        (lambda r: r["project"].update(tempo_map=[{"beat": 0, "bpm": 0}]), "above 0 bpm"),
        (lambda r: r.update(colour="red"), "unknown key"),
        (lambda r: r.update(model="nope"), "unknown model"),
        (lambda r: r.update(promt="funk"), "unknown key 'promt' (did you mean 'prompt'?)"),
        (lambda r: r.update(sections=[{"name": "Chorus", "start_bar": 1, "end_bar": 3},
                                      {"name": "Chorus", "start_bar": 3, "end_bar": 5}]), "two sections are named 'Chorus'"),
        (lambda r: r.update(stems=["guitar"]), "model 'arranger' cannot make stem 'guitar'"),
        (lambda r: r.update(version=True), 'send "version": 1'),
    ],
)
def test_bad_requests_exit_2(project: Path, capsys: pytest.CaptureFixture[str], mutate, fragment: str) -> None:  # type: ignore[no-untyped-def]
    data = base_request(project)
    mutate(data)
    req = project / "req.json"
    req.write_text(json.dumps(data))
    before = sorted(project.rglob("*"))
    assert main(["generate", str(req), "--quiet"]) == 2
    assert fragment in capsys.readouterr().err
    assert sorted(project.rglob("*")) == before  # nothing new: no empty stembridge/ skeleton either


def test_unreadable_request_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", str(tmp_path / "missing.json")]) == 2
    assert "cannot read request" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"version": 1, "a": ' * 5000 + "1" + "}" * 5000, "nested too deeply"),  # past Python's recursion limit
        ("[" * 40 + "]" * 40, "must be a JSON object"),
        ('{"version": 1, "x": ' + "[" * 40 + "]" * 40 + "}", "nested too deeply"),  # deeper than any request
        ("{oops", "not valid JSON"),
        ('{"version": 1, "seed": ' + "7" * 4400 + "}", "number with thousands of digits"),
        ('{"version": 1, "prompt": "\\ud83c alone"}', "prompt holds \\ud83c, half of a UTF-16 surrogate pair"),
    ],
)
def test_undecodable_request_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                          fragment: str) -> None:
    req = tmp_path / "req.json"
    req.write_text(text)
    assert main(["generate", str(req), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert fragment in err and str(req) in err


def test_a_request_failing_on_its_material_leaves_nothing_new(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01garbage")
    req = project / "req.json"
    req.write_text(json.dumps(base_request(project, inputs={"chords": {"midi": "broken.mid"}})))
    before = sorted(project.rglob("*"))
    assert main(["generate", str(req), "--quiet"]) == 2
    assert "broken.mid" in capsys.readouterr().err
    assert sorted(project.rglob("*")) == before


def test_non_utf8_request_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    req = tmp_path / "req.json"
    req.write_bytes(b'{"prompt": "caf\xe9"}')
    assert main(["generate", str(req), "--quiet"]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_analyze_drums_json(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(project / "drums.mid"), "--role", "drums", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["roles"]["kick"] == 16 and out["roles"]["snare"] == 16 and out["roles"]["hihat"] == 32


def test_analyze_chords_json(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(project / "chords.mid"), "--role", "chords", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [c["label"] for c in out["chords"][:4]] == ["A:min", "F:maj", "C:maj", "G:maj"]
    assert out["chords"][1]["start_s"] == pytest.approx(2.0) and out["chords"][1]["start_beat"] == pytest.approx(4.0)
    assert out["key"] == "C major"  # Am F C G: the relative major, as the key estimator reads it


def test_analyze_readable_summary(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(project / "chords.mid"), "--role", "chords"]) == 0
    assert "A:min" in capsys.readouterr().out


def test_analyze_places_legato_changes_on_the_beat_and_bar(capsys: pytest.CaptureFixture[str]) -> None:
    # the demo's chords.mid releases each chord 1/24 beat early; the changes are at beats 4, 8, ...
    chords_mid = Path(str(bundled_session().joinpath("chords.mid")))
    assert main(["analyze", str(chords_mid), "--role", "chords", "--json"]) == 0
    chords = json.loads(capsys.readouterr().out)["chords"]
    assert [c["start_beat"] for c in chords[:4]] == [0.0, 4.0, 8.0, 12.0]
    assert [c["start_bar"] for c in chords[:4]] == [1.0, 2.0, 3.0, 4.0]
    assert main(["analyze", str(chords_mid), "--role", "chords"]) == 0
    assert "beat    4.00  bar   2 beat 1      F:maj" in capsys.readouterr().out


def test_analyze_corrupt_and_empty_midi(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file at all")
    assert main(["analyze", str(bad), "--role", "chords"]) == 2
    assert "not a readable MIDI file" in capsys.readouterr().err
    empty = tmp_path / "empty.mid"
    import mido

    mido.MidiFile().save(str(empty))
    assert main(["analyze", str(empty), "--role", "drums"]) == 2
    assert "no notes" in capsys.readouterr().err


def test_analyze_truncated_midi_says_the_file_ends_early(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    whole = bundled_session().joinpath("chords.mid").read_bytes()
    cut = tmp_path / "cut.mid"
    cut.write_bytes(whole[:30])  # a download or a copy that stopped half-way
    assert main(["analyze", str(cut), "--role", "chords"]) == 2
    err = capsys.readouterr().err
    assert "cut.mid is not a readable MIDI file (the file ends in the middle of its data)" in err
    assert "export the clip again" in err


def test_models_lists_arranger(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["arranger"]["ready"] is True
