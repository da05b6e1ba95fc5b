"""The toolkit against an independent plain implementation of the official programs, on many cases,
and hand-built inputs exactly at every boundary the official programs define.

The reference (``benchmarks/naive_official.py``) imports nothing from the toolkit: it sorts and
pairs by position and draws every pair of contours on full 512 x 512 canvases, as the official
scorers do. Every metric must agree within 1e-9.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from helpers import align_zip, blob_mask, press_to_edge, rect_mask, structure_zip
from naive_official import score_align, score_structure

from ntire_t2iqa import score

TOL = 1e-9


def _align_case(seed: int, n: int, ties: bool) -> tuple[list[dict], list[dict]]:
    """Records in shuffled order, elements scored exactly 0.5 now and then, scores with ties if asked."""
    rng = np.random.default_rng(seed)
    sub, ref = [], []
    for i in range(n):
        path = f"Model{int(rng.integers(0, 3))}/{int(rng.integers(0, 10 ** 6)):06d}_{i}.png"
        keys = [f"el{j} (cat{j % 3})" for j in range(int(rng.integers(0, 5)))]
        gt_el = {k: float(rng.choice([0.0, 1 / 3, 0.5, 2 / 3, 1.0])) for k in keys}
        gt = float(rng.uniform(1, 5))
        pred = gt + float(rng.normal(0, 0.9))
        if ties:
            gt, pred = round(gt * 2) / 2, round(pred)
        ref.append({"img_path": path, "total_score": gt, "element_score": gt_el})
        sub.append({"img_path": path, "total_score": pred,
                    "element_score": {k: float(rng.choice([0.5, np.nextafter(0.5, 0), float(rng.random())]))
                                      for k in keys}})
    order = rng.permutation(n)
    return [sub[i] for i in order], ref


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("n,ties", [(12, False), (60, True), (200, False)])
def test_track1_equals_the_plain_official_program(tmp_path: Path, seed: int, n: int, ties: bool) -> None:
    sub, ref = _align_case(seed, n, ties)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    got = score(align_zip(tmp_path / "s.zip", sub), tmp_path / "eval.json", track="align").to_dict()
    want = score_align(sub, ref)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=TOL), key


def _frame_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """Blobs, with a region pressed against a random edge of the frame now and then."""
    mask = blob_mask(rng, size, int(rng.integers(0, 5)))
    if rng.random() < 0.6:
        k = int(rng.integers(10, size // 4))
        edge = int(rng.integers(0, 4))
        press_to_edge(mask, k, edge, int(rng.integers(0, size - k)))
    return mask


def _structure_case(seed: int, n: int, pred_size: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    sub, ref = {}, {}
    for i in range(n):
        name = f"img_{int(rng.integers(0, 10 ** 6)):06d}_{i}"
        gm = _frame_mask(rng, 512)
        pm = _frame_mask(rng, pred_size)
        if rng.random() < 0.5:  # a shifted copy of the reference, so that regions meet
            import cv2

            pm = np.maximum(pm, np.roll(cv2.resize(gm, (pred_size, pred_size), interpolation=cv2.INTER_NEAREST),
                                        int(rng.integers(-20, 20)), axis=int(rng.integers(0, 2))))
        mos = float(rng.uniform(1, 5))
        ref[name] = {"score": mos, "pred_area": gm}
        sub[name] = {"score": mos + float(rng.normal(0, 0.8)), "pred_area": pm}
    return sub, ref


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n,pred_size", [(8, 512), (15, 448), (10, 300)])
def test_track2_equals_the_plain_official_program(tmp_path: Path, seed: int, n: int, pred_size: int) -> None:
    sub, ref = _structure_case(seed, n, pred_size)
    (tmp_path / "gt.pkl").write_bytes(pickle.dumps(ref))
    got = score(structure_zip(tmp_path / "s.zip", sub), tmp_path / "gt.pkl", track="structure").to_dict()
    want = score_structure(sub, ref)
    assert np.isfinite(list(want.values())).all()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=TOL), key


# --------------------------------------------------------------------------- exact boundaries


def test_element_threshold_is_inclusive_at_exactly_one_half(tmp_path: Path) -> None:
    below = float(np.nextafter(0.5, 0))
    pairs = [(0.5, 0.5), (0.5, below), (below, 0.5), (below, below), (0.5, 1.0), (0.0, 0.5)]
    # (gt >= 0.5) == (pred >= 0.5): right, wrong, wrong, right, right, wrong
    keys = [f"e{j} (object)" for j in range(len(pairs))]
    ref = [{"img_path": f"m/{i}.png", "total_score": float(i + 1), "element_score": {}} for i in range(4)]
    sub = [{"img_path": f"m/{i}.png", "total_score": float(i + 1) ** 2, "element_score": {}} for i in range(4)]
    ref[0]["element_score"] = {k: g for k, (g, _) in zip(keys, pairs)}
    sub[0]["element_score"] = {k: p for k, (_, p) in zip(keys, pairs)}
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    got = score(align_zip(tmp_path / "s.zip", sub), tmp_path / "eval.json", track="align", plcc_fit="none")
    assert got.acc == 3 / 6
    assert got.acc == score_align(sub, ref)["acc"]


def _counts(tmp_path: Path, pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Score images given as (prediction mask, reference mask) (at least 4: the logistic fit needs 4 points);
    return the metrics, after checking that the plain program counts the same."""
    ref = {f"i{k}": {"score": float(k), "pred_area": gm} for k, (_, gm) in enumerate(pairs)}
    sub = {f"i{k}": {"score": float(k) ** 2, "pred_area": pm} for k, (pm, _) in enumerate(pairs)}
    (tmp_path / "gt.pkl").write_bytes(pickle.dumps(ref))
    got = score(structure_zip(tmp_path / "s.zip", sub), tmp_path / "gt.pkl", track="structure").to_dict()
    want = score_structure(sub, ref)
    assert (got["precision"], got["recall"]) == (want["precision"], want["recall"])
    return got


