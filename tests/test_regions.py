"""Region extraction and matching: hand-computed cases and equality with full-frame drawing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import blob_mask, press_to_edge, square_mask

from ntire_t2iqa import regions


def _full_frame_iou(c1: np.ndarray, c2: np.ndarray) -> float:
    a = np.zeros((512, 512), np.uint8)
    b = np.zeros((512, 512), np.uint8)
    cv2.drawContours(a, [c1], -1, 1, -1)
    cv2.drawContours(b, [c2], -1, 1, -1)
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


@pytest.mark.parametrize("seed", range(12))
def test_cropped_iou_equals_full_frame_iou(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pm = blob_mask(rng, 512, 8) > 0
    gm = blob_mask(rng, 512, 6)
    pc = [c for c in regions.external_contours(pm) if cv2.contourArea(c) > regions.PRED_MIN_AREA]
    gc = [c for c in regions.external_contours(gm) if cv2.contourArea(c) > regions.GT_MIN_AREA]
    preds, _ = regions.regions(pm, regions.PRED_MIN_AREA)
    gts, _ = regions.regions(gm, regions.GT_MIN_AREA)
    assert len(preds) == len(pc) and len(gts) == len(gc)
    got = regions.iou_matrix(preds, gts)
    for i, c1 in enumerate(pc):
        for j, c2 in enumerate(gc):
            assert got[i, j] == _full_frame_iou(c1, c2)  # bit-identical


def test_contour_area_thresholds() -> None:
    # contourArea of a filled k x k square is (k - 1)^2: 13 -> 144 (dropped by both), 14 -> 169 (kept by both)
    for k, kept in [(13, 0), (14, 1)]:
        m = square_mask(50, 50, k)
        assert len(regions.regions(m, regions.PRED_MIN_AREA)[0]) == kept
        assert len(regions.regions(m, regions.GT_MIN_AREA)[0]) == kept
    # 13.5^2 = 182.25 area would not be a square; use a 12 x 15 rectangle: 11 * 14 = 154: kept as gt, dropped as pred
    m = np.zeros((512, 512), np.uint8)
    m[10:22, 10:25] = 1
    assert len(regions.regions(m, regions.GT_MIN_AREA)[0]) == 1
    assert len(regions.regions(m, regions.PRED_MIN_AREA)[0]) == 0


def test_match_image_hand_computed() -> None:
    gt = square_mask(100, 100, 20) > 0
    pred = np.maximum(square_mask(105, 100, 20), square_mask(300, 300, 30))
    # filled squares: 20x20 = 400 px each, overlap 15 x 20 = 300 -> IoU 300 / 500 = 0.6 (hit); far square: miss
    m = regions.match_image(pred, gt)
    assert (m.n_pred, m.n_pred_hit, m.n_gt, m.n_gt_missed) == (2, 1, 1, 0)
    # GIoU term: |pm & gm| = 300, |pm | gm| = 400 + 400 - 300 + 900 = 1400
    assert m.giou == pytest.approx((300 + 1e-4) / (1400 + 1e-4), abs=1e-15)


def test_iou_threshold_is_strict() -> None:
    # Two 20x20 squares overlapping by 2 columns (40 px) vs 3 columns (60 px):
    # IoU = 40 / 760 = 0.0526 (miss) and 60 / 740 = 0.081 (miss); 20x20 with 8 columns: 160/640 = 0.25 (hit)
    gt = square_mask(100, 100, 20) > 0
    for shift, hit in [(18, 0), (17, 0), (12, 1)]:
        m = regions.match_image(square_mask(100 + shift, 100, 20), gt)
        assert (m.n_pred_hit, m.n_gt - m.n_gt_missed) == (hit, hit)


def test_one_prediction_hits_two_references_and_vice_versa() -> None:
    # one wide prediction covering two references: both references hit, one prediction hit
    gt = np.maximum(square_mask(100, 100, 20), square_mask(124, 100, 20)) > 0
    pred = np.zeros((512, 512), np.uint8)
    pred[100:120, 100:144] = 1
    m = regions.match_image(pred, gt)
    assert (m.n_pred, m.n_pred_hit, m.n_gt, m.n_gt_missed) == (1, 1, 2, 0)


def test_prediction_is_resized_bilinearly_then_thresholded() -> None:
    small = np.zeros((448, 448), np.uint8)
    small[100:140, 100:140] = 1
    expected = cv2.resize(small, (512, 512)) > 0
    assert np.array_equal(regions.prediction_mask(small), expected)
    as_float = small.astype(np.float32) * 0.3
    assert np.array_equal(regions.prediction_mask(as_float), cv2.resize(as_float, (512, 512)) > 0)


@pytest.mark.parametrize("shape", [(448, 448), (512, 512), (300, 700), (1024, 1024), (500, 500), (449, 447)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
def test_cropped_resize_equals_full_frame_resize(shape, dtype) -> None:
    """Step 1 is computed on a crop around the nonzero pixels; it must equal the full-frame resize."""
    rng = np.random.default_rng(hash((shape, np.dtype(dtype).name)) % 2**32)
    for _ in range(15):
        a = blob_mask(rng, max(shape) + 64, int(rng.integers(0, 5)))[: shape[0], : shape[1]].copy()
        a[rng.integers(0, shape[0], 3), rng.integers(0, shape[1], 3)] = 1  # specks, also at the borders
        a = a.astype(dtype) * (dtype(rng.uniform(0.01, 3)) if np.dtype(dtype).kind == "f" else 1)
        full = regions.prediction_mask(a)
        got = np.zeros_like(full)
        cropped = regions.prediction_crop(a)
        if cropped is not None:
            pm, y0, x0 = cropped
            got[y0:y0 + pm.shape[0], x0:x0 + pm.shape[1]] = pm
        assert np.array_equal(full, got)


def _full_frame_match(pred_area: np.ndarray, gt_mask: np.ndarray) -> tuple:
    """The official program's per-image steps, on full 512 x 512 frames (as the plain reference scorer does)."""
    pm = cv2.resize(pred_area, (512, 512)) > 0
    gm = gt_mask != 0

    def found(mask: np.ndarray, min_area: float) -> list[np.ndarray]:
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        return [c for c in contours if cv2.contourArea(c) > min_area]

    preds, gts = found(pm, regions.PRED_MIN_AREA), found(gm, regions.GT_MIN_AREA)
    pred_hit, gt_hit = [False] * len(preds), [False] * len(gts)
    for i, p in enumerate(preds):
        for j, g in enumerate(gts):
            if _full_frame_iou(p, g) > regions.IOU_THRESHOLD:
                pred_hit[i] = gt_hit[j] = True
                break
    for j, g in enumerate(gts):
        if not gt_hit[j]:
            for i, p in enumerate(preds):
                if _full_frame_iou(p, g) > regions.IOU_THRESHOLD:
                    pred_hit[i] = gt_hit[j] = True
                    break
    giou = (np.sum(pm & gm) + 1e-4) / (np.sum(pm | gm) + 1e-4)
    return len(preds), sum(pred_hit), len(gts), gt_hit.count(False), giou


