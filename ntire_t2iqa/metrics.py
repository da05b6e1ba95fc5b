"""Pure metric functions: rank and linear correlation with the challenge's fits, element
accuracy, and region F1 from pooled counts.

The public functions (:func:`srcc`, :func:`plcc`, :func:`element_accuracy`,
:func:`region_f1`, :func:`region_scores`, :func:`pearson`, :func:`spearman`) take arrays or
lists and return plain floats, as scipy and torchmetrics do. Where the official programs
would give NaN or crash (constant inputs, a fit that fails, 0/0), the value is defined as
docs/scoring.md says and a :class:`MetricWarning` (``warnings`` module) says what happened;
:func:`pearson` and :func:`spearman` return NaN there, like scipy. The ``*_with_notes``
variants return the same values with those messages as a list instead; the scorers use them
to put the messages in a result's ``warnings``.

Example:
    >>> srcc([1.0, 2.0, 3.0], [0.1, 0.3, 0.2])
    0.5
    >>> region_f1(n_pred=4, n_pred_hit=3, n_gt=5, n_gt_missed=1) == 2 * 0.75 * 0.8 / (0.75 + 0.8 + 1e-10)
    True
"""

from __future__ import annotations

import math
import warnings as _warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from . import correlation

#: Array-like input of the public functions: a numpy array, a list or tuple of numbers.
ArrayLike = Any


class MetricWarning(UserWarning):
    """A metric was undefined or its fit failed; the value returned is the one docs/scoring.md defines."""


def _warn(notes: list[str]) -> None:
    for note in notes:
        _warnings.warn(note, MetricWarning, stacklevel=3)


#: Fits accepted by ``--plcc-fit``; "official" resolves per track (see :data:`OFFICIAL_FIT`).
PLCC_FITS = ("official", "logistic4", "poly3", "none")
#: What "official" means per track: Track 1 fits ground truth -> prediction, Track 2 the reverse.
OFFICIAL_FIT = {"align": "logistic4_gt_to_pred", "structure": "logistic4"}



def resolve_fit(track: str, fit: str) -> str:
    """The fit :func:`plcc_with_notes` runs for ``--plcc-fit fit`` on ``track``: the one place that decides it.

    ``official`` becomes the track's own direction (:data:`OFFICIAL_FIT`: Track 1 fits reference ->
    prediction, Track 2 prediction -> reference); any other choice is returned as it is.
    """
    if track not in OFFICIAL_FIT:
        raise ValueError(f"unknown track {track!r}; choose one of {', '.join(OFFICIAL_FIT)}")
    if fit not in PLCC_FITS:
        raise ValueError(f"unknown PLCC fit {fit!r}; choose one of {', '.join(PLCC_FITS)}")
    return OFFICIAL_FIT[track] if fit == "official" else fit


ELEMENT_THRESHOLD = 0.5
F1_EPS = 1e-10
MAXFEV = 100_000_000


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """The 4-parameter logistic ``b2 + (b1 - b2) / (1 + exp(-(x - b3) / |b4|))``."""
    return b2 + (b1 - b2) / (1 + np.exp(np.negative(np.divide(x - b3, np.abs(b4)))))


def _is_constant(a: np.ndarray) -> bool:
    return a.size < 2 or bool(np.all(a == a[0]))


def correlation_or_none(a: ArrayLike, b: ArrayLike, kind: str) -> float | None:
    """Pearson's r (``kind="pearson"``) or Spearman's rho (``"spearman"``), ``None`` when undefined.

    Undefined: fewer than 2 values, a constant or a non-finite input. The values are scipy.stats'
    (``pearsonr``, ``spearmanr``) exactly, computed by :mod:`ntire_t2iqa.correlation` without importing it.
    """
    if kind not in ("pearson", "spearman"):
        raise ValueError(f"unknown correlation {kind!r}; choose pearson or spearman")
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size < 2 or _is_constant(a) or _is_constant(b):
        return None
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return None
    r = (correlation.pearsonr if kind == "pearson" else correlation.spearmanr)(a, b)
    return r if math.isfinite(r) else None


