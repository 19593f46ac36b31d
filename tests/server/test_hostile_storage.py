"""Disk: `url` results nobody fetches are capped (the oldest go first), and the image folder
of a server that was killed is removed by the next server that starts."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx2
from attack import HANG, hostile_server
from srvkit import KEY, SolidEngine, assert_openai_error, serving

from imagegen.server._storage import ImageStore, remove_abandoned_folders


def url_result(
    url: str, prompt: str, headers: dict[str, str] | None = None, model: str = "solid-1"
) -> str:
    body = {"prompt": prompt, "size": "32x32", "model": model, "response_format": "url"}
    response = httpx2.post(url + "/v1/images/generations", json=body, headers=headers, timeout=HANG)
    assert response.status_code == 200, response.text
    link: str = response.json()["data"][0]["url"]
    return link


def stored(folder: Path) -> list[Path]:
    return [path for path in folder.iterdir() if path.suffix == ".png"]


def test_stored_images_are_capped_and_the_oldest_go_first(tmp_path: Path) -> None:
    cap = 1024
    with hostile_server(SolidEngine(), storage_dir=tmp_path, max_storage=cap) as url:
        links = [url_result(url, f"image {index}") for index in range(40)]
        sizes = [path.stat().st_size for path in stored(tmp_path)]
        assert sum(sizes) <= cap
        assert 1 < len(sizes) < 40  # some kept, the oldest removed
        error = assert_openai_error(httpx2.get(links[0], timeout=HANG), 404, code="expired")
        assert "no longer stored" in error["message"]
        assert httpx2.get(links[-1], timeout=HANG).status_code == 200
        kept = [link for link in links if httpx2.get(link, timeout=HANG).status_code == 200]
        assert kept == links[-len(kept) :]  # exactly the newest ones


def test_every_output_format_is_served_swept_and_counted(tmp_path: Path) -> None:
    with hostile_server("placeholder", storage_dir=tmp_path, max_storage="64KB") as url:
        for fmt in ("png", "jpeg", "webp", "gif", "svg"):
            body = {"prompt": "x", "model": "placeholder", "size": "64x64"}
            response = httpx2.post(
                url + "/v1/images/generations",
                json={**body, "output_format": fmt, "response_format": "url"},
                timeout=HANG,
            )
            assert response.status_code == 200, response.text
            image = httpx2.get(response.json()["data"][0]["url"], timeout=HANG)
            assert image.status_code == 200, (fmt, image.text)
            assert image.headers["x-content-type-options"] == "nosniff"
            assert "sandbox" in image.headers["content-security-policy"]
        store = ImageStore(tmp_path, ttl=60)  # what a server sharing the folder sees
        assert store.used == sum(path.stat().st_size for path in tmp_path.iterdir()) > 0
        assert store.sweep(now=time.time() + 7200) == 5
        store.close()


def test_the_newest_image_is_kept_even_when_it_alone_is_over_the_cap(tmp_path: Path) -> None:
    store = ImageStore(tmp_path, ttl=60, max_bytes=1024)
    try:
        first = store.save(b"x" * 600, "png")
        second = store.save(b"y" * 2000, "png")  # over the cap by itself: the older one goes
        assert sorted(path.name for path in stored(tmp_path)) == [second]
        assert store.used == 2000
        third = store.save(b"z" * 10, "png")
        assert sorted(path.name for path in stored(tmp_path)) == [third]
        assert first not in {path.name for path in stored(tmp_path)}
    finally:
        store.close()


def test_a_killed_servers_folder_is_removed_by_the_next_server(tmp_path: Path) -> None:
    env = {"TMPDIR": str(tmp_path)}
    auth = {"authorization": f"Bearer {KEY}"}
    older = tmp_path / "imagegen-images-older-version"  # no owner file: never touched
    older.mkdir()
    (older / "keep.png").write_bytes(b"x")
    with serving(env=env) as (url, process, _):
        url_result(url, "a lion", auth, "placeholder")
        (killed,) = [p for p in tmp_path.glob("imagegen-images-*") if p != older]
        assert stored(killed)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=HANG)
    assert killed.exists()  # nothing ran at exit: the folder is left behind
    with serving(env=env) as (url, _, log):
        url_result(url, "a lion", auth, "placeholder")
        assert not killed.exists()
        (alive,) = [p for p in tmp_path.glob("imagegen-images-*") if p != older]
        # The running server's own folder is locked: nothing removes it meanwhile.
        assert remove_abandoned_folders(tmp_path) == 0
        assert alive.exists() and stored(alive)
    assert any("left by servers that were stopped" in line for line in log)
    assert not alive.exists()  # removed at a clean shutdown, as before
    assert (older / "keep.png").exists()
    assert os.listdir(tmp_path) == [older.name]
