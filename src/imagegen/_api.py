"""Module-level `imagegen.generate`, `imagegen.edit`, `imagegen.create_variation`.

They use one shared `Client` configured from the environment (see `_config`), created on first
use. The environment is read again on every call, and the shared client is replaced when the
settings it was built from have changed, so a program that sets `OPENAI_BASE_URL` later still
reaches the right server. A replaced client is closed only when the program exits: a stream or
a URL result it returned earlier may still be read. For explicit options, create a `Client`.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import threading
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from ._client import Client
from ._config import Settings, resolve_settings

__all__ = ["create_variation", "edit", "generate"]

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_shared: tuple[Settings, Client] | None = None
_replaced: list[Client] = []


@atexit.register
def _close_replaced() -> None:
    with _lock:
        while _replaced:
            _replaced.pop().close()


def _default_client() -> Client:
    global _shared
    settings = resolve_settings()
    with _lock:
        if _shared is not None and _shared[0] == settings:
            return _shared[1]
        if _shared is not None:
            _replaced.append(_shared[1])
        client = Client()
        _shared = (settings, client)
        return client


def _on_default_client(method: Callable[Concatenate[Client, P], R]) -> Callable[P, R]:
    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        return method(_default_client(), *args, **kwargs)

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
