"""The built-in placeholder engine: real pictures, real edits, real variations, no model.

Images are compared as numpy arrays: "unchanged" means bit-exact, alpha included.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageDraw, ImageFilter

from imagegen._capabilities import Endpoint, get_capabilities
from imagegen._service import DEFAULT_MAX_OUTPUT_PIXELS
from imagegen.engines import Job, available_engines, get_engine_class, load_engine
from imagegen.engines._inpaint import harmonic_fill, text_box
from imagegen.engines._lettering import MIN_FONT, fit_text, get_font, printable
from imagegen.engines.placeholder import PlaceholderEngine

Pixels = npt.NDArray[np.uint8]

ENGINE = PlaceholderEngine()


def job(
    endpoint: Endpoint = "generations", width: int = 256, height: int = 192, **fields: Any
) -> Job:
    fields.setdefault("prompt", "" if endpoint == "variations" else "A cute baby lion")
    return Job(endpoint=endpoint, model="placeholder", width=width, height=height, **fields)


def pixels(image: Image.Image) -> Pixels:
    return np.asarray(image.convert("RGBA"), dtype=np.uint8)


def photo(size: tuple[int, int] = (256, 192)) -> Image.Image:
    """A structured, colourful, opaque test picture: gradients, a disc, bars, fine texture."""
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 255 * xs / max(1, width - 1)
    green = 255 * ys / max(1, height - 1)
    blue = 128 + 100 * np.sin(xs / 7) * np.cos(ys / 9)
    image = Image.fromarray(np.stack([red, green, blue], -1).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.1, height * 0.15, width * 0.45, height * 0.7), fill=(250, 240, 30))
    draw.rectangle((width * 0.6, height * 0.1, width * 0.7, height * 0.9), fill=(20, 20, 120))
    return image.convert("RGBA")


def ellipse_mask(size: tuple[int, int], box: tuple[float, float, float, float]) -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse(box, fill=255)
    return mask


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(pixels(a).astype(np.int16) - pixels(b).astype(np.int16)).mean())


def luminance(image: Image.Image) -> npt.NDArray[np.float32]:
    return np.asarray(image.convert("L"), dtype=np.float32)


# --- registration and declarations -------------------------------------------------------------


def test_registered_under_the_entry_point_group() -> None:
    assert available_engines()["placeholder"] == "imagegen.engines.placeholder:PlaceholderEngine"
    assert get_engine_class("placeholder") is PlaceholderEngine
    engine = load_engine("placeholder")
    assert isinstance(engine, PlaceholderEngine) and engine.name == "placeholder"


def test_declares_one_generic_model_that_keeps_input_sizes() -> None:
    (model,) = ENGINE.models()
    assert model.name == "placeholder" and model.family == "generic"
    assert model.default_size("generations") == "auto"
    assert model.default_size("edits") == model.default_size("variations") == "auto"
    assert ENGINE.default_size == (1024, 1024)
    (named,) = PlaceholderEngine(model="mock-1").models()
    assert named.name == "mock-1"
    # The declaration is what the service looks up, ahead of OpenAI's table.
    assert get_capabilities("placeholder", {model.name: model}) is model


def test_auto_size_is_the_input_size_scaled_under_the_pixel_cap() -> None:
    assert ENGINE.resolve_auto_size("generations", None) == (1024, 1024)
    assert ENGINE.resolve_auto_size("edits", (300, 200)) == (300, 200)
    width, height = ENGINE.resolve_auto_size("edits", (8000, 6000))
    assert width * height <= DEFAULT_MAX_OUTPUT_PIXELS
    assert width * height > DEFAULT_MAX_OUTPUT_PIXELS * 0.99
    assert abs(width / height - 8000 / 6000) < 0.01


# --- generations -------------------------------------------------------------------------------


def test_generation_is_deterministic_for_prompt_size_and_seed() -> None:
    def make(**fields: Any) -> Pixels:
        return pixels(ENGINE.generate(job(**fields)).images[0])

    first = make(seed=7)
    assert np.array_equal(first, make(seed=7))
    assert not np.array_equal(first, make(seed=8))
    assert not np.array_equal(first, make(seed=7, prompt="A cute baby tiger"))
    # Without a seed, one is derived from the prompt: still the same picture every time.
    assert np.array_equal(make(), make())
    assert not np.array_equal(make(), make(prompt="Something else entirely"))


def test_generation_n_images_are_distinct_and_image_i_uses_seed_plus_i() -> None:
    images = ENGINE.generate(job(n=4, seed=100)).images
    assert len(images) == 4
    for a, b in itertools.combinations(images, 2):
        assert mean_difference(a, b) > 1.0
    again = ENGINE.generate(job(n=1, seed=102)).images[0]
    assert np.array_equal(pixels(images[2]), pixels(again))


@pytest.mark.parametrize(
    "size",
    [
        (1, 1),
        (1, 64),
        (64, 1),
        (16, 16),
        (47, 48),
        (48, 48),
        (96, 32),
        (333, 77),
        (1536, 1024),
        (3840, 16),
        (2160, 3840),
    ],
)
@pytest.mark.parametrize("background", ["auto", "transparent"])
def test_generation_has_the_exact_size_asked_for(size: tuple[int, int], background: str) -> None:
    image = ENGINE.generate(job(width=size[0], height=size[1], background=background)).images[0]
    assert image.size == size
    assert image.mode == ("RGBA" if background == "transparent" else "RGB")


def test_opaque_generation_is_a_gradient_with_a_legible_prompt_card() -> None:
    image = ENGINE.generate(job(width=512, height=512, seed=1)).images[0]
    assert image.mode == "RGB"
    grey = luminance(image)
    corners = [grey[:40, :40], grey[:40, -40:], grey[-40:, :40], grey[-40:, -40:]]
    assert len({round(float(c.mean())) for c in corners}) > 1  # a gradient, not one colour
    # The centre holds a light card with dark text on it: both extremes are present there.
    centre = grey[200:312, 60:452]
    assert (centre > 200).mean() > 0.5
    assert (centre < 100).mean() > 0.01


def test_longer_prompts_draw_more_text() -> None:
    def ink(prompt: str) -> float:
        image = ENGINE.generate(job(width=512, height=512, prompt=prompt)).images[0].convert("L")
        # Text: dark pixels right next to the light card.
        near_light = np.asarray(image.filter(ImageFilter.MaxFilter(9))) > 200
        return float(((np.asarray(image) < 80) & near_light).mean())

    short, long = ink("A fox"), ink("A fox " + "and a hound in a misty forest at dawn " * 4)
    assert 0.002 < short < long


def test_transparent_generation_has_a_clear_background_and_opaque_drawing() -> None:
    image = ENGINE.generate(job(width=400, height=300, background="transparent")).images[0]
    alpha = np.asarray(image.getchannel("A"))
    assert alpha[0, 0] == alpha[-1, -1] == alpha[0, -1] == alpha[-1, 0] == 0
    assert alpha[150, 200] == 255
    assert (alpha == 0).mean() > 0.3 and (alpha == 255).mean() > 0.1
    # Anti-aliased card corners: a few partial values, but most pixels are 0 or 255.
    assert ((alpha > 0) & (alpha < 255)).mean() < 0.01


def test_tiny_transparent_generation_still_has_real_alpha() -> None:
    alpha = np.asarray(
        ENGINE.generate(job(width=16, height=16, background="transparent")).images[0]
    )[..., 3]
    assert alpha.min() == 0 and alpha.max() == 255


def test_partial_images_come_coarse_to_fine_before_each_final() -> None:
    calls: list[tuple[int, int, Image.Image]] = []
    result = ENGINE.generate(
        job(n=2, partial_images=3, seed=5), lambda i, p, image: calls.append((i, p, image))
    )
    assert [(i, p) for i, p, _ in calls] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    for index in range(2):
        final = result.images[index]
        partials = [image for i, _, image in calls if i == index]
        assert all(image.size == final.size for image in partials)
        errors = [mean_difference(image, final) for image in partials]
        assert errors == sorted(errors, reverse=True) and errors[-1] > 0


def test_no_partials_unless_asked() -> None:
    calls: list[object] = []
    ENGINE.generate(job(partial_images=0), lambda *args: calls.append(args))
    ENGINE.edit(job("edits", images=[photo()], partial_images=0), lambda *args: calls.append(args))
    assert calls == []
    assert ENGINE.generate(job(partial_images=2)).images  # no callback given: no error


def test_results_carry_no_usage() -> None:
    assert ENGINE.generate(job()).usage is None
    assert ENGINE.edit(job("edits", images=[photo()])).usage is None
    assert ENGINE.vary(job("variations", images=[photo()])).usage is None


# --- text layout -------------------------------------------------------------------------------


def test_text_is_wrapped_to_fit_without_breaking_words() -> None:
    text = "A watercolour painting of a lighthouse on a cliff at sunset with seagulls"
    block = fit_text(text, 300, 200, largest=60)
    assert block is not None and len(block.lines) > 1
    assert " ".join(block.lines) == text
    assert all(block.font.getlength(line) <= 300 for line in block.lines)
    assert block.height <= 200
    # The largest size that fits: one size up would not.
    bigger = fit_text(text, 300, 200, largest=block.font.size + 1, smallest=block.font.size + 1)
    assert bigger is not None and bigger.lines[-1].endswith("…")


def test_text_that_cannot_fit_is_cut_with_an_ellipsis() -> None:
    block = fit_text("word " * 5000, 200, 60, largest=40)
    assert block is not None and block.font.size == MIN_FONT
    assert block.lines[-1].endswith("…") and block.height <= 60
    assert fit_text("word", 200, MIN_FONT - 1, largest=40) is None  # not one line fits


def test_a_word_longer_than_a_line_is_broken() -> None:
    block = fit_text("x" * 200, 100, 400, largest=30)
    assert block is not None and "".join(block.lines) == "x" * 200


def test_lines_are_balanced() -> None:
    block = fit_text("one two three four five six seven", 10_000, 10_000, largest=20)
    assert block is not None and len(block.lines) == 1
    block = fit_text("aaaa bbbb cccc dddd e", 140, 200, largest=24, smallest=24)
    assert block is not None and len(block.lines) == 2
    assert len(block.lines[-1].split()) > 1  # no lone word on the last line


def test_prompts_are_folded_to_what_the_bundled_font_draws() -> None:
    assert printable("Café  crème\n brûlée") == "Cafe creme brulee"
    assert printable("Straße — Ærø") == "Strasse - AEro"
    assert printable("zero\u200bwidth\x00") == "zerowidth"
    assert printable("一只狮子 🦁") == "???? ?"


def test_the_bundled_font_scales() -> None:
    # Pillow >= 10.1 with FreeType: load_default(size=...) is a scalable font.
    assert get_font(40).getlength("Hello") > 2 * get_font(18).getlength("Hello")


# --- edits -------------------------------------------------------------------------------------


def transparent_photo(size: tuple[int, int] = (256, 192)) -> Image.Image:
    """The test picture with a fully clear corner and a half-transparent stripe."""
    image = photo(size)
    alpha = Image.new("L", size, 255)
    draw = ImageDraw.Draw(alpha)
    draw.rectangle((0, 0, size[0] // 5, size[1] // 4), fill=0)
    draw.rectangle((0, size[1] - 12, size[0], size[1]), fill=128)
    image.putalpha(alpha)
    return image


def scattered_mask(size: tuple[int, int]) -> Image.Image:
    mask = ellipse_mask(size, (size[0] * 0.3, size[1] * 0.25, size[0] * 0.8, size[1] * 0.75))
    draw = ImageDraw.Draw(mask)
    rng = np.random.default_rng(3)
    for _ in range(12):
        x, y = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        draw.rectangle((x, y, x + int(rng.integers(1, 9)), y + int(rng.integers(1, 9))), fill=255)
    draw.rectangle((size[0] - 10, 0, size[0], size[1]), fill=255)  # touches the edge
    return mask


@pytest.mark.parametrize("n", [1, 3])
def test_edit_keeps_every_pixel_outside_the_mask_bit_exact(n: int) -> None:
    source = transparent_photo()
    mask = scattered_mask(source.size)
    hole = np.asarray(mask) >= 128
    result = ENGINE.edit(job("edits", images=[source], mask=mask, n=n, partial_images=2))
    assert len(result.images) == n
    for image in result.images:
        assert image.mode == "RGBA" and image.size == source.size
        out, original = pixels(image), pixels(source)
        assert np.array_equal(out[~hole], original[~hole])
        assert (out[hole] != original[hole]).any(axis=-1).mean() > 0.9


def test_edit_partials_keep_the_outside_too() -> None:
    source, mask = photo(), scattered_mask((256, 192))
    hole = np.asarray(mask) >= 128
    partials: list[Image.Image] = []
    ENGINE.edit(
        job("edits", images=[source], mask=mask, partial_images=3),
        lambda i, p, image: partials.append(image),
    )
    assert len(partials) == 3
    for partial in partials:
        assert np.array_equal(pixels(partial)[~hole], pixels(source)[~hole])


def test_the_masked_area_is_filled_from_its_surroundings_not_a_flat_colour() -> None:
    # Left half red, right half blue: a fill from the surroundings runs red to blue.
    source = Image.new("RGBA", (240, 160), (230, 20, 20, 255))
    source.paste((20, 20, 230, 255), (120, 0, 240, 160))
    mask = Image.new("L", source.size, 0)
    mask.paste(255, (60, 50, 180, 110))
    out = pixels(ENGINE.edit(job("edits", images=[source], mask=mask, seed=1)).images[0])
    # Away from the centred text, the left of the hole stays red and the right turns blue.
    left, right = out[52:58, 62:80, :3].mean(axis=(0, 1)), out[52:58, 160:178, :3].mean(axis=(0, 1))
    assert left[0] > left[2] + 60 and right[2] > right[0] + 60
    assert out[50:110, 60:180, :3].reshape(-1, 3).std(axis=0).max() > 20


def test_harmonic_fill_reproduces_a_linear_ramp() -> None:
    # Linear functions are harmonic: a correct Laplace fill gives the ramp back.
    width, height = 384, 256
    xs = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    ys = np.linspace(0, 200, height, dtype=np.float32)[:, None].repeat(width, 1)
    ramp = np.stack([xs, ys, 255 - xs, np.full_like(xs, 255)], -1).round().astype(np.uint8)
    hole = np.asarray(ellipse_mask((width, height), (60, 40, 330, 220))) >= 128
    damaged = ramp.copy()
    damaged[hole] = (0, 0, 0, 255)
    filled = harmonic_fill(Image.fromarray(damaged), hole)
    assert filled is not None
    error = np.abs(filled.astype(np.int16) - ramp.astype(np.int16))[hole]
    assert error.max() <= 4 and error.mean() < 1.5
    assert np.array_equal(filled[~hole], damaged[~hole])


def test_harmonic_fill_ignores_the_hidden_colour_of_clear_pixels() -> None:
    # Opaque red around the hole, except a clear band whose hidden colour is black.
    source = np.zeros((64, 64, 4), np.uint8)
    source[...] = (220, 30, 30, 255)
    source[:, :8] = (0, 0, 0, 0)
    hole = np.zeros((64, 64), bool)
    hole[:, 8:30] = True
    filled = harmonic_fill(Image.fromarray(source), hole)
    assert filled is not None
    visible = filled[hole][filled[hole][:, 3] > 40]
    assert len(visible) and visible[:, 0].min() > 180 and visible[:, 1].max() < 60


def test_harmonic_fill_of_everything_has_nothing_to_fill_from() -> None:
    assert harmonic_fill(photo((32, 32)), np.ones((32, 32), bool)) is None


def test_text_box_lies_inside_the_hole() -> None:
    hole = np.asarray(ellipse_mask((300, 200), (20, 20, 280, 180))) >= 128
    x0, y0, x1, y1 = text_box(hole)
    assert hole[y0:y1, x0:x1].all()
    assert (x1 - x0) * (y1 - y0) > 0.4 * hole.sum()


def test_edit_draws_the_prompt_over_the_area() -> None:
    source = Image.new("RGBA", (320, 240), (128, 128, 128, 255))
    mask = Image.new("L", source.size, 0)
    mask.paste(255, (40, 60, 280, 180))
    out = pixels(
        ENGINE.edit(job("edits", 320, 240, images=[source], mask=mask, prompt="HELLO")).images[0]
    )
    area = out[60:180, 40:280, :3].astype(np.int16)
    # A grey surrounding fills to near grey; the text adds near-white and near-black pixels.
    assert (area.min(axis=-1) > 230).mean() > 0.01 and (area.max(axis=-1) < 30).mean() > 0.002


def test_edit_is_deterministic_and_each_image_differs() -> None:
    source, mask = photo(), scattered_mask((256, 192))
    first = ENGINE.edit(job("edits", images=[source], mask=mask, n=2, seed=4)).images
    again = ENGINE.edit(job("edits", images=[source], mask=mask, n=2, seed=4)).images
    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(pixels(first[0]), pixels(first[1]))


def test_an_empty_mask_changes_nothing() -> None:
    source = transparent_photo()
    mask = Image.new("L", source.size, 0)
    (out,) = ENGINE.edit(job("edits", images=[source], mask=mask)).images
    assert np.array_equal(pixels(out), pixels(source))


def test_a_full_mask_paints_a_new_picture() -> None:
    source = photo()
    mask = Image.new("L", source.size, 255)
    (out,) = ENGINE.edit(job("edits", images=[source], mask=mask)).images
    assert out.size == source.size and mean_difference(out, source) > 20
    assert luminance(out).std() > 5


def test_edit_without_a_mask_restyles_the_whole_image() -> None:
    source = transparent_photo()
    first, second = ENGINE.edit(job("edits", images=[source], n=2, seed=9)).images
    assert first.size == source.size
    changed = (pixels(first)[..., :3] != pixels(source)[..., :3]).any(axis=-1)
    assert changed.mean() > 0.8
    # The picture is still there: its light and dark areas stay where they were.
    opaque = pixels(source)[..., 3] == 255
    correlation = np.corrcoef(luminance(first)[opaque], luminance(source)[opaque])[0, 1]
    assert correlation > 0.5
    assert np.array_equal(pixels(first)[..., 3], pixels(source)[..., 3])  # alpha kept
    assert mean_difference(first, second) > 1


def test_edit_at_another_size_resizes_the_input_and_mask_first() -> None:
    source = photo((128, 96))
    mask = Image.new("L", source.size, 0)
    mask.paste(255, (32, 24, 96, 72))
    (out,) = ENGINE.edit(job("edits", 256, 192, images=[source], mask=mask)).images
    assert out.size == (256, 192)
    resized = pixels(source.resize((256, 192), Image.Resampling.LANCZOS))
    hole = np.asarray(mask.resize((256, 192), Image.Resampling.NEAREST)) >= 128
    assert np.array_equal(pixels(out)[~hole], resized[~hole])


def test_only_the_first_image_is_edited() -> None:
    first, other = photo(), photo().rotate(90)
    mask = scattered_mask(first.size)
    hole = np.asarray(mask) >= 128
    (out,) = ENGINE.edit(job("edits", images=[first, other], mask=mask)).images
    assert np.array_equal(pixels(out)[~hole], pixels(first)[~hole])


# --- variations --------------------------------------------------------------------------------


def signature(image: Image.Image) -> npt.NDArray[np.float64]:
    """Luminance (which a hue rotation keeps) on a coarse grid: the picture's layout."""
    value = image.convert("L").resize((16, 16))
    return np.asarray(value, dtype=np.float64).ravel()


