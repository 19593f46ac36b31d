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
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from imagegen._capabilities import ModelCapabilities
from imagegen.engines import Engine, EngineResult, Job, PartialCallback
from imagegen.server import ServerSettings

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
            image = Image.new(self._mode(job), (job.width, job.height), colour_for(job, index))
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
        return EngineResult([base.point(lambda v, i=i: (v + 40 * (i + 1)) % 256) for i in range(job.n)])


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
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.started.release()
        try:
            if not self.release.wait(timeout=60):
                raise RuntimeError("test engine was never released")
            return super().generate(job, on_partial)
        finally:
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
