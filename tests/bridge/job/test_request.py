"""Request v1 validation: every mistake gets a code and a message that says how to fix it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.job.request import RequestError, parse_request
from tests.bridge.conftest import base_request


def test_valid_request_parses(project: Path) -> None:
    req = parse_request(base_request(project))
    assert req.project_dir == project.resolve()
    assert [s.name for s in req.sections] == ["Verse 1", "Chorus 1"]
    assert req.sections[1].start_beat == 8.0
    assert req.chords is not None and req.chords.path == (project / "chords.mid").resolve()
    assert req.range_bars is None and req.sections_to_generate() == req.sections


def test_json_text_and_inline_sources(project: Path) -> None:
    data = base_request(
        project,
        inputs={
            "chords": {"symbols": [["A:min", 0, 4], ["F:maj", 4, 8]]},
            "drums": {"notes": [{"pitch": 36, "start_beat": 0.0, "end_beat": 0.25, "velocity": 100}]},
            "melody": {"notes": [{"pitch": 69, "start_beat": 1, "end_beat": 2}]},
        },
    )
    req = parse_request(json.dumps(data))
    assert req.chords is not None and req.chords.symbols[1].label == "F:maj"
    assert req.drums is not None and req.drums.notes[0].pitch == 36
    assert req.melody is not None and req.melody.notes[0].velocity == 100


@pytest.mark.parametrize(
    ("mutate", "code", "fragment"),
    [
        (lambda r: r.update(extra=1), "schema", "unknown key"),
        (lambda r: r.update(version=2), "version", "version"),
        (lambda r: r["project"].update(tempo_map=[{"beat": 0, "bpm": 0}]), "tempo", "above 0 bpm"),
        (lambda r: r.update(sections=[]), "schema", "mark regions"),
        (lambda r: r.update(sections=[{"name": "A", "start_bar": 5, "end_bar": 3}]), "sections", "after the start"),
        (lambda r: r.update(sections=[{"name": "A", "start_bar": 1, "end_bar": 5},
                                      {"name": "B", "start_bar": 4, "end_bar": 8}]), "sections", "overlap"),
        (lambda r: r.update(range={"start_bar": 7, "end_bar": 9}), "range", "outside the song"),
        (lambda r: r.update(range={"start_bar": 3, "end_bar": 2}), "range", "backwards"),
        (lambda r: r.update(inputs={"chords": {"midi": "../secret.mid"}}), "path", "outside the project"),
        (lambda r: r.update(inputs={"chords": {"midi": "nope.mid"}}), "path", "does not exist"),
        (lambda r: r.update(inputs={"drums": {"notes": []}}), "input", "no notes"),
        (lambda r: r.update(inputs={"chords": {"symbols": [["A:min", 4, 2]]}}), "input", "before it starts"),
        (lambda r: r.update(stems=["drums", "drums"]), "schema", "twice"),
        (lambda r: r.update(seed=-1), "schema", "seed"),
        (lambda r: r["project"].update(sample_rate=12345), "schema", "sample_rate"),
        (lambda r: r.update(base_job="abc"), "schema", "only meaningful"),
        (lambda r: r.update(section_prompts={"Intro": "pads", "intro ": "piano"}), "schema", "keep one"),
    ],
)
def test_bad_requests(project: Path, mutate, code: str, fragment: str) -> None:  # type: ignore[no-untyped-def]
    (project.parent / "secret.mid").write_bytes(b"MThd")
    data = base_request(project)
    mutate(data)
    with pytest.raises(RequestError) as info:
        parse_request(data)
    assert info.value.code == code
    assert fragment in str(info.value)


def test_symlink_escaping_the_project_is_refused(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("elsewhere") / "x.mid"
    outside.write_bytes(b"MThd")
    os.symlink(outside, project / "link.mid")
    with pytest.raises(RequestError, match="outside the project"):
        parse_request(base_request(project, inputs={"chords": {"midi": "link.mid"}}))


def test_range_touching_two_sections(project: Path) -> None:
    req = parse_request(base_request(project, range={"start_bar": 2, "end_bar": 4}))
    assert req.range_beats == (4.0, 12.0)
    assert [s.name for s in req.sections_to_generate()] == ["Verse 1", "Chorus 1"]
    req = parse_request(base_request(project, range={"start_bar": 3, "end_bar": 4}))
    assert [s.name for s in req.sections_to_generate()] == ["Chorus 1"]


def test_invalid_json() -> None:
    with pytest.raises(RequestError) as info:
        parse_request("{not json")
    assert info.value.code == "invalid_json"


@pytest.mark.slow  # 300 hypothesis documents: about 15 s
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
))
def test_fuzzed_documents_raise_only_request_errors(doc: object) -> None:
    try:
        parse_request(json.dumps(doc) if not isinstance(doc, float) or doc == doc else "NaN")
    except RequestError:
        pass


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["sections", "range", "inputs", "stems", "seed", "prompt", "variations"]),
                       st.none() | st.integers(-5, 50) | st.text(max_size=5) | st.lists(st.integers(), max_size=3)
                       | st.dictionaries(st.sampled_from(["start_bar", "end_bar", "name", "midi"]), st.integers(-3, 30)),
                       max_size=4))
def test_fuzzed_fields_of_a_valid_request(project: Path, fields: dict[str, object]) -> None:
    data = base_request(project)
    data.update(fields)
    try:
        parse_request(data)
    except RequestError as exc:
        assert exc.code and str(exc)


def test_nul_byte_in_a_path_is_a_path_error(project: Path) -> None:
    with pytest.raises(RequestError) as info:
        parse_request(base_request(project, inputs={"chords": {"midi": "chords\x00.mid"}}))
    assert info.value.code == "path"


def test_decode_request_paths_json_and_bounds(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    from bridge.job.request import MAX_REQUEST_BYTES, decode_request

    doc = base_request(project)
    (project / "req.json").write_text(json.dumps(doc))
    assert decode_request("req.json", project_dir=project) == doc  # OSC may send a path
    assert decode_request(json.dumps(doc).encode(), project_dir=project) == doc
    assert decode_request(project / "req.json") == doc  # the CLI's file
    deep: list[object] = [1]
    for _ in range(40):
        deep = [deep]
    outside = tmp_path_factory.mktemp("elsewhere") / "req.json"
    outside.write_text(json.dumps(doc))
    cases = [
        (lambda: decode_request(str(outside), project_dir=project), "path", "outside the project"),
        (lambda: decode_request("a\0b", project_dir=project), "path", "NUL"),
        (lambda: decode_request("req.json"), "invalid_json", "not valid JSON"),  # no project: text is JSON
        (lambda: decode_request(b" " * (MAX_REQUEST_BYTES + 1)), "limit", "larger than"),
        (lambda: decode_request(project / "missing.json", what="request x"), "path", "cannot read request x"),
        (lambda: decode_request({"a": deep}), "invalid_json", "nested too deeply"),
        (lambda: decode_request('"just text"'), "schema", "must be a JSON object"),
        (lambda: decode_request('{"seed": ' + "9" * 5000 + "}"), "invalid_json", "number with thousands of digits"),
        (lambda: decode_request('{"inputs": {"chords": {"midi": "caf\\udce9.mid"}}}'), "invalid_json",
         "inputs.chords.midi holds \\udce9, half of a UTF-16 surrogate pair"),
        (lambda: decode_request('{"sections": [{"name": "a"}, {"name": "\\ud800"}]}'), "invalid_json",
         "sections[1].name holds \\ud800"),
        (lambda: decode_request('{"\\udfff": 1}'), "invalid_json", "\\udfff holds \\udfff"),
    ]
    for call, code, fragment in cases:
        with pytest.raises(RequestError) as info:
            call()
        assert info.value.code == code and fragment in str(info.value), (code, str(info.value))


@pytest.mark.parametrize(
    ("mutate", "where", "typo", "meant"),
    [
        (lambda r, p: r.update(promt="lo-fi"), "the request", "promt", "prompt"),
        (lambda r, p: r["project"].update(sampl_rate=48000), "project", "sampl_rate", "sample_rate"),
        (lambda r, p: r["project"].update(tempo_map=[{"beat": 0, "bmp": 120}]), "tempo_map[0]", "bmp", "bpm"),
        (lambda r, p: r["sections"][1].update(endbar=5), "sections[1]", "endbar", "end_bar"),
        (lambda r, p: r.update(range={"start_bar": 1, "end": 2}), "range", "end", "end_bar"),
        (lambda r, p: r.update(inputs={"chrods": {"midi": "chords.mid"}}), "inputs", "chrods", "chords"),
        (lambda r, p: r.update(inputs={"chords": {"midl": "chords.mid"}}), "inputs.chords", "midl", "midi"),
        (lambda r, p: r.update(inputs={"chords": {"midi": "chords.mid", "trak": "keys"}}), "inputs.chords", "trak", "track"),
        (lambda r, p: r.update(inputs={"melody": {"notes": [{"pitch": 60, "start_beat": 0, "end_beet": 1}]}}),
         "inputs.melody.notes[0]", "end_beet", "end_beat"),
    ],
)
def test_unknown_keys_name_the_closest_allowed_key_at_every_level(  # type: ignore[no-untyped-def]
    project: Path, mutate, where: str, typo: str, meant: str
) -> None:
    data = base_request(project)
    mutate(data, project)
    with pytest.raises(RequestError) as info:
        parse_request(data)
    assert f"{where} has unknown key {typo!r} (did you mean {meant!r}?)" in str(info.value)


def test_an_unknown_key_unlike_any_allowed_one_gets_no_guess(project: Path) -> None:
    with pytest.raises(RequestError, match=r"unknown key 'colour'; allowed keys: base_job, "):
        parse_request(base_request(project, colour="red"))


@pytest.mark.parametrize("version", [True, 1.5, "1", None])
def test_only_version_1_is_read(project: Path, version: object) -> None:
    with pytest.raises(RequestError) as info:
        parse_request(base_request(project, version=version))
    assert info.value.code == "version" and 'send "version": 1' in str(info.value)
    assert parse_request(base_request(project, version=1)).seed == 7


def test_a_section_prompt_matching_no_section_names_the_sections(project: Path) -> None:
    with pytest.raises(RequestError) as info:
        parse_request(base_request(project, section_prompts={"Chorus": "loud", "Chrous 1": "louder"}))
    message = str(info.value)
    assert info.value.code == "schema"
    assert "'Chrous 1' matches no section (did you mean 'Chorus 1'?)" in message
    assert "the sections are 'Verse 1', 'Chorus 1'" in message
    with pytest.raises(RequestError, match="'Bridge' matches no section; the sections are"):
        parse_request(base_request(project, section_prompts={"Bridge": "sparse"}))
    # a section's name, its name without the number, and its kind all match
    req = parse_request(base_request(project, section_prompts={"verse 1": "soft", "Chorus": "loud"}))
    assert dict(req.section_prompts) == {"verse 1": "soft", "Chorus": "loud"}
    assert parse_request(base_request(project, section_prompts={"chorus": "loud"})).section_prompts


@pytest.mark.parametrize(
    ("sections", "fragment"),
    [
        ([("Chorus", 1, 3), ("Verse", 3, 5), ("Chorus", 5, 7)],
         "two sections are named 'Chorus' (bars 1-3 and 5-7); give every section its own name, e.g. 'Chorus 1'"),
        ([("Verse 1", 1, 3), ("verse-1", 3, 5)], "'Verse 1' and 'verse-1' (bars 1-3 and 3-5) would share the take files"),
    ],
)
def test_sections_sharing_a_name_are_refused_when_parsed(
    project: Path, sections: list[tuple[str, int, int]], fragment: str
) -> None:
    data = base_request(project, sections=[{"name": n, "start_bar": a, "end_bar": b} for n, a, b in sections])
    with pytest.raises(RequestError) as info:
        parse_request(data)
    assert info.value.code == "sections" and fragment in str(info.value)


def test_stems_are_checked_against_the_models_declared_stems(project: Path) -> None:
    with pytest.raises(RequestError) as info:
        parse_request(base_request(project, stems=["drums", "guitar"]))
    assert "model 'arranger' cannot make stem 'guitar'; it makes drums, bass, keys, lead" in str(info.value)
    with pytest.raises(RequestError, match=r"stem 'drum' \(did you mean 'drums'\?\)"):
        parse_request(base_request(project, stems=["drum"]))
    # a model that splits a mix makes any stem name
    assert parse_request(base_request(project, model="musicgen-debug", stems=["guitar"])).stems == ("guitar",)


def test_an_unknown_model_gets_the_closest_name(project: Path) -> None:
    with pytest.raises(RequestError, match=r"unknown model 'musicgen-smal' \(did you mean 'musicgen-small'\?\)"):
        parse_request(base_request(project, model="musicgen-smal"))
