"""What HTTP headers can carry: checked before sending, since httpx2 encodes values as ASCII
and h11 refuses line breaks, which would otherwise surface mid-request as an encoding crash or
a "network" error. Used for extra headers and for keys, tokens, organization and project."""

from __future__ import annotations

import re

__all__ = ["header_problem", "header_value_problem"]

# RFC 9110's `token`, what h11 accepts as a header name.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _header_name_problem(name: object) -> str | None:
    """Why `name` cannot be an HTTP header name, or `None` if it can."""
    if not isinstance(name, str):
        return f"a header name must be text, not {type(name).__name__}"
    if not _TOKEN.fullmatch(name):
        return "a header name is letters, digits and !#$%&'*+-.^_`|~, without spaces"
    return None


def header_value_problem(value: object, *, spaces: bool = True) -> str | None:
    """Why `value` cannot be sent as an HTTP header value (`has a line break at position 3`),
    or `None` if it can; `spaces=False` refuses spaces too (no key or ID has any).

    The answer names the first bad character by its code point and position, never quoting
    the value: header values carry keys and tokens.
    """
    if not isinstance(value, str):
        return f"must be text, not {type(value).__name__}"
    for position, char in enumerate(value, start=1):
        if "!" <= char <= "~" or (spaces and char in " \t"):
            continue
        if char in " \t":
            kind = "a space"
        elif char in "\r\n":
            kind = "a line break"
        elif char.isascii():
            kind = f"the control character U+{ord(char):04X}"
        else:
            kind = f"the non-ASCII character U+{ord(char):04X}"
        return f"has {kind} at position {position}"
    return None


def header_problem(name: object, value: object) -> str | None:
    """Why `name: value` cannot be sent as an HTTP header, or `None` if it can."""
    problem = _header_name_problem(name)
    if problem is None and (problem := header_value_problem(value)) is not None:
        problem = f"its value {problem}"
    return problem
