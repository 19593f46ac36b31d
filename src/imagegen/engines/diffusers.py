"""The `diffusers` engine: Stable Diffusion and other diffusers pipelines, on GPU or CPU.

```
imagegen serve --engine diffusers --model stabilityai/sd-turbo
imagegen serve --engine diffusers --model ./my-model-folder -o steps=4 -o device=cuda:1
```

- **Generations** run `AutoPipelineForText2Image`.
- **Edits** with a region (a mask, or the image's own transparency) run
  `AutoPipelineForInpainting.from_pipe`, which shares the loaded weights; the pixels outside the
  region are then pasted back from the input, so they come out exactly as they went in. Edits
  without a region run `AutoPipelineForImage2Image.from_pipe` over the whole image. Only the
  first input image is used.
- **Variations** run `StableDiffusionImageVariationPipeline` when that is the loaded model, else
  image-to-image from the input with an empty prompt; every image gets its own seed.

Transparent inputs are flattened onto white first (the VAE sees RGB). Any size up to
`max_size` is served: the pipeline runs at the nearest size it accepts and the result is
resized to exactly the requested one. Image `i` of a request is seeded `seed + i`.
`background=transparent` is refused: these models paint opaque images only.

torch and diffusers are imported by `load()`, never when this module is imported. The settings
(per-family defaults, `-o` options, extra body fields) live in `_diffusers_options`; what runs
on the device (its worker thread, seeds, previews, token counts) in `_diffusers_runtime`. See
`docs/diffusers.md`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .._capabilities import Endpoint, ModelCapabilities
from .._errors import ConfigurationError, InvalidRequestError, MissingDependencyError
from . import Engine, EngineResult, Job, PartialCallback
from ._diffusers_options import (
    OPTION_HELP,
    EngineOptions,
    detect_family,
    parse_engine_options,
    request_settings,
)
from ._diffusers_runtime import (
    Loaded,
    Previews,
    count_tokens,
    device_key,
    device_worker,
    takes_step_callback,
)

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["DiffusersEngine"]

# torch is not in the extra: a bare requirement pulls a multi-GB CUDA build on any machine.
_INSTALL_STEPS = (
    "install a torch build for your hardware first (https://pytorch.org/get-started/locally/; "
    "on a machine without a GPU: pip install torch --index-url "
    "https://download.pytorch.org/whl/cpu), then pip install 'imagegen[diffusers]'."
)
INSTALL_HINT = "The diffusers engine needs torch, diffusers and transformers: " + _INSTALL_STEPS

_ALL_ENDPOINTS: frozenset[Endpoint] = frozenset({"generations", "edits", "variations"})


def _import_libraries() -> tuple[Any, Any]:
    try:
        import diffusers
        import torch
        import transformers  # noqa: F401 - every text pipeline needs it; fail here, clearly
    except ImportError as exc:
        missing = f" ({exc.name} is not installed)" if exc.name else ""
        raise MissingDependencyError(INSTALL_HINT + missing) from exc
    return torch, diffusers


@contextlib.contextmanager
def _bars_as_the_hub_says(diffusers: Any) -> Iterator[None]:
    """Hide diffusers' own "Loading pipeline components" bar while the Hugging Face switch
    (`HF_HUB_DISABLE_PROGRESS_BARS`, `huggingface_hub.utils.disable_progress_bars()`) hides
    the download bars: huggingface_hub and transformers follow it, diffusers' bar does not."""
    from huggingface_hub.utils.tqdm import are_progress_bars_disabled

    logging = diffusers.utils.logging
    if not (are_progress_bars_disabled() and logging.is_progress_bar_enabled()):
        yield
        return
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.enable_progress_bar()


def _model_name(model: str) -> str:
    """What `GET /v1/models` shows: a folder's name, or the hub id as given."""
    path = Path(model).expanduser()
    return path.resolve().name if path.is_dir() else model


def _looks_like_path(model: str) -> bool:
    # Hub ids are `name` or `owner/name`, starting with a letter or digit: these are paths.
    return model.startswith((".", "/", "~", "\\")) or "\\" in model or model.count("/") > 1


