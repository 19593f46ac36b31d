"""Engine options declared as dataclass fields, the built-in engines' table, and what naming an
engine imports: creating one with no options, reading its defaults and its help take neither
pydantic nor `importlib.metadata`; only given options are parsed by pydantic."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from click.testing import CliRunner
from pydantic import Field, field_validator

from imagegen import engines
from imagegen._errors import ConfigurationError
from imagegen.cli import cli
from imagegen.engines import EngineOptions, option
from imagegen.engines.placeholder import PlaceholderEngine

# --- what the path imports ------------------------------------------------------------------

# Run in a fresh interpreter. The wire models (`imagegen._models`) are imported first, with
# whatever they import; then pydantic, annotated_types and importlib.metadata are taken out of
# `sys.modules` and refused, so an import of any of them on the engines' own path (the engine
# package, its options, the placeholder's modules) fails, whether or not the wire models
# still load pydantic themselves.
_ENGINES_PATH = """
import sys
import imagegen._models

REFUSED = ("pydantic", "pydantic_core", "annotated_types")

def refused(name):
    return name.split(".")[0] in REFUSED or name.startswith("importlib.metadata")

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if refused(name):
            raise ImportError(f"the engines' path imported {name}")
        return None

for name in [name for name in sys.modules if refused(name)]:
    del sys.modules[name]
sys.meta_path.insert(0, Refuse())

from imagegen.engines import create_engine, get_engine_class
from imagegen.engines.placeholder import PlaceholderOptions

