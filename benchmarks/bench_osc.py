"""OSC benchmark: ping round trip under load, time to /accepted, idle memory of the server.

Run: .venv/bin/python benchmarks/bench_osc.py [--seconds 5] [--rate 500]
Starts ``python -m bridge.cli.server serve`` on a scratch project, then prints the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bridge.transports.osc import decode_datagram, encode_message  # noqa: E402
from tests.bridge.server_helpers import make_project, tiny_request  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load(port: int, rate: float, stop: threading.Event) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    ping = encode_message("/stembridge/ping", [])
    interval, nxt = 1.0 / rate, time.perf_counter()
    while not stop.is_set():
        s.sendto(ping, ("127.0.0.1", port))
        try:
            while s.recv(1024):
                pass
        except BlockingIOError:
            pass
        nxt += interval
        delay = nxt - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    s.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=500.0, help="background pings per second")
    args = ap.parse_args()
    project = make_project(Path(tempfile.mkdtemp()) / "song")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bridge.cli.server", "serve", "--project-dir", str(project),
                             "--osc-port", str(port)], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(2.0)
        server = ("127.0.0.1", port)
        for _ in range(50):  # warm up
            s.sendto(encode_message("/stembridge/ping", []), server)
            s.recv(1024)
        time.sleep(1.0)
        idle = rss_mb(proc.pid)
        stop = threading.Event()
        loader = threading.Thread(target=load, args=(port, args.rate, stop), daemon=True)
        loader.start()
        rtts: list[float] = []
        end = time.perf_counter() + args.seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            s.sendto(encode_message("/stembridge/ping", []), server)
            s.recv(1024)
            rtts.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.01)
        stop.set()
        loader.join()
        rtts.sort()
        accepted: list[float] = []
        for i in range(20):
            req = json.dumps(tiny_request(project, seed=i))
            t0 = time.perf_counter()
            s.sendto(encode_message("/stembridge/generate", [req]), server)
            while True:
                addr, _ = decode_datagram(s.recv(65535))[0]
                if addr == "/stembridge/accepted":
                    accepted.append((time.perf_counter() - t0) * 1000)
                    break
            time.sleep(0.05)
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        print(f"ping RTT under {args.rate:.0f} msg/s load: n={len(rtts)} p50={statistics.median(rtts):.3f} ms "
              f"p99={rtts[int(0.99 * (len(rtts) - 1))]:.3f} ms max={rtts[-1]:.3f} ms")
        accepted.sort()
        print(f"generate -> accepted: p50={statistics.median(accepted):.2f} ms max={accepted[-1]:.2f} ms (n=20)")
        print(f"idle server RSS: {idle:.1f} MB; after queueing 20 jobs: {rss_mb(proc.pid):.1f} MB; "
              f"torch mapped in server: {'torch' in maps}")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
