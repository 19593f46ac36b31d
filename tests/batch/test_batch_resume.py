"""A batch killed (kill -9) or interrupted (Ctrl-C) at any moment, then run again, ends exactly
as a batch that was never interrupted: the same files with the same bytes, the same manifest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from batchkit import Faults, image_files, manifest_lines, prompts, serve, settings, write_jsonl

from imagegen import batch
from imagegen.server import create_app

ROWS = 80
VOLATILE = ("request_id", "attempts", "seconds", "finished_at")

pytestmark = pytest.mark.skipif(os.name != "posix", reason="kill -9 and SIGINT are POSIX")


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Every answer takes a little while, and some are 429s: runs last long enough to be cut
    anywhere, and rows finish out of order."""
    app = Faults(
        create_app("placeholder", settings(tmp_path_factory.mktemp("server-data"))),
        seed=7,
        rate_limited=0.05,
        slow=0.95,
        slow_seconds=0.02,
    )
    with serve(app) as url:
        yield url


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory, slow_server: str
) -> tuple[dict[str, bytes], list[dict[str, Any]], str]:
    """What an uninterrupted run leaves (run in this process: the same code as the CLI)."""
    folder = tmp_path_factory.mktemp("reference")
    report = batch.run(
        _source(folder),
        out_dir=folder / "out",
        defaults={"model": "placeholder", "size": "64x64"},
        base_url=slow_server,
        api_key="sk-test",
        metadata=False,
        max_retries=30,
    )
    assert report.ok and report.done == ROWS
    return _state(folder / "out")


def _source(tmp_path: Path) -> Path:
    rows: list[dict[str, Any]] = [{"prompt": text} for text in prompts(ROWS)]
    for row in rows[::9]:
        row["n"] = 2
    return write_jsonl(tmp_path / "rows.jsonl", rows)


def _command(source: Path, out: Path, url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "imagegen",
        "batch",
        str(source),
        "--out-dir",
        str(out),
        "--base-url",
        url,
        "--api-key",
        "sk-test",
        "-m",
        "placeholder",
        "-s",
        "64x64",
        "--no-metadata",  # files hold no creation time, so two runs give the same bytes
        "--max-retries",
        "30",
        "--concurrency",
        "4",
    ]


def _lines(out: Path) -> int:
    try:
        return (out / "manifest.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _start_and_wait(command: list[str], out: Path, lines: int) -> subprocess.Popen[str]:
    """Start the batch; return once its manifest has `lines` lines (it is then mid-run)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _lines(out) < lines:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the batch did not progress"
        time.sleep(0.005)
    assert process.poll() is None, "the batch ended before it could be cut"
    return process


def _finish(command: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def _state(out: Path) -> tuple[dict[str, bytes], list[dict[str, Any]], str]:
    files = {name: (out / name).read_bytes() for name in image_files(out)}
    records = [
        {key: value for key, value in record.items() if key not in VOLATILE}
        for record in manifest_lines(out)
    ]
    gallery = (out / "index.html").read_text(encoding="utf-8")
    gallery = "\n".join(line for line in gallery.splitlines() if "Updated" not in line)
    leftovers = [entry.name for entry in out.iterdir() if entry.name.endswith(".tmp")]
    assert not leftovers
    return files, records, gallery


def test_kill_9_at_three_moments_then_rerun_equals_an_uninterrupted_run(
    tmp_path: Path, slow_server: str, reference: tuple[Any, ...]
) -> None:
    source = _source(tmp_path)

    out = tmp_path / "killed"
    command = _command(source, out, slow_server)
    for cut in (5, 30, 60):
        process = _start_and_wait(command, out, cut)
        process.kill()
        process.communicate(timeout=60)
        assert process.returncode == -signal.SIGKILL
    # After the kills: nothing is listed as done without its files, nothing twice.
    _finish(command)
    assert _state(out) == reference


def test_ctrl_c_lets_requests_finish_and_exits_130_then_resumes(
    tmp_path: Path, slow_server: str, reference: tuple[Any, ...]
) -> None:
    source = _source(tmp_path)

    out = tmp_path / "interrupted"
    command = _command(source, out, slow_server)
    process = _start_and_wait(command, out, 20)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Interrupted; run the same command again to finish the batch." in stderr
    assert stdout.strip() == str(out / "index.html")
    # Stopped cleanly: the manifest rewritten one line per row in order, the gallery written.
    rows = [record["row"] for record in manifest_lines(out)]
    assert rows == sorted(set(rows)) and 20 <= len(rows) < ROWS
    assert "pending" in (out / "index.html").read_text(encoding="utf-8")

    # A second Ctrl-C does not wait for the requests in flight.
    process = _start_and_wait(command, out, len(rows) + 5)
    process.send_signal(signal.SIGINT)
    time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr

    done = _finish(command)
    assert f"{ROWS} rows:" in done.stderr
    assert _state(out) == reference
