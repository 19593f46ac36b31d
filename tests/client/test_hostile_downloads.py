"""URL results are fetched over http(s) only, and from private addresses only when allowed.

The server chooses the URLs the client fetches: a `file:` URL, or one aimed at the network the
client runs in (cloud metadata at 169.254.169.254, a router's admin page), is refused before a
connection is made. By default private addresses are allowed only when the base URL is itself
on one (a local server hands out URLs on its own address).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from scripted import API_KEY, TINY_PNG, Reply, ScriptedServer

import imagegen
from imagegen._downloads import Reach, is_public
from imagegen._models import ImagesResponse
from imagegen._network import within
from imagegen.cli import cli

MakeClient = Callable[..., imagegen.Client]


def _url_answer(url: str) -> Reply:
    return Reply(json={"created": 1, "data": [{"url": url}]})


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/image.png",
        "gopher://127.0.0.1:70/_GET",
        "//127.0.0.1/image.png",
    ],
)
def test_only_http_and_https_urls_are_fetched(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path, url: str
) -> None:
    server.script(_url_answer(url))
    result = client.generate("a fox", model="dall-e-2", response_format="url")
    with pytest.raises(imagegen.APIResponseError, match="only http and https URLs"):
        result.save(tmp_path / "fox.png")
    assert len(server.requests) == 1  # the API call; nothing fetched
    assert list(tmp_path.iterdir()) == []


def test_private_addresses_are_refused_when_not_allowed(
    make_client: MakeClient, server: ScriptedServer, tmp_path: Path
) -> None:
    server.script(_url_answer(f"{server.url}/files/a.png?sig=SIGNED"))
    client = make_client(allow_private_downloads=False)
    result = client.generate("a fox", model="dall-e-2", response_format="url")
    with pytest.raises(imagegen.APIResponseError) as info:
        result.save(tmp_path / "fox.png")
    message = str(info.value)
    assert "private address" in message and "127.0.0.1" in message
    assert "allow_private_downloads (--private-downloads)" in message
    assert "SIGNED" not in message
    assert len(server.requests) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_local_server_may_hand_out_its_own_urls_by_default(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    server.script(
        _url_answer(f"{server.url}/files/a.png"), Reply(body=TINY_PNG, content_type="image/png")
    )
    result = client.generate("a fox", model="dall-e-2", response_format="url")
    assert result.save(tmp_path / "fox.png", metadata=False)[0].read_bytes() == TINY_PNG


def test_a_public_api_handing_out_a_private_url_is_refused_by_default(
    server: ScriptedServer, tmp_path: Path
) -> None:
    """A base URL on a public address (never contacted here) makes private URLs suspect."""
    response = ImagesResponse.model_validate(
        {"created": 1, "data": [{"url": f"{server.url}/files/a.png"}]}
    )
    with imagegen.Client(base_url="http://93.184.215.14/v1", api_key=API_KEY) as client:
        result = imagegen.ImagesResult(response, downloader=client._transport)
        with pytest.raises(imagegen.APIResponseError, match="private address"):
            result.save(tmp_path / "fox.png")
    assert server.requests == []


def test_every_redirect_hop_is_checked_again(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    server.script(
        _url_answer(f"{server.url}/files/a.png"),
        Reply(status=302, body=b"", headers={"location": "file:///etc/passwd"}),
    )
    result = client.generate("a fox", model="dall-e-2", response_format="url")
    with pytest.raises(imagegen.APIResponseError, match="file:"):
        result.save(tmp_path / "fox.png")
    assert [r.path for r in server.requests] == ["/v1/images/generations", "/files/a.png"]


def test_the_address_connected_to_is_checked_when_the_connection_opens(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    """The check `_network` makes under httpx2, whatever a name resolved to beforehand (DNS
    rebinding): a private peer is refused before a request is written."""
    assert client._transport is not None
    url = f"{server.url}/files/a.png"
    with within(None, Reach(url, private=False)), pytest.raises(imagegen.APIResponseError):
        client._transport.client.get(url)
    assert server.requests == []


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("2002:7f00:1::", False),  # 6to4 around 127.0.0.1
        ("not an address", False),
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(address) is public


def test_the_command_line_flag_refuses_them(server: ScriptedServer, tmp_path: Path) -> None:
    server.script(_url_answer(f"{server.url}/files/a.png"))
    args = ["generate", "a fox", "-m", "dall-e-2", "--response-format", "url"]
    result = CliRunner().invoke(
        cli,
        [
            *args,
            "--base-url",
            server.base_url,
            "--no-private-downloads",
            "-o",
            str(tmp_path / "f.png"),
        ],
    )
    assert result.exit_code == 1
    assert "--private-downloads" in result.stderr and "allow_private" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
