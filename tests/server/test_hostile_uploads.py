"""Hostile uploads: bodies trickled in, image parts larger than the limit, more bodies at once
than the server holds, huge JSON edits, and inputs that decode to far more pixels than their
size suggests.

Every attack runs against a real server on loopback, driven by raw sockets (or httpx2 where
the request itself is ordinary and only its size is hostile).
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import tracemalloc
from typing import Any

import httpx2
import pytest
from attack import (
    HANG,
    Trickler,
    connect,
    head,
    health,
    hostile_server,
    peak_memory_mb,
    read_answer,
    status_of,
    wait_until,
)
from PIL import Image
from srvkit import (
    KEY,
    BlockingEngine,
    SolidEngine,
    capture_thread,
    mask_png,
    multipart,
    png,
    serving,
)

from imagegen.server._bodies import JsonEditReader

GEN = "/v1/images/generations"
EDIT = "/v1/images/edits"


def body_of(answer: bytes) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(answer.partition(b"\r\n\r\n")[2])["error"]
    return error


def json_upload(length: int, path: str = GEN) -> bytes:
    return head("POST", path, content_type="application/json", content_length=length)


def test_a_trickled_body_gets_408_at_its_deadline_whatever_the_pace_of_its_bytes() -> None:
    # A byte every 0.2 s: a timer reset by each chunk (or one per chunk) would never fire.
    with hostile_server(SolidEngine(), body_timeout=1, min_upload_rate=1024 * 1024) as url:
        trickler = Trickler(connect(url, json_upload(1000)), b" " * 1000)
        answer = trickler.wait()
        assert status_of(answer) == 408
        error = body_of(answer)
        assert error["code"] == "request_timeout"
        assert "did not arrive in time" in error["message"]
        wait_until(lambda: health(url)["body_bytes"] == 0, "the body's bytes are given back")


def test_uploads_in_progress_hold_no_place_in_the_queue() -> None:
    engine = BlockingEngine()
    try:
        # One place in all (one engine slot, no queue) and 17 uploads trickling in.
        with hostile_server(engine, max_concurrency=1, max_queue=0, body_timeout=600) as url:
            tricklers = [
                Trickler(connect(url, json_upload(1000)), b" " * 1000, interval=0.5)
                for _ in range(17)
            ]
            try:
                wait_until(lambda: health(url)["body_bytes"] == 17_000, "the uploads are in")

                def generate() -> httpx2.Response:
                    body = {"prompt": "x", "size": "8x8"}
                    return httpx2.post(url + GEN, json=body, timeout=HANG)

                with capture_thread(generate) as first:
                    engine.wait_started()  # the one place is this request's, not an upload's
                    assert health(url)["running"] == 1
                    engine.release.set()
                assert first["result"].status_code == 200
            finally:
                for trickler in tricklers:
                    trickler.stop()
    finally:
        engine.release.set()


def test_a_full_queue_still_refuses_before_the_body_is_sent() -> None:
    engine = BlockingEngine()
    try:
        with hostile_server(engine, max_concurrency=1, max_queue=0) as url:

            def generate() -> httpx2.Response:
                return httpx2.post(url + GEN, json={"prompt": "x", "size": "8x8"}, timeout=HANG)

            with capture_thread(generate) as first:
                engine.wait_started()
                with connect(url, json_upload(500_000)) as sock:  # announced, never sent
                    answer = read_answer(sock)
                assert status_of(answer) == 429
                assert b"retry-after:" in answer.lower()
                engine.release.set()
            assert first["result"].status_code == 200
    finally:
        engine.release.set()


def _image_part_head(name: str = "image", boundary: str = "b") -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode() + png()


@pytest.mark.parametrize("name", ["image", "image[]", "mask"])
def test_an_image_part_over_the_limit_is_refused_as_it_arrives(name: str) -> None:
    limit = 64 * 1024
    with hostile_server(SolidEngine(), max_image_bytes=limit, max_request_bytes="64MB") as url:
        request = head(
            "POST",
            EDIT,
            content_type="multipart/form-data; boundary=b",
            content_length=60 * 1024 * 1024,  # announced; only a little more than the limit comes
        )
        with connect(url, request + _image_part_head(name) + b"\0" * (2 * limit)) as sock:
            answer = read_answer(sock)
        assert status_of(answer) == 400
        error = body_of(answer)
        assert error["param"] == ("mask" if name == "mask" else "image")
        assert "larger than 64 KB" in error["message"]
        wait_until(lambda: health(url)["body_bytes"] == 0, "the body's bytes are given back")


def test_bodies_beyond_the_servers_budget_get_429_at_once() -> None:
    settings = {"max_inflight_bytes": "3MB", "max_request_bytes": "2MB", "body_timeout": 600}
    with hostile_server(SolidEngine(), **settings) as url:
        big = head(
            "POST", EDIT, content_type="multipart/form-data; boundary=b", content_length=2 << 20
        )
        with connect(url, big + _image_part_head()):  # 2 MB announced, held open
            wait_until(lambda: health(url)["body_bytes"] == 2 << 20, "the first body is counted")
            with connect(url, big) as second:
                answer = read_answer(second)
            assert status_of(answer) == 429
            assert b"retry-after:" in answer.lower()
            assert "request bodies it holds" in body_of(answer)["message"]
            # Small requests still fit.
            response = httpx2.post(url + GEN, json={"prompt": "x", "size": "8x8"}, timeout=HANG)
            assert response.status_code == 200
        wait_until(lambda: health(url)["body_bytes"] == 0, "the first body's bytes are back")
        with connect(url, big) as again:  # now it fits: the server waits for its body
            again.settimeout(0.5)
            with pytest.raises(TimeoutError):
                again.recv(1)


def test_a_json_edit_over_its_cap_is_413_before_and_while_it_streams() -> None:
    with hostile_server(SolidEngine(), max_json_edit_bytes="2MB") as url:
        with connect(url, json_upload(5 << 20, EDIT)) as sock:  # announced
            answer = read_answer(sock)
        assert status_of(answer) == 413
        assert body_of(answer)["code"] == "request_too_large"

        def chunks() -> Any:  # no Content-Length
            yield b'{"prompt": "x", "images": [{"image_url": "data:image/png;base64,'
            for _ in range(100):
                yield b"A" * 65536

        response = httpx2.post(
            url + EDIT, content=chunks(), headers={"content-type": "application/json"}, timeout=HANG
        )
        assert response.status_code == 413
        # Text cannot pass for an image: the JSON besides the data URLs is held to 1 MB.
        huge = json.dumps({"prompt": "x" * (1 << 20) + "y", "images": []})
        response = httpx2.post(
            url + EDIT, content=huge, headers={"content-type": "application/json"}, timeout=HANG
        )
        assert response.status_code == 413
        assert "other than the images" in response.json()["error"]["message"]


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def test_a_json_edit_holds_its_decoded_images_not_its_text() -> None:
    """Peak memory of a 22 MB JSON edit: its decoded images (16 MB) and one more copy of one of
    them at most, where reading the body whole, parsing it and decoding it held three copies of
    its text and more (over 60 MB)."""
    padded = png((64, 64)) + os.urandom(8 << 20)  # a valid PNG: bytes after IEND are ignored
    body = json.dumps(
        {
            "prompt": "x",
            "model": "solid-1",
            "size": "64x64",
            "images": [{"image_url": data_url(padded)}] * 2,
        }
    ).encode()
    with hostile_server(SolidEngine()) as url, httpx2.Client(timeout=HANG) as http:
        headers = {"content-type": "application/json"}
        assert http.post(url + EDIT, content=body, headers=headers).status_code == 200  # warm
        tracemalloc.start()
        try:
            response = http.post(url + EDIT, content=body, headers=headers)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert response.status_code == 200, response.text
    decoded = 2 * len(padded)
    assert peak < 2 * decoded, f"peak {peak / 2**20:.1f} MB for {decoded / 2**20:.1f} MB of images"


def test_json_edit_data_urls_decode_as_the_json_module_reads_them() -> None:
    """The streaming reader against `json.loads` + `base64.b64decode`, fed in pieces of every
    size, with the escapes JSON allows inside base64 (`\\/`, `\\u002F`) and broken payloads."""
    rng = random.Random(9)
    for _ in range(300):
        payloads = [os.urandom(rng.choice([300, 5000, 70_000])) for _ in range(rng.randint(1, 3))]
        refs = [{"image_url": data_url(data)} for data in payloads]
        broken = rng.random() < 0.2
        if broken:
            url = refs[0]["image_url"]
            refs[0]["image_url"] = url[:-5] + "!" + url[-4:]
        text = json.dumps(
            {"prompt": 'a "cat" \\ é', "images": refs}, ensure_ascii=rng.random() < 0.5
        )
        text = rng.choice([text, text.replace("/", "\\/"), text.replace("/", "\\u002F")])
        data = text.encode()
        reader = JsonEditReader(max_image_bytes=1 << 30)
        at = 0
        while at < len(data):
            step = rng.choice([1, 3, 64, 4096, 1 << 20])
            reader.feed(data[at : at + step])
            at += step
        fields, blobs = reader.finish()
        parsed = json.loads(fields)
        assert parsed["prompt"] == 'a "cat" \\ é'
        got = [blobs[ref["image_url"]] for ref in parsed["images"]]
        assert [blob.header for blob in got] == ["data:image/png;base64"] * len(payloads)
        if broken:
            assert got[0].data is None and got[0].problem == "malformed"
            got, payloads = got[1:], payloads[1:]
        assert [blob.data for blob in got] == payloads


def _one_bit_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
def test_a_64_megapixel_png_of_8_kb_is_decoded_within_a_gigabyte() -> None:
    bomb = _one_bit_png(8000, 8000)  # 7.8 KB, 64,000,000 pixels: the default limit
    assert len(bomb) < 8_000
    with serving() as (url, process, _):
        before = peak_memory_mb(process.pid)
        response = httpx2.post(
            url + EDIT,
            files={"image": ("bomb.png", bomb, "image/png")},
            data={"prompt": "x", "model": "placeholder", "size": "256x256"},
            headers={"authorization": f"Bearer {KEY}"},
            timeout=HANG * 4,
        )
        assert response.status_code == 200, response.text
        peak = peak_memory_mb(process.pid)
    assert peak - before < 1024, f"{peak - before} MB for one 64 MP input"


def test_decoding_waits_for_the_pixel_budget() -> None:
    engine = BlockingEngine()
    pixels = 2 * 64 * 64  # an image and its mask
    edit_body, headers = multipart(
        [
            ("image", png(), "a.png", "image/png"),
            ("mask", mask_png((64, 64), (0, 0, 8, 8)), "m.png", "image/png"),
            ("prompt", "x", None, None),
        ]
    )
    try:
        settings = {"max_input_pixels": pixels, "max_decoded_pixels": pixels, "max_queue": 4}
        with hostile_server(engine, **settings) as url:

            def edit() -> httpx2.Response:
                return httpx2.post(url + EDIT, content=edit_body, headers=headers, timeout=HANG)

            with capture_thread(edit) as first, capture_thread(edit) as second:
                engine.wait_started()
                # The first holds the whole budget while it runs; the second is read and
                # admitted, but waits to decode.
                wait_until(lambda: health(url)["waiting_for_pixels"] == 1, "the second waits")
                assert health(url)["decoded_pixels"] == pixels
                engine.release.set()
            assert first["result"].status_code == second["result"].status_code == 200
            assert health(url)["decoded_pixels"] == 0
    finally:
        engine.release.set()


def test_a_tiny_png_of_too_many_pixels_is_refused_before_decoding() -> None:
    bomb = _one_bit_png(4000, 4000)  # a few KB for 16 MP
    assert len(bomb) < 10_000
    with hostile_server(SolidEngine(), max_input_pixels=4_000_000) as url:
        body, headers = multipart(
            [("image", bomb, "a.png", "image/png"), ("prompt", "x", None, None)]
        )
        response = httpx2.post(url + EDIT, content=body, headers=headers, timeout=HANG)
        assert response.status_code == 400
        assert "16,000,000 pixels" in response.json()["error"]["message"]
        body = json.dumps({"prompt": "x", "images": [{"image_url": data_url(bomb)}]})
        response = httpx2.post(
            url + EDIT, content=body, headers={"content-type": "application/json"}, timeout=HANG
        )
        assert response.status_code == 400
        assert health(url)["decoded_pixels"] == 0
