"""What both tracks' diagnostics share: group correlations, rank errors and the PLCC fit curve.

Every number comes from :mod:`ntire_t2iqa.metrics`; nothing here re-implements a metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import correlation, metrics


def finite_or_none(value: float | None) -> float | None:
    """``None`` for an undefined value (JSON ``null``), else a plain float."""
    return None if value is None else float(value)


def group_correlations(gt: np.ndarray, pred: np.ndarray, fit_mode: str) -> dict[str, Any]:
    """SRCC and PLCC of one group of images, ``None`` where undefined (fewer than 2 images or constant scores).

    PLCC uses the same fit as the headline; a group too small or too flat for the fit
    falls back to the raw scores and says so in ``plcc_fit``.
    """
    rho = metrics.correlation_or_none(gt, pred, "spearman")
    if rho is None:
        return {"srcc": None, "plcc": None, "plcc_fit": "none"}
    value, used, _ = metrics.plcc_with_notes(gt, pred, fit_mode)
    return {"srcc": rho, "plcc": value, "plcc_fit": used}


def folder_of(path: str) -> str | None:
    """The folder part of an ``img_path`` (the T2I model in EvalMuse-40K), or ``None`` when there is none."""
    head, sep, _ = path.rpartition("/")
    return head if sep and head else None


def groups_of(labels: Sequence[str | None]) -> dict[str, np.ndarray]:
    """Indices of each label's members, labels sorted; ``None`` labels are left out."""
    out: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        if label is not None:
            out.setdefault(label, []).append(i)
    return {k: np.asarray(out[k], dtype=np.int64) for k in sorted(out)}


def rank_errors(names: Sequence[str], gt: np.ndarray, pred: np.ndarray, top: int) -> list[dict[str, Any]]:
    """The ``top`` images whose predicted rank is furthest from their reference rank (never one ranked right).

    Ranks are 1-based, ties averaged (as Spearman's rho ranks them); ``rank_error`` is
    predicted minus reference rank, so a positive error means the image was scored too high.
    Ties in ``|rank_error|`` keep the reference order; images with no rank error are left out.
    """
    if len(names) == 0 or top <= 0:
        return []
    gt_rank = correlation.rankdata(gt)
    pred_rank = correlation.rankdata(pred)
    error = pred_rank - gt_rank
    order = np.argsort(-np.abs(error), kind="stable")[:top]
    return [{"name": names[i], "gt": float(gt[i]), "pred": float(pred[i]), "gt_rank": float(gt_rank[i]),
             "pred_rank": float(pred_rank[i]), "rank_error": float(error[i])} for i in order if error[i] != 0]


#: Points of the drawn fit curve, evenly spaced over the x range of the data.
CURVE_POINTS = 200


@dataclass
class FitCurve:
    """The fitted PLCC curve drawn over the score scatter: ``y ~ f(x)``, sampled evenly over the x range."""

    x_label: str
    y_label: str
    x: np.ndarray
    y: np.ndarray
    curve_x: np.ndarray  # CURVE_POINTS values from min(x) to max(x)
    curve_y: np.ndarray  # f(curve_x); empty when no fit was used
    fit: str
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"fit": self.fit, "x": self.x_label, "y": self.y_label, "note": self.note}


def fit_curve(gt: np.ndarray, pred: np.ndarray, fit_mode: str, fit_used: str) -> FitCurve:
    """The curve the headline PLCC used: reference -> prediction for ``logistic4_gt_to_pred``
    (the official Track 1 fit), prediction -> reference otherwise; evaluated at :data:`CURVE_POINTS`
    evenly spaced x values from the smallest to the largest, so it draws smooth."""
    if fit_mode == "logistic4_gt_to_pred":
        x, y, labels = gt, pred, ("reference score", "predicted score")
    else:
        x, y, labels = pred, gt, ("predicted score", "reference score")
    empty = np.empty(0)
    grid = np.linspace(float(np.min(x)), float(np.max(x)), CURVE_POINTS) if x.size else empty
    if fit_used == "none" or fit_mode == "none":
        note = None if fit_mode == "none" else "the fit failed (see the warnings), so PLCC used the raw scores"
        return FitCurve(*labels, x, y, grid, empty, "none", note)
    try:
        with np.errstate(all="ignore"):
            if fit_mode == "poly3":
                curve = np.polyval(metrics.fit_poly3_coefficients(x, y), grid)
            else:
                curve = metrics.logistic4(grid, *metrics.fit_logistic_params(x, y))
    except RuntimeError as exc:  # pragma: no cover - the headline fit succeeded on the same data
        return FitCurve(*labels, x, y, grid, empty, "none", str(exc))
    return FitCurve(*labels, x, y, grid, curve, fit_mode)
