"""The diffusers engine on tiny random-weight pipelines built by the tests, on the CPU, offline.

Driven three ways: through `ImageService` (what the server and the in-process client share),
through the server and the official `openai` SDK over a real socket, and through
`imagegen.Client(engine=...)`. The pictures are noise (random weights); what is checked is
everything around them: sizes, counts, seeds, preserved pixels, previews, options and errors.

These tests need torch, diffusers and transformers and fail without them; set
IMAGEGEN_SKIP_DIFFUSERS=1 to skip them explicitly on a machine that lacks them.
"""

from __future__ import annotations

import base64
import io
import os
import re
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imagegen._errors import ConfigurationError, InvalidRequestError, MissingDependencyError
from imagegen._imaging import load_input
from imagegen._models import (
    CompletedEvent,
    EditRequest,
    GenerateRequest,
    PartialImageEvent,
    VariationRequest,
)
from imagegen._service import ImageService, Rendered
from imagegen.engines import Job, get_engine_class
from imagegen.engines._diffusers_options import (
    OPTION_HELP,
    STANDARD,
    detect_family,
    parse_engine_options,
    request_settings,
)
from imagegen.engines._diffusers_runtime import partial_steps
from imagegen.engines.diffusers import INSTALL_HINT, DiffusersEngine

_SKIP = os.environ.get("IMAGEGEN_SKIP_DIFFUSERS") == "1"  # read before conftest clears IMAGEGEN_*

pytestmark = [
    pytest.mark.diffusers,
    pytest.mark.skipif(_SKIP, reason="IMAGEGEN_SKIP_DIFFUSERS=1: diffusers tests switched off"),
]

STEPS = "2"  # the test engines' server option: two denoising steps keep each call short


# --- fixtures ---------------------------------------------------------------------------------


def _loaded(folder: Path, **options: str) -> Iterator[DiffusersEngine]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        engine = DiffusersEngine(model=str(folder), options={"steps": STEPS, **options})
        engine.load()
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def sd_engine(model_folders: dict[str, Path]) -> Iterator[DiffusersEngine]:
    yield from _loaded(model_folders["sd"])


@pytest.fixture(scope="session")
def variation_engine(model_folders: dict[str, Path]) -> Iterator[DiffusersEngine]:
    yield from _loaded(model_folders["variation"])


@pytest.fixture(scope="session")
def sd(sd_engine: DiffusersEngine) -> ImageService:
    return ImageService(sd_engine)


# --- helpers ----------------------------------------------------------------------------------


def noise(size: tuple[int, int], seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def alpha_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    """OpenAI's mask: opaque everywhere, fully transparent (alpha 0) where the edit goes."""
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), box)
    return mask


def pixels(data: bytes) -> np.ndarray[Any, Any]:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def box_region(size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray[Any, Any]:
    region = np.zeros((size[1], size[0]), dtype=bool)
    region[box[1] : box[3], box[0] : box[2]] = True
    return region


def run(
    service: ImageService, endpoint: Any, request: Any, *images: Image.Image, mask: Any = None
) -> tuple[Job, Rendered]:
    inputs = [load_input(png(image)) for image in images]
    mask_input = load_input(png(mask), param="mask") if mask is not None else None
    job = service.prepare(endpoint, request, inputs, mask_input)
    return job, service.run(job)


# --- the libraries, lazily --------------------------------------------------------------------


def test_libraries_are_installed() -> None:
    """CI runs these tests with torch installed; a missing library fails here, loudly."""
    import diffusers
    import torch
    import transformers

    assert torch.__version__ and diffusers.__version__ and transformers.__version__


def test_importing_the_engine_loads_no_torch() -> None:
    code = (
        "import sys, imagegen.engines.diffusers as d; "
        "d.DiffusersEngine(model='some/model'); "
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_registered_under_its_entry_point() -> None:
    assert get_engine_class("diffusers") is DiffusersEngine


def test_missing_libraries_name_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "diffusers", None)  # `import diffusers` now fails
    engine = DiffusersEngine(model="stabilityai/sd-turbo")
    with pytest.raises(MissingDependencyError) as caught:
        engine.load()
    message = str(caught.value)
    assert "pip install 'imagegen[diffusers]'" in message
    assert "torch" in message and message.startswith(INSTALL_HINT)


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", [None, "", "   "])
def test_model_is_required(model: str | None) -> None:
    with pytest.raises(ConfigurationError, match="needs a model") as caught:
        DiffusersEngine(model=model)
    assert caught.value.param == "model"
    assert "--model" not in caught.value.message  # the command line names its own flag


def test_model_folder_errors_come_when_the_engine_is_created(tmp_path: Path) -> None:
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"\0" * 16)
    for model, text in [
        (str(tmp_path / "missing" / "model"), "does not exist"),
        ("./missing-model", "Model folder ./missing-model does not exist."),
        ("../missing-model", "does not exist"),
        ("a/b/c", "does not exist"),  # a hub id has one slash at most
        (str(tmp_path), "model_index.json"),
        (str(checkpoint), "single checkpoint file"),
    ]:
        with pytest.raises(ConfigurationError, match=re.escape(text)) as caught:
            DiffusersEngine(model=model)
        assert caught.value.param == "model"
    # A hub id is not looked up (nor the network touched) before the load.
    assert DiffusersEngine(model="imagegen-tests/no-such-model").model_name == (
        "imagegen-tests/no-such-model"
    )


