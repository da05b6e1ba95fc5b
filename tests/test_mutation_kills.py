"""Cases written for mutants that survived the mutation run of ``metrics.py`` (BENCHMARKS.md, "Mutation score").

Each asserts a value or message the code must produce, computed by hand or with numpy directly.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

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
    falling = metrics.sign_disagreement(-0.5, 0.9)
    assert len(falling) == 1 and falling[0].startswith("SRCC (-0.5000) and PLCC (+0.9000) have opposite signs. ")
    assert "6 - score" in falling[0]
    rising = metrics.sign_disagreement(0.25, -0.75)
    assert rising == ["SRCC (+0.2500) and PLCC (-0.7500) have opposite signs: the fitted curve and the ranks "
                      "disagree; look at the scores' scatter (ntire-t2iqa explain) before trusting either."]
