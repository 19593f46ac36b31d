"""The model catalogue (`catalogue.toml`): read into the capability table, and kept in step
with the official SDK installed beside it, so that a model upstream adds fails here instead of
reaching users as a 404."""

from __future__ import annotations

import sys
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pytest

from imagegen import _capabilities as capabilities
from imagegen._capabilities import (
    ENDPOINT_PARAMS,
    ENUMS,
    GIF,
    MODELS,
    CatalogueError,
    _capabilities,
    _resolve,
    check_retired,
    retirement_hint,
)
from imagegen._errors import InvalidRequestError


def missing_from_catalogue(image_model: Any) -> set[str]:
    """The names of the SDK's `ImageModel` literal that the catalogue lacks."""
    return set(typing.get_args(image_model)) - set(MODELS)


def literal_values(annotation: Any) -> set[str]:
    """The strings of a `Literal`, also inside `Optional[...]` / `Union[...]`."""
    if typing.get_origin(annotation) is Literal:
        return {value for value in typing.get_args(annotation) if isinstance(value, str)}
    found: set[str] = set()
    for arg in typing.get_args(annotation):
        found |= literal_values(arg)
    return found


def test_the_catalogue_ships_in_the_package() -> None:
    assert resources.files("imagegen").joinpath("catalogue.toml").is_file()


def test_the_catalogue_has_every_model_of_the_installed_sdk() -> None:
    image_model = pytest.importorskip("openai.types.image_model").ImageModel
    assert missing_from_catalogue(image_model) == set()


def test_the_check_fails_when_upstream_adds_a_model() -> None:
    newer = Literal["gpt-image-2.5-flare", "gpt-image-9-nova"]
    assert missing_from_catalogue(newer) == {"gpt-image-9-nova"}


def test_the_catalogue_takes_every_value_the_sdk_types() -> None:
    params = pytest.importorskip("openai.types.image_generate_params")
    edit_params = pytest.importorskip("openai.types.image_edit_params")
    hints = typing.get_type_hints(params.ImageGenerateParamsBase)
    for name in ("output_format", "background", "moderation", "complexity", "style"):
        assert literal_values(hints[name]) == set(ENUMS[name]), name
    qualities = {q for caps in MODELS.values() for q in caps.qualities or ()}
    assert literal_values(hints["quality"]) <= qualities
    reasoning = typing.get_type_hints(params.SvgReasoning)
    assert literal_values(reasoning["effort"]) == set(ENUMS["svg.reasoning.effort"])
    sdk_generate = set(hints) | {"stream"}
    sdk_edit = set(typing.get_type_hints(edit_params.ImageEditParamsBase)) | {"stream"}
    assert sdk_generate == ENDPOINT_PARAMS["generations"]
    # `moderation` is in OpenAI's JSON edit, which the SDK does not send.
    assert sdk_edit | {"moderation"} == ENDPOINT_PARAMS["edits"]


def test_the_models_follow_the_sdk_texts() -> None:
    for name in ("gpt-image-2.5-sunburst", "gpt-image-2.5-flare-2026-09-08"):
        caps = MODELS[name]
        assert caps.flexible_sizes and caps.qualities is not None
        assert {"xhigh", "max"} <= set(caps.qualities) and "markup" not in caps.unsupported
    for name in ("gpt-image-2", "gpt-image-1.5", "chatgpt-image-latest"):
        assert "xhigh" not in (MODELS[name].qualities or ())
        assert "markup" in MODELS[name].unsupported
    # The 2.6 models are listed without rules of their own: they get the 2.5 models' rules.
    assert MODELS["gpt-image-2.6-flare"].qualities == MODELS["gpt-image-2.5-flare"].qualities
    assert MODELS["gpt-image-2.6-sunburst"].flexible_sizes
    assert MODELS["gpt-image-1-mini"].choices == {"input_fidelity": ("low",)}
    assert (GIF.min_frames, GIF.max_frames, GIF.default_frames) == (2, 16, 9)


