"""Every error the server answers, in OpenAI's shape and with OpenAI's status.

`{"error": {"message", "type", "param", "code"}}`: the official SDKs unwrap it and raise their
own class by status (400 `BadRequestError` with `.param`, 401 `AuthenticationError`, 429
`RateLimitError`...). Unexpected failures become a 500 in the same shape that names the
request id and nothing of the server's insides; the details go to the server log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._errors import ImagegenError, InvalidRequestError
from .._models import ErrorBody, ErrorDetail

__all__ = [
    "HTTPError",
    "error_response",
    "exception_handlers",
    "internal_error_message",
    "request_id_of",
    "shown_path",
]

logger = logging.getLogger("imagegen.server")

REQUEST_ID_KEY = "imagegen.request_id"
# The path the client asked for, when a route form (Azure's) was rewritten to another route.
ORIGINAL_PATH_KEY = "imagegen.original_path"


class HTTPError(Exception):
    """An answer other than 200, raised anywhere below a route and rendered by one handler."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})


def request_id_of(scope: Mapping[str, Any]) -> str:
    return str(scope.get(REQUEST_ID_KEY, ""))


def shown_path(scope: Mapping[str, Any]) -> str:
    """The path as the client sent it, for messages."""
    return str(scope.get(ORIGINAL_PATH_KEY) or scope.get("path", ""))


def error_body(
    message: str, *, type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    detail = ErrorDetail(message=message, type=type, param=param, code=code)
    return ErrorBody(error=detail).model_dump()


def error_response(
    status_code: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return JSONResponse(
        error_body(message, type=type, param=param, code=code),
        status_code=status_code,
        headers=dict(headers or {}),
    )


def internal_error_message(request_id: str) -> str:
    return (
        "The server had an error while processing your request. You can retry your request; "
        f"the server log has the details under request id {request_id}."
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPError)
    return error_response(
        exc.status_code,
        exc.message,
        type=exc.type,
        param=exc.param,
        code=exc.code,
        headers=exc.headers,
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


async def _starlette_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404, 405 and multipart-parser 400s, reworded as OpenAI words them."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    path = str(request.scope.get(ORIGINAL_PATH_KEY) or request.url.path)
    if status == 404:
        message = f"Invalid URL ({request.method} {path})"
    elif status == 405:
        message = f"Method {request.method} is not allowed for {path}."
    else:
        message = str(exc.detail or _phrase(status))
        if status == 400:  # only the multipart parser raises these inside this app
            message = f"Invalid multipart/form-data body: {message}"
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return error_response(status, message, type=kind, headers=exc.headers)


# Codes of `InvalidRequestError` that OpenAI answers with a status other than 400.
_STATUS_BY_CODE = {"model_not_found": 404}


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidRequestError)
    status = _STATUS_BY_CODE.get(exc.code or "", 400)
    return error_response(status, exc.message, param=exc.param, code=exc.code)


async def _imagegen_error(request: Request, exc: Exception) -> Response:
    # EngineError, ConfigurationError...: a failure on our side, never the caller's fault.
    request_id = request_id_of(request.scope)
    logger.error("request %s failed: %s: %s", request_id, type(exc).__name__, exc, exc_info=exc)
    return error_response(500, internal_error_message(request_id), type="server_error")


def exception_handlers() -> dict[Any, Any]:
    """By class; Starlette picks the handler of the nearest class in the exception's MRO."""
    return {
        HTTPError: _http_error,
        HTTPException: _starlette_http_exception,
        InvalidRequestError: _invalid_request,
        ImagegenError: _imagegen_error,
    }
