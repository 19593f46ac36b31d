"""The placeholder drawing in worker processes under `imagegen serve`: the same bytes as drawn
in the calling thread, one worker per CPU by default, a killed worker replaced, and no worker
left once the server stops, whether it stopped cleanly or was killed.

Every server here is a real `python -m imagegen serve` process (the test process itself never
starts a worker: a multiprocessing helper would outlive the test). Worker processes are found
in /proc, so these tests run on Linux only."""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import io
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from PIL import Image
from srvkit import KEY, png, serving

from imagegen._models import ImageRequest
from imagegen._service import ImageService
from imagegen.engines._placeholder_pool import usable_cpus
from imagegen.engines.placeholder import PlaceholderEngine

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads processes from /proc")

HEADERS = {"authorization": f"Bearer {KEY}"}


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name; None if there is no such process
    (or only its zombie, which no longer runs)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields


def _children(pid: int) -> dict[int, str]:
    """`{pid: command line}` of the live children of process `pid`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                try:
                    command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                found[int(entry.name)] = command
    return found


def _workers(pid: int) -> set[int]:
    return {child for child, command in _children(pid).items() if "spawn_main" in command}


def _gone(pids: set[int], timeout: float = 30.0) -> set[int]:
    """The processes of `pids` still running after `timeout` (a bound for a hang only)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_stat(pid) for pid in pids):
        time.sleep(0.05)
    return {pid for pid in pids if _stat(pid)}


