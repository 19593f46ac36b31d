from __future__ import annotations

import sys
from typing import Any, ClassVar

import pytest

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
    monkeypatch: pytest.MonkeyPatch, target: str, error: type[Exception]
) -> None:
    monkeypatch.setitem(engines._BUILTIN, "broken", target)
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


def test_missing_dependencies_are_found_without_importing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _NeedsModules.missing_dependencies() == [
        "imagegen_no_such_module",
        "imagegen_no_such_package.sub",
    ]
    assert "imagegen_no_such_package" not in sys.modules
    monkeypatch.setitem(engines._BUILTIN, "needs", f"{__name__}:_NeedsModules")
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
