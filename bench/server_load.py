"""Throughput and latency of `imagegen serve` with the placeholder engine, and its overhead.

The server runs in its own process (uvicorn, as `imagegen serve` runs it) with a timed
placeholder engine that appends the wall time of every engine call to a file; this process
drives it over loopback. For each workload and engine slot count it prints:

- one client: p50/p99 latency in rounds interleaved with the baseline, the same request run
  in this process through `ImageService` (validation, engine, encoding, base64; no HTTP),
  so load from elsewhere on the machine slows both alike; the engine's own time; the share
  of the latency spent outside the engine, and the part HTTP and the server add over the
  in-process path;
- 2, 4, 8 concurrent keep-alive clients: requests/s, p50/p99 latency, and how busy the server
  keeps the engine (engine time / (wall time x engine slots)).

Finally an overload round (16 clients, 1 slot, queue 2) counts the 429s and checks that every
request got an answer, the refusals fast. Bounded, loopback only; clients and server share
the machine's CPUs, so throughput under load is a lower bound.

    python bench/server_load.py [--requests 40] [--clients 2,4,8]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

WORKLOADS: dict[str, dict[str, Any]] = {
    "gen 256x256": {"model": "placeholder", "prompt": "A cute baby lion", "size": "256x256"},
    "gen 1024x1024": {"model": "gpt-image-1", "prompt": "A cute baby lion", "size": "1024x1024"},
    "edit 512x512 + mask": {"model": "placeholder", "prompt": "a window", "size": "auto"},
}


# -- the server process ---------------------------------------------------------------------


def serve(port: int, times_file: str, concurrency: int, queue: int) -> None:
    import uvicorn

    from imagegen.engines import EngineResult, Job, PartialCallback
    from imagegen.engines.placeholder import PlaceholderEngine
    from imagegen.server import ServerSettings, create_app

    lock = threading.Lock()
    sink = open(times_file, "a", buffering=1)  # noqa: SIM115 - open for the process's life

    def timed(call: Callable[[], EngineResult]) -> EngineResult:
        start = time.perf_counter()
        try:
            return call()
        finally:
            with lock:
                sink.write(f"{time.perf_counter() - start:.6f}\n")

    class TimedPlaceholder(PlaceholderEngine):
        def generate(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
            return timed(lambda: super(TimedPlaceholder, self).generate(job, on_partial))

        def edit(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
            return timed(lambda: super(TimedPlaceholder, self).edit(job, on_partial))

    settings = ServerSettings(max_concurrency=concurrency, max_queue=queue)
    app = create_app(TimedPlaceholder(), settings)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """The server process for one configuration; engine times are read from its file."""

    def __init__(self, concurrency: int, queue: int) -> None:
        self.port = _free_port()
        self.times = Path(tempfile.mkstemp(prefix="imagegen-bench-", suffix=".txt")[1])
        self.process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                str(self.port),
                str(self.times),
                str(concurrency),
                str(queue),
            ],
            env={k: v for k, v in os.environ.items() if not k.startswith("IMAGEGEN_")},
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("bench server did not start") from None
                time.sleep(0.05)

    def engine_times(self) -> list[float]:
        return [float(line) for line in self.times.read_text().split()]

    def reset_times(self) -> None:
        self.times.write_text("")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self.times.unlink(missing_ok=True)


# -- requests --------------------------------------------------------------------------------


def _png(size: tuple[int, int], transparent_box: tuple[int, int, int, int] | None = None) -> bytes:
    from PIL import Image

    image = Image.linear_gradient("L").resize(size).convert("RGBA")
    if transparent_box:
        image = Image.new("RGBA", size, (0, 0, 0, 255))
        image.paste((0, 0, 0, 0), transparent_box)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


EDIT_IMAGE = _png((512, 512))
EDIT_MASK = _png((512, 512), (128, 128, 384, 384))


def send(client: Any, name: str) -> tuple[int, float, float]:
    """One request; returns status, end-to-end seconds and the server's processing seconds."""
    body = WORKLOADS[name]
    start = time.perf_counter()
    if name.startswith("edit"):
        files = [
            ("image", ("in.png", EDIT_IMAGE, "image/png")),
            ("mask", ("mask.png", EDIT_MASK, "image/png")),
        ]
        response = client.post("/v1/images/edits", data=body, files=files)
    else:
        response = client.post("/v1/images/generations", json=body)
    if response.status_code == 200:
        base64.b64decode(response.json()["data"][0]["b64_json"])  # as a client would
    elapsed = time.perf_counter() - start
    processing = float(response.headers.get("openai-processing-ms", "nan")) / 1000
    return response.status_code, elapsed, processing


