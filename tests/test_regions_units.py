"""regions.py's functions one at a time against OpenCV run on the whole frame: dropped-contour counts,
masks at the frame's edge, one-pixel-wide masks, offsets, one-pixel overlaps and masks that are not 0/1."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import square_mask

from ntire_t2iqa import regions


def _full_frame(mask: np.ndarray, min_area: float) -> tuple[list[float], int]:
    """Areas of the external contours above ``min_area`` and the number at or below it, on the whole frame."""
    contours, _ = cv2.findContours((mask != 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    areas = [cv2.contourArea(c) for c in contours]
    return sorted(a for a in areas if a > min_area), sum(a <= min_area for a in areas)


def _masks() -> dict[str, np.ndarray]:
    top_left = square_mask(0, 0, 20)                        # touches the top and left edges
    bottom_right = square_mask(492, 492, 20)                # touches the bottom and right edges
    mixed = square_mask(100, 100, 30)
    square_mask(300, 40, 5, into=mixed)                     # small: dropped
    square_mask(0, 200, 12, into=mixed)                     # small, on the left edge: dropped
    line = np.zeros((512, 512), np.uint8)
    line[50:250, 7] = 1                                     # one pixel wide: a contour of area 0
    return {"top_left": top_left, "bottom_right": bottom_right, "mixed": mixed, "line": line}


@pytest.mark.parametrize("name", list(_masks()))
@pytest.mark.parametrize("min_area", [regions.PRED_MIN_AREA, regions.GT_MIN_AREA])
def test_regions_and_dropped_counts_equal_the_full_frame(name: str, min_area: float) -> None:
    mask = _masks()[name]
    areas, dropped = _full_frame(mask, min_area)
    found, n_dropped = regions.regions(mask, min_area)
    assert sorted(r.contour_area for r in found) == areas and n_dropped == dropped
    assert sorted(r.area for r in found) == sorted(int(cv2.countNonZero(_filled(r.contour))) for r in found)
    if min_area == regions.GT_MIN_AREA:
        gm, box, count = regions.reference_mask(mask)
        for given in ((None, None), (box, count)):
            ref, ref_dropped, ref_count = regions.reference_regions(gm, *given)
            assert sorted(r.contour_area for r in ref) == areas and ref_dropped == dropped
            assert ref_count == int(np.count_nonzero(mask))


def _filled(contour: np.ndarray) -> np.ndarray:
    canvas = np.zeros((512, 512), np.uint8)
    cv2.drawContours(canvas, [contour], -1, 1, -1)
    return canvas


def test_a_one_pixel_wide_mask_has_one_dropped_contour_and_its_pixels() -> None:
    line = _masks()["line"]
    assert regions.regions(line, 0.0) == ([], 1)
    assert regions.reference_regions(line.astype(bool)) == ([], 1, 200)
    dot = np.zeros((512, 512), bool)
    dot[3, 3] = True
    assert regions.regions(dot, 0.0) == ([], 1) and regions.reference_regions(dot) == ([], 1, 1)


def test_offsets_move_contours_by_x_and_y() -> None:
    mask = square_mask(10, 20, 30, size=100)
    found, _ = regions.regions(mask, 0.0, offset=(5, 9))
    (plain,), _ = regions.regions(mask, 0.0)
    assert len(found) == 1 and (found[0].x, found[0].y) == (plain.x + 5, plain.y + 9) == (15, 29)
    assert np.array_equal(found[0].contour, plain.contour + np.array([5, 9]))
    moved = regions.external_contours(mask.astype(bool), (5, 9))
    assert len(moved) == 1 and np.array_equal(moved[0], plain.contour + np.array([5, 9]))


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, bool])
def test_external_contours_treat_any_nonzero_value_as_foreground(dtype: type) -> None:
    mask = square_mask(10, 20, 30, size=100).astype(np.int32) * 3
    mask[60:80, 60:90] = 256  # zero in its low byte: still foreground
    expected, _ = cv2.findContours((mask != 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    got = regions.external_contours(mask.astype(dtype) if dtype is not np.uint8 else (mask != 0).astype(np.uint8))
    key = sorted(c.tolist() for c in got)
    assert key == sorted(c.tolist() for c in expected) and len(got) == 2


def test_pair_iou_of_a_one_pixel_overlap_is_one_over_the_union() -> None:
    # two 20 x 20 squares sharing one corner pixel: IoU = 1 / (400 + 400 - 1)
    (a,), _ = regions.regions(square_mask(10, 10, 20), 0.0)
    (b,), _ = regions.regions(square_mask(29, 29, 20), 0.0)
    assert (a.area, b.area) == (400, 400)
    assert regions.pair_iou(a, b) == regions.pair_iou(b, a) == 1 / 799
    (c,), _ = regions.regions(square_mask(30, 10, 20), 0.0)  # touching a's right edge, no shared pixel
    assert regions.pair_iou(a, c) == 0.0
    matrix = regions.iou_matrix([a, c], [b])
    assert matrix.dtype == np.float64 and matrix.tolist() == [[1 / 799], [19 / 781]]  # c, b: row 29, x 30..48


def test_a_reference_mask_of_other_values_becomes_proper_booleans() -> None:
    for value in (2, 255):
        mask = square_mask(100, 100, 30, value=value)
        gm, box, count = regions.reference_mask(mask)
        assert gm.dtype == bool and set(np.unique(gm.view(np.uint8)).tolist()) == {0, 1}
        assert box == (100, 100, 30, 30) and count == 900
        pred = square_mask(110, 100, 30).astype(np.float32)  # overlap 20 x 30 = 600 of 900 + 900 - 600
        m = regions.match_image(pred, gm, gt_count=count, gt_box=box)
        assert m.giou == pytest.approx((600 + 1e-4) / (1200 + 1e-4), abs=1e-15)


def test_match_image_counts_dropped_contours_on_both_sides() -> None:
    gt = square_mask(100, 100, 30) > 0
    gt[300:305, 300:305] = True  # reference contour of area 16: dropped
    pred = square_mask(100, 100, 30).astype(np.float32)
    pred[400:405, 50:55] = 1.0  # predicted contour far below 157 pixels: dropped
    pred[450:455, 450:455] = 1.0
    m = regions.match_image(pred, gt)
    assert (m.n_pred, m.n_pred_hit, m.n_gt, m.n_gt_missed, m.pred_dropped, m.gt_dropped) == (1, 1, 1, 0, 2, 1)
    gt_regions, gt_dropped = regions.regions(gt, regions.GT_MIN_AREA)
    assert regions.match_image(pred, gt, gt_regions, gt_dropped).gt_dropped == 1
    assert regions.match_image(pred, gt, gt_regions).gt_dropped == 0  # what the caller says, default none
    empty = regions.match_image(np.zeros((64, 64), np.float32), gt, gt_regions, gt_dropped)
    assert (empty.n_pred, empty.n_gt, empty.n_gt_missed, empty.pred_dropped, empty.gt_dropped) == (0, 1, 1, 0, 1)
    assert empty.giou == pytest.approx(1e-4 / (900 + 25 + 1e-4), abs=1e-15)


def test_column_strided_and_transposed_inputs_give_the_contiguous_results() -> None:
    mask = np.zeros((200, 400), bool)
    mask[20:80, 40:160] = True
    mask[120:180, 300:398] = True
    strided = mask[:, ::2]  # every other column: a view OpenCV cannot read as it is
    assert strided.strides[1] == 2
    got = regions.external_contours(strided)
    want = regions.external_contours(np.ascontiguousarray(strided))
    assert len(got) == 2 and sorted(c.tolist() for c in got) == sorted(c.tolist() for c in want)
    pred = np.zeros((300, 300), np.float32)
    pred[40:90, 100:220] = 0.7
    for area in (pred.T, pred[:, ::-1]):
        y = regions.prediction_crop(area)
        x = regions.prediction_crop(np.ascontiguousarray(area))
        assert y is not None and x is not None and y[1:] == x[1:] and np.array_equal(y[0], x[0])


@pytest.mark.parametrize("dtype", [np.int16, np.float64])
def test_nonzero_box_of_other_dtypes(dtype: type) -> None:
    mask = np.zeros((100, 120), dtype)
    mask[10:20, 30:70] = 2
    mask[50, 5] = 1
    assert regions.nonzero_box(mask) == (5, 10, 65, 41) == cv2.boundingRect((mask != 0).astype(np.uint8))
    assert regions.nonzero_box(np.zeros((10, 10), dtype))[2] == 0


@pytest.mark.parametrize("value", [1, 255])
def test_a_uint8_prediction_is_thresholded_to_proper_booleans(value: int) -> None:
    # the official step 1 on the whole frame: resize to 512 x 512, then > 0
    pred = np.zeros((448, 448), np.uint8)
    pred[100:160, 100:180] = value
    pred[300:303, 20:26] = value
    full = cv2.resize(pred, (512, 512)) > 0
    mask, y0, x0 = regions.prediction_crop(pred)
    assert mask.dtype == bool and set(np.unique(mask.view(np.uint8)).tolist()) == {0, 1}
    frame = np.zeros((512, 512), bool)
    frame[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]] = mask
    assert np.array_equal(frame, full)
    gt = square_mask(120, 120, 40) > 0
    m = regions.match_image(pred, gt)
    inter, union = int(np.count_nonzero(full & gt)), int(np.count_nonzero(full | gt))
    assert m.giou == pytest.approx((inter + 1e-4) / (union + 1e-4), abs=1e-15)
    assert (m.n_pred, m.n_pred_hit, m.pred_dropped) == (1, 1, 1)


def test_a_one_pixel_wide_prediction_is_found_and_dropped() -> None:
    pred = np.zeros((512, 512), np.float32)
    pred[100:300, 50] = 1.0  # one column: resized 512 -> 512 it stays one pixel wide
    gt = np.zeros((512, 512), bool)
    gt[100:300, 50:52] = True
    m = regions.match_image(pred, gt)
    assert (m.n_pred, m.pred_dropped) == (0, 1)
    assert m.giou == pytest.approx((200 + 1e-4) / (400 + 1e-4), abs=1e-15)
