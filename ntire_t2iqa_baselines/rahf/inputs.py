"""Images, targets and runtime helpers for RAHF, on PIL, OpenCV and torch (no torchvision).

Images are decoded at full size and resized to the model's square input with PIL's Lanczos
filter (upstream's ``evaluate.py`` and data loader do the same: ``Image.open(path).resize((448, 448),
LANCZOS)``), and kept as uint8 until they reach the device, where they are normalised with CLIP's
mean and std. Heatmap targets (from :func:`ntire_t2iqa_baselines.common.data.structure_items`, 512 x 512) are,
by ``train.heatmap_target``, ``graded``: upstream's training maps (EvalMuse-Structure
``data_process.py``: 64/127/180/255 by how many annotators marked the pixel, bilinear-resized,
divided by 255), or ``binary``: the at-least-two-annotators 0/1 masks the reference uses. Either is
area-resized to the size of the head's output (512 in the full model, so no resize there).
Training pictures are augmented per image as upstream (:mod:`.augment`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..common.data import StructureItem
from ..common.runtime import cpu_threads, free_cores  # noqa: F401 - the shared helpers, importable from here too
from .augment import augment_item
from .model import CLIP_MEAN, CLIP_STD

#: ``precision`` settings (``train.precision``, ``infer.precision``): fp32 as upstream, or bf16 autocast on a GPU.
PRECISIONS = ("fp32", "bf16")


def load_image(path: Path, size: int) -> torch.Tensor:
    """``(3, size, size)`` uint8 RGB: the picture decoded at full size, then Lanczos-resized (as upstream)."""
    with Image.open(path) as img:
        rgb = img.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).contiguous()


def precision_context(device: torch.device, precision: str) -> Any:
    """``fp32``: no autocast (upstream trains and infers in float32); ``bf16``: bf16 autocast on a GPU only."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


#: ``train.heatmap_target`` -> the :class:`StructureItem` field holding it.
TARGET_FIELDS = {"binary": "mask", "graded": "graded"}


def heatmap_target(train_config: dict[str, Any]) -> str:
    """The configured heatmap target kind (``binary`` when the key is absent)."""
    kind = str(train_config.get("heatmap_target", "binary"))
    if kind not in TARGET_FIELDS:
        raise ValueError(f"train.heatmap_target must be one of {', '.join(TARGET_FIELDS)}, not {kind!r}")
    return kind


def target_map(mask: np.ndarray, size: int, scale: float = 1.0) -> torch.Tensor:
    """A mask (0/1, or 0..255 with ``scale`` 1/255) as a ``(size, size)`` float map in 0..1 (area resize)."""
    m = mask.astype(np.float32) * np.float32(scale)
    if m.shape != (size, size):
        m = cv2.resize(m, (size, size), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.clip(m, 0.0, 1.0))


def normalise(images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` pixels in 0..255 (any dtype) -> float in 0..1, standardised with CLIP's statistics."""
    mean = torch.tensor(CLIP_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


class StructureSet(Dataset):
    """Track 2 items as (uint8 image, target map or empty, normalised score or nan, index).

    With ``augment`` (a ``train.augment`` dict) every picture is augmented by :func:`augment_item`
    with a generator seeded by ``(seed, epoch, index)``; set :attr:`epoch` before each pass.
    """

    def __init__(self, items: list[StructureItem], image_size: int, target_size: int, cache: bool = False,
                 target: str = "binary", augment: dict[str, Any] | None = None, seed: int = 0):
        self.items = items
        self.field = TARGET_FIELDS[target]
        self.scale = 1.0 / 255.0 if target == "graded" else 1.0
        self.image_size = image_size
        self.target_size = target_size
        self.augment = dict(augment or {})
        self.seed = int(seed)
        self.epoch = 0
        self.cache: list[torch.Tensor] | None = None
        if cache:
            self.cache = [load_image(it.image_file, image_size) for it in items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        item = self.items[i]
        image = self.cache[i] if self.cache is not None else load_image(item.image_file, self.image_size)
        mask = getattr(item, self.field)
        score = torch.tensor((item.mos - 1.0) / 4.0 if item.mos is not None else float("nan"))
        if not self.augment:
            target = target_map(mask, self.target_size, self.scale) if mask is not None else torch.zeros(0)
            return image, target, score, i
        rng = np.random.default_rng([self.seed, self.epoch, i])
        full = None if mask is None else np.clip(mask.astype(np.float32) * np.float32(self.scale), 0.0, 1.0)
        picture, m = augment_item(image.permute(1, 2, 0).numpy(), full, self.augment, rng, self.target_size)
        target = torch.from_numpy(m) if m is not None else torch.zeros(0)
        return torch.from_numpy(picture).permute(2, 0, 1).contiguous(), target, score, i


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
_GLIBC_DEFAULTS = {_M_TRIM_THRESHOLD: 128 * 1024, _M_MMAP_THRESHOLD: 128 * 1024}


@contextmanager
def reuse_freed_memory(enabled: bool) -> Iterator[None]:
    """On Linux (glibc), keep freed heap memory for reuse inside the block instead of unmapping it.

    A CPU training step allocates and frees the same large activation buffers every time; with
    glibc's defaults each is a fresh ``mmap`` whose pages fault in again (about 15-20 % of a
    tiny-config step in system time). Defaults are restored on exit; elsewhere this does nothing.
    """
    libc = None
    if enabled and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.mallopt  # noqa: B018 - glibc only
        except (OSError, AttributeError):
            libc = None
    if libc is not None:
        for param in _GLIBC_DEFAULTS:
            libc.mallopt(param, 1 << 30)
    try:
        yield
    finally:
        if libc is not None:
            for param, value in _GLIBC_DEFAULTS.items():
                libc.mallopt(param, value)
