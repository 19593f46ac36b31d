"""Errors carry status, code, param and request id; no secret reaches a message, log or repr."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import pytest
from scripted import API_KEY, Reply, ScriptedServer

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
