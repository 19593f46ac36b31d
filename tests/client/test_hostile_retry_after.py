"""A server asking to wait longer than `max_retry_wait` (60 s) is not slept on silently.

Such an answer is raised at once, saying how long the server asked for, when to try again and
which setting takes longer waits; a wait that is taken is announced on the `imagegen.client`
logger (the command line prints it as a warning). Waits are recorded, never slept, by the
`sleeps` fixture; a wait that would end past the call's deadline is not taken either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from hostile import HostileServer, Request, Send, finishes_within, head
from scripted import Reply, ScriptedServer

import imagegen
from imagegen.cli import cli

MakeClient = Callable[..., imagegen.Client]


def _busy(seconds: str, status: int = 429) -> Reply:
    body = {"error": {"message": "Rate limit reached", "type": "requests", "code": None}}
    return Reply(status=status, json=body, headers={"retry-after": seconds})


def test_a_wait_over_the_limit_fails_at_once_naming_the_setting(
    client: imagegen.Client, server: ScriptedServer, sleeps: list[float]
) -> None:
    server.script(_busy("61"))
    with pytest.raises(imagegen.RateLimitError) as info:
        client.generate("a fox")
    message = str(info.value)
    assert "asks to wait 61 s" in message and "longer than the 60 s" in message
    assert "max_retry_wait (--max-retry-wait)" in message and "try again after" in message
    assert info.value.retry_after == 61
    assert len(server.requests) == 1
    assert sleeps == []


def test_a_wait_within_the_limit_is_taken_and_announced(
    client: imagegen.Client,
    server: ScriptedServer,
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.script(_busy("45", status=503))
    with caplog.at_level(logging.WARNING, logger="imagegen.client"):
        client.generate("a fox")
    assert sleeps == [45.0]
    [record] = caplog.records
    assert record.name == "imagegen.client" and record.levelno == logging.WARNING
    assert "Waiting 45 s as the server asked (Retry-After), then retry 1 of 2." in record.message


@pytest.mark.parametrize(("limit", "asked", "waits"), [(120, "90", True), (0, "1", False)])
def test_the_limit_is_the_callers_to_choose(
    make_client: MakeClient,
    server: ScriptedServer,
    sleeps: list[float],
    limit: float,
    asked: str,
    waits: bool,
) -> None:
    server.script(_busy(asked))
    client = make_client(max_retry_wait=limit)
    if waits:
        client.generate("a fox")
        assert sleeps == [float(asked)]
    else:
        with pytest.raises(imagegen.RateLimitError, match="--max-retry-wait"):
            client.generate("a fox")
        assert sleeps == []


def test_backoff_without_a_hint_is_not_announced_as_the_servers(
    client: imagegen.Client, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(Reply(status=500, json={"error": {"message": "boom"}}))
    with caplog.at_level(logging.WARNING, logger="imagegen.client"):
        client.generate("a fox")
    assert "Retrying in" in caplog.text and "as the server asked" not in caplog.text


def test_a_wait_past_the_calls_deadline_is_not_taken(
    make_client: MakeClient, server: ScriptedServer, sleeps: list[float]
) -> None:
    """timeout 2 s with 2 retries: the call ends within 6 s, so a 30 s wait is pointless."""
    server.script(_busy("30", status=503))
    client = make_client(timeout=2, max_retries=2)
    with pytest.raises(imagegen.InternalServerError) as info:
        client.generate("a fox")
    assert "Not retried: after a wait of 30 s the call would be past its deadline" in str(
        info.value
    )
    assert sleeps == []


@pytest.mark.parametrize("value", [-1, float("inf"), "60", None])
def test_a_limit_that_is_not_a_number_of_seconds_is_refused(value: object) -> None:
    with pytest.raises(imagegen.ConfigurationError, match="max_retry_wait"):
        imagegen.Client(base_url="http://127.0.0.1:9/v1", max_retry_wait=value)  # type: ignore[arg-type]


def test_the_command_line_says_so_in_one_line_without_waiting() -> None:
    """A real server asking for an hour; the command returns at once (a hang fails)."""

    def an_hour(request: Request, send: Send) -> None:
        body = b'{"error": {"message": "Slow down", "code": "rate_limit_exceeded"}}'
        send(head(429, length=len(body), retry_after="3600") + body)

    with HostileServer(an_hour) as server:
        args = ["generate", "a fox", "--base-url", server.base_url]
        result = finishes_within(60, lambda: CliRunner().invoke(cli, args))
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "asks to wait 3600 s" in line and "--max-retry-wait" in line
    assert "max_retry_wait" not in line
    assert len(server.requests) == 1


def test_the_command_line_prints_a_wait_it_takes(server: ScriptedServer) -> None:
    server.script(
        Reply(status=503, json={"error": {"message": "busy"}}, headers={"retry-after-ms": "20"})
    )
    result = CliRunner().invoke(
        cli, ["generate", "a fox", "--base-url", server.base_url, "-f", "url"]
    )
    assert result.exit_code == 0, result.stderr
    assert "Waiting 0.02 s as the server asked (Retry-After)" in result.stderr


def test_the_command_line_flag_raises_the_limit(server: ScriptedServer) -> None:
    server.script(_busy("0.05"))
    args = ["generate", "a fox", "--base-url", server.base_url, "-f", "url"]
    result = CliRunner().invoke(cli, [*args, "--max-retry-wait", "0.01"])
    assert result.exit_code == 1
    assert "longer than the 0.01 s this client waits" in result.stderr
