"""What cannot be sent as asked is refused before sending: `extra_body` keys that are the
method's own parameters, headers HTTP cannot carry, proxies httpx2 cannot use."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
from collections.abc import Callable
from typing import Any

import pytest
from scripted import API_KEY, ScriptedServer, image_bytes

import imagegen
import imagegen._params
from imagegen._capabilities import ENDPOINT_PARAMS

MakeClient = Callable[..., imagegen.Client]

METHODS = {"generations": "generate", "edits": "edit", "variations": "create_variation"}
# Not wire parameters: how the call is made, not what is asked for.
_CALL_OPTIONS = {"extra_headers", "extra_query", "extra_body", "timeout"}


def _parameters(method: Callable[..., Any] | str) -> set[str]:
    """A method's parameters: its named ones and the keys of its `**params` TypedDict."""
    if isinstance(method, str):
        method = getattr(imagegen.Client, method)
    names = set(inspect.signature(method).parameters) - {"self", "params"}
    unpacked = method.__annotations__["params"]  # "Unpack[GenerateAnyParams]"
    name = unpacked.removeprefix("Unpack[").removesuffix("]").removeprefix("_params.")
    declared = getattr(imagegen._params, name)
    return (names | declared.__required_keys__ | declared.__optional_keys__) - _CALL_OPTIONS


@pytest.mark.parametrize("endpoint", METHODS)
def test_the_refused_keys_are_the_methods_own_parameters(endpoint: str) -> None:
    for client in (imagegen.Client, imagegen.AsyncClient):
        method = getattr(client, METHODS[endpoint])
        assert _parameters(method) == ENDPOINT_PARAMS[endpoint]  # type: ignore[index]


def _call(client: imagegen.Client, method: str, **options: Any) -> Any:
    if method == "generate":
        return client.generate("a fox", **options)
    if method == "edit":
        return client.edit(image_bytes(), "a fox", **options)
    return client.create_variation(image_bytes(), **options)


@pytest.mark.parametrize(
    ("method", "key"),
    sorted((method, key) for method in METHODS.values() for key in _parameters(method)),
)
def test_extra_body_may_not_set_a_parameter_of_the_method(
    client: imagegen.Client, server: ScriptedServer, method: str, key: str
) -> None:
    with pytest.raises(imagegen.InvalidRequestError) as info:
        _call(client, method, extra_body={key: 1})
    assert info.value.param == key
    assert f"pass {key}=..." in str(info.value)
    assert "extra_body (--extra)" in str(info.value)
    assert server.requests == []


