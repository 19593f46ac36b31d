"""Type checkers can use the library: `py.typed` ships, the methods' arguments are declared
once (a TypedDict per endpoint), and `stream`/`partial_images` choose the return type.

mypy runs once, in-process, on two user scripts: one that must check cleanly (the README's
"From Python" snippet plus sync, async and module-level calls) and one whose marked lines
must each be flagged.
"""

from __future__ import annotations

import asyncio
import re
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import mypy.api
import pytest

from imagegen import AsyncClient, AsyncImageStream, Client, ImagesResult, ImageStream
from imagegen._capabilities import Endpoint
from imagegen._models import request_class
from imagegen._params import (
    EditAnyParams,
    EditParams,
    EditStreamParams,
    GenerateAnyParams,
    GenerateParams,
    GenerateStreamParams,
    RequestOptions,
    VariationParams,
)

README = Path(__file__).resolve().parents[1] / "README.md"


def test_package_ships_the_py_typed_marker() -> None:
    marker = resources.files("imagegen") / "py.typed"
    assert marker.is_file()


@pytest.mark.parametrize(
    ("endpoint", "forms"),
    [
        ("generations", (GenerateParams, GenerateStreamParams, GenerateAnyParams)),
        ("edits", (EditParams, EditStreamParams, EditAnyParams)),
        ("variations", (VariationParams,)),
    ],
)
def test_the_arguments_are_declared_once_as_the_request_models_fields(
    endpoint: Endpoint, forms: tuple[Any, ...]
) -> None:
    """A method's keyword arguments are one TypedDict (three forms for the return type, alike
    but for `stream` and `partial_images`), and each, files and call options aside, is a field
    of the endpoint's request model: the one representation from the call to the engine."""
    keys = [form.__required_keys__ | form.__optional_keys__ for form in forms]
    assert all(each == keys[0] for each in keys)
    fields = set(request_class(endpoint).field_types()) - {"prompt"}
    not_fields = RequestOptions.__optional_keys__ | {"mask", "markup"}
    assert keys[0] - not_fields == fields


def test_runtime_returns_what_the_overloads_promise() -> None:
    with Client(engine="placeholder") as client:
        assert type(client.generate("a fox", size="256x256")) is ImagesResult
        assert type(client.generate("a fox", size="256x256", partial_images=0)) is ImagesResult
        for options in ({"stream": True}, {"partial_images": 1}):
            with client.generate("a fox", size="256x256", **options) as stream:
                assert type(stream) is ImageStream
                stream.result()

    async def run() -> None:
        async with AsyncClient(engine="placeholder") as client:
            result = await client.generate("a fox", size="256x256", partial_images=0)
            assert type(result) is ImagesResult
            for options in ({"stream": True}, {"partial_images": 1}):
                async with await client.generate("a fox", size="256x256", **options) as stream:
                    assert type(stream) is AsyncImageStream
                    await stream.result()

    asyncio.run(run())


