"""An engine for the CLI tests: the placeholder engine, remembering how it was built."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from imagegen._capabilities import ModelCapabilities
from imagegen._errors import ConfigurationError
from imagegen.engines import EngineResult, Job, PartialCallback
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


class NeedsModelEngine(PlaceholderEngine):
    """An engine that, as diffusers does, needs a model folder and takes one option, blaming
    the argument at fault through `ConfigurationError.param`."""

    name: ClassVar[str] = "needs-model"

    def __init__(self, *, model: str | None = None, options: Mapping[str, str] | None = None):
        super().__init__(model=model, options=options)
        if not model:
            raise ConfigurationError("The needs-model engine needs a model folder.", param="model")
        unknown = sorted(set(self.options) - {"steps"})
        if unknown:
            raise ConfigurationError(f"Unknown option {unknown[0]!r}.", param="options")

    def load(self) -> None:
        if not Path(self.model or "").is_dir():
            raise ConfigurationError(f"Model folder {self.model} does not exist.", param="model")


class LeakyEngine(PlaceholderEngine):
    """An engine whose failure quotes a key from the environment, as a careless upstream
    library's message might."""

    name: ClassVar[str] = "leaky"

    def generate(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
        raise RuntimeError(f"upstream refused key {os.environ.get('OPENAI_API_KEY')}")
