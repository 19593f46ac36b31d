"""The library's warnings and log records, as lines on stderr during one command run.

Warnings (a retry wait, `response_format=url` turned into base64) are one `Warning:` line each,
silenced by `--quiet`. `--debug` adds `debug:` lines: the library's own, and httpx2's one line
per HTTP request. Every line passes through `redact` with the run's secrets (`known_secrets`)
and URL passwords masked, so no key reaches the terminal even if a message were to carry one.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from .._errors import redact
from ._progress import Console

logger = logging.getLogger("imagegen.cli")


class _ConsoleHandler(logging.Handler):
    def __init__(self, console: Console, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self.console = console
        self.secrets = secrets

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = redact(record.getMessage(), *self.secrets)
            if record.levelno >= logging.WARNING:
                self.console.warn(message)
            else:
                self.console.err(f"debug: {record.name}: {message}")
        except Exception:  # a logging handler must never raise into the code that logged
            self.handleError(record)


@contextlib.contextmanager
def log_to(console: Console, *, debug: bool, secrets: Iterable[str]) -> Iterator[None]:
    """Route the `imagegen` (and with `debug`, `httpx2`) loggers to `console` for the block."""
    known = tuple(secrets)
    handler = _ConsoleHandler(console, known)
    if debug:
        levels = {"imagegen": logging.DEBUG, "httpx2": logging.INFO}
    else:
        levels = {"imagegen": logging.ERROR if console.quiet else logging.WARNING}
    saved = []
    for name, level in levels.items():
        target = logging.getLogger(name)
        saved.append((target, target.level, target.propagate))
        target.setLevel(level)
        target.propagate = False
        target.addHandler(handler)
    try:
        with _warnings_to(console, known):
            yield
    finally:
        for target, level, propagate in saved:
            target.removeHandler(handler)
            target.setLevel(level)
            target.propagate = propagate


@contextlib.contextmanager
def _warnings_to(console: Console, secrets: tuple[str, ...]) -> Iterator[None]:
    with warnings.catch_warnings():
        if console.quiet:
            warnings.simplefilter("ignore")
        else:
            warnings.simplefilter("always")

            def show(message: Any, *args: Any, **kwargs: Any) -> None:
                console.warn(redact(str(message), *secrets))

            warnings.showwarning = show
        yield