def pearson(a: ArrayLike, b: ArrayLike) -> float:
    """Pearson's r as a plain float; NaN when undefined (fewer than 2 values, a constant or non-finite input).

    Example:
        >>> pearson([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]) == 6.5 / math.sqrt(43.75)
        True
    """
    r = correlation_or_none(a, b, "pearson")
    return math.nan if r is None else r


def spearman(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman's rho (scipy's) as a plain float; NaN when undefined.

    Example:
        >>> spearman([1.0, 2.0, 3.0], [0.1, 0.3, 0.2])
        0.5
    """
    rho = correlation_or_none(a, b, "spearman")
    return math.nan if rho is None else rho


def _undefined_reason(gt: np.ndarray, pred: np.ndarray) -> str:
    if gt.size < 2:
        return f"only {gt.size} image(s)"
    if _is_constant(pred):
        return "the predicted scores are all equal"
    if _is_constant(gt):
        return "the reference scores are all equal"
    if not (np.all(np.isfinite(gt)) and np.all(np.isfinite(pred))):
        return "the values are not finite"
    return "the values are too large to correlate (the sums overflow)"


def srcc_with_notes(gt: ArrayLike, pred: ArrayLike) -> tuple[float, list[str]]:
    """:func:`srcc` and its warnings as a list: ``(value, notes)``."""
    rho = correlation_or_none(gt, pred, "spearman")
    if rho is None:
        why = _undefined_reason(np.asarray(gt), np.asarray(pred))
        return 0.0, [f"SRCC is undefined because {why}; counted as 0."]
    return rho, []


def srcc(gt: ArrayLike, pred: ArrayLike) -> float:
    """SRCC = Spearman(gt, pred); undefined (constant scores, fewer than 2) counts as 0 with a :class:`MetricWarning`.

    Example:
        >>> srcc([1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0])
        -1.0
    """
    value, notes = srcc_with_notes(gt, pred)
    _warn(notes)
    return value


def fit_logistic_params(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fit :func:`logistic4` mapping ``x`` to ``y`` as the official programs do; return ``[b1, b2, b3, b4]``.

    Initial parameters ``[max(y), min(y), mean(x), std(x)]``, ``maxfev = 1e8``: scipy's
    ``curve_fit``, bit for bit (:func:`ntire_t2iqa.minpack.curve_fit`, loaded on the first fit).
    Raises ``RuntimeError`` when the fit fails or gives non-finite or constant values.
    """
    return _fit_logistic(x, y)[0]


def _fit_logistic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from .minpack import curve_fit

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size < 4:
        raise RuntimeError(f"4 parameters cannot be fitted to {x.size} points")
    if _is_constant(x):
        raise RuntimeError("the fitted variable is constant")
    p0 = [np.max(y), np.min(y), np.mean(x), np.std(x)]
    with _warnings.catch_warnings(), np.errstate(all="ignore"):
        _warnings.simplefilter("ignore", RuntimeWarning)
        try:
            popt = curve_fit(logistic4, x, y, p0=p0, maxfev=MAXFEV)
        except (RuntimeError, ValueError, TypeError, np.linalg.LinAlgError) as exc:
            raise RuntimeError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
        fitted = logistic4(x, *popt)
    if not (np.all(np.isfinite(popt)) and np.all(np.isfinite(fitted))):
        raise RuntimeError("the fit gave non-finite values")
    if _is_constant(fitted):
        raise RuntimeError("the fitted curve is flat")
    return np.asarray(popt, dtype=np.float64), fitted


