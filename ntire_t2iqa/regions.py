"""Region-level matching for Track 2, exact to the official program and fast.

The official program draws every pair of contours filled on two full 512 x 512 canvases
to compute one IoU. Here each contour is drawn once, filled, inside its own bounding box,
and intersections are counted only where two bounding boxes overlap. The pixel counts,
and so every IoU, are identical (integer shifts do not change OpenCV's rasterisation).

Two-pass matching (each prediction takes the first reference region with IoU > 0.1,
then each unmatched reference region the first prediction) marks a prediction as hit
exactly when some reference region overlaps it with IoU > 0.1, and a reference region
as hit exactly when some prediction does; the counts below use that equivalence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

SIZE = 512
PRED_MIN_AREA = SIZE * SIZE * 0.0006  # 157.2864
GT_MIN_AREA = 150.0
IOU_THRESHOLD = 0.1


class Region:
    """One external contour, drawn filled inside its bounding box when first needed.

    Matching needs a region's pixels only where its box meets a box of the other side, so
    the drawing (and the pixel count) is deferred until :attr:`mask` or :attr:`area` is read.
    """

    __slots__ = ("x", "y", "w", "h", "contour", "contour_area", "_mask", "_area")

    def __init__(self, contour: np.ndarray, contour_area: float):
        self.x, self.y, self.w, self.h = cv2.boundingRect(contour)
        self.contour = contour
        self.contour_area = contour_area
        self._mask: np.ndarray | None = None
        self._area = -1

    @property
    def x1(self) -> int:
        return self.x + self.w

    @property
    def y1(self) -> int:
        return self.y + self.h

    @property
    def mask(self) -> np.ndarray:
        """The filled contour inside the box: bool, shape ``(h, w)``."""
        if self._mask is None:
            canvas = np.zeros((self.h, self.w), dtype=np.uint8)
            cv2.drawContours(canvas, [self.contour], -1, 1, thickness=-1, offset=(-self.x, -self.y))
            self._mask = canvas.view(bool)
        return self._mask

    @property
    def area(self) -> int:
        """Pixels of the filled contour."""
        if self._area < 0:
            self._area = cv2.countNonZero(self.mask.view(np.uint8))
        return self._area


def prediction_mask(pred_area: np.ndarray) -> np.ndarray:
    """The official step 1: bilinear resize to 512 x 512 (OpenCV default), then ``> 0``."""
    return cv2.resize(pred_area, (SIZE, SIZE)) > 0


def _aligned_span(lo: int, hi: int, n: int, margin: int = 2) -> tuple[int, int, int, int]:
    """Source span [s0, s1) around [lo, hi) and its output span [d0, d1) for an n -> SIZE resize.

    Both ends sit on multiples of n/g and SIZE/g (g = gcd(n, SIZE)), where the resize's
    source coordinate of an output pixel is exactly a whole number of source pixels, so a
    crop is resized with the very same interpolation weights as the full image. The
    margin keeps zeros at the crop's edges, so OpenCV's border replication adds nothing.
    """
    g = math.gcd(n, SIZE)
    su, du = n // g, SIZE // g
    s0 = (max(0, lo - margin) // su) * su
    s1 = min(n, -(-min(n, hi + margin) // su) * su)
    return s0, s1, s0 // su * du, s1 // su * du


def nonzero_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(x, y, w, h)`` of the nonzero pixels (``w == 0`` when there are none)."""
    if mask.dtype == bool:
        m = np.ascontiguousarray(mask).view(np.uint8)  # zero-copy when already contiguous
    else:
        m = np.ascontiguousarray(mask if mask.dtype == np.uint8 else (mask != 0).view(np.uint8))
    return cv2.boundingRect(m)


