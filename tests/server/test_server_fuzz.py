"""Property-based fuzzing of every endpoint: whatever the body, the server never answers 500
(nor a stream `server_error`), every refusal has OpenAI's error shape, and every 200 is a valid
`ImagesResponse` or event stream. Runs against the solid test engine and the placeholder one."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from srvkit import (
    SolidEngine,
    assert_openai_error,
    make_settings,
    mask_png,
    multipart,
    png,
    png_header,
)

from imagegen._capabilities import MODELS
from imagegen._models import ImagesResponse
from imagegen.server import create_app
from live import live_server

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- values --------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
anything = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
SIZES = [
    "auto",
    "256x256",
    "512x512",
    "1024x1024",
    "1536x1024",
    "16x16",
    "40x24",
    "0x0",
    "x",
    "100000x100000",
    "1024x1536",
    "32x1200",
    "-5x5",
    "16x16 ",
    "１６x16",
]
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "prompt": st.text(max_size=60),
    "model": st.sampled_from([*MODELS, "solid-1", "placeholder", "no-such-model", ""]),
    "n": st.integers(min_value=-1, max_value=11) | st.sampled_from(["2", "x", "1.0"]),
    "size": st.sampled_from(SIZES),
    "quality": st.sampled_from(["auto", "low", "medium", "high", "standard", "hd", "max", ""]),
    "response_format": st.sampled_from(["url", "b64_json", "base64"]),
    "output_format": st.sampled_from(["png", "jpeg", "webp", "gif"]),
    "output_compression": st.integers(min_value=-5, max_value=105),
    "stream": st.booleans() | st.sampled_from(["true", "false", "yes"]),
    "partial_images": st.integers(min_value=-1, max_value=4),
    "moderation": st.sampled_from(["low", "auto", "high"]),
    "background": st.sampled_from(["transparent", "opaque", "auto", "none"]),
    "style": st.sampled_from(["vivid", "natural", "bold"]),
    "input_fidelity": st.sampled_from(["high", "low", "max"]),
    "user": st.text(max_size=10),
    "seed": st.integers(min_value=-(2**80), max_value=2**80) | st.text(max_size=6),
}


def field(name: str) -> st.SearchStrategy[Any]:
    return PLAUSIBLE[name] | anything


json_bodies = st.fixed_dictionaries(
    {"prompt": field("prompt")},
    optional={name: field(name) for name in PLAUSIBLE if name != "prompt"},
).flatmap(
    lambda body: st.dictionaries(st.text(max_size=12), anything, max_size=3).map(
        lambda extra: {**extra, **body}
    )
)

IMAGE_BYTES = [
    png((32, 32)),
    png((32, 32), (0, 0, 0, 0)),
    png((32, 16)),
    png((24, 24), (9, 9, 9), mode="RGB", fmt="JPEG"),
    png((24, 24), fmt="WEBP"),
    png((8, 8), (1, 2, 3), mode="P"),
    mask_png((32, 32), (0, 0, 16, 16)),
    png((32, 32))[:60],
    png_header(100_000, 100_000),
    png_header(9000, 8000),
    b"",
    b"GIF89a" + b"\0" * 10,
]
image_bytes = st.sampled_from(IMAGE_BYTES) | st.binary(max_size=200)
content_types = st.sampled_from(
    [
        None,
        "image/png",
        "image/jpeg",
        "image/webp",
        "application/octet-stream",
        "text/plain",
        "image/PNG; q=1",
    ]
) | st.text(max_size=20)
part_names = st.sampled_from(
    [
        "image",
        "image[]",
        "mask",
        "prompt",
        "model",
        "n",
        "size",
        "stream",
        "seed",
        "partial_images",
        "response_format",
        "output_format",
        "background",
        "quality",
    ]
) | st.text(max_size=10)


@st.composite
def parts(draw: st.DrawFn) -> list[tuple[str, str | bytes, str | None, str | None]]:
    out: list[tuple[str, str | bytes, str | None, str | None]] = []
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        name = draw(part_names)
        if draw(st.booleans()):  # a file part
            filename = draw(st.sampled_from(["in.png", "x"]) | st.text(max_size=8))
            out.append((name, draw(image_bytes), filename, draw(content_types)))
        else:
            value = draw(PLAUSIBLE[name] if name in PLAUSIBLE else st.text(max_size=20))
            text = value if isinstance(value, str) else json.dumps(value)
            out.append((name, text, None, draw(st.none() | st.just("text/plain"))))
    return out


def data_urls() -> st.SearchStrategy[Any]:
    encoded = image_bytes.map(lambda data: base64.b64encode(data).decode())
    return st.one_of(
        st.builds(lambda kind, data: f"data:{kind};base64,{data}", content_types.map(str), encoded),
        st.sampled_from(
            [
                "https://example.com/x.png",
                "data:,",
                "data:image/png;base64,@@",
                "file:///etc/passwd",
            ]
        ),
        anything,
    )


references = st.one_of(
    st.fixed_dictionaries({"image_url": data_urls()}),
    st.fixed_dictionaries({"file_id": st.text(max_size=8)}),
    anything,
)


# -- checks ----------------------------------------------------------------------------------


def check(response: httpx2.Response) -> None:
    event(f"status {response.status_code}")  # --hypothesis-show-statistics shows the mix
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:
        assert_openai_error(response, response.status_code)
    elif response.headers["content-type"].startswith("text/event-stream"):
        assert "server_error" not in response.text, response.text[:500]
        assert "event: " in response.text
    else:
        ImagesResponse.model_validate(response.json())


@pytest.fixture(scope="module")
def http() -> Iterator[httpx2.Client]:
    settings_ = make_settings(max_queue=64, max_image_bytes=2_000_000)
    with (
        live_server(create_app(SolidEngine(), settings_)) as url,
        httpx2.Client(base_url=url, timeout=60) as client,
    ):
        yield client
        assert client.get("/health").status_code == 200


@FUZZ
@given(body=json_bodies)
def test_generations_json(http: httpx2.Client, body: dict[str, Any]) -> None:
    check(http.post("/v1/images/generations", json=body))


@FUZZ
@given(body=st.dictionaries(st.sampled_from(list(PLAUSIBLE)), anything) | anything)
def test_generations_any_json_value(http: httpx2.Client, body: Any) -> None:
    check(http.post("/v1/images/generations", json=body))


header_types = st.sampled_from(
    ["application/json", "multipart/form-data", "multipart/form-data; boundary=", "text/plain"]
) | st.from_regex(r"[!-~]([ -~]{0,30}[!-~])?", fullmatch=True)


@FUZZ
@given(content=st.binary(max_size=300), kind=st.none() | header_types)
def test_any_bytes_to_any_endpoint(http: httpx2.Client, content: bytes, kind: str | None) -> None:
    headers = {"content-type": kind} if kind else {}
    for path in ("/v1/images/generations", "/v1/images/edits", "/v1/images/variations"):
        check(http.post(path, content=content, headers=headers))
    multi = {"content-type": "multipart/form-data; boundary=b0undary"}
    check(http.post("/v1/images/edits", content=b"--b0undary\r\n" + content, headers=multi))


@FUZZ
@given(form=parts())
def test_edits_multipart(
    http: httpx2.Client, form: list[tuple[str, str | bytes, str | None, str | None]]
) -> None:
    content, headers = multipart(form)
    check(http.post("/v1/images/edits", content=content, headers=headers))


@FUZZ
@given(form=parts())
def test_variations_multipart(
    http: httpx2.Client, form: list[tuple[str, str | bytes, str | None, str | None]]
) -> None:
    content, headers = multipart(form)
    check(http.post("/v1/images/variations", content=content, headers=headers))


@FUZZ
@given(
    body=json_bodies,
    images=st.lists(references, max_size=3) | anything,
    mask=st.none() | references,
)
def test_edits_json(http: httpx2.Client, body: dict[str, Any], images: Any, mask: Any) -> None:
    payload = {**body, "images": images}
    if mask is not None:
        payload["mask"] = mask
    check(http.post("/v1/images/edits", json=payload))


@FUZZ
@given(path=st.text(max_size=30), method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
def test_any_route(http: httpx2.Client, path: str, method: str) -> None:
    response = http.request(method, "/" + quote(path.lstrip("/"), safe="/?=&"))
    assert response.status_code < 500
    if response.status_code >= 400:
        assert_openai_error(response, response.status_code)


# -- the placeholder engine, loaded by name through the registry ------------------------------

placeholder_bodies = st.fixed_dictionaries(
    {
        "prompt": st.text(max_size=200),
        "size": st.sampled_from(["16x16", "64x40", "200x30", "1x1", "1x40", "3x300", "96x96"]),
    },
    optional={
        "model": st.sampled_from(["placeholder", "solid-1"]),
        "n": st.integers(min_value=1, max_value=3),
        "background": st.sampled_from(["transparent", "opaque", "auto"]),
        "output_format": st.sampled_from(["png", "jpeg", "webp"]),
        "seed": st.integers(min_value=-(2**80), max_value=2**80) | st.text(max_size=4),
        "stream": st.booleans(),
        "partial_images": st.integers(min_value=0, max_value=3),
    },
)


@pytest.fixture(scope="module")
def placeholder_http() -> Iterator[httpx2.Client]:
    with (
        live_server(create_app("placeholder", make_settings(max_queue=64))) as url,
        httpx2.Client(base_url=url, timeout=60) as client,
    ):
        yield client


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=placeholder_bodies, extra=st.dictionaries(st.text(max_size=8), scalars, max_size=2))
def test_placeholder_generations(
    placeholder_http: httpx2.Client, body: dict[str, Any], extra: dict[str, Any]
) -> None:
    check(placeholder_http.post("/v1/images/generations", json={**extra, **body}))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(form=parts(), prompt=st.text(min_size=1, max_size=40))
def test_placeholder_edits_and_variations(
    placeholder_http: httpx2.Client,
    form: list[tuple[str, str | bytes, str | None, str | None]],
    prompt: str,
) -> None:
    base = [
        ("image", png((32, 32), (0, 0, 0, 0)), "a.png", "image/png"),
        ("prompt", prompt, None, None),
    ]
    content, headers = multipart(base + form)
    check(placeholder_http.post("/v1/images/edits", content=content, headers=headers))
    content, headers = multipart(form)
    check(placeholder_http.post("/v1/images/variations", content=content, headers=headers))
