from __future__ import annotations

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
