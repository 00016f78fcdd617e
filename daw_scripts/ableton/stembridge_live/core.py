"""The StemBridge Live script without Live's framework: requests out, replies in, stems placed.

Everything runs from :meth:`StemBridgeCore.tick`, which the ControlSurface calls from Live's
``update_display`` timer (about every 100 ms). No threads: Live's API must only be touched from
its own thread, and a blocked tick freezes Live.

OSC in (on the reply port):
    replies from the bridge: /stembridge/pong, /accepted, /progress, /done, /error;
    triggers from a controller or the bridge: /stembridge/live/generate [prompt],
    /stembridge/live/regenerate, /stembridge/live/variation, /stembridge/live/cancel.
OSC out (to the bridge): /stembridge/ping, /generate <json or path>, /variation <job_id>,
    /cancel <job_id>, and /stembridge/client_error <source> <message> for errors on this side.
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from . import placer, song_reader
from .live_errors import LIVE_ERRORS
from .osc import OscArg
from .settings import Settings

if TYPE_CHECKING:
    from Live.Application import Application
    from Live.Song import Song

    from .transport import UdpTransport

#: Requests larger than this go as a file path, not inline JSON (UDP datagram limits).
INLINE_LIMIT = 7000


class StemBridgeCore:
    """Gathers requests from the set, talks to the bridge and places the stems that come back.

    Args:
        song: the Live set.
        app: Live's application object (version, view).
        transport: the OSC/UDP transport (anything with ``send`` and ``poll``).
        settings: script settings.
        log: writes a line to Live's Log.txt.
        show: shows a line in Live's status bar.
        clock: seconds, monotonic (injected for tests).
    """

    def __init__(self, song: Song, app: Application, transport: UdpTransport, settings: Settings,
                 log: Callable[[str], None], show: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.song = song
        self.app = app
        self.transport = transport
        self.settings = settings
        self._log = log
        self._show = show
        self._clock = clock
        self.connected = False
        self.pending: Dict[str, float] = {}  # request name -> time sent, until accepted
        self.jobs: Dict[str, Dict[str, Any]] = {}  # job_id -> {"progress", "message"}
        self.handlers: Dict[str, Callable[[List[Any]], object]] = {
            "/stembridge/pong": self._on_pong,
            "/stembridge/accepted": self._on_accepted,
            "/stembridge/progress": self._on_progress,
            "/stembridge/done": self._on_done,
            "/stembridge/error": self._on_error,
            "/stembridge/live/generate": lambda a: self.generate(str(a[0]) if a else None),
            "/stembridge/live/regenerate": lambda a: self.regenerate(),
            "/stembridge/live/variation": lambda a: self.variation(),
            "/stembridge/live/cancel": lambda a: self.cancel(),
        }
        self._send("/stembridge/ping")

    # -- plumbing ------------------------------------------------------------------------------
    def _send(self, address: str, *args: OscArg) -> None:
        try:
            self.transport.send(address, *args)
        except OSError as exc:
            self.error("osc", f"cannot reach the bridge at {self.settings.bridge_host}:"
                       f"{self.settings.bridge_port} ({exc}); start it with 'stembridge serve'", forward=False)

    def error(self, source: str, message: str, forward: bool = True) -> None:
        """Report an error in Live's log and status bar, and to the bridge."""
        self._log(f"StemBridge error ({source}): {message}")
        self._show(f"StemBridge: {message}")
        if forward:
            try:
                self.transport.send("/stembridge/client_error", "live:" + source, message)
            except OSError:
                pass  # the bridge is down: Live's log already has it

    def tick(self) -> None:
        """Handle every waiting message and check for requests nobody accepted."""
        for (address, args), _sender in self.transport.poll():
            handler = self.handlers.get(address)
            if handler is None:
                self._log(f"StemBridge: ignored OSC {address} {args}")
                continue
            try:
                handler(args)
            except (ValueError, TypeError, KeyError, IndexError, OSError, song_reader.SongError) as exc:
                self.error(address.rsplit("/", 1)[-1], str(exc))
            except LIVE_ERRORS as exc:  # a Live call refused outside the places that catch it
                self.error(address.rsplit("/", 1)[-1], f"Live refused: {exc}")
        now = self._clock()
        for name, sent in list(self.pending.items()):
            if now - sent > self.settings.accept_timeout_s:
                del self.pending[name]
                self.error("timeout", f"the bridge did not answer request {name} within "
                           f"{self.settings.accept_timeout_s:g} s; is 'stembridge serve' running on port "
                           f"{self.settings.bridge_port}?", forward=False)

    # -- state kept beside the set ------------------------------------------------------------
    def _state_path(self, project_dir: str) -> str:
        return os.path.join(project_dir, "stembridge", "daw", "live_state.json")

    def _load_state(self, project_dir: str) -> Dict[str, Any]:
        path = self._state_path(project_dir)
        if not os.path.isfile(path):
            return {"last_request": {}, "last_job": {}, "placed": []}
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        for key, empty in (("last_request", {}), ("last_job", {}), ("placed", [])):
            data.setdefault(key, empty)
        return dict(data)

    def _save_state(self, project_dir: str, state: Dict[str, Any]) -> None:
        _write_json(self._state_path(project_dir), state)

    # -- requests (out) ------------------------------------------------------------------------
    def build_request(self, prompt: Optional[str] = None) -> Dict[str, Any]:
        """Request v1 from the set: sections, tempo map, notes by role.

        Raises:
            SongError: the set is not ready (unsaved, duplicate locator names, …).
        """
        s = self.settings
        project_dir = song_reader.project_dir(self.song, s.project_dir)
        spans = song_reader.sections(self.song)
        window = song_reader.Span("song", spans[0].start_beat, spans[-1].end_beat)
        notes = song_reader.gather_notes(self.song, self.app, window, log=self._log)
        inputs: Dict[str, Any] = {role: {"notes": n} for role, n in notes.items() if n}
        hum = song_reader.hummed_melody(self.song, project_dir, log=self._log)
        if hum is not None:
            if "melody" in inputs:
                self._log("StemBridge: using the selected audio clip as the melody, not the MIDI melody")
            inputs["melody"] = hum
        return {
            "version": 1,
            "project": {"dir": project_dir, "sample_rate": s.sample_rate,
                        "tempo_map": song_reader.tempo_map(self.song)},
            "sections": [song_reader.section_json(self.song, sp) for sp in spans],
            "inputs": inputs,
            "prompt": s.prompt if prompt is None else prompt,
            "stems": list(s.stems),
            "model": s.model,
            "seed": s.seed,
            "variations": 1,
        }

    def _submit(self, request: Dict[str, Any], kind: str) -> str:
        project_dir = request["project"]["dir"]
        name = time.strftime("live-%Y%m%d-%H%M%S") + f"-{kind}-{int(self._clock() * 1000) % 100000:05d}"
        path = os.path.join(project_dir, "stembridge", "daw", name + ".json")
        text = json.dumps(request)
        _write_json(path, request)
        self._send("/stembridge/generate", text if len(text.encode("utf-8")) <= INLINE_LIMIT else path)
        self.pending[name] = self._clock()
        return name

    def generate(self, prompt: Optional[str] = None) -> Optional[str]:
        """Send a generation request for every section. Returns the request's name."""
        try:
            request = self.build_request(prompt)
        except song_reader.SongError as exc:
            self.error("generate", str(exc))
            return None
        name = self._submit(request, "generate")
        project_dir = request["project"]["dir"]
        state = self._load_state(project_dir)
        for section in request["sections"]:
            state["last_request"][section["name"]] = name
        self._save_state(project_dir, state)
        counts = ", ".join(f"{r} hummed audio" if "audio" in v else f"{r} {len(v['notes'])} notes"
                           for r, v in request["inputs"].items()) or "no notes"
        self._show(f"StemBridge: sent {len(request['sections'])} section(s) ({counts})")
        return name

    def regenerate(self) -> List[str]:
        """Regenerate the loop brace's bars (snapped to whole bars) of the sections it touches."""
        try:
            project_dir = song_reader.project_dir(self.song, self.settings.project_dir)
            spans = song_reader.sections(self.song)
        except song_reader.SongError as exc:
            self.error("regenerate", str(exc))
            return []
        bar0, bar1 = song_reader.snap_to_bars(self.song, song_reader.loop_span(self.song))
        state = self._load_state(project_dir)
        groups: Dict[str, Dict[str, Any]] = {}
        for sp in spans:
            s0 = song_reader.beat_to_bar(self.song, sp.start_beat)
            s1 = song_reader.beat_to_bar(self.song, sp.end_beat)
            if not (s0 < bar1 and bar0 < s1):
                continue
            req_name = state["last_request"].get(sp.name)
            if req_name is None:
                self.error("regenerate", f"section {sp.name!r} has not been generated yet; generate first")
                return []
            job = state["last_job"].get(sp.name, "")
            g = groups.setdefault(req_name + "|" + job, {"req": req_name, "job": job, "b0": s0, "b1": s1})
            g["b0"], g["b1"] = min(g["b0"], s0), max(g["b1"], s1)
        if not groups:
            self.error("regenerate", "the loop brace touches no section; put it over the bars to regenerate")
            return []
        sent = []
        for g in groups.values():
            with open(os.path.join(project_dir, "stembridge", "daw", g["req"] + ".json"), encoding="utf-8") as fh:
                request = json.load(fh)
            request["range"] = {"start_bar": _whole(max(bar0, g["b0"])), "end_bar": _whole(min(bar1, g["b1"]))}
            if g["job"]:
                request["base_job"] = g["job"]
            request["seed"] = (int(request.get("seed", 0)) + 1 + len(state.get("placed", []))) % (2**31 - 1)
            sent.append(self._submit(request, "regenerate"))
            self._show(f"StemBridge: regenerating bars {request['range']['start_bar']}-"
                       f"{request['range']['end_bar'] - 1}")
        return sent

    def _current_job(self) -> Optional[str]:
        project_dir = song_reader.project_dir(self.song, self.settings.project_dir)
        state = self._load_state(project_dir)
        pos = float(self.song.loop_start)
        for sp in song_reader.sections(self.song):
            if sp.start_beat <= pos < sp.end_beat and sp.name in state["last_job"]:
                return str(state["last_job"][sp.name])
        placed = state.get("placed") or []
        return str(placed[-1]) if placed else None

    def variation(self) -> Optional[str]:
        """Ask for a variation of the section at the loop brace (else the last job)."""
        job = self._current_job()
        if job is None:
            self.error("variation", "nothing generated in this set yet; generate first")
            return None
        self._send("/stembridge/variation", job)
        self._show(f"StemBridge: asked for a variation of {job}")
        return job

    def cancel(self) -> List[str]:
        """Cancel every job this script has seen running."""
        ids = list(self.jobs)
        for job in ids:
            self._send("/stembridge/cancel", job)
        self._show("StemBridge: cancel sent" if ids else "StemBridge: nothing running to cancel")
        return ids

    # -- replies (in) --------------------------------------------------------------------------
    def _on_pong(self, args: List[Any]) -> None:
        self.connected = True
        self._log(f"StemBridge: bridge answered (version {args[0] if args else '?'})")

    def _on_accepted(self, args: List[Any]) -> None:
        job = str(args[0])
        if self.pending:
            oldest = min(self.pending, key=lambda k: self.pending[k])
            del self.pending[oldest]
        self.jobs[job] = {"progress": 0.0, "message": "queued"}
        self._show(f"StemBridge: job {job} accepted")

    def _on_progress(self, args: List[Any]) -> None:
        job, fraction = str(args[0]), float(args[1])
        message = str(args[2]) if len(args) > 2 else ""
        self.jobs[job] = {"progress": fraction, "message": message}
        self._show(f"StemBridge: {int(round(fraction * 100))}% {message}")

    def _on_error(self, args: List[Any]) -> None:
        job = str(args[0]) if args else "?"
        code = str(args[1]) if len(args) > 1 else "error"
        message = str(args[2]) if len(args) > 2 else ""
        known = self.jobs.pop(job, None) is not None
        if self.pending and not known:  # a request rejected before it became a job
            self.pending.pop(min(self.pending, key=lambda k: self.pending[k]), None)
        self._log(f"StemBridge error ({code}) for job {job}: {message}")
        self._show(f"StemBridge: {message}")

    def _on_done(self, args: List[Any]) -> None:
        job, manifest_path = str(args[0]), str(args[1])
        self.jobs.pop(job, None)
        project_dir = song_reader.project_dir(self.song, self.settings.project_dir)
        if not os.path.isabs(manifest_path):
            manifest_path = os.path.join(project_dir, manifest_path)
        with open(manifest_path, encoding="utf-8") as fh:
            manifest = json.load(fh)
        state = self._load_state(project_dir)
        if job in state["placed"]:
            return
        status, errors = placer.place(self.song, self.app, manifest, project_dir, self._log)
        for p in manifest.get("placements", []):
            if isinstance(p, dict) and isinstance(p.get("section"), str):
                state["last_job"][p["section"]] = job
        state["placed"].append(job)
        self._save_state(project_dir, state)
        self._log(status)
        self._show(status)
        for message in errors:
            self.error("place", message)


def _whole(x: float) -> Any:
    return int(round(x)) if abs(x - round(x)) < 1e-6 else x


def _write_json(path: str, data: Any) -> None:
    """Write JSON through a temporary file and a rename (readers never see half a file)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, path)
