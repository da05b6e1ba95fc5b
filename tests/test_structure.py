"""Track 2 scoring: hand-computed cases, coverage, mask checks and invariances."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from helpers import random_structure, square_mask, structure_zip

from ntire_t2iqa import SubmissionError, score, validate


def _gt_file(tmp_path, ref):
    path = tmp_path / "gt.pkl"
    path.write_bytes(pickle.dumps(ref))
    return path


def test_hand_computed_counts_pooled_over_images(tmp_path) -> None:
    ref = {
        "a": {"score": 1.0, "pred_area": square_mask(100, 100, 20)},
        "b": {"score": 2.0, "pred_area": np.maximum(square_mask(10, 10, 30), square_mask(300, 300, 30))},
        "c": {"score": 3.0, "pred_area": np.zeros((512, 512), np.uint8)},
        "d": {"score": 4.0, "pred_area": np.zeros((512, 512), np.uint8)},
    }
    sub = {
        "a": {"score": 0.1, "pred_area": square_mask(105, 100, 20)},          # 1 pred, hit
        "b": {"score": 0.2, "pred_area": square_mask(12, 12, 30)},            # 1 pred hit, 1 gt missed
        "c": {"score": 0.4, "pred_area": square_mask(200, 200, 40)},          # 1 false region
        "d": {"score": 0.3, "pred_area": square_mask(200, 200, 12)},          # too small to count
    }
    result = score(structure_zip(tmp_path / "s.zip", sub), _gt_file(tmp_path, ref), track="structure",
                   plcc_fit="none")
    # predictions: 3 counted, 2 hit -> P = 2/3; references: 3, 1 missed -> R = 1 - 1/3
    p, r = 2 / 3, 1 - 1 / 3
    assert (result.precision, result.recall) == (p, r)
    assert result.f1 == pytest.approx(2 * p * r / (p + r + 1e-10), abs=1e-15)
    assert result.srcc == pytest.approx(0.8, abs=1e-12)  # ranks (1,2,4,3) vs (1,2,3,4)
    gious = [(300 + 1e-4) / (500 + 1e-4), (28 * 28 + 1e-4) / (900 + 900 + 900 - 28 * 28 + 1e-4),
             1e-4 / (1600 + 1e-4), 1e-4 / (144 + 1e-4)]
    assert result.giou == pytest.approx(np.mean(gious), abs=1e-15)
    assert result.main_score == pytest.approx(0.7 * result.f1 + 0.15 * (result.srcc + result.plcc), abs=1e-15)


def test_extra_images_warn_missing_images_fail(tmp_path) -> None:
    sub, ref = random_structure(5, seed=1)
    gt = _gt_file(tmp_path, ref)
    extra = dict(sub, extra_img={"score": 1.0, "pred_area": np.zeros((448, 448), np.uint8)})
    result = score(structure_zip(tmp_path / "a.zip", extra), gt, track="structure")
    assert any("not in the reference and are ignored" in w for w in result.warnings)
    base = score(structure_zip(tmp_path / "b.zip", sub), gt, track="structure")
    assert result.main_score == base.main_score
    missing = dict(list(sub.items())[1:])
    with pytest.raises(SubmissionError) as info:
        score(structure_zip(tmp_path / "c.zip", missing), gt, track="structure")
    assert "misses 1 image(s)" in str(info.value.errors[0])


def test_order_and_renaming_change_nothing(tmp_path) -> None:
    sub, ref = random_structure(40, seed=2)
    base = score(structure_zip(tmp_path / "a.zip", sub), _gt_file(tmp_path, ref), track="structure")
    shuffled = dict(reversed(list(sub.items())))
    assert score(structure_zip(tmp_path / "b.zip", shuffled), tmp_path / "gt.pkl",
                 track="structure").to_dict() == base.to_dict()
    (tmp_path / "r").mkdir()
    ren = {k: f"renamed_{i}" for i, k in enumerate(ref)}
    renamed = score(structure_zip(tmp_path / "r/c.zip", {ren[k]: v for k, v in sub.items()}),
                    _gt_file(tmp_path / "r", {ren[k]: v for k, v in ref.items()}), track="structure")
    assert renamed.to_dict() == base.to_dict()


@pytest.mark.parametrize(("mask", "expected"), [
    (np.zeros((448, 448), bool), "boolean array"),
    (np.zeros((1, 448, 448), np.uint8), "mask[0]"),
    (np.zeros((448, 448), np.int64), "dtype int64"),
    (np.full((448, 448), np.nan, np.float32), "NaN"),
    ([[0, 1], [1, 0]], "must be a numpy array"),
    (np.zeros((448, 448, 3), np.uint8), "must be 2-D"),
])
def test_masks_the_official_scorer_cannot_handle_are_errors_with_fix(tmp_path, mask, expected) -> None:
    sub = {"x": {"score": 1.0, "pred_area": mask}}
    report = validate(structure_zip(tmp_path / "s.zip", sub), "structure")
    assert not report.valid
    assert expected in str(report.errors[0]) and "Fix:" in str(report.errors[0])


def test_accepted_mask_dtypes_follow_opencv_resize(tmp_path) -> None:
    import cv2

    sub, ref = random_structure(12, seed=3)
    gt = _gt_file(tmp_path, ref)
    base = score(structure_zip(tmp_path / "a.zip", sub), gt, track="structure")
    for dtype in (np.uint16, np.int16, np.float32, np.float64):
        cast = {k: {"score": v["score"], "pred_area": v["pred_area"].astype(dtype) * 3} for k, v in sub.items()}
        got = score(structure_zip(tmp_path / f"{np.dtype(dtype).name}.zip", cast), gt, track="structure")
        # Same as submitting the official step-1 mask (bilinear resize of that dtype, > 0) at 512 x 512 directly.
        pre = {k: {"score": v["score"], "pred_area": (cv2.resize(v["pred_area"], (512, 512)) > 0).astype(np.uint8)}
               for k, v in cast.items()}
        want = score(structure_zip(tmp_path / f"pre_{np.dtype(dtype).name}.zip", pre), gt, track="structure")
        assert got.to_dict() == want.to_dict()
    hw1 = {k: {"score": v["score"], "pred_area": v["pred_area"][..., None]} for k, v in sub.items()}
    got = score(structure_zip(tmp_path / "hw1.zip", hw1), gt, track="structure")
    assert got.main_score == base.main_score and any("(H, W, 1)" in w for w in got.warnings)


def test_numpy_scalar_scores_and_all_pickle_protocols(tmp_path) -> None:
    sub, ref = random_structure(8, seed=4)
    gt = _gt_file(tmp_path, ref)
    base = score(structure_zip(tmp_path / "a.zip", sub), gt, track="structure")
    as_np = {k: {"score": np.float32(v["score"]), "pred_area": v["pred_area"]} for k, v in sub.items()}
    for protocol in range(6):
        got = score(structure_zip(tmp_path / f"p{protocol}.zip", sub, protocol=protocol), gt, track="structure")
        assert got.to_dict() == base.to_dict()
    got = score(structure_zip(tmp_path / "np.zip", as_np), gt, track="structure")
    assert got.f1 == base.f1


def test_no_regions_anywhere_gives_defined_numbers(tmp_path) -> None:
    ref = {f"i{k}": {"score": float(k + 1), "pred_area": np.zeros((512, 512), np.uint8)} for k in range(5)}
    sub = {f"i{k}": {"score": 1.0, "pred_area": np.zeros((448, 448), np.uint8)} for k in range(5)}
    result = score(structure_zip(tmp_path / "s.zip", sub), _gt_file(tmp_path, ref), track="structure")
    assert (result.f1, result.precision, result.recall, result.srcc, result.plcc) == (0, 0, 0, 0, 0)
    assert result.main_score == 0.0
    joined = " ".join(result.warnings)
    assert "Precision is undefined" in joined and "Recall is undefined" in joined and "SRCC is undefined" in joined
    assert result.giou == 1.0  # (0 + 1e-4) / (0 + 1e-4) for every image


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_reference_masks_of_any_dtype_load_alike(tmp_path, protocol) -> None:
    """0/1 uint8 masks are checked while they are read; other masks (0/255, floats, bools, one array under
    two names) take the general path. Every way gives the same masks, boxes, regions and scores."""
    import cv2

    from ntire_t2iqa import load_reference
    from ntire_t2iqa.regions import reference_regions

    sub, ref = random_structure(8, seed=5, pred_size=448)
    masks = [v["pred_area"] for v in ref.values()]
    variants = dict(ref)
    variants["img_0001"] = {"score": 1.5, "pred_area": masks[1] * 255}
    variants["img_0002"] = {"score": 2.5, "pred_area": masks[2].astype(np.float32)}
    variants["img_0003"] = {"score": 3.5, "pred_area": masks[3].astype(bool)}
    variants["img_0004"] = {"score": 4.5, "pred_area": masks[0]}  # the same array object as img_0000
    sub["img_0004"]["pred_area"] = sub["img_0000"]["pred_area"]
    path = tmp_path / "gt.pkl"
    path.write_bytes(pickle.dumps(variants, protocol))
    loaded = load_reference(path, "structure")
    for name, entry in variants.items():
        m = loaded.masks[name]
        assert m.dtype == bool and np.array_equal(m, entry["pred_area"] != 0)
        assert loaded.box_of(name) == cv2.boundingRect(m.view(np.uint8))
        found, dropped, count = loaded.regions_of(name)
        again = reference_regions(np.ascontiguousarray(entry["pred_area"] != 0))
        assert (len(found), dropped, count) == (len(again[0]), again[1], again[2])
        assert [(r.x, r.y, r.area) for r in found] == [(r.x, r.y, r.area) for r in again[0]]
    plain = {k: {"score": v["score"], "pred_area": (v["pred_area"] != 0).astype(np.uint8)} for k, v in variants.items()}
    zip_path = structure_zip(tmp_path / "s.zip", sub)
    assert score(zip_path, loaded, track="structure").to_dict() == \
        score(zip_path, _gt_file(tmp_path, plain), track="structure").to_dict()


def test_reference_pickle_never_runs_code_and_broken_ones_are_the_organizers(tmp_path) -> None:
    """gt.pkl skips the participant-side opcode pre-scan, but not the allow-list: nothing in it runs."""
    import hostile

    from ntire_t2iqa import ReferenceDataError, load_reference

    marker = tmp_path / "marker"
    good = pickle.dumps({"a": {"score": 1.0, "pred_area": square_mask(10, 10, 30)}})
    cases = {
        "calls os.system": hostile.reduce_pickle(os.system, f"touch {marker}"),
        "truncated": good[: len(good) // 2],
        "not a pickle": b"PK\x03\x04 not a pickle",
    }
    for what, data in cases.items():
        path = tmp_path / "gt.pkl"
        path.write_bytes(data)
        with pytest.raises(ReferenceDataError) as info:
            load_reference(path, "structure")
        assert "gt.pkl" in str(info.value), what
    assert not marker.exists()