def test_a_model_folder_gone_before_the_load_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model_index.json").write_text("{}")
    engine = DiffusersEngine(model=str(folder))
    (folder / "model_index.json").unlink()
    folder.rmdir()
    with pytest.raises(ConfigurationError, match="does not exist") as caught:
        engine.load()
    assert caught.value.param == "model"


def test_the_client_refuses_a_bad_model_folder_when_created(tmp_path: Path) -> None:
    import imagegen

    with pytest.raises(ConfigurationError, match="does not exist") as caught:
        imagegen.Client(engine="diffusers", engine_model=str(tmp_path / "nope"))
    assert caught.value.param == "model"
    with pytest.raises(ConfigurationError, match="Unknown option 'sampler'") as caught:
        imagegen.AsyncClient(
            engine="diffusers", engine_model="some/model", engine_options={"sampler": "x"}
        )
    assert caught.value.param == "options"


def test_hub_id_loads_from_the_hub_cache_offline(
    model_folders: dict[str, Path], tmp_path: Path
) -> None:
    """A hub id resolves through the Hugging Face cache (laid out here by hand), offline."""
    import shutil

    repo = tmp_path / "hub" / "models--imagegen-tests--tiny-sd"
    revision = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    shutil.copytree(model_folders["sd"], repo / "snapshots" / revision)
    code = (
        "from imagegen._models import GenerateRequest\n"
        "from imagegen._service import ImageService\n"
        "from imagegen.engines.diffusers import DiffusersEngine\n"
        "engine = DiffusersEngine(model='imagegen-tests/tiny-sd', options={'steps': '1'})\n"
        "engine.load()\n"
        "service = ImageService(engine)\n"
        "job = service.prepare('generations', GenerateRequest.of(prompt='a fox', size='16x8'))\n"
        "print(engine.models()[0].name, len(service.run(job).images))\n"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["imagegen-tests/tiny-sd", "1"]


def test_hub_id_not_in_cache_offline() -> None:
    with pytest.raises(ConfigurationError, match="Could not load the diffusers model"):
        DiffusersEngine(model="imagegen-tests/no-such-model").load()


@pytest.mark.parametrize(
    ("index", "said"),
    [
        ("{}", "_class_name"),  # no pipeline class named
        ('{"_class_name": "NoSuchPipeline"}', "NoSuchPipeline"),  # one a newer diffusers has
        ("[]", "model_index.json"),  # not an object
    ],
)
def test_a_model_folder_diffusers_cannot_read_is_a_configuration_error(
    tmp_path: Path, index: str, said: str
) -> None:
    """diffusers raises KeyError, AttributeError or TypeError for these; they were shown as
    "unexpected KeyError" instead of naming the model folder."""
    (tmp_path / "model_index.json").write_text(index)
    with pytest.raises(ConfigurationError, match="Could not load the diffusers model") as caught:
        DiffusersEngine(model=str(tmp_path)).load()
    assert said in str(caught.value)
    assert caught.value.param == "model"


@pytest.mark.parametrize(
    ("options", "text"),
    [
        ({"steps": "0"}, "steps='0'"),
        ({"steps": "two"}, "whole number from 1 to 500"),
        ({"guidance_scale": "-1"}, "guidance_scale='-1'"),
        ({"strength": "1.5"}, "from 0.01 to 1"),
        ({"device": "tpu"}, "device='tpu'"),
        ({"dtype": "int8"}, "float16"),
        ({"max_size": "10"}, "max_size='10'"),
        ({"sampler": "euler"}, "Unknown option 'sampler'"),
    ],
)
def test_bad_engine_options(options: dict[str, str], text: str) -> None:
    with pytest.raises(ConfigurationError, match="diffusers engine") as caught:
        DiffusersEngine(model="m", options=options)
    assert text in str(caught.value)
    assert caught.value.param == "options"


def test_the_declared_options_are_the_table_the_engine_parses() -> None:
    assert DiffusersEngine.option_help is OPTION_HELP
    for name in OPTION_HELP:  # each declared name is one the parser takes
        try:
            DiffusersEngine.check_options({name: "bad value"})
        except ConfigurationError as refused:
            assert refused.message.startswith(f"Invalid option {name}=")
    with pytest.raises(ConfigurationError, match="Unknown option 'sampler'"):
        DiffusersEngine.check_options({"sampler": "euler"})
    DiffusersEngine.check_options({"NUM-INFERENCE-STEPS": "4", "guidance_scale": "0"})


def test_engine_options_parse_strings() -> None:
    parsed = parse_engine_options(
        {"steps": "4", "guidance": "0", "Max-Size": "1024", "device": "CUDA:1", "dtype": "bfloat16"}
    )
    assert parsed.tuning == {"num_inference_steps": 4, "guidance_scale": 0.0}
    assert (parsed.max_size, parsed.device, parsed.dtype) == (1024, "cuda:1", "bfloat16")


def test_auto_size_of_a_large_input_is_scaled_under_max_size() -> None:
    """An edit without a size takes the input's; a photo larger than `max_size` per side is
    edited smaller, keeping its shape, not refused for a size the caller never named."""
    engine = DiffusersEngine(model="m", options={"max_size": "256"})
    service = ImageService(engine)
    photo = load_input(png(Image.new("RGB", (600, 400), (90, 120, 200))))
    for endpoint, request in (
        ("edits", EditRequest.of(prompt="a hat")),
        ("variations", VariationRequest.of()),
    ):
        job = service.prepare(endpoint, request, [photo])  # type: ignore[arg-type]
        assert (job.width, job.height) == (256, 170)
    with pytest.raises(InvalidRequestError, match="at most 256 pixels per side"):
        service.prepare("edits", EditRequest.of(prompt="a hat", size="600x400"), [photo])


@pytest.mark.parametrize(
    ("names", "family", "steps", "guidance"),
    [
        (("stabilityai/sd-turbo", "StableDiffusionPipeline"), "turbo", 2, 0.0),
        (("stabilityai/sdxl-turbo", "StableDiffusionXLPipeline"), "turbo", 2, 0.0),
        (("my-model", "StableDiffusionPipeline", "LCMScheduler"), "few-step", 4, 0.0),
        (("black-forest-labs/FLUX.1-dev", "FluxPipeline"), "flux", 28, 3.5),
        (("runwayml/stable-diffusion-v1-5", "StableDiffusionPipeline"), "standard", 30, 7.0),
    ],
)
def test_family_defaults(names: tuple[str, ...], family: str, steps: int, guidance: float) -> None:
    found = detect_family(*names)
    assert (found.name, found.num_inference_steps, found.guidance_scale) == (
        family,
        steps,
        guidance,
    )


def test_settings_layering() -> None:
    applies = ("num_inference_steps", "guidance_scale", "negative_prompt", "strength")

    def settings(server: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        return request_settings(
            STANDARD, server, request, applies=applies, operation="edits", strength="img2img"
        )

    assert settings({}, {}) == {"num_inference_steps": 30, "guidance_scale": 7.0, "strength": 0.75}
    assert settings({"num_inference_steps": 4}, {"guidance_scale": "1.5"})["guidance_scale"] == 1.5
    assert settings({"num_inference_steps": 4}, {})["num_inference_steps"] == 4
    assert (
        settings({"num_inference_steps": 4}, {"num_inference_steps": 9})["num_inference_steps"] == 9
    )
    # Image-to-image runs int(steps * strength) steps: never zero.
    assert settings({"num_inference_steps": 2}, {"strength": 0.3})["num_inference_steps"] == 4


def test_partial_steps_are_evenly_spaced() -> None:
    assert partial_steps(30, 3) == [6, 14, 21]
    assert partial_steps(4, 1) == [1]
    assert partial_steps(3, 2) == [0, 1]
    assert partial_steps(3, 3) == [0, 1]  # fewer steps than previews: fewer previews
    assert partial_steps(1, 3) == []


def test_loads_a_folder_without_the_network(
    model_folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No HF_HUB_OFFLINE, and every connection refused: a folder still loads."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    engine = DiffusersEngine(model=str(model_folders["sd"]))
    engine.load()
    try:
        assert engine.models()[0].name == "tiny-sd"
    finally:
        engine.close()
    assert attempts == []


def test_models_declare_what_the_pipeline_serves(
    sd_engine: DiffusersEngine, variation_engine: DiffusersEngine
) -> None:
    (text,) = sd_engine.models()
    assert text.name == "tiny-sd"
    assert text.endpoints == {"generations", "edits", "variations"}
    assert text.default_size("edits") == "auto"
    (vary,) = variation_engine.models()
    assert (vary.name, vary.endpoints) == ("tiny-variation", {"variations"})
    # The tiny UNet samples 32 latents and the VAE scales by 2: 64x64 is its own size.
    assert sd_engine.default_size == (64, 64)


# --- generations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"), [("64x64", (64, 64)), ("70x45", (70, 45)), (None, (64, 64))]
)
def test_generation_sizes_are_exact(
    sd: ImageService, size: str | None, expected: tuple[int, int]
) -> None:
    job, rendered = run(sd, "generations", GenerateRequest.of(prompt="a red fox", size=size))
    assert (job.width, job.height) == expected
    (image,) = rendered.images
    assert Image.open(io.BytesIO(image)).size == expected


def test_n_seed_and_usage(sd: ImageService) -> None:
    prompt = "the fox"
    _, first = run(sd, "generations", GenerateRequest.of(prompt=prompt, n=2, seed=7))
    _, again = run(sd, "generations", GenerateRequest.of(prompt=prompt, n=2, seed=7))
    _, other = run(sd, "generations", GenerateRequest.of(prompt=prompt, n=2, seed=8))
    assert len(first.images) == 2
    assert first.images == again.images  # same seed: the same bytes
    assert first.images[0] != first.images[1]
    # Image i is seeded seed + i: seed 8 starts where seed 7's second image was.
    assert other.images[0] == first.images[1]
    assert other.images[1] not in first.images
    # Tokens as the tiny CLIP vocabulary splits them: start, "the", "f", "o", "x", end.
    assert first.usage is not None
    assert (first.usage.input_tokens, first.usage.total_tokens) == (6, 6)
    assert first.usage.input_tokens_details.text_tokens == 6


def test_prompt_tokens_are_cut_at_the_model_limit(sd: ImageService) -> None:
    _, rendered = run(sd, "generations", GenerateRequest.of(prompt="the " * 200, seed=1))
    assert rendered.usage is not None and rendered.usage.input_tokens == 77


def test_request_fields_change_the_image(sd: ImageService) -> None:
    base = GenerateRequest.of(prompt="a fox", seed=3)
    _, plain = run(sd, "generations", base)
    fields = {"num_inference_steps": "3", "guidance_scale": 2.5, "negative_prompt": "blur"}
    _, tuned = run(sd, "generations", GenerateRequest.of(prompt="a fox", seed=3, **fields))
    assert plain.images != tuned.images


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"num_inference_steps": "many"}, "num_inference_steps"),
        ({"num_inference_steps": 2.5}, "num_inference_steps"),
        ({"num_inference_steps": True}, "num_inference_steps"),
        ({"guidance_scale": "nan"}, "guidance_scale"),
        ({"guidance_scale": 51}, "guidance_scale"),
        ({"negative_prompt": 5}, "negative_prompt"),
        ({"strength": 0.5}, "strength"),  # generations take no strength
        ({"steps": 4}, "steps"),  # request fields use diffusers' names
        ({"seed": "abc"}, "seed"),
    ],
)
def test_bad_request_fields(sd: ImageService, fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        run(sd, "generations", GenerateRequest.of(prompt="a fox", **fields))
    assert caught.value.param == param


def test_transparent_background_is_refused(sd: ImageService) -> None:
    request = GenerateRequest.of(prompt="a fox", background="transparent")
    with pytest.raises(InvalidRequestError, match="opaque images only") as caught:
        run(sd, "generations", request)
    assert caught.value.param == "background"


def test_sizes_above_the_cap_are_refused(model_folders: dict[str, Path]) -> None:
    engine = DiffusersEngine(model=str(model_folders["sd"]), options={"max_size": "64"})
    with pytest.raises(InvalidRequestError, match="at most 64 pixels per side") as caught:
        run(ImageService(engine), "generations", GenerateRequest.of(prompt="x", size="72x64"))
    assert caught.value.param == "size"


def test_partial_images_stream_from_the_denoising_steps(sd: ImageService) -> None:
    request = GenerateRequest.of(
        prompt="a fox", n=2, size="40x24", partial_images=2, num_inference_steps=3, seed=1
    )
    job = sd.prepare("generations", request)
    events = list(sd.stream(job))
    partial = [e for e in events if isinstance(e, PartialImageEvent)]
    done = [e for e in events if isinstance(e, CompletedEvent)]
    assert len(partial) == 4 and len(done) == 2  # 2 previews of each of 2 images, then both
    assert events[-2:] == done
    assert [e.partial_image_index for e in partial] == [0, 1, 2, 3]
    for event in partial + done:
        assert Image.open(io.BytesIO(base64.b64decode(event.b64_json))).size == (40, 24)
    previews = {e.b64_json for e in partial}
    assert len(previews) == 4 and previews.isdisjoint({e.b64_json for e in done})


def test_requests_from_several_threads_match_serial_runs(sd: ImageService) -> None:
    requests = [GenerateRequest.of(prompt=f"a fox {i}", seed=i, size="32x32") for i in range(3)]
    serial = [run(sd, "generations", request)[1].images for request in requests]
    results: dict[int, list[bytes]] = {}

    def work(index: int) -> None:
        results[index] = run(sd, "generations", requests[index])[1].images

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[i] for i in range(3)] == serial


