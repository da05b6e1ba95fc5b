"""``data build-ref``: raw annotations to the hidden references the scorer reads.

Track 1: the raw ``train_list.json`` form (per-annotator lists) is averaged into the
``eval.json`` form: ``total_score`` = mean rating, each element = fraction of "yes"
votes, flag fields averaged, other fields copied.

Track 2: for each image of a ``train_info.json``-form file, every annotator's shapes
are rasterised at the image's own size (read from its file), clipped to the image;
pixels marked by at least ``min_votes`` (default 2) annotators form the mask, which is
resized to 512 x 512 (nearest neighbour); score = mean MOS. Written as ``gt.pkl``.
A rectangle (``bbox_type`` 1, two ``{"x", "y"}`` corners) covers ``x0 <= x < x1,
y0 <= y < y1`` as the official data-processing script does; a polygon (``bbox_type``
2, ``[[x, y], ...]``) is filled as ``cv2.fillPoly`` does. Coordinates are rounded to
whole pixels. An image with no annotator at all (``bbox_info: []``) gets an empty mask
and a warning. :func:`build_structure_targets` gives the training targets: the same
masks, or upstream's graded heatmaps (:func:`graded_map`).

Every problem in the annotations is collected and reported together, naming the image,
the annotator and the shape: :class:`AnnotationError`.
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ..errors import ReferenceDataError
from ..regions import SIZE
from ..tracks.common import is_number, read_json_file
from ..tracks.structure import IMAGE_SUFFIXES
from .layout import write_json

PathLike = str | os.PathLike[str]
MAX_SHOWN = 20
_JSON_FIX = "Pass the raw annotation file."


class AnnotationError(ReferenceDataError):
    """Raw annotations cannot be turned into a reference; ``problems`` lists (where, what) pairs."""

    def __init__(self, file: str, problems: list[tuple[str, str]], fix: str = ""):
        self.problems = problems
        shown = "\n".join(f"  - {w}: {m}" for w, m in problems[:MAX_SHOWN])
        more = f"\n  ... and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
        super().__init__(file, f"{len(problems)} bad annotation(s):\n{shown}{more}\n", fix)


def _finite(value: Any) -> bool:
    return is_number(value) and math.isfinite(float(value))


# --------------------------------------------------------------------------- Track 1

_FLAG_FIELDS = ("promt_meaningless", "split_confidence", "attribute_confidence", "fidelity_label")


def average_align_record(rec: Any, where: str, problems: list[tuple[str, str]]) -> dict[str, Any] | None:
    """The eval.json form of one raw record; problems are appended (``None`` when unusable)."""
    if not isinstance(rec, dict):
        problems.append((where, "is not an object."))
        return None
    img = rec.get("img_path")
    if not isinstance(img, str) or not img:
        problems.append((where, "has no string 'img_path'."))
        return None
    where = f"image {img!r}"
    out = dict(rec)
    total = _mean_of(rec.get("total_score"), f"{where} 'total_score'", problems, (1, 5))
    elements = rec.get("element_score")
    if not isinstance(elements, dict):
        problems.append((where, "has no 'element_score' object (element -> list of 0/1 votes)."))
        return None
    means = {k: _mean_of(v, f"{where} element {k!r}", problems, (0, 1)) for k, v in elements.items()}
    for field in _FLAG_FIELDS:
        if field in rec and rec[field] is not None:
            if isinstance(rec[field], list) and rec[field] and all(_finite(v) for v in rec[field]):
                out[field] = float(np.mean(rec[field]))
    if total is None or any(v is None for v in means.values()):
        return None
    out["total_score"], out["element_score"] = total, means
    return out


def _mean_of(value: Any, where: str, problems: list[tuple[str, str]], bounds: tuple[float, float]) -> float | None:
    if value is None:
        problems.append((where, "is missing; expected a list of per-annotator values."))
        return None
    values = value if isinstance(value, list) else [value]
    if not values or not all(_finite(v) for v in values):
        problems.append((where, f"must be a non-empty list of finite numbers, not {value!r:.60}."))
        return None
    lo, hi = bounds
    if not all(lo <= float(v) <= hi for v in values):
        problems.append((where, f"has a value outside {lo:g}..{hi:g}: {value!r:.60}."))
        return None
    return float(np.mean(values))


def build_align_reference(raw: PathLike, out: PathLike | None = None) -> list[dict[str, Any]]:
    """Average a raw Track 1 list (``train_list.json`` form) into ``eval.json`` records; write them to ``out``."""
    path = Path(raw)
    obj = read_json_file(path, _JSON_FIX)
    if not isinstance(obj, list):
        raise ReferenceDataError(str(path), f"must be a JSON list of records, not {type(obj).__name__}.",
                                 "Pass a Track 1 raw list such as train_list.json.")
    problems: list[tuple[str, str]] = []
    records, seen = [], set()
    for i, rec in enumerate(obj):
        averaged = average_align_record(rec, f"record {i}", problems)
        if averaged is None:
            continue
        if averaged["img_path"] in seen:
            problems.append((f"image {averaged['img_path']!r}", f"appears twice (again at record {i})."))
        seen.add(averaged["img_path"])
        records.append(averaged)
    if not obj:
        problems.append((path.name, "holds no records."))
    if problems:
        raise AnnotationError(path.name, problems, "Fix or drop these records, then run build-ref again.")
    if out is not None:
        write_json(Path(out), records)
    return records


# --------------------------------------------------------------------------- Track 2

RECTANGLE, POLYGON = 1, 2


def _xy(point: Any, where: str) -> tuple[float, float]:
    if isinstance(point, dict):
        if "x" not in point or "y" not in point:
            raise ValueError(f"{where} needs both 'x' and 'y', got keys {sorted(point)}")
        x, y = point["x"], point["y"]
    elif isinstance(point, (list, tuple)) and len(point) == 2:
        x, y = point
    else:
        raise ValueError(f"{where} must be {{'x': X, 'y': Y}} or [X, Y], not {point!r:.60}")
    if not (_finite(x) and _finite(y)):
        raise ValueError(f"{where} has a coordinate that is not a finite number: {point!r:.60}")
    return float(x), float(y)


def rasterise_shape(shape: Any, width: int, height: int) -> np.ndarray:
    """One shape as a boolean ``height x width`` mask; raises ``ValueError`` with the reason when bad."""
    if not isinstance(shape, dict):
        raise ValueError(f"is {type(shape).__name__}, not a shape object {{'bbox_type': 1|2, 'bbox': ...}}")
    for key in ("bbox_type", "bbox"):
        if key not in shape:
            raise ValueError(f"has no '{key}' field")
    kind, bbox = shape["bbox_type"], shape["bbox"]
    mask = np.zeros((height, width), np.uint8)
    if kind == RECTANGLE and not isinstance(kind, bool):
        if not isinstance(bbox, list) or len(bbox) != 2:
            raise ValueError("rectangle (bbox_type 1) needs 'bbox': [{x, y} top-left, {x, y} bottom-right]")
        (ax, ay), (bx, by) = _xy(bbox[0], "corner 1"), _xy(bbox[1], "corner 2")
        x0, x1 = sorted((round(ax), round(bx)))
        y0, y1 = sorted((round(ay), round(by)))
        if x1 - x0 < 1 or y1 - y0 < 1:
            raise ValueError(f"rectangle is degenerate (corners ({ax:g}, {ay:g}) and ({bx:g}, {by:g}) span no pixel)")
        mask[max(0, y0):max(0, min(height, y1)), max(0, x0):max(0, min(width, x1))] = 1
    elif kind == POLYGON and not isinstance(kind, bool):
        if not isinstance(bbox, list) or len(bbox) < 3:
            raise ValueError("polygon (bbox_type 2) needs 'bbox': [[x, y], ...] with at least 3 points")
        pts = np.array([_xy(p, f"point {i}") for i, p in enumerate(bbox)], float)
        limit = 4.0 * max(width, height)
        pts = np.round(np.clip(pts, -limit, limit)).astype(np.int32)
        if cv2.contourArea(pts) <= 0:
            raise ValueError(f"polygon is degenerate (its {len(pts)} points enclose no area)")
        cv2.fillPoly(mask, [pts], 1)
    else:
        raise ValueError(f"has unknown bbox_type {kind!r} (1: rectangle by two corners, 2: polygon)")
    if not mask.any():
        raise ValueError(f"lies entirely outside the {width} x {height} image")
    return mask.astype(bool)


def vote_counts(bbox_info: Any, width: int, height: int, where: str, problems: list[tuple[str, str]],
                min_votes: int = 2, warnings: list[str] | None = None) -> np.ndarray | None:
    """How many annotators marked each pixel, at the image's size (uint8); ``None`` when unusable.

    ``bbox_info: []`` (no annotator at all) gives zeros and a warning; fewer annotators than
    ``min_votes`` (but at least one) is a problem, since the mask could never be marked.
    """
    if not isinstance(bbox_info, list):
        problems.append((where, "'bbox_info' must be a list with one list of shapes per annotator."))
        return None
    if not bbox_info:
        if warnings is not None:
            warnings.append(f"{where}: no annotator ('bbox_info': []); its mask is empty.")
        return np.zeros((height, width), np.uint8)
    if len(bbox_info) < min_votes:
        problems.append((where, f"has {len(bbox_info)} annotator(s) but a pixel needs {min_votes} votes, so its "
                                f"mask could never be marked; for data with this few annotators build with "
                                f"--min-votes {len(bbox_info)} or less."))
        return None
    votes = np.zeros((height, width), np.uint8)
    ok = True
    for a, shapes in enumerate(bbox_info):
        if shapes is None:
            continue
        if not isinstance(shapes, list):
            problems.append((f"{where}, annotator {a}", "must be a list of shapes ([] when nothing is marked)."))
            ok = False
            continue
        marked = np.zeros((height, width), bool)
        for s, shape in enumerate(shapes):
            try:
                marked |= rasterise_shape(shape, width, height)
            except ValueError as exc:
                problems.append((f"{where}, annotator {a}, shape {s}", str(exc) + "."))
                ok = False
        votes += marked
    return votes if ok else None


def vote_mask(bbox_info: Any, width: int, height: int, where: str, problems: list[tuple[str, str]],
              min_votes: int = 2, warnings: list[str] | None = None) -> np.ndarray | None:
    """Pixels marked by at least ``min_votes`` annotators, at the image's size (uint8 0/1)."""
    votes = vote_counts(bbox_info, width, height, where, problems, min_votes, warnings)
    return None if votes is None else (votes >= min_votes).astype(np.uint8)


