from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import pytest
from pydantic import AliasChoices, Field

from imagegen import engines
from imagegen._errors import ConfigurationError, MissingDependencyError


def test_builtin_engines_are_listed() -> None:
    found = engines.available_engines()
    assert found["placeholder"] == "imagegen.engines.placeholder:PlaceholderEngine"
    assert "diffusers" in found


def test_unknown_engine_names_the_installed_ones() -> None:
    with pytest.raises(ConfigurationError, match="Unknown engine 'nope'.*placeholder"):
        engines.get_engine_class("nope")


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("imagegen.engines:NoSuchClass", ConfigurationError),
        ("json:loads", ConfigurationError),
        ("imagegen_no_such_module:Engine", MissingDependencyError),
    ],
)
def test_broken_registrations_are_configuration_errors(
    target: str,
    error: type[Exception],
    register_engine: Callable[[str, str], None],
) -> None:
    register_engine("broken", target)
    with pytest.raises(error, match="broken"):
        engines.get_engine_class("broken")


class _NeedsModules(engines.Engine):
    """An engine whose `load` would import modules that are not installed."""

    name = "needs"
    requires = ("imagegen_no_such_module", "json", "imagegen_no_such_package.sub")
    built: ClassVar[int] = 0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _NeedsModules.built += 1

    def generate(self, job: engines.Job, on_partial: Any = None) -> engines.EngineResult:
        raise AssertionError("never called")

    edit = generate

    def vary(self, job: engines.Job) -> engines.EngineResult:
        raise AssertionError("never called")


def test_missing_dependencies_are_found_without_importing(
    register_engine: Callable[[str, str], None],
) -> None:
    assert _NeedsModules.missing_dependencies() == [
        "imagegen_no_such_module",
        "imagegen_no_such_package.sub",
    ]
    assert "imagegen_no_such_package" not in sys.modules
    register_engine("needs", f"{__name__}:_NeedsModules")
    _NeedsModules.built = 0
    for make in (engines.create_engine, engines.load_engine):
        with pytest.raises(MissingDependencyError) as caught:
            make("needs")
        assert str(caught.value) == (
            "Engine 'needs' needs imagegen_no_such_module and imagegen_no_such_package.sub, "
            "which are not installed: install the packages that provide "
            "imagegen_no_such_module and imagegen_no_such_package.sub."
        )
    assert _NeedsModules.built == 0  # refused before the engine checked its model or options


def test_the_diffusers_engine_names_torch_and_its_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    cls = engines.get_engine_class("diffusers")
    assert cls.missing_dependencies() == ["torch"]
    with pytest.raises(MissingDependencyError) as caught:
        engines.create_engine("diffusers")  # before the engine asks for a model
    message = str(caught.value)
    assert message.startswith("Engine 'diffusers' needs torch, which is not installed: ")
    assert "--index-url https://download.pytorch.org/whl/cpu" in message
    assert message.endswith("then pip install 'imagegen[diffusers]'.")


def test_engines_without_requirements_miss_nothing() -> None:
    assert engines.get_engine_class("placeholder").missing_dependencies() == []
    assert (
        engines.missing_dependencies_message(engines.get_engine_class("placeholder"), "x") is None
    )


# --- declared options -------------------------------------------------------------------------


class _Tiles(engines.Engine):
    """An engine that reads two options, as a plugin would declare them."""

    name = "tiles"
    option_help: ClassVar[Mapping[str, str] | None] = {
        "block": "tile size in pixels",
        "palette": "name of a colour palette",
    }

    def generate(self, job: engines.Job, on_partial: Any = None) -> engines.EngineResult:
        raise AssertionError("never called")

    edit = generate

    def vary(self, job: engines.Job) -> engines.EngineResult:
        raise AssertionError("never called")


class _Undeclared(_Tiles):
    """A subclass that reads more options and has not declared them: it is given anything."""


class _Redeclared(_Tiles):
    option_help: ClassVar[Mapping[str, str] | None] = {**(_Tiles.option_help or {}), "gap": "px"}


class _Anything(engines.Engine):
    """A third-party engine written before options were declared."""

    generate = _Tiles.generate
    edit = _Tiles.edit
    vary = _Tiles.vary


def test_an_engine_takes_the_options_it_declares() -> None:
    engine = _Tiles(options={"block": "16", "palette": "sea"})
    assert engine.options == {"block": "16", "palette": "sea"}


def test_an_undeclared_option_is_refused_with_the_declared_ones(
    register_engine: Callable[[str, str], None],
) -> None:
    register_engine("tiles", f"{__name__}:_Tiles")
    bad = {"block": "16", "blocks": "8"}
    for make in (
        lambda: _Tiles(options=bad),
        lambda: engines.create_engine("tiles", options=bad),
        lambda: engines.load_engine("tiles", options=bad),
    ):
        with pytest.raises(ConfigurationError) as caught:
            make()
        assert caught.value.param == "options"
        assert caught.value.message == (
            "Unknown option 'blocks' for the tiles engine, which takes block and palette."
        )