# --- edits ------------------------------------------------------------------------------------


def test_masked_edit_keeps_every_pixel_outside_the_mask(sd: ImageService) -> None:
    size, box = (56, 40), (10, 8, 34, 30)
    original, second = noise(size, 1), noise(size, 2)
    previews: list[Image.Image] = []
    threads: list[str] = []

    def on_partial(image: int, index: int, preview: Image.Image) -> None:
        previews.append(preview)
        threads.append(threading.current_thread().name)

    request = EditRequest.of(prompt="a cat", partial_images=1, seed=4)
    inputs = [load_input(png(original)), load_input(png(second))]  # the first one is edited
    job = sd.prepare("edits", request, inputs, load_input(png(alpha_mask(size, box)), param="mask"))
    rendered = sd.run(job, on_partial)
    assert threads[0].startswith("imagegen-diffusers-cpu")  # pipelines run on the device thread
    assert (job.width, job.height) == size  # edits keep the input's size by default

    out, before = pixels(rendered.images[0]), np.asarray(original)
    region = box_region(size, box)
    assert np.array_equal(out[~region], before[~region])  # bit-exact outside the mask
    assert (out[region] != before[region]).any(axis=-1).mean() > 0.9
    assert rendered.usage is not None and rendered.usage.input_tokens == 6
    assert len(previews) == 1  # previews keep the outside too
    assert np.array_equal(np.asarray(previews[0])[~region], before[~region])