#: Upstream's training heatmap levels (EvalMuse-Structure ``data_process.py``): pixel value by the
#: number of annotators who marked it; four or more give 255 (upstream leaves five and more as the count).
GRADED_LEVELS = np.array([0, 64, 127, 180] + [255] * 252, np.uint8)


def graded_map(votes: np.ndarray) -> np.ndarray:
    """Upstream's training target: vote counts as levels 0/64/127/180/255, bilinear-resized to 512 x 512 (uint8)."""
    return cv2.resize(GRADED_LEVELS[votes], (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)


def _image_size(images: Path, name: str) -> tuple[int, int]:
    for suffix in IMAGE_SUFFIXES:
        for candidate in (images / f"{name}{suffix}", images / f"{name}{suffix.upper()}"):
            if candidate.is_file():
                with Image.open(candidate) as im:
                    return im.size
    if (images / name).is_file():
        with Image.open(images / name) as im:
            return im.size
    raise FileNotFoundError(f"no image file {name}.* ({', '.join(IMAGE_SUFFIXES)}) in {images}")


def _stem(name: str) -> str:
    suffix = Path(name).suffix
    return name[: -len(suffix)] if suffix.lower() in IMAGE_SUFFIXES else name


def _read_structure_raw(raw: PathLike) -> tuple[Path, dict[str, Any]]:
    path = Path(raw)
    obj = read_json_file(path, _JSON_FIX)
    if not isinstance(obj, dict):
        raise ReferenceDataError(str(path), "must be a JSON object {image_name: {prompt_en, mos, bbox_info}}.",
                                 "Pass a Track 2 raw file such as train_info.json.")
    return path, obj


def _structure_votes(obj: dict[str, Any], images: PathLike | None, sizes: dict[str, tuple[int, int]] | None,
                     min_votes: int, problems: list[tuple[str, str]], warnings: list[str] | None
                     ) -> Iterator[tuple[str, float, np.ndarray]]:
    """(stem, mean MOS, vote counts at the image's size) per usable image; problems collected."""
    for name, entry in obj.items():
        where = f"image {name!r}"
        if not isinstance(entry, dict):
            problems.append((where, "must be an object with 'mos' and 'bbox_info'."))
            continue
        missing = [k for k in ("mos", "bbox_info") if k not in entry]
        if missing:
            problems.append((where, f"has no {' or '.join(repr(k) for k in missing)} field."))
            continue
        mos = entry["mos"]
        scores = mos if isinstance(mos, list) else [mos]
        if not scores or not all(_finite(v) for v in scores):
            problems.append((where, f"'mos' must be a finite number (or a list of them), not {mos!r:.60}."))
            continue
        try:
            width, height = sizes[name] if sizes and name in sizes else _image_size(Path(images or "."), name)
        except (FileNotFoundError, OSError) as exc:
            problems.append((where, f"has no readable image ({exc})."))
            continue
        votes = vote_counts(entry["bbox_info"], int(width), int(height), where, problems, min_votes, warnings)
        if votes is not None:
            yield _stem(name), float(np.mean(scores)), votes


def _binary_512(votes: np.ndarray, min_votes: int) -> np.ndarray:
    mask = (votes >= min_votes).astype(np.uint8)
    return cv2.resize(mask, (SIZE, SIZE), interpolation=cv2.INTER_NEAREST).astype(np.uint8)


def build_structure_reference(raw: PathLike, images: PathLike | None, out: PathLike | None = None,
                              min_votes: int = 2, sizes: dict[str, tuple[int, int]] | None = None,
                              warnings: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Build ``gt.pkl`` content from a raw Track 2 file (``train_info.json`` form); write it to ``out``.

    Image sizes ``(width, height)`` come from the files in ``images`` (or from ``sizes``).
    An image with no annotator (``bbox_info: []``) gets an empty mask and a line in ``warnings``.
    """
    path, obj = _read_structure_raw(raw)
    if images is None and sizes is None:
        raise ValueError("pass the images folder (or a sizes mapping) so shapes are drawn at each image's size")
    problems: list[tuple[str, str]] = []
    gt = {stem: {"score": mos, "pred_area": _binary_512(votes, min_votes)}
          for stem, mos, votes in _structure_votes(obj, images, sizes, min_votes, problems, warnings)}
    if not obj:
        problems.append((path.name, "holds no images."))
    if problems:
        raise AnnotationError(path.name, problems, "Fix these annotations, then run build-ref again.")
    if out is not None:
        out_path = Path(out)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_name(out_path.name + ".tmp")
        with open(tmp, "wb") as stream:
            pickle.dump(gt, stream, protocol=4)
        os.replace(tmp, out_path)
    return gt


def build_structure_targets(raw: PathLike, images: PathLike, targets: tuple[str, ...] = ("mask",),
                            min_votes: int = 2, warnings: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Training targets of a raw Track 2 file: per image ``score`` and the asked ``targets``.

    ``mask``: the reference's 512 x 512 0/1 mask (at least ``min_votes`` annotators, as
    :func:`build_structure_reference`); ``graded``: upstream's heatmap target (:func:`graded_map`).
    """
    path, obj = _read_structure_raw(raw)
    problems: list[tuple[str, str]] = []
    out: dict[str, dict[str, Any]] = {}
    for stem, mos, votes in _structure_votes(obj, images, None, min_votes, problems, warnings):
        entry: dict[str, Any] = {"score": mos}
        if "mask" in targets:
            entry["mask"] = _binary_512(votes, min_votes)
        if "graded" in targets:
            entry["graded"] = graded_map(votes)
        out[stem] = entry
    if not obj:
        problems.append((path.name, "holds no images."))
    if problems:
        raise AnnotationError(path.name, problems, "Fix these annotations, then train again.")
    return out
