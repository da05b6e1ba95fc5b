"""Cases written for mutants that survived the mutation run of ``metrics.py`` (BENCHMARKS.md, "Mutation score").

Each asserts a value or message the code must produce, computed by hand or with numpy directly.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from ntire_t2iqa import metrics


def test_resolve_fit_passes_every_explicit_fit_through_and_names_the_choices() -> None:
    for track in ("align", "structure"):
        for fit in ("logistic4", "poly3", "none"):
            assert metrics.resolve_fit(track, fit) == fit
    assert metrics.resolve_fit("align", "official") == "logistic4_gt_to_pred"
    assert metrics.resolve_fit("structure", "official") == "logistic4"
    with pytest.raises(ValueError, match=r"^unknown track 'video'; choose one of align, structure$"):
        metrics.resolve_fit("video", "official")
    with pytest.raises(ValueError, match=r"^unknown PLCC fit 'cubic'; choose one of official, logistic4, poly3, none$"):
        metrics.resolve_fit("align", "cubic")


def test_mean_of_nothing_is_zero_and_of_values_their_average() -> None:
    assert metrics.mean([]) == 0.0
    assert metrics.mean([0.25, 0.5, 1.0]) == pytest.approx(1.75 / 3, abs=1e-15)


@pytest.mark.parametrize(("gt", "pred", "why"), [
    ([1.0], [2.0], "only 1 image(s)"),
    ([1.0, 2.0], [3.0, 3.0], "the predicted scores are all equal"),
    ([2.0, 2.0, 2.0], [1.0, 2.0, 3.0], "the reference scores are all equal"),
    ([1.0, 2.0, np.nan], [1.0, 2.0, 3.0], "the values are not finite"),
])
def test_srcc_says_why_it_is_undefined(gt: list[float], pred: list[float], why: str) -> None:
    assert metrics.srcc_with_notes(gt, pred) == (0.0, [f"SRCC is undefined because {why}; counted as 0."])


def test_two_images_are_enough_for_srcc() -> None:
    assert metrics.srcc_with_notes([1.0, 2.0], [3.0, 5.0]) == (pytest.approx(1.0, abs=1e-12), [])
    assert metrics.srcc_with_notes([1.0, 2.0], [5.0, 3.0]) == (pytest.approx(-1.0, abs=1e-12), [])


def test_element_accuracy_without_elements_warns_with_its_note() -> None:
    assert metrics.element_accuracy_with_notes([], []) == (
        0.0, ["ACC is undefined because the reference has no elements; counted as 0."])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert metrics.element_accuracy([], []) == 0.0
    assert [str(w.message) for w in caught] == ["ACC is undefined because the reference has no elements; counted as 0."]
    assert metrics.element_accuracy([1, 0, 1, 0], [1, 1, 0, 0]) == 0.5  # integer input reads as numbers


def test_logistic_fit_needs_four_distinct_points_and_fits_exactly_four() -> None:
    x = np.array([0.0, 1.0, 2.0, 3.0])
    y = 1.0 + 3.0 / (1 + np.exp(-(x - 1.5) / 0.7))
    assert np.allclose(metrics.fit_logistic(x, y), y, atol=1e-6)  # four points, four parameters: an exact fit
    assert np.allclose(metrics.fit_logistic([0, 1, 2, 3], list(y)), y, atol=1e-6)  # integers too
    with pytest.raises(RuntimeError, match=r"^4 parameters cannot be fitted to 3 points$"):
        metrics.fit_logistic(x[:3], y[:3])
    with pytest.raises(RuntimeError, match=r"^the fitted variable is constant$"):
        metrics.fit_logistic(np.ones(5), np.arange(5.0))


def test_cubic_fit_needs_four_distinct_points_and_is_exact_on_a_cubic() -> None:
    x = np.array([-1.0, 0.0, 1.0, 2.0])
    coeffs = np.array([0.5, -1.0, 2.0, 3.0])
    y = np.polyval(coeffs, x)
    assert np.allclose(metrics.fit_poly3_coefficients(x, y), coeffs, atol=1e-9)
    assert np.allclose(metrics.fit_poly3([-1, 0, 1, 2], list(y)), y, atol=1e-9)
    for bad_x in (x[:3], np.array([1.0, 1.0, 1.0, 1.0, 1.0])):
        with pytest.raises(RuntimeError, match=r"^a cubic needs at least 4 distinct points$"):
            metrics.fit_poly3_coefficients(bad_x, np.arange(bad_x.size, dtype=float))
    with pytest.raises(RuntimeError, match=r"^the cubic fit is degenerate$"):
        metrics.fit_poly3_coefficients(x, np.array([1.0, 2.0, np.inf, 4.0]))  # non-finite fitted values


def test_sign_disagreement_notes_only_opposite_signs() -> None:
    assert metrics.sign_disagreement(0.5, 0.2) == [] and metrics.sign_disagreement(-0.5, -0.2) == []
    assert metrics.sign_disagreement(0.0, -0.3) == []
    assert metrics.sign_disagreement(-0.5, 0.9) == [
        "SRCC (-0.5000) and PLCC (+0.9000) have opposite signs. The number is the official one: the official "
        "logistic fit can also fit a falling curve, so reversed scores still get a high PLCC. A negative SRCC means "
        "the predicted scores rank the images the wrong way round: check that a higher score means a better image "
        "(e.g. 6 - score, or a missing minus sign)."]
    rising = metrics.sign_disagreement(0.25, -0.75)
    assert rising == ["SRCC (+0.2500) and PLCC (-0.7500) have opposite signs: the fitted curve and the ranks "
                      "disagree; look at the scores' scatter (ntire-t2iqa explain) before trusting either."]


def _caught(call) -> tuple[object, list[str]]:
    """``call()``'s value and the messages of the MetricWarnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = call()
    assert all(w.category is metrics.MetricWarning for w in caught)
    return value, [str(w.message) for w in caught]