def test_transparent_pixels_are_the_region_without_a_mask(sd: ImageService) -> None:
    size, box = (48, 48), (0, 0, 24, 48)
    image = noise(size, 5).convert("RGBA")
    image.paste((0, 0, 0, 0), box)
    _, rendered = run(sd, "edits", EditRequest.of(prompt="sky", seed=2), image)
    out, region = pixels(rendered.images[0]), box_region(size, box)
    assert np.array_equal(out[~region], np.asarray(image.convert("RGB"))[~region])
    assert (out[region] != 0).any()  # painted, not left as the input's transparent black


def test_masked_edit_at_another_size_preserves_the_resized_input(sd: ImageService) -> None:
    size, box = (64, 64), (16, 16, 48, 48)
    original = noise(size, 6)
    job, rendered = run(
        sd,
        "edits",
        EditRequest.of(prompt="a cat", size="32x32", seed=1),
        original,
        mask=alpha_mask(size, box),
    )
    out = pixels(rendered.images[0])
    assert out.shape == (32, 32, 3)
    resized = np.asarray(original.resize((32, 32), Image.Resampling.LANCZOS))
    keep = ~box_region((32, 32), (8, 8, 24, 24))
    assert np.array_equal(out[keep], resized[keep])


def test_edit_without_a_region_is_image_to_image(sd: ImageService) -> None:
    size = (40, 32)
    first, second = noise(size, 7), noise(size, 8)
    request = EditRequest.of(prompt="a cat", seed=5, strength="0.5")
    job, from_first = run(sd, "edits", request, first)
    assert job.mask is None and (job.width, job.height) == size
    _, from_second = run(sd, "edits", request, second)
    out = pixels(from_first.images[0])
    assert out.shape == (32, 40, 3)
    assert not np.array_equal(out, np.asarray(first))  # the whole image was worked on
    assert from_first.images != from_second.images  # and it started from the input


