"""iMatch's image augmentation: a random share of training images (10%) gets one of three changes, added
as extra copies (the originals stay). Each change keeps the image's size and mode.

* brightness: every pixel times ``1 + f`` or ``1 - f`` (sign at random), ``f ~ U(0.1, 0.5)`` (PIL's
  ``ImageEnhance.Brightness``, clipped to 0..255);
* grid distortion: the image cut into a ``steps x steps`` grid whose column widths and row heights are
  each scaled by ``1 + U(-k, k)``, ``k ~ U(0.2, 0.8)``, then renormalised to the image size and
  remapped (bilinear, edges reflected); the image's border lines stay where they are;
* random crop: a window of ``a ~ U(0.1, 0.5)`` of the image's area (same aspect ratio, random
  position), resized back to the full size (bicubic).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageEnhance

from ..common.data import AlignItem

KINDS = ("brightness", "grid", "crop")
#: (low, high) of each change's uniform parameter.
RANGES = {"brightness": (0.1, 0.5), "grid": (0.2, 0.8), "crop": (0.1, 0.5)}


def brightness(image: Image.Image, change: float) -> Image.Image:
    """Brightness times ``1 + change`` (``change`` may be negative)."""
    return ImageEnhance.Brightness(image).enhance(1.0 + change)


def grid_offsets(size: int, steps: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Source coordinate of every output pixel along one axis: piecewise linear over ``steps`` cells."""
    scale = 1.0 + rng.uniform(-strength, strength, steps)
    knots_src = np.linspace(0.0, size - 1.0, steps + 1)
    widths = scale / scale.sum() * (size - 1.0)
    knots_dst = np.concatenate([[0.0], np.cumsum(widths)])
    knots_dst[-1] = size - 1.0
    return np.interp(np.arange(size, dtype=np.float64), knots_dst, knots_src)


def grid_distortion(image: Image.Image, strength: float, rng: np.random.Generator, steps: int = 5) -> Image.Image:
    """Cells of a ``steps x steps`` grid stretched or squeezed by up to ``strength`` each, remapped."""
    arr = np.asarray(image)
    h, w = arr.shape[:2]
    xs = grid_offsets(w, steps, strength, rng).astype(np.float32)
    ys = grid_offsets(h, steps, strength, rng).astype(np.float32)
    map_x, map_y = np.meshgrid(xs, ys)
    out = cv2.remap(arr, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return Image.fromarray(out, mode=image.mode)


def crop_box(width: int, height: int, area: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a window of ``area`` of the image, same aspect ratio, random place."""
    side = float(np.sqrt(area))
    cw, ch = max(1, round(width * side)), max(1, round(height * side))
    left = int(rng.integers(0, width - cw + 1))
    top = int(rng.integers(0, height - ch + 1))
    return left, top, left + cw, top + ch


def random_crop(image: Image.Image, area: float, rng: np.random.Generator) -> Image.Image:
    """A window of ``area`` (share of the image) resized back to the image's size."""
    box = crop_box(image.width, image.height, area, rng)
    return image.crop(box).resize(image.size, Image.Resampling.BICUBIC)


def augment(image: Image.Image, rng: np.random.Generator, kinds: tuple[str, ...] = KINDS
            ) -> tuple[Image.Image, str, float]:
    """One change drawn from ``kinds`` with its parameter: (new image, kind, parameter)."""
    kind = kinds[int(rng.integers(len(kinds)))]
    low, high = RANGES[kind]
    param = float(rng.uniform(low, high))
    if kind == "brightness":
        param = param if rng.random() < 0.5 else -param
        return brightness(image, param), kind, param
    if kind == "grid":
        return grid_distortion(image, param, rng), kind, param
    return random_crop(image, param, rng), kind, param


def augmented_copies(items: list[AlignItem], share: float, out_dir: Path, seed: int,
                     kinds: tuple[str, ...] = KINDS) -> list[AlignItem]:
    """Copies of a random ``share`` of ``items`` with a changed image (written as PNG under ``out_dir``).

    A copy keeps its item's prompt, elements and labels; its ``img_path`` is ``aug/<kind>/<img_path>`` and
    its picture ``out_dir/<kind>/<img_path>.png``. Files already written (a resumed run) are reused.
    """
    if not items or share <= 0:
        return []
    rng = np.random.default_rng([seed, 1791])
    n = max(1, round(len(items) * share))
    chosen = sorted(rng.choice(len(items), size=min(n, len(items)), replace=False).tolist())
    copies = []
    for i in chosen:
        item = items[i]
        with Image.open(item.image_file) as im:
            im.load()
            new, kind, _ = augment(im, np.random.default_rng([seed, 7, i]), kinds)
        path = out_dir / kind / f"{item.img_path}.png"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            new.save(path)
        copies.append(dataclasses.replace(item, img_path=f"aug/{kind}/{item.img_path}", image_file=path))
    return copies
