"""Track 2 synthetic data: scenes with local structural artefacts, annotators' shapes and MOS.

Images are JPEG files, as in the official release. Each image shows one to three
articulated objects (:mod:`.structure_render`) on a sky-and-ground background at one
of several sizes (512x512, 640x480, 480x640, 512x384, 384x512). It carries 0-3
artefacts (P = 0.25, 0.4, 0.25, 0.1), each with a severity in 0.35..1. MOS falls with the artefacts:
``mos = clip(4.5 - sum(0.6 + 0.8 severity) - 0.3 blur + N(0, 0.25), 1, 5)``.

Three simulated annotators mark each artefact, each with their own habit (rectangles
or polygons), jittered by about 8% of the region's size, and miss it with probability
``0.08 + 0.3 (1 - severity)``; now and then one marks a spurious rectangle. Shapes use
the official fields: ``{"bbox_type": 1, "bbox": [{"x", "y"} top-left, {"x", "y"}
bottom-right]}`` and ``{"bbox_type": 2, "bbox": [[x, y], ...]}``, integer pixels; a
shape may stick out of the image by a few pixels (the reference builder clamps it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .structure_render import (
    ARTEFACTS,
    OBJECTS,
    Part,
    background,
    break_part,
    circle_poly,
    draw_part,
    duplicate_part,
    make_object,
    melt,
    swirl,
)

IMAGE_SUFFIX = ".jpg"  # as the official release; quality 92 keeps the artefacts crisp
JPEG_QUALITY = 92
IMAGE_SIZES = ((512, 512), (640, 480), (480, 640), (512, 384), (384, 512))  # (width, height)
N_ANNOTATORS = 3
#: Per annotator: probability of drawing a rectangle rather than a polygon.
RECT_HABIT = (0.85, 0.5, 0.2)
PLACES = ("in a park", "on a street", "in a garden", "by the sea", "in a village", "on a hill")


@dataclass
class Artefact:
    """One structural artefact: its kind, its region (polygon, image pixels) and severity 0..1."""

    kind: str
    region: np.ndarray
    severity: float


@dataclass
class StructureImage:
    """A rendered image with its truth: artefacts, prompt, MOS."""

    image: np.ndarray
    prompt: str
    artefacts: list[Artefact]
    mos: float


def render_image(rng: np.random.Generator, with_artefacts: bool = True) -> StructureImage:
    """Sample and draw one image with its artefacts and MOS.

    ``with_artefacts=False`` draws the very same scene without them (to see what they change).
    """
    w, h = IMAGE_SIZES[int(rng.integers(len(IMAGE_SIZES)))]
    img = background(w, h, rng)
    n_obj = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
    kinds = [OBJECTS[int(rng.integers(len(OBJECTS)))] for _ in range(n_obj)]
    slot = w / n_obj
    scale = min(h * rng.uniform(0.55, 0.75), slot * 1.05)
    objects: list[list[Part]] = []
    scales: list[float] = []
    for i, kind in enumerate(kinds):
        s = scale * rng.uniform(0.85, 1.0)
        cx = (i + 0.5) * slot + rng.uniform(-0.08, 0.08) * slot
        cy = h * rng.uniform(0.45, 0.58)
        objects.append(make_object(kind, cx, cy, s, rng))
        scales.append(s)
    # Artefacts draw from their own stream, so the same scene can be drawn without them.
    arng = np.random.default_rng(int(rng.integers(2**63)))
    n_art = int(arng.choice([0, 1, 2, 3], p=[0.25, 0.4, 0.25, 0.1])) if with_artefacts else 0
    artefacts: list[Artefact] = []
    later: list[tuple[str, np.ndarray, float, float, float]] = []  # pixel-level artefacts, applied after drawing
    used: set[tuple[int, int]] = set()
    for _ in range(n_art):
        oi = int(arng.integers(n_obj))
        free = [pi for pi in range(len(objects[oi])) if (oi, pi) not in used]
        if not free:
            continue
        pi = free[int(arng.integers(len(free)))]
        used.add((oi, pi))
        part, s = objects[oi][pi], scales[oi]
        kind = ARTEFACTS[int(arng.integers(len(ARTEFACTS)))]
        severity = float(arng.uniform(0.35, 1.0))
        if kind == "broken" and part.kind != "capsule":
            kind = "duplicate"
        if kind == "duplicate":
            copy, region = duplicate_part(part, s, arng)
            objects[oi].insert(pi + 1, copy)
            used = {(o, p + (1 if o == oi and p > pi else 0)) for o, p in used} | {(oi, pi + 1)}
            artefacts.append(Artefact(kind, region, severity))
        elif kind == "broken":
            pieces, region = break_part(part, s, arng)
            objects[oi][pi:pi + 1] = pieces
            used = {(o, p + (1 if o == oi and p > pi else 0)) for o, p in used} | {(oi, pi + 1)}
            artefacts.append(Artefact(kind, region, severity))
        else:
            # Centre pixel-level artefacts on the part's outline, so they cross an edge and show.
            hull = part.hull()
            spot = 0.5 * (hull[int(arng.integers(len(hull)))] + part.centre())
            later.append((kind, spot, s, severity, float(arng.uniform(0.18, 0.28))))
    for parts in objects:
        for part in parts:
            draw_part(img, part)
    for kind, centre, s, severity, frac in later:
        radius = s * frac * (0.7 + 0.5 * severity)
        if kind == "warp":
            img = swirl(img, centre, radius, (1.6 + 2.0 * severity) * arng.choice([-1, 1]))
            artefacts.append(Artefact(kind, circle_poly(centre, radius * 0.85), severity))
        else:
            img, poly = melt(img, centre, radius * 0.8, arng)
            artefacts.append(Artefact(kind, poly, severity))
    blur = float(rng.uniform(0, 1.2))
    if blur > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    grain = rng.standard_normal(img.shape, dtype=np.float32) * 3
    img = np.clip(img.astype(np.float32) + grain, 0, 255).astype(np.uint8)
    mos = 4.5 - sum(0.6 + 0.8 * a.severity for a in artefacts) - 0.3 * blur + rng.normal(0, 0.25)
    prompt = _prompt(kinds, rng)
    return StructureImage(img, prompt, artefacts, float(np.clip(mos, 1.0, 5.0)))


def save_jpeg(path: str, image: np.ndarray) -> None:
    """Write an RGB image as JPEG."""
    if not cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise OSError(f"could not write {path}")


def _prompt(kinds: list[str], rng: np.random.Generator) -> str:
    names = [f"a {k}" for k in kinds]
    subject = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"a photo of {subject} {PLACES[int(rng.integers(len(PLACES)))]}"


def _corner(x: float, y: float) -> dict[str, int]:
    return {"x": int(round(x)), "y": int(round(y))}


def annotate(item: StructureImage, rng: np.random.Generator,
             n_annotators: int = N_ANNOTATORS) -> list[list[dict[str, Any]]]:
    """Each annotator's list of shapes for one image (the ``bbox_info`` field)."""
    h, w = item.image.shape[:2]
    out: list[list[dict[str, Any]]] = []
    for a in range(n_annotators):
        shapes: list[dict[str, Any]] = []
        for art in item.artefacts:
            if rng.random() < 0.08 + 0.3 * (1 - art.severity):
                continue
            poly = art.region
            x0, y0 = poly.min(axis=0)
            x1, y1 = poly.max(axis=0)
            jx, jy = 0.08 * (x1 - x0), 0.08 * (y1 - y0)
            if rng.random() < RECT_HABIT[a % len(RECT_HABIT)]:
                x0, x1 = x0 + rng.normal(0, jx), x1 + rng.normal(0, jx)
                y0, y1 = y0 + rng.normal(0, jy), y1 + rng.normal(0, jy)
                x0, x1 = sorted((x0, x1))
                y0, y1 = sorted((y0, y1))
                x1, y1 = max(x1, x0 + 4), max(y1, y0 + 4)
                x0, y0 = max(x0, -3.0), max(y0, -3.0)
                x1, y1 = min(x1, w + 3.0), min(y1, h + 3.0)
                shapes.append({"bbox_type": 1, "bbox": [_corner(x0, y0), _corner(x1, y1)]})
            else:
                idx = np.linspace(0, len(poly), int(rng.integers(6, 13)), endpoint=False).astype(int)
                pts = poly[idx] + rng.normal(0, 1, (idx.size, 2)) * [jx * 0.6, jy * 0.6]
                pts = np.clip(pts, -3, [w + 3, h + 3])
                shapes.append({"bbox_type": 2, "bbox": [[int(round(x)), int(round(y))] for x, y in pts]})
        if rng.random() < 0.05:
            bw, bh = rng.uniform(30, 80, 2)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            shapes.append({"bbox_type": 1, "bbox": [_corner(x, y), _corner(x + bw, y + bh)]})
        out.append(shapes)
    return out


def info_record(item: StructureImage, bbox_info: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """One train_info.json entry."""
    return {"prompt_en": item.prompt, "mos": round(item.mos, 4), "bbox_info": bbox_info}