def test_element_accuracy_compares_both_sides_with_one_half() -> None:
    # gt >= 0.5: T T F T F; pred >= 0.5: T T F F T -> 3 of 5 agree (hand count)
    gt, pred = [1.0, 0.8, 0.2, 0.6, 0.0], [0.9, 0.5, 0.1, 0.4999, 0.5]
    assert _caught(lambda: metrics.element_accuracy(gt, pred)) == (0.6, [])
    assert metrics.element_accuracy([1.0, 0.8, 0.6], [0.7, 0.9, 0.5]) == 1.0  # all agree above


def test_plcc_warns_with_the_notes_of_its_fit_and_returns_the_same_value() -> None:
    gt, pred = [1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]
    for fit, name in (("logistic4", "logistic4"), ("logistic4_gt_to_pred", "logistic4"), ("poly3", "poly3")):
        why = "the fitted variable is constant" if fit == "logistic4" else (
            "the fitted curve is flat" if fit == "logistic4_gt_to_pred" else "a cubic needs at least 4 distinct points")
        notes = [f"PLCC: the {name} fit failed ({why}); PLCC uses the raw scores (plcc_fit none).",
                 "PLCC is undefined because the predicted scores are all equal; counted as 0."]
        assert metrics.plcc_with_notes(gt, pred, fit) == (0.0, "none", notes), fit
        assert _caught(lambda fit=fit: metrics.plcc(gt, pred, fit)) == (0.0, notes)
    # a defined value passes through unchanged, without a warning: Pearson by hand, 6.5 / sqrt(5 * 8.75)
    assert _caught(lambda: metrics.plcc([1.0, 2, 3, 4], [1.0, 2, 3, 5], fit="none")) == (6.5 / math.sqrt(43.75), [])
    assert metrics.plcc([1.0, 2, 3, 4], [1.0, 2, 3, 5]) == metrics.plcc_with_notes([1.0, 2, 3, 4], [1.0, 2, 3, 5],
                                                                                   "logistic4")[0]
    with pytest.raises(ValueError, match=r"^unknown PLCC fit 'official'; choose one of logistic4, "
                                         r"logistic4_gt_to_pred, poly3, none$"):
        metrics.plcc_with_notes(gt, pred, "official")