@pytest.mark.parametrize("width,hit", [(59, True), (60, False), (61, False)])
def test_region_iou_must_exceed_one_tenth(tmp_path: Path, width: int, hit: bool) -> None:
    # reference 50 x 20 at x 0..49; prediction width x 20 at x 40..: overlap 10 x 20 = 200 pixels,
    # union 1000 + 20 width - 200: IoU 200/1980 > 0.1, exactly 200/2000 = 0.1, 200/2020 < 0.1
    pred, gt = rect_mask(140, 100, width, 20), rect_mask(100, 100, 50, 20)
    assert (200 / (1000 + 20 * width - 200) > 0.1) == hit
    spare = (rect_mask(300, 300, 30, 30), rect_mask(300, 300, 30, 30))  # one certain hit in another image
    got = _counts(tmp_path, [(pred, gt), spare, spare, spare])
    assert got["precision"] == (4 if hit else 3) / 4
    assert got["recall"] == 1 - (0 if hit else 1) / 4


@pytest.mark.parametrize("w,h,counted", [(158, 2, False), (80, 3, True), (159, 2, True)])
def test_predicted_regions_must_exceed_the_area_floor(tmp_path: Path, w: int, h: int, counted: bool) -> None:
    # a w x h block of pixels traces a contour of area (w - 1)(h - 1): 157 (dropped), 158 and 158 (kept);
    # the floor 512 * 512 * 0.0006 = 157.2864 lies between
    assert ((w - 1) * (h - 1) > 512 * 512 * 0.0006) == counted
    pred = rect_mask(50, 50, w, h)
    spare = (rect_mask(300, 300, 30, 30), rect_mask(300, 300, 30, 30))
    got = _counts(tmp_path, [(pred, np.zeros((512, 512), np.uint8)), spare, spare, spare])
    assert got["precision"] == (3 / 4 if counted else 1.0)


@pytest.mark.parametrize("w,h,counted", [(16, 11, False), (11, 16, False), (152, 2, True), (17, 11, True)])
def test_reference_regions_must_exceed_150(tmp_path: Path, w: int, h: int, counted: bool) -> None:
    # contour areas: 15 x 10 = 150 (dropped, exactly at the floor), 151 x 1 and 16 x 10 (kept)
    assert ((w - 1) * (h - 1) > 150) == counted
    gt = rect_mask(50, 50, w, h)
    spare = (rect_mask(300, 300, 30, 30), rect_mask(300, 300, 30, 30))
    got = _counts(tmp_path, [(np.zeros((512, 512), np.uint8), gt), spare, spare, spare])
    assert got["recall"] == (1 - 1 / 4 if counted else 1.0)
