"""Engine options (`-o name=value`): a pydantic model per engine, and the errors that name them.

An engine declares the options it reads as a subclass of `EngineOptions`, one field each; the
field's `description` is the option's line of help, its type and constraints the rule for its
value. Values arrive as text (the command line, `IMAGEGEN_ENGINE_OPTIONS`) and are parsed by
the field's type. An unknown name, or a value that breaks its field's rule, is one
`ConfigurationError(param="options")` in the words of `unknown_option_error` and `bad_option`.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, ClassVar, Literal, Union

from annotated_types import Ge, Le, MaxLen
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from .._errors import ConfigurationError

__all__ = [
    "EngineOptions",
    "bad_option",
    "listed",
    "options_from_help",
    "unknown_option_error",
    "value_rule",
]


def listed(names: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def unknown_option_error(
    engine: str, option: str, accepted: Iterable[str], note: str = ""
) -> ConfigurationError:
    """The error for option `option`, which engine `engine` does not take; `note` (in
    parentheses after the list) may name other spellings it accepts."""
    names = sorted(accepted)
    if not names:
        return ConfigurationError(
            f"Unknown option {option!r}: the {engine} engine takes no options; leave it out.",
            param="options",
        )
    return ConfigurationError(
        f"Unknown option {option!r} for the {engine} engine, which takes {listed(names)}"
        + (f" ({note})" if note else "")
        + ".",
        param="options",
    )


def bad_option(engine: str, name: str, value: str, rule: str) -> ConfigurationError:
    return ConfigurationError(
        f"Invalid option {name}={value!r} for the {engine} engine: {rule}.", param="options"
    )


def _parts(annotation: Any) -> tuple[list[Any], list[Any]]:
    """The types a (possibly optional, annotated) field annotation allows, and its metadata."""
    if typing.get_origin(annotation) is Annotated:
        kind, *metadata = typing.get_args(annotation)
        kinds, more = _parts(kind)
        return kinds, more + [m for item in metadata for m in getattr(item, "metadata", [item])]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        found: tuple[list[Any], list[Any]] = ([], [])
        for arg in typing.get_args(annotation):
            kinds, metadata = _parts(arg)
            found[0].extend(kinds)
            found[1].extend(metadata)
        return found
    return [annotation], []


def value_rule(field: FieldInfo) -> str:
    """A field's rule in words: `must be a whole number from 1 to 500`, `use one of a, b`."""
    kinds, metadata = _parts(field.annotation)
    metadata += field.metadata
    low = next((m.ge for m in metadata if isinstance(m, Ge)), None)
    high = next((m.le for m in metadata if isinstance(m, Le)), None)
    longest = next((m.max_length for m in metadata if isinstance(m, MaxLen)), None)
    literal = next((kind for kind in kinds if typing.get_origin(kind) is Literal), None)
    if literal is not None:
        return f"use one of {', '.join(typing.get_args(literal))}"
    if int in kinds:
        return f"must be a whole number from {low} to {high}"
    if float in kinds:
        return f"must be a number from {low:g} to {high:g}"
    if longest is not None:
        return f"must be text of at most {longest:,} characters"
    return "must be text"


class EngineOptions(BaseModel):
    """Base of an engine's options: one field per option, its `description` the help line.

    Names match exactly unless `option_name` says otherwise; a field may take other spellings
    with `validation_alias=AliasChoices(name, other)`.
    """

    # Built on first use: most engines are created with no options, which need no validator.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)
    # The spellings the unknown-option message mentions besides the field names.
    spellings_note: ClassVar[str] = ""

    @classmethod
    def option_name(cls, name: str) -> str:
        """The field name a given option name stands for (before aliases)."""
        return name

    @classmethod
    def help(cls) -> Mapping[str, str]:
        """`{name: help line}` of every option, as `imagegen engines` lists them."""
        return _help(cls)

    @classmethod
    def _names(cls) -> dict[str, str]:
        """Every accepted spelling (field names and aliases) -> its field."""
        names = {name: name for name in cls.model_fields}
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                names.update({str(choice): name for choice in alias.choices})
        return names

    @classmethod
    def _note(cls) -> str:
        names = cls._names()
        aliases = [alias for alias, name in names.items() if alias != name]
        if not aliases:
            return ""
        verb = "is" if len(aliases) == 1 else "are"
        return f"{listed(aliases)} {verb} accepted for {listed([names[a] for a in aliases])}"

    @classmethod
    def parse(cls, options: Mapping[str, Any], engine: str) -> EngineOptions:
        """The options of engine `engine`, parsed; a `ConfigurationError(param="options")`
        naming the first unknown name or bad value."""
        names = cls._names()
        given: dict[str, tuple[str, str]] = {}  # field -> (name as given, value)
        for raw_name, raw_value in options.items():
            field = names.get(cls.option_name(raw_name))
            if field is None:
                raise unknown_option_error(engine, raw_name, cls.model_fields, cls._note())
            given[field] = (raw_name, str(raw_value))
        if not given and _defaults_only(cls):
            return cls.model_construct()
        try:
            return cls.model_validate({field: value for field, (_, value) in given.items()})
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0])
        raw_name, value = given[field]
        cause = (error.get("ctx") or {}).get("error")
        rule = str(cause) if isinstance(cause, ValueError) and str(cause) else None
        raise bad_option(
            engine, raw_name, value.strip(), rule or value_rule(cls.model_fields[field])
        )


@functools.cache
def _defaults_only(options: type[EngineOptions]) -> bool:
    """Whether validating no values at all gives the fields' defaults: no field is required and
    no validator of the model's own could refuse them."""
    decorators = options.__pydantic_decorators__
    return not any(info.is_required() for info in options.model_fields.values()) and not (
        decorators.validators
        or decorators.field_validators
        or decorators.root_validators
        or decorators.model_validators
    )


@functools.cache
def _help(options: type[EngineOptions]) -> Mapping[str, str]:
    return {name: field.description or "" for name, field in options.model_fields.items()}


def options_from_help(engine: str, help_lines: Mapping[str, str]) -> type[EngineOptions]:
    """The options model of an engine that lists its options as `{name: help line}`: each a
    text value, read by the engine from `self.options`."""
    fields: dict[str, Any] = {
        name: (str | None, Field(None, description=line)) for name, line in help_lines.items()
    }
    return create_model(f"{engine}Options", __base__=EngineOptions, **fields)
