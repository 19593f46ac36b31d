"""The placeholder's drawing without numpy is the drawing it had with numpy.

Generations are drawn with Pillow alone (fast to import, fast to draw); these tests hold them to
what the numpy code drew: the same seeded numbers bit for bit, the same masks and text layout,
a background within a few levels of the old one, and whole pictures (gradient, frosted card,
prompt, size line, clear margins) within those levels too. Edits and variations still use
numpy: small renders of them are pinned to the hashes the numpy-only engine gave.
"""

from __future__ import annotations

import hashlib
import math
import random
import string
import subprocess
import sys

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageDraw

from imagegen.engines import Job
from imagegen.engines._lettering import (
    MIN_FONT,
    fit_text,
    font_size,
    get_font,
    line_spacing,
    measure,
    printable,
)
from imagegen.engines._placeholder_card import (
    MIN_TEXT_SIDE,
    Palette,
    _oklch,
    background,
    digest,
    rounded_mask,
)
from imagegen.engines._seeded import Draws
from imagegen.engines.placeholder import PlaceholderEngine

# -- the numpy drawing the engine had, kept as the reference --------------------------------------


def reference_background(
    width: int, height: int, palette: Palette, seed: int, glows: int = 4
) -> Image.Image:
    rng = np.random.default_rng(digest(seed, "background"))
    scale = min(1.0, 256 / max(width, height))
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs = (xs + 0.5) / w * width
    ys = (ys + 0.5) / h * height
    angle = float(rng.uniform(0, 2 * math.pi))
    proj = xs * math.cos(angle) + ys * math.sin(angle)
    t = (proj - proj.min()) / max(float(np.ptp(proj)), 1e-6)
    t = t * t * (3 - 2 * t)
    dark = np.array(palette.dark, np.float32)
    light = np.array(palette.light, np.float32)
    rgb = dark + (light - dark) * t[..., None]
    diagonal = math.hypot(width, height)
    for _ in range(glows):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        radius = float(rng.uniform(0.15, 0.4)) * diagonal
        glow = np.exp(-(((xs - cx) ** 2 + (ys - cy) ** 2) / radius**2)) * rng.uniform(0.15, 0.35)
        target = np.array((255, 255, 255) if rng.random() < 0.5 else palette.accent, np.float32)
        rgb += (target - rgb) * glow[..., None].astype(np.float32)
    small = Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))
    return small.resize((width, height), Image.Resampling.BICUBIC)