def test_the_placeholder_engine_takes_only_processes() -> None:
    placeholder = engines.get_engine_class("placeholder")
    assert list(placeholder.option_help or {}) == ["processes"]
    assert placeholder(options={}).processes == 0  # the library draws in the calling thread
    assert placeholder(options={"processes": "3"}).processes == 3
    for options, message in (
        (
            {"steps": "abc"},
            "Unknown option 'steps' for the placeholder engine, which takes processes.",
        ),
        (
            {"processes": "-1"},
            "Invalid option processes='-1' for the placeholder engine: must be a whole number "
            "from 0 to 1024.",
        ),
    ):
        with pytest.raises(ConfigurationError) as caught:
            engines.create_engine("placeholder", options=options)
        assert caught.value.param == "options"
        assert caught.value.message == message


def test_serve_gives_the_placeholder_a_process_per_cpu() -> None:
    from imagegen.engines._placeholder_pool import usable_cpus

    placeholder = engines.get_engine_class("placeholder")
    cpus = usable_cpus()
    assert placeholder.serve_options() == ({"processes": str(cpus)} if cpus > 1 else {})
    assert _Anything.serve_options() == {}


def test_an_engine_that_declares_nothing_is_given_every_option() -> None:
    assert _Anything.option_help is None
    assert _Anything(options={"whatever": "1"}).options == {"whatever": "1"}


def test_a_declaration_is_not_inherited() -> None:
    # A subclass may read options its parent does not; until it declares its own, any passes.
    assert _Undeclared.option_help is None
    assert _Undeclared(options={"gap": "2"}).options == {"gap": "2"}
    placeholder = engines.get_engine_class("placeholder")
    subclass = type("Sub", (placeholder,), {})
    assert subclass(options={"steps": "4"}).options == {"steps": "4"}
    assert _Redeclared(options={"gap": "2", "block": "4"}).options["gap"] == "2"
    with pytest.raises(ConfigurationError, match="takes block, gap and palette"):
        _Redeclared(options={"gaps": "2"})


def test_check_options_may_check_values_too() -> None:
    class Checked(_Tiles):
        option_help = _Tiles.option_help

        @classmethod
        def check_options(cls, options: Mapping[str, str]) -> None:
            super().check_options(options)
            if not options.get("block", "1").isdigit():
                raise ConfigurationError("Option block must be a whole number.", param="options")

    with pytest.raises(ConfigurationError, match="whole number"):
        Checked(options={"block": "big"})
    with pytest.raises(ConfigurationError, match="Unknown option 'x'"):
        Checked(options={"x": "1"})


def test_unknown_option_error_lists_one_or_more_names() -> None:
    one = engines.unknown_option_error("e", "x", ["a"])
    assert one.message == "Unknown option 'x' for the e engine, which takes a."
    noted = engines.unknown_option_error("e", "x", ["b", "a"], "A is a too")
    assert noted.message == "Unknown option 'x' for the e engine, which takes a and b (A is a too)."


# --- options as a pydantic model --------------------------------------------------------------


class _Mosaic(engines.Engine):
    """An engine that declares typed options, as `Options` fields."""

    name = "mosaic"

    class Options(engines.EngineOptions):
        block: int = Field(32, ge=4, le=256, description="tile size in pixels")
        palette: Literal["sea", "earth"] = Field("sea", description="colour palette")
        gap: int | None = Field(
            None, ge=0, le=8, validation_alias=AliasChoices("gap", "spacing"), description="px"
        )

    generate = _Tiles.generate
    edit = _Tiles.edit
    vary = _Tiles.vary


def test_typed_options_are_parsed_and_listed() -> None:
    assert _Mosaic.option_help == {
        "block": "tile size in pixels",
        "palette": "colour palette",
        "gap": "px",
    }
    engine = _Mosaic(options={"block": "16", "spacing": "2"})
    assert engine.options == {"block": "16", "spacing": "2"}  # as given
    settings = engine.parse_options(engine.options)
    assert isinstance(settings, _Mosaic.Options)
    assert (settings.block, settings.palette, settings.gap) == (16, "sea", 2)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"block": "2"},
            "Invalid option block='2' for the mosaic engine: must be a whole number from 4 to 256.",
        ),
        (
            {"palette": "sky"},
            "Invalid option palette='sky' for the mosaic engine: use one of sea, earth.",
        ),
        (
            {"blocks": "8"},
            "Unknown option 'blocks' for the mosaic engine, which takes block, gap and palette "
            "(spacing is accepted for gap).",
        ),
    ],
)
def test_typed_options_refuse_in_the_engines_words(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _Mosaic(options=options)
    assert caught.value.message == message
    assert caught.value.param == "options"
