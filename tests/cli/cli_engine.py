"""An engine for the CLI tests: the placeholder engine, remembering how it was built."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from imagegen._capabilities import ModelCapabilities
from imagegen.engines.placeholder import PlaceholderEngine


class RecordingEngine(PlaceholderEngine):
    name: ClassVar[str] = "recording"
    built: ClassVar[list[tuple[str | None, dict[str, str]]]] = []

    def __init__(self, *, model: str | None = None, options: Mapping[str, str] | None = None):
        super().__init__(model=model, options=options)
        RecordingEngine.built.append((model, dict(options or {})))


class GenerateOnlyEngine(PlaceholderEngine):
    """An engine whose one model only generates: variations are refused for the model."""

    name: ClassVar[str] = "generate-only"

    def models(self) -> list[ModelCapabilities]:
        return [ModelCapabilities(name="gen-only", endpoints=frozenset({"generations"}))]
