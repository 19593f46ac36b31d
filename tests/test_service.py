"""`ImageService`: from a wire request to an engine job, and from the engine's images to
OpenAI's answer (response fields, encoding, streaming, errors), with the placeholder engine."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imagegen._capabilities import Endpoint, ModelCapabilities
from imagegen._errors import EngineError, InvalidRequestError
from imagegen._imaging import InputImage, load_input, sniff_format
from imagegen._models import (
    CompletedEvent,
    EditRequest,
    GenerateRequest,
    PartialImageEvent,
    VariationRequest,
    parse_request,
)
from imagegen._service import DEFAULT_MAX_OUTPUT_PIXELS, ImageService
from imagegen.engines import EngineResult, Job, PartialCallback
from imagegen.engines.placeholder import PlaceholderEngine

SERVICE = ImageService(PlaceholderEngine())


class BareEngine(PlaceholderEngine):
    """The placeholder's pictures for a model declared with the generic rules and nothing more."""

    def models(self) -> list[ModelCapabilities]:
        return [ModelCapabilities(name="bare-1")]


BARE = ImageService(BareEngine())


def png(size: tuple[int, int] = (64, 48), colour: tuple[int, ...] = (90, 160, 200)) -> InputImage:
    mode = "RGBA" if len(colour) == 4 else "RGB"
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, "PNG")
    return load_input(buffer.getvalue())


def alpha_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> InputImage:
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), box)
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    return load_input(buffer.getvalue(), param="mask")


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def generate(**fields: Any) -> Job:
    return SERVICE.prepare("generations", GenerateRequest.of(prompt="A fox", **fields))


def edit(images: list[InputImage], mask: InputImage | None = None, **fields: Any) -> Job:
    return SERVICE.prepare("edits", EditRequest.of(prompt="a window", **fields), images, mask)


