"""`imagegen serve` and `imagegen engines`.

Only click is imported here at module import; the server (starlette, uvicorn) and the engines
load inside the commands, so `imagegen --help` stays fast.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

__all__ = ["engines_command", "serve_command"]


@click.command(
    "serve",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "-e",
    "--engine",
    metavar="NAME",
    help="Engine that makes the images (see `imagegen engines`). [default: placeholder]",
)
@click.option("-m", "--model", help="Model the engine loads (engine-specific: a path, a hub id).")
@click.option(
    "-o",
    "-O",
    "--option",
    "--engine-option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Engine option, repeatable (for example -o steps=4).",
)
@click.option("--host", help="Address to listen on. [default: 127.0.0.1]")
@click.option("--port", type=int, help="Port to listen on; 0 picks a free one. [default: 8000]")
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    metavar="KEY",
    help="Key clients must send (Authorization: Bearer KEY), repeatable. Also "
    "IMAGEGEN_API_KEYS (comma-separated).",
)
@click.option(
    "--api-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File with one key per line (# comments allowed).",
)
@click.option(
    "--allow-no-auth",
    is_flag=True,
    default=None,
    help="Serve a non-loopback address without any key (anyone who reaches it may use it).",
)
@click.option(
    "--storage-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for images returned as URLs. [default: a temporary folder, removed at exit]",
)
@click.option(
    "--url-ttl", type=int, metavar="SECONDS", help="How long image URLs work. [default: 3600]"
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for Batch API files and jobs, kept across restarts. [default: the user's data "
    "folder, such as ~/.local/share/imagegen]",
)
@click.option(
    "--public-url",
    metavar="URL",
    help="Base URL clients reach this server at, for image links behind a proxy. "
    "[default: the address of each request]",
)
@click.option(
    "--max-concurrency", type=int, metavar="N", help="Jobs the engine runs at once. [default: 1]"
)
@click.option(
    "--max-queue",
    type=int,
    metavar="N",
    help="Requests that may wait for the engine; more get 429. [default: 16]",
)
@click.option(
    "--graceful-timeout",
    type=int,
    metavar="SECONDS",
    help="At shutdown, how long requests in flight may take to finish. [default: 120]",
)
@click.option(
    "--png-compress-level",
    type=click.IntRange(0, 9),
    metavar="LEVEL",
    help="zlib level of PNG answers: 0 is fastest and largest, 9 smallest and slowest. "
    "[default: 1]",
)
@click.option(
    "--header-timeout",
    type=float,
    metavar="SECONDS",
    help="Time a client has to send a request's headers, in total. [default: 10]",
)
@click.option(
    "--body-timeout",
    type=float,
    metavar="SECONDS",
    help="Time a client has to send a request's body, in total, plus 1 s per "
    "IMAGEGEN_MIN_UPLOAD_RATE bytes received (default 64KB). [default: 30]",
)
@click.option(
    "--max-connections",
    type=int,
    metavar="N",
    help="Open connections; past it the oldest one still waiting for its request is closed. "
    "[default: 1000]",
)
@click.option(
    "--max-storage",
    metavar="SIZE",
    help="Disk for images returned as URLs (as 512MB, 2GB); past it the oldest are removed "
    "first. [default: 1GB]",
)
@click.option(
    "--device",
    metavar="LIST",
    help="Devices the engine runs on, one worker each, least busy first: auto (every GPU), "
    "cpu, cuda:1, cuda:0,cuda:1 (engine option device).",
)
@click.option(
    "--max-batch-size",
    type=int,
    metavar="N",
    help="Images one model call may make for concurrent requests together (engine option "
    "max_batch_size). [default: 1, no batching]",
)
@click.option(
    "--batch-wait-ms",
    type=int,
    metavar="MS",
    help="How long a request may wait for others to share its model call (engine option "
    "batch_wait_ms). [default: 10]",
)
@click.option(
    "--ray",
    "on_ray",
    is_flag=True,
    help="Serve on Ray Serve, one replica per GPU, autoscaled (pip install 'imagegen[ray]').",
)
@click.option(
    "--ray-address",
    metavar="ADDRESS",
    help="With --ray: the Ray cluster to join. [default: RAY_ADDRESS, else a local instance]",
)
@click.option(
    "--replicas",
    metavar="N|MIN-MAX",
    help="With --ray: replicas, or the range autoscaling keeps to. [default: 1 to the GPUs]",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.pass_context
def serve_command(
    ctx: click.Context,
    engine: str | None,
    model: str | None,
    options: tuple[str, ...],
    host: str | None,
    port: int | None,
    api_keys: tuple[str, ...],
    api_key_file: Path | None,
    allow_no_auth: bool | None,
    storage_dir: Path | None,
    url_ttl: int | None,
    data_dir: Path | None,
    public_url: str | None,
    max_concurrency: int | None,
    max_queue: int | None,
    graceful_timeout: int | None,
    png_compress_level: int | None,
    header_timeout: float | None,
    body_timeout: float | None,
    max_connections: int | None,
    max_storage: str | None,
    device: str | None,
    max_batch_size: int | None,
    batch_wait_ms: int | None,
    on_ray: bool,
    ray_address: str | None,
    replicas: str | None,
    log_level: str,
) -> None:
    """Serve the OpenAI Images API (generations, edits, variations) over a local engine.

    Point any OpenAI client at http://HOST:PORT/v1. Without an API key the server listens on
    loopback only. Every setting may also come from IMAGEGEN_<SETTING> (for example
    IMAGEGEN_MAX_QUEUE=32); a flag wins over the environment.

    \b
    Examples:
      imagegen serve --engine placeholder
      imagegen serve --engine diffusers --model ./sd-turbo --host 0.0.0.0 --api-key "$KEY"
      imagegen serve --engine diffusers --model ./sd-turbo --device auto --max-batch-size 8
      imagegen serve --engine diffusers --model ./sd-turbo --ray --replicas 1-4
    """
    from .._errors import ConfigurationError
    from . import start_up_done
    from ._errors import debug_enabled, handle_errors
    from ._run import _quiet_model_libraries

    start_up_done(long_running=True)  # a server runs for hours: collect its garbage

    if not (debug_enabled(ctx) or log_level == "debug"):
        _quiet_model_libraries()  # before an engine imports them; the log carries no bars
    with handle_errors(ctx), contextlib.ExitStack() as stack:
        from ..server._settings import ServerSettings, check_bind, parse_options

        settings = ServerSettings.build(
            engine=engine,
            model=model,
            engine_options=parse_options(options) if options else None,
            host=host,
            port=port,
            api_keys=list(api_keys) or None,
            api_key_file=api_key_file,
            allow_no_auth=allow_no_auth,
            storage_dir=storage_dir,
            url_ttl=url_ttl,
            data_dir=data_dir,
            public_url=public_url,
            max_concurrency=max_concurrency,
            max_queue=max_queue,
            graceful_timeout=graceful_timeout,
            png_compress_level=png_compress_level,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            max_connections=max_connections,
            max_storage=max_storage,
        )
        flags: dict[str, object] = {
            "device": device,
            "max_batch_size": max_batch_size,
            "batch_wait_ms": batch_wait_ms,
        }
        stack.enter_context(_naming_engine_flags(flags))
        settings = _with_engine_flags(settings, flags)
        keys = settings.resolved_api_keys()
        check_bind(settings, keys)
        _check_folders(settings)
        if on_ray or ray_address or replicas:
            _serve_on_ray(settings, on_ray, ray_address, replicas, log_level)
            return
        settings = _with_serve_options(settings)
        # Before the engine loads (which may take minutes): a port in use is one line, not
        # uvicorn's log lines and exit code 3 after the wait.
        _check_listen(settings.host, settings.port)
        try:
            import uvicorn

            from ..engines import load_engine
            from ..server import HTTPProtocol, create_app
            from ..server._process import raise_open_files_limit, return_freed_memory
        except ImportError as exc:  # pragma: no cover - both are dependencies
            raise ConfigurationError(f"The server needs {exc.name}: pip install imagegen") from exc
        # Loaded here, not in the app's lifespan, so a missing extra or a bad model is one
        # clear line before anything listens.
        loaded = load_engine(settings.engine, model=settings.model, options=settings.engine_options)
    raise_open_files_limit(settings.max_connections)
    return_freed_memory()
    try:
        uvicorn.run(
            create_app(loaded, settings),
            host=settings.host,
            port=settings.port,
            # uvicorn's h11 with a header deadline and a connection cap (server/_protocol.py),
            # whatever else is installed: "auto" would take httptools when present (the ray
            # extra brings it), which parses and refuses requests differently.
            http=HTTPProtocol,
            log_config=_log_config(log_level),
            log_level=log_level,
            access_log=False,  # the app writes its own access log, without query strings
            timeout_graceful_shutdown=settings.graceful_timeout,
        )
    finally:
        loaded.close()


@contextlib.contextmanager
def _naming_engine_flags(flags: dict[str, object]) -> Iterator[None]:
    """An engine's complaint about an option that `--device`, `--max-batch-size` or
    `--batch-wait-ms` set names that flag, not `-o` (the engine sees only its options)."""
    from .._errors import ConfigurationError

    try:
        yield
    except ConfigurationError as exc:
        if exc.param == "options":
            for name, value in flags.items():
                shown = str(value)
                if value is not None and (
                    f"{name}={shown!r}" in exc.message or f"{name}={shown}" in exc.message
                ):
                    raise click.UsageError(f"--{name.replace('_', '-')}: {exc.message}") from None
        raise


def _with_engine_flags(settings: Any, flags: dict[str, object]) -> Any:
    """`settings` with the engine options that `--device`, `--max-batch-size` and
    `--batch-wait-ms` set (over `-o`), if the engine takes them."""
    from ..engines import get_engine_class

    given = {name: str(value) for name, value in flags.items() if value is not None}
    if not given:
        return settings
    accepted = get_engine_class(settings.engine).option_help
    for name in given:
        if accepted is not None and name not in accepted:
            raise click.UsageError(
                f"--{name.replace('_', '-')}: the {settings.engine} engine has no {name} "
                "option (it runs on no device of its own and makes each request alone)."
            )
    return settings.model_copy(update={"engine_options": {**settings.engine_options, **given}})


def _with_serve_options(settings: Any) -> Any:
    """`settings` with the options the engine asks a server for (the placeholder's worker
    processes), under those the command line and the environment set."""
    from ..engines import get_engine_class

    wanted = get_engine_class(settings.engine).serve_options()
    if not wanted:
        return settings
    return settings.model_copy(update={"engine_options": {**wanted, **settings.engine_options}})


def _serve_on_ray(
    settings: Any, on_ray: bool, address: str | None, replicas: str | None, log_level: str
) -> None:
    """`--ray`: the same app on Ray Serve, until Ctrl-C or SIGTERM."""
    import logging.config
    import re

    if not on_ray:
        used = "--ray-address" if address else "--replicas"
        raise click.UsageError(f"{used} applies to --ray only; add --ray, or leave it out.")
    span = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", replicas or "1")
    if span is None or int(span[1]) < 1 or (span[2] and int(span[2]) < int(span[1])):
        raise click.UsageError(
            f"--replicas {replicas}: give a number of replicas (2) or a range to autoscale "
            "within (1-4), from 1 up."
        )
    low = int(span[1])
    high = int(span[2]) if span[2] else (low if replicas else None)
    from ..server._ray import serve_on_ray

    logging.config.dictConfig(_log_config(log_level))  # the log uvicorn would set up
    # No port check here: Ray's HTTP proxy listens on the cluster's head node, where Serve
    # may already run (and hold the port) when the cluster is joined.
    serve_on_ray(settings, address=address, min_replicas=low, max_replicas=high)


def _log_config(level: str) -> dict[str, Any]:
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["imagegen"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    # asyncio reports failed accepts (out of file descriptors...) here; rate-limited like ours.
    config["loggers"]["asyncio"] = {"handlers": ["default"], "level": "WARNING", "propagate": False}
    return config


def _check_folders(settings: Any) -> None:
    """The folders the server writes in, when given, are made now (as the server would) and
    must take a file: a wrong one is one line before anything loads, not a traceback at start
    (--storage-dir) or a 500 for the first Batch API call (--data-dir)."""
    import tempfile

    from .._errors import ConfigurationError

    folders = (
        ("storage_dir", "the image folder", settings.storage_dir),
        ("data_dir", "the Batch API's data folder", settings.data_dir),
    )
    for name, what, folder in folders:
        if folder is None:
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            reason = "it is a file" if folder.is_file() else (exc.strerror or str(exc)).lower()
            raise ConfigurationError(
                f"Cannot use {str(folder)!r} as {what} (flag --{name.replace('_', '-')} or "
                f"IMAGEGEN_{name.upper()}): {reason}."
            ) from None


def _check_listen(host: str, port: int) -> None:
    """Refuse at once an address this process cannot listen on (`click.UsageError`, exit 2)."""
    import socket

    if port == 0:
        return  # any free port: nothing to collide with
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise click.UsageError(f"--host {host}: unknown address ({exc.strerror}).") from None
    family, kind, proto, _, address = infos[0]
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise click.UsageError(
                f"--port {port}: {where} is already in use (another server?); choose another "
                "port, or --port 0 for any free one."
            ) from None
        raise click.UsageError(
            f"--host/--port: cannot listen on {where} ({exc.strerror or exc})."
        ) from None


@click.command(
    "engines",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def engines_command(as_json: bool) -> None:
    """List the installed engines, where they come from, and whether they are ready to load.

    An engine that is not ready is shown with what it lacks and the command that installs it;
    nothing heavy (torch...) is imported to find out. Engines register under the entry-point
    group `imagegen.engines`; the built-in ones (placeholder, diffusers) register the same way
    as third-party ones.
    """
    import json

    from .._errors import ImagegenError
    from ..engines import available_engines, get_engine_class, missing_dependencies_message

    rows: list[dict[str, Any]] = []
    for name, target in available_engines().items():
        status, description, missing = "ok", "", []
        try:
            cls = get_engine_class(name)
            description = cls.description
            missing = cls.missing_dependencies()
            status = missing_dependencies_message(cls, name) or "ok"
        except ImagegenError as exc:
            status = exc.message
        rows.append(
            {
                "name": name,
                "target": target,
                "ok": status == "ok",
                "status": status,
                "description": description,
                "missing": missing,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max((len(row["name"]) for row in rows), default=4)
    for row in rows:
        mark = "ok " if row["ok"] else "n/a"
        click.echo(f"{row['name']:<{width}}  {mark}  {row['target']}")
        for detail in (row["description"], "" if row["ok"] else row["status"]):
            if detail:
                click.echo(f"{'':<{width}}       {detail}")
