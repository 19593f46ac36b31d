"""One exception tree for the library, the command line and the server.

```
ImagegenError
├── InvalidRequestError        bad input, found before anything is sent (also ValueError)
├── ConfigurationError         missing key, bad base URL, unknown engine, missing extra
│   └── MissingDependencyError an optional extra is not installed
├── EngineError                a local engine failed while making images
└── APIError                   anything that went wrong talking to a server
    ├── APIConnectionError     no response: refused, reset, DNS, proxy
    │   └── APITimeoutError    no response in time
    ├── APIResponseError       a 2xx answer we could not understand
    └── APIStatusError         a non-2xx answer; carries status, type, code, param
        ├── BadRequestError            400
        │   └── ContentPolicyError     400 refused by moderation / content policy
        ├── AuthenticationError        401
        ├── PermissionDeniedError      403
        ├── NotFoundError              404
        ├── ConflictError              409
        ├── UnprocessableEntityError   422
        ├── RateLimitError             429
        │   └── InsufficientQuotaError 429 with code insufficient_quota (never retried)
        └── InternalServerError        >= 500
```

The CLI maps `InvalidRequestError` and `ConfigurationError` to exit code 2 and every other
`ImagegenError` to exit code 1. The server maps `InvalidRequestError` to a 400 in OpenAI's shape.

No message, repr or attribute of these classes ever holds an API key: messages are built from
the server's error body, which the caller's key is scrubbed from (see `redact`), and every error
leaving the HTTP transport has each of its attributes scrubbed (`redact_error`): the message,
`args`, the error body however deeply nested, and the fields taken from it or from headers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "ContentPolicyError",
    "EXTRA_BODY_PARAMETER",
    "EngineError",
    "ImagegenError",
    "InsufficientQuotaError",
    "InternalServerError",
    "InvalidRequestError",
    "MissingDependencyError",
    "NotFoundError",
    "PermissionDeniedError",
    "Problem",
    "RateLimitError",
    "UnprocessableEntityError",
    "make_status_error",
    "redact",
    "redact_error",
]

# `InvalidRequestError.code` for a method's own parameter put in extra_body (`param` names it):
# the command line words it with the parameter's flag.
EXTRA_BODY_PARAMETER = "parameter_in_extra_body"

# OpenAI, Azure and most compatible servers echo part of a bad key back ("Incorrect API key
# provided: sk-ab***yz"); anything shaped like a secret is masked before it reaches a message.
# A URL's password is masked wherever the URL is printed, by us or by a library we log for
# (httpx2 logs each request's URL, `user:password@` included).
# OpenAI's 401 reads "Authorization: Bearer YOUR_KEY": a placeholder in capitals is no key, and
# masking it would only hide how to send one.
_TOKEN = r"[A-Za-z0-9._~+/=\-]"
# Compiled on first use, by `re` (most runs have nothing to redact).
_SECRET_PATTERNS = [
    (r"\b(sk-[A-Za-z0-9_\-*]{3,})", "sk-***"),
    (rf"((?i:bearer)\s+)(?![A-Z_]+(?!{_TOKEN})){_TOKEN}{{8,}}", r"\1***"),
    (r"(?i)(\b[a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^/\s?#]*@", r"\1***@"),
]


def redact(text: str, *secrets: str | None) -> str:
    """Return `text` with the given secrets, URL passwords and anything that looks like an API
    key masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    for pattern, mask in _SECRET_PATTERNS:
        text = re.sub(pattern, mask, text)
    return text


def _redact_value(value: Any, secrets: tuple[str | None, ...]) -> Any:
    if isinstance(value, str):
        return redact(value, *secrets)
    if isinstance(value, Mapping):
        return {
            _redact_value(key, secrets): _redact_value(item, secrets) for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        items = [_redact_value(item, secrets) for item in value]
        # A named tuple (`Problem`) takes its fields one by one.
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value


def redact_error(error: BaseException, *secrets: str | None) -> BaseException:
    """Scrub `secrets`, URL passwords and key-shaped text from every attribute of `error` (in
    place; nested dicts and lists of its body included); return it."""
    for name, value in list(vars(error).items()):  # `__notes__` too, if any were added
        setattr(error, name, _redact_value(value, secrets))
    error.args = _redact_value(error.args, secrets)
    return error


class ImagegenError(Exception):
    """Base class of every error imagegen raises on purpose.

    Every error has the same five attributes, `None` where they do not apply (an error raised
    before anything was sent has no status and no request id), so handlers need no `getattr`.
    """

    param: str | None = None
    code: str | None = None
    status_code: int | None = None
    request_id: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Problem(NamedTuple):
    """One rule a request breaks: the wire parameter (`size`, `svg.model`, ...) and why."""

    param: str | None
    message: str
    code: str | None = None


class InvalidRequestError(ImagegenError, ValueError):
    """A parameter breaks a rule of the API or of the chosen model; nothing was sent.

    `param` is the wire name of the offending parameter (`size`, `image`, `mask`, ...), so the
    command line can name its flag and the server can answer with OpenAI's `param` field.
    A request that breaks several rules raises one error for all of them: `problems` lists
    each (`param`, `message`, `code`), the message holds one line per problem, and `param` and
    `code` are the first problem's. A single problem reads as it always did.
    """

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        problems: Sequence[Problem] = (),
    ) -> None:
        super().__init__(message)
        self.param = param
        self.code = code
        self.problems: tuple[Problem, ...] = tuple(problems) or (Problem(param, message, code),)

    @classmethod
    def combine(cls, errors: Sequence[InvalidRequestError]) -> InvalidRequestError:
        """One error for every problem of `errors` (in order); the error itself if only one."""
        problems = [problem for error in errors for problem in error.problems]
        if len(errors) == 1 and len(problems) == 1:
            return errors[0]
        first = problems[0]
        return cls(
            "\n".join(problem.message for problem in problems),
            param=first.param,
            code=first.code,
            problems=problems,
        )

    def __repr__(self) -> str:
        return f"InvalidRequestError({self.message!r}, param={self.param!r})"