def refused(call: Any, *args: Any, **kwargs: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- prepare: models, sizes ------------------------------------------------------------------


def test_the_engines_model_is_the_default() -> None:
    assert SERVICE.default_model == "placeholder"
    job = generate()
    assert job.model == "placeholder" and job.endpoint == "generations"
    assert (job.n, job.prompt, job.quality, job.background, job.output_format) == (
        1,
        "A fox",
        "auto",
        "auto",
        "png",
    )
    assert (job.output_compression, job.partial_images, job.seed, job.options) == (
        None,
        0,
        None,
        {},
    )


def test_request_fields_reach_the_job() -> None:
    job = generate(
        model="gpt-image-1",
        n=3,
        quality="low",
        background="transparent",
        output_format="webp",
        output_compression=40,
        partial_images=2,
        stream=True,
    )
    assert (job.n, job.quality, job.background, job.transparent) == (3, "low", "transparent", True)
    assert (job.output_format, job.output_compression, job.partial_images) == ("webp", 40, 2)


@pytest.mark.parametrize(
    ("model", "size", "expected"),
    [
        (None, None, (1024, 1024)),  # the engine's default size
        ("gpt-image-1", None, (1024, 1024)),
        ("gpt-image-2", "auto", (1024, 1024)),
        ("dall-e-2", None, (1024, 1024)),
        ("dall-e-3", None, (1024, 1024)),
        ("placeholder", "333x77", (333, 77)),
        ("gpt-image-2", "2048x1152", (2048, 1152)),
    ],
)
def test_generation_sizes(model: str | None, size: str | None, expected: tuple[int, int]) -> None:
    job = generate(model=model, size=size)
    assert (job.width, job.height) == expected and job.size == f"{expected[0]}x{expected[1]}"


@pytest.mark.parametrize(
    ("model", "size", "expected"),
    [
        (None, None, (64, 48)),  # the placeholder edits at the input's size
        (None, "auto", (64, 48)),
        ("gpt-image-1", None, (64, 48)),  # GPT image models default to auto
        ("bare-1", None, (1024, 1024)),  # a generic model: OpenAI's documented default
        ("bare-1", "auto", (64, 48)),
        ("gpt-image-1", "1536x1024", (1536, 1024)),
    ],
)
def test_edit_sizes(model: str | None, size: str | None, expected: tuple[int, int]) -> None:
    service = BARE if model == "bare-1" else SERVICE
    request = EditRequest.of(prompt="a window", model=model, size=size)
    job = service.prepare("edits", request, [png((64, 48))])
    assert (job.width, job.height) == expected


@pytest.mark.parametrize(
    ("endpoint", "request_", "images"),
    [
        ("generations", GenerateRequest.of(prompt="x", model="no-such-model"), []),
        ("edits", EditRequest.of(prompt="x", model="no-such-model"), [png()]),
        ("variations", VariationRequest.of(model="no-such-model"), [png((64, 64))]),
    ],
)
def test_an_unknown_model_is_model_not_found(
    endpoint: Endpoint, request_: Any, images: list[InputImage]
) -> None:
    error = refused(SERVICE.prepare, endpoint, request_, images)
    assert (error.param, error.code) == ("model", "model_not_found")
    assert error.message == (
        "The model `no-such-model` does not exist or you do not have access to it."
    )


def test_known_models_are_those_the_engine_declares_and_openais() -> None:
    for name in ("placeholder", "gpt-image-2", "dall-e-2", "dall-e-3"):
        assert SERVICE.check_model(name).name == name
    assert SERVICE.check_model(None).name == "placeholder"  # the engine's own model
    assert BARE.check_model("bare-1").name == "bare-1"
    # Another engine's model is unknown here, and a long name is shortened in the message.
    assert refused(SERVICE.check_model, "bare-1").code == "model_not_found"
    error = refused(SERVICE.check_model, "m" * 500)
    assert "m" * 80 + "..." in error.message and "m" * 81 not in error.message


def test_variation_sizes() -> None:
    job = SERVICE.prepare("variations", VariationRequest.of(), [png((64, 64))])
    assert (job.width, job.height) == (64, 64)  # the placeholder keeps the input's size
    job = SERVICE.prepare("variations", VariationRequest.of(model="dall-e-2"), [png((64, 64))])
    assert (job.width, job.height) == (1024, 1024)


def test_auto_size_of_a_huge_input_is_scaled_under_the_cap() -> None:
    job = edit([png((4000, 3000))], size="auto")
    assert job.width * job.height <= DEFAULT_MAX_OUTPUT_PIXELS
    assert abs(job.width / job.height - 4 / 3) < 0.01


def test_auto_size_is_scaled_under_a_servers_lower_cap() -> None:
    service = ImageService(PlaceholderEngine(), max_output_pixels=100_000)
    edited = service.prepare("edits", EditRequest.of(prompt="a hat"), [png((640, 480))])
    varied = service.prepare("variations", VariationRequest.of(), [png((640, 480))])
    for job in (edited, varied):
        assert job.width * job.height <= 100_000
        assert abs(job.width / job.height - 4 / 3) < 0.02
    # A size the caller named is still refused, not changed.
    asked = EditRequest.of(prompt="a hat", size="640x480")
    refused(service.prepare, "edits", asked, [png((640, 480))])


def test_output_size_cap() -> None:
    generate(size="3840x2160")  # exactly the cap
    error = refused(generate, size="3000x3000")
    assert error.param == "size" and "8,294,400" in error.message
    small = ImageService(PlaceholderEngine(), max_output_pixels=10_000)
    small.prepare("generations", GenerateRequest.of(prompt="x", size="100x100"))
    error = refused(small.prepare, "generations", GenerateRequest.of(prompt="x", size="101x100"))
    assert error.param == "size" and "10,000" in error.message


def test_validation_runs_before_anything_else() -> None:
    assert refused(generate, model="gpt-image-2", size="1000x1000").param == "size"
    assert refused(generate, model="dall-e-3", n=2).param == "n"
    assert refused(edit, [png()], model="dall-e-3").param == "model"
    error = refused(SERVICE.prepare, "edits", EditRequest.of(prompt="x"), [], None)
    assert error.param == "image"


def test_a_truncated_input_is_a_bad_request() -> None:
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 40).save(buffer, "PNG")
    truncated = load_input(buffer.getvalue()[:300])
    assert refused(edit, [truncated]).param == "image"


def test_variations_need_exactly_one_image() -> None:
    for images in ([], [png(), png()]):
        error = refused(SERVICE.prepare, "variations", VariationRequest.of(), images)
        assert error.param == "image" and "exactly one" in error.message


