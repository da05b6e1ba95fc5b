"""Track 2 mask checks: which arrays the official program can score, and which look like heatmaps.

The official program resizes every mask to 512 x 512 with OpenCV (``cv2.resize``, bilinear), then
counts pixels above 0. What OpenCV accepts decides what can be scored: see :data:`MASK_DTYPES`
and :data:`MASK_DTYPES_AT_512`.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .. import regions
from ..errors import Problem, error
from .common import describe

#: dtypes OpenCV's bilinear resize accepts at any size, so the official program can score them.
MASK_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
#: dtypes the official program scores only when the mask is already 512 x 512: OpenCV's resize then copies
#: the array instead of interpolating (int64 and uint64 arrive as int32, their low 32 bits, as OpenCV's
#: Python binding converts them). At any other size OpenCV refuses them and the official program crashes.
MASK_DTYPES_AT_512 = (np.int8, np.int32, np.int64, np.uint64, np.float16)

MASK_FIX = "Submit a 2-D numpy array, e.g. `mask.astype(np.uint8)` with 1 for distorted pixels."


def check_mask(mask: Any, where: str) -> tuple[np.ndarray | None, list[Problem]]:
    """A ``pred_area`` the official program can score, as a native-order 2-D array, or ``(None, [problem])``.

    The dtype rule depends on the shape: :data:`MASK_DTYPES` at any size, :data:`MASK_DTYPES_AT_512`
    only at exactly 512 x 512; ``(H, W, 1)`` is read as ``(H, W)``; bool and ``(1, H, W)`` never.
    """
    if not isinstance(mask, np.ndarray):
        return None, [error(where, f"'pred_area' is {describe(mask)}; it must be a numpy array.", MASK_FIX)]
    if mask.dtype == bool:
        return None, [error(where, "'pred_area' is a boolean array, which the official scorer cannot resize.",
                            "Convert it: `mask.astype(np.uint8)`.")]
    if mask.ndim == 3 and mask.shape[0] == 1:
        return None, [error(where, f"'pred_area' has shape {mask.shape}; the official scorer needs (H, W).",
                            "Drop the leading axis: `mask[0]` (or `mask.squeeze(0)`).")]
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        return None, [error(where, f"'pred_area' has shape {mask.shape}; it must be 2-D (H, W).", MASK_FIX)]
    if mask.shape[0] < 1 or mask.shape[1] < 1:
        return None, [error(where, f"'pred_area' has shape {mask.shape}; it is empty.", MASK_FIX)]
    native = mask.dtype.newbyteorder("=")
    if not any(native == d for d in MASK_DTYPES):
        if mask.shape != (regions.SIZE, regions.SIZE) or not any(native == d for d in MASK_DTYPES_AT_512):
            return None, [_dtype_problem(where, mask)]
    if mask.dtype.kind == "f" and not np.isfinite(mask).all():
        return None, [error(where, "'pred_area' holds NaN or infinite values.",
                            "Threshold it into a 0/1 mask (NaN counts as 0): `(heatmap > 0.5).astype(np.uint8)`.")]
    if not mask.dtype.isnative:
        mask = mask.astype(mask.dtype.newbyteorder("="))
    return np.ascontiguousarray(mask), []


def _dtype_problem(where: str, mask: np.ndarray) -> Problem:
    size = f"{regions.SIZE} x {regions.SIZE}"
    if any(mask.dtype.newbyteorder("=") == d for d in MASK_DTYPES_AT_512):
        why = (f"'pred_area' has dtype {mask.dtype} and shape {mask.shape}; the official scorer (OpenCV resize) "
               f"handles {mask.dtype} only at exactly {size}, where it copies instead of resizing, and crashes "
               "at any other size.")
    else:
        why = f"'pred_area' has dtype {mask.dtype}, which the official scorer (OpenCV resize) cannot handle."
    return error(where, f"{why} It accepts uint8, uint16, int16, float32 and float64 at any size.",
                 "Convert it: `mask.astype(np.uint8)` (e.g. `np.where(heatmap > t, 1, 0).astype(np.uint8)`).")


#: A mask with more distinct non-zero values than this looks like a heatmap.
HEATMAP_LEVELS = 16
#: A mask with more than this share of its pixels above 0 marks most of the image as distorted.
MOSTLY_DISTORTED = 0.5
_CV_STATS_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


def heatmap_sign(mask: np.ndarray) -> str:
    """Why a checked 2-D mask looks like a heatmap ("57 distinct non-zero values", "93% of pixels above 0"), or ""."""
    if any(mask.dtype == d for d in _CV_STATS_DTYPES):  # one fast pass each (OpenCV would change int64 values)
        nonzero = cv2.countNonZero(mask)
        low, high = cv2.minMaxLoc(mask)[:2]
    else:
        nonzero = int(np.count_nonzero(mask))
        low, high = (float(mask.min()), float(mask.max())) if nonzero else (0.0, 0.0)
    if nonzero == 0:
        return ""
    if mask.dtype == np.uint8:  # one value above 0 when the smallest non-zero pixel is the largest one
        binary = high <= 1 or cv2.minMaxLoc(mask, mask)[0] == high
    else:
        binary = low >= 0 and ((high <= 1 and mask.dtype.kind in "iu") or nonzero == np.count_nonzero(mask == high))
    if not binary:
        values = mask[mask != 0]
        step = max(1, values.size // 4096)  # a sample is enough to tell a heatmap
        levels = len(np.unique(values[::step]))
        if levels > HEATMAP_LEVELS:
            return f"{levels:,}{'+' if step > 1 else ''} distinct non-zero values"
    positive = nonzero if low >= 0 else int(np.count_nonzero(mask > 0))
    if positive > MOSTLY_DISTORTED * mask.size:
        return f"{positive / mask.size:.0%} of pixels above 0"
    return ""
