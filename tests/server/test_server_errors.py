"""Bad and hostile input over raw HTTP: every refusal is a 4xx in OpenAI's error shape with
the right `param`; engine failures are a 500 in the same shape that reveals nothing inside."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from srvkit import (
    KEY,
    FailingEngine,
    SolidEngine,
    assert_openai_error,
    make_settings,
    mask_png,
    multipart,
    png,
    png_header,
)

from imagegen.server import create_app
from live import live_server

AUTH = {"authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def http(server: str) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=server, headers=AUTH, timeout=30) as client:
        yield client


def image_part(data: bytes, field: str = "image", kind: str = "image/png") -> tuple[str, Any]:
    return field, ("in.png", data, kind)


def edit(http: httpx2.Client, files: list[tuple[str, Any]], **fields: Any) -> httpx2.Response:
    data = {"model": "gpt-image-1", "prompt": "x", **fields}
    return http.post("/v1/images/edits", data=data, files=files)


# -- JSON bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x", "n": "many"}, "n"),
        ({"prompt": "x", "n": 0}, "n"),
        ({"prompt": "x", "n": 11}, "n"),
        ({"prompt": "x", "n": 2.5}, "n"),
        ({"prompt": "x", "size": ["1024", "1024"]}, "size"),
        ({"prompt": "x", "size": "big"}, "size"),
        ({"prompt": "x", "size": "0x10"}, "size"),
        ({"prompt": "x", "stream": "maybe"}, "stream"),
        ({"prompt": "x", "output_format": "tiff"}, "output_format"),
        ({"prompt": "x", "user": {"id": 1}}, "user"),
        ({"prompt": "x", "seed": "abc"}, "seed"),
        ({"prompt": "x", "seed": [1]}, "seed"),
        ({"prompt": "\ud800 lone surrogate"}, "prompt"),
        ({"prompt": "x" * 32001, "model": "gpt-image-1"}, "prompt"),
        ({"prompt": "x", "model": "dall-e-2", "size": "1536x1024"}, "size"),
        ({"prompt": "x", "model": ["gpt-image-1"]}, "model"),
    ],
)
def test_invalid_generation_is_400_with_param(
    http: httpx2.Client, body: dict[str, Any], param: str
) -> None:
    content = json.dumps(body).encode()
    response = http.post(
        "/v1/images/generations", content=content, headers={"content-type": "application/json"}
    )
    assert_openai_error(response, 400, param=param)


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b'"prompt"', "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b"[" * 100_000, "application/json"),
        (b'{"prompt": "x"}', "text/plain"),
        (b"prompt=x", "application/x-www-form-urlencoded"),
        (b"", "application/json"),
    ],
)
def test_unparseable_generation_body_is_400(http: httpx2.Client, content: bytes, kind: str) -> None:
    response = http.post("/v1/images/generations", content=content, headers={"content-type": kind})
    assert_openai_error(response, 400)


def test_huge_output_size_is_400_param_size(http: httpx2.Client) -> None:
    for size in ("100000x100000", "999999x999999", "4000x4000"):
        response = http.post(
            "/v1/images/generations", json={"model": "solid-1", "prompt": "x", "size": size}
        )
        assert_openai_error(response, 400, param="size")


def test_unknown_route_and_method(http: httpx2.Client) -> None:
    error = assert_openai_error(http.post("/v1/images/nothing", json={}), 404)
    assert error["message"] == "Invalid URL (POST /v1/images/nothing)"
    assert_openai_error(http.get("/nothing"), 404)
    response = http.get("/v1/images/generations")
    assert_openai_error(response, 405)
    assert response.headers["allow"] == "POST"


# -- multipart ---------------------------------------------------------------------------------


def test_multipart_strings_are_parsed_as_the_sdk_sends_them(
    http: httpx2.Client, solid_engine: SolidEngine
) -> None:
    response = edit(http, [image_part(png())], n="2", size="1024x1024", stream="false", seed="42")
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 2
    assert solid_engine.jobs[-1].seed == 42


@pytest.mark.parametrize(
    ("files", "fields", "param"),
    [
        ([image_part(b"")], {}, "image"),
        ([image_part(png()[:40])], {}, "image"),  # truncated PNG
        ([image_part(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)], {}, "image"),
        ([image_part(b"hello world", kind="image/png")], {}, "image"),
        ([image_part(png(), kind="text/plain")], {}, "image"),
        ([image_part(png(), kind="image/gif")], {}, "image"),
        ([image_part(png_header(100_000, 100_000))], {}, "image"),  # PIL's bomb error
        ([image_part(png_header(9000, 8000))], {}, "image"),  # over MAX_PIXELS
        ([image_part(png())] * 17, {}, "image"),
        ([image_part(png()), image_part(png(), "mask"), image_part(png(), "mask")], {}, "mask"),
        ([image_part(png()), image_part(png()[:30], "mask")], {}, "mask"),
        ([image_part(png()), image_part(png(), "extra_file")], {}, "extra_file"),
        ([image_part(png())], {"n": "abc"}, "n"),
        ([image_part(png())], {"n": "3.5"}, "n"),
        ([image_part(png())], {"stream": "perhaps"}, "stream"),
        ([image_part(png())], {"input_fidelity": "ultra"}, "input_fidelity"),
        ([image_part(png())], {"model": "dall-e-3"}, "model"),
    ],
)
def test_invalid_edit_is_400_with_param(
    http: httpx2.Client, files: list[tuple[str, Any]], fields: dict[str, Any], param: str
) -> None:
    assert_openai_error(edit(http, files, **fields), 400, param=param)


def _unknown_model_requests(http: httpx2.Client) -> list[httpx2.Response]:
    gif = image_part(b"GIF89a" + b"\0" * 20, kind="image/gif")  # refused too, but later
    return [
        http.post("/v1/images/generations", json={"prompt": "x", "model": "no-such-model"}),
        edit(http, [gif], model="no-such-model"),
        http.post(
            "/v1/images/edits",
            json={"prompt": "x", "model": "no-such-model", "images": [{"image_url": "x"}]},
        ),
        http.post("/v1/images/variations", data={"model": "no-such-model"}, files=[gif]),
        http.get("/v1/models/no-such-model"),
    ]


def test_unknown_model_is_404_model_not_found_everywhere(http: httpx2.Client) -> None:
    """The service's check, answered with OpenAI's status, before any upload is looked at."""
    for response in _unknown_model_requests(http):
        error = assert_openai_error(response, 404, param="model", code="model_not_found")
        assert error["type"] == "invalid_request_error"
        assert error["message"] == (
            "The model `no-such-model` does not exist or you do not have access to it."
        )


def test_known_models_are_served(http: httpx2.Client) -> None:
    for name in ("solid-1", "gpt-image-2", "dall-e-2"):
        assert http.get(f"/v1/models/{name}").json()["id"] == name
    body = {"prompt": "x", "model": "solid-1", "size": "8x8"}
    assert http.post("/v1/images/generations", json=body).status_code == 200


def test_edit_without_image_is_400(http: httpx2.Client) -> None:
    content, headers = multipart(
        [("prompt", "x", None, None), ("model", "gpt-image-1", None, None)]
    )
    response = http.post("/v1/images/edits", content=content, headers=headers)
    assert_openai_error(response, 400, param="image")


def test_image_sent_as_text_field_is_400(http: httpx2.Client) -> None:
    response = http.post(
        "/v1/images/edits",
        data={"prompt": "x", "image": "not a file"},
        files=[("mask", ("m.png", mask_png((64, 64), (0, 0, 1, 1)), "image/png"))],
    )
    assert_openai_error(response, 400, param="image")


def test_repeated_text_field_is_400(http: httpx2.Client) -> None:
    content, headers = multipart(
        [
            ("prompt", "x", None, None),
            ("prompt", "y", None, None),
            ("image", png(), "a.png", "image/png"),
        ]
    )
    response = http.post("/v1/images/edits", content=content, headers=headers)
    assert_openai_error(response, 400, param="prompt")


@pytest.mark.parametrize(
    "content",
    [
        b"this is not multipart at all",
        b'--BOUNDARY\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nx',  # truncated
        b"--BOUNDARY\r\nContent-Disposition: form-data\r\n\r\nx\r\n--BOUNDARY--\r\n",  # no name
        b"--BOUNDARY--\r\n",
    ],
)
def test_malformed_multipart_is_400(http: httpx2.Client, content: bytes) -> None:
    for path in ("/v1/images/edits", "/v1/images/variations"):
        response = http.post(
            path,
            content=content,
            headers={"content-type": "multipart/form-data; boundary=BOUNDARY"},
        )
        assert_openai_error(response, 400)


def test_multipart_without_boundary_is_400(http: httpx2.Client) -> None:
    response = http.post(
        "/v1/images/edits", content=b"x", headers={"content-type": "multipart/form-data"}
    )
    assert_openai_error(response, 400)


def test_oversized_text_field_is_400(http: httpx2.Client) -> None:
    response = edit(http, [image_part(png())], prompt="x" * 300_000)
    assert_openai_error(response, 400)


def test_variation_must_be_multipart_with_one_square_png(http: httpx2.Client) -> None:
    assert_openai_error(http.post("/v1/images/variations", json={"image": "x"}), 400)
    response = http.post(
        "/v1/images/variations", data={"model": "dall-e-2"}, files=[image_part(png((64, 32)))]
    )
    assert_openai_error(response, 400, param="image")
    response = http.post(
        "/v1/images/variations",
        data={"model": "dall-e-2"},
        files=[image_part(png()), image_part(png(), "image[]")],
    )
    assert_openai_error(response, 400, param="image")
    response = http.post(
        "/v1/images/variations", data={"prompt": "no prompts here"}, files=[image_part(png())]
    )
    assert response.status_code == 200  # extra fields are engine options, as with extra_body
    response = http.post(
        "/v1/images/variations", files=[image_part(png()), image_part(png(), "mask")]
    )
    assert_openai_error(response, 400, param="mask")


# -- JSON edits --------------------------------------------------------------------------------


def data_url(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"images": [{"image_url": "https://example.com/a.png"}]}, "images[0].image_url"),
        ({"images": [{"image_url": "HTTP://example.com/a.png"}]}, "images[0].image_url"),
        ({"images": [{"file_id": "file-123"}]}, "images[0].file_id"),
        ({"images": [{"image_url": "data:image/png,notbase64"}]}, "images[0].image_url"),
        ({"images": [{"image_url": "data:image/png;base64,!!!"}]}, "images[0].image_url"),
        ({"images": [{"image_url": data_url(png(), "image/gif")}]}, "image"),
        ({"images": [{"image_url": data_url(png()[:50])}]}, "image"),
        ({"images": [{"image_url": data_url(b"\x89PNG garbage")}]}, "image"),
        ({"images": [{"image_url": 5}]}, "images[0].image_url"),
        ({"images": ["data:image/png;base64,AAAA"]}, "images[0]"),
        ({"images": []}, "images"),
        ({"images": {"image_url": "x"}}, "images"),
        ({}, "images"),
        ({"image": data_url(png())}, "image"),
        ({"images": [{"image_url": data_url(png())}] * 17}, "images"),
        (
            {
                "images": [{"image_url": data_url(png())}],
                "mask": {"image_url": "https://example.com/m.png"},
            },
            "mask.image_url",
        ),
        (
            {
                "images": [{"image_url": data_url(png())}],
                "mask": {"image_url": data_url(mask_png((8, 8), (0, 0, 1, 1)))},
            },
            "mask",
        ),
        ({"images": [{"image_url": data_url(png())}], "model": "dall-e-2"}, "model"),
    ],
)
def test_invalid_json_edit_is_400_with_param(
    http: httpx2.Client, body: dict[str, Any], param: str
) -> None:
    response = http.post("/v1/images/edits", json={"model": "gpt-image-1", "prompt": "x", **body})
    assert_openai_error(response, 400, param=param)


def test_edit_with_other_content_type_is_400(http: httpx2.Client) -> None:
    response = http.post("/v1/images/edits", content=b"x", headers={"content-type": "image/png"})
    assert_openai_error(response, 400, code="unsupported_content_type")


# -- size limits -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_limits() -> Iterator[str]:
    settings = make_settings(
        max_request_bytes=200_000, max_image_bytes=50_000, max_input_pixels=3 * 64 * 64
    )
    with live_server(create_app(SolidEngine(), settings)) as url:
        yield url


def test_oversized_body_is_413(small_limits: str) -> None:
    big = png((64, 64)) + b"\0" * 300_000
    with httpx2.Client(base_url=small_limits, timeout=30) as http:
        response = http.post("/v1/images/edits", data={"prompt": "x"}, files=[image_part(big)])
        assert_openai_error(response, 413, code="request_too_large")

        head, headers = multipart(
            [("image", png(), "a.png", "image/png"), ("prompt", "", None, None)]
        )
        head = head[: -len(b"--b0undary--\r\n") - 2]  # the prompt part left open

        def chunks() -> Iterator[bytes]:  # no Content-Length: refused while streaming in
            yield head
            for _ in range(40):
                yield b"x" * 10_000

        response = http.post("/v1/images/edits", content=chunks(), headers=headers)
        assert_openai_error(response, 413, code="request_too_large")
        too_long = json.dumps({"prompt": "x" * 2_000_000})
        response = http.post(
            "/v1/images/generations",
            content=too_long,
            headers={"content-type": "application/json"},
        )
        assert_openai_error(response, 413)
        # The server keeps serving afterwards.
        ok = http.post("/v1/images/generations", json={"prompt": "x", "size": "16x16"})
        assert ok.status_code == 200


def test_image_over_the_per_image_limit_is_400(small_limits: str) -> None:
    big = png((400, 400), (1, 2, 3), mode="RGB", fmt="BMP")  # ~480 KB: over the body limit too
    assert len(big) > 50_000
    noisy = png((160, 160), (9, 9, 9, 255))
    with httpx2.Client(base_url=small_limits, timeout=30) as http:
        padded = noisy + b"\0" * (60_000 - len(noisy))  # still a PNG, just 60 KB with padding
        response = http.post("/v1/images/edits", data={"prompt": "x"}, files=[image_part(padded)])
        assert_openai_error(response, 400, param="image")
        url = data_url(padded)
        response = http.post(
            "/v1/images/edits", json={"prompt": "x", "images": [{"image_url": url}]}
        )
        assert_openai_error(response, 400, param="image")


def test_total_input_pixels_are_bounded(small_limits: str) -> None:
    with httpx2.Client(base_url=small_limits, timeout=30) as http:
        three = [image_part(png()), image_part(png(), "image[]"), image_part(png(), "image[]")]
        assert edit(http, three).status_code == 200
        response = edit(http, [*three, image_part(mask_png((64, 64), (0, 0, 1, 1)), "mask")])
        error = assert_openai_error(response, 400, param="image")
        assert "12,288" in error["message"]


def test_data_url_over_openais_length_cap_is_400(http: httpx2.Client) -> None:
    url = "data:image/png;base64," + "A" * 20_971_520
    response = http.post("/v1/images/edits", json={"prompt": "x", "images": [{"image_url": url}]})
    assert_openai_error(response, 400, param="images[0].image_url")


# -- failures inside the engine ----------------------------------------------------------------


@pytest.fixture(scope="module")
def failing() -> Iterator[str]:
    with live_server(create_app(FailingEngine(), make_settings())) as url:
        yield url


def test_engine_failure_is_500_without_internals(failing: str) -> None:
    response = httpx2.post(
        failing + "/v1/images/generations",
        json={"prompt": "x", "size": "32x32"},
        headers={"x-request-id": "trace-123"},
    )
    error = assert_openai_error(response, 500, param=None)
    assert error["type"] == "server_error"
    assert "trace-123" in error["message"]
    assert "secret" not in response.text and "RuntimeError" not in response.text


def test_engine_failure_mid_stream_is_an_error_event(failing: str) -> None:
    with openai.OpenAI(base_url=failing + "/v1", api_key="unused", max_retries=0) as sdk:
        stream = sdk.images.generate(prompt="x", size="32x32", stream=True, partial_images=1)
        seen = []
        with pytest.raises(openai.APIError) as caught:
            for event in stream:
                seen.append(event.type)
    assert seen == ["image_generation.partial_image"]
    assert "secret" not in str(caught.value)
    raw = httpx2.post(
        failing + "/v1/images/generations", json={"prompt": "x", "size": "8x8", "stream": True}
    )
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert "event: error" in raw.text and "server_error" in raw.text
    # The server still answers afterwards.
    assert httpx2.get(failing + "/health").json()["status"] == "ok"


def test_an_engine_loaded_by_name_is_closed_when_startup_fails_after_it(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A storage folder that cannot be made fails the startup; the engine the app loaded
    (weights, GPU memory) must not outlive it."""
    import asyncio

    from imagegen.server import _app

    made: list[SolidEngine] = []

    class ClosingEngine(SolidEngine):
        closed = False

        def close(self) -> None:
            self.closed = True

    def load(name: str, **options: Any) -> SolidEngine:
        made.append(ClosingEngine())
        return made[-1]

    monkeypatch.setattr(_app, "load_engine", load)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    app = create_app("solid", make_settings(storage_dir=blocker / "images"))

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(OSError):
        asyncio.run(start())
    assert len(made) == 1 and made[0].closed