@pytest.mark.parametrize(("strength", "ok"), [("0.005", False), (1.5, False), ("0.99", True)])
def test_edit_strength_is_checked(sd: ImageService, strength: Any, ok: bool) -> None:
    request = EditRequest.of(prompt="a cat", strength=strength, size="16x16")
    if ok:
        run(sd, "edits", request, noise((16, 16)))
        return
    with pytest.raises(InvalidRequestError, match="from 0.01 to 1") as caught:
        run(sd, "edits", request, noise((16, 16)))
    assert caught.value.param == "strength"


# --- variations -------------------------------------------------------------------------------


def test_variations_by_image_to_image(sd: ImageService) -> None:
    source = noise((48, 40), 9)
    job, first = run(sd, "variations", VariationRequest.of(n=2, seed=11), source)
    _, again = run(sd, "variations", VariationRequest.of(n=2, seed=11), source)
    assert (job.width, job.height) == (48, 40)
    assert [Image.open(io.BytesIO(i)).size for i in first.images] == [(48, 40)] * 2
    assert first.images[0] != first.images[1] and first.images == again.images
    assert first.usage is None  # no prompt, nothing counted


def test_variations_by_the_image_variation_pipeline(variation_engine: DiffusersEngine) -> None:
    service = ImageService(variation_engine)
    source = noise((40, 40), 10)
    _, first = run(service, "variations", VariationRequest.of(n=2, seed=1, size="24x40"), source)
    _, again = run(service, "variations", VariationRequest.of(n=2, seed=1, size="24x40"), source)
    _, other = run(
        service, "variations", VariationRequest.of(n=2, seed=1, size="24x40"), noise((40, 40), 11)
    )
    assert [Image.open(io.BytesIO(i)).size for i in first.images] == [(24, 40)] * 2
    assert first.images[0] != first.images[1] and first.images == again.images
    assert first.images != other.images  # conditioned on the input image
    with pytest.raises(InvalidRequestError, match="does not support the generations") as caught:
        service.prepare("generations", GenerateRequest.of(prompt="a fox"))
    assert caught.value.param == "model"
    with pytest.raises(InvalidRequestError) as caught:
        run(service, "variations", VariationRequest.of(negative_prompt="x"), source)
    assert caught.value.param == "negative_prompt"


