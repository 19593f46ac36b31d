"""The outermost middleware: a request id on every answer, one access-log line, and a 500
in OpenAI's shape for anything that escaped the routes.

Access-log lines hold the client address, method, path (never the query string, which carries
URL signatures), status, duration and request id: no prompt, no header, no key.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._errors import REQUEST_ID_KEY, error_response, internal_error_message

__all__ = ["RequestContextMiddleware"]

logger = logging.getLogger("imagegen.server")
access_logger = logging.getLogger("imagegen.server.access")

# A client-sent id is kept if it is short and plain, so it can be logged and echoed safely.
_SANE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")


def _client_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SANE_ID.match(text) else None
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _client_request_id(scope) or f"req_{uuid.uuid4().hex}"
        scope[REQUEST_ID_KEY] = request_id
        start = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = request_id
                elapsed_ms = (time.perf_counter() - start) * 1000
                headers["openai-processing-ms"] = str(round(elapsed_ms))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            status = status or 499  # the client went away before the answer; nothing to send
        except Exception as exc:
            logger.error(
                "request %s failed: %s: %s", request_id, type(exc).__name__, exc, exc_info=exc
            )
            if status:  # the answer had begun; the connection can only be closed
                raise
            response = error_response(500, internal_error_message(request_id), type="server_error")
            await response(scope, receive, send_with_id)
        finally:
            client = scope.get("client")
            where = f"{client[0]}:{client[1]}" if client else "-"
            access_logger.info(
                '%s "%s %s" %d %.0fms %s',
                where,
                scope.get("method", "-"),
                scope.get("path", "-"),
                status,
                (time.perf_counter() - start) * 1000,
                request_id,
                extra={"http_status": status},  # errors are rate-limited by status (`_logs`)
            )