def _edge_blobs(rng: np.random.Generator, size: int) -> np.ndarray:
    """Random blobs plus rectangles that touch the frame's edges and corners, and one-pixel specks."""
    m = blob_mask(rng, size, int(rng.integers(0, 5)))
    for _ in range(int(rng.integers(0, 3))):
        k = int(rng.integers(5, 60))
        at = int(rng.integers(0, size - k))
        press_to_edge(m, k, int(rng.integers(0, 4)), at)
    if rng.random() < 0.5:
        m[rng.integers(0, size, 2), rng.integers(0, size, 2)] = 1
    return m


def _key(r: regions.Region) -> tuple:
    return r.x, r.y, r.area, r.contour_area, r.mask.tobytes(), r.mask.shape


@pytest.mark.parametrize("seed", range(40))
def test_match_image_equals_the_full_frame_program(seed: int) -> None:
    """Cropped resizing, contour search in crops, cached reference regions: counts and GIoU bit-identical."""
    rng = np.random.default_rng(seed)
    size = [448, 512, 300, 449][seed % 4]
    gt = _edge_blobs(rng, 512)
    pred = _edge_blobs(rng, size)
    if seed % 3 == 0:  # a prediction that overlaps the reference
        pred = np.maximum(pred, cv2.resize(gt, (size, size), interpolation=cv2.INTER_NEAREST))
    if seed % 7 == 3:
        pred = pred.astype(np.float32) * 0.4
    gt_bool, box, n = regions.reference_mask(gt)
    assert box == cv2.boundingRect(gt) and n == np.count_nonzero(gt)
    found, dropped, count = regions.reference_regions(gt_bool, box)
    again, dropped_again, count_again = regions.reference_regions(gt_bool)  # the box found again
    assert (dropped, count) == (dropped_again, count_again) and count == np.count_nonzero(gt)
    assert [_key(r) for r in found] == [_key(r) for r in again]
    m = regions.match_image(pred, gt_bool, found, dropped, count, box)
    assert m == regions.match_image(pred, gt_bool) == regions.match_image(pred, gt_bool, found, dropped, count)
    expected = _full_frame_match(pred, gt)
    assert (m.n_pred, m.n_pred_hit, m.n_gt, m.n_gt_missed) == expected[:4]
    assert m.giou == expected[4]


def test_reference_mask_views_01_uint8_and_copies_anything_else() -> None:
    m = np.zeros((512, 512), np.uint8)
    as_bool, box, n = regions.reference_mask(m)
    assert box[2] == 0 and n == 0 and not as_bool.any() and np.shares_memory(as_bool, m)
    m[0, 511] = m[511, 0] = 1
    as_bool, box, n = regions.reference_mask(m)
    assert box == (0, 0, 512, 512) and n == 2 and np.shares_memory(as_bool, m) and as_bool.dtype == bool
    for other in (m * 255, m.astype(np.float32), np.asfortranarray(m), m.astype(bool)):
        as_bool, box, n = regions.reference_mask(other)
        assert as_bool.dtype == bool and np.array_equal(as_bool, m != 0) and box == (0, 0, 512, 512) and n == 2
        if other.dtype != bool:
            assert not np.shares_memory(as_bool, other)
