"""The diffusers engine's device workers: one thread per device runs every pipeline call there,
and merges the calls of compatible jobs into one (dynamic batching).

Jobs are compatible when they use the same pipeline with the same settings (size, steps,
guidance, strength...) and differ only in what a pipeline takes one of per image: prompts,
negative prompts, input images, masks and random generators. A merged call passes those as
lists, one entry per image, with `num_images_per_prompt=1`; every image keeps its own
generator, so it starts from the same noise as when its job runs alone, and the output is
split back in order.

A worker takes the oldest waiting call, adds the compatible calls behind it while the total
stays within the leader's `max_images`, and waits for more until `wait` seconds after the
leader was queued (a job that already waited behind a busy device does not wait again). A
merged call that fails is run again job by job, so one job's failure (or a batch too large for
the device's memory) costs the others nothing.

torch is never imported here: the pipelines are called as given.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import ModelCall

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["DeviceWorker", "PipelineCall", "Made", "StepCallback", "device_worker"]

logger = logging.getLogger("imagegen.engines.diffusers")

# `callback_on_step_end` for one job's images: `(pipe, step, latents)`, latents of its images only.
StepCallback = Callable[[Any, int, Any], None]


@dataclass
class Made:
    """One job's share of a pipeline call's output."""

    images: list[PILImage.Image]
    flagged: list[bool] | None = None  # the safety checker's verdict per image, if it has one


@dataclass(eq=False)
class PipelineCall:
    """One job's pipeline call, ready to be merged with compatible ones."""

    pipe: Any
    shared: dict[str, Any]  # keyword arguments that must be equal for calls to merge
    per_image: dict[str, list[Any]]  # one entry per image: prompt, generator, image...
    n: int
    on_step: StepCallback | None = None
    max_images: int = 1  # images a merged call led by this one may make
    wait: float = 0.0  # seconds after `queued` this call may wait for companions
    report: Callable[[ModelCall], None] | None = None
    queued: float = field(default_factory=time.monotonic)
    future: Future[Made] = field(default_factory=Future)
    previewed: bool = False  # partial images went out: a rerun must not send them again

    def merges_with(self, other: PipelineCall) -> bool:
        return (
            other.pipe is self.pipe
            and other.shared == self.shared
            and other.per_image.keys() == self.per_image.keys()
        )


class _StepPreviews:
    """The pipeline's `callback_on_step_end` for a merged call: hands each job its own slice
    of the latents."""

    def __init__(self, parts: list[tuple[int, PipelineCall]]) -> None:
        self.parts = parts

    def __call__(self, pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> Any:
        latents = tensors["latents"]
        for offset, call in self.parts:
            if call.on_step is not None:
                call.previewed = True
                call.on_step(pipe, step, latents[offset : offset + call.n])
        return tensors


def _run_merged(calls: list[PipelineCall], name: str) -> list[Made]:
    leader = calls[0]
    kwargs = dict(leader.shared)
    for key in leader.per_image:
        kwargs[key] = [value for call in calls for value in call.per_image[key]]
    kwargs["num_images_per_prompt"] = 1
    parts, offset = [], 0
    for call in calls:
        parts.append((offset, call))
        offset += call.n
    if any(call.on_step is not None for call in calls):
        kwargs["callback_on_step_end"] = _StepPreviews(parts)
        kwargs["callback_on_step_end_tensor_inputs"] = ["latents"]
    started = time.perf_counter()
    output = leader.pipe(**kwargs)
    seconds = time.perf_counter() - started
    if leader.report is not None:
        try:
            leader.report(ModelCall(len(calls), offset, seconds, name))
        except Exception:  # metrics must never cost an image
            logger.exception("reporting a pipeline call failed")
    images = list(output.images)
    flagged = getattr(output, "nsfw_content_detected", None)
    return [
        Made(
            images[start : start + call.n],
            [bool(flag) for flag in flagged[start : start + call.n]] if flagged else None,
        )
        for start, call in parts
    ]


_Task = tuple[Future[Any], Callable[[], Any]]  # a plain function run alone (`submit`)


class DeviceWorker:
    """The thread that runs every pipeline call on one device, one call at a time.

    One call at a time per device: a pipeline (its scheduler state above all) is not
    thread-safe, two calls on one GPU only compete for its memory, and on the CPU a single
    calling thread keeps one OpenMP thread team instead of one per server thread (idle teams
    spin and slow the busy one).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._ready = threading.Condition()
        self._queue: list[PipelineCall | _Task] = []
        self._running = 0  # images of the call on the device now
        self._thread: threading.Thread | None = None

    @property
    def load(self) -> int:
        """Images waiting for this device or being made on it."""
        with self._ready:
            waiting = sum(item.n if isinstance(item, PipelineCall) else 1 for item in self._queue)
            return waiting + self._running

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run `fn(*args, **kwargs)` alone on the device thread, in turn."""
        future: Future[Any] = Future()
        self._put((future, lambda: fn(*args, **kwargs)))
        return future

    def call(self, call: PipelineCall) -> Future[Made]:
        """Queue one job's pipeline call, to be merged with compatible ones."""
        self._put(call)
        return call.future

    def _put(self, item: PipelineCall | _Task) -> None:
        with self._ready:
            self._queue.append(item)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name=f"imagegen-diffusers-{self.name}", daemon=True
                )
                self._thread.start()
            self._ready.notify_all()

    def _next(self) -> _Task | list[PipelineCall]:
        with self._ready:
            while not self._queue:
                self._ready.wait()
            leader = self._queue.pop(0)
            if not isinstance(leader, PipelineCall):
                self._running = 1
                return leader
            batch, images = [leader], leader.n
            deadline = leader.queued + leader.wait
            while images < leader.max_images:
                for item in list(self._queue):
                    if (
                        isinstance(item, PipelineCall)
                        and leader.merges_with(item)
                        and images + item.n <= leader.max_images
                    ):
                        self._queue.remove(item)
                        batch.append(item)
                        images += item.n
                remaining = deadline - time.monotonic()
                if images >= leader.max_images or remaining <= 0:
                    break
                self._ready.wait(remaining)
            self._running = images
            return batch

    def _serve(self) -> None:
        while True:
            work = self._next()
            try:
                if isinstance(work, tuple):
                    future, fn = work
                    if future.set_running_or_notify_cancel():
                        try:
                            future.set_result(fn())
                        except BaseException as exc:
                            future.set_exception(exc)
                else:
                    self._run(work)
            finally:
                with self._ready:
                    self._running = 0

    def _run(self, batch: list[PipelineCall]) -> None:
        try:
            made = _run_merged(batch, self.name)
        except BaseException as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            logger.warning(
                "a pipeline call for %d requests failed (%s: %s); running them one by one",
                len(batch),
                type(exc).__name__,
                exc,
            )
            for call in batch:
                if call.previewed:
                    call.on_step = None
                self._run([call])
            return
        for call, share in zip(batch, made, strict=True):
            call.future.set_result(share)


# Shared by every engine in the process, so two engines on one device queue behind each other.
_WORKERS: dict[str, DeviceWorker] = {}
_WORKERS_GUARD = threading.Lock()


def device_worker(device: str) -> DeviceWorker:
    """The worker of `device` (`cuda:0`, `cpu`; `cpu#2` for a second worker on the CPU)."""
    with _WORKERS_GUARD:
        if device not in _WORKERS:
            _WORKERS[device] = DeviceWorker(device)
        return _WORKERS[device]
