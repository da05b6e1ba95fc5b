"""Track 2 diagnostics: region counts per image, what the area thresholds drop, the images that
cost the most recall and precision, and overlay pictures of the worst images.

Counts come from the scoring core's per-image matches; the overlays redraw the same
regions with :mod:`ntire_t2iqa.regions` (and tests check that they agree with the counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .. import regions
from ..tracks.common import Result
from ..tracks.structure import IMAGE_SUFFIXES, StructureRecord, StructureReference
from .common import fit_curve, rank_errors

#: Overlay colours (BGR for OpenCV, hex for the page's legend).
REFERENCE_BGR, PREDICTION_BGR, DROPPED_BGR = (119, 158, 27), (2, 95, 217), (150, 150, 150)
REFERENCE_HEX, PREDICTION_HEX, DROPPED_HEX = "#1b9e77", "#d95f02", "#969696"
OVERLAY_SIZE = 320


def image_rows(result: Result) -> list[dict[str, Any]]:
    """One row per image: region counts, hits, misses, false regions, GIoU term and regions dropped."""
    d = result.details
    total_gt = int(d["n_gt"].sum())
    total_pred = int(d["n_pred"].sum())
    rows = []
    for i, name in enumerate(d["image"]):
        n_pred, hit, n_gt, missed = (int(d[k][i]) for k in ("n_pred", "n_pred_hit", "n_gt", "n_gt_missed"))
        rows.append({"image": name, "gt_regions": n_gt, "gt_missed": missed, "pred_regions": n_pred,
                     "pred_hit": hit, "pred_false": n_pred - hit, "giou": float(d["giou"][i]),
                     "pred_dropped": int(d["pred_dropped"][i]), "gt_dropped": int(d["gt_dropped"][i]),
                     "recall_cost": missed / total_gt if total_gt else 0.0,
                     "precision_cost": (n_pred - hit) / total_pred if total_pred else 0.0})
    return rows


def region_summary(result: Result) -> dict[str, Any]:
    """Pooled counts and what the official area thresholds drop."""
    d = result.details
    n_pred, n_hit, n_gt, n_missed = (int(d[k].sum()) for k in ("n_pred", "n_pred_hit", "n_gt", "n_gt_missed"))
    pred_dropped, gt_dropped = d["pred_dropped"], d["gt_dropped"]
    return {"images": len(d["image"]), "pred_regions": n_pred, "pred_hit": n_hit, "pred_false": n_pred - n_hit,
            "gt_regions": n_gt, "gt_hit": n_gt - n_missed, "gt_missed": n_missed,
            "pred_min_area": regions.PRED_MIN_AREA, "gt_min_area": regions.GT_MIN_AREA,
            "pred_dropped": int(pred_dropped.sum()), "images_with_pred_dropped": int(np.count_nonzero(pred_dropped)),
            "gt_dropped": int(gt_dropped.sum()), "images_with_gt_dropped": int(np.count_nonzero(gt_dropped)),
            "images_without_pred": int(np.count_nonzero(d["n_pred"] == 0)),
            "images_without_gt": int(np.count_nonzero(d["n_gt"] == 0))}


def worst(rows: list[dict[str, Any]], key: str, top: int) -> list[dict[str, Any]]:
    """The ``top`` rows with the largest positive ``key``; ties keep the scorer's image order."""
    ranked = sorted((r for r in rows if r[key] > 0), key=lambda r: -r[key])
    return ranked[:top]


def overlay_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Images that lose region points, worst first: most missed plus false regions, then lowest GIoU term.

    An image with no missed reference region and no false prediction costs no F1 and is left out.
    """
    imperfect = [r for r in rows if r["gt_missed"] + r["pred_false"] > 0]
    return sorted(imperfect, key=lambda r: (-(r["gt_missed"] + r["pred_false"]), r["giou"]))


@dataclass
class ImageRegions:
    """Regions of one image as the scorer sees them, with each region's match status."""

    gt: list[np.ndarray]
    gt_hit: list[bool]
    pred: list[np.ndarray]
    pred_hit: list[bool]
    pred_dropped: list[np.ndarray]
    gt_dropped: list[np.ndarray]


