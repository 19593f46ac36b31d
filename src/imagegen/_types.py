"""Small shared types of the client: the "not given" sentinel, and the typing names that
Python 3.10 lacks."""

from __future__ import annotations

import sys
from typing import Final, Literal

# From `typing` where it has them: typing_extensions costs about 5 ms of every start.
if sys.version_info >= (3, 11):
    from typing import Required, TypedDict, Unpack, dataclass_transform
else:
    from typing_extensions import Required, TypedDict, Unpack, dataclass_transform

__all__ = ["NOT_GIVEN", "NotGiven", "Required", "TypedDict", "Unpack", "dataclass_transform"]


class NotGiven:
    """The type of `NOT_GIVEN`: "the caller did not set this".

    Needed where `None` already means something (`timeout=None` is "no limit"), and used for every
    request parameter so that only what the caller set goes on the wire.
    """

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __reduce__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()
