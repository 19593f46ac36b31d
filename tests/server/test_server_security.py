"""Keys, request ids, the access log, binding rules and settings resolution."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx2
import openai
import pytest
from srvkit import KEY, SolidEngine, assert_openai_error, make_settings

from imagegen._errors import ConfigurationError
from imagegen.server import ServerSettings, create_app
from imagegen.server._settings import check_bind, is_loopback
from live import live_server

GEN = "/v1/images/generations"
BODY = {"prompt": "x", "size": "8x8"}


def test_keys_are_required_on_v1_only(server: str) -> None:
    error = assert_openai_error(httpx2.post(server + GEN, json=BODY), 401, code=None)
    assert "didn't provide an API key" in error["message"]
    wrong = {"authorization": "Bearer " + KEY[:-1] + "X"}  # same length, one character off
    assert_openai_error(
        httpx2.post(server + GEN, json=BODY, headers=wrong), 401, code="invalid_api_key"
    )
    assert_openai_error(httpx2.get(server + "/v1/models"), 401)
    assert_openai_error(httpx2.get(server + "/v1/nothing"), 401)  # as OpenAI: auth first
    for headers in ({"authorization": f"bearer {KEY}"}, {"api-key": KEY}):
        assert httpx2.post(server + GEN, json=BODY, headers=headers).status_code == 200
    assert httpx2.get(server + "/health").status_code == 200  # health needs no key
    assert_openai_error(httpx2.get(server + "/nothing"), 404)


def test_keys_from_flags_environment_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("# team keys\nfile-key-1\n\n  file-key-2  \n")
    monkeypatch.setenv("IMAGEGEN_API_KEYS", "env-key-1, env-key-2")
    settings = ServerSettings(api_key_file=key_file)
    assert settings.resolved_api_keys() == ["env-key-1", "env-key-2", "file-key-1", "file-key-2"]
    assert "env-key" not in repr(settings) and "env-key" not in str(settings.model_dump())
    explicit = ServerSettings(api_keys=["flag-key"])  # an argument wins over the environment
    assert explicit.resolved_api_keys() == ["flag-key"]
    with live_server(create_app(SolidEngine(), settings)) as url:
        for key in ("env-key-2", "file-key-1"):
            ok = httpx2.post(url + GEN, json=BODY, headers={"authorization": f"Bearer {key}"})
            assert ok.status_code == 200
        assert_openai_error(
            httpx2.post(url + GEN, json=BODY, headers={"authorization": "Bearer # team keys"}),
            401,
        )


def test_unreadable_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot be read"):
        create_app(SolidEngine(), make_settings(api_key_file=tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="spaces"):
        make_settings(api_keys=["two words"]).resolved_api_keys()


def test_an_empty_key_is_refused_rather_than_locking_everyone_out() -> None:
    # `--api-key "$KEY"` with KEY unset would serve 401 to every client, on any address.
    with pytest.raises(ConfigurationError, match="empty"):
        make_settings(api_keys=["good-key", ""]).resolved_api_keys()
    with pytest.raises(ConfigurationError, match="empty"):
        create_app(SolidEngine(), make_settings(host="0.0.0.0", api_keys=[""]))


def test_no_key_binds_loopback_only() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2", "[::1]"):
        assert is_loopback(host)
        check_bind(make_settings(host=host))
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.org"):
        assert not is_loopback(host)
        with pytest.raises(ConfigurationError, match="--api-key"):
            check_bind(make_settings(host=host))
        check_bind(make_settings(host=host, api_keys=["k"]))
        check_bind(make_settings(host=host, allow_no_auth=True))


def test_running_without_keys_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="imagegen")
    with live_server(create_app(SolidEngine(), make_settings())):
        pass
    assert any("without authentication" in record.getMessage() for record in caplog.records)


def test_request_id_on_every_answer(server: str) -> None:
    auth = {"authorization": f"Bearer {KEY}"}
    sent = httpx2.post(server + GEN, json=BODY, headers={**auth, "x-request-id": "my-trace.42"})
    assert sent.headers["x-request-id"] == "my-trace.42"
    for hostile in ("has space", "x" * 200, "semi;colon", "é"):
        raw = hostile.encode()  # sent as raw bytes, as a hostile client would
        response = httpx2.post(server + GEN, json=BODY, headers={**auth, "x-request-id": raw})
        assert response.headers["x-request-id"].startswith("req_")
    answers = [
        httpx2.get(server + "/health"),
        httpx2.get(server + "/nope"),
        httpx2.post(server + GEN, json=BODY),
        httpx2.post(server + GEN, json={"prompt": 1}, headers=auth),
        httpx2.post(server + GEN, json={**BODY, "stream": True}, headers=auth),
    ]
    ids = [answer.headers["x-request-id"] for answer in answers]
    assert all(ids) and len(set(ids)) == len(ids)
    assert all(answer.headers["openai-processing-ms"].isdigit() for answer in answers)
    with (
        openai.OpenAI(base_url=server + "/v1", api_key=KEY, max_retries=0) as sdk,
        pytest.raises(openai.BadRequestError) as caught,
    ):
        sdk.images.generate(prompt="x", size="nonsense")
    assert caught.value.request_id and caught.value.request_id.startswith("req_")


def test_access_log_has_no_prompt_key_or_signature(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    prompt = "SECRET-PROMPT-4d1f"
    auth = {"authorization": f"Bearer {KEY}"}
    body = {"prompt": prompt, "size": "8x8", "response_format": "url", "model": "solid-1"}
    link = httpx2.post(server + GEN, json=body, headers=auth).json()["data"][0]["url"]
    signature = link.split("signature=", 1)[1]
    assert httpx2.get(link).status_code == 200
    httpx2.post(server + GEN, json={"prompt": prompt, "size": "bad"}, headers=auth)
    httpx2.post(server + GEN, json=body, headers={"authorization": "Bearer sk-leaked-key-123"})
    access = [r.getMessage() for r in caplog.records if r.name == "imagegen.server.access"]
    assert any(f'"POST {GEN}" 200' in line for line in access)
    assert any('"GET /files/' in line and " 200 " in line for line in access)
    server_side = [r for r in caplog.records if r.name.startswith(("imagegen", "uvicorn"))]
    everything = "\n".join(record.getMessage() for record in server_side)
    for secret in (prompt, KEY, signature, "sk-leaked-key-123"):
        assert secret not in everything


def test_settings_from_environment_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGEN_MAX_QUEUE", "3")
    monkeypatch.setenv("IMAGEGEN_URL_TTL", "120")
    monkeypatch.setenv("IMAGEGEN_ENGINE_OPTIONS", "steps=4,device=cpu")
    settings = ServerSettings.build(max_queue=None, url_ttl=60)
    assert (settings.max_queue, settings.url_ttl) == (3, 60)
    assert settings.engine_options == {"steps": "4", "device": "cpu"}
    monkeypatch.setenv("IMAGEGEN_MAX_CONCURRENCY", "lots")
    with pytest.raises(ConfigurationError, match="IMAGEGEN_MAX_CONCURRENCY"):
        ServerSettings.build()
    with pytest.raises(ConfigurationError, match="public_url"):
        ServerSettings.build(max_concurrency=1, public_url="ftp://x")
    assert (
        ServerSettings.build(max_concurrency=1).request_limit == 17 * 50 * 1024 * 1024 + 1024 * 1024
    )
    monkeypatch.setenv("IMAGEGEN_MAX_IMAGE_BYTES", "4MB")
    monkeypatch.setenv("IMAGEGEN_MAX_STORAGE", "1.5 GB")
    sized = ServerSettings.build(max_concurrency=2, max_inflight_bytes="64kb")
    assert sized.max_image_bytes == 4 * 1024 * 1024
    assert sized.max_storage == 1536 * 1024 * 1024
    assert sized.inflight_limit == 64 * 1024
    assert sized.pixel_budget(2) == 2 * sized.max_input_pixels  # per engine slot
    with pytest.raises(ConfigurationError, match="IMAGEGEN_MAX_STORAGE.*512MB"):
        ServerSettings.build(max_concurrency=1, max_storage="lots")
