"""Which image URLs the client downloads: http(s) only, and where they may point.

A URL result is fetched by this client, so a server that hands out URLs chooses where the
client connects: `file:`, `ftp:` and other schemes are refused outright (a `data:` URL is not
fetched at all: its image is inline, decoded like `b64_json`). Private addresses, that is
loopback, private networks, link-local (cloud metadata at 169.254.169.254), shared, reserved
and multicast ones, are refused unless allowed (`allow_private_downloads`, `--private-downloads`):

- `None` (the default): allowed when the base URL itself is on such an address, as a local
  server is (`imagegen serve` hands out URLs on its own loopback or LAN address); refused when
  it is public, as OpenAI is, whose URLs point at public blob storage: a public API handing out
  a private URL is aiming the client at the network it runs in (server-side request forgery).
- `True` / `False`: always allowed / always refused.

Every address a host name resolves to is checked before each request, on every redirect hop,
and the address actually connected to is checked again when the connection opens (see
`_network`), so a name that resolves elsewhere the second time gains nothing. Through a proxy
only the first check applies (the proxy connects), as far as this machine can resolve the name.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from ._config import redacted_url
from ._errors import APIResponseError

__all__ = ["Reach", "is_public", "private_allowed", "reach_for"]

_FLAG = "allow_private_downloads (--private-downloads)"


def is_public(address: str) -> bool:
    """Whether an IP address is on the public internet: not private, loopback, link-local,
    shared (CGNAT), multicast, reserved or unspecified; IPv4 inside IPv6 is judged as IPv4."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone (`fe80::1%eth0`)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is not None:
            ip = inner
    return ip.is_global and not ip.is_multicast


def _addresses(host: str, port: int) -> list[str]:
    """Every address `host` resolves to; none if it does not resolve (the request then fails
    with the resolver's own error, or a proxy resolves it)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return [str(info[4][0]) for info in infos]


@functools.lru_cache(maxsize=32)
def _is_private_host(host: str) -> bool:
    addresses = _addresses(host, 443)
    return bool(addresses) and not any(is_public(address) for address in addresses)


def private_allowed(setting: bool | None, base_url: str) -> bool:
    """Whether downloads may reach private addresses, given the setting and the base URL."""
    if setting is not None:
        return setting
    try:
        host = urlsplit(base_url).hostname or ""
    except ValueError:
        return False
    return _is_private_host(host)


@dataclass(frozen=True)
class Reach:
    """Where one download may connect: public addresses, and private ones if `private`."""

    url: str  # as messages show it: without its query (a signature)
    private: bool

    def allows(self, address: str) -> bool:
        return self.private or is_public(address)

    def refused(self, address: str) -> APIResponseError:
        return APIResponseError(
            f"The server sent an image URL on a private address ({self.url} is {address}), "
            "which this client does not download from a public API: such a URL points the "
            "client at the network it runs in. If you trust the server, allow it with "
            f"{_FLAG}."
        )


def reach_for(url: str, *, private: bool) -> Reach:
    """Check a URL result before fetching it; return what its connection may reach.

    Raises `APIResponseError` for a scheme other than http(s), or a host with a private
    address when those are not allowed.
    """
    parts = urlsplit(url)
    shown = redacted_url(url).split("#", 1)[0].split("?", 1)[0]
    if parts.scheme.lower() not in ("http", "https"):
        scheme = f"{parts.scheme}:" if parts.scheme else "no scheme"
        raise APIResponseError(
            f"The server sent an image URL with {scheme} ({shown[:100]!r}); only http and "
            "https URLs are downloaded."
        )
    reach = Reach(shown, private)
    if private or not parts.hostname:
        return reach
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:  # a port out of range: httpx2 refuses the URL with its own words
        return reach
    for address in _addresses(parts.hostname, port):
        if not reach.allows(address):
            raise reach.refused(address)
    return reach
