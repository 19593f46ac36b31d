"""The seeds' own examples, translated as docs/cli.md says, run or fail with a hint naming the fix.

The commands and their output are read from the docs' "From the seeds' examples" section, so
what the docs show is what the command line does: each `$ imagegen ...` line runs against
imagegen's own server (`create_app("placeholder")`, which serves the DALL·E models too), and
what it prints must match the lines under it (`...` stands for any text). A command shown
failing must exit 2 (1 for the server's own refusal) with error lines (one per problem) that
name the change the next command makes: `-m dall-e-2`, `-f base64`, `leave -s out`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cli_helpers import invoke
from PIL import Image

from imagegen.server import create_app
from live import live_server

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
SECTION = "## From the seeds' examples"
DOCS_SERVER = "http://127.0.0.1:8000"
STDERR_LINES = ("Error: ", "Warning: ", "Revised prompt")


@dataclass
class Step:
    command: str
    output: list[str] = field(default_factory=list)

    @property
    def args(self) -> list[str]:
        args = shlex.split(self.command)
        assert args[0] == "imagegen", self.command
        return args[1:]

    @property
    def error(self) -> str | None:
        """The first error line shown, if the command is shown failing."""
        return next((line for line in self.output if line.startswith("Error: ")), None)


def _examples() -> list[list[Step]]:
    text = DOCS.read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    examples = []
    for block in re.findall(r"```console\n(.*?)```", section, re.S):
        steps: list[Step] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:]))
            else:
                steps[-1].output.append(line)
        examples.append(steps)
    return examples


EXAMPLES = _examples()


def _options(args: list[str]) -> dict[str, str]:
    """The flags of a command and their values (every flag of the examples takes one)."""
    found = {}
    for flag, value in zip(args, args[1:], strict=False):
        if flag.startswith("-") and not value.startswith("-"):
            found[flag] = value
    return found


def _matches(documented: str, actual: str, server: str) -> bool:
    pattern = re.escape(documented.replace(DOCS_SERVER, server))
    pattern = pattern.replace(re.escape("..."), ".*?").replace("YYYYMMDD\\-HHMMSS", r"\d{8}-\d{6}")
    return re.fullmatch(pattern, actual) is not None


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with live_server(create_app("placeholder")) as url:
        yield url


@pytest.fixture(autouse=True)
def _seed_files(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The files the examples name, in the test's folder, and the server in the environment."""
    monkeypatch.setenv("OPENAI_BASE_URL", f"{server}/v1")
    Image.new("RGBA", (512, 512), (250, 150, 180, 255)).save("cupcake.png")
    Image.new("RGBA", (256, 256), (90, 160, 220, 255)).save("image.png")
    Image.new("RGBA", (256, 256), (0, 0, 0, 0)).save("mask.png")
    sunflower = Image.new("RGBA", (256, 256), (240, 200, 30, 255))
    sunflower.paste((0, 0, 0, 0), (64, 64, 192, 192))  # the part to restore
    sunflower.save("sunflower_mask.png")
    Image.new("RGB", (1024, 1024), (220, 190, 140)).save("sand_with_feather.png")
    feather = Image.new("RGBA", (1024, 1024), (0, 0, 0, 255))
    feather.paste((0, 0, 0, 0), (300, 300, 700, 700))
    feather.save("fether_mask.png")


def test_every_example_of_the_seeds_is_covered() -> None:
    # PSOpenAI: 2 generation, 2 variation, 2 edit; PSAI: 2; the generated client: 3.
    assert len(EXAMPLES) == 11
    assert all(step.error is None for step in (steps[-1] for steps in EXAMPLES))


@pytest.mark.parametrize("steps", EXAMPLES, ids=[f"example-{i}" for i in range(1, 12)])
def test_seed_example(steps: list[Step], server: str) -> None:
    for number, step in enumerate(steps):
        result = invoke(*step.args)
        expected_err = [line for line in step.output if line.startswith(STDERR_LINES)]
        expected_out = [line for line in step.output if not line.startswith(STDERR_LINES)]
        out, err = result.stdout.splitlines(), result.stderr.splitlines()
        shown = f"{step.command}\nstdout: {out}\nstderr: {err}"
        assert len(out) == len(expected_out) and len(err) == len(expected_err), shown
        for documented, actual in zip(expected_out + expected_err, out + err, strict=True):
            assert _matches(documented, actual, server), f"{documented!r} != {actual!r}"
        if step.error is None:
            assert result.exit_code == 0, shown
            for line in out:
                if line.endswith(".png"):
                    with Image.open(line) as picture:
                        assert picture.format == "PNG"
            continue
        # One line per problem of the request, every one an error, no traceback.
        assert err and all(line.startswith("Error: ") for line in err), shown
        errors = " ".join(err)
        assert result.exit_code == (1 if "Server answered" in errors else 2), shown
        _assert_names_the_fix(errors, step, steps[number + 1])


def _assert_names_the_fix(error: str, step: Step, fixed: Step) -> None:
    """The next command differs by what the error says: a flag and value it names (`-m
    dall-e-2`, `-f base64`), a flag whose rule it states (`-n`), or a flag it says to leave out."""
    before, after = _options(step.args), _options(fixed.args)
    added = {flag: value for flag, value in after.items() if flag not in before}
    changed = {flag: value for flag, value in after.items() if before.get(flag, value) != value}
    removed = [flag for flag in before if flag not in after]
    assert added or changed or removed, f"{fixed.command!r} changes nothing"
    for flag, value in added.items():
        assert f"{flag} {value}" in error, (flag, value, error)
    for flag in changed:
        assert f"{flag}/" in error, (flag, error)
    for flag in removed:
        assert added or f"leave {flag} out" in error, (flag, error)
