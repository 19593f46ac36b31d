"""Saving: naming, atomic writes, downloads, PNG text metadata and JSON sidecars."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
from pathlib import Path

import pytest
from PIL import Image
from scripted import API_KEY, Reply, ScriptedServer, image_bytes, images_body

import imagegen
from imagegen._saving import b64_chunks, check_writable, png_text_chunks


def _noise_png(size: tuple[int, int] = (96, 64)) -> bytes:
    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_several_images_are_named_like_psopenai(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    server.script(Reply(json=images_body(3)))
    paths = client.generate("a fox", n=3).save(tmp_path / "new" / "dir" / "fox.png")
    folder = tmp_path / "new" / "dir"
    assert paths == [folder / "fox.png", folder / "fox-1.png", folder / "fox-2.png"]
    assert _files(tmp_path) == ["new/dir/fox-1.png", "new/dir/fox-2.png", "new/dir/fox.png"]


def test_one_image_keeps_the_exact_name_and_overwrites(
    client: imagegen.Client, tmp_path: Path
) -> None:
    target = tmp_path / "fox.png"
    target.write_bytes(b"old")
    [path] = client.generate("a fox").save(target)
    assert path == target
    assert path.read_bytes().startswith(b"\x89PNG")


def test_a_path_without_extension_gets_the_real_format(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    jpeg = image_bytes("JPEG")
    server.script(Reply(json=images_body(data=[{"b64_json": _b64(jpeg)}] * 2)))
    paths = client.generate("a fox", n=2, output_format="jpeg").save(tmp_path / "fox")
    assert [p.name for p in paths] == ["fox.jpg", "fox-1.jpg"]


def test_a_name_that_disagrees_with_the_bytes_is_kept_with_a_warning(
    client: imagegen.Client,
    server: ScriptedServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Written as the server sent it (nothing re-encoded, nothing lost), and said.
    server.script(Reply())
    with caplog.at_level(logging.WARNING, logger="imagegen"):
        path = client.generate("a fox").save(tmp_path / "fox.jpg")[0]
    assert path.name == "fox.jpg" and path.read_bytes().startswith(b"\x89PNG")
    assert "fox.jpg holds png data: the server sent png, not jpeg." in caplog.text


def test_png_metadata_is_text_chunks_and_pixels_do_not_change(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    original = _noise_png()
    server.script(
        Reply(
            json=images_body(
                data=[{"b64_json": _b64(original), "revised_prompt": "A small red fox, café"}],
                size="96x64",
            )
        )
    )
    prompt = "a fox in the snow — ünïcödé ✓"
    [path] = client.generate(prompt, model="gpt-image-1").save(tmp_path / "fox.png")
    saved = Image.open(path)
    assert saved.text == {
        "prompt": prompt,
        "model": "gpt-image-1",
        "size": "96x64",
        "revised_prompt": "A small red fox, café",
        "created": "2026-09-21T14:13:20+00:00",
    }
    assert saved.tobytes() == Image.open(io.BytesIO(original)).tobytes()
    assert not (tmp_path / "fox.png.json").exists()


def test_metadata_false_writes_the_bytes_as_received(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    original = _noise_png()
    server.script(Reply(json=images_body(data=[{"b64_json": _b64(original)}])))
    [path] = client.generate("a fox").save(tmp_path / "fox.png", metadata=False)
    assert path.read_bytes() == original
    assert _files(tmp_path) == ["fox.png"]


def test_other_formats_get_a_json_sidecar(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    webp = image_bytes("WEBP")
    server.script(Reply(json=images_body(data=[{"b64_json": _b64(webp)}], size="64x64")))
    result = client.generate("a fox", output_format="webp")
    path = result[0].save(tmp_path / "fox.webp")
    assert path.read_bytes() == webp
    sidecar = json.loads((tmp_path / "fox.webp.json").read_text("utf-8"))
    assert sidecar["prompt"] == "a fox" and sidecar["size"] == "64x64"
    assert sidecar["model"] == "gpt-image-2" and "created" in sidecar
    assert _files(tmp_path) == ["fox.webp", "fox.webp.json"]


def test_url_results_are_downloaded_and_saved(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    picture = _noise_png()
    urls = [f"{server.url}/files/{i}.png" for i in range(2)]
    server.script(
        Reply(json=images_body(data=[{"url": u} for u in urls])),
        Reply(body=picture, content_type="image/png"),
        Reply(body=picture, content_type="image/png"),
    )
    result = client.generate("a fox", model="dall-e-2", n=2, response_format="url")
    paths = result.save(tmp_path / "fox.png")
    assert [p.name for p in paths] == ["fox.png", "fox-1.png"]
    assert Image.open(paths[1]).tobytes() == Image.open(io.BytesIO(picture)).tobytes()
    downloads = server.requests[1:]
    assert [r.path for r in downloads] == ["/files/0.png", "/files/1.png"]
    # Same origin as the API: a server hosting its own URLs may need the key.
    assert downloads[0].headers["authorization"] == f"Bearer {API_KEY}"


def test_downloads_elsewhere_never_carry_the_key(
    make_client, server: ScriptedServer, tmp_path: Path
) -> None:
    client = make_client(base_url=server.base_url.replace("127.0.0.1", "localhost"))
    server.script(
        Reply(json=images_body(data=[{"url": f"{server.url}/blob/a.png"}])),
        Reply(body=image_bytes(), content_type="image/png"),
    )
    client.generate("a fox", model="dall-e-2", response_format="url").save(tmp_path / "a.png")
    assert "authorization" not in server.last.headers


def test_a_download_breaking_mid_body_leaves_no_file(
    make_client, server: ScriptedServer, tmp_path: Path
) -> None:
    client = make_client(max_retries=0)
    picture = _noise_png((256, 256))
    server.script(
        Reply(json=images_body(data=[{"url": f"{server.url}/files/a.png"}])),
        Reply(break_after=picture[: len(picture) // 2]),
    )
    result = client.generate("a fox", model="dall-e-2", response_format="url")
    with pytest.raises(imagegen.APIConnectionError):
        result.save(tmp_path / "out" / "fox.png")
    assert _files(tmp_path) == []


def test_an_expired_url_is_a_status_error(
    make_client, server: ScriptedServer, tmp_path: Path
) -> None:
    server.script(
        Reply(json=images_body(data=[{"url": f"{server.url}/files/old.png"}])),
        Reply(
            status=403, body=b"AuthenticationFailed: signature expired", content_type="text/plain"
        ),
    )
    result = make_client().generate("a fox", model="dall-e-2", response_format="url")
    with pytest.raises(imagegen.PermissionDeniedError, match="signature expired"):
        result[0].save(tmp_path / "fox.png")
    assert _files(tmp_path) == []


def test_a_failed_write_removes_the_temporary_file(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    server.script(Reply(json=images_body(data=[{"b64_json": "iVBORw0KGgo" + "!" * 9}])))
    result = client.generate("a fox")
    with pytest.raises(imagegen.APIResponseError, match="base64"):
        result.save(tmp_path / "fox.png")
    assert _files(tmp_path) == []


def test_a_folder_in_the_way_is_a_clear_error(client: imagegen.Client, tmp_path: Path) -> None:
    (tmp_path / "fox.png").mkdir()
    with pytest.raises(imagegen.ImagegenError, match="Cannot write"):
        client.generate("a fox").save(tmp_path / "fox.png")
    assert _files(tmp_path) == []


@pytest.mark.parametrize("given", ["folder", "folder/", "new-folder/"])
def test_a_folder_is_not_a_file_name(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path, given: str
) -> None:
    """`save("out")` with `out` a folder (or `"out/"`) wrote `out.png` beside it, outside the
    folder asked for; it is refused, naming a file name to give instead."""
    (tmp_path / "folder").mkdir()
    server.script(Reply(json=images_body(2)))
    result = client.generate("a fox", n=2)
    base = f"{tmp_path}/{given}"
    with pytest.raises(imagegen.ImagegenError, match="is a folder") as caught:
        result.save(base)
    assert "image.png" in str(caught.value)
    with pytest.raises(imagegen.ImagegenError, match="is a folder"):
        result[0].save(base)
    assert _files(tmp_path) == []


def test_data_urls_are_decoded(client: imagegen.Client, server: ScriptedServer) -> None:
    picture = image_bytes()
    server.script(Reply(json=images_body(data=[{"url": "data:image/png;base64," + _b64(picture)}])))
    assert client.generate("a fox", model="dall-e-2", response_format="url")[0].bytes() == picture


def test_b64_chunks_decode_large_and_wrapped_text() -> None:
    data = os.urandom(9 * 1024 * 1024 + 5)
    text = _b64(data)
    chunks = list(b64_chunks(text))
    assert len(chunks) > 2 and b"".join(chunks) == data
    assert b"".join(b64_chunks(base64.encodebytes(data[:1000]).decode())) == data[:1000]


def test_png_text_chunks_use_itxt_only_outside_latin_1() -> None:
    chunks = png_text_chunks({"a": "café", "b": "✓"})
    assert b"tEXta\x00caf\xe9" in chunks
    assert b"iTXtb\x00\x00\x00\x00\x00" + "✓".encode() in chunks


def test_a_download_redirected_to_another_origin_loses_azures_api_key(
    server: ScriptedServer, tmp_path: Path
) -> None:
    """httpx2 drops only `Authorization` on a cross-origin redirect; Azure's `api-key` header
    must not follow a same-origin image link to a third-party host either."""
    from live import live_server

    elsewhere = ScriptedServer()
    picture = image_bytes(size=(16, 16))
    elsewhere.script(Reply(body=picture, content_type="image/png"))
    with live_server(elsewhere.app, interface="asgi3") as other_url:
        server.script(
            Reply(json=images_body(data=[{"url": f"{server.url}/files/a.png"}])),
            Reply(status=302, body=b"", headers={"location": f"{other_url}/blob/a.png"}),
        )
        with imagegen.Client(
            azure_endpoint=server.url,
            azure_deployment="d",
            api_version="2025-04-01-preview",
            api_key="azure-secret-key-123",
        ) as client:
            result = client.generate("a fox", model="dall-e-2", response_format="url")
            saved = result.save(tmp_path / "fox.png", metadata=False)
    assert server.last.headers.get("api-key") == "azure-secret-key-123"  # its own origin
    assert elsewhere.last.path == "/blob/a.png"
    assert "api-key" not in elsewhere.last.headers
    assert "authorization" not in elsewhere.last.headers
    assert saved[0].read_bytes() == picture


def _saved_size(path: Path) -> str | None:
    if path.suffix == ".png":
        with Image.open(path) as saved:
            return dict(saved.text).get("size")
    return json.loads(path.with_name(path.name + ".json").read_text("utf-8")).get("size")


def test_a_variation_without_a_size_records_the_images_own(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    """dall-e-2 answers carry no `size`: the file records the pixels it holds."""
    server.script(Reply(json=images_body(data=[{"b64_json": _b64(_noise_png((96, 64)))}])))
    [path] = client.create_variation(image_bytes(size=(32, 32))).save(tmp_path / "v.png")
    assert _saved_size(path) == "96x64"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize("answered", [None, "auto"])
def test_an_auto_size_records_the_images_own(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path, fmt: str, answered: str | None
) -> None:
    picture = image_bytes(fmt, size=(48, 80))
    fields = {"size": answered} if answered else {}
    server.script(Reply(json=images_body(data=[{"b64_json": _b64(picture)}], **fields)))
    [path] = client.generate("a fox", size="auto").save(tmp_path / "fox")
    assert _saved_size(path) == "48x80"
    if fmt != "PNG":  # a PNG gets text chunks inserted; other formats keep their bytes
        assert path.read_bytes() == picture


def test_a_size_the_request_named_is_kept_when_the_answer_says_none(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    server.script(Reply(json=images_body()))  # an 8x8 image, no size in the answer
    [path] = client.generate("a fox", size="1024x1024").save(tmp_path / "fox.png")
    assert _saved_size(path) == "1024x1024"


def test_a_streamed_auto_size_records_the_images_own(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    event = {
        "type": "image_generation.completed",
        "b64_json": _b64(image_bytes(size=(40, 24))),
        "created_at": 1_790_000_000,
        "size": "auto",
        "output_format": "png",
    }
    server.script(Reply(sse=[event, "data: [DONE]\n\n"]))
    with client.generate("a fox", stream=True) as stream:
        [path] = stream.save(tmp_path / "fox.png")
    assert _saved_size(path) == "40x24"


def test_no_metadata_means_no_size_either(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    picture = image_bytes("JPEG", size=(48, 80))
    server.script(Reply(json=images_body(data=[{"b64_json": _b64(picture)}])))
    [path] = client.generate("a fox").save(tmp_path / "fox.jpg", metadata=False)
    assert _files(tmp_path) == ["fox.jpg"]


def test_a_url_results_repr_shows_neither_signature_nor_data(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    signed = f"{server.url}/files/0.png?se=2026-01-01&sig=SAS-SECRET-SIGNATURE"
    data_url = "data:image/png;base64," + _b64(image_bytes())
    server.script(Reply(json=images_body(data=[{"url": signed}, {"url": data_url}])))
    result = client.generate("a fox", model="dall-e-2", n=2, response_format="url")
    assert repr(result[0]) == f"GeneratedImage(index=0, url='{server.url}/files/0.png?...')"
    assert repr(result[1]) == "GeneratedImage(index=1, url='data:image/png;base64,...')"
    assert result[0].url == signed  # the URL itself is whole: it is the result


def test_the_temporary_file_has_a_short_name_whatever_the_target(
    client: imagegen.Client, tmp_path: Path
) -> None:
    # 255 bytes is the longest name most file systems take; a temporary name built from it
    # ('.NAME.XXXXXXXX.tmp') would not fit, and the image would be lost after it was paid for.
    target = tmp_path / ("c" * 251 + ".png")
    [path] = client.generate("a fox").save(target)
    assert path == target
    assert _files(tmp_path) == [target.name]


def test_overwrite_false_never_replaces_a_file(client: imagegen.Client, tmp_path: Path) -> None:
    target = tmp_path / "fox.png"
    target.write_bytes(b"another run's image")
    image = client.generate("a fox")[0]
    with pytest.raises(FileExistsError) as caught:
        image.save(target, overwrite=False)
    assert caught.value.filename == str(target)
    assert target.read_bytes() == b"another run's image"
    assert _files(tmp_path) == ["fox.png"]  # no temporary file left behind
    assert image.save(tmp_path / "fox-1.png", overwrite=False) == tmp_path / "fox-1.png"
    assert (tmp_path / "fox-1.png").read_bytes().startswith(b"\x89PNG")


def test_overwrite_false_never_replaces_a_dangling_symlink(
    client: imagegen.Client, tmp_path: Path
) -> None:
    link = tmp_path / "fox.png"
    link.symlink_to(tmp_path / "missing.png")
    with pytest.raises(FileExistsError):
        client.generate("a fox")[0].save(link, overwrite=False)
    assert link.is_symlink()
    assert not (tmp_path / "missing.png").exists()


def test_overwrite_false_gives_a_name_to_one_writer_only(
    client: imagegen.Client, tmp_path: Path
) -> None:
    import threading

    image = client.generate("a fox")[0]
    data = image.bytes()
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def save() -> None:
        start.wait()
        try:
            image.save(tmp_path / "fox.png", overwrite=False)
            outcomes.append("saved")
        except FileExistsError:
            outcomes.append("taken")

    threads = [threading.Thread(target=save) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["saved"] + ["taken"] * 7
    assert _files(tmp_path) == ["fox.png"]
    assert (tmp_path / "fox.png").read_bytes().startswith(data[:8])


@pytest.mark.parametrize("errno_name", ["EPERM", "EOPNOTSUPP"])
def test_overwrite_false_without_hard_links(
    client: imagegen.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errno_name: str
) -> None:
    """File systems without hard links (FAT, some network shares) refuse `link`: the name is
    then reserved exclusively and filled by a rename, still never replacing a file."""
    import errno

    def no_links(src: object, dst: object, **kwargs: object) -> None:
        code = getattr(errno, errno_name)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "link", no_links)
    image = client.generate("a fox")[0]
    path = image.save(tmp_path / "fox.png", overwrite=False)
    assert path.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(FileExistsError):
        image.save(tmp_path / "fox.png", overwrite=False)
    assert _files(tmp_path) == ["fox.png"]
    assert path.stat().st_size > 0


def test_a_whole_result_can_refuse_to_replace_files(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    server.script(Reply(json=images_body(n=2)))
    result = client.generate("a fox", n=2)
    (tmp_path / "fox-1.png").write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        result.save(tmp_path / "fox.png", overwrite=False)
    assert (tmp_path / "fox-1.png").read_bytes() == b"mine"
    assert [p.name for p in result.save(tmp_path / "fox.png")] == ["fox.png", "fox-1.png"]


def test_check_writable_makes_a_file_and_leaves_none(tmp_path: Path) -> None:
    # The command line's probe before it generates: a file is made the way a save makes its
    # temporary file, then removed; a folder that cannot take one raises OSError.
    check_writable(tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError):
        check_writable(tmp_path / "missing")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        check_writable(tmp_path / "file")