def resemblance(variation: Image.Image, source: Image.Image) -> float:
    """Correlation of layouts, allowing for the mirror image."""
    base = source.resize(variation.size)
    return max(
        float(np.corrcoef(signature(variation), signature(candidate))[0, 1])
        for candidate in (base, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    )


def test_variations_are_distinct_and_still_the_input() -> None:
    source = photo()
    images = ENGINE.vary(job("variations", images=[source], n=6, seed=11)).images
    assert len(images) == 6 and all(image.size == source.size for image in images)
    for a, b in itertools.combinations(images, 2):
        assert mean_difference(a, b) > 8
    unrelated = Image.fromarray(
        np.random.default_rng(0).integers(0, 256, (192, 256, 3), dtype=np.uint8)
    )
    for image in images:
        assert mean_difference(image, source) > 8
        assert resemblance(image, source) > 0.5
    assert resemblance(unrelated, source) < 0.2


def test_variations_are_deterministic_per_seed() -> None:
    def make(**fields: Any) -> list[Pixels]:
        result = ENGINE.vary(job("variations", images=[photo()], n=2, **fields))
        return [pixels(image) for image in result.images]

    first = make(seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(first, make(seed=3), strict=True))
    assert not np.array_equal(first[0], make(seed=4)[0])
    unseeded = make()
    assert all(np.array_equal(a, b) for a, b in zip(unseeded, make(), strict=True))


@pytest.mark.parametrize("size", [(256, 256), (100, 300), (512, 128), (17, 9)])
def test_variations_have_the_size_asked_for(size: tuple[int, int]) -> None:
    images = ENGINE.vary(job("variations", *size, images=[photo((300, 200))], n=2)).images
    assert [image.size for image in images] == [size, size]


def test_variations_fill_the_frame_and_keep_transparency() -> None:
    opaque = ENGINE.vary(job("variations", images=[photo()], n=4, seed=2)).images
    assert all(image.mode == "RGB" for image in opaque)  # no empty corners from the rotation
    clear = transparent_photo()
    clear.putalpha(ellipse_mask(clear.size, (0, 0, 256, 192)))
    (varied,) = ENGINE.vary(job("variations", images=[clear], seed=2)).images
    alpha = np.asarray(varied)[..., 3]
    assert varied.mode == "RGBA" and alpha.min() == 0 and alpha.max() == 255


def test_unseeded_variations_follow_the_input() -> None:
    a = ENGINE.vary(job("variations", images=[photo()])).images[0]
    b = ENGINE.vary(job("variations", images=[photo().rotate(180)])).images[0]
    assert a.size == b.size and not np.array_equal(pixels(a), pixels(b))


def test_generation_handles_any_seed() -> None:
    for seed in (0, -1, 2**63, -(2**70)):
        assert ENGINE.generate(job(width=64, height=64, seed=seed)).images[0].size == (64, 64)


def test_each_threads_font_cache_stays_bounded_across_many_image_sizes() -> None:
    """Font sizes follow image sizes; a server thread must not keep a face for every one."""
    import threading

    from imagegen.engines import _lettering
    from imagegen.engines.placeholder import PlaceholderEngine

    engine = PlaceholderEngine()
    sizes: list[int] = []

    def serve_many_sizes() -> None:
        for side in range(96, 1600, 24):
            job = Job(endpoint="generations", model="placeholder", width=side, height=side)
            job.prompt = "A lighthouse on a cliff at dawn"
            engine.generate(job)
        sizes.append(len(_lettering._fonts.cache))

    worker = threading.Thread(target=serve_many_sizes)
    worker.start()
    worker.join(timeout=120)
    assert sizes and sizes[0] <= _lettering.FONTS_PER_THREAD
    # Fonts still come out right after evictions.
    assert _lettering.get_font(30).size == 30


def test_dall_e_3_answers_carry_a_revised_prompt_as_upstream() -> None:
    """dall-e-3 always rewrites the prompt and says how; the stand-in does too (one per image),
    and models that do not revise leave the field out."""
    from imagegen import Client

    with Client(engine="placeholder") as client:
        revised = client.generate("a red fox", model="dall-e-3", response_format="b64_json")
        plain = client.generate("a red fox", model="gpt-image-1-mini")
    text = revised[0].revised_prompt
    assert text is not None and "a red fox" in text
    assert text != "a red fox"
    assert plain[0].revised_prompt is None
