"""Prometheus metrics at `GET /metrics` (prometheus-client), for every engine.

- requests answered, by endpoint, model and status (a middleware, so refusals count too);
- the queue: requests waiting, running, and the engine slots;
- calls of the engine's model: requests and images per call (batch sizes), seconds per call,
  by device; an engine that does not batch makes one call per request;
- images made (a counter, for `rate()`) and images per second over the last minute;
- seconds each request spent in the engine, waiting for its device included.

Each app has its own registry, so several apps in one process (tests, Ray replicas sharing a
worker process) never mix their figures. Label values come from short fixed lists (endpoints,
HTTP statuses, the models the server serves, its devices): a client cannot grow the number of
series by sending odd paths or model names.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._capabilities import MODELS
from ..engines import EngineResult, Job, ModelCall

if TYPE_CHECKING:
    from .._service import ImageService
    from ._limits import EngineGate

__all__ = ["Metrics", "MetricsMiddleware", "note_model"]

_MODEL_KEY = "imagegen.model"  # in the request's `state`, which an Azure route's copy shares
_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256)
_RATE_WINDOW = 60.0  # seconds behind imagegen_images_per_second

_ROUTES = (
    ("/images/generations", "generations"),
    ("/images/edits", "edits"),
    ("/images/variations", "variations"),
)


def _endpoint(path: str) -> str:
    """The endpoint a path names, Azure's forms included; `other` for anything unknown."""
    for suffix, name in _ROUTES:
        if path.endswith(suffix):
            return name
    if path.endswith("/models") or "/models/" in path:
        return "models"
    if path.startswith("/v1/files"):
        return "files"  # OpenAI's Files API (batch input and output)
    if path.startswith("/v1/batches"):
        return "batches"
    if path.startswith("/files/"):
        return "image_links"
    if path in ("/health", "/metrics"):
        return path[1:]
    return "other"


def note_model(scope: Scope, model: str | None) -> None:
    """Tell the metrics which model a request asked for (a route calls it once it knows)."""
    if model:
        scope.setdefault("state", {})[_MODEL_KEY] = model


class _Recent:
    """Images made in the last `_RATE_WINDOW` seconds."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._made: collections.deque[tuple[float, int]] = collections.deque()
        self._lock = threading.Lock()

    def add(self, images: int) -> None:
        with self._lock:
            self._made.append((time.monotonic(), images))

    def per_second(self) -> float:
        now = time.monotonic()
        with self._lock:
            while self._made and self._made[0][0] < now - _RATE_WINDOW:
                self._made.popleft()
            total = sum(images for _, images in self._made)
        return total / max(1e-9, min(_RATE_WINDOW, now - self._started))


class Metrics:
    """The instruments of one app; `attach` binds them to its engine once it is ready."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "imagegen_requests",
            "HTTP requests answered, by endpoint, model (empty when not known) and status.",
            ["endpoint", "model", "status"],
            registry=registry,
        )
        self.engine_seconds = Histogram(
            "imagegen_engine_seconds",
            "Seconds a request spent in the engine, waiting for its device included.",
            ["endpoint", "model"],
            buckets=_SECONDS,
            registry=registry,
        )
        self.images = Counter(
            "imagegen_images",
            "Images made, by endpoint and model.",
            ["endpoint", "model"],
            registry=registry,
        )
        per_call = ["device"]
        self.batch_requests = Histogram(
            "imagegen_batch_requests",
            "Requests served by one call of the engine's model, by device.",
            per_call,
            buckets=_SIZES,
            registry=registry,
        )
        self.batch_images = Histogram(
            "imagegen_batch_images",
            "Images made by one call of the engine's model, by device.",
            per_call,
            buckets=_SIZES,
            registry=registry,
        )
        self.call_seconds = Histogram(
            "imagegen_model_call_seconds",
            "Seconds of one call of the engine's model, by device.",
            per_call,
            buckets=_SECONDS,
            registry=registry,
        )
        self._recent = _Recent()
        Gauge(
            "imagegen_images_per_second",
            f"Images made per second over the last {_RATE_WINDOW:g} seconds.",
            registry=registry,
        ).set_function(self._recent.per_second)
        self._queue = [
            Gauge(name, text, registry=registry)
            for name, text in (
                ("imagegen_queue_waiting", "Requests admitted and waiting for an engine slot."),
                ("imagegen_queue_running", "Requests holding an engine slot."),
                ("imagegen_queue_slots", "Engine slots: requests the engine may hold at once."),
            )
        ]
        self._models: frozenset[str] = frozenset()
        self._reported_by_engine = False

    def attach(self, service: ImageService, gate: EngineGate) -> Callable[[], None]:
        """Start counting for `service` and its engine; returns the function that stops."""
        waiting, running, slots = self._queue
        waiting.set_function(lambda: gate.waiting)
        running.set_function(lambda: gate.running)
        slots.set_function(lambda: gate.concurrency)
        self._models = frozenset(service.declared) | frozenset(MODELS)
        engine = service.engine
        self._reported_by_engine = engine.reports_calls
        service.observers.append(self._job_done)
        # An engine may outlive the app (one handed to `create_app` ready): stop watching it.
        return engine.watch(self.model_call) if engine.reports_calls else lambda: None

    def model_call(self, call: ModelCall) -> None:
        device = call.device
        self.batch_requests.labels(device).observe(call.requests)
        self.batch_images.labels(device).observe(call.images)
        self.call_seconds.labels(device).observe(call.seconds)

    def _job_done(self, job: Job, result: EngineResult, seconds: float) -> None:
        images = job.n  # checked by the service; GIF and SVG answers carry no `images`
        self.engine_seconds.labels(job.endpoint, job.model).observe(seconds)
        self.images.labels(job.endpoint, job.model).inc(images)
        self._recent.add(images)
        if not self._reported_by_engine:
            self.model_call(ModelCall(1, images, seconds))

    def model_label(self, scope: Scope) -> str:
        model = scope.get("state", {}).get(_MODEL_KEY)
        return model if isinstance(model, str) and model in self._models else ""

    async def endpoint(self, request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(self.registry), media_type=content_type)


class MetricsMiddleware:
    """Counts every HTTP answer by endpoint, model and status."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})  # shared with the copies routes make of the scope
        endpoint = _endpoint(str(scope.get("path", "")))
        started = False

        def count(status: int) -> None:
            model = self.metrics.model_label(scope)
            self.metrics.requests.labels(endpoint, model, str(status)).inc()

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                # Counted before the answer goes out: a client that reads it, then scrapes,
                # finds its request counted.
                started = True
                count(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except ClientDisconnect:
            if not started:
                count(499)  # the client left before any answer; nginx's number for it
            raise
        except Exception:
            if not started:
                count(500)  # the outer middleware answers it
            raise
