"""Proxies: which one a URL goes through, whether its URL can work, and its secrets; and
httpx2's connection errors as imagegen's (`connection_error`), blaming the right one.

httpx2 picks a proxy itself (the `proxy` argument, else HTTPS_PROXY / HTTP_PROXY / ALL_PROXY
with NO_PROXY); the same routes are built here so that a failure to connect through one can
name the proxy and the setting it came from rather than the server behind it, and so that a
proxy URL that cannot work is refused before a client is built.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx2

try:
    # Private helpers, used only so that errors can blame the right proxy: if a release of
    # httpx2 moves them, requests still work and errors just name the server.
    from httpx2._utils import URLPattern, get_environment_proxies

    CAN_ROUTE = True
except ImportError:  # pragma: no cover - depends on the installed httpx2
    CAN_ROUTE = False

from ._config import redacted_url
from ._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ConfigurationError,
    MissingDependencyError,
    redact,
)

__all__ = ["Proxy", "connection_error", "proxy_routes", "proxy_secrets"]

_PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")
# The schemes `httpx2.Proxy` accepts; socks5 and socks5h also need the socksio package.
_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def proxy_secrets(proxy: str | None) -> tuple[str, ...]:
    found = []
    for url in (proxy, *(os.environ.get(name) for name in _PROXY_VARS)):
        if url:
            with contextlib.suppress(ValueError):
                password = urlsplit(url).password
                if password:
                    found.append(password)
    return tuple(found)


@dataclass(frozen=True)
class Proxy:
    url: str
    source: str  # `--proxy`, or the environment variable that set it

    def check(self) -> None:
        """Refuse a URL that httpx2 would reject with a bare ValueError or ImportError (which
        names `httpx[socks]`, not our httpx2), or that could only fail when connecting."""
        shown = redacted_url(self.url)
        example = (
            "use a URL such as 'http://proxy.example:3128' (httpx2 supports http://, https://, "
            "socks5:// and socks5h:// proxies)"
        )
        try:
            parsed = httpx2.URL(self.url)
        except httpx2.InvalidURL as exc:
            detail = redact(str(exc), *proxy_secrets(self.url))
            problem = f"it is not a valid URL ({detail})"
        else:
            if not parsed.scheme:
                problem = "it has no scheme"
            elif parsed.scheme not in _PROXY_SCHEMES:
                problem = f"{parsed.scheme}:// is not a proxy scheme"
            elif any(char.isspace() for char in self.url):
                problem = "it contains a space"
            elif not parsed.host:
                problem = "it names no host"
            elif parsed.scheme.startswith("socks") and importlib.util.find_spec("socksio") is None:
                raise MissingDependencyError(
                    f"The SOCKS proxy {shown!r} ({self.source}) needs the socksio package: "
                    "pip install 'httpx2[socks]'."
                )
            else:
                return
        raise ConfigurationError(
            f"Invalid proxy URL {shown!r} ({self.source}): {problem}; {example}."
        )


def _env_proxy_source(key: str, url: str) -> str:
    scheme = key.removesuffix("://")
    for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):
        value = os.environ.get(name, "")
        if value and url in (value, f"http://{value}"):  # httpx2 adds http:// to a bare host
            return name
    return f"{scheme.upper()}_PROXY"


def proxy_routes(proxy: str | None) -> list[tuple[URLPattern, Proxy | None]]:
    """Which proxy each URL goes through, built as httpx2 builds its mounts (the proxy
    argument, else the environment with NO_PROXY), so that errors can blame the proxy."""
    if not CAN_ROUTE:
        return []
    routes: dict[URLPattern, Proxy | None] = {}
    if proxy is not None:
        routes[URLPattern("all://")] = Proxy(proxy, "--proxy")
    else:
        for key, url in get_environment_proxies().items():
            try:
                pattern = URLPattern(key)
            except (ValueError, httpx2.InvalidURL) as exc:
                raise ConfigurationError(
                    f"Invalid NO_PROXY entry {key!r} in the environment: {exc}; list host names, "
                    "IP addresses or networks such as 10.0.0.0/8, separated by commas."
                ) from None
            routes[pattern] = None if url is None else Proxy(url, _env_proxy_source(key, url))
    return sorted(routes.items())


def _tls_failure(exc: BaseException) -> bool:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        if isinstance(current, ssl.SSLError):
            return True
        seen.append(current)
        current = current.__cause__ or current.__context__
    return False


def _proxy_for(routes: list[tuple[URLPattern, Proxy | None]], url: httpx2.URL) -> Proxy | None:
    for pattern, proxy in routes:  # sorted as httpx2 sorts its mounts
        if pattern.matches(url):
            return proxy
    return None


def connection_error(
    exc: httpx2.HTTPError,
    url: str | httpx2.URL,
    *,
    routes: list[tuple[URLPattern, Proxy | None]],
    secrets: tuple[str, ...],
) -> APIError:
    """httpx2's error for a request to `url` as imagegen's, blaming the proxy when one failed."""
    # "ReadTimeout: timed out", or the name alone where httpx2 gives no text (async timeouts).
    said = type(exc).__name__ + (f": {redact(str(exc), *secrets)}" if str(exc) else "")
    parsed = httpx2.URL(str(url))
    target = redact(str(parsed.copy_with(query=None)), *secrets)
    proxy = _proxy_for(routes, parsed)
    error: APIError
    connecting = isinstance(exc, (httpx2.ConnectError, httpx2.ConnectTimeout))
    if proxy is not None and connecting and not _tls_failure(exc):
        # Through a proxy, the client only connects to the proxy: a TLS failure comes
        # from the target (through the tunnel), every other connect failure from the proxy.
        shown = redact(redacted_url(proxy.url), *secrets)
        where = f"the proxy {shown} ({proxy.source})"
        if isinstance(exc, httpx2.ConnectTimeout):
            error = APITimeoutError(
                f"No answer in time from {where} on the way to {target} "
                f"({said}). Check that the proxy is running."
            )
        else:
            error = APIConnectionError(
                f"Could not reach {where} on the way to {target}: {said}. Check that the "
                "proxy is running and its address is right."
            )
    elif proxy is not None and isinstance(exc, httpx2.ProxyError):
        shown = redact(redacted_url(proxy.url), *secrets)
        error = APIConnectionError(
            f"The proxy {shown} ({proxy.source}) could not connect to {target}: {said}."
        )
    elif isinstance(exc, httpx2.TimeoutException):
        error = APITimeoutError(
            f"No complete answer from {target} in time ({said}). "
            "Raise the timeout (--timeout) or try again later."
        )
    else:
        error = APIConnectionError(f"Could not talk to {target}: {said}.")
    return error