# --- through the server and the official SDK --------------------------------------------------


@pytest.fixture(scope="module")
def server(model_folders: dict[str, Path]) -> Iterator[str]:
    """The server loads the engine by name at startup, with `-o`-style string options."""
    from imagegen.server import ServerSettings, create_app
    from live import live_server

    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("IMAGEGEN_"):
                patch.delenv(name)
        patch.setenv("HF_HUB_OFFLINE", "1")
        settings = ServerSettings(
            engine="diffusers",
            model=str(model_folders["sd"]),
            engine_options={"steps": STEPS},
            max_concurrency=1,
        )
        app = create_app(settings=settings)
    with live_server(app) as url:
        yield url


@pytest.fixture
def sdk(server: str) -> Iterator[Any]:
    import openai

    with openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0) as client:
        yield client


def b64_pixels(item: Any) -> np.ndarray[Any, Any]:
    return pixels(base64.b64decode(item.b64_json))


def test_sdk_generations(sdk: Any) -> None:
    extra = {"seed": 3, "num_inference_steps": 3}
    first = sdk.images.generate(prompt="a fox", n=2, size="72x40", extra_body=extra)
    again = sdk.images.generate(prompt="a fox", n=2, size="72x40", extra_body=extra)
    assert [b64_pixels(item).shape for item in first.data] == [(40, 72, 3)] * 2
    assert [d.b64_json for d in first.data] == [d.b64_json for d in again.data]
    assert first.usage.input_tokens == 6 and first.size == "72x40"
    assert [m.id for m in sdk.models.list().data][0] == "tiny-sd"