def _local_folder(model: str) -> Path | None:
    """The pipeline folder `model` names, or None for a hub id; a path that is no pipeline
    folder raises `ConfigurationError(param="model")`. Reads the file system only."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ConfigurationError(
                f"{model} has no model_index.json: give the folder of a diffusers pipeline, as "
                "`save_pretrained` writes it or as it is laid out on the hub.",
                param="model",
            )
        return path
    if path.exists():
        raise ConfigurationError(
            f"{model} is a file; the diffusers engine loads a pipeline folder (with "
            "model_index.json) or a hub id, not a single checkpoint file.",
            param="model",
        )
    if _looks_like_path(model):
        raise ConfigurationError(f"Model folder {model} does not exist.", param="model")
    return None


def _flatten(image: PILImage.Image) -> PILImage.Image:
    """RGB for the VAE: transparent pixels become white, opaque ones stay exactly as they are."""
    from PIL import Image

    if image.mode == "RGB":
        return image
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")


def _resized(image: PILImage.Image, size: tuple[int, int], *, mask: bool = False) -> PILImage.Image:
    from PIL import Image

    if image.size == size:
        return image
    # A mask stays binary; pictures are resampled smoothly.
    method = Image.Resampling.NEAREST if mask else Image.Resampling.LANCZOS
    return image.resize(size, method)


class DiffusersEngine(Engine):
    """Real images from a diffusers model on this machine's GPU or CPU."""

    name: ClassVar[str] = "diffusers"
    description: ClassVar[str] = "Stable Diffusion and other diffusers pipelines on GPU or CPU"
    requires: ClassVar[tuple[str, ...]] = ("torch", "diffusers", "transformers")
    install_hint: ClassVar[str] = _INSTALL_STEPS
    option_help: ClassVar[Mapping[str, str] | None] = OPTION_HELP

    def __init__(self, *, model: str | None = None, options: Mapping[str, str] | None = None):
        # Every check that needs no torch and no weights runs here, so a bad model or option
        # fails when the engine is created, not after a request (in process) or an import.
        if not model or not model.strip():
            raise ConfigurationError(
                "The diffusers engine needs a model: a local folder holding a diffusers "
                "pipeline (model_index.json) or a Hugging Face hub id such as "
                "stabilityai/sd-turbo.",
                param="model",
            )
        _local_folder(model.strip())
        super().__init__(model=model, options=options)
        self.model_path: str = model.strip()
        self.model_name = _model_name(self.model_path)
        self.settings: EngineOptions = parse_engine_options(self.options)
        self._loaded: Loaded | None = None
        self._load_lock = threading.Lock()

    @classmethod
    def check_options(cls, options: Mapping[str, str]) -> None:
        parse_engine_options(options)  # names in any case, aliases, and the values too

    # --- loading ---------------------------------------------------------------------------

    def models(self) -> list[ModelCapabilities]:
        endpoints = self._loaded.endpoints() if self._loaded else _ALL_ENDPOINTS
        return [
            ModelCapabilities(
                name=self.model_name,
                endpoints=endpoints,
                # Edits and variations keep the input's size unless the request names one.
                default_sizes={"edits": "auto", "variations": "auto"},
            )
        ]

    @property
    def pipeline(self) -> Any:
        """The loaded pipeline (text-to-image, or image-variation), loading it if needed.

        For customising it before serving, and for benchmarks. The edit pipelines share its
        components, so what changes them in place (LoRA weights loaded into the UNet) reaches
        every endpoint; replacing a component (`pipeline.scheduler = ...`) changes this one
        only. Calls made on it directly bypass the engine's per-device queue: make none while
        the engine serves requests.
        """
        self.load()
        assert self._loaded is not None
        return self._loaded.text2img or self._loaded.variation

    def load(self) -> None:
        with self._load_lock:
            if self._loaded is None:
                self._loaded = self._load()
                self.default_size = self._loaded.native_size

    def close(self) -> None:
        with self._load_lock:
            loaded, self._loaded = self._loaded, None
        if loaded is not None and loaded.device.startswith("cuda"):
            del loaded
            import torch

            torch.cuda.empty_cache()

    def _device(self, torch: Any) -> str:
        wanted = self.settings.device
        mps = getattr(torch.backends, "mps", None)
        has_mps = mps is not None and mps.is_available()
        if wanted == "auto":
            return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
        if wanted.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigurationError(
                f"Option device={wanted} asks for a CUDA GPU, but torch sees none (is a CUDA "
                "build of torch installed?); use device=cpu or leave device out.",
                param="options",
            )
        if wanted == "mps" and not has_mps:
            raise ConfigurationError(
                "Option device=mps asks for Apple's GPU, which torch does not see here; use "
                "device=cpu or leave device out.",
                param="options",
            )
        return wanted

    def _pretrained_source(self) -> tuple[str, dict[str, Any]]:
        folder = _local_folder(self.model_path)  # again: the folder may have gone since
        if folder is not None:
            # A folder never needs the network, whatever HF_HUB_OFFLINE says.
            return str(folder), {"local_files_only": True}
        return self.model_path, {}

    def _load(self) -> Loaded:
        torch, diffusers = _import_libraries()
        device = self._device(torch)
        dtype_name = self.settings.dtype
        if dtype_name == "auto":
            dtype_name = "float32" if device == "cpu" else "float16"
        dtype = getattr(torch, dtype_name)
        # diffusers renamed `torch_dtype` to `dtype` (and warns about the old name) in the
        # release that added this helper; `from_pipe` takes the same name and, without it,
        # casts the shared weights to float32.
        from diffusers.utils import deprecation_utils

        dtype_key = "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"
        source, kwargs = self._pretrained_source()
        if self.settings.variant:
            kwargs["variant"] = self.settings.variant
        try:
            with _bars_as_the_hub_says(diffusers):
                pipe = diffusers.DiffusionPipeline.from_pretrained(
                    source, **kwargs, **{dtype_key: dtype}
                )
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"Could not load the diffusers model {self.model_path!r}: {exc}", param="model"
            ) from exc
        pipe.to(device)

        scale = int(getattr(pipe, "vae_scale_factor", 8) or 8)
        unet = getattr(pipe, "unet", None)
        sample = getattr(getattr(unet, "config", None), "sample_size", None)
        sample = sample or getattr(pipe, "default_sample_size", None) or 1024 // scale
        if isinstance(sample, (list, tuple)):
            sample = sample[0]
        scheduler = type(getattr(pipe, "scheduler", None)).__name__
        loaded = Loaded(
            torch=torch,
            device=device,
            worker=device_worker(device_key(torch, device)),
            family=detect_family(self.model_path, type(pipe).__name__, scheduler),
            multiple=max(8, 2 * scale),
            native_size=(int(sample) * scale, int(sample) * scale),
        )
        if isinstance(pipe, diffusers.StableDiffusionImageVariationPipeline):
            loaded.variation = pipe
        else:
            in_channels = getattr(getattr(unet, "config", None), "in_channels", 4)
            if unet is not None and in_channels != 4:
                raise ConfigurationError(
                    f"{self.model_path} is a {type(pipe).__name__} whose UNet takes "
                    f"{in_channels} channels (a dedicated inpainting or upscaling checkpoint); "
                    "load its base text-to-image model instead.",
                    param="model",
                )
            try:
                loaded.text2img = diffusers.AutoPipelineForText2Image.from_pipe(
                    pipe, **{dtype_key: dtype}
                )
            except ValueError as exc:
                raise ConfigurationError(
                    f"{self.model_path} is a {type(pipe).__name__}, which is neither a "
                    f"text-to-image nor an image-variation pipeline: {exc}",
                    param="model",
                ) from exc
            for attr, auto in (
                ("img2img", diffusers.AutoPipelineForImage2Image),
                ("inpaint", diffusers.AutoPipelineForInpainting),
            ):
                # A family without such a pipeline simply does not declare the endpoint.
                with contextlib.suppress(ValueError):
                    setattr(loaded, attr, auto.from_pipe(pipe, **{dtype_key: dtype}))
        for each in (loaded.text2img, loaded.img2img, loaded.inpaint, loaded.variation):
            if each is not None:
                each.set_progress_bar_config(disable=True)  # a server prints no bars per call
        return loaded

    # --- requests --------------------------------------------------------------------------

    def resolve_auto_size(
        self, endpoint: Endpoint, input_size: tuple[int, int] | None
    ) -> tuple[int, int]:
        """The input's size (or the model's native one), scaled down to `max_size` per side,
        keeping its shape: `auto` never names a size that `check` then refuses."""
        width, height = super().resolve_auto_size(endpoint, input_size)
        scale = min(1.0, self.settings.max_size / max(width, height))
        return max(1, int(width * scale)), max(1, int(height * scale))

    def check(self, job: Job) -> None:
        if job.transparent:
            raise InvalidRequestError(
                "background=transparent is not supported by the diffusers engine: Stable "
                "Diffusion models paint opaque images only. Use background=opaque or auto.",
                param="background",
            )
        limit = self.settings.max_size
        if job.width > limit or job.height > limit:
            raise InvalidRequestError(
                f"Invalid size {job.size!r}: the diffusers engine makes images of at most {limit} "
                "pixels per side (its max_size option).",
                param="size",
            )

    def _start(self, job: Job) -> Loaded:
        self.check(job)  # again: callers may run a job built without the service
        self.load()
        assert self._loaded is not None
        return self._loaded

    def _unsupported(self, what: str) -> InvalidRequestError:
        return InvalidRequestError(
            f"The loaded model {self.model_name} cannot make {what}; it serves: "
            f"{', '.join(sorted(self._loaded.endpoints() if self._loaded else ()))}.",
            param="model",
        )

    def _settings(
        self,
        loaded: Loaded,
        job: Job,
        applies: tuple[str, ...],
        operation: str,
        strength: str | None = None,
    ) -> dict[str, Any]:
        return request_settings(
            loaded.family,
            self.settings.tuning,
            job.options,
            applies=applies,
            operation=operation,
            strength=strength,
        )

    def _run(
        self,
        loaded: Loaded,
        pipe: Any,
        job: Job,
        on_partial: PartialCallback | None,
        finish: Callable[[PILImage.Image], PILImage.Image],
        **inputs: Any,
    ) -> list[PILImage.Image]:
        kwargs = dict(inputs)
        kwargs.update(num_images_per_prompt=job.n, generator=loaded.generators(job))
        kwargs["output_type"] = "pil"
        if on_partial is not None and job.partial_images > 0 and takes_step_callback(pipe):
            kwargs["callback_on_step_end"] = Previews(
                loaded, job.partial_images, on_partial, finish
            )
            kwargs["callback_on_step_end_tensor_inputs"] = ["latents"]
        output = loaded.worker.submit(pipe, **kwargs).result()
        flagged = getattr(output, "nsfw_content_detected", None)
        if flagged and any(flagged):
            raise InvalidRequestError(
                f"The model's safety checker flagged {sum(map(bool, flagged))} of {len(flagged)} "
                "images; none are returned.",
                code="moderation_blocked",
            )
        return [finish(image) for image in output.images]

    def generate(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
        loaded = self._start(job)
        if loaded.text2img is None:
            raise self._unsupported("generations")
        settings = self._settings(
            loaded,
            job,
            ("num_inference_steps", "guidance_scale", "negative_prompt"),
            "generations",
        )
        width, height = loaded.working_size(job)
        images = self._run(
            loaded,
            loaded.text2img,
            job,
            on_partial,
            lambda image: _resized(image, (job.width, job.height)),
            prompt=job.prompt,
            width=width,
            height=height,
            **settings,
        )
        return EngineResult(images, usage=count_tokens(loaded.text2img, job.prompt))

    def edit(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
        loaded = self._start(job)
        source = _flatten(job.images[0])  # OpenAI edits the first image; so do we
        size = (job.width, job.height)
        width, height = loaded.working_size(job)
        applies = ("num_inference_steps", "guidance_scale", "negative_prompt", "strength")
        if job.mask is None:
            if loaded.img2img is None:
                raise self._unsupported("edits")
            pipe = loaded.img2img
            settings = self._settings(loaded, job, applies, "edits", "img2img")
            images = self._run(
                loaded,
                pipe,
                job,
                on_partial,
                lambda image: _resized(image, size),
                prompt=job.prompt,
                image=_resized(source, (width, height)),
                **settings,
            )
        else:
            if loaded.inpaint is None:
                raise self._unsupported("edits")
            pipe = loaded.inpaint
            settings = self._settings(loaded, job, applies, "edits", "inpaint")
            from PIL import Image

            original = _resized(source, size)
            region = _resized(job.mask, size, mask=True)

            def keep_outside(image: PILImage.Image) -> PILImage.Image:
                # The model repaints the whole frame; outside the region the input wins, so
                # those pixels are exactly the input's, whatever the VAE did to them.
                return Image.composite(_resized(image, size), original, region)

            images = self._run(
                loaded,
                pipe,
                job,
                on_partial,
                keep_outside,
                prompt=job.prompt,
                image=_resized(source, (width, height)),
                mask_image=_resized(job.mask, (width, height), mask=True),
                width=width,
                height=height,
                **settings,
            )
        return EngineResult(images, usage=count_tokens(pipe, job.prompt))

    def vary(self, job: Job) -> EngineResult:
        loaded = self._start(job)
        source = _flatten(job.images[0])
        width, height = loaded.working_size(job)
        finish = lambda image: _resized(image, (job.width, job.height))  # noqa: E731
        if loaded.variation is not None:
            settings = self._settings(
                loaded, job, ("num_inference_steps", "guidance_scale"), "variations"
            )
            images = self._run(
                loaded,
                loaded.variation,
                job,
                None,
                finish,
                image=source,
                width=width,
                height=height,
                **settings,
            )
            return EngineResult(images)
        if loaded.img2img is None:
            raise self._unsupported("variations")
        applies = ("num_inference_steps", "guidance_scale", "negative_prompt", "strength")
        settings = self._settings(loaded, job, applies, "variations", "variation")
        images = self._run(
            loaded,
            loaded.img2img,
            job,
            None,
            finish,
            prompt="",
            image=_resized(source, (width, height)),
            **settings,
        )
        return EngineResult(images)