# --- prepare: seeds and options --------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "expected"), [(42, 42), ("42", 42), (" -7 ", -7), (0, 0), (2**70, 2**70)]
)
def test_seeds(seed: Any, expected: int) -> None:
    job = SERVICE.prepare(
        "generations", parse_request("generations", {"prompt": "x", "seed": seed})
    )
    assert job.seed == expected and "seed" not in job.options


@pytest.mark.parametrize("seed", ["--5", "²", "4.5", "abc", "", 4.5, True, [1], "9" * 5000])
def test_bad_seeds_name_the_parameter(seed: Any) -> None:
    request = parse_request("generations", {"prompt": "x", "seed": seed})
    error = refused(SERVICE.prepare, "generations", request)
    assert error.param == "seed" and "must be an integer" in error.message


def test_other_extra_fields_are_engine_options() -> None:
    request = parse_request("generations", {"prompt": "x", "seed": "3", "steps": "20"})
    assert SERVICE.prepare("generations", request).options == {"steps": "20"}


# --- prepare: the region to edit -------------------------------------------------------------


def test_an_alpha_mask_becomes_the_region_to_edit() -> None:
    job = edit([png((64, 48))], alpha_mask((64, 48), (8, 8, 24, 40)))
    assert job.mask is not None and job.mask.mode == "L" and job.mask.size == (64, 48)
    region = np.asarray(job.mask)
    assert region[8:40, 8:24].min() == 255 and region.sum() == 255 * 16 * 32
    assert all(image.mode == "RGBA" for image in job.images)


def test_a_black_and_white_mask_marks_white_for_editing() -> None:
    drawing = Image.new("L", (64, 48), 0)
    drawing.paste(255, (0, 0, 32, 48))
    buffer = io.BytesIO()
    drawing.save(buffer, "PNG")
    job = edit([png((64, 48))], load_input(buffer.getvalue(), param="mask"))
    assert job.mask is not None
    region = np.asarray(job.mask)
    assert region[:, :32].min() == 255 and region[:, 32:].max() == 0


def test_without_a_mask_transparency_is_the_region_and_opaque_means_whole_image() -> None:
    clear = Image.new("RGBA", (32, 32), (200, 0, 0, 255))
    clear.paste((0, 0, 0, 0), (0, 0, 16, 16))
    buffer = io.BytesIO()
    clear.save(buffer, "PNG")
    job = edit([load_input(buffer.getvalue())])
    assert job.mask is not None and np.asarray(job.mask)[:16, :16].min() == 255
    assert edit([png()]).mask is None


def test_a_mask_of_another_size_is_refused() -> None:
    error = refused(edit, [png((64, 48))], alpha_mask((48, 64), (0, 0, 8, 8)))
    assert error.param == "mask" and "same size" in error.message


# --- run: encoding and the response ----------------------------------------------------------


@pytest.mark.parametrize("output_format", ["png", "jpeg", "webp"])
def test_images_are_encoded_in_the_format_asked_for(output_format: str) -> None:
    rendered = SERVICE.run(generate(size="96x64", n=2, output_format=output_format))
    assert rendered.output_format == output_format and len(rendered.images) == 2
    for data in rendered.images:
        assert sniff_format(data) == output_format and decode(data).size == (96, 64)


def test_output_compression_is_honoured() -> None:
    def size(compression: int) -> int:
        job = generate(size="256x256", output_format="jpeg", output_compression=compression)
        return len(SERVICE.run(job).images[0])

    assert size(10) < size(90)


def test_png_compress_level_is_the_services_setting() -> None:
    job = generate(size="256x256")
    engine_images = SERVICE.make(job).images
    fast = SERVICE.finish(job, EngineResult(engine_images)).images[0]
    tight = ImageService(PlaceholderEngine(), png_compress_level=9)
    small = tight.finish(job, EngineResult(engine_images)).images[0]
    assert len(small) < len(fast)
    assert np.array_equal(np.asarray(decode(small)), np.asarray(decode(fast)))


