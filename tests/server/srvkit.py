"""Engines and helpers for the server tests.

The engines are small but real: they honour n, size, background, masks and partial images,
so the server's behaviour can be checked pixel by pixel without any model. `BlockingEngine`
holds each job until the test releases it, so queue tests depend on events, not on timing.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from imagegen._capabilities import ModelCapabilities
from imagegen.engines import Engine, EngineResult, Job, PartialCallback
from imagegen.server import ServerSettings
from live import stop_process

KEY = "sk-test-0123456789abcdef"


def colour_for(job: Job, index: int) -> tuple[int, int, int]:
    digest = hashlib.sha256(f"{job.prompt}|{job.seed}|{index}".encode()).digest()
    return digest[0], digest[1], digest[2]


class SolidEngine(Engine):
    """Generations: one solid colour per image. Edits: the edit area filled with a colour,
    everything else untouched. Variations: the input tinted differently per image."""

    name = "solid"
    description = "Solid colours, for the server tests."

    def __init__(self, *, model: str | None = None, options: Any = None) -> None:
        super().__init__(model=model, options=options)
        self.jobs: list[Job] = []

    def models(self) -> list[ModelCapabilities]:
        return [ModelCapabilities(name="solid-1")]

    def _mode(self, job: Job) -> str:
        return "RGBA" if job.transparent else "RGB"

    def _partials(self, job: Job, index: int, final: Image.Image, on_partial: Any) -> None:
        if on_partial is None:
            return
        for step in range(job.partial_images):
            on_partial(index, step, final.point(lambda v, s=step: v // (s + 2)))

    def generate(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
        self.jobs.append(job)
        images = []
        for index in range(job.n):
            colour = colour_for(job, index)
            fill = (*colour, 128) if job.transparent else colour  # half-transparent when asked
            image = Image.new(self._mode(job), (job.width, job.height), fill)
            self._partials(job, index, image, on_partial)
            images.append(image)
        return EngineResult(images)

    def edit(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
        self.jobs.append(job)
        size = (job.width, job.height)
        base = job.images[0].convert("RGBA").resize(size)
        region = job.mask.resize(size) if job.mask is not None else Image.new("L", size, 255)
        images = []
        for index in range(job.n):
            out = base.copy()
            out.paste(Image.new("RGBA", size, (*colour_for(job, index), 255)), mask=region)
            self._partials(job, index, out, on_partial)
            images.append(out)
        return EngineResult(images)

    def vary(self, job: Job) -> EngineResult:
        self.jobs.append(job)
        base = job.images[0].convert("RGB").resize((job.width, job.height))
        return EngineResult(
            [base.point(lambda v, i=i: (v + 40 * (i + 1)) % 256) for i in range(job.n)]
        )


class BlockingEngine(SolidEngine):
    """Each job waits for `release` (bounded), and records how many ran at once."""

    name = "blocking"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.release = threading.Event()
        self.started = threading.Semaphore(0)
        self._lock = threading.Lock()
        self.active = 0
        self.max_active = 0

    def generate(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
        self._hold()
        try:
            return super().generate(job, on_partial)
        finally:
            self._done()

    def edit(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
        self._hold()
        try:
            return super().edit(job, on_partial)
        finally:
            self._done()

    def _hold(self) -> None:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.started.release()
        if not self.release.wait(timeout=60):
            self._done()
            raise RuntimeError("test engine was never released")

    def _done(self) -> None:
        with self._lock:
            self.active -= 1

    def wait_started(self, count: int = 1, timeout: float = 20) -> None:
        for _ in range(count):
            assert self.started.acquire(timeout=timeout), "engine job did not start"


class FailingEngine(SolidEngine):
    name = "failing"

    def generate(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
        if on_partial is not None and job.partial_images:
            on_partial(0, 0, Image.new("RGB", (job.width, job.height)))
        raise RuntimeError("disk full at /srv/secret/models/weights.bin")


def make_settings(**values: Any) -> ServerSettings:
    """Settings from arguments only, whatever IMAGEGEN_* the machine has."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("IMAGEGEN_"):
                patch.delenv(name)
        return ServerSettings(**values)


def png(
    size: tuple[int, int] = (64, 64),
    colour: tuple[int, ...] = (200, 30, 30, 255),
    *,
    mode: str = "RGBA",
    fmt: str = "PNG",
) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour[: len(mode)] if len(mode) > 1 else colour[0]).save(buffer, fmt)
    return buffer.getvalue()


def mask_png(size: tuple[int, int], box: tuple[int, int, int, int]) -> bytes:
    """An OpenAI mask: opaque everywhere except `box`, fully transparent (= edit there)."""
    image = Image.new("RGBA", size, (0, 0, 0, 255))
    image.paste((0, 0, 0, 0), box)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@contextlib.contextmanager
def capture_thread(target: Any, *args: Any) -> Iterator[dict[str, Any]]:
    """Run `target(*args)` in a thread; the dict gets `result` or `error` once it is joined."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = target(*args)
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        thread.join(timeout=60)
        assert not thread.is_alive(), "client thread did not finish"


def assert_openai_error(
    response: Any, status: int, *, param: str | None = "-", code: str | None = "-"
) -> dict[str, Any]:
    """The answer is `status` with exactly OpenAI's error shape (and a request id)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("x-request-id")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str)
    if param != "-":
        assert error["param"] == param, error
    if code != "-":
        assert error["code"] == code, error
    return dict(error)


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def multipart(
    parts: list[tuple[str, str | bytes, str | None, str | None]], boundary: str = "b0undary"
) -> tuple[bytes, dict[str, str]]:
    """Encode `(name, value, filename, content_type)` parts by hand, exactly as given."""
    out = bytearray()
    for name, value, filename, kind in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = f'Content-Disposition: form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += disposition.encode("utf-8") + b"\r\n"
        if kind is not None:
            out += f"Content-Type: {kind}\r\n".encode()
        out += b"\r\n" + (value.encode("utf-8") if isinstance(value, str) else value) + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), {"content-type": f"multipart/form-data; boundary={boundary}"}


@contextlib.contextmanager
def serving(
    *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[str], list[str]]]:
    """`python -m imagegen serve --engine placeholder` on a free port with `args`; yields its
    URL, the process and its log."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEGEN_", "OPENAI_"))}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imagegen",
            "serve",
            "--engine",
            "placeholder",
            "--port",
            "0",
            "--api-key",
            KEY,
            *args,
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**clean, **(env or {})},
    )
    lines: queue.Queue[str] = queue.Queue()
    log: list[str] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)
            log.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None:
            assert time.monotonic() < deadline and process.poll() is None, "".join(log)
            try:
                match = re.search(r"running on (http://127\.0\.0\.1:\d+)", lines.get(timeout=1))
            except queue.Empty:
                continue
            url = match[1] if match else None
        yield url, process, log
    finally:
        stop_process(process)
        reader.join(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