engine = create_engine("placeholder")
print(engine.processes, engine.parse_options({}) == PlaceholderOptions())
print(sorted(get_engine_class("placeholder").option_help or {}))
print(sorted(name for name in sys.modules if refused(name)))
"""


def test_an_engine_created_without_options_imports_no_pydantic_and_no_metadata() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _ENGINES_PATH], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["0 True", "['processes']", "[]"]


def test_the_guard_catches_an_import_of_pydantic(tmp_path: Path) -> None:
    """The check above can fail: the same script, with an engine whose module imports
    pydantic, stops at that import."""
    (tmp_path / "heavy_engine.py").write_text("import pydantic.main\n", encoding="utf-8")
    script = _ENGINES_PATH.replace(
        "from imagegen.engines import", "import heavy_engine\nfrom imagegen.engines import"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "the engines' path imported pydantic" in done.stderr


# --- the built-in engines ---------------------------------------------------------------------


def test_the_built_in_engines_are_a_table_not_package_metadata() -> None:
    from importlib.metadata import distribution

    assert engines.BUILT_IN == {
        "diffusers": "imagegen.engines.diffusers:DiffusersEngine",
        "placeholder": "imagegen.engines.placeholder:PlaceholderEngine",
    }
    own = distribution("imagegen").entry_points.select(group=engines.ENTRY_POINT_GROUP)
    assert list(own) == []  # one place for them: the table
    available = engines.available_engines()
    assert {name: available[name] for name in engines.BUILT_IN} == engines.BUILT_IN
    assert engines.get_engine_class("placeholder") is PlaceholderEngine


class _Impostor(PlaceholderEngine):
    name = "impostor"


def test_a_plugin_cannot_take_a_built_in_name(
    register_engine: Callable[[str, str], None],
) -> None:
    register_engine("placeholder", f"{__name__}:_Impostor")
    register_engine("impostor", f"{__name__}:_Impostor")
    assert engines.get_engine_class("placeholder") is PlaceholderEngine
    assert engines.get_engine_class("impostor") is _Impostor
    available = engines.available_engines()
    assert available["placeholder"] == engines.BUILT_IN["placeholder"]
    assert available["impostor"] == f"{__name__}:_Impostor"
    assert list(available) == sorted(available)
    listing = CliRunner().invoke(cli, ["engines", "--json"])
    assert listing.exit_code == 0, listing.output
    rows = [(row["name"], row["target"]) for row in json.loads(listing.stdout)]
    assert ("placeholder", engines.BUILT_IN["placeholder"]) in rows
    assert ("impostor", f"{__name__}:_Impostor") in rows
    assert [name for name, _ in rows].count("placeholder") == 1


def test_an_unknown_engine_lists_plugins_and_built_ins(
    register_engine: Callable[[str, str], None],
) -> None:
    register_engine("impostor", f"{__name__}:_Impostor")
    with pytest.raises(ConfigurationError) as caught:
        engines.get_engine_class("nope")
    assert caught.value.message == (
        "Unknown engine 'nope'. Installed engines: diffusers, impostor, placeholder."
    )


# --- options as dataclass fields --------------------------------------------------------------


class _Mosaic(engines.Engine):
    """An engine that declares typed options with `option`, as a plugin would."""

    name = "mosaic"

    class Options(EngineOptions):
        block: int = option(default=32, help="tile size in pixels", ge=4, le=256)
        palette: Literal["sea", "earth"] = option(default="sea", help="colour palette")
        gap: int | None = option(default=None, help="px", ge=0, le=8, aliases=("spacing",))
        title: str = option(default="", help="caption", max_length=20)
        scale: float = option(default=1.0, help="zoom", ge=0.5, le=4)

    def generate(self, job: engines.Job, on_partial: Any = None) -> engines.EngineResult:
        raise AssertionError("never called")

    edit = generate

    def vary(self, job: engines.Job) -> engines.EngineResult:
        raise AssertionError("never called")


def test_declared_options_are_frozen_dataclasses_with_their_defaults() -> None:
    defaults = _Mosaic.Options()
    assert dataclasses.asdict(defaults) == {
        "block": 32,
        "palette": "sea",
        "gap": None,
        "title": "",
        "scale": 1.0,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        defaults.block = 8  # type: ignore[misc]
    assert _Mosaic(options={}).parse_options({}) == defaults
    assert _Mosaic.option_help == {
        "block": "tile size in pixels",
        "palette": "colour palette",
        "gap": "px",
        "title": "caption",
        "scale": "zoom",
    }


def test_given_options_are_parsed_by_their_types() -> None:
    parsed = _Mosaic.parse_options({"block": "16", "spacing": "2", "scale": "2.5"})
    assert isinstance(parsed, _Mosaic.Options)
    assert (parsed.block, parsed.gap, parsed.scale, parsed.palette) == (16, 2, 2.5, "sea")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"block": "2"}, "Invalid option block='2' for the mosaic engine: "
         "must be a whole number from 4 to 256."),
        ({"palette": "sky"}, "Invalid option palette='sky' for the mosaic engine: "
         "use one of sea, earth."),
        ({"spacing": "9"}, "Invalid option spacing='9' for the mosaic engine: "
         "must be a whole number from 0 to 8."),
        ({"title": "x" * 21}, f"Invalid option title={'x' * 21!r} for the mosaic engine: "
         "must be text of at most 20 characters."),
        ({"scale": "nan"}, "Invalid option scale='nan' for the mosaic engine: "
         "must be a number from 0.5 to 4."),
        ({"blocks": "8"}, "Unknown option 'blocks' for the mosaic engine, which takes block, "
         "gap, palette, scale and title (spacing is accepted for gap)."),
    ],
)  # fmt: skip
def test_declared_options_refuse_in_the_engines_words(
    options: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _Mosaic(options=options)
    assert caught.value.message == message
    assert caught.value.param == "options"


def test_an_option_needs_a_default() -> None:
    with pytest.raises(TypeError, match="Option block of .*Needy needs a default"):

        class Needy(EngineOptions):
            block: int


def test_no_fields_means_no_options() -> None:
    class Bare(_Mosaic):
        Options = EngineOptions

    assert Bare.option_help == {}
    with pytest.raises(ConfigurationError) as caught:
        Bare(options={"block": "4"})
    assert caught.value.message == (
        "Unknown option 'block': the mosaic engine takes no options; leave it out."
    )


class _Legacy(_Mosaic):
    """Options declared the pydantic way, as `EngineOptions` subclasses were before."""

    class Options(EngineOptions):
        block: int = Field(32, ge=4, le=256, description="tile size in pixels")
        tint: str = Field("none", description="colour")

        @field_validator("tint", mode="before")
        @classmethod
        def _known(cls, value: str) -> str:
            if value.strip().lower() not in ("none", "warm", "cold"):
                raise ValueError("use none, warm or cold")
            return value.strip().lower()


def test_options_declared_with_pydantic_fields_keep_working() -> None:
    assert _Legacy.option_help == {"block": "tile size in pixels", "tint": "colour"}
    assert _Legacy.Options() == _Legacy.Options(block=32, tint="none")
    parsed = _Legacy.parse_options({"block": "8", "tint": " WARM "})
    assert isinstance(parsed, _Legacy.Options)
    assert (parsed.block, parsed.tint) == (8, "warm")
    for options, message in (
        ({"block": "300"}, "must be a whole number from 4 to 256."),
        ({"tint": "red"}, "use none, warm or cold."),
    ):
        with pytest.raises(ConfigurationError) as caught:
            _Legacy(options=options)
        assert caught.value.message.endswith(message)
