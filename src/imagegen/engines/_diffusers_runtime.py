"""What runs on the device for the diffusers engine: the loaded pipelines and their device
worker, seeds, working sizes, previews decoded from the latents, and token counts.

torch is never imported here: the loaded module is handed in (`Loaded.torch`), so importing
this module stays as cheap as importing the engine.
"""

from __future__ import annotations

import copy
import inspect
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._capabilities import Endpoint
from .._models import ImagesUsage, InputTokensDetails
from . import Job, PartialCallback
from ._diffusers_batching import DeviceWorker
from ._diffusers_options import Family

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = [
    "SEED_MODULUS",
    "Loaded",
    "Previews",
    "TokenCounter",
    "device_key",
    "partial_steps",
    "takes_step_callback",
]

SEED_MODULUS = 2**63  # torch seeds are 64-bit; larger or negative seeds wrap


def device_key(torch: Any, device: str, repeat: int = 1) -> str:
    """The worker's name: `cuda` and `cuda:0` are one device, and share one worker; the
    second worker asked for on one device (`cpu,cpu`) is `cpu#2`."""
    if device == "cuda":
        device = f"cuda:{torch.cuda.current_device()}"
    return device if repeat == 1 else f"{device}#{repeat}"


def partial_steps(total: int, count: int) -> list[int]:
    """Evenly spaced step indices for `count` previews of `total` steps, the last one excluded
    (it is the final image). Fewer steps than previews gives fewer previews, as OpenAI may."""
    steps = {(k + 1) * total // (count + 1) - 1 for k in range(count)}
    return sorted(step for step in steps if 0 <= step < total - 1)


@dataclass
class Loaded:
    """What `load()` made: the pipelines (sharing one set of weights) and their device."""

    torch: Any
    device: str
    worker: DeviceWorker  # runs every pipeline call on this device, one at a time
    family: Family
    multiple: int  # sizes the pipelines accept are multiples of this
    native_size: tuple[int, int]
    tokens: TokenCounter
    text2img: Any = None
    img2img: Any = None
    inpaint: Any = None
    variation: Any = None

    def endpoints(self) -> frozenset[Endpoint]:
        if self.variation is not None:
            return frozenset({"variations"})
        found: set[Endpoint] = {"generations"}
        if self.img2img is not None:
            found.add("variations")
            if self.inpaint is not None:
                found.add("edits")
        return frozenset(found)

    def working_size(self, job: Job) -> tuple[int, int]:
        """The nearest size the model accepts; the result is resized to the job's size."""
        m = self.multiple
        return max(m, (job.width + m // 2) // m * m), max(m, (job.height + m // 2) // m * m)

    def generators(self, job: Job) -> list[Any]:
        base = job.seed if job.seed is not None else secrets.randbits(63)
        # mps has no generator of its own; CPU generators are the documented choice there.
        where = "cpu" if self.device.startswith("mps") else self.device
        return [
            self.torch.Generator(device=where).manual_seed((base + i) % SEED_MODULUS)
            for i in range(job.n)
        ]


class Previews:
    """One job's previews: decodes its latents at evenly spaced steps into partial images."""

    def __init__(
        self,
        loaded: Loaded,
        count: int,
        on_partial: PartialCallback,
        finish: Callable[[PILImage.Image], PILImage.Image],
    ) -> None:
        self.loaded = loaded
        self.count = count
        self.on_partial = on_partial
        self.finish = finish

    def __call__(self, pipe: Any, step: int, latents: Any) -> None:
        total = getattr(pipe, "num_timesteps", None) or 0
        plan = partial_steps(int(total), self.count)
        if step in plan:
            for index, image in enumerate(self.decode(pipe, latents)):
                self.on_partial(index, plan.index(step), self.finish(image))

    def decode(self, pipe: Any, latents: Any) -> list[PILImage.Image]:
        torch = self.loaded.torch
        if latents.ndim != 4:  # packed latents (Flux and kin) need the pipeline's own unpacking
            return []
        vae = pipe.vae
        config = vae.config
        # SDXL's VAE overflows in float16; its pipeline decodes in float32, and so do we.
        upcast = vae.dtype == torch.float16 and bool(getattr(config, "force_upcast", False))
        upcast = upcast and hasattr(pipe, "upcast_vae")
        with torch.no_grad():
            if upcast:
                vae.to(dtype=torch.float32)
            try:
                latents = latents.to(vae.dtype)
                mean = getattr(config, "latents_mean", None)
                std = getattr(config, "latents_std", None)
                if mean is not None and std is not None:
                    shape = (1, len(mean), 1, 1)
                    mean_t = torch.tensor(mean).view(shape).to(latents.device, latents.dtype)
                    std_t = torch.tensor(std).view(shape).to(latents.device, latents.dtype)
                    latents = latents * std_t / config.scaling_factor + mean_t
                else:
                    latents = latents / config.scaling_factor
                    shift = getattr(config, "shift_factor", None)
                    if shift:
                        latents = latents + shift
                decoded = vae.decode(latents, return_dict=False)[0]
            finally:
                if upcast:
                    vae.to(dtype=torch.float16)
        images: list[PILImage.Image] = pipe.image_processor.postprocess(decoded, output_type="pil")
        return images


def takes_step_callback(pipe: Any) -> bool:
    parameters = inspect.signature(pipe.__call__).parameters
    return "callback_on_step_end" in parameters and "latents" in getattr(
        pipe, "_callback_tensor_inputs", ()
    )


class TokenCounter:
    """Counts a prompt's tokens as the text encoder receives them (start and end tokens
    included, cut at the model's limit); None when the pipeline has no tokenizer.

    It counts with its own copy of the tokenizer, one call at a time: a fast tokenizer keeps
    its padding and truncation settings on itself, so counting with the pipeline's own, from a
    request's thread, could change how the device thread pads a prompt mid-call (and with it
    the picture).
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = copy.deepcopy(tokenizer) if tokenizer is not None else None
        self._lock = threading.Lock()

    def __call__(self, prompt: str) -> ImagesUsage | None:
        tokenizer = self._tokenizer
        if tokenizer is None or not prompt:
            return None
        with self._lock:
            limit = tokenizer.model_max_length
            count = len(tokenizer(prompt, truncation=True, max_length=limit).input_ids)
        return ImagesUsage(
            input_tokens=count,
            total_tokens=count,
            input_tokens_details=InputTokensDetails(text_tokens=count),
        )
