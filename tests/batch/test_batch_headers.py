"""The headers a batch paces by: `ImagesResult.headers` and `APIStatusError.headers`, from a
real server, for the sync and the async client."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import anyio
import pytest
from batchkit import serve
from PIL import Image

import imagegen

LIMITS = [
    (b"x-ratelimit-limit-requests", b"120"),
    (b"x-ratelimit-remaining-requests", b"0"),
    (b"X-RateLimit-Reset-Requests", b"500ms"),
]


def _png() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (9, 9, 9)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    limited = b"limited" in scope.get("query_string", b"")
    if limited:
        status = 429
        body = {"error": {"message": "Slow down.", "type": "requests"}}
        headers = [(b"retry-after-ms", b"250"), *LIMITS]
    else:
        status, body, headers = 200, {"created": 1, "data": [{"b64_json": _png()}]}, LIMITS
    headers = [(b"content-type", b"application/json"), (b"x-request-id", b"req_1"), *headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def test_results_and_status_errors_carry_the_answers_headers() -> None:
    with serve(_app) as url:
        client = imagegen.Client(base_url=url, api_key="x", max_retries=0)
        with client:
            result = client.generate("a fox")
            assert result.headers["x-ratelimit-remaining-requests"] == "0"
            assert result.headers["x-ratelimit-reset-requests"] == "500ms"  # names lower-cased
            assert result.request_id == "req_1"
            with pytest.raises(imagegen.RateLimitError) as refused:
                client.generate("a fox", extra_query={"limited": "1"})
        assert refused.value.headers["retry-after-ms"] == "250"
        assert refused.value.retry_after == 0.25

        async def async_client() -> None:
            async with imagegen.AsyncClient(base_url=url, api_key="x", max_retries=0) as aclient:
                answer = await aclient.generate("a fox")
                assert answer.headers["x-ratelimit-limit-requests"] == "120"

        anyio.run(async_client)
    # In process there is no HTTP answer: no headers.
    with imagegen.Client(engine="placeholder") as local:
        assert dict(local.generate("a fox", size="64x64").headers) == {}