def fit_logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fit :func:`logistic4` mapping ``x`` to ``y`` as the official programs do; return fitted values.

    Raises ``RuntimeError`` when the fit fails (see :func:`fit_logistic_params`).
    """
    return _fit_logistic(x, y)[1]


def fit_poly3_coefficients(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares cubic mapping ``x`` to ``y``; return its coefficients, highest power first (``np.polyval``)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size < 4 or _is_constant(x):
        raise RuntimeError("a cubic needs at least 4 distinct points")
    with _warnings.catch_warnings(), np.errstate(all="ignore"):
        _warnings.simplefilter("ignore")
        coeffs = np.polyfit(x, y, 3)
        fitted = np.polyval(coeffs, x)
    if not np.all(np.isfinite(fitted)) or _is_constant(fitted):
        raise RuntimeError("the cubic fit is degenerate")
    return coeffs


def fit_poly3(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares cubic mapping ``x`` to ``y``; return fitted values."""
    coeffs = fit_poly3_coefficients(x, y)
    with np.errstate(all="ignore"):
        return np.polyval(coeffs, np.asarray(x, dtype=np.float64))


def plcc_with_notes(gt: ArrayLike, pred: ArrayLike, fit: str) -> tuple[float, str, list[str]]:
    """PLCC after a fit, and what happened. Returns ``(value, fit_used, notes)``.

    ``fit``: ``logistic4`` (prediction -> reference, PLCC = Pearson(gt, f(pred))),
    ``logistic4_gt_to_pred`` (reference -> prediction, PLCC = Pearson(pred, f(gt)), the
    official Track 1 variant), ``poly3`` (cubic prediction -> reference) or ``none``.
    A failed fit falls back to the raw values (``fit_used == "none"``); an undefined
    correlation counts as 0. Both add a note.
    """
    if fit not in _FITS:
        raise ValueError(f"unknown PLCC fit {fit!r}; choose one of {', '.join(_FITS)}")
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    notes: list[str] = []
    a, b, used = gt, pred, fit
    if fit != "none":
        try:
            if fit == "logistic4":
                a, b = gt, fit_logistic(pred, gt)
            elif fit == "logistic4_gt_to_pred":
                a, b = pred, fit_logistic(gt, pred)
            else:
                a, b = gt, fit_poly3(pred, gt)
        except RuntimeError as exc:
            notes.append(f"PLCC: the {fit.split('_')[0]} fit failed ({exc}); PLCC uses the raw scores "
                         "(plcc_fit none).")
            a, b, used = gt, pred, "none"
    r = correlation_or_none(a, b, "pearson")
    if r is None:
        notes.append(f"PLCC is undefined because {_undefined_reason(gt, pred)}; counted as 0.")
        return 0.0, used, notes
    return r, used, notes


#: Fits :func:`plcc` takes (``official`` is resolved per track by the scorers: :data:`OFFICIAL_FIT`).
_FITS = ("logistic4", "logistic4_gt_to_pred", "poly3", "none")


def plcc(gt: ArrayLike, pred: ArrayLike, fit: str = "logistic4") -> float:
    """PLCC: Pearson's r after fitting ``fit``, as a plain float.

    ``fit``: ``logistic4`` (the 4-parameter logistic, prediction -> reference: Track 2's official
    fit), ``logistic4_gt_to_pred`` (reference -> prediction: Track 1's official fit), ``poly3``
    or ``none``. A fit that fails falls back to the raw scores and an undefined correlation
    counts as 0, each with a :class:`MetricWarning`.

    Example:
        >>> plcc([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0], fit="none") == 6.5 / math.sqrt(43.75)
        True
    """
    value, _, notes = plcc_with_notes(gt, pred, fit)
    _warn(notes)
    return value


def sign_disagreement(srcc_value: float, plcc_value: float) -> list[str]:
    """A note when SRCC and PLCC have opposite signs (the logistic fit can turn falling scores into a high PLCC)."""
    if srcc_value * plcc_value >= 0:
        return []
    return [f"SRCC ({srcc_value:+.4f}) and PLCC ({plcc_value:+.4f}) have opposite signs. The number is the "
            "official one: the official logistic fit can also fit a falling curve, so reversed scores still get a "
            "high PLCC. A negative SRCC means the predicted scores rank the images the wrong way round: check "
            "that a higher score means a better image (e.g. 6 - score, or a missing minus sign)."
            if srcc_value < 0 else
            f"SRCC ({srcc_value:+.4f}) and PLCC ({plcc_value:+.4f}) have opposite signs: the fitted curve and "
            "the ranks disagree; look at the scores' scatter (ntire-t2iqa explain) before trusting either."]


