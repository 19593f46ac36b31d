"""The bounded queue in front of the engine: concurrency holds, overflow gets 429 with
Retry-After, the server keeps serving, a vanished stream client frees its slot only when the
engine is done, and shutdown lets requests in flight finish.

`BlockingEngine` holds every job until the test releases it, so each state is reached by
events (a job started, /health shows the queue) and no assertion depends on timing.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2
import openai
import pytest
from srvkit import BlockingEngine, capture_thread, make_settings

from imagegen.server import create_app
from live import live_server

BODY = {"prompt": "x", "size": "16x16"}


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def health(url: str) -> dict[str, int]:
    body: dict[str, int] = httpx2.get(url + "/health", timeout=10).json()
    return body


@pytest.fixture
def blocking() -> Iterator[BlockingEngine]:
    engine = BlockingEngine()
    yield engine
    engine.release.set()  # never leave a server thread waiting


def post(url: str, json: dict[str, object] | None = None) -> httpx2.Response:
    return httpx2.post(url + "/v1/images/generations", json=json or BODY, timeout=60)


def test_full_queue_is_rate_limit_error_with_retry_after(blocking: BlockingEngine) -> None:
    settings = make_settings(max_concurrency=1, max_queue=1)
    with live_server(create_app(blocking, settings)) as url:
        with capture_thread(post, url) as first, capture_thread(post, url) as second:
            blocking.wait_started()
            wait_until(lambda: health(url)["waiting"] == 1, "the second request waits")
            with (
                openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0) as sdk,
                pytest.raises(openai.RateLimitError) as caught,
            ):
                sdk.images.generate(prompt="x", size="16x16")
            retry_after = caught.value.response.headers["retry-after"]
            assert 1 <= int(retry_after) <= 120
            assert caught.value.code == "rate_limit_exceeded"
            blocking.release.set()
        assert first["result"].status_code == 200
        assert second["result"].status_code == 200
        assert blocking.max_active == 1
        assert post(url).status_code == 200  # the queue drained; serving again


def test_load_beyond_the_queue_gets_429s_and_the_server_keeps_serving(
    blocking: BlockingEngine,
) -> None:
    settings = make_settings(max_concurrency=2, max_queue=4)
    clients = 24
    with live_server(create_app(blocking, settings)) as url:
        with ThreadPoolExecutor(max_workers=clients) as pool:
            futures = [pool.submit(post, url) for _ in range(clients)]
            blocking.wait_started(2)
            # 2 run, 4 wait, the other 18 are refused at once, while the engine is still busy.
            wait_until(lambda: sum(f.done() for f in futures) == clients - 6, "18 refusals")
            state = health(url)  # answered while the queue is full
            assert (state["running"], state["waiting"]) == (2, 4)
            blocking.release.set()
            responses = [f.result(timeout=60) for f in futures]
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] * 6 + [429] * 18
        for response in responses:
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
                assert response.json()["error"]["code"] == "rate_limit_exceeded"
        assert blocking.max_active == 2
        wait_until(lambda: health(url)["waiting"] == 0, "the queue is empty")
        assert post(url).status_code == 200


def test_sdk_retries_after_the_servers_hint(blocking: BlockingEngine) -> None:
    settings = make_settings(max_concurrency=1, max_queue=0)
    with live_server(create_app(blocking, settings)) as url:
        with capture_thread(post, url) as first:
            blocking.wait_started()
            with openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=3) as sdk:
                # The SDK waits Retry-After (1 s here) and retries; by then the slot is free.
                threading.Timer(0.2, blocking.release.set).start()
                result = sdk.images.generate(prompt="x", size="16x16")
        assert first["result"].status_code == 200
        assert len(result.data or []) == 1


def test_disconnected_stream_keeps_its_slot_until_the_engine_is_done(
    blocking: BlockingEngine,
) -> None:
    settings = make_settings(max_concurrency=1, max_queue=2)
    with live_server(create_app(blocking, settings)) as url, httpx2.Client(timeout=30) as http:
        body = {**BODY, "stream": True, "partial_images": 1}
        with http.stream("POST", url + "/v1/images/generations", json=body) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            blocking.wait_started()
        # The client is gone; the engine is still busy, so the slot is still taken.
        assert health(url)["running"] == 1
        blocking.release.set()
        wait_until(lambda: health(url)["running"] == 0, "the slot is given back")
        wait_until(lambda: health(url)["waiting"] == 0, "the ticket is given back")
        assert post(url).status_code == 200


def test_graceful_shutdown_finishes_the_request_in_flight(blocking: BlockingEngine) -> None:
    stopped_listening = threading.Event()
    result: dict[str, httpx2.Response] = {}

    def release_once_the_listener_closes(port: int) -> None:
        # Shutdown has begun once new connections are refused; only then may the job end.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                stopped_listening.set()
                break
            time.sleep(0.02)
        blocking.release.set()

    app = create_app(blocking, make_settings())
    with live_server(app, timeout_graceful_shutdown=30) as url:
        port = int(url.rsplit(":", 1)[1])
        client = threading.Thread(target=lambda: result.setdefault("response", post(url)))
        client.start()
        blocking.wait_started()
        watcher = threading.Thread(target=release_once_the_listener_closes, args=(port,))
        watcher.start()
    # Leaving the block stopped the server; the request in flight was let finish first.
    client.join(timeout=30)
    watcher.join(timeout=30)
    assert stopped_listening.is_set()
    assert result["response"].status_code == 200
    assert len(result["response"].json()["data"]) == 1


def raw_request(port: int, head: bytes, body: bytes = b"", timeout: float = 20) -> bytes:
    """Send a request by hand (possibly with less body than announced); read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + body)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def test_a_full_queue_refuses_before_reading_the_body(blocking: BlockingEngine) -> None:
    with live_server(create_app(blocking, make_settings(max_concurrency=1, max_queue=0))) as url:
        port = int(url.rsplit(":", 1)[1])
        with capture_thread(post, url) as first:
            blocking.wait_started()
            head = (
                b"POST /v1/images/edits HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n"
                b"Content-Type: multipart/form-data; boundary=b\r\n\r\n"
            )
            answer = raw_request(port, head)  # 50 MB announced, not one byte sent
            assert answer.startswith(b"HTTP/1.1 429")
            assert b"retry-after: " in answer.lower()
            blocking.release.set()
        assert first["result"].status_code == 200


