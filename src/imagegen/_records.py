"""`record`: `dataclasses.dataclass` without compiling methods for every class.

On Python 3.11 `dataclass` writes each class's `__init__`, `__repr__` and `__eq__` (frozen:
also `__setattr__`, `__delattr__` and `__hash__`) as source text and compiles every one: about
0.5 ms a class here, some 15 ms for the twenty-odd records that a one-image `imagegen generate`
loads, a tenth of the whole command. A `record` is the same dataclass (`dataclasses.fields`,
`asdict`, `replace` and pickling work; type checkers see the usual typed constructor, through
`dataclass_transform`) whose methods are shared by every record and read its table of fields.
An instance is made a little slower (a loop instead of straight-line code: about a
microsecond), which no record here is made often enough to show.

Supported: fields positional or keyword-only (`kw_only=True`), defaults and default
factories, `field(repr=False)` and `field(compare=False)`, `frozen=True` (hashable by its
compared fields), `eq=False` (compared and hashed by identity), `repr=False` (a `__repr__`
inherited, or none), `__post_init__`, and a `__repr__` or `__eq__` of the class's own. For
anything else (`InitVar`, `field(init=False)`, `order`, `slots`) use `dataclass` (`record`
refuses `init=False` fields when the class is made).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import MISSING, Field, field
from typing import Any, NamedTuple, TypeVar

from ._types import dataclass_transform

__all__ = ["per_class", "record"]

_T = TypeVar("_T")
_C = TypeVar("_C", bound=type)
_R = TypeVar("_R")


class _Spec(NamedTuple):
    positional: tuple[str, ...]  # the fields that may be given by position, in order
    init: tuple[tuple[str, Any, Any], ...]  # (name, default, default factory), in order
    shown: tuple[str, ...]  # in the repr
    compared: tuple[str, ...]  # in ==, and in the hash of a frozen record


@dataclass_transform(field_specifiers=(field, Field))
def record(
    *, frozen: bool = False, kw_only: bool = False, repr: bool = True, eq: bool = True
) -> Callable[[type[_T]], type[_T]]:
    """Make the decorated class a dataclass, as `@dataclass(frozen=..., kw_only=..., repr=...,
    eq=...)` would, with the shared methods of this module."""

    def make(cls: type[_T]) -> type[_T]:
        _name_fields(cls)
        dataclasses.dataclass(init=False, repr=False, eq=False, kw_only=kw_only)(cls)
        table = dataclasses.fields(cls)  # type: ignore[arg-type]
        if not all(each.init for each in table):
            raise TypeError(f"{cls.__qualname__}: record takes no init=False field")
        spec = _Spec(
            positional=tuple(each.name for each in table if not each.kw_only),
            init=tuple((each.name, each.default, each.default_factory) for each in table),
            shown=tuple(each.name for each in table if each.repr),
            compared=tuple(each.name for each in table if each.compare),
        )
        cls.__record__ = spec  # type: ignore[attr-defined]
        own = cls.__dict__
        cls.__init__ = _init  # type: ignore[method-assign]
        if repr and "__repr__" not in own:
            cls.__repr__ = _repr  # type: ignore[method-assign]
        if eq and "__eq__" not in own:
            cls.__eq__ = _eq  # type: ignore[method-assign]
            cls.__hash__ = _hash if frozen else None  # type: ignore[assignment]
        if frozen:
            cls.__setattr__ = _refuse_set  # type: ignore[method-assign]
            cls.__delattr__ = _refuse_delete  # type: ignore[method-assign]
        return cls

    return make


def per_class(make: Callable[[_C], _R]) -> Callable[[_C], _R]:
    """`make(cls)`, made once for each class (a record's instances are not hashable, so
    `functools.cache` does not type-check for its class)."""
    made: dict[_C, _R] = {}

    def get(cls: _C) -> _R:
        if cls not in made:
            made[cls] = make(cls)
        return made[cls]

    return get


def _name_fields(cls: type) -> None:
    """Give a class without a docstring the one `dataclass` would, `Name(field, ...)`:
    `dataclass` makes it with `inspect.signature`, whose first use compiles the tokenizer's
    regular expressions (5-10 ms of a start)."""
    if not cls.__doc__:
        cls.__doc__ = f"{cls.__name__}({', '.join(cls.__dict__.get('__annotations__', {}))})"


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    cls = type(self)
    spec: _Spec = cls.__record__
    if len(args) > len(spec.positional):
        raise TypeError(
            f"{cls.__qualname__}() takes {len(spec.positional)} positional arguments but "
            f"{len(args)} were given"
        )
    values = kwargs
    if args:
        values = dict(zip(spec.positional, args, strict=False))  # the rest: by keyword
        for name, value in kwargs.items():
            if name in values:
                raise TypeError(f"{cls.__qualname__}() got multiple values for argument {name!r}")
            values[name] = value
    fields = self.__dict__  # as object.__setattr__ would, frozen or not: no slots, no descriptors
    used = 0
    for name, default, factory in spec.init:
        value = values.get(name, MISSING)
        if value is not MISSING:
            used += 1
        elif default is not MISSING:
            value = default
        elif factory is not MISSING:
            value = factory()
        else:
            raise TypeError(f"{cls.__qualname__}() missing required argument: {name!r}")
        fields[name] = value
    if used < len(values):
        unknown = next(name for name in values if name not in fields)
        raise TypeError(f"{cls.__qualname__}() got an unexpected keyword argument {unknown!r}")
    post_init = getattr(self, "__post_init__", None)
    if post_init is not None:
        post_init()


def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in type(self).__record__.shown)
    return f"{type(self).__qualname__}({shown})"


def _compared(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, name) for name in type(self).__record__.compared)


def _eq(self: Any, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented  # type: ignore[no-any-return]  # mypy knows it only in __eq__
    same: bool = _compared(self) == _compared(other)
    return same


def _hash(self: Any) -> int:
    return hash(_compared(self))


def _refuse_set(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _refuse_delete(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