def _split(contours: list[np.ndarray], min_area: float) -> tuple[list[np.ndarray], list[regions.Region],
                                                                   list[np.ndarray]]:
    kept, found, dropped = [], [], []
    for c in contours:
        area = cv2.contourArea(c)
        if area > min_area:
            kept.append(c)
            found.append(regions.Region(c, area))
        else:
            dropped.append(c)
    return kept, found, dropped


def image_regions(pred_area: np.ndarray, gt_mask: np.ndarray) -> ImageRegions:
    """Contours of the reference and the (resized) prediction, which ones count, and which are matched."""
    gt_kept, gt_found, gt_dropped = _split(regions.external_contours(gt_mask), regions.GT_MIN_AREA)
    cropped = regions.prediction_crop(pred_area)
    contours = [] if cropped is None else regions.external_contours(cropped[0], (cropped[2], cropped[1]))
    pred_kept, pred_found, pred_dropped = _split(contours, regions.PRED_MIN_AREA)
    hits = regions.iou_matrix(pred_found, gt_found) > regions.IOU_THRESHOLD
    return ImageRegions(gt_kept, [bool(h) for h in hits.any(axis=0)] if pred_found else [False] * len(gt_kept),
                        pred_kept, [bool(h) for h in hits.any(axis=1)] if gt_found else [False] * len(pred_kept),
                        pred_dropped, gt_dropped)


def frame_size(height: int, width: int, long_side: int = regions.SIZE) -> tuple[int, int]:
    """``(height, width)`` of a picture scaled to ``long_side`` pixels on its longer side (aspect ratio kept)."""
    scale = long_side / max(height, width, 1)
    return max(1, round(height * scale)), max(1, round(width * scale))


def read_background(path: Path | None) -> np.ndarray | None:
    """The picture as a BGR array 512 pixels on its longer side (its aspect ratio kept), lightened so the
    regions stand out; ``None`` if unreadable."""
    if path is None:
        return None
    picture = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if picture is None:
        return None
    height, width = frame_size(*picture.shape[:2])
    picture = cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.addWeighted(picture, 0.6, np.full_like(picture, 255), 0.4, 0)


def _scaled(contours: list[np.ndarray], sx: float, sy: float) -> list[np.ndarray]:
    """Contours of the 512 x 512 scoring frame moved onto a picture of another shape."""
    if sx == sy == 1.0:
        return contours
    return [np.round(c * np.array([sx, sy])).astype(np.int32) for c in contours]


def draw_overlay(found: ImageRegions, background: np.ndarray | None) -> np.ndarray:
    """Reference (green) and predicted (orange) regions on the picture (BGR, its own aspect ratio, e.g. from
    :func:`read_background`) or on a blank 512 x 512 canvas.

    The scorer's regions live in a 512 x 512 frame; they are stretched back onto the picture's
    shape, so a 384 x 512 picture is shown 384 x 512, not squeezed square. Matched regions
    are filled translucent and outlined; unmatched ones are outlined thick and marked with a
    cross (a missed reference region or a false prediction); contours the area thresholds
    drop are drawn thin and grey.
    """
    canvas = background.copy() if background is not None else np.full((regions.SIZE, regions.SIZE, 3), 244, np.uint8)
    sx, sy = canvas.shape[1] / regions.SIZE, canvas.shape[0] / regions.SIZE
    gt, pred = _scaled(found.gt, sx, sy), _scaled(found.pred, sx, sy)
    fill = canvas.copy()
    for contours, hit, color in ((gt, found.gt_hit, REFERENCE_BGR), (pred, found.pred_hit, PREDICTION_BGR)):
        matched = [c for c, h in zip(contours, hit) if h]
        if matched:
            cv2.drawContours(fill, matched, -1, color, thickness=-1)
    canvas = cv2.addWeighted(fill, 0.35, canvas, 0.65, 0)
    cv2.drawContours(canvas, _scaled(found.pred_dropped + found.gt_dropped, sx, sy), -1, DROPPED_BGR, 1)
    for contours, hit, color in ((gt, found.gt_hit, REFERENCE_BGR), (pred, found.pred_hit, PREDICTION_BGR)):
        for c, h in zip(contours, hit):
            cv2.drawContours(canvas, [c], -1, color, 2 if h else 4)
            if not h:
                x, y, w, h_ = cv2.boundingRect(c)
                cx, cy, r = x + w // 2, y + h_ // 2, 9
                cv2.line(canvas, (cx - r, cy - r), (cx + r, cy + r), color, 3)
                cv2.line(canvas, (cx - r, cy + r), (cx + r, cy - r), color, 3)
    return canvas


