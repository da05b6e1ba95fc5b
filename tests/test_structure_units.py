"""Track 2 units against hand-computed values: the reference's cached regions and boxes, the scorer's result
and details, score and mask checks, and the heatmap signs (messages are in docs/problems.md)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from helpers import square_mask
from scipy import stats

from ntire_t2iqa.errors import SubmissionError
from ntire_t2iqa.tracks import structure
from ntire_t2iqa.tracks.structure import StructureRecord, StructureReference
from ntire_t2iqa.tracks.structure_masks import check_mask, heatmap_sign


def _reference_masks() -> dict[str, np.ndarray]:
    """a: a 20 x 20 square at (100, 100) and a 10 x 10 one at (300, 300) (contour area 81: dropped);
    b: graded, a 30 x 30 square of 255 at (10, 10) holding a 10 x 10 square of 1 at (20, 20); c, d: empty."""
    a = square_mask(300, 300, 10, into=square_mask(100, 100, 20))
    b = square_mask(20, 20, 10, into=square_mask(10, 10, 30, value=255))
    return {"a": a, "b": b, "c": np.zeros((512, 512), np.uint8), "d": np.zeros((512, 512), np.uint8)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> StructureReference:
    path = tmp_path_factory.mktemp("ref") / "gt.pkl"
    scores = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    path.write_bytes(pickle.dumps({n: {"score": scores[n], "pred_area": m} for n, m in _reference_masks().items()}))
    return structure.load_reference(path)


def _records() -> dict[str, StructureRecord]:
    """a: the 20 x 20 square moved 2 pixels right (a hit); b: the 30 x 30 square (a hit); c: nothing;
    d: a 20 x 20 square where the reference has none (a false region)."""
    return {"a": StructureRecord(0.1, square_mask(102, 100, 20)), "b": StructureRecord(0.4, square_mask(10, 10, 30)),
            "c": StructureRecord(0.2, np.zeros((512, 512), np.uint8)),
            "d": StructureRecord(0.9, square_mask(400, 400, 20))}


# --------------------------------------------------------------------------- the reference's cached values


def test_loaded_reference_regions_boxes_and_giou_pixels(reference: StructureReference) -> None:
    found, dropped, count = reference.regions_of("a")
    assert [(r.x, r.y, r.w, r.h) for r in found] == [(100, 100, 20, 20)] and (dropped, count) == (1, 500)
    assert reference.regions_of("a")[0] is found  # computed once
    assert reference.box_of("a") == (100, 100, 210, 210)
    assert reference.box_of("c") == (0, 0, 0, 0)
    assert reference.box_of("nowhere") is None
    mask, n, box = reference.giou_mask_of("a")
    assert mask is reference.masks["a"] and (n, box) == (500, (100, 100, 210, 210))
    ones, n, box = reference.giou_mask_of("b")  # graded: only the pixels equal to 1
    expected = square_mask(20, 20, 10).astype(bool)
    assert np.array_equal(ones, expected) and (n, box) == (100, (20, 20, 10, 10))
    found, dropped, count = reference.regions_of("b")  # regions use every nonzero pixel
    assert [(r.x, r.y, r.w, r.h) for r in found] == [(10, 10, 30, 30)] and (dropped, count) == (0, 900)
    assert list(reference.graded) == ["b"]


def test_the_reference_is_trusted_data_not_scanned_like_a_submission(tmp_path) -> None:
    """gt.pkl skips the participant-side opcode scan (still restricted to data): data that refers to itself,
    which a submission may not hold, loads."""
    gt: dict = {}
    gt["a"] = {"score": 2.0, "pred_area": square_mask(0, 0, 20), "all": gt}
    path = tmp_path / "gt.pkl"
    path.write_bytes(pickle.dumps(gt))
    ref = structure.load_reference(path)
    assert ref.scores == {"a": 2.0} and ref.box_of("a") == (0, 0, 20, 20)


def test_a_reference_built_without_cached_boxes_computes_them() -> None:
    masks = {n: m != 0 for n, m in _reference_masks().items()}
    ref = StructureReference({n: 1.0 for n in masks}, masks)
    found, dropped, count = ref.regions_of("a")
    assert [(r.x, r.y, r.w, r.h) for r in found] == [(100, 100, 20, 20)] and (dropped, count) == (1, 500)
    assert ref.box_of("a") is None
    mask, n, box = ref.giou_mask_of("b")
    assert mask is masks["b"] and (n, box) == (900, None)


# --------------------------------------------------------------------------- the scorer


def test_compute_pools_hand_counted_regions_and_keeps_per_image_details(reference: StructureReference) -> None:
    result = structure.compute(_records(), reference, "none")
    assert (result.track, result.n_images, result.plcc_fit, result.plcc_fit_used) == ("structure", 4, "none", "none")
    # predictions: 3 counted (a, b, d), 2 hit; reference regions: 2 (a, b), none missed
    p, r = 2 / 3, 1.0
    f1 = 2 * p * r / (p + r + 1e-10)
    gious = [(360 + 1e-4) / (400 + 500 - 360 + 1e-4), (100 + 1e-4) / (900 + 100 - 100 + 1e-4), 1.0,
             1e-4 / (400 + 1e-4)]
    gt, pred = [1.0, 2.0, 3.0, 4.0], [0.1, 0.4, 0.2, 0.9]
    srcc, plcc = stats.spearmanr(gt, pred)[0], stats.pearsonr(gt, pred)[0]
    assert result.components == pytest.approx({"f1": f1, "precision": p, "recall": r, "giou": np.mean(gious)},
                                              abs=1e-12)
    assert (result.srcc, result.plcc) == (pytest.approx(srcc, abs=1e-12), pytest.approx(plcc, abs=1e-12))
    assert result.main_score == pytest.approx(0.7 * f1 + 0.15 * (srcc + plcc), abs=1e-12)
    d = result.details
    assert d["image"] == ["a", "b", "c", "d"] and len(d["matches"]) == 4
    assert d["gt_score"].tolist() == gt and d["pred_score"].tolist() == pred
    counts = {key: d[key].tolist() for key in ("n_pred", "n_pred_hit", "n_gt", "n_gt_missed", "pred_dropped",
                                                  "gt_dropped")}
    assert counts == {"n_pred": [1, 1, 0, 1], "n_pred_hit": [1, 1, 0, 0], "n_gt": [1, 1, 0, 0],
                      "n_gt_missed": [0, 0, 0, 0], "pred_dropped": [0, 0, 0, 0], "gt_dropped": [1, 0, 0, 0]}
    assert d["giou"] == pytest.approx(gious, abs=1e-15)
    assert [m.giou for m in d["matches"]] == d["giou"].tolist()
    assert len(result.warnings) == 1 and result.warnings[0].startswith(
        "GIoU: 1 of the reference's 4 masks hold values other than 0 and 1")


def test_compute_fit_asked_and_used() -> None:
    masks = {n: m != 0 for n, m in _reference_masks().items() if n != "b"}
    records = {n: rec for n, rec in _records().items() if n != "b"}
    ref = StructureReference({"a": 1.0, "c": 3.0, "d": 4.0}, masks)
    three = structure.compute(records, ref, "official")  # 4 parameters cannot be fitted to 3 points
    assert (three.plcc_fit, three.plcc_fit_used) == ("none", "none")
    assert three.plcc == pytest.approx(stats.pearsonr([1.0, 3.0, 4.0], [0.1, 0.2, 0.9])[0], abs=1e-12)
    assert any("fit failed (4 parameters cannot be fitted to 3 points)" in w for w in three.warnings)
    masks["e"], records["e"] = masks["c"], StructureRecord(0.5, np.zeros((512, 512), np.uint8))
    ref = StructureReference({"a": 1.0, "c": 3.0, "d": 4.0, "e": 2.0}, masks)
    four = structure.compute(records, ref, "official")
    assert (four.plcc_fit, four.plcc_fit_used) == ("official", "logistic4")


def test_compute_scores_as_floats_whatever_numbers_it_is_given() -> None:
    masks = {n: np.zeros((512, 512), bool) for n in "abcd"}
    ref = StructureReference({"a": 1, "b": 2, "c": 4, "d": 3}, masks)
    records = {n: StructureRecord(s, np.zeros((4, 4), np.uint8)) for n, s in zip("abcd", [4, 3, 2, 1])}
    result = structure.compute(records, ref, "none")  # type: ignore[arg-type]
    assert result.details["gt_score"].dtype == np.float64 and result.details["pred_score"].dtype == np.float64
    assert result.srcc == pytest.approx(-0.8, abs=1e-12)


def test_compute_coverage_check_and_its_skipping(reference: StructureReference) -> None:
    extra = dict(_records(), x=StructureRecord(1.0, np.zeros((4, 4), np.uint8)))
    checked = structure.compute(extra, reference, "none")
    assert checked.warnings[0] == ("output.pkl: has 1 image(s) that are not in the reference and are ignored: 'x'. "
                                   "Fix: Remove them, or check the key spelling.")
    unchecked = structure.compute(extra, reference, "none", check=False)
    assert unchecked.warnings == checked.warnings[1:] and unchecked.main_score == checked.main_score
    missing = {n: r for n, r in _records().items() if n != "c"}
    with pytest.raises(SubmissionError) as info:
        structure.compute(missing, reference, "none")
    assert [p.what for p in info.value.problems] == ["misses 1 image(s) of the reference: 'c'."]
    with pytest.raises(KeyError):  # the caller said it had checked
        structure.compute(missing, reference, "none", check=False)


# --------------------------------------------------------------------------- scores and masks


@pytest.mark.parametrize(("value", "finite"), [
    (3.5, True), (np.array(3.5), True), (np.array(7, np.int8), True), (np.array(2, np.uint16), True),
    (np.float32(1), True), (np.array([3.5]), False), (np.array(np.nan), False), (np.array(True), False),
    (np.array("3"), False), (10**400, False), (float("inf"), False), ("3", False), (None, False), (True, False),
])
def test_finite_score(value: object, finite: bool) -> None:
    assert structure._finite_score(value) is finite


def test_checked_masks_are_native_contiguous_2d_arrays() -> None:
    big_endian = np.arange(12, dtype=">i2").reshape(3, 4)
    mask, problems = check_mask(big_endian, "w")
    assert not problems and mask.dtype == np.int16 and mask.dtype.isnative
    assert mask.tolist() == big_endian.tolist()
    column = np.arange(12, dtype=np.uint8).reshape(3, 4)[:, ::2]  # a strided view
    mask, _ = check_mask(column, "w")
    assert mask.flags.c_contiguous and mask.tolist() == column.tolist()
    mask, _ = check_mask(np.ones((4, 1), np.float32), "w")
    assert mask.shape == (4, 1)
    mask, _ = check_mask(np.ones((1, 4, 1), np.uint16), "w")  # (1, H, W) wins over (H, W, 1)
    assert mask is None
    mask, _ = check_mask(np.ones((3, 5, 1), np.uint8), "w")
    assert mask.shape == (3, 5)
    native = np.zeros((2, 2), np.uint8)
    assert check_mask(native, "w")[0] is native  # nothing copied


# --------------------------------------------------------------------------- heatmap signs


def _with_zero_and_top(levels: int) -> np.ndarray:
    """A float mask: one 0, ``levels - 1`` distinct values in (0, 1), then one pixel at 1 (the top value)."""
    return np.concatenate([[0.0], np.linspace(0.05, 0.95, levels - 1), [1.0]]).astype(np.float32).reshape(1, -1)


@pytest.mark.parametrize(("mask", "sign"), [
    (np.zeros((3, 3), np.uint8), ""),
    (np.zeros((3, 3), np.int64), ""),
    (np.ones((1, 1), np.uint8), "100% of pixels above 0"),
    (np.ones((1, 1), np.int64), "100% of pixels above 0"),
    (np.array([[1, 0]], np.uint8), ""),  # half the pixels: not more than half
    (np.array([[7, 0, 0]], np.int32), ""),
    (np.array([[7, 7, 0]], np.int32), "67% of pixels above 0"),
    (np.array([[-1, -2, 0, 1]], np.int16), ""),  # only pixels above 0 count
    (np.array([[-1, 2, 3, 0]], np.int64), ""),
    (np.array([[-1, 2, 3, 3]], np.int64), "75% of pixels above 0"),
    (np.array([[-1, 1, 1]], np.int16), "67% of pixels above 0"),
    (np.array([[-0.5, 0.25, 0.25]], np.float32), "67% of pixels above 0"),
    (np.arange(17, dtype=np.int64).reshape(1, -1), "94% of pixels above 0"),  # 16 levels only
    (np.pad(np.arange(1, 18, dtype=np.int64), (0, 30)).reshape(1, -1), "17 distinct non-zero values"),
    (np.pad(np.arange(1, 18, dtype=np.uint8), (0, 30)).reshape(1, -1), "17 distinct non-zero values"),
    (np.pad(np.arange(1, 17, dtype=np.uint8), (0, 30)).reshape(1, -1), ""),
    (np.pad(np.arange(2, 18, dtype=np.uint8), (0, 30)).reshape(1, -1), ""),  # 16 levels, none of them 1
    (_with_zero_and_top(20), "20 distinct non-zero values"),  # as many zeros as top values: still counted
    (np.arange(1, 10001, dtype=np.float32).reshape(100, 100), "5,000+ distinct non-zero values"),  # every 2nd
    (np.arange(1, 8193, dtype=np.float32).reshape(64, 128), "4,096+ distinct non-zero values"),
    (np.arange(1, 8192, dtype=np.float32).reshape(1, -1), "8,191 distinct non-zero values"),
])
def test_heatmap_sign(mask: np.ndarray, sign: str) -> None:
    assert heatmap_sign(mask) == sign
