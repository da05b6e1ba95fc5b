"""Pure metric functions: rank and linear correlation with the challenge's fits, element
accuracy, and region F1 from pooled counts.

Every function returns plain floats and a list of warnings. Where the official programs
would give NaN or crash (constant inputs, a fit that fails, 0/0), the value is defined
as docs/scoring.md says and a warning explains what happened.

Example:
    >>> import numpy as np
    >>> value, notes = srcc(np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.3, 0.2]))
    >>> round(value, 4), notes
    (0.5, [])
"""

from __future__ import annotations

import math
import warnings as _warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats
from scipy.optimize import OptimizeWarning, curve_fit

#: Fits accepted by ``--plcc-fit``; "official" resolves per track (see :data:`OFFICIAL_FIT`).
PLCC_FITS = ("official", "logistic4", "poly3", "none")
#: What "official" means per track: Track 1 fits ground truth -> prediction, Track 2 the reverse.
OFFICIAL_FIT = {"align": "logistic4_gt_to_pred", "structure": "logistic4"}

ELEMENT_THRESHOLD = 0.5
F1_EPS = 1e-10
MAXFEV = 100_000_000


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """The 4-parameter logistic ``b2 + (b1 - b2) / (1 + exp(-(x - b3) / |b4|))``."""
    return b2 + (b1 - b2) / (1 + np.exp(np.negative(np.divide(x - b3, np.abs(b4)))))


def _is_constant(a: np.ndarray) -> bool:
    return a.size < 2 or bool(np.all(a == a[0]))


def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson's r, or ``None`` when undefined (fewer than 2 values, a constant or non-finite input)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size < 2 or _is_constant(a) or _is_constant(b):
        return None
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return None
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        r = float(stats.pearsonr(a, b)[0])
    return r if math.isfinite(r) else None


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rho (scipy), or ``None`` when undefined."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size < 2 or _is_constant(a) or _is_constant(b):
        return None
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        rho = float(stats.spearmanr(a, b)[0])
    return rho if math.isfinite(rho) else None


def _undefined_reason(gt: np.ndarray, pred: np.ndarray) -> str:
    if gt.size < 2:
        return f"only {gt.size} image(s)"
    if _is_constant(pred):
        return "the predicted scores are all equal"
    if _is_constant(gt):
        return "the reference scores are all equal"
    return "the values are not finite"


def srcc(gt: np.ndarray, pred: np.ndarray) -> tuple[float, list[str]]:
    """SRCC = Spearman(gt, pred); undefined counts as 0 with a warning."""
    rho = spearman(gt, pred)
    if rho is None:
        why = _undefined_reason(np.asarray(gt), np.asarray(pred))
        return 0.0, [f"SRCC is undefined because {why}; counted as 0."]
    return rho, []


def fit_logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fit :func:`logistic4` mapping ``x`` to ``y`` as the official programs do; return fitted values.

    Initial parameters ``[max(y), min(y), mean(x), std(x)]``, ``maxfev = 1e8``.
    Raises ``RuntimeError`` when the fit fails or gives non-finite or constant values.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size < 4:
        raise RuntimeError(f"4 parameters cannot be fitted to {x.size} points")
    if _is_constant(x):
        raise RuntimeError("the fitted variable is constant")
    p0 = [np.max(y), np.min(y), np.mean(x), np.std(x)]
    with _warnings.catch_warnings(), np.errstate(all="ignore"):
        _warnings.simplefilter("ignore", OptimizeWarning)
        _warnings.simplefilter("ignore", RuntimeWarning)
        try:
            popt, _ = curve_fit(logistic4, x, y, p0=p0, maxfev=MAXFEV)
        except (RuntimeError, ValueError, TypeError, np.linalg.LinAlgError) as exc:
            raise RuntimeError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
        fitted = logistic4(x, *popt)
    if not (np.all(np.isfinite(popt)) and np.all(np.isfinite(fitted))):
        raise RuntimeError("the fit gave non-finite values")
    if _is_constant(fitted):
        raise RuntimeError("the fitted curve is flat")
    return fitted


def fit_poly3(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares cubic mapping ``x`` to ``y``; return fitted values."""
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
    return fitted


def plcc(gt: np.ndarray, pred: np.ndarray, fit: str) -> tuple[float, str, list[str]]:
    """PLCC after a fit. Returns ``(value, fit_used, warnings)``.

    ``fit``: ``logistic4`` (prediction -> reference, PLCC = Pearson(gt, f(pred))),
    ``logistic4_gt_to_pred`` (reference -> prediction, PLCC = Pearson(pred, f(gt)), the
    official Track 1 variant), ``poly3`` (cubic prediction -> reference) or ``none``.
    A failed fit falls back to the raw values (``fit_used == "none"``); an undefined
    correlation counts as 0. Both add a warning.
    """
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
            elif fit == "poly3":
                a, b = gt, fit_poly3(pred, gt)
            else:
                raise ValueError(f"unknown PLCC fit {fit!r}; choose one of {', '.join(PLCC_FITS)}")
        except RuntimeError as exc:
            notes.append(f"PLCC: the {fit.split('_')[0]} fit failed ({exc}); PLCC uses the raw scores "
                         "(plcc_fit none).")
            a, b, used = gt, pred, "none"
    r = pearson(a, b)
    if r is None:
        notes.append(f"PLCC is undefined because {_undefined_reason(gt, pred)}; counted as 0.")
        return 0.0, used, notes
    return r, used, notes


def element_accuracy(gt: np.ndarray, pred: np.ndarray) -> tuple[float, list[str]]:
    """ACC = mean((gt >= 0.5) == (pred >= 0.5)) over all pooled elements; none at all counts as 0."""
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if gt.size == 0:
        return 0.0, ["ACC is undefined because the reference has no elements; counted as 0."]
    return float(np.mean((gt >= ELEMENT_THRESHOLD) == (pred >= ELEMENT_THRESHOLD))), []


def region_f1(n_pred: int, n_pred_hit: int, n_gt: int, n_gt_missed: int) -> tuple[float, float, float, list[str]]:
    """Pooled region precision, recall and F1 as the official Track 2 program computes them.

    precision = hit predicted / all predicted; recall = 1 - missed gt / all gt;
    F1 = 2PR / (P + R + 1e-10). A 0/0 precision or recall counts as 0 with a warning.
    Returns ``(f1, precision, recall, warnings)``.
    """
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
    return f1, precision, recall, notes


def align_main(srcc_value: float, plcc_value: float, acc: float) -> float:
    """Track 1 main score: 0.25 SRCC + 0.25 PLCC + 0.5 ACC."""
    return 0.25 * srcc_value + 0.25 * plcc_value + 0.5 * acc


def structure_main(f1: float, srcc_value: float, plcc_value: float) -> float:
    """Track 2 main score: 0.7 F1 + 0.15 (SRCC + PLCC)."""
    return 0.7 * f1 + 0.15 * (srcc_value + plcc_value)


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean as numpy computes it (0 for no values)."""
    return float(np.mean(values)) if len(values) else 0.0
