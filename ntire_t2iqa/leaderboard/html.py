"""A self-contained HTML leaderboard: the table and inline SVG plots, no external assets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

import numpy as np

from ..svgplot import HIGHLIGHT_HEX, PALETTE, Plot, padded_range, symmetric_range
from ..svgplot import escape as _e
from .export import LABELS, TRACK_TITLES, _cells, _columns, first_reason
from .ranking import COMPONENTS, Leaderboard

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { padding: 0.3rem 0.7rem; border-bottom: 1px solid #ddd; text-align: right; }
th { background: #f3f3f3; } td.team, td.leader, th.team, th.leader { text-align: left; }
tr.baseline td { color: #777; font-style: italic; }
tr.highlight td { background: #fff2b3; font-weight: 600; }
figure { display: inline-block; margin: 1rem 2rem 1rem 0; vertical-align: top; }
figcaption { font-size: 0.9rem; color: #555; }
.invalid li { font-size: 0.9rem; }
svg text { font-size: 11px; fill: #333; }
#private-banner { background: #b00020; color: #fff; font-weight: bold; padding: 1rem 1.5rem; margin: 0 0 1rem;
                  border: 4px solid #600; font-size: 1.1rem; }
"""

#: Scatter axes reach this share of the data's span beyond it, so no point sits on an axis.
POINT_PAD = 0.04
#: Shown at the top of a page made with ``private``: it holds hidden per-image reference values.
PRIVATE_NOTICE = "ORGANIZERS ONLY - DO NOT PUBLISH"
_PRIVATE_BANNER = (f'<div id="private-banner" role="alert">{PRIVATE_NOTICE}. This page holds hidden reference '
                   "values: the predicted-vs-reference scatter places every test image at its reference score, "
                   "so a team that knows its own predictions can read the hidden labels from it. Share it only "
                   "with organizers; publish the page made without --private.</div>")


