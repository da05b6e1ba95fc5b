"""A plain, independent implementation of the two official scoring programs.

Written directly from docs/scoring.md, the way the challenge's CodaLab scorers do it: sort and
pair by position (Track 1), draw every pair of contours filled on full 512 x 512
canvases to get one IoU (Track 2). It is deliberately slow and simple: it is the
reference the toolkit is checked against, so it imports nothing from ``ntire_t2iqa``.

Degenerate inputs (constant scores, no regions at all, a fit that fails) are not
handled: like the official programs, it then gives NaN or raises.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import stats
from scipy.optimize import curve_fit

SIZE = 512
PRED_MIN_AREA = SIZE * SIZE * 0.0006
GT_MIN_AREA = 150
IOU_THRESHOLD = 0.1


def logistic_func(x, b1, b2, b3, b4):
    """The 4-parameter logistic of the official programs."""
    return b2 + (b1 - b2) / (1 + np.exp(-(x - b3) / np.abs(b4)))


def fitted_plcc(x, y):
    """Fit ``y ~ logistic(x)`` (initial [max(y), min(y), mean(x), std(x)]); return Pearson(y, f(x))."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    p0 = [np.max(y), np.min(y), np.mean(x), np.std(x)]
    popt, _ = curve_fit(logistic_func, x, y, p0=p0, maxfev=100000000)
    y_hat = logistic_func(x, *popt)
    return stats.pearsonr(y, y_hat)[0]


# --------------------------------------------------------------------------- Track 1


def score_align(sub_records: list[dict], ref_records: list[dict]) -> dict:
    """Track 1 (alignment): SRCC, PLCC, element ACC and the main score.

    ``sub_records``: the parsed output.json; ``ref_records``: the parsed eval.json
    (averaged form). Both are sorted by img_path and paired by position.
    """
    sub = sorted(sub_records, key=lambda r: r["img_path"])
    ref = sorted(ref_records, key=lambda r: r["img_path"])

    gt_total = []
    pred_total = []
    correct = []
    for s, r in zip(sub, ref, strict=False):  # by position, as the official program does
        gt_total.append(r["total_score"])
        pred_total.append(s["total_score"])
        for key, gt_value in r["element_score"].items():
            pred_value = s["element_score"][key]
            correct.append((gt_value >= 0.5) == (pred_value >= 0.5))

    gt_total = np.array(gt_total, dtype=np.float64)
    pred_total = np.array(pred_total, dtype=np.float64)

    srcc = stats.spearmanr(gt_total, pred_total)[0]
    # Track 1 fits ground truth -> prediction: x = gt, y = pred.
    plcc = fitted_plcc(gt_total, pred_total)
    acc = np.mean(np.array(correct, dtype=bool))

    main = 0.25 * srcc + 0.25 * plcc + 0.5 * acc
    return {"srcc": float(srcc), "plcc": float(plcc), "acc": float(acc), "main_score": float(main)}


# --------------------------------------------------------------------------- Track 2


def find_regions(mask, min_area):
    """External contours of a 0/1 mask whose contourArea exceeds ``min_area``."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c for c in contours if cv2.contourArea(c) > min_area]


def contour_iou(c1, c2):
    """IoU of two contours, each drawn filled on its own full 512 x 512 canvas."""
    canvas1 = np.zeros((SIZE, SIZE), dtype=np.uint8)
    canvas2 = np.zeros((SIZE, SIZE), dtype=np.uint8)
    cv2.drawContours(canvas1, [c1], -1, 1, -1)
    cv2.drawContours(canvas2, [c2], -1, 1, -1)
    inter = np.logical_and(canvas1, canvas2).sum()
    union = np.logical_or(canvas1, canvas2).sum()
    return inter / union


def score_structure(pred: dict, gt: dict) -> dict:
    """Track 2 (structure): region F1/precision/recall, SRCC, PLCC, GIoU and the main score.

    ``pred``: the unpickled output.pkl; ``gt``: the unpickled gt.pkl. Images are
    taken in gt's key order; extra predicted images are ignored.
    """
    total_pred = 0
    hit_pred = 0
    total_gt = 0
    missed_gt = 0
    gious = []
    gt_scores = []
    pred_scores = []

    for name in gt.keys():
        pred_area = pred[name]["pred_area"]
        gm = gt[name]["pred_area"]
        pm = cv2.resize(pred_area, (SIZE, SIZE)) > 0

        gt_scores.append(gt[name]["score"])
        pred_scores.append(pred[name]["score"])

        inter = np.sum(pm & gm)
        union = np.sum(pm | gm)
        gious.append((inter + 1e-4) / (union + 1e-4))

        pred_regions = find_regions(pm, PRED_MIN_AREA)
        gt_regions = find_regions(gm, GT_MIN_AREA)
        pred_hit = [False] * len(pred_regions)
        gt_hit = [False] * len(gt_regions)

        # Pass 1: each prediction takes the first gt region with IoU > 0.1.
        for i, pc in enumerate(pred_regions):
            for j, gc in enumerate(gt_regions):
                if contour_iou(pc, gc) > IOU_THRESHOLD:
                    pred_hit[i] = True
                    gt_hit[j] = True
                    break
        # Pass 2: each gt region not yet hit takes the first prediction with IoU > 0.1.
        for j, gc in enumerate(gt_regions):
            if gt_hit[j]:
                continue
            for i, pc in enumerate(pred_regions):
                if contour_iou(pc, gc) > IOU_THRESHOLD:
                    pred_hit[i] = True
                    gt_hit[j] = True
                    break

        total_pred += len(pred_regions)
        hit_pred += sum(pred_hit)
        total_gt += len(gt_regions)
        missed_gt += len(gt_regions) - sum(gt_hit)

    precision = hit_pred / total_pred
    recall = 1 - missed_gt / total_gt
    f1 = 2 * precision * recall / (precision + recall + 1e-10)

    gt_scores = np.array(gt_scores, dtype=np.float64)
    pred_scores = np.array(pred_scores, dtype=np.float64)
    srcc = stats.spearmanr(gt_scores, pred_scores)[0]
    # Track 2 fits the usual way: x = prediction, y = ground truth.
    plcc = fitted_plcc(pred_scores, gt_scores)
    giou = np.mean(gious)

    main = 0.7 * f1 + 0.15 * (srcc + plcc)
    return {"f1": float(f1), "precision": float(precision), "recall": float(recall), "srcc": float(srcc),
            "plcc": float(plcc), "giou": float(giou), "main_score": float(main)}
