"""The pages' plots as picture files (PNG, PDF) or standalone SVG, for papers such as the challenge report.

:func:`render` draws a :class:`~ntire_t2iqa.svgplot.Plot`'s shapes with Pillow's ``ImageDraw``
(a core dependency; nothing new to install) at ``scale`` pixels per SVG pixel, so a PNG
matches the page's inline SVG; a PDF is that picture on a page of the plot's size in points.
Pillow is imported here only, when a picture is asked for.

Example:
    >>> from ntire_t2iqa.svgplot import Plot
    >>> plot = Plot(200, 150, (0.0, 1.0), (0.0, 1.0), "demo", "A line")
    >>> plot.polyline([0.0, 1.0], [0.0, 1.0], "#333")
    >>> render(plot, scale=2).size
    (400, 300)
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from .svgplot import Plot, Shape

#: Picture formats :func:`write_plots` writes.
FORMATS = ("png", "pdf", "svg")
DEFAULT_SCALE = 3  # about 300 dpi for a plot printed at its SVG size in points


@lru_cache(maxsize=32)
def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # FreeType: Pillow's bundled sans-serif at any size (>= 10.1)
    except (TypeError, AttributeError, OSError):  # pragma: no cover - an old Pillow or one without FreeType
        return ImageFont.load_default()


def _rgba(color: str | None, opacity: float = 1.0) -> tuple[int, int, int, int] | None:
    from PIL import ImageColor

    if color is None or color == "none":
        return None
    r, g, b = ImageColor.getrgb(color)[:3]
    return r, g, b, round(255 * opacity)


def _dashed(points: list[tuple[float, float]], pattern: tuple[float, ...]) -> Iterable[list[tuple[float, float]]]:
    """The visible pieces of a polyline drawn with a dash pattern (lengths in the same units as the points)."""
    on, left, k = True, pattern[0], 0
    piece = [points[0]]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        length, done = math.hypot(x1 - x0, y1 - y0), 0.0
        while length - done > left:
            done += left
            point = (x0 + (x1 - x0) * done / length, y0 + (y1 - y0) * done / length)
            if on:
                yield [*piece, point]
            piece, on = [point], not on
            k = (k + 1) % len(pattern)
            left = pattern[k]
        left -= length - done
        piece.append((x1, y1))
    if on and len(piece) > 1:
        yield piece


def _text(image: Any, draw: Any, s: Shape, scale: float) -> None:
    from PIL import Image, ImageDraw

    font = _font(max(6, round(s.size * scale)))
    anchor = {"start": "ls", "middle": "ms", "end": "rs"}[s.anchor]
    fill = _rgba(s.fill or "#333333")
    stroke = max(1, round(scale * 0.35)) if s.bold else 0
    x, y = s.points[0] * scale, s.points[1] * scale
    if not s.rotate:
        draw.text((x, y), s.text, fill=fill, font=font, anchor=anchor, stroke_width=stroke, stroke_fill=fill)
        return
    box = draw.textbbox((0, 0), s.text, font=font, anchor="ls", stroke_width=stroke)
    width, height = box[2] - box[0] + 2, box[3] - box[1] + 2
    label = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ImageDraw.Draw(label).text((-box[0] + 1, -box[1] + 1), s.text, fill=fill, font=font, anchor="ls",
                               stroke_width=stroke, stroke_fill=fill)
    turned = label.rotate(90, expand=True)  # reads bottom to top; the baseline sits right of (x, y)
    shift = {"start": 0, "middle": turned.height / 2, "end": turned.height}[s.anchor]
    base = -box[1] + 1  # the baseline's distance from the label's top, now from its left
    image.alpha_composite(turned, (round(x - base), round(y - turned.height + shift)))


def render(plot: Plot, scale: float = DEFAULT_SCALE) -> Any:
    """The plot as an RGB ``PIL.Image`` of ``plot.w * scale`` by ``plot.h * scale`` pixels."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (round(plot.w * scale), round(plot.h * scale)), (255, 255, 255, 255))
    draw = ImageDraw.Draw(image, "RGBA")
    for s in plot.shapes:
        p = [v * scale for v in s.points]
        if s.kind == "rect":
            x, y, w, h = p
            if w > 0 and h > 0:
                draw.rectangle((x, y, x + max(w, 1) - 1, y + max(h, 1) - 1), fill=_rgba(s.fill, s.opacity))
        elif s.kind == "circle":
            cx, cy, r = p
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_rgba(s.fill, s.opacity))
        elif s.kind == "line":
            points = [(p[i], p[i + 1]) for i in range(0, len(p) - 1, 2)]
            width = max(1, round(s.width * scale))
            pieces = _dashed(points, tuple(d * scale for d in s.dash)) if s.dash else [points]
            for piece in pieces:
                draw.line(piece, fill=_rgba(s.stroke), width=width, joint="curve")
        else:
            _text(image, draw, s, scale)
    return image.convert("RGB")


def write_plots(plots: Mapping[str, Plot], folder: str | os.PathLike[str], formats: Iterable[str] = ("png",),
                scale: float = DEFAULT_SCALE) -> list[Path]:
    """Write each plot as ``folder/<name>.<format>`` (png, pdf or svg); return the files written.

    A PNG is ``scale`` pixels per SVG pixel; a PDF page has the plot's size in points with
    the same picture in it; an SVG is the page's inline SVG as a file of its own.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, plot in plots.items():
        picture = None
        for fmt in dict.fromkeys(formats):
            if fmt not in FORMATS:
                raise ValueError(f"unknown plot format {fmt!r}; choose from {', '.join(FORMATS)}")
            path = out / f"{name}.{fmt}"
            if fmt == "svg":
                path.write_text('<?xml version="1.0" encoding="utf-8"?>\n' + plot.svg() + "\n", encoding="utf-8")
            else:
                picture = picture if picture is not None else render(plot, scale)
                if fmt == "png":
                    picture.save(path, "PNG", dpi=(72 * scale, 72 * scale))
                else:
                    picture.save(path, "PDF", resolution=72 * scale)
            written.append(path)
    return written
