"""Track 1 diagnostics: element accuracy per category, correlations per T2I model and prompt type,
threshold calibration and the largest rank errors.

Inputs are the scoring core's own :class:`~ntire_t2iqa.tracks.common.Result` details (the
pooled element arrays, in the order :func:`ntire_t2iqa.tracks.align.compute` built them),
so every table adds up to the headline.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .. import metrics
from ..tracks.align import AlignRecord
from ..tracks.common import Result
from .common import fit_curve, folder_of, group_correlations, groups_of, rank_errors

#: Element categories of EvalMuse-40K, in the report's order (others found in the keys follow).
CATEGORIES = ("object", "color", "counting", "spatial", "activity", "attribute", "location", "material",
              "shape", "animal", "human", "food", "other")
NO_CATEGORY = "(none)"
_SUFFIX = re.compile(r"\(([^()]*)\)\s*$")


def category_of(key: str) -> str:
    """The category in an element key's trailing parentheses: ``"red (color)"`` -> ``"color"``."""
    found = _SUFFIX.search(key)
    if found is None or not found.group(1).strip():
        return NO_CATEGORY
    return found.group(1).strip().lower()


def element_keys(paths: list[str], reference: dict[str, AlignRecord]) -> list[str]:
    """Element keys in the pooled order of the scorer (images sorted, each image's keys in reference order)."""
    return [key for p in paths for key in reference[p].elements]


def category_table(keys: list[str], gt: np.ndarray, pred: np.ndarray) -> list[dict[str, Any]]:
    """Per category: elements, ACC, false "present" (absent but predicted present), false "absent", and
    ``cost``, the main-score points its errors take (0.5 x errors / all elements). Most costly first."""
    cache: dict[str, str] = {}
    cats = [cache.get(k) or cache.setdefault(k, category_of(k)) for k in keys]
    gt_pos = gt >= metrics.ELEMENT_THRESHOLD
    pred_pos = pred >= metrics.ELEMENT_THRESHOLD
    total = len(keys)
    rows = []
    for cat, idx in groups_of(cats).items():
        g, p = gt_pos[idx], pred_pos[idx]
        false_present = int(np.count_nonzero(~g & p))
        false_absent = int(np.count_nonzero(g & ~p))
        n = int(idx.size)
        rows.append({"category": cat, "elements": n, "present": int(np.count_nonzero(g)),
                     "acc": (n - false_present - false_absent) / n, "false_present": false_present,
                     "false_absent": false_absent, "cost": 0.5 * (false_present + false_absent) / total})
    order = {c: i for i, c in enumerate(CATEGORIES)}
    rows.sort(key=lambda r: (-r["cost"], order.get(r["category"], len(order)), r["category"]))
    return rows


def group_table(labels: list[str | None], gt: np.ndarray, pred: np.ndarray, correct_per_image: np.ndarray,
                elements_per_image: np.ndarray, fit_mode: str) -> list[dict[str, Any]]:
    """Per group of images (T2I model or prompt type): images, elements, SRCC, PLCC and ACC."""
    rows = []
    for label, idx in groups_of(labels).items():
        n_el = int(elements_per_image[idx].sum())
        row = {"group": label, "images": int(idx.size), "elements": n_el,
               **group_correlations(gt[idx], pred[idx], fit_mode),
               "acc": float(correct_per_image[idx].sum() / n_el) if n_el else None}
        rows.append(row)
    return rows


def best_threshold(gt: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """The element-score threshold that maximises ACC on these elements, next to ACC at the official 0.5.

    ACC(t) = mean((gt >= 0.5) == (pred >= t)). Every distinct cut is tried; among equally
    good ones the cut nearest to 0.5 wins (0.5 itself when it is among the best). The
    threshold reported is 0.5 or the midpoint of the winning gap between predicted values.
    """
    n = int(gt.size)
    official = float(np.mean((gt >= metrics.ELEMENT_THRESHOLD) == (pred >= metrics.ELEMENT_THRESHOLD))) if n else 0.0
    if n == 0:
        return {"elements": 0, "official_threshold": metrics.ELEMENT_THRESHOLD, "official_acc": 0.0,
                "best_threshold": metrics.ELEMENT_THRESHOLD, "best_acc": 0.0}
    order = np.argsort(pred, kind="stable")
    values = pred[order]
    positive = (gt >= metrics.ELEMENT_THRESHOLD)[order]
    uniq, first = np.unique(values, return_index=True)
    starts = np.append(first, n)  # cut k: elements from starts[k] on are called present
    positives_before = np.concatenate(([0], np.cumsum(positive)))[starts]
    correct = (positives_before[-1] - positives_before) + (starts - positives_before)
    lower = np.concatenate(([-np.inf], uniq))  # cut k: thresholds in (lower[k], upper[k]] give it
    upper = np.append(uniq, np.inf)
    distance = np.where((lower < 0.5) & (0.5 <= upper), 0.0, np.minimum(np.abs(lower - 0.5), np.abs(upper - 0.5)))
    best = np.flatnonzero(correct == correct.max())
    k = int(best[np.argmin(distance[best])])
    if distance[k] == 0.0:
        threshold = metrics.ELEMENT_THRESHOLD
    elif np.isinf(lower[k]):
        threshold = float(upper[k])
    elif np.isinf(upper[k]):
        threshold = float(np.nextafter(lower[k], np.inf))
    else:
        threshold = float((lower[k] + upper[k]) / 2)
    return {"elements": n, "official_threshold": metrics.ELEMENT_THRESHOLD, "official_acc": official,
            "best_threshold": threshold, "best_acc": float(correct[k] / n)}


def analyse(result: Result, reference: dict[str, AlignRecord], fit_mode: str, top: int) -> dict[str, Any]:
    """Every Track 1 table, as plain data (``figures`` holds arrays for the HTML plots)."""
    d = result.details
    paths: list[str] = d["img_path"]
    keys = element_keys(paths, reference)
    gt_el, pred_el = d["gt_element"], d["pred_element"]
    models = [folder_of(p) for p in paths]
    types = [reference[p].prompt_type for p in paths]
    group_args = (d["gt_total"], d["pred_total"], d["correct_per_image"], d["elements_per_image"], fit_mode)
    curve = fit_curve(d["gt_total"], d["pred_total"], fit_mode, result.plcc_fit)
    errors = rank_errors(paths, d["gt_total"], d["pred_total"], top)
    index = {p: i for i, p in enumerate(paths)}
    starts = np.concatenate(([0], np.cumsum(d["elements_per_image"])))
    wrong = (gt_el >= metrics.ELEMENT_THRESHOLD) != (pred_el >= metrics.ELEMENT_THRESHOLD)
    for row in errors:
        i = index[row["name"]]
        row["prompt"] = reference[row["name"]].prompt
        row["elements"] = int(d["elements_per_image"][i])
        row["wrong_elements"] = int(d["elements_per_image"][i] - d["correct_per_image"][i])
        row["wrong_element_keys"] = [keys[k] for k in range(starts[i], starts[i + 1]) if wrong[k]]
    return {
        "categories": category_table(keys, gt_el, pred_el),
        "models": group_table(models, *group_args) if any(m is not None for m in models) else [],
        "types": group_table(types, *group_args) if any(t is not None for t in types) else [],
        "calibration": best_threshold(gt_el, pred_el),
        "fit": curve.to_dict(),
        "rank_errors": errors,
        "figures": {"curve": curve, "gt_element": gt_el, "pred_element": pred_el},
    }
