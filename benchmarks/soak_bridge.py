"""Soak the bridge under load and faults, and prove no job or take was lost.

Starts ``python -m bridge.cli.server serve`` as a subprocess (with the tests' fast runner, which
wraps the real pipeline) on a project folder, then, interleaved with real jobs sent over OSC and
the mailbox:

- sends fuzzed OSC datagrams: random bytes, truncated or garbled valid messages, bundles (valid,
  nested, with broken element sizes), datagrams near the 64 KiB UDP limit, wrong argument types,
  unknown addresses; a ping after every batch measures the answer time under load;
- drops malformed mailbox files: bad JSON, JSON that is not an object, nesting past the recursion
  limit, files over the request size limit, binary and invalid UTF-8, symbolic links out of the
  project, and half-written ``.tmp`` files that are completed and renamed later (those are real
  jobs that must run once);
- SIGKILLs the server at random moments while a job runs, and restarts it;
- fills the project's disk mid-job: the project lives on a small tmpfs mounted for the soak
  (needs root); without it this phase is skipped with a message.

It prints datagrams and files tried, server crashes (exits nobody asked for), jobs accepted,
finished and lost, partial takes visible (``*.partial`` folders, leftover temp files, render
folders or outbox manifests without a finished job, or stems shorter than their manifest says)
and the ping p99 in milliseconds; the exit status is 1 unless crashes, lost jobs and partial takes
are all 0. Every loop is bounded in count and time; all traffic goes to 127.0.0.1.

    python benchmarks/soak_bridge.py                  # 100,000 datagrams, 1,000 files, 20 kills
    python benchmarks/soak_bridge.py --datagrams 2000 --files 50 --kills 2
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bridge.job.layout import new_job_id  # noqa: E402
from bridge.job.request import MAX_REQUEST_BYTES  # noqa: E402
from bridge.transports.osc import DatagramError, decode_datagram, encode_message  # noqa: E402
from tests.bridge.server_helpers import RUNNER, make_project, tiny_request  # noqa: E402

#: Fuzzed datagrams sent between two pings.
BATCH = 250
#: Seconds to wait for a pong before the ping counts as unanswered.
PING_TIMEOUT_S = 5.0
#: Seconds after which an unanswered ping is sent again (the first may be dropped behind a flood).
PING_RESEND_S = 1.0
#: Seconds a restarted server gets to say it is serving.
START_TIMEOUT_S = 30.0
FINAL_STATES = ("done", "failed", "cancelled")


@dataclass
class Tally:
    """What the soak saw."""

    datagrams: int = 0
    files: int = 0
    crashes: int = 0
    kills: int = 0
    accepted: set[str] = field(default_factory=set)
    finished: dict[str, str] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    pings: list[float] = field(default_factory=list)
    unanswered_pings: int = 0
    disk_fill: str = "not run"
    disk_filled_by_bridge: int = 0
    notes: list[str] = field(default_factory=list)

    def p99_ms(self) -> float:
        """The 99th percentile ping answer time in milliseconds (unanswered pings count as the timeout)."""
        times = sorted(self.pings + [PING_TIMEOUT_S] * self.unanswered_pings)
        if not times:
            return float("nan")
        return 1000.0 * times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]

    def ok(self) -> bool:
        """True when everything a musician cares about is as it should be."""
        return (self.crashes == 0 and not self.lost and not self.partial and self.unanswered_pings == 0
                and len(self.finished) == len(self.accepted) and self.disk_filled_by_bridge == 0)


class Bridge:
    """The bridge server as a subprocess; restarts count unexpected exits as crashes."""

    def __init__(self, project: Path, port: int, log_dir: Path, tally: Tally) -> None:
        self.project, self.port, self.log_dir, self.tally = project, port, log_dir, tally
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Start the server and wait until it serves (its stdout says so)."""
        self.starts += 1
        out = open(self.log_dir / f"server-{self.starts}.out", "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli.server", "serve", "--project-dir", str(self.project),
             "--osc-port", str(self.port), "--runner", RUNNER],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=out, stderr=subprocess.STDOUT,
        )
        out.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode} while starting; see "
                                   f"{self.log_dir / f'server-{self.starts}.out'}")
            if b"serving" in (self.log_dir / f"server-{self.starts}.out").read_bytes():
                return
            time.sleep(0.05)
        raise RuntimeError(f"the server did not start within {START_TIMEOUT_S} s")

    def check_alive(self) -> None:
        """Count and restart a server that exited on its own."""
        if self.proc is not None and self.proc.poll() is not None:
            self.tally.crashes += 1
            self.tally.notes.append(f"server exited by itself with {self.proc.returncode} (start {self.starts})")
            self.start()

    def kill(self) -> None:
        """SIGKILL the server and start it again."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.tally.kills += 1
        self.start()

    def stop(self) -> None:
        """Stop cleanly (SIGINT); a server that does not stop in 20 s counts as a crash."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            code = -9
        if code != 0:
            self.tally.crashes += 1
            self.tally.notes.append(f"the server's clean stop ended with exit status {code}")