# -- JSON types, and inputs named as sent ------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "got"),
    [
        ({"prompt": "x", "n": True}, "n", "a boolean"),
        ({"prompt": "x", "n": "2"}, "n", "a string"),
        ({"prompt": "x", "stream": "true"}, "stream", "a string"),
        (
            {"prompt": "x", "output_compression": "50", "output_format": "jpeg"},
            "output_compression",
            "a string",
        ),
    ],
)
def test_json_values_of_the_wrong_type_are_400_invalid_type(
    http: httpx2.Client, body: dict[str, Any], param: str, got: str
) -> None:
    """JSON carries its own types: OpenAI refuses "n": true rather than guess (multipart
    strings, tested above, are still converted)."""
    response = http.post("/v1/images/generations", json=body)
    error = assert_openai_error(response, 400, param=param, code="invalid_type")
    assert f"but got {got}" in error["message"]
    response = http.post(
        "/v1/images/edits", json={**body, "images": [{"image_url": data_url(png())}]}
    )
    assert_openai_error(response, 400, param=param, code="invalid_type")


def test_messages_name_uploads_by_their_file_names(http: httpx2.Client) -> None:
    wide = png((64, 32))
    response = http.post(
        "/v1/images/edits",
        data={"model": "dall-e-2", "prompt": "x"},
        files=[("image", ("rect.png", wide, "image/png"))],
    )
    error = assert_openai_error(response, 400, param="image")
    assert "'rect.png'" in error["message"]
    assert "image.png" not in error["message"]


def test_json_edit_images_are_named_by_their_place(http: httpx2.Client) -> None:
    refs = [{"image_url": data_url(png())}, {"image_url": data_url(png()[:60])}]
    response = http.post("/v1/images/edits", json={"prompt": "x", "images": refs})
    error = assert_openai_error(response, 400, param="image")
    assert "images[1]" in error["message"]


@pytest.mark.parametrize(
    ("images", "param"),
    [
        ("data:image/png;base64,AAAA", "images"),
        ({"image_url": "data:image/png;base64,AAAA"}, "images"),
        (["data:image/png;base64,AAAA"], "images[0]"),
        ([{"image_url": 5}], "images[0].image_url"),
    ],
)
def test_json_edit_images_of_the_wrong_type_are_400_invalid_type(
    http: httpx2.Client, images: Any, param: str
) -> None:
    body = {"model": "gpt-image-1", "prompt": "x", "images": images}
    error = assert_openai_error(
        http.post("/v1/images/edits", json=body), 400, param=param, code="invalid_type"
    )
    assert error["message"].startswith(f"Invalid type for '{param}': expected ")
