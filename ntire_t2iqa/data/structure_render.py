"""Track 2 drawing: articulated objects built from parts, and local structural artefacts.

Objects (a person, a hand, a chair, a bicycle, a house, a tree, a ladder) are lists of
:class:`Part`. An artefact changes one part where it is drawn, so it is visible in the
pixels exactly inside the region it reports:

* ``duplicate``: an extra copy of a part, rotated or shifted (an extra finger, leg, rung);
* ``broken``: a part cut in the middle with its far half displaced;
* ``warp``: a strong local swirl of the pixels around a part;
* ``melt``: a smeared, noisy, colour-bleeding blob over a part.

Every artefact returns its region as a polygon in image coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

OBJECTS = ("person", "hand", "chair", "bicycle", "house", "tree", "ladder")
ARTEFACTS = ("duplicate", "broken", "warp", "melt")
Colour = tuple[int, int, int]


@dataclass
class Part:
    """One drawable piece: a thick segment, a filled ellipse, a filled polygon or a ring."""

    kind: str  # "capsule" | "ellipse" | "poly" | "ring"
    pts: np.ndarray  # capsule: 2 x 2 end points; ellipse/ring: 1 x 2 centre; poly: N x 2
    size: tuple[float, float]  # capsule: (thickness, 0); ellipse: half axes; ring: (radius, thickness)
    color: Colour
    angle: float = 0.0

    def centre(self) -> np.ndarray:
        """The part's centre point."""
        return self.pts.mean(axis=0)

    def hull(self) -> np.ndarray:
        """An outline polygon (float N x 2) of the drawn part."""
        if self.kind == "capsule":
            a, b = self.pts
            d = b - a
            n = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-9) * (self.size[0] / 2 + 1)
            u = d / (np.hypot(*d) + 1e-9) * (self.size[0] / 2)
            return np.array([a - u + n, b + u + n, b + u - n, a - u - n])
        if self.kind in ("ellipse", "ring"):
            axes = self.size if self.kind == "ellipse" else (self.size[0] + self.size[1] / 2,) * 2
            c = self.pts[0]
            t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
            ca, sa = np.cos(self.angle), np.sin(self.angle)
            x, y = axes[0] * np.cos(t), axes[1] * np.sin(t)
            return np.stack([c[0] + ca * x - sa * y, c[1] + sa * x + ca * y], 1)
        return self.pts.astype(float)


def draw_part(img: np.ndarray, part: Part) -> None:
    """Draw one part onto an RGB uint8 image in place."""
    col = tuple(int(v) for v in part.color)
    if part.kind == "capsule":
        a, b = np.round(part.pts).astype(int)
        cv2.line(img, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), col, max(1, int(part.size[0])), cv2.LINE_AA)
    elif part.kind == "ellipse":
        c = np.round(part.pts[0]).astype(int)
        axes = (max(1, int(part.size[0])), max(1, int(part.size[1])))
        cv2.ellipse(img, (int(c[0]), int(c[1])), axes, np.degrees(part.angle), 0, 360, col, -1, cv2.LINE_AA)
    elif part.kind == "ring":
        c = np.round(part.pts[0]).astype(int)
        cv2.circle(img, (int(c[0]), int(c[1])), int(part.size[0]), col, max(1, int(part.size[1])), cv2.LINE_AA)
    else:
        cv2.fillPoly(img, [np.round(part.pts).astype(np.int32)], col, cv2.LINE_AA)


def _cap(a: tuple[float, float], b: tuple[float, float], t: float, col: Colour) -> Part:
    return Part("capsule", np.array([a, b], float), (t, 0.0), col)


def _rect(x0: float, y0: float, x1: float, y1: float, col: Colour) -> Part:
    return Part("poly", np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float), (0, 0), col)


