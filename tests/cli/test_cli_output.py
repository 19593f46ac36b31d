"""What comes out: -f url|base64|byte|json on stdout, -o files and their names, --show."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import time
from pathlib import Path

import pytest
from cli_helpers import FakeViewer, invoke
from cli_recorder import Recorder, image_bytes
from PIL import Image

PNG = b"\x89PNG\r\n\x1a\n"


def _png_text(path: Path) -> dict[str, str]:
    with Image.open(path) as picture:
        return dict(getattr(picture, "text", {}))


def test_format_url_prints_data_urls_for_base64_results(api: Recorder, base_url: str) -> None:
    result = invoke("generate", "x", "--base-url", base_url, "-n", "2", "-f", "url")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        prefix, _, payload = line.partition(",")
        assert prefix == "data:image/png;base64"
        assert base64.b64decode(payload).startswith(PNG)
    assert lines[0] != lines[1]
    assert result.stderr == ""


def test_format_url_data_url_follows_the_output_format(api: Recorder, base_url: str) -> None:
    result = invoke("generate", "x", "--base-url", base_url, "--output-format", "webp", "-f", "url")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("data:image/webp;base64,")


def test_format_base64_prints_one_string_per_image(api: Recorder, base_url: str) -> None:
    result = invoke("generate", "x", "--base-url", base_url, "-n", "3", "-f", "base64")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert all(base64.b64decode(line).startswith(PNG) for line in lines)


def test_format_base64_downloads_url_results(api: Recorder, base_url: str) -> None:
    result = invoke(
        "variation", _square(), "--base-url", base_url, "--response-format", "url", "-f", "base64"
    )
    assert result.exit_code == 0, result.output
    assert base64.b64decode(result.stdout.strip()) == image_bytes("png", colour=0)
    assert [r.path for r in api.requests] == ["/v1/images/variations", "/files/img-0.png"]


def test_format_byte_writes_the_raw_image(api: Recorder, base_url: str) -> None:
    result = invoke("generate", "x", "--base-url", base_url, "-f", "byte")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.startswith(PNG)
    Image.open(io.BytesIO(result.stdout_bytes)).verify()


def test_out_file_numbering_and_metadata(api: Recorder, base_url: str, tmp_path: Path) -> None:
    result = invoke(
        "generate", "Delicious ramen", "--base-url", base_url, "-n", "3", "-o", "out/ramen.png"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["out/ramen.png", "out/ramen-1.png", "out/ramen-2.png"]
    for name in result.stdout.splitlines():
        text = _png_text(tmp_path / name)
        assert text["prompt"] == "Delicious ramen"
        assert text["model"] == "gpt-image-2"
    assert sorted(os.listdir(tmp_path / "out")) == ["ramen-1.png", "ramen-2.png", "ramen.png"]


def test_out_file_extension_sets_the_output_format(
    api: Recorder, base_url: str, tmp_path: Path
) -> None:
    for name, fmt in [("a.jpg", "jpeg"), ("b.JPEG", "jpeg"), ("c.webp", "webp")]:
        api.reset()
        result = invoke("generate", "A fox", "--base-url", base_url, "-o", name)
        assert result.exit_code == 0, result.output
        assert api.api_requests[0].json == {
            "prompt": "A fox",
            "model": "gpt-image-2",
            "output_format": fmt,
        }
        with Image.open(tmp_path / name) as picture:
            assert picture.format == fmt.upper()
        sidecar = json.loads((tmp_path / f"{name}.json").read_text())
        assert sidecar["prompt"] == "A fox"

    api.reset()  # an explicit --output-format that agrees is fine
    result = invoke(
        "generate", "A fox", "--base-url", base_url, "--output-format", "jpeg", "-o", "d.jpg"
    )
    assert result.exit_code == 0, result.output
    assert api.api_requests[0].json["output_format"] == "jpeg"


def test_no_metadata(api: Recorder, base_url: str, tmp_path: Path) -> None:
    result = invoke("generate", "x", "--base-url", base_url, "-o", "a.png", "--no-metadata")
    assert result.exit_code == 0, result.output
    assert _png_text(tmp_path / "a.png") == {}
    result = invoke("generate", "x", "--base-url", base_url, "-o", "b.webp", "--no-metadata")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "b.webp.json").exists()


def test_url_results_are_downloaded_to_the_file(
    api: Recorder, base_url: str, tmp_path: Path
) -> None:
    result = invoke(
        "variation",
        _square(),
        "--base-url",
        base_url,
        "-n",
        "2",
        "--response-format",
        "url",
        "-o",
        "v.png",
        "--no-metadata",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["v.png", "v-1.png"]
    assert (tmp_path / "v.png").read_bytes() == image_bytes("png", colour=0)
    assert (tmp_path / "v-1.png").read_bytes() == image_bytes("png", colour=1)


def test_stdin_prompts_continue_the_numbering(api: Recorder, base_url: str, tmp_path: Path) -> None:
    result = invoke(
        "generate",
        "-",
        "--base-url",
        base_url,
        "-n",
        "2",
        "-o",
        "pics/p.png",
        input="A cat\n\n  A dog  \nA bird\n",
    )
    assert result.exit_code == 0, result.output
    names = [f"pics/p{suffix}.png" for suffix in ("", "-1", "-2", "-3", "-4", "-5")]
    assert result.stdout.splitlines() == names
    assert [r.json["prompt"] for r in api.api_requests] == ["A cat", "A dog", "A bird"]
    prompts = [_png_text(tmp_path / name)["prompt"] for name in names]
    assert prompts == ["A cat", "A cat", "A dog", "A dog", "A bird", "A bird"]


def test_edit_prompts_from_stdin(api: Recorder, base_url: str) -> None:
    image = _square()
    result = invoke(
        "edit", "-i", image, "-p", "-", "--base-url", base_url, "-f", "base64", input="a\nb\n"
    )
    assert result.exit_code == 0, result.output
    assert [r.params["prompt"] for r in api.api_requests] == ["a", "b"]
    assert len(result.stdout.splitlines()) == 2


def test_image_from_stdin(api: Recorder, base_url: str, tmp_path: Path) -> None:
    data = Path(_square()).read_bytes()
    result = invoke("variation", "-", "--base-url", base_url, "-f", "json", input=data)
    assert result.exit_code == 0, result.output
    assert api.api_requests[0].files[0][3] == data


def test_default_saves_auto_named_files_that_never_overwrite(
    api: Recorder, base_url: str, tmp_path: Path
) -> None:
    first = invoke("generate", "x", "--base-url", base_url, "-n", "2")
    second = invoke("generate", "x", "--base-url", base_url)
    assert first.exit_code == second.exit_code == 0
    names = first.stdout.splitlines() + second.stdout.splitlines()
    assert len(names) == len(set(names)) == 3
    pattern = re.compile(r"^imagegen-\d{8}-\d{6}(-\d+)?\.png$")
    assert all(pattern.match(name) for name in names), names
    assert sorted(os.listdir(tmp_path)) == sorted(names)


def test_out_file_naming_a_folder_gets_auto_names(
    api: Recorder, base_url: str, tmp_path: Path
) -> None:
    result = invoke(
        "generate", "x", "--base-url", base_url, "--output-format", "webp", "-o", "shots/"
    )
    assert result.exit_code == 0, result.output
    [name] = result.stdout.splitlines()
    assert re.match(r"^shots/imagegen-\d{8}-\d{6}\.webp$", name), name
    assert (tmp_path / name).exists()


def test_stream_saves_partial_images_then_the_final_one(
    api: Recorder, base_url: str, tmp_path: Path
) -> None:
    result = invoke(
        "generate", "A fox", "--base-url", base_url, "--partial-images", "2", "-o", "fox.png"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["fox.partial-0.png", "fox.partial-1.png", "fox.png"]
    for name in result.stdout.splitlines():
        assert (tmp_path / name).read_bytes().startswith(PNG)
    assert _png_text(tmp_path / "fox.png")["prompt"] == "A fox"


def test_stream_of_several_images_names_partials_after_their_image(
    api: Recorder, base_url: str
) -> None:
    result = invoke(
        "generate",
        "A fox",
        "--base-url",
        base_url,
        "--partial-images",
        "1",
        "-n",
        "2",
        "-o",
        "f.png",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "f.partial-0.png",
        "f.png",
        "f-1.partial-0.png",
        "f-1.png",
    ]


def test_stream_printed_forms(api: Recorder, base_url: str) -> None:
    result = invoke("generate", "x", "--base-url", base_url, "--partial-images", "2", "-f", "json")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["type"] for e in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert events[1]["partial_image_index"] == 1

    result = invoke("generate", "x", "--base-url", base_url, "--stream", "-f", "base64")
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    assert base64.b64decode(line).startswith(PNG)

    result = invoke("generate", "x", "--base-url", base_url, "--partial-images", "1", "-f", "byte")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == image_bytes("png", colour=0)


def test_url_with_gpt_image_warns_and_still_prints(api: Recorder, base_url: str) -> None:
    result = invoke(
        "generate", "x", "--base-url", base_url, "--response-format", "url", "-f", "url"
    )
    assert result.exit_code == 0, result.output
    assert api.api_requests[0].json == {"prompt": "x", "model": "gpt-image-2"}
    assert result.stdout.startswith("data:image/png;base64,")
    assert result.stderr.startswith("Warning: response_format=url")
    assert len(result.stderr.splitlines()) == 1

    quiet = invoke(
        "generate", "x", "--base-url", base_url, "--response-format", "url", "-f", "url", "--quiet"
    )
    assert quiet.exit_code == 0
    assert quiet.stderr == ""
    assert quiet.stdout.startswith("data:image/png;base64,")


def test_show_opens_saved_files_in_the_viewer(
    api: Recorder, base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    viewer = FakeViewer(tmp_path)
    monkeypatch.setenv("PATH", viewer.path)
    result = invoke("generate", "x", "--base-url", base_url, "-n", "2", "-o", "s.png", "--show")
    assert result.exit_code == 0, result.output
    assert sorted(viewer.wait_opened(2)) == ["s-1.png", "s.png"]


def _square() -> str:
    path = Path("square.png")
    if not path.exists():
        Image.new("RGBA", (64, 64), (200, 10, 10, 255)).save(path)
    return str(path)


def test_a_format_the_server_did_not_honour_is_reported(api: Recorder, base_url: str) -> None:
    # A compatible server with its own model name, which returns PNG whatever was asked.
    result = invoke("generate", "x", "-m", "house-model", "--base-url", base_url, "-o", "x.jpg")
    assert result.exit_code == 0, result.output
    assert api.api_requests[0].json == {"prompt": "x", "model": "house-model"}
    assert result.stdout == "x.jpg\n"
    assert result.stderr == "Warning: x.jpg holds png data: the server sent png, not jpeg.\n"


def test_a_variation_records_the_size_of_the_saved_image(
    api: Recorder, base_url: str, tmp_path: Path
) -> None:
    """A dall-e-2 answer names no size and -s was not given: the file's own pixels are."""
    (tmp_path / "in.png").write_bytes(image_bytes("png", size=(32, 32)))
    result = invoke("variation", "in.png", "--base-url", base_url, "-o", "v.png")
    assert result.exit_code == 0, result.output
    assert _png_text(tmp_path / "v.png")["size"] == "24x16"  # the recorder's images