class InProcess:
    """The baseline: the same request through `ImageService` in this process, no HTTP."""

    def __init__(self) -> None:
        from imagegen._imaging import load_input
        from imagegen._service import ImageService
        from imagegen.engines.placeholder import PlaceholderEngine

        self.service = ImageService(PlaceholderEngine())
        self.image, self.mask = load_input(EDIT_IMAGE), load_input(EDIT_MASK, param="mask")

    def run(self, name: str) -> float:
        from imagegen._models import parse_request

        start = time.perf_counter()
        endpoint = "edits" if name.startswith("edit") else "generations"
        request = parse_request(endpoint, dict(WORKLOADS[name]))
        images, mask = ([self.image], self.mask) if endpoint == "edits" else ([], None)
        rendered = self.service.run(self.service.prepare(endpoint, request, images, mask))
        base64.b64encode(rendered.images[0])
        return time.perf_counter() - start


def run_load(url: str, name: str, clients: int, total: int) -> tuple[list[int], list[float], float]:
    import httpx2

    local = threading.local()
    made: list[Any] = []

    def one(_: int) -> tuple[int, float]:
        if not hasattr(local, "client"):
            local.client = httpx2.Client(base_url=url, timeout=300)
            made.append(local.client)
        status, seconds, _processing = send(local.client, name)
        return status, seconds

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(one, range(max(total, clients))))
    wall = time.perf_counter() - start
    for client in made:
        client.close()
    return [status for status, _ in results], [seconds for _, seconds in results], wall


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:6.1f}"


def single_client(server: Server, baseline: InProcess, name: str, rounds: int) -> None:
    """Interleaved rounds (one in-process call, one HTTP request), so load from elsewhere on
    the machine slows both alike."""
    import httpx2

    inproc, e2e, processing = [], [], []
    with httpx2.Client(base_url=server.url, timeout=300) as client:
        for _ in range(2):  # warm-up: fonts, connections, thread pools
            send(client, name)
            baseline.run(name)
        server.reset_times()
        for _ in range(rounds):
            inproc.append(baseline.run(name))
            status, seconds, spent = send(client, name)
            assert status == 200, status
            e2e.append(seconds)
            processing.append(spent)
    engine = statistics.median(server.engine_times())
    p50, base = statistics.median(e2e), statistics.median(inproc)
    spent = statistics.median(processing)
    print(
        f"   1 client : p50 {ms(p50)} ms  p99 {ms(percentile(e2e, 0.99))} ms | in-process "
        f"{ms(base)} ms, engine {ms(engine)} ms, server processing {ms(spent)} ms"
    )
    print(
        f"              HTTP + server over in-process: {ms(p50 - base)} ms (x{p50 / base:.2f}); "
        f"outside the engine: {1 - engine / p50:.0%}; outside the in-process path: "
        f"{(p50 - base) / p50:.0%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=40, help="requests per measurement")
    parser.add_argument("--clients", default="2,4,8", help="concurrent clients under load")
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        port, times, concurrency, queue = args.serve
        serve(int(port), times, int(concurrency), int(queue))
        return
    levels = [int(level) for level in args.clients.split(",")]
    print(
        f"imagegen serve + placeholder engine on loopback; {os.cpu_count()} CPUs shared by "
        f"clients and server; {args.requests} requests per row\n"
    )
    baseline = InProcess()
    for slots in (1, 2):
        server = Server(concurrency=slots, queue=max(levels) * 2)
        try:
            print(f"== engine slots (--max-concurrency): {slots}")
            for name in WORKLOADS:
                print(f"-- {name}")
                single_client(server, baseline, name, args.requests)
                for clients in levels:
                    server.reset_times()
                    statuses, latencies, wall = run_load(server.url, name, clients, args.requests)
                    ok = statuses.count(200)
                    busy = sum(server.engine_times()) / (wall * slots)
                    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
                    line = (
                        f"   {clients} clients: {ok / wall:5.1f} req/s  p50 {ms(p50)} ms  "
                        f"p99 {ms(p99)} ms  engine busy {busy:.0%}"
                    )
                    if ok != len(statuses):
                        line += f"  non-200: {len(statuses) - ok}"
                    print(line)
        finally:
            server.close()
        print()
    overload(args.requests)


def overload(requests: int) -> None:
    """More clients than slots + queue: 429s with Retry-After, and every request answered."""
    server = Server(concurrency=1, queue=2)
    try:
        clients = 16
        total = max(requests, clients * 3)
        statuses, latencies, wall = run_load(server.url, "gen 256x256", clients, total)
        counts = {code: statuses.count(code) for code in sorted(set(statuses))}
        refused = [s for s, status in zip(latencies, statuses, strict=True) if status == 429]
        served = [s for s, status in zip(latencies, statuses, strict=True) if status == 200]
        print(
            f"== overload: {clients} clients, 1 slot, queue 2: {len(statuses)} requests in "
            f"{wall:.1f} s, answers {json.dumps(counts)}"
        )
        if refused and served:
            fast, slow = percentile(refused, 0.5), percentile(served, 0.5)
            print(f"   429 answered in p50 {ms(fast)} ms; 200 in p50 {ms(slow)} ms")
    finally:
        server.close()


if __name__ == "__main__":
    main()