def test_transparent_background_gives_real_alpha() -> None:
    rendered = SERVICE.run(generate(size="128x96", background="transparent"))
    image = decode(rendered.images[0])
    assert image.mode == "RGBA" and image.getchannel("A").getextrema() == (0, 255)
    assert rendered.echo["background"] == "transparent"
    opaque = decode(SERVICE.run(generate(size="128x96")).images[0])
    assert opaque.mode == "RGB"


def test_an_edit_of_a_transparent_image_keeps_its_alpha_outside_the_mask() -> None:
    source = Image.new("RGBA", (64, 48), (30, 200, 90, 255))
    source.paste((0, 0, 0, 0), (0, 0, 16, 48))  # a clear strip, outside the mask
    buffer = io.BytesIO()
    source.save(buffer, "PNG")
    image = load_input(buffer.getvalue())
    mask = alpha_mask((64, 48), (32, 8, 56, 40))
    rendered = SERVICE.run(edit([image], mask))
    out = np.asarray(decode(rendered.images[0]))
    assert out.shape == (48, 64, 4)
    region = np.asarray(edit([image], mask).mask) == 255
    assert np.array_equal(out[~region], np.asarray(source)[~region])
    assert rendered.echo["background"] == "transparent"
    # Asked for an opaque picture, or jpeg: no alpha.
    assert decode(SERVICE.run(edit([image], mask, background="opaque")).images[0]).mode == "RGB"
    jpeg = SERVICE.run(edit([image], mask, output_format="jpeg"))
    assert decode(jpeg.images[0]).mode == "RGB" and jpeg.echo["background"] == "opaque"


def test_echo_fields_for_gpt_image_and_engine_models() -> None:
    for model in ("gpt-image-1", None):
        response = SERVICE.run(generate(model=model, size="1024x1024", quality="low")).to_response()
        assert (response.background, response.output_format, response.size, response.quality) == (
            "opaque",
            "png",
            "1024x1024",
            "low",
        )
    auto = SERVICE.run(generate(model="gpt-image-1", size="1024x1024")).to_response()
    assert auto.quality == "high"  # auto is resolved, as OpenAI answers


def test_dall_e_answers_have_no_echo_fields() -> None:
    for model in ("dall-e-2", "dall-e-3"):
        response = SERVICE.run(generate(model=model, size="1024x1024")).to_response()
        assert response.background is None and response.output_format is None
        assert response.size is None and response.quality is None
        assert "size" not in response.model_dump(exclude_none=True)


def test_response_data_as_base64_or_urls_and_no_invented_usage() -> None:
    rendered = SERVICE.run(generate(size="64x64", n=2))
    response = rendered.to_response()
    assert [item.decoded() for item in response.data] == rendered.images
    assert response.usage is None and response.created > 0
    linked = rendered.to_response(urls=["http://x/1", "http://x/2"])
    assert [(item.url, item.b64_json) for item in linked.data] == [
        ("http://x/1", None),
        ("http://x/2", None),
    ]


# --- engine failures -------------------------------------------------------------------------


