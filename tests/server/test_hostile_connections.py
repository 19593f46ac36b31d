"""Hostile connections: headers that never come or trickle in, floods of slow connections,
clients that keep sending after their answer, and the log they would fill.

Every attack runs against a real server on loopback (uvicorn with the server's own HTTP
protocol, as `imagegen serve` runs it), driven by raw sockets.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import time
from collections.abc import Iterator

import httpx2
import pytest
from attack import (
    Trickler,
    connect,
    head,
    health,
    hostile_server,
    read_answer,
    read_until_closed,
    status_of,
    wait_until,
)
from srvkit import KEY, BlockingEngine, SolidEngine, capture_thread, serving

PARTIAL = b"POST /v1/images/generations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"


@contextlib.contextmanager
def sockets(count: int, url: str, data: bytes = b"") -> Iterator[list[socket.socket]]:
    opened = [connect(url, data) for _ in range(count)]
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()


def test_headers_that_never_complete_are_cut_off_at_the_deadline() -> None:
    with hostile_server(SolidEngine(), header_timeout=1) as url:
        with sockets(5, url) as silent, sockets(5, url, PARTIAL) as partial:
            # One header byte every 0.2 s: a timer reset by each byte would never fire.
            tricklers = [
                Trickler(connect(url), PARTIAL + b"pe: application/json\r\n" * 50) for _ in range(5)
            ]
            assert health(url)["status"] == "ok"  # served meanwhile
            for sock in silent:  # nothing was asked: closed without an answer
                assert read_until_closed(sock) == b""
            for answer in [read_until_closed(sock) for sock in partial] + [
                trickler.wait() for trickler in tricklers
            ]:
                assert status_of(answer) == 408
                body = json.loads(answer.partition(b"\r\n\r\n")[2])
                assert body["error"]["code"] == "request_timeout"
                assert "headers did not arrive in time" in body["error"]["message"]
        assert health(url)["status"] == "ok"


def test_a_keep_alive_connection_gets_the_same_deadline_for_its_next_request() -> None:
    with hostile_server(SolidEngine(), header_timeout=1) as url:
        sock = connect(url, head("GET", "/health"))
        assert status_of(read_answer(sock)) == 200
        trickler = Trickler(sock, PARTIAL + b"pe: application/json\r\n" * 50)
        answer = trickler.wait()
        assert answer.startswith(b"HTTP/1.1 408")


def test_a_flood_of_slow_connections_locks_nobody_out() -> None:
    # A header deadline far longer than the test: only the connection cap can make room.
    with (
        hostile_server(SolidEngine(), header_timeout=600, max_connections=50) as url,
        sockets(200, url, PARTIAL) as slow,
    ):
        for _ in range(5):
            assert health(url)["status"] == "ok"
        response = httpx2.post(
            url + "/v1/images/generations", json={"prompt": "x", "size": "8x8"}, timeout=30
        )
        assert response.status_code == 200
        # The oldest slow connections made room (all but the newest 50), with a 408 if
        # their bytes had been read, else closed as idle ones are.
        answers = [read_until_closed(sock) for sock in slow[:150]]
        assert all(b"make room" in answer for answer in answers if answer)


def test_when_every_connection_is_busy_a_newcomer_gets_503() -> None:
    engine = BlockingEngine()
    try:
        with hostile_server(engine, max_connections=3, max_concurrency=3, max_queue=0) as url:

            def generate() -> int:
                response = httpx2.post(
                    url + "/v1/images/generations", json={"prompt": "x", "size": "8x8"}, timeout=60
                )
                return response.status_code

            with (
                capture_thread(generate) as first,
                capture_thread(generate) as second,
                capture_thread(generate) as third,
            ):
                engine.wait_started(3)
                with contextlib.closing(connect(url)) as newcomer:
                    answer = read_until_closed(newcomer)
                assert status_of(answer) == 503
                assert b"retry-after: 1" in answer.lower()
                assert b'"code": "too_many_connections"' in answer
                engine.release.set()
            assert [box["result"] for box in (first, second, third)] == [200, 200, 200]
    finally:
        engine.release.set()


@pytest.mark.parametrize("auth", ["wrong", "right"])
def test_a_connection_answered_before_its_body_is_read_is_closed(auth: str) -> None:
    key = "Bearer " + (KEY if auth == "right" else "sk-wrong")
    with hostile_server(SolidEngine(), api_keys=[KEY], max_request_bytes=1024 * 1024) as url:
        # 401 (wrong key) or 413 (too large, announced): answered at once, body unread.
        length = 1024 if auth == "wrong" else 50 * 1024 * 1024
        request = head(
            "POST",
            "/v1/images/edits",
            authorization=key,
            content_type="multipart/form-data; boundary=b",
            content_length=length,
        )
        trickler = Trickler(connect(url, request), b"x" * length, interval=0.05)
        answer = trickler.wait()
        assert status_of(answer) == (401 if auth == "wrong" else 413)


def test_the_log_stays_small_under_a_flood(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    count, rate = 300, 5
    with (
        hostile_server(SolidEngine(), header_timeout=0.5, log_rate=rate) as url,
        sockets(count, url, PARTIAL) as slow,
    ):
        for sock in slow:
            assert status_of(read_until_closed(sock)) == 408
    lines = [r.getMessage() for r in caplog.records if r.name == "imagegen.server"]
    summaries = [line for line in lines if "were not written" in line]
    written = [line for line in lines if "did not arrive within" in line and line not in summaries]
    # Bursts of `rate` lines, then counts: every closed connection is accounted for once.
    suppressed = sum(int(re.match(r"([\d,]+) more line", s)[1].replace(",", "")) for s in summaries)
    assert len(written) + suppressed == count
    assert len(written) < count // 4
    assert summaries and "did not arrive within" in summaries[0]


def test_health_answers_during_slow_connections_and_trickled_uploads() -> None:
    with hostile_server(SolidEngine(), header_timeout=5, body_timeout=60) as url:
        upload = head(
            "POST",
            "/v1/images/generations",
            content_type="application/json",
            content_length=10_000,
        )
        tricklers = [Trickler(connect(url, upload), b" " * 10_000, interval=0.5) for _ in range(17)]
        try:
            with sockets(200, url, PARTIAL):
                wait_until(lambda: health(url)["body_bytes"] == 17 * 10_000, "17 uploads run")
                for _ in range(10):
                    assert health(url)["waiting"] == 0  # uploads hold no place in the queue
                response = httpx2.post(
                    url + "/v1/images/generations", json={"prompt": "x", "size": "8x8"}, timeout=30
                )
                assert response.status_code == 200
        finally:
            for trickler in tricklers:
                trickler.stop()


def test_imagegen_serve_keeps_its_log_small_under_a_flood() -> None:
    count, rate = 400, 5
    env = {"IMAGEGEN_LOG_RATE": str(rate)}
    with serving("--header-timeout", "1", env=env) as (url, _, log):
        before = len(log)
        started = time.monotonic()
        with sockets(count, url, PARTIAL) as slow:
            for sock in slow:
                assert status_of(read_until_closed(sock)) == 408
        elapsed = time.monotonic() - started
        wait_until(lambda: any("were not written" in line for line in log[before:]), "a count")
        flood = [line for line in log[before:] if "did not arrive within" in line]
    # At most `rate` lines a second and the counts, instead of one line per connection.
    assert len(flood) <= rate * (elapsed + 2) + elapsed + 2
    assert len(flood) < count // 4
