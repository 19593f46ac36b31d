"""Azure OpenAI's URLs, served by the OpenAI routes.

Azure clients (the official `AzureOpenAI`, `imagegen --azure-endpoint`) call

    /openai/deployments/{deployment}/images/{generations,edits,variations}?api-version=...
    /openai/images/variations?api-version=...      (variations and calls without a model)
    /openai/models?api-version=...
    /openai/v1/images/...  /openai/v1/models        (the v1 API; api-version optional)
    /openai/v1/deployments/{deployment}/images/...  (`AzureOpenAI(base_url=".../openai/v1")`)

`AzureRoutesMiddleware` rewrites each to its `/v1/...` route and records the deployment in the
scope, so authentication, body limits, the routes and their handlers are OpenAI's, unchanged.
On Azure the deployment decides the model and the body's `model` is ignored; here a deployment
is named after a model (one of OpenAI's or one the engine declares), and any other name is
answered as Azure answers a missing deployment: 404 `DeploymentNotFound`.

`api-version` is required where Azure requires it (every form outside `/openai/v1/`), so a
client that forgets it fails here as it would on Azure; its value is not checked, since the
images API is the same in every version this server could claim to speak.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from .._errors import InvalidRequestError
from .._service import ImageService
from ._errors import ORIGINAL_PATH_KEY, HTTPError, error_response

__all__ = ["AZURE_PREFIX", "AzureRoutesMiddleware", "deployment_model"]

AZURE_PREFIX = "/openai/"
_DEPLOYMENT_KEY = "imagegen.azure_deployment"

# Matched on the raw path: a deployment named like `org/model` arrives as `org%2Fmodel`. A
# trailing slash is not matched (a 404, as on Azure): rewritten, Starlette would redirect it to
# the `/v1/` path, where the deployment no longer decides the model.
_AZURE_PATH = re.compile(
    rb"^/openai(?P<v1>/v1)?(?:/deployments/(?P<deployment>[^/]+)(?=/images/))?(?P<rest>/.*[^/])$"
)


@dataclass(frozen=True)
class _AzureCall:
    deployment: str | None
    path: str
    raw_path: bytes
    needs_version: bool


def _decoded(raw: bytes) -> str:
    return unquote_to_bytes(raw).decode("utf-8", "replace")


def _match(scope: Scope) -> _AzureCall | None:
    raw = scope.get("raw_path") or str(scope.get("path", "")).encode("utf-8")
    match = _AZURE_PATH.match(raw.split(b"?", 1)[0])
    if match is None or match["rest"].startswith(b"/deployments/"):
        return None  # a deployment route other than images: not served, left to answer 404
    deployment = match["deployment"]
    raw_path = b"/v1" + match["rest"]
    return _AzureCall(
        deployment=_decoded(deployment) if deployment else None,
        path=_decoded(raw_path),
        raw_path=raw_path,
        needs_version=match["v1"] is None,
    )


def _has_version(scope: Scope) -> bool:
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    return any(name == "api-version" and value.strip() for name, value in parse_qsl(query))


class AzureRoutesMiddleware:
    """Serves Azure's URL forms through the `/v1/` routes (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        call = _match(scope) if scope["type"] == "http" and path.startswith(AZURE_PREFIX) else None
        if call is None:
            await self.app(scope, receive, send)
            return
        if call.needs_version and not _has_version(scope):
            # Azure answers a missing version with 404 too; the message says what is missing.
            response = error_response(
                404,
                f"Missing the api-version query parameter: {path} needs one, as on Azure OpenAI "
                "(for example ?api-version=2025-04-01-preview); only /openai/v1/ routes do not.",
                param="api-version",
            )
            await response(scope, receive, send)
            return
        # A copy: the outer middleware keeps the path the client asked for, for its log line.
        child = dict(scope, path=call.path, raw_path=call.raw_path)
        child[ORIGINAL_PATH_KEY] = path
        child[_DEPLOYMENT_KEY] = call.deployment
        await self.app(child, receive, send)


def deployment_model(scope: Scope, service: ImageService) -> str | None:
    """The model an Azure deployment URL names, or `None` when the URL names no deployment.

    Raises `HTTPError` 404 `DeploymentNotFound` for a name that is not a model this server
    serves, as Azure does for a deployment it does not have.
    """
    deployment: str | None = scope.get(_DEPLOYMENT_KEY)
    if deployment is None:
        return None
    try:
        service.check_model(deployment)
    except InvalidRequestError:
        shown = deployment if len(deployment) <= 80 else deployment[:80] + "..."
        raise HTTPError(
            404,
            f"The API deployment for this resource does not exist: {shown!r} is not a model "
            f"this server serves; name the deployment after one that GET /openai/v1/models "
            f"lists, such as {service.default_model!r}.",
            code="DeploymentNotFound",
        ) from None
    return deployment
