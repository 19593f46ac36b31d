"""`imagegen serve` and `imagegen engines`: refusals before anything listens, and a real
server process answering the SDK and finishing a stream after SIGTERM."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from click.testing import CliRunner
from srvkit import KEY, serving

from imagegen.cli import cli


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_engines_lists_installed_engines() -> None:
    code, output = invoke("engines")
    assert code == 0
    line = next(line for line in output.splitlines() if line.startswith("placeholder"))
    assert " ok " in line and "imagegen.engines.placeholder:PlaceholderEngine" in line
    code, output = invoke("engines", "--json")
    rows = {row["name"]: row for row in json.loads(output)}
    assert rows["placeholder"]["ok"] is True
    assert rows["placeholder"]["missing"] == []
    assert set(rows["placeholder"]) == {"name", "target", "ok", "status", "description", "missing"}


# Runs the CLI as if torch (and whatever else argv[1] names) were not installed.
_WITHOUT = (
    "import sys\n"
    "for name in sys.argv[1].split(','):\n"
    "    sys.modules[name] = None\n"
    "from imagegen.cli import main\n"
    "main(sys.argv[2:])\n"
)


def _without(modules: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGEN_")}
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT, modules, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_engines_tells_what_an_engine_lacks_and_how_to_install_it() -> None:
    done = _without("torch,diffusers", "engines", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    diffusers = rows["diffusers"]
    assert diffusers["ok"] is False
    assert diffusers["missing"] == ["torch", "diffusers"]
    assert diffusers["status"].startswith("Engine 'diffusers' needs torch and diffusers, which")
    assert (
        "pip install torch --index-url https://download.pytorch.org/whl/cpu"
        in (diffusers["status"])
    )
    assert "pip install 'imagegen[diffusers]'" in diffusers["status"]
    assert rows["placeholder"]["ok"] is True

    done = _without("torch", "engines")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.match(r"diffusers +n/a +imagegen\.engines\.diffusers:DiffusersEngine$", lines[0])
    assert "needs torch, which is not installed" in "".join(lines[1:3])
    assert re.match(r"placeholder +ok ", next(x for x in lines if x.startswith("placeholder")))


def test_engines_imports_no_engine_library() -> None:
    code = (
        "import sys\n"
        "from imagegen.cli import main\n"
        "try:\n"
        "    main(['engines'])\n"
        "except SystemExit:\n"
        "    print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.splitlines()[-1] == "[]", done.stderr


def test_serve_with_an_engine_that_lacks_a_library_is_one_line() -> None:
    done = _without(
        "torch", "serve", "--engine", "diffusers", "--model", "some/model", "--port", "0"
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: Engine 'diffusers' needs torch, which is not installed: ")


@pytest.mark.parametrize(
    "flags",
    [(), ("-o", "no-such-option=1"), ("-m", "./no-such-folder")],
    ids=["no model", "a bad option", "a missing folder"],
)
def test_serve_says_torch_is_missing_before_asking_for_a_model(flags: tuple[str, ...]) -> None:
    """Installing comes first: without it, no model or option could be used anyway."""
    done = _without("torch,diffusers", "serve", "--engine", "diffusers", "--port", "0", *flags)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        "Error: Engine 'diffusers' needs torch and diffusers, which are not installed: "
    )
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in lines[0]
    assert lines[0].endswith("then pip install 'imagegen[diffusers]'.")


def test_engines_reports_an_engine_that_cannot_load(tmp_path: Path) -> None:
    """A third-party engine registered through the entry-point group, whose module is missing."""
    dist = tmp_path / "broken_engine-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-engine\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[imagegen.engines]\nbroken = no_such_module:Engine\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGEN_")}
    env["PYTHONPATH"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "imagegen", "engines", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["broken"]["ok"] is False
    assert rows["broken"]["target"] == "no_such_module:Engine"
    assert "no_such_module" in rows["broken"]["status"]
    assert rows["placeholder"]["ok"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "without an API key"),
        (["--host", "::"], "--allow-no-auth"),
        (["-o", "novalue"], "key=value"),
        (["--engine", "no-such-engine"], "Unknown engine"),
        (["--url-ttl", "0"], "url_ttl"),
        (["--max-concurrency", "0"], "IMAGEGEN_MAX_CONCURRENCY"),
        (["--public-url", "example.org"], "public_url"),
        (["--api-key-file", "/no/such/file"], "cannot be read"),
        (["--png-compress-level", "10"], "--png-compress-level"),
        (["--png-compress-level", "-1"], "0<=x<=9"),
        (["--max-storage", "lots"], "IMAGEGEN_MAX_STORAGE): expected a number of bytes"),
        (["--header-timeout", "0"], "--header-timeout"),
        (["--max-connections", "1"], "max_connections"),
    ],
)
def test_serve_refuses_bad_settings_before_listening(args: list[str], message: str) -> None:
    code, output = invoke("serve", *args)
    assert code == 2, output
    assert message in output
    assert output.count("\n") <= 2  # one line, no traceback


@pytest.mark.parametrize(
    ("flag", "what"),
    [("--storage-dir", "the image folder"), ("--data-dir", "the Batch API's data folder")],
)
def test_serve_refuses_a_folder_it_cannot_write_before_listening(
    tmp_path: Path, flag: str, what: str
) -> None:
    """In a real process with a deadline: a server that started anyway would not return."""
    (tmp_path / "taken").write_text("a file where the folder's parent should be")
    folder = tmp_path / "taken" / "images"
    done = subprocess.run(
        [sys.executable, "-m", "imagegen", "serve", "--port", "0", flag, str(folder)],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("IMAGEGEN_")},
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    name = flag.removeprefix("--").replace("-", "_").upper()
    assert done.stderr == (
        f"Error: Cannot use '{folder}' as {what} (flag {flag} or IMAGEGEN_{name}): not a "
        "directory.\n"
    )


def test_serve_help_lists_the_flags() -> None:
    code, output = invoke("serve", "--help")
    assert code == 0
    for flag in (
        "--engine",
        "--model",
        "-o",
        "--host",
        "--port",
        "--api-key",
        "--api-key-file",
        "--storage-dir",
        "--url-ttl",
        "--public-url",
        "--max-concurrency",
        "--max-queue",
        "--png-compress-level",
        "--header-timeout",
        "--body-timeout",
        "--max-connections",
        "--max-storage",
    ):
        assert flag in output


@pytest.fixture
def served() -> Iterator[tuple[str, subprocess.Popen[str], list[str]]]:
    with serving("--graceful-timeout", "60") as server:
        yield server


def _zlib_level(png: bytes) -> int:
    """FLEVEL of the PNG's zlib stream: 0 for levels 0-1, 1 for 2-5, 2 for 6, 3 for 7-9."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    offset = 8
    while png[offset + 4 : offset + 8] != b"IDAT":
        offset += 12 + int.from_bytes(png[offset : offset + 4], "big")
    return png[offset + 9] >> 6  # the second byte of the zlib header (FLG)