def _generate(url: str, **fields: Any) -> list[bytes]:
    response = httpx2.post(
        url + "/v1/images/generations",
        json={"model": "placeholder", "prompt": "A lighthouse at dusk", **fields},
        headers=HEADERS,
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return [base64.b64decode(item["b64_json"]) for item in response.json()["data"]]


def _in_thread(level: int = 1, **fields: Any) -> list[bytes]:
    """The same request drawn in this thread, by an engine without worker processes, PNGs
    at zlib level `level`."""
    service = ImageService(PlaceholderEngine(), png_compress_level=level)
    request = ImageRequest.model_validate({"prompt": "A lighthouse at dusk", **fields})
    return service.run(service.prepare("generations", request)).images


REQUESTS = [
    {"size": "256x256", "seed": 7},
    {"size": "512x768", "seed": 7, "n": 2},
    {"size": "320x200", "background": "transparent", "seed": 3},
    {"size": "40x800", "background": "transparent", "seed": 3},  # no text: colours only
    {"size": "256x256", "output_format": "jpeg", "output_compression": 60, "seed": 1},
    {"size": "256x256", "output_format": "webp", "seed": 1},
    {"size": "128x128", "output_format": "gif", "frame_count": 3, "seed": 2},
    {"size": "256x256"},  # no seed: derived from the prompt, in the worker as here
]


def _bytes_read(pid: int) -> int:
    """What worker `pid` has read from its pipe (and its files): it grows with every job."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError(f"no rchar in /proc/{pid}/io")


def _until_drawn_by(
    workers: set[int], url: str, fields: dict[str, Any], level: int = 1, *, every: bool = True
) -> None:
    """Send `fields` from 8 clients at once, answers checked against this thread's, until
    every worker (or one, unless `every`) has drawn: a job that finds no other being drawn is
    drawn by the server's own thread, so one client alone would never reach them. (The
    deadline bounds a hang.)"""
    expected = _in_thread(level, **fields)
    read = {pid: _bytes_read(pid) for pid in workers}
    deadline = time.monotonic() + 120
    with concurrent.futures.ThreadPoolExecutor(8) as clients:
        waiting = any if every else all  # a worker has drawn nothing / every one has not
        while waiting(_bytes_read(pid) == read[pid] for pid in workers):
            assert time.monotonic() < deadline, f"the workers drew no {fields}"
            answers = list(clients.map(lambda _: _generate(url, **fields), range(16)))
            assert all(answer == expected for answer in answers), fields


def test_served_generations_are_the_bytes_drawn_in_the_calling_thread() -> None:
    with serving("-o", "processes=2", "--png-compress-level", "6") as (url, process, _):
        workers = _workers(process.pid)
        assert len(workers) == 2
        for fields in REQUESTS:
            _until_drawn_by(workers, url, fields, level=6, every=False)
        # An SVG card is pure Python, which never lets another request's thread in while it is
        # written: it is hardly ever drawn beside another one, so a worker may never see one.
        svg = {"size": "256x256", "output_format": "svg", "seed": 2}
        assert _generate(url, **svg) == _in_thread(**svg)


def test_serve_draws_in_a_process_per_cpu_and_stopping_it_leaves_none() -> None:
    if usable_cpus() < 2:
        pytest.skip("one CPU: the server draws in its own threads")
    with serving() as (url, process, _):
        workers = _workers(process.pid)
        assert len(workers) == usable_cpus()
        everything = set(_children(process.pid))
        _until_drawn_by(workers, url, {"size": "256x256", "seed": 1})
    assert _gone(everything) == set()


def test_stopping_the_server_in_the_middle_of_a_load_stops_every_worker() -> None:
    stop = threading.Event()

    def keep_asking(url: str) -> None:
        while not stop.is_set():
            with contextlib.suppress(httpx2.HTTPError, AssertionError):
                _generate(url, size="512x512")

    with serving("-o", "processes=2") as (url, process, _):
        workers = _workers(process.pid)
        everything = set(_children(process.pid))
        clients = [threading.Thread(target=keep_asking, args=(url,)) for _ in range(8)]
        for client in clients:
            client.start()
        try:
            _until_drawn_by(workers, url, {"size": "256x256"})
        except BaseException:
            stop.set()
            raise
    stop.set()
    for client in clients:
        client.join(timeout=60)
    assert process.returncode == -signal.SIGTERM  # its own shutdown, not the SIGKILL fallback
    assert _gone(everything) == set()


def test_a_server_killed_outright_leaves_no_worker() -> None:
    with serving("-o", "processes=2") as (url, process, _):
        workers = _workers(process.pid)
        assert len(workers) == 2
        _until_drawn_by(workers, url, {"size": "64x64"})
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert _gone(workers) == set()


def test_a_killed_worker_is_replaced_and_the_requests_answered() -> None:
    with serving("-o", "processes=1") as (url, process, log):
        (worker,) = _workers(process.pid)
        os.kill(worker, signal.SIGKILL)
        assert _gone({worker}) == set()
        deadline = time.monotonic() + 120
        fields = {"size": "256x256", "seed": 5}
        expected = _in_thread(**fields)
        with concurrent.futures.ThreadPoolExecutor(8) as clients:
            while not _workers(process.pid):  # replaced by the first job sent to it
                assert time.monotonic() < deadline, "the worker was not replaced"
                answers = list(clients.map(lambda _: _generate(url, **fields), range(16)))
                assert all(answer == expected for answer in answers)
        (replacement,) = _workers(process.pid)
        assert replacement != worker
        _until_drawn_by({replacement}, url, {"size": "256x256", "seed": 6})
    assert any("drawing process stopped" in line for line in log)


def test_edits_variations_and_partial_images_are_made_beside_the_workers() -> None:
    with serving("-o", "processes=1") as (url, _, _):
        photo = png((64, 48), (200, 120, 40))
        for route, data in (("edits", {"prompt": "a red door"}), ("variations", {})):
            response = httpx2.post(
                f"{url}/v1/images/{route}",
                data={"model": "placeholder", "seed": "4", **data},
                files={"image": ("photo.png", photo, "image/png")},
                headers=HEADERS,
                timeout=60,
            )
            assert response.status_code == 200, response.text
            image = base64.b64decode(response.json()["data"][0]["b64_json"])
            assert Image.open(io.BytesIO(image)).size == (64, 48)
        body = {"model": "placeholder", "prompt": "a fox", "size": "64x64", "seed": 1}
        with httpx2.stream(
            "POST",
            url + "/v1/images/generations",
            json={**body, "stream": True, "partial_images": 2},
            headers=HEADERS,
            timeout=60,
        ) as stream:
            events = [line for line in stream.iter_lines() if line.startswith("event:")]
        assert [e.split(":", 1)[1].strip() for e in events] == [
            "image_generation.partial_image",
            "image_generation.partial_image",
            "image_generation.completed",
        ]
