"""The manifest, the out folder's lock, the pacer's arithmetic and the gallery, on their own."""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import anyio
import pytest

from imagegen import ImagegenError
from imagegen.batch._gallery import GalleryRow, render
from imagegen.batch._manifest import Manifest, lock_folder
from imagegen.batch._pacing import Pacer, parse_duration

# -- manifest --------------------------------------------------------------------------------


def test_manifest_keeps_the_last_record_of_each_row_and_drops_a_torn_line(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path)
    manifest.append({"row": 1, "status": "failed"})
    manifest.append({"row": 2, "status": "done", "prompt": "café"})
    manifest.append({"row": 1, "status": "done"})
    manifest.close()
    with open(manifest.path, "ab") as handle:
        handle.write(b'{"row": 3, "status": "do')  # killed in the middle of a write
    records = Manifest(tmp_path).load()
    assert records == {
        1: {"row": 1, "status": "done"},
        2: {"row": 2, "status": "done", "prompt": "café"},
    }
    assert manifest.path.read_bytes().endswith(b"}\n")  # the torn line is gone from the file
    again = Manifest(tmp_path)
    again.append({"row": 3, "status": "done"})
    assert set(again.load()) == {1, 2, 3}


def test_manifest_skips_lines_that_are_not_records(tmp_path: Path) -> None:
    (tmp_path / "manifest.jsonl").write_text('{"row": 1}\nnot json\n[1]\n{"row": true}\n\n')
    manifest = Manifest(tmp_path)
    assert list(manifest.load()) == [1]
    assert manifest.unreadable == 3


def test_manifest_rewrite_is_one_line_per_row(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path)
    for row in (2, 1, 2):
        manifest.append({"row": row})
    manifest.rewrite([{"row": 1}, {"row": 2}])
    manifest.append({"row": 3})
    lines = manifest.path.read_text().splitlines()
    assert [json.loads(line)["row"] for line in lines] == [1, 2, 3]
    assert not list(tmp_path.glob(".*.tmp"))


def test_one_batch_at_a_time_per_folder(tmp_path: Path) -> None:
    (tmp_path / ".imagegen-abcd1234.tmp").write_bytes(b"half an image")
    with lock_folder(tmp_path):
        assert not (tmp_path / ".imagegen-abcd1234.tmp").exists()  # a killed run's leftover
        # Another process cannot take the folder while this one holds it.
        code = (
            "import sys; from pathlib import Path\n"
            "from imagegen.batch._manifest import lock_folder\n"
            "try:\n"
            "    with lock_folder(Path(sys.argv[1])): print('locked')\n"
            "except Exception as exc: print(exc)\n"
        )
        other = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60
        )
        assert "Another imagegen batch is writing to" in other.stdout
        with pytest.raises(ImagegenError, match="another --out-dir"), lock_folder(tmp_path):
            pass
    with lock_folder(tmp_path):  # released
        pass


# -- pacing ----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_parse_duration_reads_openais_reset_headers() -> None:
    assert parse_duration("12ms") == pytest.approx(0.012)
    assert parse_duration("1s") == 1.0
    assert parse_duration("6m0s") == 360.0
    assert parse_duration("1h2m3.5s") == pytest.approx(3723.5)
    assert parse_duration("2.5") == 2.5
    assert parse_duration("soon") is None
    assert parse_duration(None) is None


def test_window_is_cut_once_per_round_and_grows_by_one_per_round() -> None:
    clock = Clock()
    pacer = Pacer(8, clock=clock)
    # 429s to a first burst, before any answer came back, say nothing about the window.
    pacer.pushback(pacer.epoch, wait=None, precise=False)
    assert pacer.window == 8
    pacer.success(clock.now - 0.5)
    epoch = pacer.epoch
    pacer.pushback(epoch, wait=None, precise=False)
    assert pacer.window == 4 and pacer.allowed == 4
    # Neither answers to requests sent before the cut, nor those sent before a success came
    # back since, cut again.
    pacer.pushback(epoch, wait=None, precise=False)
    pacer.pushback(pacer.epoch, wait=None, precise=False)
    assert pacer.window == 4
    pacer.success(clock.now - 0.5)
    pacer.pushback(pacer.epoch, wait=None, precise=False)
    assert pacer.window == 3  # two answered together: two were in flight, and one more
    for _ in range(2):  # about one more per round of answers: 3 + 1/3 + 1/3.33
        pacer.success(clock.now - 0.5)
    assert pacer.window == pytest.approx(3 + 1 / 3 + 1 / (3 + 1 / 3))
    for _ in range(100):
        pacer.success(clock.now - 0.5)
    assert pacer.window == 8  # never above the limit


def test_window_is_never_cut_below_one_more_than_the_server_sustained() -> None:
    clock = Clock()
    pacer = Pacer(8, clock=clock)
    # Four requests a second, each taking 0.75 s: three in flight on average.
    for i in range(40):
        clock.now = 1000.0 + i * 0.25
        pacer.success(clock.now - 0.75)
    assert pacer.sustained() == 3
    for _ in range(5):
        clock.now += 0.25
        pacer.success(clock.now - 0.75)
        pacer.pushback(pacer.epoch, wait=None, precise=False)
    assert pacer.window == 4


def test_once_pushed_back_starts_are_spread_over_a_round_trip() -> None:
    clock = Clock()
    pacer = Pacer(4, clock=clock)
    pacer.success(clock.now - 0.4)
    assert pacer.interval() == 0  # never pushed back: no pacing
    pacer.pushback(pacer.epoch, wait=None, precise=False)
    assert pacer.window == 2 and pacer.interval() == pytest.approx(0.2)  # 0.4 s / 2