def element_accuracy_with_notes(gt: ArrayLike, pred: ArrayLike) -> tuple[float, list[str]]:
    """:func:`element_accuracy` and its warnings as a list: ``(value, notes)``."""
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if gt.size == 0:
        return 0.0, ["ACC is undefined because the reference has no elements; counted as 0."]
    return float(np.mean((gt >= ELEMENT_THRESHOLD) == (pred >= ELEMENT_THRESHOLD))), []


def element_accuracy(gt: ArrayLike, pred: ArrayLike) -> float:
    """ACC = mean((gt >= 0.5) == (pred >= 0.5)) over all pooled elements; none at all counts as 0 (with a warning).

    Example:
        >>> element_accuracy([1.0, 2 / 3, 1 / 3, 0.0], [0.9, 0.2, 0.4, 0.6])
        0.5
    """
    value, notes = element_accuracy_with_notes(gt, pred)
    _warn(notes)
    return value


class RegionScores(NamedTuple):
    """Pooled region F1, precision and recall (plain floats)."""

    f1: float
    precision: float
    recall: float


def region_scores_with_notes(n_pred: int, n_pred_hit: int, n_gt: int,
                             n_gt_missed: int) -> tuple[RegionScores, list[str]]:
    """:func:`region_scores` and its warnings as a list: ``(scores, notes)``."""
    notes: list[str] = []
    if n_pred == 0:
        precision = 0.0
        notes.append("Precision is undefined because no predicted region passed the area threshold; counted as 0.")
    else:
        precision = n_pred_hit / n_pred
    if n_gt == 0:
        recall = 0.0
        notes.append("Recall is undefined because the reference has no regions; counted as 0.")
    else:
        recall = 1 - n_gt_missed / n_gt
    f1 = 2 * precision * recall / (precision + recall + F1_EPS)
    return RegionScores(float(f1), float(precision), float(recall)), notes


def region_scores(n_pred: int, n_pred_hit: int, n_gt: int, n_gt_missed: int) -> RegionScores:
    """Pooled region F1, precision and recall as the official Track 2 program computes them.

    precision = hit predicted / all predicted; recall = 1 - missed gt / all gt;
    F1 = 2PR / (P + R + 1e-10). A 0/0 precision or recall counts as 0 with a :class:`MetricWarning`.

    Example:
        >>> region_scores(n_pred=4, n_pred_hit=3, n_gt=5, n_gt_missed=1).precision
        0.75
    """
    scores, notes = region_scores_with_notes(n_pred, n_pred_hit, n_gt, n_gt_missed)
    _warn(notes)
    return scores


def region_f1(n_pred: int, n_pred_hit: int, n_gt: int, n_gt_missed: int) -> float:
    """Pooled region F1 (see :func:`region_scores` for precision and recall too)."""
    scores, notes = region_scores_with_notes(n_pred, n_pred_hit, n_gt, n_gt_missed)
    _warn(notes)
    return scores.f1


def align_main(srcc_value: float, plcc_value: float, acc: float) -> float:
    """Track 1 main score: 0.25 SRCC + 0.25 PLCC + 0.5 ACC."""
    return 0.25 * srcc_value + 0.25 * plcc_value + 0.5 * acc


def structure_main(f1: float, srcc_value: float, plcc_value: float) -> float:
    """Track 2 main score: 0.7 F1 + 0.15 (SRCC + PLCC)."""
    return 0.7 * f1 + 0.15 * (srcc_value + plcc_value)


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean as numpy computes it (0 for no values)."""
    return float(np.mean(values)) if len(values) else 0.0
