"""Pearson's r, Spearman's rho and average ranks computed as ``scipy.stats`` computes them, without importing it.

``scipy.stats`` takes about 0.7 s to import, longer than scoring a typical submission; these
three functions give the same float64 values as ``scipy.stats.pearsonr(a, b).statistic``,
``scipy.stats.spearmanr(a, b).statistic`` and ``scipy.stats.rankdata(a)`` (the same numpy
operations in the same order), for 1-D inputs of at least 2 finite values that are not
constant. Undefined cases are the caller's: :mod:`ntire_t2iqa.metrics` checks them first
and returns NaN (or 0 with a note) as docs/scoring.md says.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: ``np.vecdot`` (numpy >= 2.0), which scipy's pearsonr uses; ``np.dot`` on older numpy (same value to rounding).
_vecdot = getattr(np, "vecdot", None)


def rankdata(a: Any) -> np.ndarray:
    """Ranks 1..n of a 1-D array, ties given their average rank (``scipy.stats.rankdata(a)``, finite input).

    Example:
        >>> rankdata([10.0, 30.0, 20.0, 20.0]).tolist()
        [1.0, 4.0, 2.5, 2.5]
    """
    a = np.asarray(a).ravel()
    n = a.size
    order = np.argsort(a, kind="stable")
    ranked = a[order]
    first = np.empty(n, dtype=bool)
    first[:1] = True
    np.not_equal(ranked[1:], ranked[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, n))
    average = (starts + 1).astype(np.float64) + (counts - 1).astype(np.float64) / 2
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(average, counts)
    return ranks


def pearsonr(x: Any, y: Any) -> float:
    """Pearson's r as ``scipy.stats.pearsonr(x, y).statistic`` computes it (>= 2 finite, non-constant values).

    Centred values are scaled by their largest magnitude before the norm (no premature
    overflow), the result is clipped to [-1, 1], and two points give exactly +-1.

    Example:
        >>> pearsonr([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]) == 6.5 / 43.75 ** 0.5
        True
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xm = x - np.mean(x, axis=-1, keepdims=True)
    ym = y - np.mean(y, axis=-1, keepdims=True)
    xmax = np.max(np.abs(xm), axis=-1, keepdims=True)
    ymax = np.max(np.abs(ym), axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        normxm = xmax * np.linalg.norm(xm / xmax, ord=2, axis=-1, keepdims=True)
        normym = ymax * np.linalg.norm(ym / ymax, ord=2, axis=-1, keepdims=True)
        a, b = xm / normxm, ym / normym
        r = _vecdot(a, b, axis=-1) if _vecdot is not None else np.dot(a, b)
    r = np.clip(r, -1.0, 1.0)
    if x.shape[-1] == 2:
        r = np.round(r)
    return float(r)


def spearmanr(a: Any, b: Any) -> float:
    """Spearman's rho as ``scipy.stats.spearmanr(a, b).statistic`` computes it (>= 2 finite, non-constant values).

    Both inputs are ranked (ties averaged), then correlated with ``np.corrcoef``, as scipy does.

    Example:
        >>> spearmanr([1.0, 2.0, 3.0], [0.1, 0.3, 0.2])
        0.5
    """
    columns = np.column_stack((np.asarray(a), np.asarray(b)))
    ranked = np.column_stack((rankdata(columns[:, 0]), rankdata(columns[:, 1])))
    return float(np.corrcoef(ranked, rowvar=False)[1, 0])
