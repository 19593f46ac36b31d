"""Batch throughput under a rate limit: `imagegen.batch` against a plain `AsyncOpenAI` +
`asyncio.gather` loop with the official SDK's default retries, on the same server.

The server (another process, uvicorn) answers every image request after a fixed latency, and
admits at most `--rpm` requests per minute: a GCRA limiter (a token bucket refilled
continuously, burst `--burst`); a request above the limit gets a 429 at once, with
`retry-after` (whole seconds, rounded up) and, unless `--hints seconds`, `retry-after-ms`.
With `--headers` (the default) every answer also carries OpenAI's `x-ratelimit-limit-requests`,
`-remaining-requests` and `-reset-requests`.

Each client makes `--rows` images (`n=1`) and saves them; `--concurrency` requests at most in
flight (the gather loop: a semaphore of the same size; also run unbounded, every row at once,
as the plainest loop is written). Printed per client: images made, rows failed, 429s received,
images per minute and the ratio to the limit (the issue's goal: >= 0.95 for imagegen).

    python bench/batch_throughput.py [--rpm 720] [--latency 0.5] [--rows 240]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _loopback import free_port, tiny_png, wait_for


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.1f}s"


def serve(port: int, rpm: int, burst: int, latency: float, hints: str, headers: bool) -> None:
    """The rate-limited server. GET /stats returns what it did."""
    import uvicorn

    interval = 60.0 / rpm
    tolerance = interval * (burst - 1)
    state = {"tat": 0.0, "ok": 0, "limited": 0}
    image = tiny_png()

    def limit_headers(now: float) -> list[tuple[bytes, bytes]]:
        if not headers:
            return []
        remaining = max(0, math.floor((now + tolerance + interval - state["tat"]) / interval))
        reset = max(0.0, state["tat"] - now)
        return [
            (b"x-ratelimit-limit-requests", str(rpm).encode()),
            (b"x-ratelimit-remaining-requests", str(min(remaining, burst)).encode()),
            (b"x-ratelimit-reset-requests", _duration(reset).encode()),
        ]

    async def app(
        scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        if scope["path"] == "/stats":
            body = json.dumps(state).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        now = time.monotonic()
        tat = max(state["tat"], now)
        if tat - now > tolerance:
            state["limited"] += 1
            wait = tat - tolerance - now
            raw = [
                (b"content-type", b"application/json"),
                (b"retry-after", str(math.ceil(wait)).encode()),
            ]
            if hints == "ms":
                raw.append((b"retry-after-ms", str(math.ceil(wait * 1000)).encode()))
            body = json.dumps(
                {
                    "error": {
                        "message": "Rate limit reached.",
                        "type": "requests",
                        "code": "rate_limit_exceeded",
                    }
                }
            ).encode()
            await send(
                {"type": "http.response.start", "status": 429, "headers": raw + limit_headers(now)}
            )
            await send({"type": "http.response.body", "body": body})
            return
        state["tat"] = tat + interval
        answer_headers = [(b"content-type", b"application/json")] + limit_headers(now)
        await asyncio.sleep(latency)
        state["ok"] += 1
        body = json.dumps({"created": int(time.time()), "data": [{"b64_json": image}]}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": answer_headers})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


def _stats(base: str) -> dict[str, Any]:
    import httpx2

    data: dict[str, Any] = httpx2.get(base + "/stats").json()
    return data


async def _imagegen(url: str, rows: int, concurrency: int, folder: Path) -> tuple[int, int, float]:
    from imagegen import batch

    source = folder / "prompts.txt"
    source.write_text("".join(f"catalogue image number {i}\n" for i in range(rows)))
    start = time.monotonic()
    report = await batch.arun(
        source,
        out_dir=folder / "imagegen",
        base_url=url,
        api_key="x",
        defaults={"model": "gpt-image-1-mini", "size": "1024x1024"},
        concurrency=concurrency,
        metadata=False,
    )
    return report.images, report.failed + report.pending, time.monotonic() - start


async def _gather(
    url: str, rows: int, concurrency: int | None, folder: Path
) -> tuple[int, int, float]:
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="x")  # the SDK's default retries (2)
    out = folder / f"sdk-{concurrency or 'all'}"
    out.mkdir()
    gate = asyncio.Semaphore(concurrency or rows)

    async def one(i: int) -> bool:
        async with gate:
            try:
                result = await client.images.generate(
                    model="gpt-image-1-mini", prompt=f"catalogue image number {i}", size="1024x1024"
                )
            except openai.APIError:
                return False
        assert result.data and result.data[0].b64_json
        (out / f"{i:04d}.png").write_bytes(base64.b64decode(result.data[0].b64_json))
        return True

    start = time.monotonic()
    done = await asyncio.gather(*(one(i) for i in range(rows)))
    elapsed = time.monotonic() - start
    await client.close()
    return sum(done), rows - sum(done), elapsed


def _run(
    name: str,
    scenario: list[str],
    args: argparse.Namespace,
    client: Callable[[str, Path], Awaitable[tuple[int, int, float]]],
) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), *scenario])
    try:
        wait_for(port, server)
        base = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory() as folder:
            images, failed, elapsed = asyncio.run(client(base + "/v1", Path(folder)))
        stats = _stats(base)
    finally:
        server.terminate()
        server.wait(10)
    per_minute = images * 60 / elapsed
    return {
        "client": name,
        "images": images,
        "failed": failed,
        "429s": stats["limited"],
        "seconds": elapsed,
        "per_minute": per_minute,
        "ratio": per_minute / args.rpm,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rpm", type=int, default=720, help="requests per minute the server admits"
    )
    parser.add_argument(
        "--burst", type=int, default=2, help="requests admitted at once above the rate"
    )
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per answered request")
    parser.add_argument("--rows", type=int, default=240)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hints", choices=["ms", "seconds"], default=None)
    parser.add_argument("--headers", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args()
    if args.serve:
        serve(
            args.serve, args.rpm, args.burst, args.latency, args.hints or "ms", bool(args.headers)
        )
        return

    common = ["--rpm", str(args.rpm), "--burst", str(args.burst), "--latency", str(args.latency)]
    scenarios = {
        "x-ratelimit-* headers, 429s with retry-after-ms": [*common, "--hints", "ms", "--headers"],
        "no headers, 429s with retry-after-ms": [*common, "--hints", "ms", "--no-headers"],
        "no headers, 429s with Retry-After in whole seconds": [
            *common,
            "--hints",
            "seconds",
            "--no-headers",
        ],
    }
    rows, n = args.rows, args.concurrency
    clients: dict[str, Callable[[str, Path], Awaitable[tuple[int, int, float]]]] = {
        f"imagegen batch (concurrency {n})": lambda url, folder: _imagegen(url, rows, n, folder),
        f"SDK gather ({n} at a time)": lambda url, folder: _gather(url, rows, n, folder),
        "SDK gather (all at once)": lambda url, folder: _gather(url, rows, None, folder),
    }
    print(
        f"{rows} images per client; server: {args.rpm} requests/min (burst {args.burst}), "
        f"{args.latency:g} s per image; goal: imagegen >= 0.95 x the limit"
    )
    for title, scenario in scenarios.items():
        print(f"\n{title}")
        print(
            f"{'client':<30}{'images':>7}{'failed':>7}{'429s':>6}{'seconds':>9}{'img/min':>9}{'ratio':>7}"
        )
        results = [_run(name, scenario, args, client) for name, client in clients.items()]
        for r in results:
            print(
                f"{r['client']:<30}{r['images']:>7}{r['failed']:>7}{r['429s']:>6}"
                f"{r['seconds']:>9.1f}{r['per_minute']:>9.1f}{r['ratio']:>7.3f}"
            )
        ours = results[0]
        verdict = "met" if ours["ratio"] >= 0.95 and ours["failed"] == 0 else "NOT met"
        print(f"goal (issue 10): imagegen >= 0.95 x the limit, no row failed -> {verdict}")


if __name__ == "__main__":
    main()
