"""`imagegen serve --engine placeholder` against a bare Pillow card server, side by side.

The peer is what an app's own test double would be: a Starlette app, written below, that
draws a gradient in two colours of the prompt, a frosted rounded card, the prompt wrapped on it
and the size line under it with Pillow for every request, in a worker thread, encodes a PNG at
zlib level 1 and answers OpenAI's JSON (`b64_json`, or `url` to the file it wrote). Both run as
subprocesses of this script under uvicorn with the same settings (h11, one worker, no access
log); `imagegen serve` runs as users start it (a drawing process per CPU, two engine slots
each), with a queue long enough that no request is refused (the peer refuses none either).

One asyncio client in this process drives both over loopback keep-alive connections, in
interleaved rounds (imagegen, peer, imagegen, ...), so load from elsewhere on the machine slows
both alike; the ratio imagegen / peer of a row is the median of the rounds' ratios. Every
request has its own prompt, so neither server answers from a cache. For each size, response
format and number of concurrent clients it prints requests/s (median of the rounds), p50 and
p99 latency (over all rounds) and the ratio. Client and servers share the machine's CPUs.

    python bench/placeholder_speed.py [--rounds 7] [--seconds 1.5] [--clients 1,8,64]
        [--sizes 256x256,1024x1024] [--formats b64_json,url]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _loopback import free_port, stop, wait_for

TARGET_RATIO = 0.8


# -- the peer: a bare Pillow card server ------------------------------------------------------


def peer_app(storage: Path) -> Any:
    """The bare server: per request, a gradient, a frosted card, the prompt and the size."""
    import hashlib
    import io
    import textwrap
    import uuid
    from functools import lru_cache

    import anyio
    from PIL import Image, ImageDraw, ImageFont, ImageOps
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    @lru_cache(maxsize=64)
    def font(size: int) -> Any:
        return ImageFont.load_default(size=size)

    def render(prompt: str, width: int, height: int) -> bytes:
        digest = hashlib.sha256(prompt.encode()).digest()
        dark, light = tuple(d // 2 for d in digest[:3]), tuple(128 + d // 2 for d in digest[3:6])
        ramp = Image.linear_gradient("L").rotate(digest[6] % 90, expand=False, fillcolor=128)
        image = ImageOps.colorize(ramp.resize((width, height)), dark, light)
        short = min(width, height)
        margin, pad = round(short * 0.07), round(short * 0.05)
        box = (margin, height // 4, width - margin, height - height // 4)
        card = Image.new("L", (box[2] - box[0], box[3] - box[1]), 0)
        corner = round(short * 0.03)
        right, bottom = card.width - 1, card.height - 1
        ImageDraw.Draw(card).rounded_rectangle((0, 0, right, bottom), radius=corner, fill=204)
        image.paste((255, 255, 255), box, card)
        draw = ImageDraw.Draw(image)
        text_font = font(max(9, round(short * 0.06)))
        columns = max(4, int((box[2] - box[0] - 2 * pad) / (text_font.size * 0.55)))
        lines = textwrap.wrap(prompt, columns)[:4]
        step = round(text_font.size * 1.2)
        top = box[1] + pad
        for line in lines:
            draw.text((width / 2, top), line, font=text_font, anchor="ma", fill=dark)
            top += step
        label = font(max(9, round(short * 0.03)))
        label_line = f"{width} x {height}"
        draw.text((width / 2, top + step // 2), label_line, font=label, anchor="ma", fill=dark)
        buffer = io.BytesIO()
        image.save(buffer, "PNG", compress_level=1)
        return buffer.getvalue()

    async def generations(request: Request) -> Response:
        body = await request.json()
        width, height = (int(v) for v in body.get("size", "1024x1024").split("x"))
        png = await anyio.to_thread.run_sync(render, body["prompt"], width, height)
        if body.get("response_format") == "url":
            name = f"{uuid.uuid4().hex}.png"
            await anyio.to_thread.run_sync((storage / name).write_bytes, png)
            item = {"url": f"{request.base_url}files/{name}"}
        else:
            item = {"b64_json": base64.b64encode(png).decode()}
        answer = {"created": int(time.time()), "data": [item]}
        return Response(json.dumps(answer), media_type="application/json")

    return Starlette(routes=[Route("/v1/images/generations", generations, methods=["POST"])])


def serve_peer(port: int, storage: str) -> None:
    import uvicorn

    uvicorn.run(
        peer_app(Path(storage)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        http="h11",
    )


# -- the servers -------------------------------------------------------------------------------


class Server:
    """One server subprocess on a free loopback port; its stderr goes to a file, shown if it
    fails."""

    def __init__(self, name: str, argv: list[str], port: int, folder: Path) -> None:
        self.name, self.port = name, port
        self.log = folder / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGEN_")}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(argv, env=env, stdout=log, stderr=log)
        try:
            wait_for(port, self.process, timeout=120)
        except RuntimeError:
            self.close()
            raise RuntimeError(f"{name} did not start:\n{self.log.read_text()}") from None

    def close(self) -> None:
        stop(self.process)


def start_servers(folder: Path) -> list[Server]:
    ours, peer = free_port(), free_port()
    slots = str(os.cpu_count() or 1)
    imagegen = Server(
        "imagegen",
        [
            *(sys.executable, "-m", "imagegen", "serve", "--engine", "placeholder"),
            *("--host", "127.0.0.1", "--port", str(ours), "--log-level", "warning"),
            *("--max-concurrency", slots, "--max-queue", "1024"),
            *("--storage-dir", str(folder / "imagegen-files"), "--data-dir", str(folder / "data")),
        ],
        ours,
        folder,
    )
    (folder / "peer-files").mkdir()
    bare = Server(
        "peer",
        [sys.executable, __file__, "--peer", str(peer), str(folder / "peer-files")],
        peer,
        folder,
    )
    return [imagegen, bare]


# -- the client ----------------------------------------------------------------------------------

_prompts = itertools.count()


def _request(port: int, size: str, response_format: str) -> bytes:
    prompt = f"A cute baby lion in the savanna at dawn, picture {next(_prompts)}"
    body = json.dumps(
        {"model": "placeholder", "prompt": prompt, "size": size, "response_format": response_format}
    ).encode()
    head = (
        f"POST /v1/images/generations HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")
    )
    return status, await reader.readexactly(length)


def _check(body: bytes, response_format: str) -> None:
    """One answer of each server and format is read as a client would: a PNG or a link."""
    item = json.loads(body)["data"][0]
    if response_format == "url":
        assert item["url"].startswith("http://127.0.0.1:"), item
    else:
        assert base64.b64decode(item["b64_json"])[:8] == b"\x89PNG\r\n\x1a\n"


async def _round(
    port: int, size: str, response_format: str, clients: int, seconds: float
) -> tuple[float, list[float]]:
    """`clients` keep-alive connections send requests back to back for `seconds`; returns
    requests/s and the latencies."""
    latencies: list[float] = []
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(clients)]
    for reader, writer in connections[:1]:  # warm-up, and one answer checked
        status, body = await _exchange(reader, writer, _request(port, size, response_format))
        assert status == 200, body[:300]
        _check(body, response_format)
    start = time.perf_counter()
    deadline = start + seconds

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            status, body = await _exchange(reader, writer, _request(port, size, response_format))
            assert status == 200, body[:300]
            latencies.append(time.perf_counter() - sent)

    await asyncio.gather(*(client(*connection) for connection in connections))
    wall = time.perf_counter() - start
    for _, writer in connections:
        writer.close()
    return len(latencies) / wall, latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def compare(servers: list[Server], args: argparse.Namespace) -> None:
    """One row per size, format and client count: `args.rounds` rounds of each server, in
    pairs, alternating which goes first; the ratio is the median of the pairs' ratios, so a
    change of load between pairs cancels out."""
    ours, peer = servers
    rows: list[tuple[str, float]] = []
    head = (
        f"{'size':>9} {'format':>8} {'clients':>7} | "
        + " | ".join(f"{s.name + ' req/s':>14} {'p50 ms':>7} {'p99 ms':>7}" for s in servers)
        + f" | {'ratio':>5}"
    )
    print(head)
    print("-" * len(head))
    for size in args.sizes.split(","):
        for response_format in args.formats.split(","):
            for clients in (int(c) for c in args.clients.split(",")):
                rates: dict[str, list[float]] = {s.name: [] for s in servers}
                waits: dict[str, list[float]] = {s.name: [] for s in servers}
                for index in range(args.rounds):
                    for server in servers if index % 2 == 0 else servers[::-1]:
                        rate, latencies = asyncio.run(
                            _round(server.port, size, response_format, clients, args.seconds)
                        )
                        rates[server.name].append(rate)
                        waits[server.name].extend(latencies)
                cells = []
                for server in servers:
                    rate, lat = statistics.median(rates[server.name]), waits[server.name]
                    cells.append(
                        f"{rate:>14.1f} {percentile(lat, 0.5) * 1000:>7.1f} "
                        f"{percentile(lat, 0.99) * 1000:>7.1f}"
                    )
                pairs = zip(rates[ours.name], rates[peer.name], strict=True)
                ratio = statistics.median(mine / theirs for mine, theirs in pairs)
                label = f"{size} {response_format} x{clients}"
                rows.append((label, ratio))
                print(
                    f"{size:>9} {response_format[:8]:>8} {clients:>7} | "
                    + " | ".join(cells)
                    + f" | {ratio:>5.2f}"
                )
    met = [label for label, ratio in rows if ratio >= TARGET_RATIO]
    worst = min(rows, key=lambda row: row[1])
    print(
        f"\nimagegen / peer requests/s: at least {TARGET_RATIO}x in {len(met)} of {len(rows)} "
        f"rows; lowest {worst[1]:.2f}x ({worst[0]})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per row")
    parser.add_argument("--seconds", type=float, default=1.5, help="length of one round")
    parser.add_argument("--clients", default="1,8,64", help="concurrent clients, comma-separated")
    parser.add_argument("--sizes", default="256x256,1024x1024")
    parser.add_argument("--formats", default="b64_json,url")
    parser.add_argument("--peer", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        serve_peer(int(args.peer[0]), args.peer[1])
        return
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"imagegen serve --engine placeholder vs a bare Pillow card server, loopback; "
        f"{os.cpu_count()} CPUs shared by the client and both servers (load {load:.1f}); "
        f"{args.rounds} interleaved rounds of {args.seconds:g} s per row\n"
    )
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-") as folder:
        servers = start_servers(Path(folder))
        try:
            compare(servers, args)
        finally:
            for server in servers:
                server.close()


if __name__ == "__main__":
    main()
