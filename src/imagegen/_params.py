"""The keyword arguments of `generate`, `edit` and `create_variation`, declared once.

Each is a `TypedDict` that the methods take as `**params: Unpack[...]`, so a type checker (and
an editor) knows every argument, its type and that it is keyword-only, while the methods hold
no copy of the list. The names are OpenAI's wire names; `ImageRequest.build` turns the set ones
into the endpoint's request model, so each argument here is a field of `GenerateRequest`,
`EditRequest` or `VariationRequest` (a test keeps the two in step), apart from the files
(`mask`, `markup`) and the per-call `RequestOptions`.

`stream` and `partial_images` are declared three ways per method, so that type checkers see
`ImagesResult` when neither asks for a stream, `ImageStream` with `stream=True`, and either
otherwise (see the overloads in `_client`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from ._types import NotGiven, Required, TypedDict

if TYPE_CHECKING:
    import httpx2

    from ._imaging import ImageInput

__all__ = [
    "EditAnyParams",
    "EditParams",
    "EditStreamParams",
    "GenerateAnyParams",
    "GenerateParams",
    "GenerateStreamParams",
    "RequestOptions",
    "VariationParams",
]


class RequestOptions(TypedDict, total=False):
    """Per call, not sent as parameters: extra headers (None removes one), query parameters
    and body fields (for options a method lacks, such as `seed`), and the timeout."""

    extra_headers: Mapping[str, str | None] | None
    extra_query: Mapping[str, str] | None
    extra_body: Mapping[str, Any] | None
    timeout: float | httpx2.Timeout | None | NotGiven


class VariationParams(RequestOptions, total=False):
    model: str | None | NotGiven
    n: int | None | NotGiven
    size: str | None | NotGiven
    response_format: str | None | NotGiven
    user: str | None | NotGiven


class _PromptParams(VariationParams, total=False):
    quality: str | None | NotGiven
    background: str | None | NotGiven
    moderation: str | None | NotGiven
    output_format: str | None | NotGiven
    output_compression: int | None | NotGiven
    safety_identifier: str | None | NotGiven
    complexity: str | None | NotGiven
    frame_count: int | None | NotGiven
    frame_duration_ms: int | None | NotGiven
    svg: Mapping[str, Any] | None | NotGiven


class _GenerateFields(_PromptParams, total=False):
    style: str | None | NotGiven


class _EditFields(_PromptParams, total=False):
    mask: ImageInput | None
    markup: ImageInput | None
    input_fidelity: str | None | NotGiven


class _NoStream(TypedDict, total=False):
    stream: Literal[False]
    partial_images: Literal[0] | None | NotGiven


class _Stream(TypedDict, total=False):
    stream: Required[Literal[True]]
    partial_images: int | None | NotGiven


class _EitherStream(TypedDict, total=False):
    stream: bool
    partial_images: int | None | NotGiven


# `generate` and `edit` return an `ImagesResult`, an `ImageStream`, or either.
class GenerateParams(_GenerateFields, _NoStream, total=False): ...


class GenerateStreamParams(_GenerateFields, _Stream, total=False): ...


class GenerateAnyParams(_GenerateFields, _EitherStream, total=False): ...


class EditParams(_EditFields, _NoStream, total=False): ...


class EditStreamParams(_EditFields, _Stream, total=False): ...


class EditAnyParams(_EditFields, _EitherStream, total=False): ...