def test_sdk_masked_edit(sdk: Any) -> None:
    size, box = (48, 48), (8, 8, 40, 24)
    original = noise(size, 12)
    result = sdk.images.edit(
        image=("in.png", png(original), "image/png"),
        mask=("mask.png", png(alpha_mask(size, box)), "image/png"),
        prompt="a cat",
        extra_body={"seed": 2, "strength": "1"},  # multipart: numbers arrive as text
    )
    out, region = b64_pixels(result.data[0]), box_region(size, box)
    assert out.shape == (48, 48, 3)
    assert np.array_equal(out[~region], np.asarray(original)[~region])
    assert (out[region] != np.asarray(original)[region]).any()


def test_sdk_variation(sdk: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK marks variations deprecated
        result = sdk.images.create_variation(
            image=("in.png", png(noise((40, 40), 13)), "image/png"), n=2, extra_body={"seed": 1}
        )
    images = [b64_pixels(item) for item in result.data]
    assert [image.shape for image in images] == [(40, 40, 3)] * 2
    assert not np.array_equal(images[0], images[1])


def test_sdk_streams_partial_images(sdk: Any) -> None:
    stream = sdk.images.generate(
        prompt="a fox",
        size="40x40",
        stream=True,
        partial_images=2,
        extra_body={"num_inference_steps": 4, "seed": 1},
    )
    events = list(stream)
    kinds = [event.type for event in events]
    assert kinds == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    assert [event.partial_image_index for event in events[:2]] == [0, 1]
    assert all(b64_pixels(event).shape == (40, 40, 3) for event in events)
    assert events[-1].usage.input_tokens == 6


def test_sdk_sees_bad_fields_as_400(sdk: Any) -> None:
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.generate(prompt="a fox", extra_body={"guidance_scale": -1})
    assert caught.value.param == "guidance_scale"
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.generate(prompt="a fox", background="transparent")
    assert caught.value.param == "background"
    with pytest.raises(openai.BadRequestError) as caught:  # multipart fields reach the engine
        sdk.images.edit(
            image=("in.png", png(noise((16, 16))), "image/png"),
            prompt="a cat",
            extra_body={"strength": "5"},
        )
    assert caught.value.param == "strength"


# --- through imagegen.Client, in process ------------------------------------------------------


def test_client_in_process(sd_engine: DiffusersEngine) -> None:
    import imagegen

    size, box = (40, 40), (0, 20, 40, 40)
    original = noise(size, 14)
    bw_mask = Image.new("L", size, 0)  # black and white, white = edit; the client converts it
    bw_mask.paste(255, box)
    with imagegen.Client(engine=sd_engine) as client:
        made = client.generate("a fox", n=2, size="24x16", extra_body={"seed": 5})
        assert [image.to_pil().size for image in made] == [(24, 16)] * 2
        edited = client.edit(original, "a cat", mask=bw_mask, extra_body={"seed": 1})
        out, region = np.asarray(edited[0].to_pil().convert("RGB")), box_region(size, box)
        assert np.array_equal(out[~region], np.asarray(original)[~region])
        varied = client.create_variation(original, extra_body={"seed": 2})
        assert varied[0].to_pil().size == size
        stream = client.generate(
            "a fox", size="16x16", stream=True, partial_images=1, extra_body={"seed": 1}
        )
        assert [event.is_partial for event in stream] == [True, False]
