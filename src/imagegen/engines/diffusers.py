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

Each device (`device=cuda:0,cuda:1`, or `auto`: every GPU) gets its own copy of the pipelines
and a worker thread; a request goes to the least busy device, where compatible requests may
share one pipeline call (`max_batch_size`, `batch_wait_ms`).

torch and diffusers are imported by `load()`, never when this module is imported. The settings
(per-family defaults, `-o` options, extra body fields) live in `_diffusers_options`; the device
workers and batching in `_diffusers_batching`; what runs on the device (seeds, previews, token
counts) in `_diffusers_runtime`. See `docs/diffusers.md`.
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
from ._diffusers_batching import PipelineCall, device_worker
from ._diffusers_options import (
    DiffusersOptions,
    detect_family,
    parse_engine_options,
    request_settings,
)
from ._diffusers_runtime import (
    Loaded,
    Previews,
    TokenCounter,
    device_key,
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
    Options = DiffusersOptions
    reports_calls: ClassVar[bool] = True  # a pipeline call may serve several requests

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
        self.settings = parse_engine_options(self.options)
        # One per device worker, each with its own copy of the pipelines; all alike.
        self._replicas: list[Loaded] = []
        self._load_lock = threading.Lock()
        self._dispatch_lock = threading.Lock()

    def capacity(self) -> int:
        """Devices times `max_batch_size`: the jobs that may run at once, every device making
        a full batch."""
        return max(1, len(self._replicas)) * self.settings.max_batch_size

    @property
    def _loaded(self) -> Loaded | None:
        """The first device's pipelines: what every device has (endpoints, sizes, family)."""
        replicas = self._replicas
        return replicas[0] if replicas else None

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
        the engine serves requests. With several devices this is the first one's; see
        `pipelines`.
        """
        return self.pipelines[0]

    @property
    def pipelines(self) -> list[Any]:
        """`pipeline` of every device, in the order of the `device` option, loading them if
        needed: customise each of them alike."""
        self.load()
        return [each.text2img or each.variation for each in self._replicas]

    def load(self) -> None:
        with self._load_lock:
            if not self._replicas:
                self._replicas = self._load()
                self.default_size = self._replicas[0].native_size

    def close(self) -> None:
        with self._load_lock:
            replicas, self._replicas = self._replicas, []
        if any(each.device.startswith("cuda") for each in replicas):
            del replicas
            import torch

            torch.cuda.empty_cache()

    def _devices(self, torch: Any) -> list[str]:
        wanted = self.settings.devices
        mps = getattr(torch.backends, "mps", None)
        has_mps = mps is not None and mps.is_available()
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if wanted == ("auto",):
            if gpus:
                return [f"cuda:{index}" for index in range(gpus)]
            return ["mps" if has_mps else "cpu"]
        for device in wanted:
            if device.startswith("cuda") and not gpus:
                raise ConfigurationError(
                    f"Option device={device} asks for a CUDA GPU, but torch sees none (is a "
                    "CUDA build of torch installed?); use device=cpu or leave device out.",
                    param="options",
                )
            if device.startswith("cuda:") and int(device[5:]) >= gpus:
                raise ConfigurationError(
                    f"Option device={device} names a GPU torch does not see: it sees {gpus} "
                    f"(cuda:0 to cuda:{gpus - 1}).",
                    param="options",
                )
            if device == "mps" and not has_mps:
                raise ConfigurationError(
                    "Option device=mps asks for Apple's GPU, which torch does not see here; use "
                    "device=cpu or leave device out.",
                    param="options",
                )
        return list(wanted)

    def _pretrained_source(self) -> tuple[str, dict[str, Any]]:
        folder = _local_folder(self.model_path)  # again: the folder may have gone since
        if folder is not None:
            # A folder never needs the network, whatever HF_HUB_OFFLINE says.
            return str(folder), {"local_files_only": True}
        return self.model_path, {}

    def _load(self) -> list[Loaded]:
        torch, diffusers = _import_libraries()
        replicas: list[Loaded] = []
        for device in self._devices(torch):
            # A device named twice (`cpu,cpu`) gets a second worker, and its own copy.
            repeat = 1 + sum(
                device_key(torch, each.device) == device_key(torch, device) for each in replicas
            )
            replicas.append(
                self._load_on(torch, diffusers, device, device_key(torch, device, repeat))
            )
        return replicas

    def _load_on(self, torch: Any, diffusers: Any, device: str, worker: str) -> Loaded:
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
        except (KeyError, AttributeError, TypeError) as exc:
            # What diffusers raises for a model_index.json it cannot follow: no `_class_name`,
            # a pipeline class it does not have (a newer release's), not an object at all.
            raise ConfigurationError(
                f"Could not load the diffusers model {self.model_path!r}: its model_index.json "
                f"names no pipeline diffusers {diffusers.__version__} can build "
                f"({type(exc).__name__}: {exc}); a newer diffusers may know it.",
                param="model",
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
            worker=device_worker(worker),
            family=detect_family(self.model_path, type(pipe).__name__, scheduler),
            multiple=max(8, 2 * scale),
            native_size=(int(sample) * scale, int(sample) * scale),
            tokens=TokenCounter(getattr(pipe, "tokenizer", None)),
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
        role: str,
        job: Job,
        on_partial: PartialCallback | None,
        finish: Callable[[PILImage.Image], PILImage.Image],
        settings: dict[str, Any],
        **inputs: Any,
    ) -> list[PILImage.Image]:
        """Make the job's images with the pipeline `role` (`text2img`, `img2img`...) of the
        least busy device, in one call shared with the compatible jobs queued there.

        `inputs` are what the pipeline takes one of per image (prompt, image, mask_image),
        given once for the job; `settings` must be equal for jobs to share a call, except the
        negative prompt, which is per image too.
        """
        shared = dict(settings)
        per_job = dict(inputs)
        if "negative_prompt" in shared:
            per_job["negative_prompt"] = shared.pop("negative_prompt")
        shared["output_type"] = "pil"
        with self._dispatch_lock:  # so that two jobs arriving together see each other's load
            loaded = min(self._replicas, key=lambda each: each.worker.load)
            pipe = getattr(loaded, role)
            per_image = {name: [value] * job.n for name, value in per_job.items()}
            per_image["generator"] = loaded.generators(job)
            wants_previews = on_partial is not None and job.partial_images > 0
            future = loaded.worker.call(
                PipelineCall(
                    pipe=pipe,
                    shared=shared,
                    per_image=per_image,
                    n=job.n,
                    on_step=(
                        Previews(loaded, job.partial_images, on_partial, finish)
                        if wants_previews and on_partial and takes_step_callback(pipe)
                        else None
                    ),
                    max_images=self.settings.max_batch_size,
                    wait=self.settings.batch_wait_ms / 1000,
                    report=self.report_call,
                )
            )
        made = future.result()
        if made.flagged and any(made.flagged):
            raise InvalidRequestError(
                f"The model's safety checker flagged {sum(made.flagged)} of {len(made.flagged)} "
                "images; none are returned.",
                code="moderation_blocked",
            )
        return [finish(image) for image in made.images]

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
            "text2img",
            job,
            on_partial,
            lambda image: _resized(image, (job.width, job.height)),
            {**settings, "width": width, "height": height},
            prompt=job.prompt,
        )
        return EngineResult(images, usage=loaded.tokens(job.prompt))

    def edit(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
        loaded = self._start(job)
        source = _flatten(job.images[0])  # OpenAI edits the first image; so do we
        size = (job.width, job.height)
        width, height = loaded.working_size(job)
        applies = ("num_inference_steps", "guidance_scale", "negative_prompt", "strength")
        if job.mask is None:
            if loaded.img2img is None:
                raise self._unsupported("edits")
            settings = self._settings(loaded, job, applies, "edits", "img2img")
            images = self._run(
                "img2img",
                job,
                on_partial,
                lambda image: _resized(image, size),
                settings,
                prompt=job.prompt,
                image=_resized(source, (width, height)),
            )
        else:
            if loaded.inpaint is None:
                raise self._unsupported("edits")
            settings = self._settings(loaded, job, applies, "edits", "inpaint")
            from PIL import Image

            original = _resized(source, size)
            region = _resized(job.mask, size, mask=True)

            def keep_outside(image: PILImage.Image) -> PILImage.Image:
                # The model repaints the whole frame; outside the region the input wins, so
                # those pixels are exactly the input's, whatever the VAE did to them.
                return Image.composite(_resized(image, size), original, region)

            images = self._run(
                "inpaint",
                job,
                on_partial,
                keep_outside,
                {**settings, "width": width, "height": height},
                prompt=job.prompt,
                image=_resized(source, (width, height)),
                mask_image=_resized(job.mask, (width, height), mask=True),
            )
        return EngineResult(images, usage=loaded.tokens(job.prompt))

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
                "variation",
                job,
                None,
                finish,
                {**settings, "width": width, "height": height},
                image=source,
            )
            return EngineResult(images)
        if loaded.img2img is None:
            raise self._unsupported("variations")
        applies = ("num_inference_steps", "guidance_scale", "negative_prompt", "strength")
        settings = self._settings(loaded, job, applies, "variations", "variation")
        images = self._run(
            "img2img",
            job,
            None,
            finish,
            settings,
            prompt="",
            image=_resized(source, (width, height)),
        )
        return EngineResult(images)