def test_an_engine_variation_records_its_size(tmp_path: Path) -> None:
    (tmp_path / "in.png").write_bytes(image_bytes("png", size=(64, 64)))
    result = invoke("variation", "in.png", "--engine", "placeholder", "-o", "v.png")
    assert result.exit_code == 0, result.output
    assert _png_text(tmp_path / "v.png")["size"] == "64x64"


def test_an_auto_name_another_run_takes_meanwhile_is_skipped(
    api: Recorder, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another run may save under the same auto name between our look and our write; our image
    then takes the next number and the other run's file stays as it was."""
    from imagegen.cli._output import Namer

    original = Namer.final
    taken: list[Path] = []

    def final(self: Namer, fmt: str | None) -> Path:
        path = original(self, fmt)
        if not taken:
            path.write_bytes(b"another run's image")
            taken.append(path)
        return path

    monkeypatch.setattr(Namer, "final", final)
    result = invoke("generate", "x", "--base-url", base_url, "-n", "2")
    assert result.exit_code == 0, result.output
    stem = taken[0].name.removesuffix(".png")
    assert result.stdout.splitlines() == [f"{stem}-1.png", f"{stem}-2.png"]
    assert taken[0].read_bytes() == b"another run's image"
    assert sorted(p.name for p in Path().iterdir()) == sorted(
        [taken[0].name, f"{stem}-1.png", f"{stem}-2.png"]
    )


def test_a_partial_name_another_run_takes_moves_the_image_on(
    api: Recorder, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagegen.cli._output import Namer

    original = Namer.partial
    taken: list[Path] = []

    def partial(self: Namer, fmt: str | None) -> Path:
        path = original(self, fmt)
        if not taken:
            path.write_bytes(b"another run's partial image")
            taken.append(path)
        return path

    monkeypatch.setattr(Namer, "partial", partial)
    result = invoke("generate", "x", "--base-url", base_url, "--partial-images", "2")
    assert result.exit_code == 0, result.output
    stem = taken[0].name.removesuffix(".partial-0.png")
    assert result.stdout.splitlines() == [
        f"{stem}-1.partial-0.png",
        f"{stem}-1.partial-1.png",
        f"{stem}-1.png",
    ]
    assert taken[0].read_bytes() == b"another run's partial image"


def test_an_auto_name_skips_a_slot_whose_partial_images_exist(api: Recorder, base_url: str) -> None:
    # Another run still streaming has saved only its partial images so far: the name of the
    # image they lead to is taken. (Stems for the next minutes: the name holds the time.)
    now = time.time()
    for offset in range(-1, 120):
        stem = time.strftime("imagegen-%Y%m%d-%H%M%S", time.localtime(now + offset))
        Path(f"{stem}.partial-0.png").write_bytes(b"another run's partial image")
    result = invoke("generate", "x", "--base-url", base_url)
    assert result.exit_code == 0, result.output
    assert re.match(r"^imagegen-\d{8}-\d{6}-1\.png$", result.stdout.strip()), result.stdout


def test_an_out_file_given_is_replaced(api: Recorder, base_url: str) -> None:
    Path("fox.png").write_bytes(b"old")
    result = invoke("generate", "x", "--base-url", base_url, "-o", "fox.png")
    assert result.exit_code == 0, result.output
    assert result.stdout == "fox.png\n"
    assert Path("fox.png").read_bytes().startswith(PNG)


def test_partial_images_of_several_images_sent_first_follow_their_order() -> None:
    """The in-process engine, like `imagegen serve`, sends every partial image before the
    completed ones; a stream does not say which image each belongs to, so they are numbered in
    the order they came, under the name of the next image to be saved."""
    result = invoke(
        "generate",
        "A fox",
        "--engine",
        "placeholder",
        "-s",
        "64x64",
        "-n",
        "2",
        "--partial-images",
        "2",
        "-o",
        "fox.png",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "fox.partial-0.png",
        "fox.partial-1.png",
        "fox.partial-2.png",
        "fox.partial-3.png",
        "fox.png",
        "fox-1.png",
    ]


def test_revised_prompts_go_to_stderr_one_line_per_image(api: Recorder, base_url: str) -> None:
    api.image_fields = {"revised_prompt": "A fluffy lion cub\nin warm light."}
    saved = invoke("generate", "x", "-m", "dall-e-3", "--base-url", base_url, "-o", "lion.png")
    assert saved.exit_code == 0, saved.output
    assert saved.stdout == "lion.png\n"  # scripts read the paths
    assert saved.stderr == "Revised prompt (lion.png): A fluffy lion cub in warm light.\n"

    printed = invoke(
        "generate", "x", "-m", "dall-e-2", "-n", "2", "--base-url", base_url, "-f", "base64"
    )
    assert printed.exit_code == 0, printed.output
    assert all(base64.b64decode(line).startswith(PNG) for line in printed.stdout.splitlines())
    assert printed.stderr.splitlines() == ["Revised prompt: A fluffy lion cub in warm light."] * 2

    as_json = invoke("generate", "x", "-m", "dall-e-3", "--base-url", base_url, "-f", "json")
    assert (
        json.loads(as_json.stdout)["data"][0]["revised_prompt"]
        == "A fluffy lion cub\nin warm light."
    )
    assert as_json.stderr == ""  # in the response already
    quiet = invoke(
        "generate", "x", "-m", "dall-e-3", "--base-url", base_url, "-o", "q.png", "--quiet"
    )
    assert (quiet.stdout, quiet.stderr) == ("q.png\n", "")


def test_no_revised_prompt_line_without_one(api: Recorder, base_url: str) -> None:
    result = invoke("generate", "x", "-m", "dall-e-3", "--base-url", base_url, "-o", "l.png")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
