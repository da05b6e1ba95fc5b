"""Training augmentation as upstream's (EvalMuse-Structure ``dataset.py``, ``data_augment``), on PIL and NumPy.

Per training image, in upstream's order, every draw from that image's own generator (seeded by run
seed, epoch and index, so a resumed run repeats them):

1. ``crop`` (probability; 0.5 upstream): a window of ``U(0.8, 1)`` times the picture's height and,
   independently, ``U(0.8, 1)`` times its width, at a uniform position, cut from the picture at the
   model's input size and resized back with LANCZOS. The heatmap target is resized to the picture's
   side, cut at the same pixels and resized to the head's output size.
2. ``color_jpeg`` (0.1 upstream): a colour jitter (brightness ``U(0.95, 1.05)``, contrast and saturation
   ``U(0.8, 1)``, hue shift ``U(-0.025, 0.025)`` of the circle; the four applied in a random order, each
   as PIL's enhancers / an HSV hue rotation), then a JPEG round trip at a quality drawn from 70..100.
3. ``grayscale`` (0.1 upstream): the luminance copied into all three channels.

``hflip`` (a horizontal flip of picture and target) is not upstream's; the tiny config uses it.
Upstream resizes targets with scikit-image's anti-aliased ``resize``; here OpenCV's area filter
(shrinking) or bilinear filter (enlarging) does it, so a target differs by interpolation detail only.
"""

from __future__ import annotations

import io
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageEnhance

#: ColorJitter ranges of upstream's ``data_augment``.
BRIGHTNESS = (0.95, 1.05)
CONTRAST = (0.8, 1.0)
SATURATION = (0.8, 1.0)
HUE = 0.025
JPEG_QUALITY = (70, 100)
CROP_FRACTION = (0.8, 1.0)


def resize_map(m: np.ndarray, height: int, width: int) -> np.ndarray:
    """A float map resized to ``(height, width)``: area filter when shrinking, bilinear when enlarging."""
    if m.shape == (height, width):
        return m
    shrink = height * width < m.shape[0] * m.shape[1]
    return cv2.resize(m, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def adjust_hue(img: Image.Image, shift: float) -> Image.Image:
    """Rotate the hue by ``shift`` of the circle (-0.5..0.5) in PIL's 8-bit HSV space."""
    h, s, v = img.convert("HSV").split()
    offset = np.uint8(int(shift * 255) % 256)  # truncated to a whole step, wrapping round the circle
    hue = (np.asarray(h, dtype=np.uint8) + offset).astype(np.uint8)
    return Image.merge("HSV", (Image.fromarray(hue, "L"), s, v)).convert("RGB")


def color_jitter(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Brightness, contrast, saturation and hue changes with upstream's ranges, in a random order."""
    factors = (rng.uniform(*BRIGHTNESS), rng.uniform(*CONTRAST), rng.uniform(*SATURATION), rng.uniform(-HUE, HUE))
    ops = (lambda im: ImageEnhance.Brightness(im).enhance(factors[0]),
           lambda im: ImageEnhance.Contrast(im).enhance(factors[1]),
           lambda im: ImageEnhance.Color(im).enhance(factors[2]),
           lambda im: adjust_hue(im, factors[3]))
    for k in rng.permutation(4):
        img = ops[int(k)](img)
    return img


def jpeg_round_trip(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The picture saved as JPEG at a quality drawn from 70..100 and decoded again."""
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)))
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        return decoded.convert("RGB")


def crop_box(height: int, width: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """``(top, left, crop_height, crop_width)`` of a random window of 80-100 % of each side."""
    ch = max(1, int(height * rng.uniform(*CROP_FRACTION)))
    cw = max(1, int(width * rng.uniform(*CROP_FRACTION)))
    return int(rng.integers(0, height - ch + 1)), int(rng.integers(0, width - cw + 1)), ch, cw


def augment_item(image: np.ndarray, target: np.ndarray | None, cfg: dict[str, Any], rng: np.random.Generator,
                 target_size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """One training picture ``(S, S, 3)`` uint8 and its full-resolution target map (0..1, or ``None``).

    Returns the augmented picture (same size, uint8) and the target at ``target_size`` (float32 0..1).
    """
    size = image.shape[0]
    img = Image.fromarray(image, "RGB")
    m = None if target is None else target.astype(np.float32)
    if rng.random() < cfg.get("crop", 0.0):
        top, left, ch, cw = crop_box(img.height, img.width, rng)
        img = img.crop((left, top, left + cw, top + ch)).resize((size, size), Image.Resampling.LANCZOS)
        if m is not None:
            m = resize_map(m, size, size)[top:top + ch, left:left + cw]
    if rng.random() < cfg.get("color_jpeg", 0.0):
        img = jpeg_round_trip(color_jitter(img, rng), rng)
    if rng.random() < cfg.get("grayscale", 0.0):
        img = img.convert("L").convert("RGB")
    out = np.array(img, dtype=np.uint8)  # a writable copy
    if m is not None:
        m = np.clip(resize_map(np.ascontiguousarray(m), target_size, target_size), 0.0, 1.0)
    if rng.random() < cfg.get("hflip", 0.0):
        out = out[:, ::-1]
        m = None if m is None else m[:, ::-1]
    return np.ascontiguousarray(out), None if m is None else np.ascontiguousarray(m, dtype=np.float32)
