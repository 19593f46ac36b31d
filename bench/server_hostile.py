"""`imagegen serve` under attack: what each hostile client gets, and what it costs the server.

Starts `imagegen serve --engine placeholder` (default limits unless told otherwise) as a
subprocess, on loopback, with its log in a file, and samples its memory from /proc (VmRSS
every 20 ms, and VmHWM). Then, one after the other:

1. idle: /health latency (the baseline of the ratios below);
2. 1,500 slow-header connections, kept at 1,500 for `--attack-seconds` (each closed one is
   reopened, as an attacker would), plus 17 uploads trickled at one byte per 40 s: /health
   latency meanwhile, normal generations meanwhile (how many answered 200), what the tricklers
   got, and how much the log grew;
3. a 200 MB image part (the limit is 50 MB): the answer, and how much was sent before it came;
4. a 340 MB JSON edit (refused on its Content-Length), and the largest JSON edit the default cap
   lets through: peak memory against its size;
5. three 840 MB multipart uploads at once: what each got;
6. an 8000x8000 PNG of 7.8 KB (64 MP): peak memory for one such input;
7. a full queue (1 running + 16 waiting) of such 64 MP edits, then of 16-image edits of
   3 MB noise PNGs: peak memory against the documented bound;
8. `url` results past a 4 MB storage cap: what the folder holds.

    python bench/server_hostile.py [--attack-seconds 40] [--queue 16] [--skip-queue]

Linux only (/proc). Needs ~2 GB of free memory and ~1 GB of free disk in the temp folder.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
from _loopback import stop
from PIL import Image

MB = 1024 * 1024
PARTIAL = b"POST /v1/images/generations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"


# -- the server ------------------------------------------------------------------------------


class Server:
    """`imagegen serve` in a subprocess, its log in a file, its memory sampled."""

    def __init__(self, *args: str) -> None:
        self.log_path = Path(tempfile.mkstemp(prefix="imagegen-hostile-", suffix=".log")[1])
        self._log = self.log_path.open("w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGEN_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "imagegen", "serve", "--engine", "placeholder", "--port", "0"]
            + list(args),
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env=env,
        )
        deadline = time.monotonic() + 60
        while True:
            match = re.search(r"running on (http://127\.0\.0\.1:\d+)", self.log_path.read_text())
            if match:
                self.url = match[1]
                break
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("server did not start:\n" + self.log_path.read_text())
            time.sleep(0.05)
        self.port = int(self.url.rsplit(":", 1)[1])
        self._peak = 0
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _status(self, field: str) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    def _sample(self) -> None:
        while self._sampling:
            with contextlib.suppress(OSError):
                self._peak = max(self._peak, self._status("VmRSS"))
            time.sleep(0.02)

    def rss(self) -> int:
        return self._status("VmRSS")

    def reset_peak(self) -> None:
        """Start a new peak from the memory in use now."""
        with contextlib.suppress(OSError):  # VmHWM too, where the kernel lets us
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        self._peak = self.rss()

    def peak(self) -> int:
        return max(self._peak, self._status("VmHWM"))

    def log_bytes(self) -> int:
        return self.log_path.stat().st_size

    def close(self) -> None:
        self._sampling = False
        stop(self.process)
        self._log.close()
        self.log_path.unlink(missing_ok=True)


@contextlib.contextmanager
def server(*args: str) -> Iterator[Server]:
    running = Server(*args)
    try:
        yield running
    finally:
        running.close()


# -- clients -------------------------------------------------------------------------------------


def connect(port: int, data: bytes = b"", timeout: float = 60) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if data:
        sock.sendall(data)
    return sock


def head(method: str, path: str, **headers: str | int) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer_of(sock: socket.socket, timeout: float = 120) -> bytes:
    sock.settimeout(timeout)
    received = b""
    with contextlib.suppress(OSError):
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def status(answer: bytes) -> str:
    parts = answer.split(b" ", 2)
    return parts[1].decode() if len(parts) > 1 else "closed"


def health_latency(url: str, count: int, pause: float = 0.0) -> list[float]:
    times = []
    with httpx2.Client(timeout=30) as http:
        for _ in range(count):
            start = time.perf_counter()
            assert http.get(url + "/health").status_code == 200
            times.append(time.perf_counter() - start)
            time.sleep(pause)
    return times


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def mb(size: float) -> str:
    return f"{size / MB:,.0f} MB"


def one_bit_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def noise_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, "PNG")
    return buffer.getvalue()


# -- attacks ---------------------------------------------------------------------------------------


def slow_connections_and_trickles(srv: Server, seconds: float, baseline: list[float]) -> None:
    count, trickles = 1500, 17
    stop = threading.Event()
    slow: list[socket.socket] = []
    reopened = [0]

    def keep_slow() -> None:  # 1,500 open at all times: each one the server closes is reopened
        for _ in range(count):
            slow.append(connect(srv.port, PARTIAL))
        while not stop.is_set():
            for index, sock in enumerate(slow):
                sock.setblocking(False)
                try:
                    closed = sock.recv(4096) == b""
                except BlockingIOError:
                    closed = False
                except OSError:
                    closed = True
                if closed or sock.fileno() < 0:
                    sock.close()
                    with contextlib.suppress(OSError):
                        slow[index] = connect(srv.port, PARTIAL)
                        reopened[0] += 1
            stop.wait(0.2)
        for sock in slow:
            sock.close()

    answers: list[bytes] = []

    def trickle() -> None:  # one byte of the body every 40 s, as in the report
        upload = head(
            "POST", "/v1/images/generations", content_type="application/json", content_length=200
        )
        with connect(srv.port, upload) as sock:
            sock.settimeout(40)
            received = b""
            while not stop.is_set():
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    with contextlib.suppress(OSError):
                        sock.sendall(b" ")
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                received += chunk
            answers.append(received)

    log_before = srv.log_bytes()
    srv.reset_peak()
    rss_before = srv.rss()
    threads = [threading.Thread(target=keep_slow)]
    threads += [threading.Thread(target=trickle) for _ in range(trickles)]
    for thread in threads:
        thread.start()
    time.sleep(2)  # the 1,500 are open
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    with httpx2.Client(timeout=30) as http:
        while time.monotonic() < deadline:
            start = time.perf_counter()
            assert http.get(srv.url + "/health").status_code == 200
            latencies.append(time.perf_counter() - start)
            if len(latencies) % 10 == 0:
                body = {"prompt": "x", "size": "64x64", "model": "placeholder"}
                code = http.post(srv.url + "/v1/images/generations", json=body).status_code
                statuses[code] = statuses.get(code, 0) + 1
            time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    grown = srv.log_bytes() - log_before
    p50, p99, worst = (
        statistics.median(latencies),
        percentile(latencies, 0.99),
        max(latencies),
    )
    idle = statistics.median(baseline)
    print(f"\n2. {count:,} slow-header connections + {trickles} trickled uploads, {seconds:.0f} s")
    print(
        f"   /health: {len(latencies)} requests, p50 {ms(p50)}, p99 {ms(p99)}, max {ms(worst)}"
        f" (idle p50 {ms(idle)}: x{p50 / idle:.1f})"
    )
    print(f"   generations meanwhile: {statuses}")
    print(f"   slow connections closed by the server and reopened: {reopened[0]:,}")
    got = [status(answer) for answer in answers]
    print(f"   trickled uploads got: {sorted(got)}")
    print(
        f"   log grew by {grown:,} bytes ({grown / max(1, reopened[0]):.1f} per closed connection)"
    )
    print(f"   memory: {mb(rss_before)} before, peak {mb(srv.peak())}")


def oversized_part(srv: Server) -> None:
    part = 200 * MB
    prefix = (
        b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n"
    )
    request = head(
        "POST",
        "/v1/images/edits",
        content_type="multipart/form-data; boundary=b",
        content_length=len(prefix) + part + 8,
    )
    sent = 0
    start = time.perf_counter()
    with connect(srv.port, request + prefix) as sock:
        chunk = b"\0" * MB
        with contextlib.suppress(OSError):
            while sent < part:
                sock.sendall(chunk)
                sent += len(chunk)
        answer = answer_of(sock)
    took = ms(time.perf_counter() - start)
    print(
        f"\n3. a 200 MB image part (limit 50 MB): {status(answer)} after {took}; the client got"
        f" {mb(sent)} into its socket before the server stopped reading"
    )


def json_edits(srv: Server) -> None:
    length = 340 * MB
    start = time.perf_counter()
    with connect(
        srv.port,
        head("POST", "/v1/images/edits", content_type="application/json", content_length=length),
    ) as sock:
        answer = answer_of(sock)
    print(f"\n4. a 340 MB JSON edit: {status(answer)} in {ms(time.perf_counter() - start)}, unread")
    # The largest that passes the default 128 MB cap: 6 data URLs of ~15 MB images (~20 MB each).
    image = noise_png(2200)[: 15 * MB]
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    body = json.dumps({"prompt": "x", "model": "placeholder", "images": [{"image_url": url}] * 6})
    data = body.encode()

    def peak_of(content: bytes) -> tuple[int, int]:
        srv.reset_peak()
        before = srv.rss()
        response = httpx2.post(
            srv.url + "/v1/images/edits",
            content=content,
            headers={"content-type": "application/json"},
            timeout=600,
        )
        return response.status_code, srv.peak() - before

    # First refused right after parsing (a field of the wrong type): what reading it costs.
    code, peak = peak_of(json.dumps({"n": "many", **json.loads(body)}).encode())
    print(
        f"   a {mb(len(data))} JSON edit of 6 x {mb(len(image))} images, refused once read:"
        f" {code}; peak +{mb(peak)} ({peak / len(data):.2f} x its size)"
    )
    code, peak = peak_of(data)
    print(
        f"   the same edit, made: {code}; peak +{mb(peak)}"
        f" ({peak / len(data):.2f} x its size, with the engine's work)"
    )


def big_uploads(srv: Server) -> None:
    # 16 images of 50 MB and a mask of 40 MB: 840 MB, no part over the 50 MB limit. Streamed
    # from one buffer, so the three clients hold 50 MB between them.
    image = b"\0" * (50 * MB - 64)
    boundary = b"hostile-bench-boundary"
    prompt = b'--%s\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nx\r\n' % boundary

    def part(name: bytes) -> bytes:
        return (
            b'--%s\r\nContent-Disposition: form-data; name="%s"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" % (boundary, name)
        )

    pieces = [prompt] + [part(b"image[]"), image, b"\r\n"] * 16
    pieces += [part(b"mask"), image[: 40 * MB], b"\r\n", b"--%s--\r\n" % boundary]
    length = sum(len(piece) for piece in pieces)
    results: list[str] = []

    def upload() -> None:
        start = time.perf_counter()
        request = head(
            "POST",
            "/v1/images/edits",
            content_type="multipart/form-data; boundary=" + boundary.decode(),
            content_length=length,
        )
        with connect(srv.port, request, timeout=600) as sock:
            with contextlib.suppress(OSError):
                for piece in pieces:
                    sock.sendall(piece)
            answer = answer_of(sock, timeout=600)
        results.append(f"{status(answer)} in {ms(time.perf_counter() - start)}")

    srv.reset_peak()
    before = srv.rss()
    threads = [threading.Thread(target=upload) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"\n5. three {mb(length)} uploads at once: {sorted(results)}")
    print(f"   memory: peak +{mb(srv.peak() - before)}")


def bomb(srv: Server) -> float:
    data = one_bit_png(8000)
    srv.reset_peak()
    before = srv.rss()
    start = time.perf_counter()
    response = httpx2.post(
        srv.url + "/v1/images/edits",
        files={"image": ("bomb.png", data, "image/png")},
        data={"prompt": "x", "model": "placeholder"},
        timeout=600,
    )
    peak = srv.peak() - before
    print(
        f"\n6. an 8000x8000 PNG of {len(data):,} bytes: {response.status_code} in"
        f" {time.perf_counter() - start:.1f} s; peak +{mb(peak)} ({peak / 64e6:.1f} bytes per input"
        f" pixel; its RGBA alone is {mb(64e6 * 4)})"
    )
    return peak


def full_queue(srv: Server, size: int, name: str, send: Callable[[], int]) -> int:
    srv.reset_peak()
    before = srv.rss()
    with ThreadPoolExecutor(size) as pool:
        statuses = list(pool.map(lambda _: send(), range(size)))
    peak = srv.peak() - before
    counts = {code: statuses.count(code) for code in sorted(set(statuses))}
    print(f"   {size} x {name}: {counts}; peak +{mb(peak)} ({mb(peak / size)} per request)")
    return peak


def storage(cap: str) -> None:
    with server("--max-storage", cap) as srv, httpx2.Client(timeout=60) as http:
        body = {"prompt": "x", "model": "placeholder", "size": "512x512", "response_format": "url"}
        for index in range(60):
            http.post(srv.url + "/v1/images/generations", json={**body, "prompt": f"n{index}"})
        folders = list(Path(tempfile.gettempdir()).glob("imagegen-images-*"))
        mine = max(folders, key=lambda folder: folder.stat().st_mtime)
        held = sum(path.stat().st_size for path in mine.glob("*.png"))
        print(
            f"\n8. 60 url results of 512x512 with --max-storage {cap}: the folder holds {mb(held)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--attack-seconds", type=float, default=40)
    parser.add_argument("--queue", type=int, default=16, help="max-queue of the server")
    parser.add_argument("--skip-queue", action="store_true", help="skip the full-queue runs")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4000:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(8000, hard), hard))

    with server("--max-queue", str(args.queue)) as srv:
        print(f"server: {srv.url}, memory at start {mb(srv.rss())}")
        baseline = health_latency(srv.url, 200)
        idle = statistics.median(baseline)
        print(f"\n1. idle /health: p50 {ms(idle)}, p99 {ms(percentile(baseline, 0.99))}")
        slow_connections_and_trickles(srv, args.attack_seconds, baseline)
        oversized_part(srv)
        json_edits(srv)
        big_uploads(srv)
        single = bomb(srv)
        if not args.skip_queue:
            admitted = 1 + args.queue
            print(
                f"\n7. a full queue: {admitted} requests at once (1 running, {args.queue} waiting)"
            )
            pixels = one_bit_png(8000)

            def pixel_edit() -> int:
                files = {"image": ("bomb.png", pixels, "image/png")}
                data = {"prompt": "x", "model": "placeholder"}
                with httpx2.Client(timeout=3600) as http:
                    return http.post(
                        srv.url + "/v1/images/edits", files=files, data=data
                    ).status_code

            peak = full_queue(srv, admitted, "64 MP edits", pixel_edit)
            print(f"   x{peak / single:.2f} the peak of one such request")
            images = [noise_png(1000) for _ in range(16)]

            def heavy_edit() -> int:
                files = [
                    ("image[]", (f"{i}.png", data, "image/png")) for i, data in enumerate(images)
                ]
                with httpx2.Client(timeout=3600) as http:
                    response = http.post(
                        srv.url + "/v1/images/edits",
                        files=files,
                        data={"prompt": "x", "model": "placeholder", "size": "1024x1024"},
                    )
                    return response.status_code

            body = sum(len(data) for data in images)
            full_queue(srv, admitted, f"16-image edits ({mb(body)} of PNGs, 16 MP)", heavy_edit)
        print(f"\n   memory at the end: {mb(srv.rss())}")
    storage("4MB")


if __name__ == "__main__":
    main()
