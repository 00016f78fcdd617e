"""MIDI controller triggers with in-memory ports."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import mido
import pytest

from bridge.app import BridgeServer, ServerConfig
from bridge.transports.midi import (
    Binding,
    InMemoryInput,
    TriggerRouter,
    dump_mapping,
    learn,
    load_mapping,
    parse_mapping,
    save_binding,
)
from tests.bridge.server_helpers import RUNNER, OscClient, make_project, tiny_request, wait_for

MAPPING = """
[[binding]]
port = "pad"
type = "note"
number = 36
channel = 10
action = "generate"

[[binding]]
port = "pad"
type = "cc"
number = 20
action = "cancel"
"""


def test_mapping_parses_and_round_trips() -> None:
    bindings = parse_mapping(MAPPING)
    assert bindings[0] == Binding(port="pad", kind="note", number=36, channel=10, action="generate")
    assert parse_mapping(dump_mapping(bindings)) == bindings
    with pytest.raises(ValueError, match="action must be one of"):
        parse_mapping('[[binding]]\ntype = "note"\nnumber = 1\naction = "explode"\n')
    with pytest.raises(ValueError, match="number must be 0-127"):
        parse_mapping('[[binding]]\ntype = "cc"\nnumber = 300\naction = "cancel"\n')


def test_router_presses_velocity_zero_cc_edges_and_debounce() -> None:
    now = [0.0]
    fired: list[str] = []
    router = TriggerRouter(parse_mapping(MAPPING), fired.append, clock=lambda: now[0])
    note = mido.Message("note_on", note=36, velocity=100, channel=9)
    assert router.feed("My pad 1", mido.Message("note_on", note=36, velocity=0, channel=9)) is None
    assert router.feed("My pad 1", mido.Message("note_on", note=36, velocity=100, channel=0)) is None  # channel 1
    assert router.feed("Other device", note) is None
    assert router.feed("My pad 1", note) == "generate"
    now[0] = 0.2
    assert router.feed("My pad 1", note) is None  # within 300 ms: counts once
    now[0] = 0.6
    assert router.feed("My pad 1", note) == "generate"
    cc = mido.Message("control_change", control=20, value=127)
    assert router.feed("My pad 1", cc) == "cancel"
    now[0] = 2.0
    assert router.feed("My pad 1", cc) is None  # still held: no new rising edge
    router.feed("My pad 1", cc.copy(value=0))
    assert router.feed("My pad 1", cc) == "cancel"
    assert fired == ["generate", "generate", "cancel", "cancel"]


def test_learn_binds_the_next_press_and_saves_it(tmp_path: Path) -> None:
    ports: dict[str, InMemoryInput] = {}

    def opener(name: str, cb: object) -> InMemoryInput:
        ports[name] = InMemoryInput(name, cb)  # type: ignore[arg-type]
        return ports[name]

    def press() -> None:
        wait_for(lambda: len(ports) == 2, 5)
        ports["Pad B"].send(mido.Message("note_off", note=40))
        ports["Pad B"].send(mido.Message("control_change", control=7, value=100, channel=2))

    t = threading.Thread(target=press)
    t.start()
    binding = learn("variation", ["Pad A", "Pad B"], opener=opener, timeout_s=5)
    t.join()
    assert binding == Binding(port="Pad B", kind="cc", number=7, channel=3, action="variation")
    path = tmp_path / "midi.toml"
    save_binding(path, binding)
    save_binding(path, Binding(port="Pad B", kind="cc", number=7, channel=3, action="cancel"))
    assert load_mapping(path) == [Binding(port="Pad B", kind="cc", number=7, channel=3, action="cancel")]
    assert learn("cancel", ["Pad A"], opener=opener, timeout_s=0.05) is None


def test_a_pad_press_reruns_the_last_request_through_the_server(tmp_path: Path) -> None:
    project = make_project(tmp_path / "song")
    (project / "stembridge").mkdir()
    (project / "stembridge" / "midi.toml").write_text(MAPPING)
    ports: dict[str, InMemoryInput] = {}

    def opener(name: str, cb: object) -> InMemoryInput:
        ports[name] = InMemoryInput(name, cb)  # type: ignore[arg-type]
        return ports[name]

    cfg = ServerConfig(project_dir=project, osc_port=0, runner=RUNNER, midi_ports=["Drum pad", "Keys"],
                       midi_opener=opener)
    with BridgeServer(cfg) as srv:
        assert list(ports) == ["Drum pad"]
        client = OscClient(srv.osc_port)
        first = client.generate(tiny_request(project))
        assert client.until_final(first)[0] == "/stembridge/done"
        ports["Drum pad"].send(mido.Message("note_on", note=36, velocity=90, channel=9))
        assert wait_for(lambda: len(srv.queue.recent_finished()) == 2, 60)
        rerun = srv.queue.recent_finished()[0]
        assert rerun.source == "midi" and rerun.parent == first and rerun.state == "done"
        assert rerun.request == srv.queue.get(first).request  # type: ignore[union-attr]
        manifest = json.loads((srv.layout.outbox / f"{rerun.job_id}.json").read_text())
        assert manifest["placements"][0]["take"] == 2
        client.close()