def test_a_stalled_upload_gets_408_and_frees_its_place() -> None:
    settings = make_settings(max_concurrency=1, max_queue=0, body_timeout=0.5)
    with live_server(create_app(BlockingEngine(), settings)) as url:
        port = int(url.rsplit(":", 1)[1])
        head = (
            b"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            b"Content-Type: application/json\r\n\r\n"
        )
        answer = raw_request(port, head, b'{"prompt": "x", ')  # then nothing more
        assert answer.startswith(b"HTTP/1.1 408")
        assert b'"code":"request_timeout"' in answer
        wait_until(lambda: health(url)["waiting"] == 0, "the place is given back")


def test_a_client_that_left_while_queued_costs_no_engine_job(blocking: BlockingEngine) -> None:
    settings = make_settings(max_concurrency=1, max_queue=4)
    with live_server(create_app(blocking, settings)) as url:
        with capture_thread(post, url) as first:
            blocking.wait_started()
            with pytest.raises(httpx2.TimeoutException):  # the client gives up while queued
                httpx2.post(url + "/v1/images/generations", json=BODY, timeout=1.0)
            wait_until(lambda: health(url)["waiting"] == 1, "the abandoned request waits")
            blocking.release.set()
        assert first["result"].status_code == 200
        wait_until(
            lambda: health(url)["waiting"] == health(url)["running"] == 0,
            "the abandoned request is done",
        )
        assert len(blocking.jobs) == 1
        assert post(url).status_code == 200
        assert len(blocking.jobs) == 2