def test_region_scores_and_f1_warn_with_both_undefined_notes() -> None:
    precision = "Precision is undefined because no predicted region passed the area threshold; counted as 0."
    recall = "Recall is undefined because the reference has no regions; counted as 0."
    assert metrics.region_scores_with_notes(0, 0, 0, 0) == ((0.0, 0.0, 0.0), [precision, recall])
    assert _caught(lambda: metrics.region_scores(0, 0, 0, 0)) == ((0.0, 0.0, 0.0), [precision, recall])
    assert _caught(lambda: metrics.region_f1(0, 0, 4, 1)) == (0.0, [precision])
    assert _caught(lambda: metrics.region_f1(3, 2, 0, 0)) == (0.0, [recall])
    # P = 2/3, R = 1 - 1/4: F1 = 2PR / (P + R + 1e-10), by hand
    p, r = 2 / 3, 0.75
    assert _caught(lambda: metrics.region_f1(3, 2, 4, 1)) == (2 * p * r / (p + r + 1e-10), [])
    assert _caught(lambda: metrics.region_scores(3, 2, 4, 1)) == ((2 * p * r / (p + r + 1e-10), p, r), [])


def test_correlation_kind_must_be_pearson_or_spearman() -> None:
    a, b = [1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 5.0]
    assert metrics.correlation_or_none(a, b, "spearman") == pytest.approx(stats.spearmanr(a, b)[0], abs=1e-15)
    assert metrics.correlation_or_none(a, b, "pearson") == pytest.approx(stats.pearsonr(a, b)[0], abs=1e-15)
    assert metrics.correlation_or_none(a, b, "spearman") != metrics.correlation_or_none(a, b, "pearson")
    with pytest.raises(ValueError, match=r"^unknown correlation 'kendall'; choose pearson or spearman$"):
        metrics.correlation_or_none(a, b, "kendall")
    assert metrics.spearman(a, b) == metrics.srcc(a, b) == pytest.approx(0.8, abs=1e-15)  # 1 - 6 * 2 / (4 * 15)


@pytest.mark.parametrize(("exc", "message"), [
    (RuntimeError("Optimal parameters not found: too many calls\nsecond line"),
     "Optimal parameters not found: too many calls"),
    (ValueError("bad data"), "bad data"),
    (TypeError("too many parameters"), "too many parameters"),
    (np.linalg.LinAlgError(), "LinAlgError"),  # no text: the exception's name
])
def test_a_failing_curve_fit_becomes_one_line_runtime_error(monkeypatch: pytest.MonkeyPatch, exc: Exception,
                                                            message: str) -> None:
    def fail(*args: object, **kwargs: object) -> np.ndarray:
        raise exc

    monkeypatch.setattr("ntire_t2iqa.minpack.curve_fit", fail)
    with pytest.raises(RuntimeError) as info:
        metrics.fit_logistic(np.arange(5.0), np.arange(5.0))
    assert str(info.value) == message and info.value.__cause__ is exc


def test_non_finite_input_fails_the_logistic_fit_with_numpy_s_message() -> None:
    with pytest.raises(RuntimeError, match=r"^array must not contain infs or NaNs$"):
        metrics.fit_logistic(np.array([0.0, 1.0, 2.0, np.nan, 4.0]), np.arange(5.0))


