"""Tiny plots for self-contained HTML pages (leaderboards, diagnostic reports), as inline SVG or pictures.

A :class:`Plot` records shapes (rectangles, circles, lines, text) in pixel coordinates;
:meth:`Plot.svg` writes them as inline SVG (no JavaScript, no external assets: a page that
embeds it opens anywhere, offline), and :mod:`ntire_t2iqa.plotimage` draws the same shapes
with Pillow for PNG and PDF files.

Example:
    >>> plot = Plot(200, 150, (0.0, 1.0), (0.0, 1.0), "demo", "A line")
    >>> plot.polyline([0.0, 1.0], [0.0, 1.0], "#333")
    >>> plot.axes("x", "y")
    >>> plot.svg().startswith('<svg')
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .safetext import html as escape

PALETTE = ("#3366cc", "#dc3912", "#ff9900", "#109618", "#990099")
FONT = "DejaVu Sans, Arial, Helvetica, sans-serif"
FONT_SIZE = 11.0
TITLE_SIZE = 13.0
#: Light band behind a highlighted group of bars.
HIGHLIGHT_HEX = "#fff2b3"


def nice_step(lo: float, hi: float, n: int = 5, integer: bool = False) -> float:
    """A round tick step that puts about ``n`` ticks in ``[lo, hi]``: 1, 2, 2.5 or 5 times a power of ten
    (1, 2 or 5 times, and at least 1, when ``integer``)."""
    span = hi - lo
    if not math.isfinite(span) or span <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(span / max(n - 1, 1)))
    multiples = (1, 2, 5) if integer else (1, 2, 2.5, 5)
    candidates = [m * power * f for f in (0.1, 1, 10) for m in multiples]
    if integer:
        candidates = [float(round(c)) for c in candidates if c >= 1 - 1e-9] or [1.0]
    # the tick count nearest n (a coarser step on a tie)
    return min(candidates, key=lambda c: (abs(len(_multiples(lo, hi, c)) - n), -c))


def _multiples(lo: float, hi: float, step: float) -> range:
    return range(math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) + 1)


def axis_ticks(lo: float, hi: float, n: int = 5, integer: bool = False) -> list[float]:
    """Round tick values inside ``[lo, hi]`` (about ``n``); whole numbers only when ``integer``."""
    if hi <= lo:
        hi = lo + 1
    step = nice_step(lo, hi, n, integer)
    return [0.0 if k == 0 else round(k * step, 12) for k in _multiples(lo, hi, step)]


def tick_label(value: float, step: float, integer: bool = False) -> str:
    """A tick's text with as many decimals as the step needs (none on a whole-number axis)."""
    if integer:
        return str(int(round(value)))
    decimals = next((d for d in range(10) if abs(step * 10 ** d - round(step * 10 ** d)) < 1e-6), 10)
    return f"{value:.{decimals}f}"


