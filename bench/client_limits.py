"""What a hostile server costs the client: memory for huge answers, time for trickled ones.

Each case runs in a child process against a local server (`http.server`, in this process) and
reports the child's peak resident memory (ru_maxrss) above what it held before the call, as a
multiple of the payload, and the seconds the call took (for the trickle, against `timeout`):

- json-150MB: a 150 MB `b64_json` answer, read and parsed with the default limits (accepted;
  the cost is the parse), and with `max_response_size=64 MiB`, its length declared (refused
  before reading) or not (chunked: refused at the limit).
- sse-300MB: a stream whose one `data:` line is 300 MB (refused at the event limit).
- download-300MB: a URL result whose image is 300 MB (refused at `max_image_size`, 64 MiB).
- trickle: an answer trickled one byte a second, `timeout=3`.

    python bench/client_limits.py                       # this checkout
    python bench/client_limits.py --src /path/to/src    # another checkout's imagegen (before)

Options a checkout does not have (the limits, before they existed) are left out for it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MiB = 1024 * 1024
JSON_SIZE = 150 * MiB
SSE_SIZE = 300 * MiB


def _parts(total: int, piece: bytes) -> Iterator[bytes]:
    part = piece * (MiB // len(piece))
    sent = 0
    while sent < total:
        out = part[: total - sent]
        sent += len(out)
        yield out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        case = self.path.split("/")[1]
        try:
            if case in ("json", "chunked"):
                prefix, suffix = b'{"created": 1, "data": [{"b64_json": "', b'"}]}'
                parts = [prefix, *_parts(JSON_SIZE, b"QUFB"), suffix]
                self._send("application/json", parts, chunked=case == "chunked")
            elif case == "download":
                port = self.server.server_address[1]
                url = f"http://127.0.0.1:{port}/files/big.png"
                body = json.dumps({"created": 1, "data": [{"url": url}]}).encode()
                self._send("application/json", [body])
            elif case == "sse":
                self._send("text/event-stream", [b"data: ", *_parts(SSE_SIZE, b"A"), b"\n\n"])
            elif case == "trickle":
                body = json.dumps({"created": 1, "data": [{"b64_json": "iVBORw0K"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for index in range(min(len(body), 40)):
                    self.wfile.write(body[index : index + 1])
                    self.wfile.flush()
                    time.sleep(1)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._send("image/png", [b"\x89PNG\r\n\x1a\n", *_parts(SSE_SIZE, b"A")], chunked=True)

    def _send(self, content_type: str, parts: list[bytes], chunked: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        if chunked:  # no length declared: the client finds out as it reads
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(sum(len(part) for part in parts)))
        self.end_headers()
        for part in parts:
            self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n" if chunked else part)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")


CHILD = r"""
import json, resource, sys, time
import imagegen
case, base_url, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = imagegen.Client(base_url=base_url, api_key="k", max_retries=0, **options)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
outcome = "ok"
try:
    if case.startswith("sse"):
        client.generate("x", stream=True).result()
    elif case == "download":
        client.generate("x", model="dall-e-2", response_format="url")[0].bytes()
    else:
        client.generate("x")
except imagegen.ImagegenError as exc:
    outcome = type(exc).__name__
elapsed = time.monotonic() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before": before / 1024, "peak": after / 1024, "seconds": elapsed,
                  "outcome": outcome}))
"""


def _run(src: str | None, case: str, url: str, options: dict[str, object]) -> dict[str, object]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    child = subprocess.run(
        [sys.executable, "-c", CHILD, case, url, json.dumps(options)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if child.returncode != 0:
        return {"outcome": f"failed: {child.stderr.strip().splitlines()[-1:]}"}
    result: dict[str, object] = json.loads(child.stdout)
    return result


def _has_limits(src: str | None) -> bool:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    probe = "import imagegen._config as c; print(hasattr(c, 'Limits'))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    return out.stdout.strip() == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", help="import imagegen from this folder (another checkout)")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    limits = _has_limits(args.src)
    capped = {"max_response_size": 64 * MiB}
    cases: list[tuple[str, str, dict[str, object]]] = [
        ("json 150 MB, default limits", "json", {}),
        ("json 150 MB, max_response_size 64 MiB", "json", capped),
        ("json 150 MB chunked, max_response_size 64 MiB", "chunked", capped),
        ("sse line 300 MB, default limits", "sse", {}),
        ("download 300 MB image, default limits", "download", {}),
        ("trickle 1 byte/s, timeout 3 s", "trickle", {"timeout": 3}),
    ]
    print(f"imagegen from {args.src or 'this checkout'}; limits: {'yes' if limits else 'no'}")
    print(f"{'case':46} {'outcome':17} {'RSS added':>9} {'x payload':>9} {'seconds':>8}")
    try:
        for label, case, options in cases:
            if options.get("max_response_size") and not limits:
                continue
            r = _run(args.src, case, f"{base}/{case}/v1", options)
            if "peak" not in r:
                print(f"{label:46} {r['outcome']}")
                continue
            added = float(r["peak"]) - float(r["before"])  # type: ignore[arg-type]
            payload = SSE_SIZE if case in ("sse", "download") else JSON_SIZE
            ratio = "" if case == "trickle" else f"{added * MiB / payload:.2f}"
            seconds = float(r["seconds"])  # type: ignore[arg-type]
            print(f"{label:46} {r['outcome']:17} {added:7.0f}MB {ratio:>9} {seconds:8.1f}")
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