def test_extra_body_cannot_sneak_in_another_model_or_prompt(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    # Each would have been sent unchecked, and the saved metadata would name the other value.
    for extra in ({"model": "dall-e-3", "size": "1792x1024"}, {"prompt": "other"}, {"n": 20}):
        with pytest.raises(imagegen.InvalidRequestError, match="is a parameter of generate"):
            client.generate("a fox", extra_body=extra)
    assert server.requests == []


def test_extra_body_keeps_options_the_methods_lack(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    client.generate("a fox", extra_body={"seed": 7, "num_inference_steps": 4, "image[]": "x"})
    assert server.last.json()["seed"] == 7


def test_extra_body_is_checked_for_in_process_engines_and_async_clients() -> None:
    with (
        imagegen.Client(engine="placeholder") as local,
        pytest.raises(imagegen.InvalidRequestError) as info,
    ):
        local.generate("a fox", extra_body={"size": "64x64"})
    assert info.value.param == "size"

    async def main() -> None:
        async with imagegen.AsyncClient(base_url="http://127.0.0.1:9/v1") as client:
            with pytest.raises(imagegen.InvalidRequestError) as ainfo:
                await client.edit(image_bytes(), "a fox", extra_body={"mask": "x"})
            assert ainfo.value.param == "mask"

    asyncio.run(main())


BAD_HEADERS = [
    # (id, name, value, words the message must contain)
    ("space in name", "Bad Name", "x", "header name is letters"),
    ("colon in name", "X-A:", "x", "header name is letters"),
    ("empty name", "", "x", "header name is letters"),
    ("line break", "X-A", "a\nb", "has a line break at position 2"),
    ("carriage return", "X-A", "ab\r", "has a line break at position 3"),
    ("NUL", "X-A", "a\0", "has the control character U+0000 at position 2"),
    ("not ASCII", "X-A", "é", "has the non-ASCII character U+00E9 at position 1"),
    ("not text", "X-A", 5, "must be text"),
]


@pytest.mark.parametrize(
    ("name", "value", "words"), [c[1:] for c in BAD_HEADERS], ids=[c[0] for c in BAD_HEADERS]
)
def test_extra_headers_http_cannot_carry_are_refused(
    client: imagegen.Client, server: ScriptedServer, name: str, value: Any, words: str
) -> None:
    with pytest.raises(imagegen.InvalidRequestError) as info:
        client.generate("a fox", extra_headers={name: value})
    assert info.value.param == "extra_headers"
    assert repr(name) in str(info.value) and words in str(info.value)
    assert server.requests == []


@pytest.mark.parametrize(
    ("name", "value", "words"), [c[1:] for c in BAD_HEADERS], ids=[c[0] for c in BAD_HEADERS]
)
def test_default_headers_http_cannot_carry_are_refused(
    server: ScriptedServer, name: str, value: Any, words: str
) -> None:
    with pytest.raises(imagegen.ConfigurationError, match="default_headers") as info:
        imagegen.Client(base_url=server.base_url, default_headers={name: value})
    assert words in str(info.value)


def test_good_headers_still_go_out(client: imagegen.Client, server: ScriptedServer) -> None:
    client.generate("a fox", extra_headers={"X-Tab": "a\tb", "X-Sym": "!#$%&'*+-.^_`|~"})
    assert server.last.headers["x-tab"] == "a\tb"


BAD_PROXIES = [
    ("not a url", "it has no scheme"),
    ("127.0.0.1:3128", "it has no scheme"),
    ("ftp://127.0.0.1:1", "ftp:// is not a proxy scheme"),
    ("http://", "it names no host"),
    ("http://a proxy:3128", "contains a space"),
    ("http://[::1", "not a valid URL"),
]


@pytest.mark.parametrize(("proxy", "words"), BAD_PROXIES)
def test_a_proxy_httpx2_cannot_use_is_refused(proxy: str, words: str) -> None:
    with pytest.raises(imagegen.ConfigurationError) as info:
        imagegen.Client(base_url="http://127.0.0.1:9/v1", proxy=proxy)
    message = str(info.value)
    assert "(--proxy)" in message and words in message
    assert "http://, https://, socks5:// and socks5h://" in message


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "http_proxy", "ALL_PROXY"])
def test_a_proxy_from_the_environment_is_checked_and_named(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "ftp://user:proxy-secret-42@127.0.0.1:1")
    with pytest.raises(imagegen.ConfigurationError) as info:
        imagegen.Client(base_url="http://127.0.0.1:9/v1")
    assert f"({variable})" in str(info.value)
    assert "proxy-secret-42" not in str(info.value)

    async def main() -> None:
        with pytest.raises(imagegen.ConfigurationError, match=variable):
            imagegen.AsyncClient(base_url="http://127.0.0.1:9/v1")

    asyncio.run(main())


@pytest.mark.skipif(importlib.util.find_spec("socksio") is not None, reason="socksio is installed")
def test_a_socks_proxy_without_socksio_names_the_install() -> None:
    with pytest.raises(imagegen.MissingDependencyError) as info:
        imagegen.Client(base_url="http://127.0.0.1:9/v1", proxy="socks5://127.0.0.1:1080")
    assert "pip install 'httpx2[socks]'" in str(info.value)
    assert "(--proxy)" in str(info.value)


def test_a_callers_http_client_is_left_alone(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its proxies are its own business: a broken variable it does not read stops nothing.
    import httpx2

    monkeypatch.setenv("HTTP_PROXY", "ftp://127.0.0.1:1")
    with httpx2.Client(trust_env=False) as http_client:
        client = imagegen.Client(base_url=server.base_url, api_key=API_KEY, http_client=http_client)
        assert len(client.generate("a fox")) == 1