def prediction_crop(pred_area: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """Step 1 computed only around the nonzero pixels: ``(mask, y0, x0)``, or ``None`` when all zero.

    ``mask`` equals ``prediction_mask(pred_area)[y0:y0 + h, x0:x0 + w]`` and the full mask is
    zero elsewhere (an output pixel whose source taps are all zero is zero).
    """
    bx, by, bw, bh = nonzero_box(pred_area)
    if bw == 0:
        return None
    h, w = pred_area.shape
    r0, r1, y0, y1 = _aligned_span(by, by + bh, h)
    c0, c1, x0, x1 = _aligned_span(bx, bx + bw, w)
    crop = pred_area[r0:r1, c0:c1]  # a view: OpenCV reads row-strided arrays as they are
    if crop.strides[1] != crop.itemsize:
        crop = np.ascontiguousarray(crop)
    pm = cv2.resize(crop, (x1 - x0, y1 - y0))
    if pm.dtype == np.uint8:  # the usual case: threshold in place, no second array
        cv2.threshold(pm, 0, 1, cv2.THRESH_BINARY, dst=pm)
        return pm.view(bool), y0, x0
    return pm > 0, y0, x0


def external_contours(mask: np.ndarray, offset: tuple[int, int] = (0, 0)) -> list[np.ndarray]:
    """External contours (``RETR_EXTERNAL``, ``CHAIN_APPROX_SIMPLE``) of a 2-D mask; nonzero is foreground.

    ``offset`` (x, y) is added to every point (for a mask cropped out of a larger frame).
    """
    if mask.dtype == bool or mask.dtype == np.uint8:
        m = mask.view(np.uint8)  # zero-copy: a bool is one byte holding 0 or 1
        if m.strides[1] != 1:  # OpenCV reads row-strided arrays (crops) as they are, not column-strided ones
            m = np.ascontiguousarray(m)
    else:  # not a cast to uint8, which would make 256 or 0.5 background
        m = np.ascontiguousarray(mask != 0).view(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=offset)
    return list(contours)


def regions(mask: np.ndarray, min_area: float, offset: tuple[int, int] = (0, 0)) -> tuple[list[Region], int]:
    """Regions of a mask with ``contourArea > min_area``; also the number of contours dropped.

    Contours are searched only inside the box of the nonzero pixels (with a 1-pixel zero
    border), which gives the same contours as the whole frame.
    """
    bx, by, bw, bh = nonzero_box(mask)
    if bw == 0:
        return [], 0
    h, w = mask.shape
    x0, y0, x1, y1 = max(0, bx - 1), max(0, by - 1), min(w, bx + bw + 1), min(h, by + bh + 1)
    return _filtered(external_contours(mask[y0:y1, x0:x1], (offset[0] + x0, offset[1] + y0)), min_area)


def _filtered(contours: list[np.ndarray], min_area: float) -> tuple[list[Region], int]:
    """Regions of the contours with ``contourArea > min_area``, and the number dropped."""
    kept: list[Region] = []
    for c in contours:
        area = cv2.contourArea(c)
        if area > min_area:
            kept.append(Region(c, area))
    return kept, len(contours) - len(kept)


def reference_mask(mask: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int], int]:
    """A 2-D reference mask as booleans (nonzero: True), the box of its nonzero pixels, and their count.

    A C-contiguous uint8 0/1 mask is viewed in place, not copied. Its row maxima both prove
    that it holds only 0 and 1 and give the box's rows; the columns and the count are taken
    from the band of nonzero rows only.
    """
    if mask.dtype == np.uint8 and mask.ndim == 2 and mask.size and mask.flags.c_contiguous:
        rows = cv2.reduce(mask, 1, cv2.REDUCE_MAX).ravel()
        if int(rows.max()) <= 1:
            ys = np.flatnonzero(rows)
            if not ys.size:
                return mask.view(bool), (0, 0, 0, 0), 0
            y0, y1 = int(ys[0]), int(ys[-1]) + 1
            band = mask[y0:y1]
            x0, _, w, _ = cv2.boundingRect(band)
            return mask.view(bool), (x0, y0, w, y1 - y0), cv2.countNonZero(band)
    as_bool = np.ascontiguousarray(mask != 0)
    return as_bool, nonzero_box(as_bool), int(np.count_nonzero(as_bool))


def reference_regions(gt_mask: np.ndarray, box: tuple[int, int, int, int] | None = None,
                      count: int | None = None) -> tuple[list[Region], int, int]:
    """A reference mask's regions (area > 150), the number of contours dropped, and its pixel count.

    ``box`` and ``count``: the mask's nonzero box (:func:`nonzero_box`) and pixel count, when
    already known (:func:`reference_mask` gives both).
    """
    bx, by, bw, bh = nonzero_box(gt_mask) if box is None else box
    if bw == 0:
        return [], 0, 0
    h, w = gt_mask.shape
    x0, y0, x1, y1 = max(0, bx - 1), max(0, by - 1), min(w, bx + bw + 1), min(h, by + bh + 1)
    crop = gt_mask[y0:y1, x0:x1]  # every nonzero pixel is inside
    found, dropped = _filtered(external_contours(crop, (x0, y0)), GT_MIN_AREA)
    return found, dropped, int(np.count_nonzero(crop)) if count is None else count


