"""What the lifespan sets up once and every request (and connection) reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from .._service import ImageService
from ._limits import BodyBudget, EngineGate, PixelBudget
from ._settings import ServerSettings
from ._storage import ImageStore

__all__ = ["STATE_KEY", "ServerState", "state_of"]

STATE_KEY = "imagegen"


@dataclass
class ServerState:
    settings: ServerSettings
    service: ImageService
    store: ImageStore
    gate: EngineGate
    # Decoding input images is CPU and memory heavy; only this many requests do it at once.
    decode_limiter: anyio.CapacityLimiter
    bodies: BodyBudget
    pixels: PixelBudget


def state_of(app_state: Mapping[str, Any] | None) -> ServerState | None:
    """The server's state from a lifespan state mapping (a request's `scope["state"]`, or the
    one uvicorn hands its protocols); `None` before the lifespan has started."""
    state = (app_state or {}).get(STATE_KEY)
    return state if isinstance(state, ServerState) else None
