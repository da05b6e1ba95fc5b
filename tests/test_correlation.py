"""Spearman, Pearson and ranks without scipy.stats, and the logistic fit without scipy.optimize's package:
the same float64 values as scipy (compared for equality, not closeness), the same undefined cases as before."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.optimize import curve_fit as scipy_curve_fit

from ntire_t2iqa import correlation, metrics, minpack


def cases(n_cases: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs of columns: noisy linear, heavy ties (votes of 3 annotators, integer scores), a large offset,
    tiny and huge scales, two points, a few distinct values."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n_cases):
        n = int(rng.integers(2, 300)) if t % 9 else 2
        a = rng.normal(size=n) * 10 ** rng.uniform(-6, 6)
        b = a * rng.uniform(-3, 3) + rng.normal(size=n) * np.std(a)
        kind = t % 6
        if kind == 1:
            a, b = rng.integers(0, 4, n) / 3, np.round(b)
        elif kind == 2:
            a, b = a + 1e7, b - 3e5
        elif kind == 3:
            a, b = rng.choice([1.0, 2.0, 3.0], n), rng.choice([0.25, 0.5], n)
        elif kind == 4:
            a = np.round(a * 3) / 3
        if np.all(a == a[0]) or np.all(b == b[0]):
            continue
        out.append((a, b))
    return out


@pytest.mark.parametrize("a, b", cases(600, seed=11))
def test_equal_to_scipy(a, b) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's near-constant warnings
        assert correlation.pearsonr(a, b) == float(stats.pearsonr(a, b)[0])
        assert correlation.spearmanr(a, b) == float(stats.spearmanr(a, b)[0])
        assert metrics.pearson(a, b) == float(stats.pearsonr(a, b)[0])
        assert metrics.spearman(list(a), list(b)) == float(stats.spearmanr(a, b)[0])
    assert np.array_equal(correlation.rankdata(a), stats.rankdata(a))


def test_ties_by_hand() -> None:
    assert correlation.rankdata([3.0, 1.0, 3.0, 2.0, 3.0]).tolist() == [4.0, 1.0, 4.0, 2.0, 4.0]
    # ranks (1.5, 1.5, 3, 4) against (1, 2, 3, 4): Pearson of the ranks
    expected = np.corrcoef([1.5, 1.5, 3, 4], [1, 2, 3, 4])[0, 1]
    assert correlation.spearmanr([1.0, 1.0, 2.0, 5.0], [1.0, 2.0, 3.0, 4.0]) == expected
    assert correlation.pearsonr([0.0, 1.0], [5.0, 2.0]) == -1.0  # two points: exactly -1


def test_undefined_cases_behave_as_before() -> None:
    const = [2.0, 2.0, 2.0, 2.0]
    varied = [1.0, 2.0, 3.0, 4.0]
    with_nan = [1.0, float("nan"), 3.0, 4.0]
    for a, b in ((const, varied), (varied, const), (with_nan, varied), (varied, [1.0, 2.0, math.inf, 4.0]),
                 ([1.0], [2.0]), ([], [])):
        assert metrics.correlation_or_none(a, b, "pearson") is None
        assert metrics.correlation_or_none(a, b, "spearman") is None
        with pytest.warns(metrics.MetricWarning):
            assert metrics.srcc(a, b) == 0.0
        assert math.isnan(metrics.pearson(a, b)) and math.isnan(metrics.spearman(a, b))
    with pytest.warns(metrics.MetricWarning, match="reference scores are all equal"):
        metrics.srcc(const, varied)
    with pytest.warns(metrics.MetricWarning, match="predicted scores are all equal"):
        metrics.srcc(varied, const)


def _challenge_like(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    gt = np.round(rng.uniform(1, 5, n) * 3) / 3  # means of 3 annotators' 1-5 ratings
    pred = gt + rng.normal(0, rng.uniform(0.2, 1.5), n) + rng.uniform(-2, 2)
    return gt, pred


@pytest.mark.parametrize("seed", range(12))
def test_fit_equals_curve_fit_bit_for_bit(seed) -> None:
    assert minpack.minpack() is not None  # scipy's compiled module loads on its own here
    rng = np.random.default_rng(seed)
    gt, pred = _challenge_like(rng, int(rng.integers(20, 3000)))
    for x, y in ((gt, pred), (pred, gt)):  # both official directions
        p0 = [np.max(y), np.min(y), np.mean(x), np.std(x)]
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            expected = scipy_curve_fit(metrics.logistic4, x, y, p0=p0, maxfev=metrics.MAXFEV)[0]
        assert np.array_equal(minpack.curve_fit(metrics.logistic4, x, y, p0, metrics.MAXFEV), expected)
        assert np.array_equal(metrics.fit_logistic_params(x, y), expected)


def test_fit_failures_say_what_curve_fit_says(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    x, y = _challenge_like(rng, 200)
    p0 = [np.max(y), np.min(y), np.mean(x), np.std(x)]
    with pytest.raises(RuntimeError) as ours, np.errstate(all="ignore"):
        minpack.curve_fit(metrics.logistic4, x, y, p0, 3)
    with pytest.raises(RuntimeError) as theirs, np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scipy_curve_fit(metrics.logistic4, x, y, p0=p0, maxfev=3)
    assert str(ours.value) == str(theirs.value) == ("Optimal parameters not found: Number of calls to function has "
                                                    "reached maxfev = 3.")
    with pytest.raises(ValueError):
        minpack.curve_fit(metrics.logistic4, np.array([1.0, np.nan, 2.0, 3.0, 4.0]), y[:5], p0, 100)
    # Where the compiled module cannot be loaded alone, scipy.optimize.curve_fit itself runs: same parameters.
    fast = minpack.curve_fit(metrics.logistic4, x, y, p0, metrics.MAXFEV)
    monkeypatch.setitem(minpack._state, "module", None)
    assert np.array_equal(minpack.curve_fit(metrics.logistic4, x, y, p0, metrics.MAXFEV), fast)