class Faulty(PlaceholderEngine):
    """The placeholder engine, broken on purpose in one of several ways."""

    name = "faulty"

    def __init__(self, fault: str) -> None:
        super().__init__()
        self.fault = fault

    def generate(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
        if self.fault == "crash":
            raise RuntimeError("out of cheese")
        if self.fault == "refuse":
            raise InvalidRequestError("steps must be positive", param="steps")
        result = super().generate(job, on_partial)
        if self.fault == "count":
            result.images.pop()
        if self.fault == "size":
            result.images = [image.resize((7, 7)) for image in result.images]
        return result


def test_an_engine_crash_becomes_an_engine_error_with_its_cause() -> None:
    service = ImageService(Faulty("crash"))
    job = service.prepare("generations", GenerateRequest.of(prompt="x", size="32x32"))
    with pytest.raises(EngineError) as caught:
        service.run(job)
    assert "'faulty' failed: RuntimeError: out of cheese" in caught.value.message
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_our_own_errors_pass_through_unchanged() -> None:
    service = ImageService(Faulty("refuse"))
    job = service.prepare("generations", GenerateRequest.of(prompt="x", size="32x32"))
    with pytest.raises(InvalidRequestError) as caught:
        service.run(job)
    assert caught.value.param == "steps"


@pytest.mark.parametrize(
    ("fault", "text"), [("count", "returned 1 images for n=2"), ("size", "7x7")]
)
def test_wrong_results_are_engine_errors(fault: str, text: str) -> None:
    service = ImageService(Faulty(fault))
    job = service.prepare("generations", GenerateRequest.of(prompt="x", size="32x32", n=2))
    with pytest.raises(EngineError, match=text):
        service.run(job)


# --- streaming -------------------------------------------------------------------------------


def test_stream_sends_partials_then_one_completed_event_per_image() -> None:
    job = generate(model="gpt-image-1", size="1024x1024", n=2, partial_images=2, stream=True)
    events = list(SERVICE.stream(job))
    kinds = [type(event) for event in events]
    assert kinds == [PartialImageEvent] * 4 + [CompletedEvent] * 2
    partials = [event for event in events if isinstance(event, PartialImageEvent)]
    assert [event.partial_image_index for event in partials] == [0, 1, 2, 3]
    assert all(event.type == "image_generation.partial_image" for event in partials)
    completed = [event for event in events if isinstance(event, CompletedEvent)]
    assert all(event.type == "image_generation.completed" for event in completed)
    for event in events:
        assert decode(base64.b64decode(event.b64_json)).size == (1024, 1024)
        assert (event.size, event.output_format, event.background) == ("1024x1024", "png", "opaque")
    assert completed[0].created_at > 0
    assert completed[0].b64_json != completed[1].b64_json
    assert all(event.usage is None for event in completed)  # the placeholder counts no tokens


def test_stream_of_an_edit_uses_edit_events() -> None:
    job = edit([png()], alpha_mask((64, 48), (0, 0, 32, 32)), partial_images=1, stream=True)
    types = [event.type for event in SERVICE.stream(job)]
    assert types == ["image_edit.partial_image", "image_edit.completed"]


def test_stream_without_partials_sends_only_the_images() -> None:
    events = list(SERVICE.stream(generate(size="64x64", n=2, stream=True)))
    assert [event.type for event in events] == ["image_generation.completed"] * 2


def test_stream_raises_the_engines_failure() -> None:
    service = ImageService(Faulty("crash"))
    job = service.prepare("generations", GenerateRequest.of(prompt="x", size="32x32", stream=True))
    with pytest.raises(EngineError, match="out of cheese"):
        list(service.stream(job))


def test_engine_check_refuses_before_the_engine_runs() -> None:
    """`Engine.check` runs inside `prepare`, so a job the engine can never make is refused
    before it is queued or run."""

    class Picky(PlaceholderEngine):
        ran = 0

        def check(self, job: Job) -> None:
            if job.n > 1:
                raise InvalidRequestError("This engine makes one image at a time.", param="n")

        def generate(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
            Picky.ran += 1
            return super().generate(job)

    service = ImageService(Picky())
    with pytest.raises(InvalidRequestError) as info:
        service.prepare("generations", GenerateRequest.of(prompt="a", n=2, size="64x64"))
    assert info.value.param == "n"
    assert Picky.ran == 0
    service.run(service.prepare("generations", GenerateRequest.of(prompt="a", n=1, size="64x64")))
    assert Picky.ran == 1


class GenerateOnly(PlaceholderEngine):
    """An engine whose only model makes generations (as docs/engines.md's example declares)."""

    def models(self) -> list[ModelCapabilities]:
        return [ModelCapabilities(name="gen-1", endpoints=frozenset({"generations"}))]


def test_an_endpoint_no_engine_model_serves_is_refused_even_under_openais_names() -> None:
    service = ImageService(GenerateOnly())
    request = parse_request("variations", {"model": "dall-e-2"})
    with pytest.raises(InvalidRequestError, match="does not make variations") as caught:
        service.prepare("variations", request, [png((64, 64))])
    assert caught.value.param == "model"
    edit = parse_request("edits", {"model": "gpt-image-1", "prompt": "x"})
    with pytest.raises(InvalidRequestError, match="models support: generations"):
        service.prepare("edits", edit, [png()])
    generation = parse_request("generations", {"model": "dall-e-2", "prompt": "x"})
    assert service.prepare("generations", generation).model == "dall-e-2"
