"""Property-based fuzzing of the datagram decoder and the request path of the job service."""

from __future__ import annotations

import json
import struct
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.job.layout import ProjectLayout
from bridge.job.request import RequestError, parse_request
from bridge.server.queue import JobQueue
from bridge.server.replies import Replier
from bridge.server.scheduler import CancelOutcome
from bridge.server.service import JobService, Origin
from bridge.transports.osc import MAX_BUNDLE_DEPTH, DatagramError, decode_datagram, encode_message
from tests.bridge.server_helpers import make_project, tiny_request

_osc_text = st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=30)
osc_args = st.lists(st.one_of(_osc_text, st.integers(-(2**31), 2**31 - 1),
                              st.floats(allow_nan=False, width=32), st.binary(min_size=1, max_size=20)), max_size=5)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_decode_datagram_accepts_or_raises_datagram_error(data: bytes) -> None:
    try:
        messages = decode_datagram(data)
    except DatagramError:
        return
    for address, args in messages:
        assert isinstance(address, str) and isinstance(args, list)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), min_size=1,
               max_size=40), osc_args)
def test_encoded_messages_decode_to_the_same_values(tail: str, args: list[Any]) -> None:
    address = "/" + tail
    [(addr, decoded)] = decode_datagram(encode_message(address, args))
    assert addr == address
    assert len(decoded) == len(args)
    for a, b in zip(args, decoded, strict=True):
        if isinstance(a, float):
            assert b == struct.unpack(">f", struct.pack(">f", a))[0]
        else:
            assert a == b


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 120))
def test_mutated_and_truncated_datagrams_never_escape(noise: bytes, cut: int) -> None:
    base = encode_message("/stembridge/generate", ['{"version": 1}', 3, 1.5])
    for data in (base[:cut] + noise, noise + base, b"#bundle\0" + bytes(8) + struct.pack(">i", len(noise)) + noise):
        try:
            decode_datagram(data)
        except DatagramError:
            pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


class _NoScheduler:
    intake_lock = threading.Lock()

    def wake(self) -> None:
        pass

    def running(self) -> None:
        return None

    def cancel(self, job_id: str) -> CancelOutcome:
        return CancelOutcome("unknown", "none")


class _Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, list[Any]]] = []

    def send(self, target: str, address: str, args: Any) -> None:
        self.sent.append((target, address, list(args)))


def _mutations(project: Path) -> st.SearchStrategy[dict[str, Any]]:
    base = tiny_request(project)
    keys = st.sampled_from(["version", "project", "sections", "range", "inputs", "stems", "model", "seed",
                            "variations", "base_job", "prompt", "section_prompts", "extra"])
    return st.dictionaries(keys, json_values, max_size=4).map(lambda patch: {**base, **patch})


def test_request_fuzz_gives_accepted_or_a_coded_error(tmp_path: Path) -> None:
    project = make_project(tmp_path / "song")
    layout = ProjectLayout(project).ensure()
    queue = JobQueue(layout.queue_db, max_active=10_000)
    sink = _Sink()
    disp = JobService(project, queue, _NoScheduler(), Replier(sink), lambda: {})  # type: ignore[arg-type]
    origin = Origin(source="osc", reply="osc:127.0.0.1:1", trusted=True)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(_mutations(project))
    def check(request: dict[str, Any]) -> None:
        outcome = disp.generate(json.dumps(request), origin)
        if outcome.ok:
            parse_request(request)  # the queued request is valid
        else:
            assert outcome.code and outcome.message
            try:
                parse_request(request)
            except RequestError as exc:
                assert exc.code == outcome.code

    check()

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=300))
    def check_bytes(data: bytes) -> None:
        outcome = disp.generate(data, origin)
        assert outcome.ok or outcome.code

    check_bytes()
    queue.close()


# Bundle framing that python-osc 1.10.2's OscBundle gets wrong (see bridge/transports/osc.py's docstring).
_MSG = encode_message("/stembridge/ping", [])


def test_a_negative_bundle_element_size_is_rejected_at_once() -> None:
    # OscBundle loops forever on this 20-byte datagram; the receive thread must not.
    with pytest.raises(DatagramError, match="does not fit"):
        decode_datagram(b"#bundle\0" + bytes(8) + struct.pack(">i", -4))


def test_a_bundle_element_larger_than_the_datagram_is_rejected() -> None:
    with pytest.raises(DatagramError, match="does not fit"):
        decode_datagram(b"#bundle\0" + bytes(8) + struct.pack(">i", 400) + _MSG)


def test_a_bundle_element_that_is_neither_message_nor_bundle_is_reported() -> None:
    with pytest.raises(DatagramError, match="not an OSC message"):
        decode_datagram(b"#bundle\0" + bytes(8) + struct.pack(">i", 4) + b"abcd")


def _bundle(*elements: bytes, timetag: bytes = bytes(8)) -> bytes:
    return b"#bundle\0" + timetag + b"".join(struct.pack(">i", len(e)) + e for e in elements)


def test_bundles_keep_arrival_order_whatever_their_time_tags() -> None:
    later = _bundle(encode_message("/stembridge/status", []), timetag=struct.pack(">II", 0xF0000000, 0))
    data = _bundle(later, encode_message("/stembridge/ping", []))
    assert [a for a, _ in decode_datagram(data)] == ["/stembridge/status", "/stembridge/ping"]


def test_nesting_deeper_than_the_limit_is_rejected() -> None:
    data = _MSG
    for _ in range(MAX_BUNDLE_DEPTH + 2):
        data = _bundle(data)
    with pytest.raises(DatagramError, match="nested deeper"):
        decode_datagram(data)


def test_a_request_path_too_long_for_the_file_system_is_a_path_error(tmp_path: Path) -> None:
    project = make_project(tmp_path / "song")
    queue = JobQueue(ProjectLayout(project).ensure().queue_db)
    service = JobService(project, queue, _NoScheduler(), Replier(_Sink()), lambda: {})  # type: ignore[arg-type]
    origin = Origin(source="osc", reply=None, trusted=True)
    outcome = service.generate("b" * 3000, origin)
    assert (outcome.ok, outcome.code) == (False, "path") and "cannot be read" in outcome.message
    request = tiny_request(project, inputs={"chords": {"midi": "c" * 3000 + ".mid"}})
    outcome = service.generate(request, origin)
    assert (outcome.ok, outcome.code) == (False, "path")
    queue.close()
