"""Serving on Ray Serve: the same Starlette app as `create_app`, one copy per replica.

```python
import ray
from ray import serve
from imagegen.server import ServerSettings, ray_app

ray.init()                                   # or ray.init(address="auto") to join a cluster
serve.start(http_options={"host": "127.0.0.1", "port": 8000})
serve.run(ray_app(ServerSettings(engine="diffusers", model="stabilityai/sd-turbo")),
          name="imagegen", route_prefix="/")
```

`imagegen serve --ray` does exactly this. Each replica is a Ray actor that builds the app and
loads the engine in its lifespan, as `imagegen serve` does; Ray's HTTP proxy spreads requests
over the replicas and Ray Serve adds or removes replicas between `min_replicas` and
`max_replicas` by how many requests each holds. With GPUs in the cluster each replica asks for
one (Ray then shows it only that GPU, so the engine's `device=auto` means it).

ray is imported only by `ray_app`, never with `imagegen.server`.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from .._errors import ConfigurationError, MissingDependencyError
from ._settings import ServerSettings

if TYPE_CHECKING:
    from ray.serve import Application

__all__ = ["RAY_INSTALL_HINT", "import_ray", "ray_app"]

RAY_INSTALL_HINT = "Serving on Ray needs Ray Serve: pip install 'imagegen[ray]'."


def import_ray() -> tuple[Any, Any]:
    """`ray` and `ray.serve`, imported, or `MissingDependencyError` naming the extra."""
    try:
        import ray
        from ray import serve  # absent from a bare `ray`
    except ImportError as exc:
        raise MissingDependencyError(
            RAY_INSTALL_HINT + (f" ({exc.name} is not installed)" if exc.name else "")
        ) from exc
    return ray, serve


class _WithLifespanState:
    """Hands the state the app's lifespan set up to every request, as uvicorn does: Ray Serve
    runs the lifespan (through uvicorn's own code) but does not pass its state on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            self.state = scope.setdefault("state", {})  # Starlette fills it at startup
        elif scope["type"] in ("http", "websocket"):
            scope = {**scope, "state": {**self.state, **scope.get("state", {})}}
        await self.app(scope, receive, send)


def _build(settings: ServerSettings) -> Any:
    """Run on each replica: the app, with the engine it loads at startup."""
    from ._app import create_app

    return _WithLifespanState(create_app(settings=settings))


def ray_app(
    settings: ServerSettings | None = None,
    *,
    min_replicas: int = 1,
    max_replicas: int | None = None,
    gpus_per_replica: float | None = None,
    cpus_per_replica: float = 1.0,
    name: str = "imagegen",
) -> Application:
    """The Images API as a Ray Serve application, for `serve.run`.

    `settings` are every replica's (their engine, model, options, keys, limits); `host` and
    `port` are not used here (they are the HTTP proxy's: `serve.start(http_options=...)`).
    `max_replicas` defaults to the GPUs in the cluster (at least `min_replicas`); above
    `min_replicas`, Ray Serve autoscales, aiming at as many requests per replica as its engine
    takes at once. `gpus_per_replica` defaults to 1 when the cluster has GPUs, else 0.
    Call it after `ray.init()`, so the cluster's GPUs can be counted.

    Image links (`response_format=url`) work from any replica: a signing secret is drawn here
    for all of them unless the settings carry one. Replicas on several machines also need a
    `storage_dir` they all share.
    """
    ray, serve = import_ray()

    from ..engines import create_engine

    settings = settings or ServerSettings()
    if min_replicas < 1:
        raise ConfigurationError("min_replicas must be at least 1.")
    # The engine is created (not loaded) here, so a bad engine, model or option fails before
    # anything is deployed; and its capacity sizes each replica's share of the requests.
    engine = create_engine(settings.engine, model=settings.model, options=settings.engine_options)
    slots = max(settings.max_concurrency, engine.capacity())
    gpus_in_cluster = int(ray.cluster_resources().get("GPU", 0)) if ray.is_initialized() else 0
    if gpus_per_replica is None:
        gpus_per_replica = 1.0 if gpus_in_cluster else 0.0
    if max_replicas is None:
        per_gpu = int(gpus_in_cluster // gpus_per_replica) if gpus_per_replica else 0
        max_replicas = max(min_replicas, per_gpu)
    if max_replicas < min_replicas:
        raise ConfigurationError(
            f"max_replicas ({max_replicas}) must be at least min_replicas ({min_replicas})."
        )
    if settings.url_secret is None:
        settings = settings.model_copy(update={"url_secret": SecretStr(secrets.token_hex(32))})

    def build() -> Any:
        return _build(settings)

    scaling: dict[str, Any] = (
        {
            "autoscaling_config": {
                "min_replicas": min_replicas,
                "max_replicas": max_replicas,
                "target_ongoing_requests": slots,
            }
        }
        if max_replicas > min_replicas
        else {"num_replicas": min_replicas}
    )
    deployment = serve.deployment(
        serve.ingress(build)(),
        name=name,
        ray_actor_options={"num_cpus": cpus_per_replica, "num_gpus": gpus_per_replica},
        # Each replica holds what its own queue holds (its 429 rule stays true); Ray's router
        # keeps up to `max_queue` more while replicas are added, and answers 503 past that.
        max_ongoing_requests=slots + settings.max_queue,
        max_queued_requests=max(1, settings.max_queue),
        graceful_shutdown_timeout_s=settings.graceful_timeout,
        **scaling,
    )
    application: Application = deployment.bind()
    return application


def serve_on_ray(
    settings: ServerSettings,
    *,
    address: str | None = None,
    min_replicas: int = 1,
    max_replicas: int | None = None,
) -> None:
    """`imagegen serve --ray`: deploy `ray_app(settings)` behind Ray Serve's HTTP proxy on
    `settings.host:port` and serve until SIGINT or SIGTERM, then take it down.

    `address` joins a running cluster (default: as `ray.init` finds one: `RAY_ADDRESS`, the
    last cluster started on this machine, else a new local instance, which ends with this
    process). At the end only this application is deleted from a joined cluster.
    """
    import logging
    import signal
    import socket
    import threading

    ray, serve = import_ray()
    logger = logging.getLogger("imagegen.server")
    port = settings.port
    if port == 0:  # Ray's proxy needs a number: take one the system has free now
        with socket.socket() as probe:
            probe.bind((settings.host, 0))
            port = probe.getsockname()[1]
    ray.init(address=address)
    stop = threading.Event()
    previous = {
        number: signal.signal(number, lambda *_: stop.set())
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        serve.start(http_options={"host": settings.host, "port": port})
        application = ray_app(settings, min_replicas=min_replicas, max_replicas=max_replicas)
        serve.run(application, name="imagegen", route_prefix="/")
        where = f"[{settings.host}]" if ":" in settings.host else settings.host
        logger.info("serving on Ray at http://%s:%d/v1 (Ctrl-C to stop)", where, port)
        stop.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        try:
            serve.delete("imagegen")  # on a joined cluster, Serve and other apps stay
        finally:
            ray.shutdown()  # a local instance this started ends here
