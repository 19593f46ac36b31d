"""Inpainting without a model: a harmonic (Laplace) fill of a hole from its border.

Used by the `placeholder` engine for edits. The fill is the smoothest surface that meets the
pixels around the hole (each filled pixel is the mean of its neighbours), solved coarse to fine
on an image pyramid so a 1024x1024 hole takes a fraction of a second in numpy. Colours are
filled premultiplied by alpha, so the hidden colour of transparent neighbours does not bleed in.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = ["Mask", "bounds", "harmonic_fill", "text_box"]

Array = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]


def _neighbour_sum(u: Array, out: Array) -> None:
    """Sum of the 4 neighbours; the image edge mirrors itself (no flux across it)."""
    out[1:] = u[:-1]
    out[:1] = u[:1]
    out[:-1] += u[1:]
    out[-1:] += u[-1:]
    out[:, 1:] += u[:, :-1]
    out[:, :1] += u[:, :1]
    out[:, :-1] += u[:, 1:]
    out[:, -1:] += u[:, -1:]


def _relax(u: Array, hole: Mask, iterations: int) -> Array:
    """Jacobi sweeps: each unknown pixel becomes the mean of its neighbours, known ones stay.

    Written as `sum * free + fixed` over whole arrays: much faster in numpy than masked copies.
    """
    free = np.broadcast_to(hole[..., None] * np.float32(0.25), u.shape).copy()
    fixed = u * ~hole[..., None]
    scratch = np.empty_like(u)
    for _ in range(iterations):
        _neighbour_sum(u, scratch)
        scratch *= free
        scratch += fixed
        u, scratch = scratch, u
    return u


def _solve_laplace(u: Array, known: Mask, level: int = 0) -> Array:
    """Solve the Laplace equation on the unknown pixels, known pixels fixed: coarse to fine.

    The known values are averaged down a pyramid ("pull"); the coarsest level is solved with
    plain relaxation, and each finer level starts from the enlarged coarser solution, so a few
    relaxation sweeps per level are enough even for large holes (coarser levels are cheaper
    and get more sweeps).
    """
    h, w = known.shape
    hole = ~known
    if min(h, w) <= 8:
        u[hole] = u[known].mean(axis=0)
        return _relax(u, hole, 150)
    ph, pw = h + h % 2, w + w % 2
    weight = np.zeros((ph, pw), np.float32)
    weight[:h, :w] = known
    values = np.zeros((ph, pw, u.shape[2]), np.float32)
    values[:h, :w] = u * weight[:h, :w, None]

    def pool(a: Array) -> Array:
        result: Array = a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]
        return result

    coarse_weight = pool(weight)
    coarse_known = coarse_weight > 0
    coarse: Array = pool(values) / np.maximum(coarse_weight, np.float32(1e-6))[..., None]
    coarse = _solve_laplace(coarse, coarse_known, level + 1)
    enlarged = coarse.repeat(2, axis=0).repeat(2, axis=1)[:h, :w]
    np.copyto(u, enlarged, where=hole[..., None])
    return _relax(u, hole, min(200, 10 * 2**level))


def harmonic_fill(rgba: Image.Image, hole: Mask) -> npt.NDArray[np.uint8] | None:
    """`rgba` as an array with the hole filled smoothly from its border; `None` if the hole
    covers everything. Colours are filled premultiplied, so transparent neighbours do not
    bleed their hidden colour into the fill."""
    pixels = np.asarray(rgba, np.uint8)
    if hole.all():
        return None
    # The bounding box plus a one-pixel ring of known pixels is all the fill needs.
    x0, y0, x1, y1 = bounds(hole)
    x0, y0, x1, y1 = (
        max(0, x0 - 1),
        max(0, y0 - 1),
        min(hole.shape[1], x1 + 1),
        min(hole.shape[0], y1 + 1),
    )
    crop: Array = pixels[y0:y1, x0:x1].astype(np.float32) * np.float32(1 / 255)
    crop[..., :3] *= crop[..., 3:]
    solved = _solve_laplace(crop, ~hole[y0:y1, x0:x1])
    alpha = solved[..., 3:]
    solved[..., :3] /= np.maximum(alpha, 1e-4)
    out = pixels.copy()
    region = out[y0:y1, x0:x1]
    filled = np.clip(solved * 255 + 0.5, 0, 255).astype(np.uint8)
    np.copyto(region, filled, where=hole[y0:y1, x0:x1, None])
    result: npt.NDArray[np.uint8] = out
    return result


def text_box(hole: Mask) -> tuple[int, int, int, int]:
    """The best box for text inside the hole (the largest rectangle, not counting height beyond
    its width), found on a coarse grid, as `(x0, y0, x1, y1)`: where the prompt goes."""
    h, w = hole.shape
    cell = max(1, math.ceil(max(h, w) / 64))
    gh, gw = math.ceil(h / cell), math.ceil(w / cell)
    padded = np.zeros((gh * cell, gw * cell), bool)
    padded[:h, :w] = hole
    grid: Mask = np.asarray(padded.reshape(gh, cell, gw, cell).all(axis=(1, 3)))
    best, best_box = 0, (0, 0, 0, 0)
    heights = [0] * gw
    for y in range(gh):
        heights = [heights[x] + 1 if grid[y, x] else 0 for x in range(gw)]
        stack: list[int] = []
        for x in range(gw + 1):
            current = heights[x] if x < gw else 0
            while stack and heights[stack[-1]] >= current:
                top = heights[stack.pop()]
                left = stack[-1] + 1 if stack else 0
                # Text runs across: height beyond the width does not make a box better.
                score = (x - left) * min(top, x - left)
                if score > best:
                    best, best_box = score, (left, y - top + 1, x, y + 1)
            stack.append(x)
    if best == 0:  # no grid cell is wholly inside: use the bounding box, clipped later
        return bounds(hole)
    gx0, gy0, gx1, gy1 = best_box
    return gx0 * cell, gy0 * cell, min(w, gx1 * cell), min(h, gy1 * cell)


def bounds(hole: Mask) -> tuple[int, int, int, int]:
    """`(x0, y0, x1, y1)` of the pixels set in `hole` (which has at least one)."""
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
