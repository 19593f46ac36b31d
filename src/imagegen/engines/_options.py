"""Engine options (`-o name=value`): a dataclass per engine, and the errors that name them.

An engine declares the options it reads as a subclass of `EngineOptions`, one field each:

```python
class Options(EngineOptions):
    block: int = option(default=32, help="tile size in pixels", ge=4, le=256, aliases=("tile",))
```

The subclass is made a frozen, keyword-only dataclass (`EngineOptions.__init_subclass__`),
so its defaults, its help and its names are plain Python: creating an engine with no options,
reading the defaults and listing the help (`imagegen engines`) import no pydantic, whose import
alone costs several times a bare Python start. Only when options are given does pydantic come
in: on the first parse, the fields are turned into a pydantic model (`_validator`, built once
per class), with `ge`, `le` and `max_length` as the `Field` constraints. Values arrive as text
(the command line, `IMAGEGEN_ENGINE_OPTIONS`) and are parsed by the field's type, so a field's
annotation may also carry pydantic metadata (`Annotated[str, BeforeValidator(...)]`) in a module
that imports pydantic anyway: it is evaluated (`typing.get_type_hints`) only then.

A field may also be declared the way options were declared when `EngineOptions` was a pydantic
model, `block: int = Field(32, ge=4, description=..., validation_alias=AliasChoices(...))`,
with `field_validator`s: the `Field` is taken apart when the class is made (its default, its
description as the help line, the other spellings of its alias), and its rules and the
validators are handed to pydantic when options are parsed. With no options given, the defaults
are taken as declared, unvalidated (as pydantic does), unless the class has such validators.

An unknown name, or a value that breaks its field's rule, is one
`ConfigurationError(param="options")` in the words of `unknown_option_error` and `bad_option`.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, Union

from .._errors import ConfigurationError
from .._records import per_class, record
from .._types import dataclass_transform

if TYPE_CHECKING:
    from pydantic import BaseModel
    from pydantic.fields import FieldInfo

__all__ = [
    "EngineOptions",
    "bad_option",
    "listed",
    "option",
    "options_from_help",
    "unknown_option_error",
    "value_rule",
]

T = TypeVar("T")

# Keys of a field's `metadata`.
_HELP = "imagegen.help"  # the option's line of help
_ALIASES = "imagegen.aliases"  # other spellings of its name
_FIELD = "imagegen.field"  # what pydantic is given: a FieldInfo, or Field's keyword arguments


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
    from annotated_types import Ge, Le, MaxLen

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


def option(
    *,
    default: T,
    help: str,
    ge: float | None = None,
    le: float | None = None,
    max_length: int | None = None,
    aliases: tuple[str, ...] = (),
) -> T:
    """One option of an `EngineOptions` class: its default, its line of help, the bounds of its
    value (`ge`, `le`; `max_length` for text) and other spellings of its name."""
    bounds = {"ge": ge, "le": le, "max_length": max_length}
    field: T = dataclasses.field(
        default=default,
        metadata={
            _HELP: help,
            _ALIASES: aliases,
            _FIELD: {key: value for key, value in bounds.items() if value is not None},
        },
    )
    return field


def _pydantic(name: str) -> Any:
    """Class `name` of pydantic if pydantic is imported: an object of it can only exist then,
    and testing for one must not import pydantic."""
    module, _, attr = name.rpartition(".")
    return getattr(sys.modules.get(module), attr, None)


def _from_pydantic_field(info: Any) -> Any:
    """The dataclass field for a pydantic `Field(...)` given as a default."""
    alias = info.validation_alias
    choices = [str(choice) for choice in getattr(alias, "choices", ())]
    metadata = {_HELP: info.description or "", _ALIASES: tuple(choices), _FIELD: info}
    if info.default_factory is not None:
        return dataclasses.field(default_factory=info.default_factory, metadata=metadata)
    return dataclasses.field(default=info.default, metadata=metadata)


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(option,))
@record(frozen=True)
class EngineOptions:
    """Base of an engine's options: one field per option (see the module docstring).

    Names match exactly unless `option_name` says otherwise; `option(..., aliases=(...))`
    gives a field other spellings.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        field_info = _pydantic("pydantic.fields.FieldInfo")
        if field_info is not None:
            for name in cls.__dict__.get("__annotations__", {}):
                value = cls.__dict__.get(name)
                if isinstance(value, field_info):
                    setattr(cls, name, _from_pydantic_field(value))
        record(frozen=True, kw_only=True)(cls)
        for each in dataclasses.fields(cls):
            if each.default is dataclasses.MISSING and each.default_factory is dataclasses.MISSING:
                raise TypeError(f"Option {each.name} of {cls.__qualname__} needs a default.")

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
        fields = dataclasses.fields(cls)
        names = {each.name: each.name for each in fields}
        for each in fields:
            names.update({alias: each.name for alias in each.metadata.get(_ALIASES, ())})
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
                raise unknown_option_error(engine, raw_name, _help(cls), cls._note())
            given[field] = (raw_name, str(raw_value))
        if not given and not _validators(cls):
            return cls()  # the defaults, as declared: no pydantic
        from pydantic import ValidationError

        model = _validator(cls)
        try:
            parsed = model.model_validate({field: value for field, (_, value) in given.items()})
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0])
        else:
            return cls(**{field: getattr(parsed, field) for field in model.model_fields})
        raw_name, value = given[field]
        cause = (error.get("ctx") or {}).get("error")
        rule = str(cause) if isinstance(cause, ValueError) and str(cause) else None
        raise bad_option(
            engine, raw_name, value.strip(), rule or value_rule(model.model_fields[field])
        )