def make_object(kind: str, cx: float, cy: float, s: float, rng: np.random.Generator) -> list[Part]:
    """Parts of one object centred at ``(cx, cy)`` with height about ``s`` pixels."""
    def colour() -> Colour:
        return tuple(int(v) for v in rng.integers(30, 220, 3))  # type: ignore[return-value]

    c1, c2, t = colour(), colour(), max(4.0, s * 0.06)
    if kind == "person":
        skin, sx = (224, 180, 150), s * 0.22
        top, hip = cy - s * 0.25, cy + s * 0.12
        return [Part("ellipse", np.array([[cx, cy - s * 0.38]]), (s * 0.1, s * 0.12), skin),
                _cap((cx, top), (cx, hip), t * 2.2, c1),
                _cap((cx, top + t), (cx - sx, cy), t, c1), _cap((cx - sx, cy), (cx - sx * 1.2, cy - s * 0.15), t, skin),
                _cap((cx, top + t), (cx + sx, cy), t, c1), _cap((cx + sx, cy), (cx + sx * 1.3, cy + s * 0.1), t, skin),
                _cap((cx, hip), (cx - sx * 0.6, cy + s * 0.48), t * 1.3, c2),
                _cap((cx, hip), (cx + sx * 0.6, cy + s * 0.48), t * 1.3, c2)]
    if kind == "hand":
        skin = (226, 184, 152) if rng.random() < 0.7 else (150, 105, 80)
        parts = [Part("ellipse", np.array([[cx, cy + s * 0.15]]), (s * 0.2, s * 0.24), skin)]
        for k, ang in enumerate(np.radians([-145, -112, -90, -68, -40])):
            base = np.array([cx + np.cos(ang) * s * 0.15, cy + s * 0.12 + np.sin(ang) * s * 0.18])
            length = s * (0.26 if k in (0, 4) else 0.36)
            tip = base + length * np.array([np.cos(ang), np.sin(ang)])
            parts.append(_cap(tuple(base), tuple(tip), s * 0.085, skin))
        return parts
    if kind == "chair":
        w, h = s * 0.5, s * 0.5
        legs = [_cap((x, cy + h * 0.1), (x + d, cy + h), t, c1)
                for x, d in ((cx - w / 2, -4), (cx + w / 2, 4), (cx - w / 3, -2), (cx + w / 3, 2))]
        return [_rect(cx - w / 2, cy - h, cx + w / 2, cy - h * 0.05, c2)] + legs + \
               [_rect(cx - w / 2 - 4, cy - h * 0.1, cx + w / 2 + 4, cy + h * 0.1, c1)]
    if kind == "bicycle":
        r, d = s * 0.22, s * 0.34
        lw, rw = (cx - d, cy + s * 0.15), (cx + d, cy + s * 0.15)
        seat, bar = (cx - s * 0.08, cy - s * 0.18), (cx + s * 0.22, cy - s * 0.25)
        pedal = (cx, cy + s * 0.15)
        return [Part("ring", np.array([lw]), (r, t * 0.8), (40, 40, 40)),
                Part("ring", np.array([rw]), (r, t * 0.8), (40, 40, 40)),
                _cap(lw, pedal, t, c1), _cap(pedal, seat, t, c1), _cap(seat, lw, t, c1),
                _cap(seat, bar, t, c1), _cap(bar, rw, t, c1), _cap(pedal, bar, t, c1),
                _cap((bar[0] - s * 0.08, bar[1] - s * 0.05), (bar[0] + s * 0.06, bar[1] - s * 0.06), t, (40, 40, 40))]
    if kind == "house":
        w, h = s * 0.6, s * 0.45
        x0, y0 = cx - w / 2, cy - h * 0.2
        return [_rect(x0, y0, x0 + w, y0 + h, c1),
                Part("poly", np.array([[x0 - 8, y0], [cx, y0 - h * 0.7], [x0 + w + 8, y0]], float), (0, 0), c2),
                _rect(cx - w * 0.1, y0 + h * 0.45, cx + w * 0.1, y0 + h, (90, 60, 40)),
                _rect(x0 + w * 0.1, y0 + h * 0.2, x0 + w * 0.3, y0 + h * 0.45, (200, 230, 250)),
                _rect(x0 + w * 0.7, y0 + h * 0.2, x0 + w * 0.9, y0 + h * 0.45, (200, 230, 250))]
    if kind == "tree":
        green = (int(rng.integers(40, 90)), int(rng.integers(120, 180)), int(rng.integers(40, 90)))
        return [_cap((cx, cy + s * 0.5), (cx, cy - s * 0.05), s * 0.1, (110, 75, 45)),
                Part("ellipse", np.array([[cx - s * 0.15, cy - s * 0.15]]), (s * 0.18, s * 0.16), green),
                Part("ellipse", np.array([[cx + s * 0.15, cy - s * 0.15]]), (s * 0.18, s * 0.16), green),
                Part("ellipse", np.array([[cx, cy - s * 0.33]]), (s * 0.2, s * 0.18), green)]
    if kind == "ladder":
        w, h = s * 0.28, s * 0.9
        rails = [_cap((cx - w / 2, cy - h / 2), (cx - w / 2, cy + h / 2), t, c1),
                 _cap((cx + w / 2, cy - h / 2), (cx + w / 2, cy + h / 2), t, c1)]
        rungs = np.linspace(cy - h * 0.4, cy + h * 0.4, 5)
        return rails + [_cap((cx - w / 2, y), (cx + w / 2, y), t * 0.8, c1) for y in rungs]
    raise ValueError(f"unknown object {kind!r}; choose one of: {', '.join(OBJECTS)}")


def _grow(poly: np.ndarray, margin: float) -> np.ndarray:
    """Convex hull of a polygon pushed out from its centroid by ``margin`` pixels."""
    hull = cv2.convexHull(poly.astype(np.float32)).reshape(-1, 2).astype(float)
    c = hull.mean(axis=0)
    d = hull - c
    n = np.hypot(d[:, 0], d[:, 1])[:, None] + 1e-9
    return hull + d / n * margin


