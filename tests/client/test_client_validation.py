"""Every rule is checked before sending: the error names the parameter, the server sees nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scripted import ScriptedServer, image_bytes

import imagegen

SQUARE_PNG = image_bytes("PNG", (64, 64))
WIDE_PNG = image_bytes("PNG", (96, 64))
CLEAR_PNG = image_bytes("PNG", (64, 64), mode="RGBA", color=(0, 0, 0, 0))
JPEG = image_bytes("JPEG", (64, 64))
GIF = image_bytes("GIF", (64, 64), mode="P", color=1)

Call = Callable[[imagegen.Client], Any]

CASES: list[tuple[str, Call, str, str]] = [
    # (id, call, param named, words the message must contain)
    ("empty prompt", lambda c: c.generate("  "), "prompt", "required"),
    (
        "prompt too long for dall-e-2",
        lambda c: c.generate("x" * 1001, model="dall-e-2"),
        "prompt",
        "at most 1,000",
    ),
    ("prompt not text", lambda c: c.generate(42), "prompt", "required"),
    ("n zero", lambda c: c.generate("a", n=0), "n", "from 1 to 10"),
    ("n eleven", lambda c: c.generate("a", n=11), "n", "from 1 to 10"),
    ("n as text", lambda c: c.generate("a", n="3"), "n", "whole number"),
    (
        "dall-e-3 n=2",
        lambda c: c.generate("a", model="dall-e-3", n=2),
        "n",
        "one image per request",
    ),
    ("size garbage", lambda c: c.generate("a", size="big"), "size", "WIDTHxHEIGHT"),
    (
        "size not for dall-e-2",
        lambda c: c.generate("a", model="dall-e-2", size="1024x1536"),
        "size",
        "256x256",
    ),
    (
        "size not for gpt-image-1",
        lambda c: c.generate("a", model="gpt-image-1", size="2048x2048"),
        "size",
        "1536x1024",
    ),
    ("gpt-image-2 size not /16", lambda c: c.generate("a", size="1000x1000"), "size", "16"),
    ("gpt-image-2 ratio", lambda c: c.generate("a", size="3840x1024"), "size", "3:1"),
    ("gpt-image-2 too small", lambda c: c.generate("a", size="512x512"), "size", "655,360"),
    ("gpt-image-2 too big", lambda c: c.generate("a", size="4096x2048"), "size", "3840"),
    ("quality hd for gpt", lambda c: c.generate("a", quality="hd"), "quality", "low, medium"),
    (
        "quality hd for dall-e-3 edit-less",
        lambda c: c.generate("a", model="dall-e-2", quality="high"),
        "quality",
        "standard",
    ),
    ("style for gpt", lambda c: c.generate("a", style="vivid"), "style", "dall-e-3"),
    (
        "response_format typo for gpt (dropped only when valid)",
        lambda c: c.generate("a", response_format="base64"),
        "response_format",
        "url, b64_json",
    ),
    (
        "style value",
        lambda c: c.generate("a", model="dall-e-3", style="anime"),
        "style",
        "vivid, natural",
    ),
    (
        "transparent jpeg",
        lambda c: c.generate("a", background="transparent", output_format="jpeg"),
        "background",
        "png or webp",
    ),
    ("background value", lambda c: c.generate("a", background="clear"), "background", "opaque"),
    (
        "compression without jpeg/webp",
        lambda c: c.generate("a", output_compression=50),
        "output_compression",
        "jpeg or webp",
    ),
    (
        "compression 101",
        lambda c: c.generate("a", output_format="jpeg", output_compression=101),
        "output_compression",
        "0 to 100",
    ),
    ("output format", lambda c: c.generate("a", output_format="tiff"), "output_format", "png"),
    ("moderation value", lambda c: c.generate("a", moderation="off"), "moderation", "low, auto"),
    ("partial images 4", lambda c: c.generate("a", partial_images=4), "partial_images", "0 to 3"),
    (
        "stream with dall-e-2",
        lambda c: c.generate("a", model="dall-e-2", stream=True),
        "stream",
        "GPT image",
    ),
    ("stream not bool", lambda c: c.generate("a", stream="yes"), "stream", "True or False"),
    (
        "response_format value",
        lambda c: c.generate("a", model="dall-e-2", response_format="png"),
        "response_format",
        "url, b64_json",
    ),
    ("user not text", lambda c: c.generate("a", user=5), "user", "string"),
    ("model empty", lambda c: c.generate("a", model=""), "model", "model name"),
    (
        "dall-e-3 cannot edit",
        lambda c: c.edit(SQUARE_PNG, "a", model="dall-e-3"),
        "model",
        "does not support the edits",
    ),
    (
        "input_fidelity for gpt-image-2",
        lambda c: c.edit(SQUARE_PNG, "a", input_fidelity="high"),
        "input_fidelity",
        "not supported",
    ),
    (
        "input_fidelity for mini",
        lambda c: c.edit(SQUARE_PNG, "a", model="gpt-image-1-mini", input_fidelity="high"),
        "input_fidelity",
        "use one of low.",
    ),
    (
        "input_fidelity value",
        lambda c: c.edit(SQUARE_PNG, "a", model="gpt-image-1", input_fidelity="max"),
        "input_fidelity",
        "high, low",
    ),
    ("missing file", lambda c: c.edit("/nonexistent/in.png", "a"), "image", "does not exist"),
    ("not an image", lambda c: c.edit(b"hello world", "a"), "image", "not a PNG, JPEG or WebP"),
    ("empty image", lambda c: c.edit(b"", "a"), "image", "empty"),
    ("gif input", lambda c: c.edit(GIF, "a"), "image", "GIF"),
    ("seventeen images", lambda c: c.edit([SQUARE_PNG] * 17, "a"), "image", "at most 16"),
    ("no images", lambda c: c.edit([], "a"), "image", "at least one"),
    (
        "dall-e-2 edit non-square",
        lambda c: c.edit(WIDE_PNG, "a", model="dall-e-2", mask=image_bytes("PNG", (96, 64))),
        "image",
        "square",
    ),
    (
        "dall-e-2 edit jpeg",
        lambda c: c.edit(JPEG, "a", model="dall-e-2"),
        "image",
        "accepts PNG",
    ),
    (
        "dall-e-2 edit two images",
        lambda c: c.edit([CLEAR_PNG, CLEAR_PNG], "a", model="dall-e-2"),
        "image",
        "at most 1",
    ),
    (
        "dall-e-2 edit opaque without mask",
        lambda c: c.edit(SQUARE_PNG, "a", model="dall-e-2"),
        "mask",
        "transparency",
    ),
    (
        "mask other size",
        lambda c: c.edit(SQUARE_PNG, "a", mask=image_bytes("PNG", (32, 32))),
        "mask",
        "same size",
    ),
    ("mask not an image", lambda c: c.edit(SQUARE_PNG, "a", mask=b"nope"), "mask", "not a PNG"),
    (
        "variation non-square",
        lambda c: c.create_variation(WIDE_PNG),
        "image",
        "square",
    ),
    ("variation jpeg", lambda c: c.create_variation(JPEG), "image", "accepts PNG"),
    (
        "variation two images",
        lambda c: c.create_variation([SQUARE_PNG, SQUARE_PNG]),
        "image",
        "exactly one",
    ),
    (
        "variation with gpt-image",
        lambda c: c.create_variation(SQUARE_PNG, model="gpt-image-2"),
        "model",
        "variations",
    ),
    (
        "variation size",
        lambda c: c.create_variation(SQUARE_PNG, size="1536x1024"),
        "size",
        "512x512",
    ),
    (
        "extra_body not a mapping",
        lambda c: c.generate("a", extra_body=["seed"]),
        "extra_body",
        "mapping",
    ),
]


@pytest.mark.parametrize(
    ("call", "param", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_invalid_request_is_refused_before_sending(
    client: imagegen.Client, server: ScriptedServer, call: Call, param: str, words: str
) -> None:
    with pytest.raises(imagegen.InvalidRequestError) as info:
        call(client)
    assert info.value.param == param
    assert words in str(info.value)
    assert server.requests == []


def test_invalid_request_error_is_a_value_error() -> None:
    assert issubclass(imagegen.InvalidRequestError, ValueError)


def test_unreadable_path_names_the_file(client: imagegen.Client, tmp_path: Path) -> None:
    with pytest.raises(imagegen.InvalidRequestError, match="is a folder"):
        client.edit(tmp_path, "a")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"max_retries": 101}, "max_retries"),
        ({"max_retries": -1}, "0 to 100"),
        ({"max_retries": 1.5}, "whole number"),
        ({"timeout": -1}, "--timeout"),
        ({"timeout": "soon"}, "positive number"),
        ({"timeout": float("inf")}, "timeout"),
        ({"base_url": "ftp://example.com"}, "http:// or https://"),
        ({"base_url": "localhost:8000"}, "http:// or https://"),
        ({"base_url": "http://a", "azure_endpoint": "https://b"}, "Both a base URL"),
        ({"engine": "placeholder", "base_url": "http://a"}, "not both"),
        ({"engine": "no-such-engine"}, "Unknown engine"),
        ({"azure_deployment": "d"}, "Azure endpoint"),
    ],
)
def test_bad_client_options_are_configuration_errors(
    server: ScriptedServer, options: dict[str, Any], words: str
) -> None:
    if not {"base_url", "azure_endpoint", "engine"} & set(options):
        options["base_url"] = server.base_url
    with pytest.raises(imagegen.ConfigurationError, match=words.replace("(", r"\(")):
        imagegen.Client(api_key="k", **options)
    assert server.requests == []