class ConfigurationError(ImagegenError):
    """The environment or the options cannot work: no key, a bad URL, an unknown engine.

    `param`, when set, is the keyword argument at fault as the raiser names it (an engine's
    `model` or `options`), so the command line can name the flag that sets it.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, param={self.param!r})"


class MissingDependencyError(ConfigurationError, ImportError):
    """An optional extra is needed; the message names the `pip install` that fixes it."""


class EngineError(ImagegenError):
    """A local engine failed while making images."""


class APIError(ImagegenError):
    """Something went wrong talking to an Images API server."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class APIConnectionError(APIError):
    """The server could not be reached, or the connection broke before an answer came."""


class APITimeoutError(APIConnectionError):
    """No answer came within the timeout."""


class APIResponseError(APIError):
    """The server answered 2xx with a body that is not a valid Images API response."""


class APIStatusError(APIError):
    """The server answered with a non-2xx status.

    Attributes mirror OpenAI's error body: `type`, `code`, `param`; `body` is the parsed JSON (or
    None), `status_code` the HTTP status, `request_id` the `x-request-id` header, `retry_after`
    the server's hint in seconds when it gave one, `headers` the answer's HTTP headers with
    lower-case names (`x-ratelimit-remaining-requests`, ...; empty for an error carried in a
    stream).
    """

    status_code: int = 0

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        body: Any = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.status_code = status_code
        self.type = type
        self.code = code
        self.param = param
        self.body = body
        self.retry_after = retry_after
        self.headers: Mapping[str, str] = {k.lower(): v for k, v in (headers or {}).items()}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code}, code={self.code!r}, "
            f"param={self.param!r}, message={self.message!r})"
        )


class BadRequestError(APIStatusError):
    """400: the server refused the request as invalid."""


class ContentPolicyError(BadRequestError):
    """400: refused by the safety system; `moderation_details` holds stage and categories."""

    @property
    def moderation_details(self) -> dict[str, Any] | None:
        if isinstance(self.body, Mapping):
            error = self.body.get("error", self.body)
            if isinstance(error, Mapping):
                details = error.get("moderation_details")
                if isinstance(details, dict):
                    return details
        return None


class AuthenticationError(APIStatusError):
    """401: the key is missing, wrong or revoked."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this model or region (for example an unverified organization)."""


class NotFoundError(APIStatusError):
    """404: unknown model, deployment or route."""


class ConflictError(APIStatusError):
    """409: the server reports a conflicting request; retried."""


class UnprocessableEntityError(APIStatusError):
    """422: the server understood the request but cannot process it."""


class RateLimitError(APIStatusError):
    """429: too many requests; retried after the server's hint or a backoff."""


class InsufficientQuotaError(RateLimitError):
    """429 with code `insufficient_quota`: the account is out of credit; never retried."""


class InternalServerError(APIStatusError):
    """>= 500: the server failed; retried."""


# Error codes of a refusal by the safety system: OpenAI's GPT image and DALL·E, and Azure's.
CONTENT_POLICY_CODES = frozenset(
    {"moderation_blocked", "content_policy_violation", "contentFilter"}
)

_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def make_status_error(
    status_code: int,
    body: Any,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
    text: str = "",
    secrets: tuple[str | None, ...] = (),
    headers: Mapping[str, str] | None = None,
) -> APIStatusError:
    """Build the most specific `APIStatusError` for a status and an (OpenAI-shaped) body."""
    error: Mapping[str, Any] = {}
    if isinstance(body, Mapping):
        inner = body.get("error")
        if isinstance(inner, Mapping):
            error = inner
        elif isinstance(inner, str):
            error = {"message": inner}
        elif "message" in body:
            error = body
    message = error.get("message") or text.strip() or f"HTTP {status_code}"
    if not isinstance(message, str):
        message = str(message)
    err_type = error.get("type") if isinstance(error.get("type"), str) else None
    code = error.get("code") if isinstance(error.get("code"), str) else None
    param = error.get("param") if isinstance(error.get("param"), str) else None

    cls: type[APIStatusError]
    if status_code == 429 and (code == "insufficient_quota" or err_type == "insufficient_quota"):
        cls = InsufficientQuotaError
    elif status_code == 400 and code in CONTENT_POLICY_CODES:
        cls = ContentPolicyError
    elif status_code >= 500:
        cls = InternalServerError
    else:
        cls = _BY_STATUS.get(status_code, APIStatusError)

    detail = redact(message, *secrets)
    label = f"{status_code}" + (f" {code}" if code else "")
    full = f"Server answered {label}: {detail}"
    if param:
        full += f" (param: {param})"
    if request_id:
        full += f" [request id {request_id}]"
    return cls(
        full,
        status_code=status_code,
        type=err_type,
        code=code,
        param=param,
        body=body,
        request_id=request_id,
        retry_after=retry_after,
        headers=headers,
    )