class Client:
    """Two loopback UDP sockets: one for fuzz (its replies are drained and ignored), one for jobs and pings."""

    def __init__(self, port: int) -> None:
        self.server = ("127.0.0.1", port)
        self.fuzz = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.fuzz.bind(("127.0.0.1", 0))
        self.fuzz.setblocking(False)
        self.jobs = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.jobs.bind(("127.0.0.1", 0))
        self.jobs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)

    def close(self) -> None:
        self.fuzz.close()
        self.jobs.close()

    def send_fuzz(self, data: bytes) -> None:
        try:
            self.fuzz.sendto(data, self.server)
        except OSError as exc:  # EMSGSIZE cannot happen below 65507 bytes; ENOBUFS can under load
            if exc.errno not in (errno.ENOBUFS, errno.EAGAIN):
                raise

    def drain_fuzz(self) -> None:
        for _ in range(100_000):
            try:
                self.fuzz.recv(65535)
            except BlockingIOError:
                return

    def replies(self, timeout: float) -> Iterator[tuple[str, list[Any]]]:
        """Replies on the job socket until ``timeout`` seconds pass without one."""
        self.jobs.settimeout(timeout)
        for _ in range(100_000):
            try:
                data = self.jobs.recv(65535)
            except TimeoutError:
                return
            try:
                yield from decode_datagram(data)
            except DatagramError:
                continue

    def ping(self, tally: Tally, on_reply: Callable[[str, list[Any]], None]) -> None:
        """Ping until a pong comes (re-sent every :data:`PING_RESEND_S`, as UDP may drop it behind a
        flood); the time counts from the first send. Other replies go to ``on_reply``."""
        t0 = time.monotonic()
        deadline = t0 + PING_TIMEOUT_S
        for _ in range(int(PING_TIMEOUT_S / PING_RESEND_S) + 1):
            if time.monotonic() >= deadline:
                break
            self.jobs.sendto(encode_message("/stembridge/ping", []), self.server)
            resend_at = min(deadline, time.monotonic() + PING_RESEND_S)
            while time.monotonic() < resend_at:
                for address, args in self.replies(max(0.01, resend_at - time.monotonic())):
                    if address == "/stembridge/pong":
                        tally.pings.append(time.monotonic() - t0)
                        self._pass_on_waiting(on_reply)
                        return
                    on_reply(address, args)
                    if time.monotonic() >= resend_at:
                        break
        tally.unanswered_pings += 1

    def _pass_on_waiting(self, on_reply: Callable[[str, list[Any]], None]) -> None:
        """Hand replies already waiting to ``on_reply``; late pongs of re-sent pings are dropped."""
        self.jobs.setblocking(False)
        try:
            for _ in range(1000):
                data = self.jobs.recv(65535)
                with contextlib.suppress(DatagramError):
                    for address, args in decode_datagram(data):
                        if address != "/stembridge/pong":
                            on_reply(address, args)
        except BlockingIOError:
            pass
        finally:
            self.jobs.setblocking(True)


