"""An engine for the in-process loading tests: the placeholder engine, with a `load` that
records itself and changes what the engine declares, as loading a real model does."""

from __future__ import annotations

from typing import ClassVar

from imagegen._capabilities import ModelCapabilities
from imagegen._errors import InvalidRequestError
from imagegen.engines import Job
from imagegen.engines.placeholder import PlaceholderEngine


class LoadingEngine(PlaceholderEngine):
    name: ClassVar[str] = "loading"
    events: ClassVar[list[str]] = []

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.loaded = False

    def load(self) -> None:
        LoadingEngine.events.append("load")
        self.loaded = True
        self.default_size = (64, 48)  # the model's own size, known once it is loaded

    def close(self) -> None:
        LoadingEngine.events.append("close")

    def models(self) -> list[ModelCapabilities]:
        # Before loading, every endpoint; the loaded model turns out to generate only.
        endpoints = frozenset({"generations"}) if self.loaded else None
        if endpoints is None:
            return [ModelCapabilities(name="loading-1")]
        return [ModelCapabilities(name="loading-1", endpoints=endpoints)]

    def check(self, job: Job) -> None:
        if job.transparent:
            raise InvalidRequestError("background=transparent is refused.", param="background")