def duplicate_part(part: Part, s: float, rng: np.random.Generator) -> tuple[Part, np.ndarray]:
    """A rotated or shifted copy of a part, and the copy's region."""
    pivot = part.pts[0] if part.kind == "capsule" else part.centre()
    ang = np.radians(rng.uniform(25, 50)) * rng.choice([-1, 1])
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    pts = (part.pts - pivot) @ rot.T + pivot
    if part.kind != "capsule":  # shift the copy by most of its own extent, so that it stands out
        extent = float(np.ptp(part.hull(), axis=0).max())
        direction = rng.uniform(0, 2 * np.pi)
        pts = pts + rng.uniform(0.6, 0.95) * max(extent, s * 0.15) * np.array([np.cos(direction), np.sin(direction)])
    copy = replace(part, pts=pts, angle=part.angle + ang)
    return copy, _grow(copy.hull(), 5)


def break_part(part: Part, s: float, rng: np.random.Generator) -> tuple[list[Part], np.ndarray]:
    """A capsule cut in the middle with its far half shifted sideways, and the region of the break."""
    a, b = part.pts
    d = b - a
    n = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-9)
    off = n * rng.uniform(0.5, 0.9) * max(part.size[0] * 1.5, s * 0.12) * rng.choice([-1, 1])
    m1, m2 = a + 0.4 * d, a + 0.6 * d
    pieces = [replace(part, pts=np.array([a, m1])), replace(part, pts=np.array([m2 + off, b + off]))]
    region = np.array([a + 0.28 * d, a + 0.72 * d, a + 0.72 * d + off, a + 0.28 * d + off])
    return pieces, _grow(region, part.size[0] / 2 + 6)


def circle_poly(c: np.ndarray, r: float, n: int = 16) -> np.ndarray:
    """A regular n-gon approximating a circle."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([c[0] + r * np.cos(t), c[1] + r * np.sin(t)], 1)


def swirl(img: np.ndarray, c: np.ndarray, radius: float, strength: float) -> np.ndarray:
    """Swirl the pixels within ``radius`` of ``c`` by up to ``strength`` radians (in place copy)."""
    h, w = img.shape[:2]
    x0, x1 = int(max(0, c[0] - radius)), int(min(w, c[0] + radius + 1))
    y0, y1 = int(max(0, c[1] - radius)), int(min(h, c[1] + radius + 1))
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xx - c[0], yy - c[1]
    r = np.hypot(dx, dy)
    theta = strength * np.clip(1 - r / radius, 0, 1) ** 2
    ct, st = np.cos(theta), np.sin(theta)
    mx = (c[0] + ct * dx - st * dy).astype(np.float32)
    my = (c[1] + st * dx + ct * dy).astype(np.float32)
    out = img.copy()
    out[y0:y1, x0:x1] = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out


def melt(img: np.ndarray, c: np.ndarray, radius: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Smear a blob around ``c``: displaced, blurred, colour-bled pixels. Returns image and blob polygon."""
    t = np.linspace(0, 2 * np.pi, 14, endpoint=False)
    rad = radius * rng.uniform(0.75, 1.1, t.size)
    poly = np.stack([c[0] + rad * np.cos(t), c[1] + rad * np.sin(t)], 1)
    h, w = img.shape[:2]
    pad = 24  # work in the blob's box plus a margin (blur and displacement reach)
    x0, y0 = (int(max(0, v - pad)) for v in poly.min(axis=0))
    x1, y1 = int(min(w, poly[:, 0].max() + pad + 1)), int(min(h, poly[:, 1].max() + pad + 1))
    if x1 <= x0 or y1 <= y0:
        return img, poly
    crop = img[y0:y1, x0:x1]
    ch, cw = crop.shape[:2]
    mask = np.zeros((ch, cw), np.uint8)
    cv2.fillPoly(mask, [np.round(poly - [x0, y0]).astype(np.int32)], 1)
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 3)[..., None]
    field = cv2.GaussianBlur(rng.standard_normal((ch, cw, 2), dtype=np.float32), (0, 0), 6) * 60
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    moved = cv2.remap(crop, xx + field[..., 0], yy + field[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    smear = cv2.GaussianBlur(moved, (0, 0), 2.5).astype(np.float32)
    smear += np.array(rng.normal(0, 40, 3), np.float32) + rng.standard_normal((ch, cw, 3), dtype=np.float32) * 10
    out = img.copy()
    out[y0:y1, x0:x1] = np.clip((1 - soft) * crop.astype(np.float32) + soft * smear, 0, 255).astype(np.uint8)
    return out, poly


def background(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A sky-and-ground background with gentle noise (RGB uint8, ``h x w``)."""
    sky = rng.integers(150, 235, 3).astype(float)
    ground = rng.integers(60, 190, 3).astype(float)
    horizon = rng.uniform(0.55, 0.75)
    rows = np.clip((np.linspace(0, 1, h)[:, None] - horizon) * 15 + 0.5, 0, 1)
    col = (1 - rows) * sky + rows * ground
    img = np.repeat(col[:, None, :], w, axis=1)
    img += cv2.resize(rng.normal(0, 6, (h // 16 + 1, w // 16 + 1, 3)), (w, h))
    return np.clip(img, 0, 255).astype(np.uint8)