@per_class
def _help(options: type[EngineOptions]) -> Mapping[str, str]:
    return {each.name: each.metadata.get(_HELP, "") for each in dataclasses.fields(options)}


@per_class
def _validators(options: type[EngineOptions]) -> dict[str, Any]:
    """The pydantic validators (`field_validator`, `model_validator`) of an options class
    declared the pydantic way, by name."""
    proxy = _pydantic("pydantic._internal._decorators.PydanticDescriptorProxy")
    if proxy is None:
        return {}
    found: dict[str, Any] = {}
    for each in reversed(options.__mro__):
        found.update({k: v for k, v in vars(each).items() if isinstance(v, proxy)})
    return found


@per_class
def _validator(options: type[EngineOptions]) -> type[BaseModel]:
    """The pydantic model that parses the values of `options` (by field name), built once."""
    from pydantic import ConfigDict, Field, create_model

    hints = typing.get_type_hints(options, include_extras=True)
    fields: dict[str, Any] = {}
    for each in dataclasses.fields(options):
        kind, declared = hints[each.name], each.metadata.get(_FIELD, {})
        default = (
            each.default if each.default_factory is dataclasses.MISSING else each.default_factory()
        )
        if isinstance(declared, dict):  # option(...)'s bounds
            fields[each.name] = (kind, Field(default, **declared))
        else:  # a pydantic Field: its rules, without its aliases (values come by field name)
            if declared.metadata:
                annotated = (kind, *declared.metadata)
                kind = Annotated[annotated]
            fields[each.name] = (kind, Field(default))
    return create_model(
        f"{options.__name__}Model",
        __config__=ConfigDict(allow_inf_nan=False),
        __validators__=_validators(options),
        __module__=options.__module__,
        **fields,
    )


def options_from_help(engine: str, help_lines: Mapping[str, str]) -> type[EngineOptions]:
    """The options class of an engine that lists its options as `{name: help line}`: each a
    text value, read by the engine from `self.options`."""
    namespace: dict[str, Any] = {
        name: option(default=None, help=line) for name, line in help_lines.items()
    }
    namespace["__annotations__"] = dict.fromkeys(help_lines, str | None)
    return type(f"{engine}Options", (EngineOptions,), namespace)
