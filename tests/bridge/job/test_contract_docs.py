"""docs/contracts.md is the source of truth: its request keys are exactly what the parser accepts.

The parser's allowed keys are read from its own answers (an unknown key at each level is refused
with the list of allowed keys), so neither side can change without the other.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from bridge.job.pipeline import run_request
from bridge.job.request import RequestError, parse_request

CONTRACTS = Path(__file__).resolve().parents[3] / "docs" / "contracts.md"
_UNKNOWN = "zz_not_a_key"
_KIND_VALUES: dict[str, Any] = {
    "midi": "material.mid",
    "audio": "material.wav",
    "notes": [{"pitch": 60, "start_beat": 0, "end_beat": 1, "velocity": 90}],
    "symbols": [["C:maj", 0, 4]],
}


def _section(title: str) -> str:
    text = CONTRACTS.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start: end if end != -1 else len(text)]


def _first_column(section: str) -> list[str]:
    """The backticked names in the first column of the section's tables."""
    names = []
    for line in section.splitlines():
        cells = line.split("|")
        if line.startswith("| `") and len(cells) > 2:
            names += re.findall(r"`([^`]+)`", cells[1])
    return names


def _documented_request_keys() -> dict[str, set[str]]:
    """Level ("" for the top, "project", "sections[]", "inputs.chords", …) -> documented keys."""
    levels: dict[str, set[str]] = {}
    for path in _first_column(_section("Request v1")):
        parent, _, leaf = path.rpartition(".")
        levels.setdefault(parent, set()).add(leaf)
    return levels


@pytest.fixture()
def base(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "material.mid").write_bytes(b"MThd")  # parsing only resolves paths
    (tmp_path / "material.wav").write_bytes(b"RIFF")
    return {
        "version": 1,
        "project": {"dir": str(tmp_path), "tempo_map": [{"beat": 0, "bpm": 120}]},
        "sections": [{"name": "Verse", "start_bar": 1, "end_bar": 3}],
        "range": {"start_bar": 1, "end_bar": 2},
        "inputs": {},
    }


def _refusal(request: dict[str, Any]) -> str:
    with pytest.raises(RequestError) as info:
        parse_request(request)
    return str(info.value)


def _allowed(request: dict[str, Any]) -> set[str]:
    """The allowed keys the parser names when it refuses ``request``'s unknown key."""
    message = _refusal(request)
    assert _UNKNOWN in message, message
    found = re.search(r"allowed(?: keys)?: ([^;\n]+)", message)
    assert found, f"the refusal does not list the allowed keys: {message}"
    return {k.strip(" '\"`.") for k in found.group(1).split(",")}


def _parser_request_keys(base: dict[str, Any]) -> dict[str, set[str]]:
    levels: dict[str, set[str]] = {}

    def probe(level: str, edit: Any) -> None:
        req = copy.deepcopy(base)
        edit(req)
        levels.setdefault(level, set()).update(_allowed(req))

    probe("", lambda r: r.update({_UNKNOWN: 1}))
    probe("project", lambda r: r["project"].update({_UNKNOWN: 1}))
    probe("project.tempo_map[]", lambda r: r["project"]["tempo_map"][0].update({_UNKNOWN: 1}))
    probe("sections[]", lambda r: r["sections"][0].update({_UNKNOWN: 1}))
    probe("range", lambda r: r["range"].update({_UNKNOWN: 1}))
    probe("inputs", lambda r: r["inputs"].update({_UNKNOWN: 1}))
    for role in ("chords", "drums", "melody"):
        req = copy.deepcopy(base)
        req["inputs"][role] = {}
        kinds = set(re.findall(r"'([a-z_]+)'", _refusal(req).split("exactly one of", 1)[1]))
        assert kinds, role
        for kind in kinds:
            probe(f"inputs.{role}", lambda r, role=role, kind=kind: r["inputs"].update(
                {role: {kind: _KIND_VALUES[kind], _UNKNOWN: 1}}))
    return levels


def test_documented_request_keys_are_exactly_the_parsed_ones(base: dict[str, Any]) -> None:
    documented = _documented_request_keys()
    notes = documented.pop("notes[]")
    assert _parser_request_keys(base) == documented
    # inline notes: every documented key is accepted, anything else refused
    note = {k: 1 if k != "end_beat" else 2 for k in notes}
    for role in ("chords", "drums", "melody"):
        req = copy.deepcopy(base)
        req["inputs"][role] = {"notes": [dict(note)]}
        parse_request(req)
        req["inputs"][role]["notes"][0][_UNKNOWN] = 1
        assert _UNKNOWN in _refusal(req)


def test_the_documented_example_request_parses(tmp_path: Path) -> None:
    block = _section("Request v1").split("```json", 1)[1].split("```", 1)[0]
    request = json.loads(block)
    request["project"]["dir"] = str(tmp_path)
    for rel in ("chords.mid", "hum.wav"):
        (tmp_path / rel).write_bytes(b"x")
    parsed = parse_request(request)
    assert parsed.range_bars == (11, 13) and parsed.stems == ("drums", "bass", "keys", "lead")


def test_documented_manifest_fields_are_the_written_ones(project: Path) -> None:
    rows = {}
    for line in _section("Manifest v1").splitlines():
        cells = line.split("|")
        if line.startswith("| `") and len(cells) > 2:
            for name in re.findall(r"`([^`]+)`", cells[1]):
                rows[name.removesuffix("[]")] = cells[2]
    only_sometimes = {"range", "base_job", "base_jobs", "error", "warnings"}
    request = {
        "version": 1, "project": {"dir": str(project), "tempo_map": [{"beat": 0, "bpm": 120}]},
        "sections": [{"name": "Verse", "start_bar": 1, "end_bar": 2}],
        "inputs": {"chords": {"midi": "chords.mid"}}, "stems": ["bass"],
    }
    manifest = run_request(parse_request(request)).manifest
    assert set(manifest) == set(rows) - only_sometimes
    for field in ("placements", "sections"):
        documented = {n for n in re.findall(r"`([a-z_]+)`", rows[field])}
        assert set(manifest[field][0]) == documented, field
    regen = run_request(parse_request({**request, "range": {"start_bar": 1, "end_bar": 2}})).manifest
    assert set(regen) == set(rows) - {"error", "warnings"}
