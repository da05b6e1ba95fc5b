"""Metric functions against scipy and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.optimize import curve_fit

from ntire_t2iqa import metrics


def _official_logistic(x, b1, b2, b3, b4):
    logistic_part = 1 + np.exp(np.negative(np.divide(x - b3, np.abs(b4))))
    return b2 + np.divide(b1 - b2, logistic_part)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("n", [5, 50, 600])
def test_srcc_matches_scipy(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    gt = rng.uniform(1, 5, n)
    pred = gt + rng.normal(0, 1, n)
    pred[: n // 5] = pred[0]  # ties
    value, notes = metrics.srcc_with_notes(gt, pred)
    assert notes == []
    assert value == pytest.approx(stats.spearmanr(gt, pred)[0], abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_plcc_logistic_matches_direct_curve_fit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gt = rng.uniform(1, 5, 300)
    pred = 1 / (1 + np.exp(-(gt - 3))) + rng.normal(0, 0.1, 300)
    # Track 2 direction: prediction -> reference.
    popt, _ = curve_fit(_official_logistic, pred, gt, p0=[gt.max(), gt.min(), pred.mean(), pred.std()],
                        maxfev=100_000_000)
    expected = stats.pearsonr(gt, _official_logistic(pred, *popt))[0]
    value, used, notes = metrics.plcc_with_notes(gt, pred, "logistic4")
    assert (used, notes) == ("logistic4", [])
    assert value == pytest.approx(expected, abs=1e-12)
    # Track 1 direction: reference -> prediction.
    popt, _ = curve_fit(_official_logistic, gt, pred, p0=[pred.max(), pred.min(), gt.mean(), gt.std()],
                        maxfev=100_000_000)
    expected = stats.pearsonr(pred, _official_logistic(gt, *popt))[0]
    value, used, _ = metrics.plcc_with_notes(gt, pred, "logistic4_gt_to_pred")
    assert value == pytest.approx(expected, abs=1e-12)


def test_plcc_hand_computed_without_fit() -> None:
    # deviations (-1.5,-0.5,0.5,1.5) and (-1.75,-0.75,0.25,2.25): r = 6.5 / sqrt(5 * 8.75)
    value, used, notes = metrics.plcc_with_notes(np.array([1.0, 2, 3, 4]), np.array([1.0, 2, 3, 5]), "none")
    assert used == "none" and notes == []
    assert value == pytest.approx(6.5 / math.sqrt(43.75), abs=1e-15)


def test_plcc_poly3_matches_numpy_polyfit() -> None:
    rng = np.random.default_rng(3)
    gt = rng.uniform(1, 5, 100)
    pred = gt ** 2 + rng.normal(0, 1, 100)
    fitted = np.polyval(np.polyfit(pred, gt, 3), pred)
    value, used, _ = metrics.plcc_with_notes(gt, pred, "poly3")
    assert used == "poly3"
    assert value == pytest.approx(stats.pearsonr(gt, fitted)[0], abs=1e-12)


def test_constant_prediction_counts_as_zero_with_warnings() -> None:
    gt = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    pred = np.full(5, 0.7)
    value, notes = metrics.srcc_with_notes(gt, pred)
    assert value == 0.0 and "predicted scores are all equal" in notes[0]
    value, used, notes = metrics.plcc_with_notes(gt, pred, "logistic4_gt_to_pred")
    assert value == 0.0 and used == "none"
    assert any("fit failed" in n for n in notes) and any("undefined" in n for n in notes)


def test_failed_fit_falls_back_to_raw_pearson() -> None:
    # Three points cannot determine four parameters: the fit fails, PLCC is the raw Pearson r.
    gt = np.array([1.0, 2.0, 4.0])
    pred = np.array([0.1, 0.5, 0.4])
    value, used, notes = metrics.plcc_with_notes(gt, pred, "logistic4")
    assert used == "none" and "fit failed" in notes[0]
    assert value == pytest.approx(stats.pearsonr(gt, pred)[0], abs=1e-15)


def test_element_accuracy_hand_computed() -> None:
    gt = np.array([1.0, 2 / 3, 1 / 3, 0.0, 0.5, 0.5])
    pred = np.array([0.9, 0.2, 0.4, 0.6, 0.5, 0.49999])
    # correct: yes, no, yes, no, yes (0.5 >= 0.5 both), no
    value, notes = metrics.element_accuracy_with_notes(gt, pred)
    assert value == pytest.approx(3 / 6) and notes == []
    value, notes = metrics.element_accuracy_with_notes(np.array([]), np.array([]))
    assert value == 0.0 and notes


def test_region_f1_hand_computed_and_zero_cases() -> None:
    (f1, p, r), notes = metrics.region_scores_with_notes(n_pred=4, n_pred_hit=3, n_gt=5, n_gt_missed=1)
    assert (p, r) == (0.75, 1 - 1 / 5)
    assert f1 == pytest.approx(2 * 0.75 * 0.8 / (0.75 + 0.8 + 1e-10), abs=1e-15)
    assert notes == []
    (f1, p, r), notes = metrics.region_scores_with_notes(0, 0, 3, 3)
    assert (f1, p, r) == (0.0, 0.0, 0.0) and "Precision is undefined" in notes[0]
    (f1, p, r), notes = metrics.region_scores_with_notes(2, 0, 0, 0)
    assert (p, r) == (0.0, 0.0) and "Recall is undefined" in notes[0]


@pytest.mark.parametrize(("srcc", "plcc", "acc", "main"), [
    (0.8249, 0.8485, 0.8734, 0.8551),  # report Table 1, IH-VQA (1st)
    (0.6491, 0.6947, 0.7792, 0.7256),  # report Table 1, FGA-BLIP2 baseline
])
def test_align_main_reproduces_table_1(srcc: float, plcc: float, acc: float, main: float) -> None:
    assert round(metrics.align_main(srcc, plcc, acc), 4) == pytest.approx(main, abs=1e-4)


@pytest.mark.parametrize(("f1", "srcc", "plcc", "main"), [
    (0.6938, 0.6716, 0.7085, 0.6927),  # report Table 2, HNU-VPAI (1st)
    (0.6021, 0.5893, 0.6444, 0.6065),  # report Table 2, RAHF baseline
])
def test_structure_main_reproduces_table_2(f1: float, srcc: float, plcc: float, main: float) -> None:
    assert round(metrics.structure_main(f1, srcc, plcc), 4) == pytest.approx(main, abs=1e-4)