@pytest.mark.parametrize(("popt", "message"), [
    ([2.0, 1.0, 0.0, np.inf], "the fit gave non-finite values"),  # fitted values finite (all 1.5), a parameter not
    ([2.0, 1.0, np.nan, 1.0], "the fit gave non-finite values"),
    ([2.0, 2.0, 0.0, 1.0], "the fitted curve is flat"),
])
def test_a_non_finite_or_flat_logistic_fit_is_refused(monkeypatch: pytest.MonkeyPatch, popt: list[float],
                                                      message: str) -> None:
    monkeypatch.setattr("ntire_t2iqa.minpack.curve_fit", lambda *a, **k: np.array(popt))
    with pytest.raises(RuntimeError, match=f"^{message}$"):
        metrics.fit_logistic(np.arange(5.0), np.arange(5.0))


def test_logistic_fit_of_float32_scores_is_the_fit_of_their_float64_values() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(1, 5, 40).astype(np.float32)
    y = (1 + 4 / (1 + np.exp(-(x - 3) / 0.5)) + rng.normal(0, 0.2, 40)).astype(np.float32)
    wide = metrics.fit_logistic_params(x.astype(np.float64), y.astype(np.float64))
    assert np.array_equal(metrics.fit_logistic_params(x, y), wide)  # p0's mean and std in float64, as scipy's
    assert np.array_equal(metrics.fit_logistic(x, y), metrics.logistic4(x.astype(np.float64), *wide))


def test_fits_ignore_a_caller_s_numpy_error_setting() -> None:
    # A steep step: the logistic fit's trial parameters overflow exp(); the caller's np.seterr must not matter.
    rng = np.random.default_rng(3)
    x = rng.uniform(1, 5, 40)
    y = 1 + 4 / (1 + np.exp(-(x - x.mean()) / 0.01))
    expected = metrics.fit_logistic_params(x, y)
    with np.errstate(all="raise"):
        assert np.array_equal(metrics.fit_logistic_params(x, y), expected)


def test_undefined_correlations_say_why_without_numpy_warnings() -> None:
    # a constant first argument is refused before any arithmetic: no RuntimeWarning from a 0/0, one MetricWarning
    assert _caught(lambda: metrics.srcc([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])) == (
        0.0, ["SRCC is undefined because the reference scores are all equal; counted as 0."])
    assert np.isnan(_caught(lambda: metrics.spearman([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]))[0])
    # finite, not constant, but the sums of squares overflow: scipy gives NaN too; PLCC counts it as 0
    big = [1.7e308, 1.7e308, -1.7e308, 0.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy says that it overflows
        assert np.isnan(stats.pearsonr(big, [0.0, 1.0, 4.0, 9.0])[0])
    assert np.isnan(metrics.pearson(big, [0.0, 1.0, 4.0, 9.0]))
    assert metrics.plcc_with_notes([0.0, 1.0, 4.0, 9.0], big, "none") == (0.0, "none", [
        "PLCC is undefined because the values are too large to correlate (the sums overflow); counted as 0."])


def test_the_cubic_fit_ignores_a_caller_s_numpy_error_setting() -> None:
    # numpy's polyfit underflows on tiny scores; under the caller's np.seterr(all="raise") the cubic still fits
    x, y = np.array([1.0, 2, 3, 4, 5, 6]), np.array([3.0, 1, 4, 1, 5, 9]) * 1e-308
    with np.errstate(all="ignore"):
        coeffs = np.polyfit(x, y, 3)
    with np.errstate(all="raise"):
        assert np.array_equal(metrics.fit_poly3_coefficients(x, y), coeffs)
        assert np.array_equal(metrics.fit_poly3(x, y), np.polyval(coeffs, x))


@pytest.mark.skipif(any("__mutmut_" in name for name in vars(metrics)),
                    reason="under mutation testing every function gets extra stack frames")
def test_metric_warnings_point_at_the_caller_s_line() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics.srcc([1.0], [2.0])
        metrics.plcc([1.0], [2.0])
        metrics.element_accuracy([], [])
        metrics.region_scores(0, 0, 1, 0)
        metrics.region_f1(0, 0, 1, 0)
    assert len(caught) == 6 and {w.filename for w in caught} == {__file__}  # plcc: fit failed and undefined