def encode(picture: np.ndarray, photo: bool, size: int = OVERLAY_SIZE) -> tuple[str, bytes]:
    """``(mime type, bytes)`` of the picture scaled to ``size`` pixels on its longer side (aspect ratio kept):
    JPEG over a photo, PNG on a blank canvas."""
    height, width = frame_size(*picture.shape[:2], long_side=size)
    small = cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
    if photo:
        ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 82])
        mime = "image/jpeg"
    else:
        ok, data = cv2.imencode(".png", small, [cv2.IMWRITE_PNG_COMPRESSION, 6])
        mime = "image/png"
    if not ok:  # pragma: no cover - OpenCV encodes any 8-bit BGR array
        raise RuntimeError("could not encode an overlay picture")
    return mime, data.tobytes()


def image_index(folder: Path | None) -> dict[str, Path]:
    """The pictures directly in ``folder`` (one listing), by file name and by stem (the Track 2 image name)."""
    if folder is None:
        return {}
    pictures = [f for f in sorted(folder.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()]
    return {**{f.stem: f for f in pictures}, **{f.name: f for f in pictures}}


def overlays(rows: list[dict[str, Any]], records: dict[str, StructureRecord], reference: StructureReference,
             images: Path | None, count: int) -> list[dict[str, Any]]:
    """Overlay pictures of the ``count`` worst images (see :func:`overlay_order`; perfect images are left out)."""
    index = image_index(images)
    out = []
    for row in overlay_order(rows)[:count]:
        name = row["image"]
        found = image_regions(records[name].pred_area, reference.masks[name])
        background = read_background(index.get(name))
        picture = draw_overlay(found, background)
        mime, data = encode(picture, background is not None)
        height, width = frame_size(*picture.shape[:2], long_side=OVERLAY_SIZE)
        out.append({"image": name, "mime": mime, "data": data, "background": "image" if background is not None
                    else "blank", "row": row, "regions": found, "width": width, "height": height})
    return out


def analyse(result: Result, records: dict[str, StructureRecord], reference: StructureReference, fit_mode: str,
            top: int, images: Path | None, n_overlays: int) -> dict[str, Any]:
    """Every Track 2 table, as plain data (``figures`` holds arrays and pictures for the HTML)."""
    d = result.details
    rows = image_rows(result)
    curve = fit_curve(d["gt_score"], d["pred_score"], fit_mode, result.plcc_fit)
    pictures = overlays(rows, records, reference, images, n_overlays)
    return {
        "regions": region_summary(result),
        "worst_recall": worst(rows, "gt_missed", top),
        "worst_precision": worst(rows, "pred_false", top),
        "images": rows,
        "fit": curve.to_dict(),
        "rank_errors": rank_errors(d["image"], d["gt_score"], d["pred_score"], top),
        "overlays": [{"image": p["image"], "background": p["background"]} for p in pictures],
        "figures": {"curve": curve, "overlays": pictures},
    }