def histogram_plot(values: Sequence[float], title: str = "Main score of every valid submission") -> Plot:
    """Histogram of main scores (whole-number counts on the y axis)."""
    vals = np.asarray(values, dtype=float)
    lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05
    counts, edges = np.histogram(vals, bins=min(20, max(5, vals.size // 3 or 5)), range=(lo, hi))
    plot = Plot(460, 280, (lo, hi), (0, max(1, int(counts.max()) if counts.size else 1)), "histogram", title)
    for c, a, b in zip(counts, edges[:-1], edges[1:]):
        if c:
            plot.bar(plot.x(a), max(plot.x(b) - plot.x(a) - 1, 1), 0, int(c), PALETTE[0], f"{a:.4f}-{b:.4f}: {c}")
    plot.axes("main score", "submissions", integer_y=True)
    return plot


def components_plot(board: Leaderboard, highlight: str | None = None) -> Plot:
    """Grouped bars: each team's main score and components, measured from a zero line.

    The y range is 0..1 while every value is positive, and symmetric about zero (-1..1) when one
    is negative, so a negative SRCC reads as such. ``highlight`` (a team) gets a band behind its bars.
    """
    rows = [*board.rows, *board.baselines]
    keys = ["main_score", *COMPONENTS[board.track]]
    values = [[r.main_score, *(r.components[k] for k in COMPONENTS[board.track])] for r in rows]
    width = max(460, 60 + len(rows) * (len(keys) * 12 + 16))
    plot = Plot(width, 300, (0, max(len(rows), 1)), symmetric_range([v for vals in values for v in vals], 1.0),
                "components", "Main score and components per team")
    slot = (plot.x(1) - plot.x(0)) if rows else 1
    bar = max(2.0, (slot - 10) / len(keys))
    for i, (row, vals) in enumerate(zip(rows, values)):
        chosen = highlight is not None and highlight in (row.team, row.display_team)
        if chosen:
            plot.rect(plot.x(i) + 1, plot.m[0], slot - 2, plot.h - plot.m[0] - plot.m[2], HIGHLIGHT_HEX, "highlight")
        for j, v in enumerate(vals):
            plot.bar(plot.x(i) + 5 + j * bar, bar - 1, 0, v, PALETTE[j % len(PALETTE)],
                     f"{row.display_team} {keys[j]}: {v:.4f}")
        plot.label(plot.x(i + 0.5), plot.h - plot.m[2] + 14, row.display_team[:14], "middle", bold=chosen,
                   css="team")
    plot.zero_line()
    plot.legend([(LABELS.get(k, "Main"), PALETTE[j % len(PALETTE)]) for j, k in enumerate(keys)], step=90)
    plot.axes("team", "score", xticks=False)
    return plot


def scatter_plot(pred: np.ndarray, gt: np.ndarray, team: str, max_points: int = 3000) -> Plot:
    """Predicted vs reference score for one team (subsampled to ``max_points``), no point on an axis.

    Organizer-only: the points reveal the hidden per-image reference scores (see :func:`to_html`).
    """
    pred, gt = np.asarray(pred, float), np.asarray(gt, float)
    if pred.size > max_points:
        keep = np.random.default_rng(0).choice(pred.size, max_points, replace=False)
        pred, gt = pred[keep], gt[keep]
    plot = Plot(460, 320, padded_range(gt, pad=POINT_PAD), padded_range(pred, pad=POINT_PAD), "scatter",
                f"Predicted vs reference score: {team}")
    plot.points(gt, pred, PALETTE[0])
    plot.axes("reference score", "predicted score")
    return plot


def plots(board: Leaderboard, all_scores: Sequence[float],
          scatter: tuple[str, np.ndarray, np.ndarray] | None = None, highlight: str | None = None) -> dict[str, Plot]:
    """The page's plots by file name: ``histogram``, ``components`` and, organizer-only, ``scatter``."""
    out = {"histogram": histogram_plot(all_scores), "components": components_plot(board, highlight)}
    if scatter is not None:
        team, pred, gt = scatter
        out["scatter"] = scatter_plot(pred, gt, team)
    return out


def to_html(board: Leaderboard, all_scores: Sequence[float],
            scatter: tuple[str, np.ndarray, np.ndarray] | None = None, title: str | None = None,
            private: bool = False, highlight: str | None = None) -> str:
    """The whole page: title, table, invalid list, the main-score histogram and the component bars.

    The default page holds per-submission aggregates only and is fit to publish. A ``scatter``
    (team, predicted, reference per image) reveals hidden reference values, so it is drawn only
    on a ``private`` page (a scatter makes the page private), whose <title> and a banner at the
    top say that it is for organizers only. ``highlight`` (a team name) marks that team's row
    and its bars; it reveals nothing.
    """
    private = private or scatter is not None
    cols = _columns(board)
    head = "".join(f'<th class="{c.lower()}">{_e(c)}</th>' for c in cols)
    body = []
    for row in [*board.rows, *board.baselines]:
        cls = "baseline" if row.is_baseline else "ranked"
        if highlight is not None and highlight in (row.team, row.display_team):
            cls += " highlight"
        cells = "".join(f'<td class="{c.lower()}">{_e(v)}</td>' for c, v in zip(cols, _cells(board, row)))
        body.append(f'<tr class="{cls}">{cells}</tr>')
    invalid = "".join(f"<li>{_e(r['team'])} ({_e(r['submitted_at'])}, {_e(PurePath(r['path']).name)}): "
                      f"{_e(': '.join(first_reason(r)))}</li>" for r in board.invalid)
    drawn = plots(board, all_scores, scatter, highlight)
    figures = [f"<figure>{drawn['histogram'].svg()}<figcaption>Distribution of main scores.</figcaption></figure>",
               f"<figure>{drawn['components'].svg()}<figcaption>Components per team"
               + (f" ({_e(highlight)} highlighted)" if highlight else "") + ".</figcaption></figure>"]
    if "scatter" in drawn:
        figures.append(f"<figure>{drawn['scatter'].svg()}<figcaption>Each point is one test image, at its "
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