def _readme_snippet() -> str:
    section = README.read_text(encoding="utf-8").split("## From Python", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "README.md: no python block under '## From Python'"
    snippet = match.group(1)
    assert "stream=True" in snippet and "[0]" in snippet  # the lines this test is about
    return snippet


GOOD_CALLS = """
from imagegen import AsyncClient, AsyncImageStream, Client, ImagesResult, ImageStream


def sync_calls(client: Client, flag: bool, count: int) -> None:
    plain: ImagesResult = client.generate("x")
    not_streamed: ImagesResult = client.generate("x", stream=False, partial_images=0)
    streamed: ImageStream = client.generate("x", stream=True, partial_images=count)
    either: ImagesResult | ImageStream = client.generate("x", stream=flag)
    partials: ImagesResult | ImageStream = client.generate("x", partial_images=count)
    edited: ImagesResult = client.edit(["a.png", b"..."], "x", mask="m.png")
    edit_stream: ImageStream = client.edit("a.png", "x", stream=True)
    varied: ImagesResult = client.create_variation("a.png")
    shared: ImagesResult = imagegen.generate("x")
    shared_stream: ImageStream = imagegen.generate("x", stream=True, partial_images=1)
    shared_edit: ImagesResult = imagegen.edit("a.png", "x")
    shared_edit_stream: ImageStream = imagegen.edit("a.png", "x", stream=True)
    with streamed:
        for event in streamed:
            print(event.type, event.index)
    print(plain[0].to_pil(), edited[1:], varied.images)


async def async_calls(flag: bool, count: int) -> None:
    async with AsyncClient(engine="placeholder") as client:
        plain: ImagesResult = await client.generate("x")
        streamed: AsyncImageStream = await client.generate("x", stream=True, partial_images=2)
        either: ImagesResult | AsyncImageStream = await client.generate("x", stream=flag)
        partials: ImagesResult | AsyncImageStream = await client.generate(
            "x", partial_images=count
        )
        edited: ImagesResult = await client.edit("a.png", "x")
        edit_stream: AsyncImageStream = await client.edit("a.png", "x", stream=True)
        varied: ImagesResult = await client.create_variation("a.png")
        async with streamed:
            async for event in streamed:
                print(event.type)
        print(plain[0].to_pil(), edited.save("out.png"), varied[0])
"""

# Each line marked `# E` must be flagged, and nothing else.
BAD_CALLS = """
import imagegen
from imagegen import AsyncClient, AsyncImageStream, Client, ImagesResult, ImageStream


def sync_calls(client: Client, flag: bool, count: int) -> None:
    client.generate("x", stream=True)[0]  # E
    streamed: ImageStream = client.generate("x")  # E
    result: ImagesResult = client.generate("x", partial_images=count)  # E
    result_too: ImagesResult = client.generate("x", partial_images=2)  # E
    maybe: ImagesResult = client.edit("a.png", "x", stream=flag)  # E
    imagegen.generate("x", stream=True)[0]  # E
    shared: ImageStream = imagegen.edit("a.png", "x")  # E


async def async_calls(client: AsyncClient) -> None:
    for event in await client.generate("x", stream=True):  # E
        print(event)
    async for image in await client.generate("x"):  # E
        print(image)
    stream: ImageStream = await client.generate("x", stream=True)  # E
    result: AsyncImageStream = await client.edit("a.png", "x")  # E
"""


class MypyRun(NamedTuple):
    output: str
    flagged: dict[str, set[int]]  # file name -> lines with an error


@pytest.fixture(scope="module")
def mypy_run(tmp_path_factory: pytest.TempPathFactory) -> MypyRun:
    """mypy on good.py and bad.py, in one run, against the installed package."""
    root = tmp_path_factory.mktemp("typing")
    good = textwrap.dedent(_readme_snippet()) + GOOD_CALLS
    (root / "good.py").write_text(good, encoding="utf-8")
    (root / "bad.py").write_text(BAD_CALLS, encoding="utf-8")
    (root / "mypy.ini").write_text("[mypy]\n", encoding="utf-8")  # not the project's config
    stdout, stderr, _ = mypy.api.run(
        [
            "--strict",
            "--config-file",
            str(root / "mypy.ini"),
            "--cache-dir",
            str(root / ".mypy_cache"),
            "--no-error-summary",
            "--hide-error-context",
            str(root / "good.py"),
            str(root / "bad.py"),
        ]
    )
    assert not stderr, stderr
    flagged: dict[str, set[int]] = {"good.py": set(), "bad.py": set()}
    for line in stdout.splitlines():
        match = re.match(r".*?(good\.py|bad\.py):(\d+): error:", line)
        assert match is not None, f"unexpected mypy output: {line}\n{stdout}"
        flagged[match.group(1)].add(int(match.group(2)))
    return MypyRun(stdout, flagged)


def test_readme_and_typical_calls_type_check(mypy_run: MypyRun) -> None:
    assert mypy_run.flagged["good.py"] == set(), mypy_run.output


def test_misuse_is_flagged(mypy_run: MypyRun) -> None:
    marked = {
        number for number, line in enumerate(BAD_CALLS.splitlines(), 1) if line.endswith("# E")
    }
    assert len(marked) == 11
    assert mypy_run.flagged["bad.py"] == marked, mypy_run.output
