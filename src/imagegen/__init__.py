"""imagegen: create, edit and vary images through any OpenAI-compatible Images API.

```python
import imagegen

result = imagegen.generate("a red fox in the snow", size="1024x1024")
result.save("fox.png")
```

Public names are imported on first use (PEP 562), so `import imagegen` and the command line
stay fast: httpx2, pydantic and Pillow load only when a client, a model or a result is touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._api import create_variation, edit, generate
    from ._async_client import AsyncClient
    from ._capabilities import ModelCapabilities, get_capabilities
    from ._client import Client
    from ._errors import (
        APIConnectionError,
        APIError,
        APIResponseError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        ConfigurationError,
        ConflictError,
        ContentPolicyError,
        EngineError,
        ImagegenError,
        InsufficientQuotaError,
        InternalServerError,
        InvalidRequestError,
        MissingDependencyError,
        NotFoundError,
        PermissionDeniedError,
        Problem,
        RateLimitError,
        UnprocessableEntityError,
    )
    from ._models import (
        CompletedEvent,
        EditRequest,
        ErrorBody,
        GenerateRequest,
        ImageData,
        ImagesResponse,
        ImagesUsage,
        PartialImageEvent,
        SvgUsage,
        VariationRequest,
    )
    from ._results import AsyncImageStream, GeneratedImage, ImagesResult, ImageStream, StreamEvent
    from ._types import NOT_GIVEN, NotGiven
    from .engines import Engine, EngineResult, Job

# Public name -> the private module that defines it.
_EXPORTS = {
    "APIConnectionError": "_errors",
    "APIError": "_errors",
    "APIResponseError": "_errors",
    "APIStatusError": "_errors",
    "APITimeoutError": "_errors",
    "AsyncClient": "_async_client",
    "AsyncImageStream": "_results",
    "AuthenticationError": "_errors",
    "BadRequestError": "_errors",
    "Client": "_client",
    "CompletedEvent": "_models",
    "ConfigurationError": "_errors",
    "ConflictError": "_errors",
    "ContentPolicyError": "_errors",
    "EditRequest": "_models",
    "Engine": "engines",
    "EngineError": "_errors",
    "EngineResult": "engines",
    "ErrorBody": "_models",
    "GenerateRequest": "_models",
    "GeneratedImage": "_results",
    "ImageData": "_models",
    "ImageStream": "_results",
    "ImagegenError": "_errors",
    "ImagesResponse": "_models",
    "ImagesResult": "_results",
    "ImagesUsage": "_models",
    "InsufficientQuotaError": "_errors",
    "InternalServerError": "_errors",
    "InvalidRequestError": "_errors",
    "Job": "engines",
    "MissingDependencyError": "_errors",
    "ModelCapabilities": "_capabilities",
    "NOT_GIVEN": "_types",
    "NotFoundError": "_errors",
    "NotGiven": "_types",
    "PartialImageEvent": "_models",
    "PermissionDeniedError": "_errors",
    "Problem": "_errors",
    "RateLimitError": "_errors",
    "StreamEvent": "_results",
    "SvgUsage": "_models",
    "UnprocessableEntityError": "_errors",
    "VariationRequest": "_models",
    "create_variation": "_api",
    "edit": "_api",
    "generate": "_api",
    "get_capabilities": "_capabilities",
}

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AsyncImageStream",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "CompletedEvent",
    "ConfigurationError",
    "ConflictError",
    "ContentPolicyError",
    "EditRequest",
    "Engine",
    "EngineError",
    "EngineResult",
    "ErrorBody",
    "GenerateRequest",
    "GeneratedImage",
    "ImageData",
    "ImageStream",
    "ImagegenError",
    "ImagesResponse",
    "ImagesResult",
    "ImagesUsage",
    "InsufficientQuotaError",
    "InternalServerError",
    "InvalidRequestError",
    "Job",
    "MissingDependencyError",
    "ModelCapabilities",
    "NOT_GIVEN",
    "NotFoundError",
    "NotGiven",
    "PartialImageEvent",
    "PermissionDeniedError",
    "Problem",
    "RateLimitError",
    "StreamEvent",
    "SvgUsage",
    "UnprocessableEntityError",
    "VariationRequest",
    "__version__",
    "create_variation",
    "edit",
    "generate",
    "get_capabilities",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'imagegen' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
