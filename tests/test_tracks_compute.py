"""tracks.align.compute on hand-built records: the per-image details the bootstrap resamples (element
counts, elements on the right side of 0.5, totals in sorted img_path order), the fit reported, and the
coverage check, each against a count by hand or scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ntire_t2iqa.errors import SubmissionError
from ntire_t2iqa.tracks import align
from ntire_t2iqa.tracks.align import AlignRecord


def _case() -> tuple[dict[str, AlignRecord], dict[str, AlignRecord]]:
    # listed out of order on purpose: compute pairs by sorted img_path
    reference = {
        "c.png": AlignRecord(2.0, {"cat (animal)": 0.5, "sky (scene)": 0.0}),
        "a.png": AlignRecord(4.5, {"dog (animal)": 1.0, "red (colour)": 0.49, "tree (plant)": 0.5}),
        "d.png": AlignRecord(3.0, {}),
        "b.png": AlignRecord(1.0, {"car (object)": 0.0}),
        "e.png": AlignRecord(5.0, {"sun (scene)": 0.75}),
    }
    records = {
        "e.png": AlignRecord(4.0, {"sun (scene)": 0.5}),                                       # agree
        "b.png": AlignRecord(1.5, {"car (object)": 0.5}),                                      # disagree
        "d.png": AlignRecord(2.0, {}),
        "a.png": AlignRecord(3.5, {"tree (plant)": 0.4999, "dog (animal)": 0.6, "red (colour)": 0.5}),  # 1 of 3
        "c.png": AlignRecord(2.5, {"sky (scene)": 0.2, "cat (animal)": 0.5}),                  # 2 of 2
    }
    return records, reference


def test_details_hold_per_image_element_counts_and_agreements() -> None:
    records, reference = _case()
    result = align.compute(records, reference, "none")
    d = result.details
    assert d["img_path"] == ["a.png", "b.png", "c.png", "d.png", "e.png"]
    assert d["gt_total"].tolist() == [4.5, 1.0, 2.0, 3.0, 5.0] and d["gt_total"].dtype == np.float64
    assert d["pred_total"].tolist() == [3.5, 1.5, 2.5, 2.0, 4.0] and d["pred_total"].dtype == np.float64
    assert d["elements_per_image"].tolist() == [3, 1, 2, 0, 1] and d["elements_per_image"].dtype == np.int64
    # a: dog 1.0/0.6 yes, red 0.49/0.5 no, tree 0.5/0.4999 no; b: no; c: cat 0.5/0.5 yes, sky yes; e: yes
    assert d["correct_per_image"].tolist() == [1, 0, 2, 0, 1] and d["correct_per_image"].dtype == np.int64
    assert d["gt_element"].tolist() == [1.0, 0.49, 0.5, 0.0, 0.5, 0.0, 0.75]  # reference key order per image
    assert d["pred_element"].tolist() == [0.6, 0.5, 0.4999, 0.5, 0.5, 0.2, 0.5]
    assert set(d) == {"img_path", "gt_total", "pred_total", "elements_per_image", "correct_per_image", "gt_element",
                      "pred_element"}
    gt, pred = d["gt_total"], d["pred_total"]
    srcc, plcc = stats.spearmanr(gt, pred)[0], stats.pearsonr(gt, pred)[0]
    assert result.components == {"acc": 4 / 7}
    assert (result.srcc, result.plcc) == (pytest.approx(srcc, abs=1e-12), pytest.approx(plcc, abs=1e-12))
    assert result.main_score == pytest.approx(0.25 * srcc + 0.25 * plcc + 0.5 * 4 / 7, abs=1e-12)
    assert (result.track, result.n_images, result.plcc_fit, result.plcc_fit_used) == ("align", 5, "none", "none")
    assert result.warnings == []


def test_the_fit_reported_is_the_one_that_ran() -> None:
    records, reference = _case()
    ok = align.compute(records, reference, "official")
    assert (ok.plcc_fit, ok.plcc_fit_used) == ("official", "logistic4_gt_to_pred")
    flat = {p: AlignRecord(3.0, r.elements) for p, r in records.items()}  # every prediction equal: no fit
    failed = align.compute(flat, reference, "official")
    assert (failed.plcc_fit, failed.plcc_fit_used, failed.plcc, failed.srcc) == ("none", "none", 0.0, 0.0)
    assert failed.warnings == [
        "SRCC is undefined because the predicted scores are all equal; counted as 0.",
        "PLCC: the logistic4 fit failed (the fitted curve is flat); PLCC uses the raw scores (plcc_fit none).",
        "PLCC is undefined because the predicted scores are all equal; counted as 0."]


def test_coverage_is_checked_unless_the_caller_did() -> None:
    records, reference = _case()
    del records["d.png"]
    with pytest.raises(SubmissionError) as info:
        align.compute(records, reference, "none")
    assert [p.severity for p in info.value.problems] == ["error"]
    assert "d.png" in str(info.value.problems[0])
    records["d.png"] = AlignRecord(2.0, {})
    records["z.png"] = AlignRecord(2.0, {})  # an extra image: refused too ...
    with pytest.raises(SubmissionError) as info:
        align.compute(records, reference, "none")
    assert [p.severity for p in info.value.problems] == ["error"] and "'z.png'" in str(info.value.problems[0])
    unchecked = align.compute(records, reference, "none", check=False)  # ... unless the caller checked already
    assert unchecked.n_images == 5 and unchecked.warnings == []
    assert unchecked.main_score == align.compute({p: records[p] for p in reference}, reference, "none").main_score


def test_structure_details_hold_each_image_s_counts_in_reference_order() -> None:
    from helpers import square_mask

    from ntire_t2iqa.tracks import structure
    from ntire_t2iqa.tracks.structure import StructureRecord, StructureReference

    gt_a = square_mask(100, 100, 30) > 0                          # one region (900 px), hit by a
    gt_b = square_mask(10, 10, 20) > 0                            # one region (400 px), missed by b
    square_mask(300, 300, 5, into=gt_b.view(np.uint8))            # dropped (area 16)
    gt_c = np.zeros((512, 512), bool)                             # no region
    reference = StructureReference({"b": 0.2, "a": 0.9, "c": 0.5}, {"a": gt_a, "b": gt_b, "c": gt_c})
    pred_a = square_mask(110, 100, 30)                            # overlap 20 x 30 = 600: IoU 600 / 1200
    pred_b = square_mask(400, 400, 20)
    square_mask(200, 200, 4, into=pred_b)                         # dropped (area 9)
    pred_c = np.zeros((512, 512), np.uint8)
    records = {"a": StructureRecord(0.8, pred_a), "b": StructureRecord(0.1, pred_b),
               "c": StructureRecord(0.6, pred_c)}
    result = structure.compute(records, reference, "none")
    d = result.details
    assert d["image"] == ["b", "a", "c"]
    assert d["gt_score"].tolist() == [0.2, 0.9, 0.5] and d["pred_score"].tolist() == [0.1, 0.8, 0.6]
    assert [d[k].tolist() for k in ("n_pred", "n_pred_hit", "n_gt", "n_gt_missed", "pred_dropped", "gt_dropped")] == [
        [1, 1, 0], [0, 1, 0], [1, 1, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0]]
    giou = [(0 + 1e-4) / (400 + 25 + 400 + 16 + 1e-4), (600 + 1e-4) / (1200 + 1e-4), 1.0]  # c: both empty
    assert d["giou"].tolist() == pytest.approx(giou, abs=1e-15)
    p, r = 1 / 2, 1 - 1 / 2
    f1 = 2 * p * r / (p + r + 1e-10)
    assert result.components == pytest.approx({"f1": f1, "precision": p, "recall": r, "giou": sum(giou) / 3},
                                              abs=1e-15)
    srcc, plcc = stats.spearmanr(d["gt_score"], d["pred_score"])[0], stats.pearsonr(d["gt_score"], d["pred_score"])[0]
    assert result.main_score == pytest.approx(0.7 * f1 + 0.15 * (srcc + plcc), abs=1e-12)
    assert (result.track, result.n_images, result.plcc_fit_used, result.warnings) == ("structure", 3, "none", [])