def pair_iou(a: Region, b: Region) -> float:
    """IoU of two filled regions (0 when their boxes do not overlap)."""
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x1, b.x1), min(a.y1, b.y1)
    if x0 >= x1 or y0 >= y1:
        return 0.0
    sa = a.mask[y0 - a.y:y1 - a.y, x0 - a.x:x1 - a.x]
    sb = b.mask[y0 - b.y:y1 - b.y, x0 - b.x:x1 - b.x]
    inter = int(np.count_nonzero(sa & sb))
    if inter == 0:
        return 0.0
    return inter / (a.area + b.area - inter)


def iou_matrix(preds: list[Region], gts: list[Region]) -> np.ndarray:
    """IoU of every (prediction, reference) pair, shape ``(len(preds), len(gts))``."""
    out = np.zeros((len(preds), len(gts)), dtype=np.float64)
    for i, p in enumerate(preds):
        for j, g in enumerate(gts):
            out[i, j] = pair_iou(p, g)
    return out


@dataclass(frozen=True)
class ImageMatch:
    """Per-image region counts and GIoU term."""

    n_pred: int
    n_pred_hit: int
    n_gt: int
    n_gt_missed: int
    giou: float
    pred_dropped: int = 0
    gt_dropped: int = 0


def match_counts(preds: list[Region], gts: list[Region]) -> tuple[int, int]:
    """(hit predictions, missed reference regions) under the official two-pass matching."""
    if not preds or not gts:
        return 0, len(gts)
    pred_hit = [False] * len(preds)
    gt_hit = [False] * len(gts)
    for i, p in enumerate(preds):
        for j, g in enumerate(gts):
            # a pair whose two regions are both hit already cannot change the counts
            if not (pred_hit[i] and gt_hit[j]) and pair_iou(p, g) > IOU_THRESHOLD:
                pred_hit[i] = gt_hit[j] = True
    return sum(pred_hit), gt_hit.count(False)


def giou_term(inter: int, pred_count: int, gt_count: int) -> float:
    """(|pm & gm| + 1e-4) / (|pm | gm| + 1e-4) for one image, from pixel counts."""
    return (inter + 1e-4) / (pred_count + gt_count - inter + 1e-4)


def match_image(pred_area: np.ndarray, gt_mask: np.ndarray, gt_regions: list[Region] | None = None,
                gt_dropped: int = 0, gt_count: int | None = None,
                gt_box: tuple[int, int, int, int] | None = None) -> ImageMatch:
    """Score one image: resize and threshold the prediction, extract regions, match, GIoU.

    ``gt_mask`` is the boolean 512 x 512 reference mask; its regions, pixel count and
    nonzero box may be passed precomputed (they depend only on the reference).
    """
    if gt_regions is None:
        gt_regions, gt_dropped = regions(gt_mask, GT_MIN_AREA)
    if gt_count is None:
        gt_count = int(np.count_nonzero(gt_mask))
    cropped = prediction_crop(pred_area)
    if cropped is None:  # an all-zero prediction resizes to an all-zero mask: nothing to find
        return ImageMatch(0, 0, len(gt_regions), len(gt_regions), giou_term(0, 0, gt_count), 0, gt_dropped)
    pm, y0, x0 = cropped
    # The crop has a zero border wherever it does not reach the frame's edge: its contours are the frame's.
    preds, pred_dropped = _filtered(external_contours(pm, (x0, y0)), PRED_MIN_AREA)
    n_hit, n_missed = match_counts(preds, gt_regions)
    # |pm & gm|, counted where the crop meets the reference's nonzero box (outside it gm is zero)
    gx, gy, gw, gh = (0, 0, gt_mask.shape[1], gt_mask.shape[0]) if gt_box is None else gt_box
    ix0, iy0 = max(x0, gx), max(y0, gy)
    ix1, iy1 = min(x0 + pm.shape[1], gx + gw), min(y0 + pm.shape[0], gy + gh)
    inter = 0
    if ix0 < ix1 and iy0 < iy1:
        inter = int(np.count_nonzero(pm[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] & gt_mask[iy0:iy1, ix0:ix1]))
    return ImageMatch(len(preds), n_hit, len(gt_regions), n_missed,
                      giou_term(inter, cv2.countNonZero(pm.view(np.uint8)), gt_count), pred_dropped, gt_dropped)
