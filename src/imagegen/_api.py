"""Module-level `imagegen.generate`, `imagegen.edit`, `imagegen.create_variation`.

They use one shared `Client` configured from the environment (see `_config`), created on first
use. The environment is read again on every call, and the shared client is replaced when the
settings it was built from have changed, so a program that sets `OPENAI_BASE_URL` later still
reaches the right server. A replaced client is closed as soon as no stream it returned is still
being read (URL results download with a short-lived client of their own once theirs is closed).
For explicit options, create a `Client`.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import threading
import weakref
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from ._client import Client
from ._config import Settings, resolve_settings
from ._results import ImageStream

__all__ = ["create_variation", "edit", "generate"]

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_shared: tuple[Settings, Client, weakref.WeakSet[ImageStream]] | None = None
# Replaced clients whose streams are still being read, with those streams.
_replaced: list[tuple[Client, weakref.WeakSet[ImageStream]]] = []


def _close_idle(closing_all: bool = False) -> None:
    """Close the replaced clients none of whose streams is still open (all of them at exit).
    A stream left unclosed holds its client until it is garbage-collected. Holds `_lock`."""
    kept = []
    for client, streams in _replaced:
        if closing_all or all(stream.closed for stream in list(streams)):
            client.close()
        else:
            kept.append((client, streams))
    _replaced[:] = kept


@atexit.register
def _close_replaced() -> None:
    with _lock:
        _close_idle(closing_all=True)


def _shared_client() -> tuple[Client, weakref.WeakSet[ImageStream]]:
    global _shared
    settings = resolve_settings()
    with _lock:
        if _replaced:
            _close_idle()
        if _shared is not None and _shared[0] == settings:
            return _shared[1], _shared[2]
        if _shared is not None:
            _replaced.append((_shared[1], _shared[2]))
            _close_idle()
        client, streams = Client(), weakref.WeakSet[ImageStream]()
        _shared = (settings, client, streams)
        return client, streams


def _on_default_client(method: Callable[Concatenate[Client, P], R]) -> Callable[P, R]:
    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        client, streams = _shared_client()
        result = method(client, *args, **kwargs)
        if isinstance(result, ImageStream):
            streams.add(result)  # its client is closed only once it is done
        return result

    call.__doc__ = (
        f"`Client().{method.__name__}` on a shared client configured from the environment.\n\n"
        f"{method.__doc__ or ''}"
    )
    call.__qualname__ = method.__name__
    call.__module__ = "imagegen"
    signature = inspect.signature(method)
    call.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=list(signature.parameters.values())[1:]  # without `self`
    )
    return call


generate = _on_default_client(Client.generate)
edit = _on_default_client(Client.edit)
create_variation = _on_default_client(Client.create_variation)
