"""Errors carry status, code, param and request id; no secret reaches a message, log or repr."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import traceback
from collections.abc import Callable

import pytest
from scripted import API_KEY, TINY_B64, Reply, ScriptedServer

import imagegen

MakeClient = Callable[..., imagegen.Client]


def test_status_error_carries_the_error_body(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    body = {
        "error": {
            "message": "Invalid size '1792x936'. Width and height must both be divisible by 16.",
            "type": "invalid_request_error",
            "param": "size",
            "code": "invalid_value",
        }
    }
    server.script(Reply(status=400, json=body, headers={"x-request-id": "req_42"}))
    with pytest.raises(imagegen.BadRequestError) as info:
        client.generate("a fox")
    error = info.value
    assert (error.status_code, error.type, error.code, error.param) == (
        400,
        "invalid_request_error",
        "invalid_value",
        "size",
    )
    assert error.request_id == "req_42"
    assert error.body == body
    assert "divisible by 16" in str(error) and "req_42" in str(error)


def test_moderation_refusal_has_its_details(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    details = {"moderation_stage": "input", "categories": ["violence"]}
    body = {
        "error": {
            "message": "Your request was rejected by the safety system.",
            "type": "image_generation_user_error",
            "param": None,
            "code": "moderation_blocked",
            "moderation_details": details,
        }
    }
    server.script(Reply(status=400, json=body))
    with pytest.raises(imagegen.ContentPolicyError) as info:
        client.generate("a fox")
    assert info.value.moderation_details == details


def test_non_json_error_body_is_reported_as_text(
    make_client: MakeClient, server: ScriptedServer
) -> None:
    server.script(Reply(status=502, body=b"<html>Bad gateway</html>", content_type="text/html"))
    with pytest.raises(imagegen.InternalServerError, match="Bad gateway"):
        make_client(max_retries=0).generate("a fox")


def test_a_2xx_body_that_is_not_an_images_response(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    server.script(Reply(body=b"not json", content_type="text/plain"))
    with pytest.raises(imagegen.APIResponseError, match="not an Images API response"):
        client.generate("a fox")


def test_a_2xx_body_with_an_error_object_raises_it(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    server.script(Reply(json={"error": {"message": "engine crashed", "type": "server_error"}}))
    with pytest.raises(imagegen.InternalServerError, match="engine crashed"):
        client.generate("a fox")


def test_key_echoed_by_the_server_is_redacted(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    body = {
        "error": {
            "message": f"Incorrect API key provided: {API_KEY}.",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    server.script(Reply(status=401, json=body))
    with pytest.raises(imagegen.AuthenticationError) as info:
        client.generate("a fox")
    assert API_KEY not in str(info.value)
    assert API_KEY not in repr(info.value)
    assert "Incorrect API key provided" in str(info.value)


def test_client_repr_masks_secrets() -> None:
    with imagegen.Client(api_key=API_KEY, base_url="http://127.0.0.1:9/v1") as client:
        assert API_KEY not in repr(client)
        assert "api_key='***'" in repr(client)
    token = "eyJhbGciOiJSUzI1NiJ9.secret-token-value"
    with imagegen.Client(
        azure_endpoint="https://res.openai.azure.com",
        api_version="2025-04-01-preview",
        azure_ad_token=token,
    ) as azure:
        assert token not in repr(azure)
        assert token not in repr(azure._settings)


def test_proxy_password_and_key_stay_out_of_connection_errors(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(
        base_url="http://images.invalid/v1",
        proxy=f"http://user:hunter2-proxy-pass@127.0.0.1:{port}",
        max_retries=1,
    )
    with (
        caplog.at_level(logging.DEBUG, logger="imagegen"),
        pytest.raises(imagegen.APIConnectionError) as info,
    ):
        client.generate("a fox")
    for text in (str(info.value), repr(info.value), caplog.text):
        assert "hunter2-proxy-pass" not in text
        assert API_KEY not in text
    assert "Retrying" in caplog.text


def _chain(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _assert_detached(error: BaseException) -> None:
    """No exception behind ours is httpx2's: its `request.headers` hold the API key, and
    loggers and error trackers walk `__cause__` / `__context__`."""
    chain = _chain(error)
    assert [type(e).__module__.split(".")[0] for e in chain[1:]].count("httpx2") == 0, chain
    for each in chain:
        request = getattr(each, "_request", None)
        assert request is None or API_KEY not in str(dict(request.headers))
    assert API_KEY not in "".join(traceback.format_exception(error))


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_connection_errors_do_not_chain_to_httpx2_requests(make_client: MakeClient) -> None:
    client = make_client(base_url=f"http://127.0.0.1:{_closed_port()}/v1", max_retries=0)
    with pytest.raises(imagegen.APIConnectionError) as info:
        client.generate("a fox")
    assert "ConnectError" in str(info.value)  # httpx2's type and text stay in the message
    _assert_detached(info.value)

    async def main() -> BaseException:
        async with imagegen.AsyncClient(
            base_url=f"http://127.0.0.1:{_closed_port()}/v1", api_key=API_KEY, max_retries=0
        ) as aclient:
            with pytest.raises(imagegen.APIConnectionError) as ainfo:
                await aclient.generate("a fox")
            return ainfo.value

    _assert_detached(asyncio.run(main()))


def test_a_stream_breaking_mid_body_does_not_chain_to_httpx2(
    make_client: MakeClient, server: ScriptedServer
) -> None:
    event = {
        "type": "image_generation.partial_image",
        "b64_json": TINY_B64,
        "created_at": 1_790_000_000,
        "size": "1024x1024",
        "quality": "low",
        "background": "opaque",
        "output_format": "png",
        "partial_image_index": 0,
    }
    first = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
    broken = Reply(break_after=first, content_type="text/event-stream")
    server.script(broken, broken)
    stream = make_client(max_retries=0).generate("a fox", partial_images=1)
    with pytest.raises(imagegen.APIConnectionError) as info:
        for _ in stream:
            pass
    _assert_detached(info.value)

    async def main() -> BaseException:
        async with imagegen.AsyncClient(
            base_url=server.base_url, api_key=API_KEY, max_retries=0
        ) as aclient:
            astream = await aclient.generate("a fox", partial_images=1)
            with pytest.raises(imagegen.APIConnectionError) as ainfo:
                async for _ in astream:
                    pass
            return ainfo.value

    _assert_detached(asyncio.run(main()))


def test_a_password_in_the_base_url_stays_out_of_reprs_and_errors(
    caplog: pytest.LogCaptureFixture, sleeps: list[float]
) -> None:
    password = "gateway-pass-8472"
    url = f"http://user:{password}@127.0.0.1:{_closed_port()}/v1"
    with (
        imagegen.Client(base_url=url, max_retries=1) as client,
        caplog.at_level(logging.DEBUG, logger="imagegen"),
        pytest.raises(imagegen.APIConnectionError) as info,
    ):
        assert password not in repr(client) and "user:***@" in repr(client)
        assert password not in repr(client._settings)
        client.generate("a fox")
    for text in (str(info.value), repr(info.value), caplog.text):
        assert password not in text
    assert "user:***@127.0.0.1" in str(info.value)
    openai_url = f"https://user:{password}@api.openai.com/v1"
    with pytest.raises(imagegen.ConfigurationError) as missing:
        imagegen.Client(base_url=openai_url)
    assert password not in str(missing.value)


def test_a_short_url_password_is_masked_and_is_not_an_api_key() -> None:
    url = "http://u:pw@127.0.0.1:9/v1"
    with imagegen.Client(base_url=url) as client:
        assert repr(client) == (
            "Client(base_url='http://u:***@127.0.0.1:9/v1', api_key=None, max_retries=2)"
        )
    with pytest.raises(imagegen.ConfigurationError) as keyed:  # see test_client_credentials
        imagegen.Client(base_url=url, api_key=API_KEY)
    assert ":pw@" not in str(keyed.value) and API_KEY not in str(keyed.value)

    async def main() -> str:
        async with imagegen.AsyncClient(base_url=url) as aclient:
            return repr(aclient)

    assert asyncio.run(main()).startswith("AsyncClient(base_url='http://u:***@127.0.0.1:9/v1'")


def test_missing_key_for_openai_names_both_fixes() -> None:
    with pytest.raises(imagegen.ConfigurationError) as info:
        imagegen.Client()
    message = str(info.value)
    assert "OPENAI_API_KEY" in message and "--api-key" in message
    assert "OPENAI_BASE_URL" in message and "--base-url" in message


def test_a_redirect_is_not_followed_for_api_calls(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    server.script(Reply(status=308, headers={"location": "https://elsewhere.invalid/v1"}))
    with pytest.raises(imagegen.APIStatusError, match="use that as the base URL") as info:
        client.generate("a fox")
    assert info.value.status_code == 308
    assert len(server.requests) == 1


def test_saving_an_answer_without_images_is_an_error(
    client: imagegen.Client, server: ScriptedServer, tmp_path
) -> None:
    server.script(Reply(json={"created": 1, "data": []}))
    result = client.generate("a fox")
    with pytest.raises(imagegen.APIResponseError, match="no images"):
        result.save(tmp_path / "fox.png")


@pytest.mark.parametrize(
    "error",
    [
        imagegen.InvalidRequestError("bad size", param="size"),
        imagegen.ConfigurationError("no key"),
        imagegen.EngineError("engine failed"),
        imagegen.APIConnectionError("refused"),
        imagegen.APITimeoutError("slow"),
        imagegen.BadRequestError("bad", status_code=400, param="n", request_id="req_1"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_every_error_has_the_five_documented_attributes(error: imagegen.ImagegenError) -> None:
    # The README promises message, param, code, status_code and request_id on every error.
    for name in ("message", "param", "code", "status_code", "request_id"):
        assert hasattr(error, name), name
    assert error.message
    if isinstance(error, imagegen.APIStatusError):
        assert (error.status_code, error.param, error.request_id) == (400, "n", "req_1")
    else:
        assert error.status_code is None and error.request_id is None
