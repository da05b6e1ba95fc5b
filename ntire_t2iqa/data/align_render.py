"""Track 1 drawing: procedural scenes of coloured, textured shapes on simple backgrounds.

:func:`render_scene` turns a :class:`Scene` (what a virtual T2I model decided to draw)
into an RGB ``uint8`` image. The scene, not the prompt, decides every pixel, so a model
that looks at the image can tell which prompt elements were rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

IMAGE_SIZE = 256

#: Named colours (RGB). Neighbours in this order are the "almost right" colours.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (238, 215, 40),
    "green": (45, 165, 60),
    "blue": (40, 80, 215),
    "purple": (135, 55, 185),
    "pink": (240, 120, 185),
}
SHAPES = ("circle", "square", "triangle", "star", "hexagon", "cross")
TEXTURES = ("striped", "dotted", "checkered")
#: Radius in pixels per size word; "medium" is what a prompt without a size word gets.
RADIUS = {"small": 11.0, "medium": 19.0, "large": 30.0}
#: Backgrounds: (sky colour, ground colour, horizon as a fraction of the height).
LOCATIONS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int], float]] = {
    "on grass": ((188, 218, 242), (92, 158, 72), 0.55),
    "in the snow": ((205, 215, 228), (246, 248, 252), 0.5),
    "at night": ((18, 22, 52), (40, 44, 82), 0.6),
    "on the beach": ((165, 205, 238), (226, 202, 150), 0.5),
}
DEFAULT_BACKGROUND = ((228, 228, 228), (212, 212, 212), 0.5)


@dataclass
class DrawnGroup:
    """One group of identical objects as the model drew it."""

    shape: str
    count: int
    color: tuple[int, int, int]
    radius: float
    texture: str | None = None
    texture_strength: float = 1.0
    distortion: float = 0.0  # 0: clean outline; ~0.35: a blobby, hard-to-name shape
    faint_extra: bool = False  # one more object, half-transparent (an ambiguous count)


@dataclass
class Scene:
    """Everything that decides the pixels of one image."""

    groups: list[DrawnGroup]
    #: Per group, the box (x0, y0, x1, y1) in 0..1 where its objects are placed.
    regions: list[tuple[float, float, float, float]]
    background: str | None = None
    background_strength: float = 1.0
    outline: int = 1
    blur: float = 0.0
    posterize: int = 1  # colour step; > 1 gives the banded look of a weak model
    tint: tuple[int, int, int] = (0, 0, 0)
    rotation: list[float] = field(default_factory=list)


def mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    """Linear blend of two RGB colours (``t = 0`` gives ``a``)."""
    return tuple(int(round((1 - t) * x + t * y)) for x, y in zip(a, b))  # type: ignore[return-value]


def shape_points(shape: str, cx: float, cy: float, r: float, angle: float, distortion: float,
                 rng: np.random.Generator) -> np.ndarray:
    """Polygon (int32, N x 2) of a shape centred at ``(cx, cy)`` with circumradius ``r``."""
    if shape == "circle":
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif shape == "square":
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) * 0.75
    elif shape == "triangle":
        t = np.array([-90, 30, 150]) * np.pi / 180
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif shape == "star":
        t = np.arange(10) * np.pi / 5 - np.pi / 2
        rad = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
        pts = np.stack([rad * np.cos(t), rad * np.sin(t)], 1)
    elif shape == "hexagon":
        t = np.arange(6) * np.pi / 3
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif shape == "cross":
        a, b = 0.3, 0.9
        pts = np.array([[-a, -b], [a, -b], [a, -a], [b, -a], [b, a], [a, a], [a, b], [-a, b], [-a, a],
                        [-b, a], [-b, -a], [-a, -a]], float)
    else:
        raise ValueError(f"unknown shape {shape!r}; choose one of: {', '.join(SHAPES)}")
    if shape != "circle":
        pts = _densify(pts, 6)
    if distortion > 0:
        wobble = 1 + distortion * np.sin(np.linspace(0, 2 * np.pi, len(pts), endpoint=False) * rng.integers(2, 5)
                                         + rng.uniform(0, 2 * np.pi))
        pts = pts * wobble[:, None] + rng.normal(0, distortion * 0.25, pts.shape)
    c, s = np.cos(angle), np.sin(angle)
    rot = pts @ np.array([[c, s], [-s, c]])
    return np.round(rot * r + [cx, cy]).astype(np.int32)


def _densify(pts: np.ndarray, per_edge: int) -> np.ndarray:
    out = []
    for i in range(len(pts)):
        a, b = pts[i], pts[(i + 1) % len(pts)]
        for k in range(per_edge):
            out.append(a + (b - a) * k / per_edge)
    return np.array(out)


def texture_mask(texture: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean pattern (``size x size``) of a texture word."""
    y, x = np.mgrid[0:size, 0:size]
    if texture == "striped":
        angle = rng.uniform(0, np.pi)
        return ((x * np.cos(angle) + y * np.sin(angle)) // 4).astype(int) % 2 == 0
    if texture == "dotted":
        return (x % 8 - 4) ** 2 + (y % 8 - 4) ** 2 <= 4
    if texture == "checkered":
        return ((x // 7) + (y // 7)) % 2 == 0
    raise ValueError(f"unknown texture {texture!r}; choose one of: {', '.join(TEXTURES)}")


def background(name: str | None, strength: float, size: int, tint: tuple[int, int, int]) -> np.ndarray:
    """RGB float canvas of a location (``None``: plain studio grey), blended with the default by strength."""
    def bands(sky: tuple[int, int, int], ground: tuple[int, int, int], horizon: float) -> np.ndarray:
        rows = np.linspace(0, 1, size)[:, None]
        soft = np.clip((rows - horizon) * 12 + 0.5, 0, 1)
        col = (1 - soft) * np.array(sky, float) + soft * np.array(ground, float)
        return np.repeat(col[:, None, :], size, axis=1)

    canvas = bands(*DEFAULT_BACKGROUND)
    if name is not None:
        canvas = (1 - strength) * canvas + strength * bands(*LOCATIONS[name])
    return canvas + np.array(tint, float)


def place(count: int, radius: float, region: tuple[float, float, float, float], size: int,
          taken: list[tuple[float, float, float]], rng: np.random.Generator) -> list[tuple[float, float]]:
    """Centres for ``count`` objects inside ``region``, avoiding overlap where possible."""
    x0, y0, x1, y1 = (v * size for v in region)
    lo_x, hi_x = x0 + radius + 2, max(x0 + radius + 2, x1 - radius - 2)
    lo_y, hi_y = y0 + radius + 2, max(y0 + radius + 2, y1 - radius - 2)
    out: list[tuple[float, float]] = []
    for _ in range(count):
        best, best_gap = None, -np.inf
        for _ in range(60):
            c = (rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y))
            gap = min((np.hypot(c[0] - tx, c[1] - ty) - radius - tr for tx, ty, tr in taken), default=np.inf)
            if gap > 3:
                best = c
                break
            if gap > best_gap:
                best, best_gap = c, gap
        assert best is not None
        out.append(best)
        taken.append((best[0], best[1], radius))
    return out


def render_scene(scene: Scene, rng: np.random.Generator, size: int = IMAGE_SIZE) -> np.ndarray:
    """Draw a scene; returns an RGB ``uint8`` array of shape ``(size, size, 3)``."""
    canvas = background(scene.background, scene.background_strength, size, scene.tint)
    taken: list[tuple[float, float, float]] = []
    dark = np.array((25, 25, 25), float)
    for gi, group in enumerate(scene.groups):
        n_drawn = group.count + (1 if group.faint_extra else 0)
        centres = place(n_drawn, group.radius, scene.regions[gi], size, taken, rng)
        pattern = texture_mask(group.texture, size, rng) if group.texture else None
        base = np.array(group.color, float)
        shade = base * 0.35 + dark * 0.3
        angle = scene.rotation[gi] if gi < len(scene.rotation) else rng.uniform(0, 2 * np.pi)
        for k, (cx, cy) in enumerate(centres):
            faint = group.faint_extra and k == n_drawn - 1
            r = group.radius * (0.6 if faint else 1.0) * rng.uniform(0.92, 1.08)
            pts = shape_points(group.shape, cx, cy, r, angle + rng.normal(0, 0.15), group.distortion, rng)
            # Fill inside the shape's box only (clipped to the canvas).
            x0, y0 = np.maximum(pts.min(axis=0), 0)
            x1, y1 = np.minimum(pts.max(axis=0) + 1, size)
            if x1 <= x0 or y1 <= y0:
                continue
            mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(mask, [pts - [x0, y0]], 1, lineType=cv2.LINE_8)
            m = mask.astype(bool)
            colour = np.empty((y1 - y0, x1 - x0, 3), float)
            colour[:] = base
            if pattern is not None:
                t = group.texture_strength
                colour[pattern[y0:y1, x0:x1]] = (1 - t) * base + t * shade
            alpha = 0.35 if faint else 1.0
            box = canvas[y0:y1, x0:x1]
            box[m] = (1 - alpha) * box[m] + alpha * colour[m]
            if scene.outline and not faint:
                cv2.polylines(canvas, [pts], True, tuple(float(v) for v in dark), scene.outline, cv2.LINE_AA)
    if scene.blur > 0:
        canvas = cv2.GaussianBlur(canvas, (0, 0), scene.blur)
    if scene.posterize > 1:
        canvas = np.floor(canvas / scene.posterize) * scene.posterize + scene.posterize / 2
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8)


def save_png(path: str, image: np.ndarray) -> None:
    """Write an RGB image as PNG (fast compression)."""
    if not cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OSError(f"could not write {path}")
