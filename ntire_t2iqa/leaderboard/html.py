"""A self-contained HTML leaderboard: the table and inline SVG plots, no external assets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

import numpy as np

from ..svgplot import PALETTE, Plot, padded_range
from ..svgplot import escape as _e
from .export import LABELS, TRACK_TITLES, _cells, _columns, first_reason
from .ranking import COMPONENTS, Leaderboard

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { padding: 0.3rem 0.7rem; border-bottom: 1px solid #ddd; text-align: right; }
th { background: #f3f3f3; } td.team, td.leader, th.team, th.leader { text-align: left; }
tr.baseline td { color: #777; font-style: italic; }
figure { display: inline-block; margin: 1rem 2rem 1rem 0; vertical-align: top; }
figcaption { font-size: 0.9rem; color: #555; }
.invalid li { font-size: 0.9rem; }
svg text { font-size: 11px; fill: #333; }
#private-banner { background: #b00020; color: #fff; font-weight: bold; padding: 1rem 1.5rem; margin: 0 0 1rem;
                  border: 4px solid #600; font-size: 1.1rem; }
"""

#: Shown at the top of a page made with ``private``: it holds hidden per-image reference values.
PRIVATE_NOTICE = "ORGANIZERS ONLY - DO NOT PUBLISH"
_PRIVATE_BANNER = (f'<div id="private-banner" role="alert">{PRIVATE_NOTICE}. This page holds hidden reference '
                   "values: the predicted-vs-reference scatter places every test image at its reference score, "
                   "so a team that knows its own predictions can read the hidden labels from it. Share it only "
                   "with organizers; publish the page made without --private.</div>")