def test_gate_holds_new_starts_for_the_servers_hint() -> None:
    clock = Clock()
    pacer = Pacer(4, clock=clock)
    pacer.pushback(pacer.epoch, wait=0.25, precise=True)
    assert pacer.ready_in() == pytest.approx(0.25)
    # Whole seconds only say the slot is within that second: the gate holds one second less.
    pacer.pushback(pacer.epoch, wait=3, precise=False)
    assert pacer.ready_in() == pytest.approx(2.0)
    pacer.pushback(pacer.epoch, wait=600, precise=True)  # past the cap: not a gate
    assert pacer.ready_in() == pytest.approx(2.0)


def test_the_servers_stated_rate_spaces_the_starts_on_average() -> None:
    clock = Clock()
    pacer = Pacer(4, clock=clock)
    pacer.success(clock.now - 0.1, {"x-ratelimit-limit-requests": "120"})
    assert pacer.interval() == pytest.approx(0.5)
    pacer._start()
    assert pacer.ready_in() == pytest.approx(0.25)  # up to half a spacing early...
    clock.now += 0.25
    pacer._start()
    assert pacer.ready_in() == pytest.approx(0.5)  # ...and then the spacing again
    clock.now += 0.5
    pacer._start()
    clock.now += 0.9  # a start made late: the next may come early, by up to half a spacing
    pacer._start()
    assert pacer.ready_in() == pytest.approx(0.25)


def test_429s_slow_a_stated_rate_instead_of_cutting_the_window() -> None:
    clock = Clock()
    pacer = Pacer(4, clock=clock)
    headers = {"x-ratelimit-limit-requests": "120"}
    # The first 429s, learning the rate, say nothing new.
    pacer.pushback(pacer.epoch, wait=None, precise=False, headers=headers)
    assert pacer.interval() == pytest.approx(0.5) and pacer.window == 4
    pacer.success(clock.now - 0.1, headers)
    pacer.pushback(pacer.epoch, wait=None, precise=False, headers=headers)
    assert pacer.interval() == pytest.approx(0.625) and pacer.window == 4
    for _ in range(50):  # one request at a time, 0.5 s apart
        clock.now += 0.5
        pacer.success(clock.now - 0.1, headers)
    assert pacer.interval() == pytest.approx(0.5)  # worn off
    # A 503 is overload, not the rate: it cuts the window.
    pacer.pushback(pacer.epoch, wait=None, precise=False, rate_limited=False, headers=headers)
    assert pacer.window == 2


def test_a_429_with_no_allowance_left_holds_until_the_next_request_is_allowed() -> None:
    clock = Clock()
    pacer = Pacer(4, clock=clock)
    empty = {
        "x-ratelimit-limit-requests": "120",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "20s",
    }
    # On a success the count is a latency old: no hold.
    pacer.success(clock.now - 0.1, empty)
    assert pacer.ready_in() < 0
    pacer.pushback(pacer.epoch, wait=None, precise=False, headers=empty)
    assert pacer.ready_in() == pytest.approx(0.5)  # one request comes back after 60/120 s
    pacer.success(clock.now, {"x-ratelimit-limit-requests": "bad"})
    assert pacer.interval() >= 0.5


def test_places_go_to_retries_first_then_in_order_and_never_above_the_window() -> None:
    order: list[str] = []

    async def main() -> None:
        pacer = Pacer(1)
        await pacer.acquire()
        async with anyio.create_task_group() as tasks:
            for name, priority in (("new-1", 1), ("new-2", 1), ("retry", 0)):

                async def take(name: str = name, priority: int = priority) -> None:
                    await pacer.acquire(priority=priority)
                    assert pacer.in_flight == 1
                    order.append(name)
                    pacer.release()

                tasks.start_soon(take)
                await anyio.sleep(0)
            await anyio.sleep(0.01)
            assert order == []  # the one place is taken
            pacer.release()

    anyio.run(main)
    assert order == ["retry", "new-1", "new-2"]


def test_a_closed_pacer_stops_its_waiters() -> None:
    from imagegen.batch._pacing import Stopped

    stopped: list[bool] = []

    async def main() -> None:
        pacer = Pacer(1)
        await pacer.acquire()

        async def wait() -> None:
            try:
                await pacer.acquire()
            except Stopped:
                stopped.append(True)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wait)
            await anyio.sleep(0.01)
            pacer.close()
        with pytest.raises(Stopped):
            await pacer.acquire()

    anyio.run(main)
    assert stopped == [True]


# -- gallery ---------------------------------------------------------------------------------


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)


def test_gallery_escapes_what_it_shows_and_links_only_relative_paths() -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    page = render(
        "rows <b>.csv",
        [
            GalleryRow(1, "done", hostile, {"size": "64x64"}, ("0001-script.png",)),
            GalleryRow(2, "failed", "A fox", {}, (), ("../in put.png",), error=hostile),
            GalleryRow(3, "pending", "later"),
            GalleryRow(4, "invalid", error="row 4, size: Invalid size"),
        ],
    )
    elements = _Elements()
    elements.feed(page)
    assert "script" not in elements.tags  # the prompt is text, not markup
    assert elements.tags.count("img") == 2
    assert elements.links == [
        "#row-2",  # the failures, first
        "#row-4",
        "0001-script.png",  # a link to the image, and the image as its thumbnail
        "0001-script.png",
        "../in%20put.png",  # the input image of an edit
        "../in%20put.png",
    ]
    assert not any(link.startswith(("http:", "https:", "/")) for link in elements.links)
    assert "&lt;script&gt;" in page
    assert "Failed (2)" in page  # the failed and the invalid row, listed first
    assert "<b>1</b> done, <b>1</b> failed, <b>1</b> invalid, <b>1</b> pending" in page
    assert "<link" not in page and "@import" not in page  # nothing from the network