def padded_range(values: np.ndarray, default: tuple[float, float] = (0.0, 1.0),
                 pad: float = 0.0) -> tuple[float, float]:
    """``(min, max)`` of the values, widened by ``pad`` of the span on each side (all equal: +-0.5)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return default
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-12:
        return lo - 0.5, hi + 0.5
    return lo - pad * (hi - lo), hi + pad * (hi - lo)


def symmetric_range(values: Sequence[float], floor: float = 0.0) -> tuple[float, float]:
    """``(0, top)`` for values that are all >= 0, ``(-m, m)`` when one is negative (``m`` round); both reach
    at least ``floor``."""
    finite = [v for v in values if math.isfinite(v)]
    top = max([floor, *finite])
    if not finite or min(finite) >= 0:
        return 0.0, top if top > 0 else 1.0
    m = max([floor, *(abs(v) for v in finite)])
    step = nice_step(0.0, m, 3)
    return -math.ceil(m / step - 1e-9) * step, math.ceil(m / step - 1e-9) * step


@dataclass(frozen=True)
class Shape:
    """One drawing primitive in pixel coordinates (``points``: x0, y0, x1, y1, ... for every kind)."""

    kind: str  # "rect" (x, y, w, h), "circle" (cx, cy, r), "line" (polyline points), "text" (x, y)
    points: tuple[float, ...]
    fill: str | None = None
    stroke: str | None = None
    width: float = 1.0
    opacity: float = 1.0
    dash: tuple[float, ...] = ()
    css: str | None = None
    text: str = ""
    anchor: str = "start"  # start, middle, end
    size: float = FONT_SIZE
    bold: bool = False
    rotate: bool = False  # text turned -90 degrees about its point
    tip: str | None = None  # hover text (SVG <title>)


class Plot:
    """A small canvas with data-to-pixel mapping, shapes and axes; rendered as SVG or a picture."""

    def __init__(self, width: int, height: int, xlim: tuple[float, float], ylim: tuple[float, float],
                 kind: str, title: str):
        self.w, self.h, self.kind, self.title = width, height, kind, title
        self.m = (40, 12, 36, 48)  # top, right, bottom, left
        self.xlim, self.ylim = xlim, ylim
        self.shapes: list[Shape] = []

    def x(self, v: float) -> float:
        """The pixel column of data value ``v`` on the x axis."""
        lo, hi = self.xlim
        return self.m[3] + (v - lo) / ((hi - lo) or 1) * (self.w - self.m[1] - self.m[3])

    def y(self, v: float) -> float:
        """The pixel row of data value ``v`` on the y axis."""
        lo, hi = self.ylim
        return self.h - self.m[2] - (v - lo) / ((hi - lo) or 1) * (self.h - self.m[0] - self.m[2])

    # ------------------------------------------------------------------ primitives (pixels)
    def rect(self, x: float, y: float, w: float, h: float, fill: str, css: str | None = "bar",
             tip: str | None = None, opacity: float = 1.0) -> None:
        """A filled rectangle with its top-left corner at (x, y)."""
        self.shapes.append(Shape("rect", (x, y, w, h), fill=fill, css=css, tip=tip, opacity=opacity))

    def line(self, pts: Sequence[float], color: str, width: float = 1.0, css: str | None = None,
             dash: tuple[float, ...] = ()) -> None:
        """A line through pixel points ``(x0, y0, x1, y1, ...)``."""
        self.shapes.append(Shape("line", tuple(pts), stroke=color, width=width, css=css, dash=dash))

    def label(self, x: float, y: float, text: str, anchor: str = "start", size: float = FONT_SIZE,
              bold: bool = False, rotate: bool = False, css: str | None = None) -> None:
        """Text whose baseline starts, is centred or ends at (x, y)."""
        self.shapes.append(Shape("text", (x, y), fill="#333333", text=text, anchor=anchor, size=size, bold=bold,
                                 rotate=rotate, css=css))

    # ------------------------------------------------------------------ data helpers
    def points(self, xs: Sequence[float], ys: Sequence[float], color: str, css_class: str = "point",
               radius: float = 2.0, opacity: float = 0.5) -> None:
        """Scatter points."""
        self.shapes.extend(Shape("circle", (self.x(a), self.y(b), radius), fill=color, opacity=opacity,
                                 css=css_class) for a, b in zip(xs, ys))

    def polyline(self, xs: Sequence[float], ys: Sequence[float], color: str, css_class: str = "curve",
                 width: float = 2.0, dash: str | None = None) -> None:
        """A line through the data points, in the given order (``dash``: an SVG dash list, e.g. ``"4 3"``)."""
        pts = [c for a, b in zip(xs, ys) for c in (self.x(a), self.y(b))]
        self.line(pts, color, width, css_class, tuple(float(d) for d in dash.split()) if dash else ())

    def bar(self, x: float, width: float, v0: float, v1: float, fill: str, tip: str | None = None) -> None:
        """A bar from data value ``v0`` to ``v1`` (either order) at pixel ``x``, ``width`` pixels wide."""
        top, base = self.y(max(v0, v1)), self.y(min(v0, v1))
        self.rect(x, top, width, max(base - top, 0.5), fill, "bar", tip)

    def legend(self, entries: Sequence[tuple[str, str]], step: int = 130) -> None:
        """Coloured keys (label, colour) in a row under the title, ``step`` pixels apart."""
        for j, (text, color) in enumerate(entries):
            x = self.m[3] + 10 + j * step
            self.rect(x, 24, 10, 10, color, css="key")
            self.label(x + 14, 33, text)

    def zero_line(self) -> None:
        """A horizontal line at y = 0 across the plot (when 0 lies inside the y range)."""
        if self.ylim[0] < 0 < self.ylim[1]:
            self.line((self.m[3], self.y(0), self.w - self.m[1], self.y(0)), "#333333", 1.0, "zero")

    def axes(self, xlabel: str, ylabel: str, xticks: bool = True, integer_x: bool = False,
             integer_y: bool = False) -> None:
        """Axis lines, round tick labels (whole numbers on a counting axis), axis labels and the title."""
        x0, y0 = self.m[3], self.h - self.m[2]
        self.line((x0, y0, self.w - self.m[1], y0), "#333333", css="axis")
        self.line((x0, self.m[0], x0, y0), "#333333", css="axis")
        ys = axis_ticks(*self.ylim, integer=integer_y)
        step = ys[1] - ys[0] if len(ys) > 1 else 1.0
        for t in ys:
            self.line((x0 - 3, self.y(t), x0, self.y(t)), "#333333", css="tick")
            self.label(x0 - 5, self.y(t) + 4, tick_label(t, step, integer_y), "end", css="ytick")
        if xticks:
            xs = axis_ticks(*self.xlim, integer=integer_x)
            step = xs[1] - xs[0] if len(xs) > 1 else 1.0
            for t in xs:
                self.line((self.x(t), y0, self.x(t), y0 + 3), "#333333", css="tick")
                self.label(self.x(t), y0 + 14, tick_label(t, step, integer_x), "middle", css="xtick")
        self.label((x0 + self.w - self.m[1]) / 2, self.h - 4, xlabel, "middle")
        self.label(12, (self.m[0] + y0) / 2, ylabel, "middle", rotate=True)
        self.label(self.w / 2, 16, self.title, "middle", TITLE_SIZE, bold=True)

    # ------------------------------------------------------------------ output
    def svg(self) -> str:
        """The plot as one ``<svg>`` element."""
        return (f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" data-plot="{self.kind}" width="{self.w}" '
                f'height="{self.h}" viewBox="0 0 {self.w} {self.h}" font-family="{FONT}" font-size="{FONT_SIZE:g}">'
                + "".join(_svg(s) for s in self.shapes) + "</svg>")


def _svg(s: Shape) -> str:
    cls = f' class="{s.css}"' if s.css else ""
    tip = f"<title>{escape(s.tip)}</title>" if s.tip else ""
    if s.kind == "rect":
        x, y, w, h = s.points
        opacity = f' fill-opacity="{s.opacity:g}"' if s.opacity < 1 else ""
        return (f'<rect{cls} x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{s.fill}"{opacity}>'
                f"{tip}</rect>" if tip else
                f'<rect{cls} x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{s.fill}"{opacity}/>')
    if s.kind == "circle":
        cx, cy, r = s.points
        return f'<circle{cls} cx="{cx:.1f}" cy="{cy:.1f}" r="{r:g}" fill="{s.fill}" fill-opacity="{s.opacity:g}"/>'
    if s.kind == "line":
        pts = " ".join(f"{s.points[i]:.1f},{s.points[i + 1]:.1f}" for i in range(0, len(s.points) - 1, 2))
        dash = f' stroke-dasharray="{" ".join(f"{d:g}" for d in s.dash)}"' if s.dash else ""
        return f'<polyline{cls} points="{pts}" fill="none" stroke="{s.stroke}" stroke-width="{s.width:g}"{dash}/>'
    x, y = s.points
    anchor = f' text-anchor="{s.anchor}"' if s.anchor != "start" else ""
    style = f' style="font-size:{s.size:g}px;font-weight:600"' if s.bold else (
        f' style="font-size:{s.size:g}px"' if s.size != FONT_SIZE else "")
    turn = f' transform="rotate(-90 {x:.0f} {y:.0f})"' if s.rotate else ""
    return f'<text{cls} x="{x:.1f}" y="{y:.1f}"{anchor}{turn}{style}>{escape(s.text)}</text>'
