"""Retries: which answers are retried, how long the client waits, and what it logs."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from scripted import API_KEY, Reply, ScriptedServer, image_bytes, images_body

import imagegen
from imagegen._retry import backoff, parse_retry_after

MakeClient = Callable[..., imagegen.Client]


def _error(status: int, code: str | None = None, **headers: str) -> Reply:
    body = {"error": {"message": f"scripted {status}", "type": "x", "param": None, "code": code}}
    return Reply(status=status, json=body, headers=headers)


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
def test_transient_statuses_are_retried(
    client: imagegen.Client, server: ScriptedServer, sleeps: list[float], status: int
) -> None:
    server.script(_error(status, **{"retry-after-ms": "20"}))
    result = client.generate("a fox")
    assert len(server.requests) == 2
    assert len(result) == 1
    assert sleeps == [0.02]


@pytest.mark.parametrize(
    ("status", "code", "error_class"),
    [
        (400, None, imagegen.BadRequestError),
        (401, "invalid_api_key", imagegen.AuthenticationError),
        (403, None, imagegen.PermissionDeniedError),
        (404, "model_not_found", imagegen.NotFoundError),
        (422, None, imagegen.UnprocessableEntityError),
        (429, "insufficient_quota", imagegen.InsufficientQuotaError),
        (400, "moderation_blocked", imagegen.ContentPolicyError),
        (400, "content_policy_violation", imagegen.ContentPolicyError),
    ],
)
def test_final_statuses_are_not_retried(
    client: imagegen.Client,
    server: ScriptedServer,
    sleeps: list[float],
    status: int,
    code: str | None,
    error_class: type[imagegen.APIStatusError],
) -> None:
    server.script(_error(status, code))
    with pytest.raises(error_class) as info:
        client.generate("a fox")
    assert type(info.value) is error_class
    assert (info.value.status_code, info.value.code) == (status, code)
    assert info.value.request_id == "req_1"
    assert len(server.requests) == 1
    assert sleeps == []


def test_x_should_retry_false_stops_a_retry(
    client: imagegen.Client, server: ScriptedServer, sleeps: list[float]
) -> None:
    server.script(_error(503, **{"x-should-retry": "false"}))
    with pytest.raises(imagegen.InternalServerError):
        client.generate("a fox")
    assert len(server.requests) == 1


def test_x_should_retry_true_retries_an_otherwise_final_status(
    client: imagegen.Client, server: ScriptedServer, sleeps: list[float]
) -> None:
    server.script(_error(400, **{"x-should-retry": "true", "retry-after": "0.01"}))
    client.generate("a fox")
    assert len(server.requests) == 2
    assert sleeps == [0.01]


def test_x_should_retry_true_never_retries_refusals(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    server.script(_error(429, "insufficient_quota", **{"x-should-retry": "true"}))
    with pytest.raises(imagegen.InsufficientQuotaError):
        client.generate("a fox")
    assert len(server.requests) == 1


def test_retries_are_exhausted_then_the_last_error_is_raised(
    make_client: MakeClient, server: ScriptedServer, sleeps: list[float]
) -> None:
    client = make_client(max_retries=3)
    server.script(*[_error(500, **{"retry-after-ms": "1"})] * 4)
    with pytest.raises(imagegen.InternalServerError, match="scripted 500"):
        client.generate("a fox")
    assert len(server.requests) == 4
    assert sleeps == [0.001] * 3


def test_max_retries_zero_sends_once(
    make_client: MakeClient, server: ScriptedServer, sleeps: list[float]
) -> None:
    server.script(_error(503))
    with pytest.raises(imagegen.InternalServerError):
        make_client(max_retries=0).generate("a fox")
    assert len(server.requests) == 1
    assert sleeps == []


def test_backoff_without_hint_is_exponential_with_jitter(
    make_client: MakeClient, server: ScriptedServer, sleeps: list[float]
) -> None:
    server.script(_error(502), _error(502), _error(502))
    make_client(max_retries=3).generate("a fox")
    assert len(sleeps) == 3
    for wait, base in zip(sleeps, [1, 2, 4], strict=True):
        assert 0.8 * base <= wait <= 1.2 * base


def test_backoff_is_capped() -> None:
    assert backoff(0, lambda: 0.5) == 1.0
    assert backoff(4, lambda: 0.5) == 16.0
    assert backoff(10, lambda: 1.0) == 60.0
    assert backoff(99, lambda: 0.0) == 48.0


def test_retry_after_in_seconds_and_as_http_date(
    client: imagegen.Client, server: ScriptedServer, sleeps: list[float]
) -> None:
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    server.script(_error(429, **{"retry-after": "3"}), _error(429, **{"retry-after": date}))
    client.generate("a fox")
    assert sleeps[0] == 3.0
    assert 27 < sleeps[1] <= 31


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_retry_after_past_the_cap_fails_at_once_saying_when(
    client: imagegen.Client, server: ScriptedServer, sleeps: list[float]
) -> None:
    server.script(_error(429, **{"retry-after": "600"}))
    with pytest.raises(imagegen.RateLimitError) as info:
        client.generate("a fox")
    message = str(info.value)
    assert "wait 600 s" in message and "try again after" in message
    assert info.value.retry_after == 600
    assert len(server.requests) == 1
    assert sleeps == []


def test_a_warning_is_logged_before_each_wait_without_the_key(
    client: imagegen.Client, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"error": {"message": f"overloaded, your key {API_KEY} is fine", "code": None}}
    server.script(Reply(status=503, json=body, headers={"retry-after": "1"}))
    with caplog.at_level(logging.WARNING, logger="imagegen"):
        client.generate("a fox")
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "Waiting 1 s as the server asked (Retry-After), then retry 1 of 2" in record.getMessage()
    assert "overloaded" in record.getMessage()
    assert API_KEY not in caplog.text


def test_connection_refused_is_retried_then_raised(
    make_client: MakeClient, sleeps: list[float]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(base_url=f"http://127.0.0.1:{port}/v1", max_retries=2)
    with pytest.raises(imagegen.APIConnectionError) as info:
        client.generate("a fox")
    assert not isinstance(info.value, imagegen.APITimeoutError)
    assert f"127.0.0.1:{port}" in str(info.value)
    assert len(sleeps) == 2


def test_timeout_is_retried_then_raised(
    make_client: MakeClient, server: ScriptedServer, sleeps: list[float]
) -> None:
    """Retried while the call's deadline leaves time: here (6 x 0.5 s) the first backoff (at
    most 1.2 s) always fits, a later one may not."""
    server.script(*[Reply(delay=2.0)] * 6)
    client = make_client(timeout=0.5, max_retries=5)
    with pytest.raises(imagegen.APITimeoutError, match="--timeout"):
        client.generate("a fox")
    assert len(server.requests) >= 2
    assert len(sleeps) == len(server.requests) - 1


def test_per_call_timeout_overrides_the_client(
    make_client: MakeClient, server: ScriptedServer
) -> None:
    server.script(Reply(delay=0.6), Reply(delay=0.6))
    client = make_client(timeout=0.2, max_retries=0)
    assert len(client.generate("a fox", timeout=5)) == 1
    with pytest.raises(imagegen.APITimeoutError):
        client.generate("a fox")


def test_timeout_none_and_zero_mean_no_limit() -> None:
    def timeout_of(**options: object) -> tuple[float | None, float | None]:
        with imagegen.Client(base_url="http://x", **options) as client:  # type: ignore[arg-type]
            return client.timeout.read, client.timeout.connect

    assert timeout_of(timeout=None) == (None, 10.0)
    assert timeout_of(timeout=0) == (None, 10.0)
    assert timeout_of() == (600.0, 10.0)
    assert timeout_of(timeout=3) == (3.0, 3.0)


def test_a_stream_is_retried_before_it_starts(
    client: imagegen.Client, server: ScriptedServer, sleeps: list[float]
) -> None:
    completed = {
        "type": "image_generation.completed",
        "b64_json": images_body()["data"][0]["b64_json"],
    }
    server.script(_error(500, **{"retry-after-ms": "5"}), Reply(sse=[completed]))
    stream = client.generate("a fox", stream=True)
    assert isinstance(stream, imagegen.ImageStream)
    assert len(stream.result()) == 1
    assert len(server.requests) == 2
    assert sleeps == [0.005]


def test_a_stream_broken_after_it_started_is_not_retried(
    client: imagegen.Client, server: ScriptedServer, sleeps: list[float]
) -> None:
    partial = {
        "type": "image_generation.partial_image",
        "b64_json": images_body()["data"][0]["b64_json"],
        "partial_image_index": 0,
    }
    server.script(Reply(sse=[partial], sse_forever=False, delay=0))
    stream = client.generate("a fox", partial_images=1)
    assert isinstance(stream, imagegen.ImageStream)
    with pytest.raises(imagegen.APIResponseError, match="without a completed image"):
        stream.result()
    assert len(server.requests) == 1
    assert sleeps == []


def _url_answer(server: ScriptedServer) -> Reply:
    return Reply(json=images_body(data=[{"url": f"{server.url}/files/a.png"}]))


# A body cut short two ways: fewer bytes than its Content-Length (httpx2 says "peer closed
# connection without sending complete message body"), or a chunked body that stops.
CUT_SHORT = {
    "content-length": lambda picture: Reply(
        break_after=picture[:40], headers={"content-length": str(len(picture))}
    ),
    "chunked": lambda picture: Reply(break_after=picture[:40]),
}


@pytest.mark.parametrize("cut", CUT_SHORT.values(), ids=CUT_SHORT.keys())
def test_a_download_cut_short_is_retried(
    make_client: MakeClient,
    server: ScriptedServer,
    sleeps: list[float],
    tmp_path: Path,
    cut: Callable[[bytes], Reply],
) -> None:
    picture = image_bytes(size=(32, 32))
    server.script(_url_answer(server), cut(picture), Reply(body=picture, content_type="image/png"))
    result = make_client().generate("a fox", model="dall-e-2", response_format="url")
    saved = result.save(tmp_path / "fox.png", metadata=False)
    assert saved[0].read_bytes() == picture
    assert [r.path for r in server.requests] == ["/v1/images/generations"] + ["/files/a.png"] * 2
    assert len(sleeps) == 1


@pytest.mark.parametrize("cut", CUT_SHORT.values(), ids=CUT_SHORT.keys())
def test_a_download_cut_short_every_time_leaves_no_file(
    make_client: MakeClient,
    server: ScriptedServer,
    sleeps: list[float],
    tmp_path: Path,
    cut: Callable[[bytes], Reply],
) -> None:
    picture = image_bytes(size=(32, 32))
    server.script(_url_answer(server), cut(picture), cut(picture), cut(picture))
    result = make_client(max_retries=2).generate("a fox", model="dall-e-2", response_format="url")
    with pytest.raises(imagegen.APIConnectionError, match="/files/a.png"):
        result.save(tmp_path / "out" / "fox.png")
    assert len(server.requests) == 4
    assert len(sleeps) == 2
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_an_async_clients_download_cut_short_is_retried(
    server: ScriptedServer, tmp_path: Path, sleeps: list[float]
) -> None:
    picture = image_bytes(size=(32, 32))
    server.script(
        _url_answer(server),
        CUT_SHORT["content-length"](picture),
        Reply(body=picture, content_type="image/png"),
    )

    async def main() -> imagegen.ImagesResult:
        async with imagegen.AsyncClient(base_url=server.base_url, api_key=API_KEY) as client:
            result = await client.generate("a fox", model="dall-e-2", response_format="url")
            assert isinstance(result, imagegen.ImagesResult)
            return result

    result = asyncio.run(main())
    assert result[0].bytes() == picture
    assert len(server.requests) == 3


def test_the_library_writes_nothing_to_stderr_unless_logging_is_configured(
    server: ScriptedServer,
) -> None:
    """Retry warnings are log records for the application to route, not lines on stderr (the
    CLI routes them to its console). Run in a child: pytest's own log handlers would hide
    Python's last-resort handler."""
    import subprocess
    import sys

    server.script(
        Reply(status=503, json={"error": {"message": "busy"}}, headers={"retry-after": "0"})
    )
    script = (
        "import imagegen\n"
        f"with imagegen.Client(base_url={server.base_url!r}, api_key='k', max_retries=1) as c:\n"
        "    c.generate('a fox')\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert child.returncode == 0, child.stderr
    assert child.stderr == ""
    assert len(server.requests) == 2  # it did retry
