"""`response_format=url`: absolute, signed, expiring links on this server; tampered links are
refused, expired ones are gone, the sweeper deletes expired files and nothing else. DALL·E
models answer URLs when the request names no format, as OpenAI's do."""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import openai
import pytest
from click.testing import CliRunner
from PIL import Image
from srvkit import KEY, SolidEngine, assert_openai_error, decode, make_settings, png

import imagegen
from imagegen.cli import cli
from imagegen.server import create_app
from live import live_server


def url_images(url: str, n: int = 1, **extra: object) -> httpx2.Response:
    body = {"prompt": "x", "size": "24x24", "response_format": "url", "n": n, **extra}
    response = httpx2.post(url + "/v1/images/generations", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def test_links_are_absolute_signed_and_serve_the_image(tmp_path: Path) -> None:
    settings = make_settings(storage_dir=tmp_path)
    with live_server(create_app(SolidEngine(), settings)) as url:
        response = url_images(url, n=2, output_format="webp")
        links = [item["url"] for item in response.json()["data"]]
        assert len(set(links)) == 2
        for link in links:
            parts = urlsplit(link)
            assert link.startswith(url + "/files/") and parts.path.endswith(".webp")
            assert parse_qs(parts.query)["signature"]
            image = httpx2.get(link)
            assert image.status_code == 200
            assert image.headers["content-type"] == "image/webp"
            assert image.headers["cache-control"].startswith("private, max-age=")
            assert decode(image.content).size == (24, 24)
        assert str(tmp_path) not in response.text  # no server path, ever
        assert not list(tmp_path.glob(".*.tmp"))  # written atomically, no leftovers
        assert len(list(tmp_path.glob("*.webp"))) == 2


def test_tampered_links_are_refused() -> None:
    with live_server(create_app(SolidEngine(), make_settings())) as url:
        link = url_images(url).json()["data"][0]["url"]
        path, _, query = link.partition("?")
        name = path.rsplit("/", 1)[1]
        expiry, _, rest = name.partition("-")
        signature = parse_qs(query)["signature"][0]
        flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
        later = f"{int(expiry) + 3600}-{rest}"
        for bad in (
            f"{path}?signature={flipped}",
            path,  # no signature
            f"{path}?signature=",
            f"{path.rsplit('/', 1)[0]}/{later}?{query}",  # a longer life, same signature
        ):
            assert_openai_error(httpx2.get(bad), 403)
        for bad in (
            f"{url}/files/..%2F..%2Fetc%2Fpasswd?{query}",
            f"{url}/files/notours.png?{query}",
        ):
            assert_openai_error(httpx2.get(bad), 404)
        assert httpx2.get(link).status_code == 200  # the genuine one still works


def test_expired_link_is_404_and_swept(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not ours")
    (tmp_path / "1-short.png").write_bytes(b"not ours either")
    settings = make_settings(storage_dir=tmp_path, url_ttl=1, sweep_interval=0.05)
    with live_server(create_app(SolidEngine(), settings)) as url:
        link = url_images(url).json()["data"][0]["url"]
        expiry = int(link.rsplit("/", 1)[1].split("-", 1)[0])
        wait_until(lambda: time.time() >= expiry, "the link has expired", timeout=5)
        error = assert_openai_error(httpx2.get(link), 404)
        assert "expired" in error["message"]
        wait_until(lambda: not _ours(tmp_path), "the sweeper removed the file")
    assert (tmp_path / "notes.txt").exists()
    assert (tmp_path / "1-short.png").exists()


def _ours(folder: Path) -> list[Path]:
    return [path for path in folder.glob("*.png") if len(path.stem.split("-", 1)[-1]) == 22]


def test_public_url_and_shared_secret_survive_a_restart(tmp_path: Path) -> None:
    settings = make_settings(
        storage_dir=tmp_path, public_url="https://images.example.org/base/", url_secret="s3cret"
    )
    with live_server(create_app(SolidEngine(), settings)) as url:
        link = url_images(url).json()["data"][0]["url"]
    assert link.startswith("https://images.example.org/base/files/")
    local = link.replace("https://images.example.org/base", "{}")
    with live_server(create_app(SolidEngine(), settings)) as url:  # a second start
        assert httpx2.get(local.format(url)).status_code == 200
    other = make_settings(storage_dir=tmp_path, url_secret="another")
    with live_server(create_app(SolidEngine(), other)) as url:
        assert_openai_error(httpx2.get(local.format(url)), 403)


def test_default_storage_is_a_temporary_folder_removed_at_shutdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with live_server(create_app(SolidEngine(), make_settings())) as url:
        url_images(url)
        folders = list(tmp_path.glob("imagegen-images-*"))
        assert len(folders) == 1 and len(list(folders[0].glob("*.png"))) == 1
    assert not folders[0].exists()


def test_b64_json_writes_nothing(tmp_path: Path) -> None:
    with live_server(create_app(SolidEngine(), make_settings(storage_dir=tmp_path))) as url:
        response = httpx2.post(
            url + "/v1/images/generations", json={"prompt": "x", "size": "8x8"}, timeout=30
        )
        assert response.json()["data"][0]["b64_json"]
    assert not list(tmp_path.iterdir())


# -- DALL·E answers URLs unless told otherwise, as OpenAI does ---------------------------------


@pytest.fixture
def sdk(server: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server + "/v1", api_key=KEY, max_retries=0) as client:
        yield client


def _downloaded_png(link: str | None, server: str, size: tuple[int, int]) -> None:
    assert link and link.startswith(server + "/files/"), link
    response = httpx2.get(link)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = decode(response.content)
    assert (image.format, image.size) == ("PNG", size)


def _dall_e_calls(sdk: openai.OpenAI) -> list[Callable[[], Any]]:
    photo = ("in.png", png((64, 64)), "image/png")
    return [
        lambda: sdk.images.generate(model="dall-e-2", prompt="x", size="256x256", n=2),
        lambda: sdk.images.generate(model="dall-e-3", prompt="x", size="1024x1024"),
        lambda: sdk.images.edit(model="dall-e-2", image=photo, prompt="x", size="256x256"),
        lambda: sdk.images.create_variation(model="dall-e-2", image=photo, size="256x256"),
    ]


def test_dall_e_without_response_format_gets_urls(sdk: openai.OpenAI, server: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's create_variation
        results = [call() for call in _dall_e_calls(sdk)]
    sizes = [(256, 256), (1024, 1024), (256, 256), (256, 256)]
    for result, size in zip(results, sizes, strict=True):
        assert result.data and all(item.b64_json is None for item in result.data)
        for item in result.data:
            _downloaded_png(item.url, server, size)


def test_other_models_and_an_explicit_b64_json_get_base64(sdk: openai.OpenAI) -> None:
    for model in ("gpt-image-2", "solid-1", openai.NOT_GIVEN):
        result = sdk.images.generate(model=model, prompt="x", size="1024x1024")
        assert result.data[0].url is None and result.data[0].b64_json
    result = sdk.images.generate(
        model="dall-e-2", prompt="x", size="256x256", response_format="b64_json"
    )
    assert result.data[0].url is None and result.data[0].b64_json


def test_our_client_downloads_a_dall_e_url(server: str, tmp_path: Path) -> None:
    with imagegen.Client(base_url=server + "/v1", api_key=KEY, max_retries=0) as client:
        result = client.generate("A fox", model="dall-e-2", size="256x256")
        assert result[0].b64_json is None
        _downloaded_png(result[0].url, server, (256, 256))
        [path] = result.save(tmp_path / "fox.png")
    with Image.open(path) as saved:
        assert (saved.format, saved.size) == ("PNG", (256, 256))


def test_our_cli_saves_a_dall_e_url(server: str, tmp_path: Path) -> None:
    out = tmp_path / "x.png"
    args = ["generate", "A fox", "-m", "dall-e-2", "-s", "256x256", "--base-url", server + "/v1"]
    result = CliRunner().invoke(cli, [*args, "--api-key", KEY, "-o", str(out)])
    assert result.exit_code == 0, result.output
    with Image.open(out) as saved:
        assert (saved.format, saved.size) == ("PNG", (256, 256))
    result = CliRunner().invoke(cli, [*args, "--api-key", KEY, "-f", "url"])
    assert result.exit_code == 0, result.output
    _downloaded_png(result.output.strip(), server, (256, 256))  # the server's link, not data:
