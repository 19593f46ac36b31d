"""API keys: `Authorization: Bearer KEY` (OpenAI) or `api-key: KEY` (Azure), on `/v1/` routes,
Azure's `/openai/` ones and `/metrics`.

Keys are compared in constant time over their SHA-256 digests, so neither the content nor the
length of a configured key can be learned from response timing. `/health` and the signed file
links (whose signature is their credential, like OpenAI's blob URLs) need no key.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from ._azure import AZURE_PREFIX
from ._errors import error_response

__all__ = ["AuthMiddleware"]

OPENAI_PREFIX = "/v1/"
METRICS_PATH = "/metrics"  # traffic and model names are the operator's business


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


def _presented_key(scope: Scope) -> bytes | None:
    bearer: bytes | None = None
    api_key: bytes | None = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                bearer = token.strip()
        elif name == b"api-key" and value.strip():
            api_key = value.strip()
    return bearer if bearer is not None else api_key


class AuthMiddleware:
    """Refuses `/v1/`, `/openai/` and `/metrics` requests without one of `keys`; does nothing
    when `keys` is empty."""

    def __init__(self, app: ASGIApp, *, keys: list[str]) -> None:
        self.app = app
        self._digests = [_digest(key.encode("utf-8")) for key in keys]

    def _accepts(self, presented: bytes) -> bool:
        candidate = _digest(presented)
        matched = False
        for digest in self._digests:  # no early exit: every key costs the same
            matched |= hmac.compare_digest(candidate, digest)
        return matched

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if (
            scope["type"] != "http"
            or not self._digests
            or not (path.startswith((OPENAI_PREFIX, AZURE_PREFIX)) or path == METRICS_PATH)
        ):
            await self.app(scope, receive, send)
            return
        presented = _presented_key(scope)
        if presented is None:
            where = (
                "an api-key header (i.e. api-key: YOUR_KEY)"
                if path.startswith(AZURE_PREFIX)
                else "an Authorization header using Bearer auth (i.e. Authorization: Bearer "
                "YOUR_KEY)"
            )
            message = f"You didn't provide an API key. You need to provide your API key in {where}."
            response = error_response(401, message, headers={"www-authenticate": "Bearer"})
        elif not self._accepts(presented):
            response = error_response(
                401,
                "Incorrect API key provided.",
                code="invalid_api_key",
                headers={"www-authenticate": "Bearer"},
            )
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)