def reference_rounded_mask(width: int, height: int, radius: int) -> Image.Image:
    mask = Image.new("L", (width, height), 255)
    r = min(radius, width // 2, height // 2)
    if r < 1:
        return mask
    ys, xs = np.mgrid[0:r, 0:r].astype(np.float32) + 0.5
    corner = np.clip(r - np.hypot(r - xs, r - ys) + 0.5, 0, 1) * 255
    patch = corner.round().astype(np.uint8)
    mask.paste(Image.fromarray(patch), (0, 0))
    mask.paste(Image.fromarray(np.ascontiguousarray(patch[:, ::-1])), (width - r, 0))
    mask.paste(Image.fromarray(np.ascontiguousarray(patch[::-1, :])), (0, height - r))
    mask.paste(Image.fromarray(np.ascontiguousarray(patch[::-1, ::-1])), (width - r, height - r))
    return mask


def reference_placeholder(
    prompt: str, width: int, height: int, seed: int, transparent: bool
) -> Image.Image:
    palette = Palette.of(prompt, seed)
    short = min(width, height)
    if short < MIN_TEXT_SIDE:
        image = reference_background(width, height, palette, seed)
        if transparent:
            inset = short // 8
            alpha = Image.new("L", (width, height), 0)
            alpha.paste(
                reference_rounded_mask(width - 2 * inset, height - 2 * inset, short // 3),
                (inset, inset),
            )
            image.putalpha(alpha)
        return image
    margin = max(3, round(short * 0.07))
    pad = max(3, round(short * 0.05))
    label = f"{width} x {height}"
    reserved = line_spacing(get_font(max(MIN_FONT, round(short * 0.04))))
    block = fit_text(
        printable(prompt) or "(empty prompt)",
        width - 2 * (margin + pad),
        height - 2 * (margin + pad) - round(reserved * 1.6),
        largest=round(short * 0.085),
        smallest=round(short * 0.02),
    )
    half = round(font_size(block.font) * 0.5) if block else short
    label_font = get_font(max(MIN_FONT, round(short * 0.025), min(round(short * 0.04), half)))
    label_height = line_spacing(label_font)
    gap = max(2, round(label_height * 0.6))
    content_w = max(block.width if block else 0, round(label_font.getlength(label)))
    content_h = label_height + (block.height + gap if block else 0)
    card_w = min(width - 2 * margin, max(content_w + 2 * pad, round(width * 0.45)))
    card_h = min(height - 2 * margin, content_h + 2 * pad)
    x0, y0 = (width - card_w) // 2, (height - card_h) // 2
    card = reference_rounded_mask(card_w, card_h, max(2, round(short * 0.03)))
    ink = palette.ink
    if transparent:
        image = Image.new("RGB", (width, height), palette.dark)
        fill = reference_background(card_w, card_h, palette, seed)
        image.paste(fill, (x0, y0))
        r, g, b = np.asarray(fill, np.float32).reshape(-1, 3).mean(axis=0)
        if 0.2126 * r + 0.7152 * g + 0.0722 * b < 150:
            ink = (255, 255, 255)
    else:
        image = reference_background(width, height, palette, seed)
        frost = card.point(lambda v: v * 80 // 100)
        image.paste((255, 255, 255), (x0, y0, x0 + card_w, y0 + card_h), frost)
    draw = ImageDraw.Draw(image)
    top = y0 + (card_h - content_h) // 2
    if block:
        block.draw(draw, width / 2, top, fill=ink)
        top += block.height + gap
    muted = tuple(round(c * 0.7 + a * 0.3) for c, a in zip(ink, palette.accent, strict=True))
    draw.text(
        (width / 2, top), label, font=label_font, anchor="ma", fill=ink if transparent else muted
    )
    if transparent:
        alpha = Image.new("L", (width, height), 0)
        alpha.paste(card, (x0, y0))
        image.putalpha(alpha)
    return image


# -- seeded numbers -------------------------------------------------------------------------------


SEEDS = [0, 1, 2, 41, 2**31 - 1, 2**32, 2**63 + 5, 2**64 - 1, 2**100 + 77]


@pytest.mark.parametrize("seed", [*SEEDS, *(random.Random(i).getrandbits(64) for i in range(40))])
def test_draws_are_numpys_default_rng_bit_for_bit(seed: int) -> None:
    ours, numpys = Draws(seed), np.random.default_rng(seed)
    for low, high in ((0, 2 * math.pi), (-28, 28), (0.15, 0.35), (0, 1024)):
        assert ours.uniform(low, high) == float(numpys.uniform(low, high))
        assert ours.random() == float(numpys.random())


def test_draws_refuse_a_negative_seed() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        Draws(-1)


def test_a_palette_has_the_colours_it_had() -> None:
    """Palette hues come from `default_rng(digest(seed, "hue"))`, as they did with numpy."""
    for index, seed in enumerate([0, 7, 123456789, 2**31 - 1]):
        text = f"A cute baby lion {index}"
        turn = float(np.random.default_rng(digest(seed, "hue")).uniform(-28, 28))
        hue = digest("hue", text) % 360 + turn
        assert Palette.of(text, seed) == Palette(
            dark=_oklch(0.50, 0.13, hue),
            light=_oklch(0.80, 0.10, hue + 55),
            ink=_oklch(0.27, 0.06, hue),
            accent=_oklch(0.62, 0.15, hue - 40),
        )


# -- text -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [9, 13, 22, 47, 87])
def test_text_is_measured_as_pillow_measures_it(size: int) -> None:
    """Widths are sums of cached advances: the bundled font has no kerning, so that is exact
    (if a Pillow release brings a font with kerning, this fails and `measure` must change)."""
    font = get_font(size)
    printable = string.ascii_letters + string.digits + string.punctuation + " "
    for first in printable:
        for second in printable:
            assert measure(font, first + second) == font.getlength(first + second)
    rng = random.Random(size)
    for _ in range(200):
        text = "".join(rng.choice(printable) for _ in range(rng.randint(1, 60)))
        assert measure(font, text) == font.getlength(text)


# -- masks and backgrounds ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(5, 5, 2), (100, 40, 12), (300, 200, 31), (7, 3, 9), (2, 2, 1)])
def test_rounded_masks_are_the_same_to_the_bit(size: tuple[int, int, int]) -> None:
    assert rounded_mask(*size).tobytes() == reference_rounded_mask(*size).tobytes()


def test_rounded_mask_corners_match_for_every_radius() -> None:
    for radius in range(1, 120):
        side = 2 * radius + 3
        assert (
            rounded_mask(side, side, radius).tobytes()
            == reference_rounded_mask(side, side, radius).tobytes()
        ), radius


@pytest.mark.parametrize(
    "size", [(256, 256), (1024, 1024), (1536, 1024), (1024, 1536), (512, 512), (64, 300), (47, 30)]
)
def test_the_background_is_the_one_numpy_drew_within_a_few_levels(size: tuple[int, int]) -> None:
    """Drawn on a 64-pixel grid (numpy drew on 256) and enlarged: the same gradient and glows,
    at most 3 levels apart, 0.3 on average."""
    width, height = size
    worst, means = 0, list[float]()
    for seed in (1, 20240601, 2**31 - 1):
        palette = Palette.of(f"prompt {seed}", seed)
        ours = np.asarray(background(width, height, palette, seed), np.int16)
        reference = np.asarray(reference_background(width, height, palette, seed), np.int16)
        difference = np.abs(ours - reference)
        worst, means = max(worst, int(difference.max())), [*means, float(difference.mean())]
    assert worst <= 3
    assert sum(means) / len(means) < 0.4


def test_a_small_background_is_the_one_numpy_drew() -> None:
    """At most 64 pixels: the same grid as numpy's, so only float rounding may differ."""
    palette = Palette.of("x", 3)
    ours = np.asarray(background(40, 30, palette, 3), np.int16)
    reference = np.asarray(reference_background(40, 30, palette, 3), np.int16)
    assert np.abs(ours - reference).max() <= 1


# -- whole pictures -------------------------------------------------------------------------------


PICTURES = [
    ("A cute baby lion", 256, 256, 1, False),
    ("A cute baby lion", 256, 256, 2, False),
    ("A cute baby lion", 1024, 1024, 20240601, False),
    ("a lighthouse at dusk, oil on canvas, in the style of a travel poster", 1536, 1024, 7, False),
    ("", 1024, 1536, 3, False),
    ("x", 300, 64, 11, False),
    ("A cute baby lion", 256, 256, 1, True),
    ("Glass orb on a wooden table", 1024, 1024, 99, True),
    ("tiny", 40, 30, 5, True),
    ("tiny", 40, 30, 5, False),
]


@pytest.mark.parametrize(("prompt", "width", "height", "seed", "transparent"), PICTURES)
def test_a_generation_is_the_picture_numpy_drew_within_a_few_levels(
    prompt: str, width: int, height: int, seed: int, transparent: bool
) -> None:
    """The engine's image against the numpy drawing composed as before: the card, its text and
    size line, and the alpha are the same pixels; colours are at most 3 levels apart."""
    job = Job(
        endpoint="generations",
        model="placeholder",
        width=width,
        height=height,
        prompt=prompt,
        seed=seed,
        background="transparent" if transparent else "opaque",
    )
    (image,) = PlaceholderEngine().generate(job).images
    reference = reference_placeholder(prompt, width, height, seed, transparent)
    assert (image.mode, image.size) == (reference.mode, reference.size)
    ours, theirs = np.asarray(image, np.int16), np.asarray(reference, np.int16)
    difference = np.abs(ours - theirs)
    assert difference.max() <= 3
    assert difference.mean() < 0.4
    if transparent:  # the clear margins and the card's shape are the same to the bit
        assert image.getchannel("A").tobytes() == reference.getchannel("A").tobytes()


def test_the_tolerance_sees_another_picture() -> None:
    """3 levels is tight enough to notice another seed, another word, or a missing card."""

    def picture(prompt: str, seed: int) -> npt.NDArray[np.int16]:
        return np.asarray(reference_placeholder(prompt, 256, 256, seed, False), np.int16)

    reference = picture("A cute baby lion", 1)
    bare = np.asarray(reference_background(256, 256, Palette.of("A cute baby lion", 1), 1))
    for other in (picture("A cute baby lion", 2), picture("A cute baby lynx", 1), bare):
        assert np.abs(reference - other).max() > 3


# -- what stays on numpy --------------------------------------------------------------------------


def _hashes(images: list[Image.Image]) -> list[str]:
    return [hashlib.sha256(image.tobytes()).hexdigest()[:16] + image.mode for image in images]


def test_edits_and_variations_are_the_pictures_they_were() -> None:
    """Hashes of the numpy-only engine's renders (before generations left numpy)."""
    source = Image.new("RGBA", (96, 64))
    ImageDraw.Draw(source).ellipse((10, 5, 80, 60), fill=(200, 40, 90, 255))
    source.paste((20, 180, 60, 128), (0, 0, 30, 20))
    mask = Image.new("L", (96, 64), 0)
    ImageDraw.Draw(mask).rectangle((30, 10, 70, 50), fill=255)
    engine = PlaceholderEngine()

    def job(endpoint: str, **fields: object) -> Job:
        return Job(endpoint=endpoint, model="placeholder", width=96, height=64, **fields)  # type: ignore[arg-type]

    edit = engine.edit(job("edits", prompt="a window", images=[source], mask=mask, n=2, seed=5))
    assert _hashes(edit.images) == ["0dd858c8d0fcce7dRGBA", "dc3e56f70ecf23d6RGBA"]
    restyle = engine.edit(job("edits", prompt="a window", images=[source], n=2, seed=5))
    assert _hashes(restyle.images) == ["7e0ed5d388b2914bRGBA", "2353a46c510d3185RGBA"]
    varied = engine.vary(job("variations", images=[source], n=3, seed=9))
    assert _hashes(varied.images) == [
        "c4a6e0d9ec660780RGBA",
        "80a23670ffe1f863RGBA",
        "074114fd223a3f67RGBA",
    ]
    assert _hashes(engine.vary(job("variations", images=[source])).images) == [
        "7e7c45800fbe6efaRGBA"
    ]
    tiny = engine.generate(
        Job(endpoint="generations", model="placeholder", width=40, height=30, prompt="x", seed=3)
    )
    assert _hashes(tiny.images) == ["e610a061824f76d8RGB"]


def test_a_generation_does_not_import_numpy() -> None:
    code = (
        "import sys\n"
        "from imagegen.engines import Job\n"
        "from imagegen.engines.placeholder import PlaceholderEngine\n"
        "job = Job(endpoint='generations', model='placeholder', width=256, height=256, "
        "prompt='A cute baby lion', background='transparent')\n"
        "assert PlaceholderEngine().generate(job).images[0].size == (256, 256)\n"
        "print('numpy' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
