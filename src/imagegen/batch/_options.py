"""The keyword arguments of `run` and `arun`, declared once.

`BatchOptions` is what both functions take (`**options: Unpack[BatchOptions]`): how to run the
batch, then the `AsyncClient` arguments the batch passes on (a test keeps those in step with
the client's). `split` turns them into the checked `RunOptions` and the client's keywords.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from .._capabilities import ENDPOINT_PARAMS
from .._config import check_max_retries
from .._errors import ConfigurationError
from .._types import TypedDict

if TYPE_CHECKING:
    import httpx2

    from .._types import NotGiven
    from ..engines import Engine
    from ._status import BatchProgress

__all__ = [
    "DEFAULT_BATCH_RETRIES",
    "DEFAULT_CONCURRENCY",
    "MAX_CONCURRENCY",
    "BatchOptions",
    "RunOptions",
    "Via",
    "split",
]

DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 64
# More than a single call's 2: a batch runs for long and should ride out a short outage
# (backoff 1, 2, 4, 8, 16, 32 s) rather than fail every row sent during it.
DEFAULT_BATCH_RETRIES = 6

Via = Literal["api", "batch-api"]


class BatchOptions(TypedDict, total=False):
    """How to run a batch (see `RunOptions` for the defaults), and the client to run it with."""

    out_dir: str | os.PathLike[str] | None
    defaults: Mapping[str, Any] | None
    concurrency: int
    max_retries: int  # the batch's own: the client it makes does not retry
    force: bool
    skip_invalid: bool
    via: Via
    poll_interval: float
    metadata: bool
    on_progress: Callable[[BatchProgress], None] | None
    # AsyncClient's arguments
    api_key: str | None
    base_url: str | None
    organization: str | None
    project: str | None
    timeout: float | httpx2.Timeout | None | NotGiven
    max_retry_wait: float
    max_response_size: int | None
    max_image_size: int | None
    allow_private_downloads: bool | None
    proxy: str | None
    default_headers: Mapping[str, str] | None
    default_query: Mapping[str, str] | None
    azure_endpoint: str | None
    azure_deployment: str | None
    api_version: str | None
    azure_ad_token: str | None
    engine: str | Engine | None
    engine_model: str | None
    engine_options: Mapping[str, str] | None
    http_client: httpx2.AsyncClient | None


@dataclass(frozen=True)
class RunOptions:
    """The batch's own options, with their defaults, checked."""

    out_dir: str | os.PathLike[str] | None = None
    defaults: Mapping[str, Any] | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    max_retries: int = DEFAULT_BATCH_RETRIES
    force: bool = False
    skip_invalid: bool = False
    via: Via = "api"
    poll_interval: float = 30.0
    metadata: bool = True
    on_progress: Callable[[BatchProgress], None] | None = None

    def __post_init__(self) -> None:
        concurrency = self.concurrency
        if (
            isinstance(concurrency, bool)
            or not isinstance(concurrency, int)
            or not 1 <= concurrency <= MAX_CONCURRENCY
        ):
            raise ConfigurationError(
                f"Invalid concurrency {concurrency!r}: must be a whole number from 1 to "
                f"{MAX_CONCURRENCY} (--concurrency)."
            )
        if self.via not in ("api", "batch-api"):
            raise ConfigurationError(f"Invalid via {self.via!r}: use api or batch-api (--via).")
        if not self.poll_interval > 0:
            raise ConfigurationError(
                f"Invalid poll_interval {self.poll_interval!r}: must be positive."
            )
        check_max_retries(self.max_retries)


_RUN_NAMES = frozenset(field.name for field in fields(RunOptions))
# What `run(path, quality="low")` may mean: a parameter of the rows' requests.
_REQUEST_PARAMS = frozenset().union(*ENDPOINT_PARAMS.values()) | {"mask", "markup"}


def split(function: str, options: Mapping[str, Any]) -> tuple[RunOptions, dict[str, Any]]:
    """`options` as the batch's (checked) and the client's. A keyword neither takes is a
    `TypeError` naming it as `function`'s, with the closest known one (Python would not catch
    it: `Unpack` is for type checkers only)."""
    known = set(BatchOptions.__annotations__)
    for name in options:
        if name not in known:
            import difflib  # only for a misspelt name

            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            if name == "stop":
                hint = " (arun() takes stop; run() stops on Ctrl-C)"
            elif name in _REQUEST_PARAMS:
                hint = f" (request parameters for every row go in defaults={{{name!r}: ...}})"
            raise TypeError(f"{function}() got an unexpected keyword argument {name!r}{hint}")
    run = RunOptions(**{k: v for k, v in options.items() if k in _RUN_NAMES})
    return run, {k: v for k, v in options.items() if k not in _RUN_NAMES}