def test_retired_models_carry_a_date_and_replacements_that_are_current() -> None:
    retired = {name: caps.retired for name, caps in MODELS.items() if caps.retired}
    assert retired == {
        "gpt-image-1": "2026-10-23",
        "dall-e-2": "2026-05-12",
        "dall-e-3": "2026-05-12",
    }
    for name in retired:
        assert MODELS[name].replacement
        assert all(not MODELS[other].retired for other in MODELS[name].replacement)
    # A copy of a retired model's rules is not retired itself.
    assert MODELS["gpt-image-1.5"].retired is None and MODELS["gpt-image-1-mini"].retired is None


def test_the_retirement_hint_names_date_and_replacement() -> None:
    assert retirement_hint("gpt-image-1") == (
        "gpt-image-1 was retired by OpenAI on 2026-10-23; use gpt-image-2.5-sunburst or "
        "gpt-image-2.5-flare instead."
    )
    assert retirement_hint("gpt-image-2") is None
    assert retirement_hint("my-own-model") is None
    with pytest.raises(InvalidRequestError) as caught:
        check_retired("dall-e-2", "variations")
    error = caught.value
    assert (error.param, error.code) == ("model", "model_retired")
    assert "2026-05-12" in error.message and "no variations" in error.message
    check_retired("gpt-image-2.5-flare")


def test_like_copies_rules_but_not_retirement() -> None:
    raw = {
        "old": {"family": "gpt-image", "max_n": 4, "retired": "2026-01-01", "replacement": ["b"]},
        "new": {"like": "old", "max_prompt": 10},
        "newer": {"like": "new", "max_n": 2},
    }
    resolved = _resolve(raw)
    assert resolved["newer"] == {"family": "gpt-image", "max_n": 2, "max_prompt": 10}
    caps = _capabilities("newer", resolved["newer"])
    assert (caps.max_n, caps.max_prompt, caps.retired, caps.replacement) == (2, 10, None, ())


@pytest.mark.parametrize(
    "raw",
    [
        {"a": {"like": "nowhere"}},
        {"a": {"like": "b"}, "b": {"like": "a"}},
        {"a": {"max_prompts": 3}},
    ],
    ids=["unknown base", "circular", "misspelt field"],
)
def test_a_broken_catalogue_is_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(CatalogueError):
        _resolve(raw)


@pytest.fixture
def toml_beside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A catalogue file in `tmp_path`, cached in its `__pycache__` (no prefix)."""
    monkeypatch.setattr(sys, "pycache_prefix", None)
    return tmp_path / "catalogue.toml"


def test_the_parsed_catalogue_is_cached_beside_the_bytecode(
    toml_beside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Read as Python reads a module: parsed once, then loaded from the cache while the file
    # keeps its time and size; a changed file, or a cache that is not one, is parsed again.
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    source = toml_beside
    source.write_text('[gif]\nmin_frames = 2\n# a comment\nnames = ["a", "b"]\n')
    first = capabilities._read_catalogue(str(source))
    assert first == {"gif": {"min_frames": 2, "names": ["a", "b"]}}
    cache = Path(capabilities._cache_path(str(source)))
    assert cache.parent == source.parent / "__pycache__" and cache.exists()

    def no_parse(text: str) -> dict[str, Any]:
        raise AssertionError("parsed again")

    with monkeypatch.context() as patched:
        patched.setattr(capabilities, "_parse", no_parse)
        assert capabilities._read_catalogue(str(source)) == first
    source.write_text('[gif]\nmin_frames = 3\nnames = ["a"]\n')
    assert capabilities._read_catalogue(str(source)) == {"gif": {"min_frames": 3, "names": ["a"]}}
    cache.write_bytes(b"not marshal data")
    assert capabilities._read_catalogue(str(source))["gif"]["min_frames"] == 3


def test_no_cache_is_written_where_python_writes_no_bytecode(
    toml_beside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    source = toml_beside
    source.write_text("[gif]\nmin_frames = 2\n")
    assert capabilities._read_catalogue(str(source)) == {"gif": {"min_frames": 2}}
    assert not (source.parent / "__pycache__").exists()
    # A folder that cannot take one (here: a file where the cache folder would be) is no error.
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    (source.parent / "__pycache__").write_text("")
    assert capabilities._read_catalogue(str(source)) == {"gif": {"min_frames": 2}}
