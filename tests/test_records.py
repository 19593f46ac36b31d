"""`record` behaves as `dataclass` does, for everything the records of this package use."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import field
from typing import ClassVar

import pytest

from imagegen._records import record


@record()
class Point:
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)
    secret: str = field(default="", repr=False)
    seen: int = field(default=0, compare=False)
    kind: ClassVar[str] = "point"


@record(frozen=True)
class Frozen:
    name: str
    size: int = 1


@record(frozen=True, kw_only=True)
class Options:
    level: int = 3


@record(eq=False)
class Handle:
    value: int


@record()
class Checked:
    low: int
    high: int

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low > high")


@record(frozen=True)
class Child(Frozen):
    extra: str = "x"


def test_arguments_by_position_and_keyword_with_defaults() -> None:
    point = Point(1, tags=["a"])
    assert (point.x, point.y, point.tags, point.secret) == (1, 0, ["a"], "")
    assert Point(1).tags is not Point(1).tags  # a factory's value is made for each record
    assert Child("a", 2, "z") == Child(name="a", size=2, extra="z")
    with pytest.raises(TypeError, match="missing required argument: 'x'"):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        Point(1, z=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values for argument 'x'"):
        Point(1, x=2)  # type: ignore[misc]
    with pytest.raises(TypeError, match="takes 5 positional arguments but 6"):
        Point(1, 2, [], "", 0, 9)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes 0 positional"):
        Options(4)  # type: ignore[call-arg]


def test_repr_eq_and_hash_follow_the_fields() -> None:
    assert repr(Point(1, 2, secret="key")) == "Point(x=1, y=2, tags=[], seen=0)"
    assert Point(1, seen=5) == Point(1, seen=9) and Point(1) != Point(2)
    assert Point(1) != Frozen("1")  # type: ignore[comparison-overlap]
    assert Point(1).__eq__(object()) is NotImplemented
    with pytest.raises(TypeError, match="unhashable"):
        hash(Point(1))
    assert hash(Frozen("a", 2)) == hash(Frozen("a", 2)) and {Frozen("a"), Frozen("a")} == {
        Frozen("a")
    }
    one, two = Handle(1), Handle(1)
    assert one != two and one == one and len({one, two}) == 2  # identity


def test_frozen_records_refuse_changes() -> None:
    frozen = Frozen("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        frozen.name = "b"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del frozen.name
    point = Point(1)
    point.x = 2
    assert point.x == 2


def test_post_init_runs() -> None:
    assert Checked(1, 2).high == 2
    with pytest.raises(ValueError, match="low > high"):
        Checked(3, 2)


def test_dataclass_functions_and_pickling_work() -> None:
    point = Point(1, 2, ["t"], "s", 3)
    assert [each.name for each in dataclasses.fields(point)] == ["x", "y", "tags", "secret", "seen"]
    assert dataclasses.asdict(point) == {"x": 1, "y": 2, "tags": ["t"], "secret": "s", "seen": 3}
    assert dataclasses.replace(Frozen("a"), size=5) == Frozen("a", 5)
    options = Options(level=1)
    assert Options().level == 3 and dataclasses.is_dataclass(options)
    for each in (point, Frozen("a", 2), Child("b"), options):
        assert pickle.loads(pickle.dumps(each)) == each


def test_init_false_fields_are_refused() -> None:
    with pytest.raises(TypeError, match="init=False"):

        @record()
        class Bad:
            x: int = field(default=0, init=False)