# -- fuzz -----------------------------------------------------------------------------------
_ADDRESSES = ["/stembridge/ping", "/stembridge/generate", "/stembridge/variation", "/stembridge/cancel",
              "/stembridge/status", "/stembridge/client_error", "/stembridge/nope", "/other"]


def _rand_bytes(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


def _bundle(rng: random.Random, elements: list[bytes], *, broken: bool = False) -> bytes:
    out = b"#bundle\0" + rng.randbytes(8)
    for e in elements:
        size = len(e)
        if broken:
            size = rng.choice([-4, -1, 0, size + 4, size - 1, 2**31 - 1, 3])
        out += struct.pack(">i", size) + e
    return out


def fuzz_datagram(rng: random.Random, project: Path) -> bytes:
    """One malformed, odd or valid-but-pointless datagram."""
    kind = rng.randrange(10)
    valid = encode_message(rng.choice(_ADDRESSES), [rng.choice(["x", 3, 1.5, b"\x00\x01"]) for _ in range(rng.randrange(3))])
    if kind == 0:
        return _rand_bytes(rng, rng.randint(1, 200))
    if kind == 1:
        return valid[: rng.randint(1, max(1, len(valid) - 1))]
    if kind == 2:
        data = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 3:
        return _bundle(rng, [valid, encode_message("/stembridge/status", ["no-such-job"])])
    if kind == 4:
        inner = valid
        for _ in range(rng.randint(1, 12)):
            inner = _bundle(rng, [inner])
        return inner
    if kind == 5:
        return _bundle(rng, [valid, _rand_bytes(rng, 4 * rng.randint(1, 10))], broken=rng.random() < 0.7)
    if kind == 6:
        size = rng.choice([60_000, 65_000, 65_507])
        if rng.random() < 0.5:
            return b"/stembridge/generate\0\0\0\0,s\0\0" + b"{" * (size - 32) + b"\0" * 4
        return _rand_bytes(rng, size)
    if kind == 7:  # wrong types and counts
        address = rng.choice(_ADDRESSES[:6])
        args: list[Any] = [rng.choice([7, 2.5, b"blob", "a", "b" * 3000]) for _ in range(rng.randrange(4))]
        return encode_message(address, args)
    if kind == 8:  # requests that parse as OSC but are bad requests
        bad = rng.choice(['{"version": 2}', "{", "[]", "../../etc/passwd", "/etc/passwd", "\u00e9" * 50,
                          json.dumps(tiny_request(project, stems=["kazoo"])),
                          json.dumps(tiny_request(project, seed="three"))])
        return encode_message("/stembridge/generate", [bad])
    return encode_message("/stembridge/" + "".join(rng.choice("abcxyz/_") for _ in range(rng.randint(0, 30))), [])


def drop_bad_file(rng: random.Random, inbox: Path, outside: Path, n: int) -> None:
    """Write one malformed mailbox file (atomically, as a DAW script would, unless it is a link)."""
    kind = n % 7
    name = f"bad-{n:05d}.json"
    target = inbox / name
    if kind == 5:  # a link out of the project (to a valid request, or to nothing)
        link_to = outside if rng.random() < 0.5 else outside.with_name(f"missing-{n}.json")
        target.symlink_to(link_to)
        return
    tmp = inbox / f".{name}.tmp"
    with open(tmp, "wb") as fh:
        if kind == 0:
            fh.write(rng.choice([b"{", b'{"version": 1,', b"not json", b"{}}", b"nul\0l"]))
        elif kind == 1:
            fh.write(rng.choice([b"[]", b"3", b'"text"', b"null", b'{"action": "cancel"}',
                                 b'{"version": 1, "action": "explode", "job_id": "x"}']))
        elif kind == 2:
            fh.write(b"[" * 100_000 + b"]" * 100_000)
        elif kind == 3:  # over the size limit; sparse, so it costs no space on the tmpfs
            fh.truncate(MAX_REQUEST_BYTES + 1 + rng.randrange(1000))
        elif kind == 4:
            fh.write(rng.randbytes(rng.randint(1, 4096)))
        else:
            fh.write(b'{"version": 1, "prompt": "\xff\xfe\xc3"}')
    os.replace(tmp, target)


# -- the soak -------------------------------------------------------------------------------
class Soak:
    """Drives one bridge through the whole plan; see the module docstring."""

    def __init__(self, args: argparse.Namespace, work: Path, project: Path, on_tmpfs: bool) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.work, self.project, self.on_tmpfs = work, project, on_tmpfs
        self.tally = Tally()
        self.port = _free_port()
        self.bridge = Bridge(project, self.port, work, self.tally)
        self.client = Client(self.port)
        self.inbox = project / "stembridge" / "inbox"
        self.outside = work / "outside-request.json"  # a valid request the links point at
        self.outside.write_text(json.dumps(tiny_request(project)))
        self.half_written: list[tuple[Path, str]] = []
        self.mailbox_jobs: set[str] = set()
        self.final_replies: dict[str, str] = {}
        self.deadline = time.monotonic() + args.time_limit

    # replies on the job socket
    def on_reply(self, address: str, args: list[Any]) -> None:
        # the final state of a job is read from the queue and the outbox at the end; replies only
        # tell the soak when to move on
        if address == "/stembridge/accepted" and args:
            self.tally.accepted.add(str(args[0]))
        elif address in ("/stembridge/done", "/stembridge/error") and args and args[0]:
            self.final_replies[str(args[0])] = address

    def time_left(self) -> bool:
        return time.monotonic() < self.deadline

    def send_job(self, prompt: str = "", **overrides: Any) -> None:
        """A real job over OSC (its acceptance arrives as a reply)."""
        req = tiny_request(self.project, prompt=prompt, seed=self.rng.randrange(2**31 - 1), **overrides)
        self.client.jobs.sendto(encode_message("/stembridge/generate", [json.dumps(req)]), self.client.server)

    def send_job_and_wait(self, prompt: str, timeout: float = 10.0) -> str | None:
        """Send a job and return its id once accepted and running (None if that did not happen in time)."""
        before = set(self.tally.accepted)
        self.send_job(prompt=prompt)
        deadline = min(self.deadline, time.monotonic() + timeout)
        job: str | None = None
        while time.monotonic() < deadline and job is None:
            self.collect(0.05)
            new = self.tally.accepted - before
            job = next(iter(new)) if new else None
        while job is not None and time.monotonic() < deadline:
            if self.running_job() == job:
                return job
            self.collect(0.05)
        return None

    def drop_job(self, prompt: str = "") -> None:
        """A real job through the mailbox, named like a job id, written atomically."""
        job_id = new_job_id()
        req = tiny_request(self.project, prompt=prompt, seed=self.rng.randrange(2**31 - 1))
        tmp = self.inbox / f"{job_id}.json.tmp"
        tmp.write_text(json.dumps(req))
        os.replace(tmp, self.inbox / f"{job_id}.json")
        self.mailbox_jobs.add(job_id)

    def start_half_written(self) -> None:
        """Begin a request file the way a slow writer does; it is finished by :meth:`finish_half_written`."""
        job_id = new_job_id()
        text = json.dumps(tiny_request(self.project, seed=self.rng.randrange(2**31 - 1)))
        tmp = self.inbox / f"{job_id}.json.tmp"
        tmp.write_text(text[: len(text) // 2])
        self.half_written.append((tmp, text))

    def finish_half_written(self) -> None:
        for tmp, text in self.half_written:
            tmp.write_text(text)
            os.replace(tmp, tmp.with_suffix(""))
            self.mailbox_jobs.add(tmp.name[: -len(".json.tmp")])
        self.half_written.clear()

    def fuzz(self, count: int) -> None:
        sent = 0
        while sent < count and self.time_left():
            for _ in range(min(BATCH, count - sent)):
                self.client.send_fuzz(fuzz_datagram(self.rng, self.project))
                sent += 1
                self.tally.datagrams += 1
            self.client.drain_fuzz()
            self.bridge.check_alive()
            self.client.ping(self.tally, self.on_reply)
        self.client.drain_fuzz()

    def files(self, count: int) -> None:
        for _ in range(count):
            try:
                drop_bad_file(self.rng, self.inbox, self.outside, self.tally.files)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                self.tally.disk_filled_by_bridge += 1  # outside the disk-full phase: the bridge filled it
                continue
            finally:
                self.tally.files += 1
        self.clean_failed()

    def clean_failed(self) -> None:
        """Remove rejected soak files once each has its error note (keeps the tmpfs from filling)."""
        failed = self.inbox / "failed"
        for path in list(failed.glob("bad-*.json")):
            note = path.with_name(path.name[: -len(".json")] + ".error.txt")
            if note.is_file():
                path.unlink()
                note.unlink()

    def running_job(self) -> str | None:
        try:
            status = json.loads((self.project / "stembridge" / "outbox" / "status.json").read_text())
        except (OSError, ValueError):
            return None
        running = status.get("running") or []
        return str(running[0]["job_id"]) if running else None

    def collect(self, timeout: float) -> None:
        for address, args in self.client.replies(timeout):
            self.on_reply(address, args)

    def kill_during_a_job(self) -> None:
        if self.send_job_and_wait(f"slow {self.rng.randint(5, 20)}", 20.0) is None:
            self.tally.notes.append("no job was running when a kill was due; killed anyway")
        time.sleep(self.rng.uniform(0.0, 0.6))
        self.collect(0.01)
        self.bridge.kill()

    def fill_disk(self) -> None:
        if not self.on_tmpfs:
            self.tally.disk_fill = "skipped: could not mount a tmpfs for the project (run as root)"
            return
        job = self.send_job_and_wait("slow 10", 20.0)
        filler = self.project / "filler.bin"
        written = 0
        with open(filler, "wb") as fh:
            block = b"\0" * (1 << 20)
            for _ in range(10_000):  # bounded: the tmpfs is far smaller than 10 GiB
                try:
                    fh.write(block)
                    fh.flush()
                    written += len(block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
        # top up the last bytes so not even a small file fits
        with contextlib.suppress(OSError), open(self.project / "filler2.bin", "wb") as fh2:
            for _ in range(1 << 16):
                fh2.write(b"\0" * 512)
                fh2.flush()
        self.send_job()  # accepted or refused with an answer while the disk is full, never silently dropped
        # keep the disk full for a while: the running job must end (well or with an error) and be
        # recorded once there is room again, and the bridge must keep answering meanwhile
        full_until = min(self.deadline, time.monotonic() + self.args.disk_full_s)
        for _ in range(10_000):
            if time.monotonic() >= full_until:
                break
            self.client.ping(self.tally, self.on_reply)
            self.collect(0.05)
        answered_while_full = job is not None and job in self.final_replies
        filler.unlink()
        with contextlib.suppress(FileNotFoundError):
            (self.project / "filler2.bin").unlink()
        self.tally.disk_fill = (f"filled {written // (1 << 20)} MiB for {self.args.disk_full_s:g} s while job "
                                f"{job or '(none running)'} ran; its answer came "
                                f"{'while the disk was full' if answered_while_full else 'after room was made'}")

    def run(self) -> Tally:
        a = self.args
        self.bridge.start()
        rounds = max(a.kills, 1) + 1
        fill_round = rounds // 2 if a.disk_fill else -1
        for r in range(rounds):
            if not self.time_left():
                self.tally.notes.append(f"time limit reached in round {r + 1} of {rounds}")
                break
            self.send_job()
            self.send_job(prompt="slow 3")
            self.drop_job()
            self.start_half_written()
            share = a.datagrams // rounds + (1 if r < a.datagrams % rounds else 0)
            fshare = a.files // rounds + (1 if r < a.files % rounds else 0)
            self.fuzz(share // 2)
            self.files(fshare)
            self.finish_half_written()
            self.fuzz(share - share // 2)
            if r == fill_round:
                self.fill_disk()
            if r < a.kills:
                self.kill_during_a_job()
        self.settle()
        self.bridge.stop()
        self.client.close()
        self.audit()
        return self.tally

    def settle(self) -> None:
        """Wait (bounded) until every job the queue knows is final."""
        deadline = time.monotonic() + float(self.args.settle)
        while time.monotonic() < deadline:
            self.bridge.check_alive()
            self.collect(0.2)
            self.clean_failed()
            if self.inbox_empty() and not self.active_jobs():
                return
        self.tally.notes.append("jobs were still active when the settle time ran out")

    def inbox_empty(self) -> bool:
        return not [p for p in self.inbox.glob("*.json")]

    def active_jobs(self) -> list[str]:
        return [j for j, state in self.queue_states().items() if state not in FINAL_STATES]

    def queue_states(self) -> dict[str, str]:
        db = self.project / "stembridge" / "queue.sqlite3"
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as con:
            return dict(con.execute("SELECT job_id, state FROM jobs").fetchall())

    def audit(self) -> None:
        """Count accepted, finished, lost and partial, from the queue and the files on disk."""
        states = self.queue_states()
        t = self.tally
        # mailbox jobs count as accepted once the queue has them (a rejected file never gets there)
        t.accepted |= {j for j in self.mailbox_jobs if j in states}
        outbox = self.project / "stembridge" / "outbox"
        renders = self.project / "stembridge" / "renders"
        for job in sorted(t.accepted):
            manifest = outbox / f"{job}.json"
            state = states.get(job)
            if state not in FINAL_STATES or not manifest.is_file():
                t.lost.append(f"{job} (queue: {state}, manifest: {'yes' if manifest.is_file() else 'no'})")
                continue
            doc = json.loads(manifest.read_text())
            t.finished[job] = str(doc.get("status"))
            if doc.get("status") == "done":
                for p in doc.get("placements", []):
                    wav = Path(p["file"]) if Path(p["file"]).is_absolute() else self.project / p["file"]
                    if not wav.is_file():
                        wav = renders / job / Path(p["file"]).name
                    if not _full_wav(wav, int(p["length_samples"])):
                        t.partial.append(f"{wav.relative_to(self.project)} is missing or shorter than its manifest")
        lost_mailbox = [j for j in self.mailbox_jobs if j not in states
                        and not (self.inbox / "failed" / f"{j}.error.txt").is_file()]
        t.lost += [f"{j} (mailbox file neither queued nor rejected)" for j in lost_mailbox]
        manifests = {p.stem for p in outbox.glob("*.json") if p.name != "status.json"}
        for entry in sorted(renders.iterdir()) if renders.is_dir() else []:
            if entry.name.endswith(".partial") or entry.name.startswith(".") or entry.suffix == ".tmp":
                t.partial.append(f"renders/{entry.name}")
            elif entry.is_dir() and ".unannounced" not in entry.name and entry.name not in manifests:
                t.partial.append(f"renders/{entry.name} (no manifest)")
        for entry in sorted(outbox.iterdir()):
            if entry.name.startswith(".") or entry.name.endswith(".tmp"):
                t.partial.append(f"outbox/{entry.name}")
        log_file = self.project / "stembridge" / "stembridge.log"
        if log_file.is_file():
            t.notes.append(f"stembridge.log grew to {log_file.stat().st_size / 1e6:.1f} MB")
        if t.disk_filled_by_bridge:
            t.notes.append(f"{t.disk_filled_by_bridge} mailbox files could not be written: the disk was full "
                           "outside the disk-full phase")
        set_aside = [e.name for e in renders.glob("*.unannounced*")]
        if set_aside:
            t.notes.append(f"takes published but never announced, kept aside: {', '.join(set_aside)}")
        counts: dict[str, int] = {}
        for s in t.finished.values():
            counts[s] = counts.get(s, 0) + 1
        t.notes.append("finished jobs by status: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))


def _full_wav(path: Path, frames: int) -> bool:
    """True if ``path`` is a readable WAV of exactly ``frames`` samples per channel, all present."""
    import soundfile

    try:
        data, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, soundfile.LibsndfileError):
        return False
    return int(data.shape[0]) == frames


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def project_folder(work: Path, size_mb: int, *, want_tmpfs: bool) -> Iterator[tuple[Path, bool]]:
    """A project folder on a fresh tmpfs of ``size_mb`` MiB, or a plain folder when mounting is refused."""
    mount = work / "disk"
    mount.mkdir()
    mounted = False
    if want_tmpfs:
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(mount)],
                             capture_output=True, text=True, check=False)
        mounted = out.returncode == 0
        if not mounted:
            print(f"note: could not mount a tmpfs ({out.stderr.strip() or out.returncode}); the disk-full "
                  "phase is skipped", file=sys.stderr)
    try:
        yield make_project(mount / "song"), mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datagrams", type=int, default=100_000, help="fuzzed OSC datagrams (default 100000)")
    p.add_argument("--files", type=int, default=1_000, help="malformed mailbox files (default 1000)")
    p.add_argument("--kills", type=int, default=20, help="SIGKILLs during jobs (default 20)")
    p.add_argument("--no-disk-fill", dest="disk_fill", action="store_false", help="skip the disk-full phase")
    p.add_argument("--disk-full-s", type=float, default=5.0, help="seconds the disk stays full (default 5)")
    p.add_argument("--tmpfs-mb", type=int, default=64, help="size of the project's tmpfs in MiB (default 64)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--time-limit", type=float, default=1800.0, help="seconds for the traffic (default 1800)")
    p.add_argument("--settle", type=float, default=180.0, help="seconds to let jobs finish at the end (default 180)")
    p.add_argument("--keep", action="store_true", help="keep the work folder (its path is printed)")
    args = p.parse_args(argv)
    for name in ("datagrams", "files", "kills"):
        if getattr(args, name) < 0:
            p.error(f"--{name} must be 0 or more")
    work = Path(tempfile.mkdtemp(prefix="stembridge-soak-"))
    t0 = time.monotonic()
    try:
        with project_folder(work, args.tmpfs_mb, want_tmpfs=args.disk_fill) as (project, on_tmpfs):
            soak = Soak(args, work, project, on_tmpfs)
            try:
                tally = soak.run()
            finally:
                soak.bridge.stop()
                if args.keep and on_tmpfs:
                    shutil.copytree(project, work / "song-copy", symlinks=True, dirs_exist_ok=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(tally, time.monotonic() - t0, work if args.keep else None)
    return 0 if tally.ok() else 1


def report(t: Tally, seconds: float, kept: Path | None) -> None:
    """Print the figures (the CLI of this benchmark prints; nothing else does)."""
    print(f"datagrams tried:      {t.datagrams}")
    print(f"mailbox files tried:  {t.files}")
    print(f"server kills:         {t.kills}")
    print(f"server crashes:       {t.crashes}")
    print(f"jobs accepted:        {len(t.accepted)}")
    print(f"jobs finished:        {len(t.finished)}")
    print(f"jobs lost:            {len(t.lost)}")
    print(f"partial takes:        {len(t.partial)}")
    print(f"ping p99:             {t.p99_ms():.1f} ms over {len(t.pings)} pings ({t.unanswered_pings} unanswered)")
    print(f"disk full:            {t.disk_fill}")
    print(f"wall time:            {seconds:.1f} s")
    for line in t.lost[:20]:
        print(f"  lost: {line}")
    for line in t.partial[:20]:
        print(f"  partial: {line}")
    for line in t.notes:
        print(f"  note: {line}")
    if kept is not None:
        print(f"  work folder kept: {kept}")
    print("OK" if t.ok() else "FAILED")


if __name__ == "__main__":
    sys.exit(main())