def histogram_svg(values: Sequence[float], title: str = "Main score of every valid submission") -> str:
    """Histogram of main scores."""
    vals = np.asarray(values, dtype=float)
    lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05
    counts, edges = np.histogram(vals, bins=min(20, max(5, vals.size // 3 or 5)), range=(lo, hi))
    plot = Plot(460, 280, (lo, hi), (0, max(1, int(counts.max()) if counts.size else 1)), "histogram", title)
    for c, a, b in zip(counts, edges[:-1], edges[1:]):
        if c:
            plot.parts.append(f'<rect class="bar" x="{plot.x(a):.1f}" y="{plot.y(c):.1f}" '
                              f'width="{max(plot.x(b) - plot.x(a) - 1, 1):.1f}" height="{plot.y(0) - plot.y(c):.1f}" '
                              f'fill="{PALETTE[0]}"><title>{a:.4f}-{b:.4f}: {c}</title></rect>')
    plot.axes("main score", "submissions")
    return plot.svg()


def components_svg(board: Leaderboard) -> str:
    """Grouped bars: each team's main score and components."""
    rows = [*board.rows, *board.baselines]
    keys = ["main_score", *COMPONENTS[board.track]]
    values = [[r.main_score, *(r.components[k] for k in COMPONENTS[board.track])] for r in rows]
    lo = min(0.0, min((min(v) for v in values), default=0.0))
    width = max(460, 60 + len(rows) * (len(keys) * 12 + 16))
    plot = Plot(width, 300, (0, max(len(rows), 1)), (lo, 1.0), "components", "Main score and components per team")
    slot = (plot.x(1) - plot.x(0)) if rows else 1
    bar = max(2.0, (slot - 10) / len(keys))
    for i, (row, vals) in enumerate(zip(rows, values)):
        for j, v in enumerate(vals):
            x = plot.x(i) + 5 + j * bar
            top, base = plot.y(max(v, 0)), plot.y(min(v, 0))
            plot.parts.append(f'<rect class="bar" x="{x:.1f}" y="{top:.1f}" width="{bar - 1:.1f}" '
                              f'height="{max(base - top, 0.5):.1f}" fill="{PALETTE[j % len(PALETTE)]}">'
                              f'<title>{_e(row.display_team)} {keys[j]}: {v:.4f}</title></rect>')
        plot.parts.append(f'<text x="{plot.x(i + 0.5):.1f}" y="{plot.h - plot.m[2] + 14}" text-anchor="middle">'
                          f'{_e(row.display_team[:14])}</text>')
    plot.legend([(LABELS.get(k, "Main"), PALETTE[j % len(PALETTE)]) for j, k in enumerate(keys)], step=90)
    plot.axes("team", "score", xticks=False)
    return plot.svg()


def scatter_svg(pred: np.ndarray, gt: np.ndarray, team: str, max_points: int = 3000) -> str:
    """Predicted vs reference score for one team (subsampled to ``max_points``).

    Organizer-only: the points reveal the hidden per-image reference scores (see :func:`to_html`).
    """
    pred, gt = np.asarray(pred, float), np.asarray(gt, float)
    if pred.size > max_points:
        keep = np.random.default_rng(0).choice(pred.size, max_points, replace=False)
        pred, gt = pred[keep], gt[keep]
    plot = Plot(460, 320, padded_range(gt), padded_range(pred), "scatter",
                 f"Predicted vs reference score: {team}")
    plot.points(gt, pred, PALETTE[0])
    plot.axes("reference score", "predicted score")
    return plot.svg()


def to_html(board: Leaderboard, all_scores: Sequence[float],
            scatter: tuple[str, np.ndarray, np.ndarray] | None = None, title: str | None = None,
            private: bool = False) -> str:
    """The whole page: title, table, invalid list, the main-score histogram and the component bars.

    The default page holds per-submission aggregates only and is fit to publish. A ``scatter``
    (team, predicted, reference per image) reveals hidden reference values, so it is drawn only
    on a ``private`` page (a scatter makes the page private), whose <title> and a banner at the
    top say that it is for organizers only.
    """
    private = private or scatter is not None
    cols = _columns(board)
    head = "".join(f'<th class="{c.lower()}">{_e(c)}</th>' for c in cols)
    body = []
    for row in [*board.rows, *board.baselines]:
        cls = "baseline" if row.is_baseline else "ranked"
        cells = "".join(f'<td class="{c.lower()}">{_e(v)}</td>' for c, v in zip(cols, _cells(board, row)))
        body.append(f'<tr class="{cls}">{cells}</tr>')
    invalid = "".join(f"<li>{_e(r['team'])} ({_e(r['submitted_at'])}, {_e(PurePath(r['path']).name)}): "
                      f"{_e(': '.join(first_reason(r)))}</li>" for r in board.invalid)
    figures = [f"<figure>{histogram_svg(all_scores)}<figcaption>Distribution of main scores.</figcaption></figure>",
               f"<figure>{components_svg(board)}<figcaption>Components per team.</figcaption></figure>"]
    if scatter is not None:
        team, pred, gt = scatter
        figures.append(f"<figure>{scatter_svg(pred, gt, team)}<figcaption>Each point is one test image, at its "
                       "hidden reference score (organizers only).</figcaption></figure>")
    heading = title or f"NTIRE 2025 T2I quality assessment, {TRACK_TITLES[board.track]}"
    page_title = f"{PRIVATE_NOTICE}: {heading}" if private else heading
    notes = (f"<p>95% intervals from a paired bootstrap over images ({board.resamples} resamples); P(flip) is the "
             "share of resamples in which a team falls below the next rank.</p>") if board.resamples else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(page_title)}</title>'
            f"<style>{_CSS}</style></head><body>{_PRIVATE_BANNER if private else ''}<h1>{_e(heading)}</h1>"
            f'<table id="leaderboard"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{notes}'
            + (f'<h2>Invalid submissions</h2><ul class="invalid">{invalid}</ul>' if invalid else "")
            + f'<h2>Plots</h2><div id="plots">{"".join(figures)}</div></body></html>\n')
