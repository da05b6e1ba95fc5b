"""Training augmentation of FGA-BLIP2 (LAVIS' ``blip2_image_train``) with PIL and NumPy only.

Upstream trains on ``RandomResizedCrop(364, scale=(0.5, 1.0), bicubic)`` then ``RandomHorizontalFlip()``
(torchvision). The same sampling rule, in this module's own code:

1. up to ten tries: an area fraction uniform in ``scale``, a log-uniform aspect ratio in ``ratio`` (3/4..4/3);
   width ``round(sqrt(area * ratio))``, height ``round(sqrt(area / ratio))``; the first box that fits the
   picture is placed uniformly at random;
2. otherwise the whole picture cut to the nearest allowed aspect ratio, centred;
3. the box is cut out and resized to ``size x size`` (PIL bicubic), then mirrored with probability ``hflip``.

Randomness comes from a NumPy generator seeded per (seed, epoch, record), so a resumed run repeats it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

DEFAULT_RATIO = (3 / 4, 4 / 3)


def crop_box(width: int, height: int, rng: np.random.Generator, scale: tuple[float, float] = (0.5, 1.0),
             ratio: tuple[float, float] = DEFAULT_RATIO) -> tuple[int, int, int, int]:
    """``(left, top, box_width, box_height)`` of a random resized crop of a ``width x height`` picture."""
    area = width * height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return left, top, w, h
    aspect = width / height
    if aspect < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif aspect > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def random_resized_crop(image: Image.Image, size: int, rng: np.random.Generator, settings: dict[str, Any]
                        ) -> Image.Image:
    """A random resized crop (``settings["crop_scale"]``, absent: no crop) and mirror (``settings["hflip"]``)."""
    scale = settings.get("crop_scale")
    if scale:
        left, top, w, h = crop_box(image.width, image.height, rng, (float(scale[0]), float(scale[1])))
        image = image.crop((left, top, left + w, top + h))
    image = image.resize((size, size), Image.Resampling.BICUBIC)
    if rng.random() < float(settings.get("hflip", 0.0)):
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return image