def _generated_png(url: str) -> bytes:
    with openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0) as sdk:
        result = sdk.images.generate(
            model="placeholder", prompt="a lion", size="256x256", extra_body={"seed": 1}
        )
    assert result.data and result.data[0].b64_json
    return base64.b64decode(result.data[0].b64_json)


def test_png_compress_level_flag_sets_the_zlib_level_and_beats_the_environment() -> None:
    with serving() as (url, _, _):
        default = _generated_png(url)
    env = {"IMAGEGEN_PNG_COMPRESS_LEVEL": "0"}
    with serving("--png-compress-level", "9", env=env) as (url, _, _):
        tight = _generated_png(url)
    with serving(env=env) as (url, _, _):
        stored = _generated_png(url)
    assert (_zlib_level(default), _zlib_level(tight), _zlib_level(stored)) == (0, 3, 0)
    assert len(stored) > len(default) > len(tight)  # level 0 stores, 1 compresses, 9 the most


def test_serve_process_answers_and_finishes_a_stream_after_sigterm(
    served: tuple[str, subprocess.Popen[str], list[str]],
) -> None:
    url, process, log = served
    prompt = "SECRET-PROMPT-77 a lion"
    with openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0) as sdk:
        result = sdk.images.generate(model="placeholder", prompt=prompt, size="64x64")
        assert result.data and result.data[0].b64_json
        stream = sdk.images.generate(
            model="gpt-image-1", prompt=prompt, stream=True, partial_images=3, n=2, size="1024x1024"
        )
        types = []
        for event in stream:
            if not types:
                process.send_signal(signal.SIGTERM)  # shutdown begins with the stream in flight
            types.append(event.type)
    assert types.count("image_generation.completed") == 2
    # uvicorn re-raises the signal once it has shut down cleanly, so the exit status says so.
    assert process.wait(timeout=60) in (0, -signal.SIGTERM)
    text = "".join(log)
    assert "Finished server process" in text
    assert "without authentication" not in text
    assert re.search(r'"POST /v1/images/generations" 200', text)
    assert "Shutting down" in text
    assert prompt not in text and KEY not in text
