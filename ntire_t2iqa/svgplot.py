"""Tiny inline SVG plots for self-contained HTML pages (leaderboards, diagnostic reports).

No JavaScript and no external assets: a page that embeds these opens anywhere, offline.

Example:
    >>> plot = Plot(200, 150, (0.0, 1.0), (0.0, 1.0), "demo", "A line")
    >>> plot.polyline([0.0, 1.0], [0.0, 1.0], "#333")
    >>> plot.axes("x", "y")
    >>> plot.svg().startswith('<svg')
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .safetext import html as escape

PALETTE = ("#3366cc", "#dc3912", "#ff9900", "#109618", "#990099")


def axis_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """``n`` evenly spaced tick values from ``lo`` to ``hi``."""
    if hi <= lo:
        hi = lo + 1
    return list(np.linspace(lo, hi, n))


def padded_range(values: np.ndarray, default: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """``(min, max)`` of the values, widened when they are all equal; ``default`` when empty."""
    if values.size == 0:
        return default
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-12:
        return lo - 0.5, hi + 0.5
    return lo, hi


class Plot:
    """A tiny SVG canvas with data-to-pixel mapping and axes."""

    def __init__(self, width: int, height: int, xlim: tuple[float, float], ylim: tuple[float, float],
                 kind: str, title: str):
        self.w, self.h, self.kind, self.title = width, height, kind, title
        self.m = (40, 12, 36, 48)  # top, right, bottom, left
        self.xlim, self.ylim = xlim, ylim
        self.parts: list[str] = []

    def x(self, v: float) -> float:
        lo, hi = self.xlim
        return self.m[3] + (v - lo) / ((hi - lo) or 1) * (self.w - self.m[1] - self.m[3])

    def y(self, v: float) -> float:
        lo, hi = self.ylim
        return self.h - self.m[2] - (v - lo) / ((hi - lo) or 1) * (self.h - self.m[0] - self.m[2])

    def points(self, xs: Sequence[float], ys: Sequence[float], color: str, css_class: str = "point",
               radius: float = 2.0, opacity: float = 0.5) -> None:
        """Scatter points."""
        self.parts.extend(f'<circle class="{css_class}" cx="{self.x(a):.1f}" cy="{self.y(b):.1f}" r="{radius}" '
                          f'fill="{color}" fill-opacity="{opacity}"/>' for a, b in zip(xs, ys))

    def polyline(self, xs: Sequence[float], ys: Sequence[float], color: str, css_class: str = "curve",
                 width: float = 2.0, dash: str | None = None) -> None:
        """A line through the points, in the given order."""
        pts = " ".join(f"{self.x(a):.1f},{self.y(b):.1f}" for a, b in zip(xs, ys))
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(f'<polyline class="{css_class}" points="{pts}" fill="none" stroke="{color}" '
                          f'stroke-width="{width}"{extra}/>')

    def legend(self, entries: Sequence[tuple[str, str]], step: int = 130) -> None:
        """Coloured keys (label, colour) in a row under the title, ``step`` pixels apart."""
        for j, (label, color) in enumerate(entries):
            x = self.m[3] + 10 + j * step
            self.parts.append(f'<rect x="{x}" y="24" width="10" height="10" fill="{color}"/>'
                              f'<text x="{x + 14}" y="33">{escape(label)}</text>')

    def axes(self, xlabel: str, ylabel: str, xticks: bool = True) -> None:
        x0, y0 = self.m[3], self.h - self.m[2]
        self.parts.append(f'<line x1="{x0}" y1="{y0}" x2="{self.w - self.m[1]}" y2="{y0}" stroke="#333"/>')
        self.parts.append(f'<line x1="{x0}" y1="{self.m[0]}" x2="{x0}" y2="{y0}" stroke="#333"/>')
        for t in axis_ticks(*self.ylim):
            self.parts.append(f'<text x="{x0 - 4}" y="{self.y(t) + 4:.1f}" text-anchor="end">{t:.2f}</text>')
        if xticks:
            for t in axis_ticks(*self.xlim):
                self.parts.append(f'<text x="{self.x(t):.1f}" y="{y0 + 14}" text-anchor="middle">{t:.2f}</text>')
        self.parts.append(f'<text x="{(x0 + self.w - self.m[1]) / 2:.0f}" y="{self.h - 4}" '
                          f'text-anchor="middle">{escape(xlabel)}</text>')
        self.parts.append(f'<text x="12" y="{(self.m[0] + y0) / 2:.0f}" text-anchor="middle" '
                          f'transform="rotate(-90 12 {(self.m[0] + y0) / 2:.0f})">{escape(ylabel)}</text>')
        self.parts.append(f'<text x="{self.w / 2:.0f}" y="16" text-anchor="middle" '
                          f'style="font-size:13px;font-weight:600">{escape(self.title)}</text>')

    def svg(self) -> str:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" data-plot="{self.kind}" width="{self.w}" '
                f'height="{self.h}" viewBox="0 0 {self.w} {self.h}">' + "".join(self.parts) + "</svg>")
