"""Rendering an :class:`~ntire_t2iqa.explain.Explanation`: rich tables for the terminal and one
self-contained HTML page (inline SVG plots, overlays as data URIs, no scripts, no external assets)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from .. import metrics
from ..safetext import terminal
from ..svgplot import PALETTE, Plot, padded_range
from ..svgplot import escape as _e
from . import Explanation
from .structure import DROPPED_HEX, OVERLAY_SIZE, PREDICTION_HEX, REFERENCE_HEX

TRACK_TITLES = {"align": "Track 1, image-text alignment", "structure": "Track 2, structural distortion"}
MAX_POINTS = 3000
#: Scatter axes reach this share of the data's span beyond it, so no point sits on an axis.
POINT_PAD = 0.04
#: Columns shown with fewer decimals than the default 4.
DIGITS = {"gt_rank": 1, "pred_rank": 1, "rank_error": 1}
#: Narrowest label column (image, category, model) in the terminal.
LABEL_MIN = 12
#: Text columns (prompts, element keys): their own columns on the page; in the terminal, a line per row below
#: the table (with these lead words).
TEXT_COLUMNS = ("prompt", "wrong_element_keys")
TEXT_LINES = (("prompt", "prompt:"), ("wrong_element_keys", "wrong elements:"))
#: Shorter headings for the terminal's narrow tables.
TERMINAL_HEADINGS = {"gt": "ref.", "pred": "pred.", "gt_rank": "ref. rank", "pred_rank": "pred. rank",
                     "rank_error": "rank error", "wrong_elements": "wrong", "false_present": "false present",
                     "false_absent": "false absent"}


def fmt(value: Any, digits: int = 4) -> str:
    """Numbers for tables: floats to ``digits`` places, ``None`` as n/a; a list of keys comma-separated."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


# --------------------------------------------------------------------------- tables (shared by both outputs)

def _sections(ex: Explanation) -> list[tuple[str, str, list[tuple[str, str]], list[dict[str, Any]]]]:
    """The tables of a track: (HTML id, title, [(column key, heading)], rows)."""
    d = ex.data
    group_cols = [("images", "images"), ("elements", "elements"), ("srcc", "SRCC"),
                  ("plcc", "PLCC"), ("acc", "ACC")]
    rank_cols = [("name", "image"), ("gt", "reference"), ("pred", "predicted"), ("gt_rank", "ref. rank"),
                 ("pred_rank", "pred. rank"), ("rank_error", "rank error")]
    if ex.track == "align":
        return [
            ("categories", "Element accuracy per category",
             [("category", "category"), ("elements", "elements"), ("acc", "ACC"), ("false_present", "false present"),
              ("false_absent", "false absent"), ("cost", "main-score cost")], d["categories"]),
            ("models", "Per T2I model (folder of img_path)", [("group", "model"), *group_cols], d["models"]),
            ("types", "Per prompt type", [("group", "type"), *group_cols], d["types"]),
            ("rank-errors", "Largest rank errors (total score)",
             [rank_cols[0], *([("prompt", "prompt")] if any(r.get("prompt") for r in d["rank_errors"]) else []),
              *rank_cols[1:], ("wrong_elements", "wrong elements"), ("wrong_element_keys", "which elements")],
             d["rank_errors"]),
        ]
    image_cols = [("image", "image"), ("gt_regions", "ref. regions"), ("gt_missed", "missed"),
                  ("pred_regions", "pred. regions"), ("pred_false", "false"), ("giou", "GIoU term"),
                  ("pred_dropped", "pred. dropped"), ("gt_dropped", "ref. dropped")]
    return [
        ("worst-recall", "Images that cost the most recall", [*image_cols, ("recall_cost", "recall cost")],
         d["worst_recall"]),
        ("worst-precision", "Images that cost the most precision", [*image_cols, ("precision_cost", "precision cost")],
         d["worst_precision"]),
        ("rank-errors", "Largest rank errors (structure score)", rank_cols, d["rank_errors"]),
    ]


def _headline(ex: Explanation) -> list[tuple[str, str]]:
    h = ex.result.to_dict()
    keys = ["main_score", "srcc", "plcc"] + (["acc"] if ex.track == "align" else ["f1", "precision", "recall", "giou"])
    return [(k, fmt(h[k], 6)) for k in keys] + [("plcc_fit", h["plcc_fit"]), ("n_images", str(h["n_images"]))]


def _findings(ex: Explanation) -> list[str]:
    """The few sentences a reader wants first."""
    d = ex.data
    lines = []
    if ex.track == "align":
        cal = d["calibration"]
        lines.append(f"ACC at the official threshold 0.5: {cal['official_acc']:.4f}; the best threshold on this split, "
                     f"{cal['best_threshold']:.4g}, would give {cal['best_acc']:.4f} "
                     f"({cal['best_acc'] - cal['official_acc']:+.4f}).")
        if d["categories"]:
            top = d["categories"][0]
            lines.append(f"Costliest category: {top['category']} ({top['false_present']} false present, "
                         f"{top['false_absent']} false absent; {top['cost']:.4f} of the main score).")
    else:
        r = d["regions"]
        lines.append(f"Regions: {r['pred_regions']} predicted ({r['pred_false']} false), {r['gt_regions']} in the "
                     f"reference ({r['gt_missed']} missed).")
        lines.append(f"The area thresholds dropped {r['pred_dropped']} predicted contour(s) of "
                     f"{r['pred_min_area']:.1f} px or less in {r['images_with_pred_dropped']} image(s), and "
                     f"{r['gt_dropped']} reference contour(s) of {r['gt_min_area']:.0f} px or less.")
    if d["fit"].get("note"):
        lines.append(f"PLCC fit: {d['fit']['note']}.")
    return lines


def print_summary(ex: Explanation, console: Console, rows: int = 10) -> None:
    """The headline, the key findings and the first ``rows`` rows of every table."""
    head = Table(title=f"{terminal(ex.submission)}: {TRACK_TITLES[ex.track]} ({ex.result.n_images} images)")
    head.add_column("metric")
    head.add_column("value", justify="right")
    for key, value in _headline(ex):
        head.add_row(terminal(key), terminal(value))
    console.print(head)
    for line in _findings(ex):
        console.print(terminal(line))
    for _, title, all_cols, data in _sections(ex):
        if not data:
            continue
        table = Table(title=title + (f" (first {rows} of {len(data)})" if len(data) > rows else ""))
        cols = [c for c in all_cols if c[0] not in TEXT_COLUMNS]  # text goes below the table: numbers keep room
        cells = [[terminal(fmt(row[k], DIGITS.get(k, 4))) for k, _ in cols] for row in data[:rows]]
        for i, (key, heading) in enumerate(cols):
            heading = TERMINAL_HEADINGS.get(key, heading)
            if i == 0:  # the label (image, category, model) wraps, down to LABEL_MIN; a number never does
                first = max((len(c[0]) for c in cells), default=len(heading))
                table.add_column(heading, justify="left", overflow="fold", min_width=min(LABEL_MIN, first))
            else:  # as wide as the widest number, so only the heading can wrap (at its spaces)
                table.add_column(heading, justify="right", overflow="fold",
                                 min_width=max(len(c[i]) for c in cells) if cells else None)
        for row_cells in cells:
            table.add_row(*row_cells)
        console.print(table)
        for row in data[:rows]:  # the prompt and the wrong elements of each row, one line per image
            text = [f"{heading} {terminal(fmt(row[key]))}" for key, heading in TEXT_LINES
                    if key in row and row[key] not in (None, [])]
            if text:
                console.print(f"  {terminal(str(row[cols[0][0]]))}: " + "; ".join(text))
    for note in ex.result.warnings:
        console.print(f"[yellow]warning[/yellow] {terminal(note)}")


# --------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #ddd; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: 0.5rem 1.5rem 1rem 0; vertical-align: top; }
figcaption { font-size: 0.85rem; color: #555; max-width: 460px; }
.overlays figure { margin: 0.4rem; } .overlays figcaption { max-width: 320px; }
.legend span { display: inline-block; margin-right: 1.2rem; } .swatch { width: 12px; height: 12px; }
.findings li { margin: 0.2rem 0; } img.thumb { vertical-align: middle; }
td.text, th.text { text-align: left; } td.text { max-width: 22rem; font-size: 0.9rem; }
svg text { font-size: 11px; fill: #333; }
"""


def _table(section_id: str, cols: list[tuple[str, str]], data: list[dict[str, Any]],
           thumbs: dict[str, str] | None = None) -> str:
    head = "".join(f'<th class="text">{_e(h)}</th>' if k in TEXT_COLUMNS else f"<th>{_e(h)}</th>" for k, h in cols)
    head += "<th>picture</th>" if thumbs else ""
    body = []
    for row in data:
        cells = "".join(f'<td class="text">{_e(fmt(row[k]))}</td>' if k in TEXT_COLUMNS else
                        f"<td>{_e(fmt(row[k], DIGITS.get(k, 4)))}</td>" for k, _ in cols)
        if thumbs:
            uri = thumbs.get(row.get("name", ""))
            cells += f'<td><img class="thumb" alt="" src="{uri}"></td>' if uri else "<td></td>"
        body.append(f"<tr>{cells}</tr>")
    return f'<table id="{section_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def scatter_plot(curve: Any, title: str) -> Plot:
    """The scores against each other, with the fitted curve the headline PLCC used drawn over the x range.

    The axes reach a little beyond the data, so no point is cut by an axis.
    """
    plot = Plot(480, 340, padded_range(curve.x, pad=POINT_PAD),
                padded_range(np.concatenate([curve.y, curve.curve_y]), pad=POINT_PAD), "fit", title)
    keep = np.arange(curve.x.size)
    if keep.size > MAX_POINTS:  # a fixed random subset keeps the page small and the cloud's shape
        keep = np.sort(np.random.default_rng(0).choice(keep.size, MAX_POINTS, replace=False))
    plot.points(curve.x[keep], curve.y[keep], PALETTE[0])
    if curve.curve_y.size:
        plot.polyline(curve.curve_x, curve.curve_y, PALETTE[1])
        plot.legend([("images", PALETTE[0]), (f"fit: {curve.fit}", PALETTE[1])], step=110)
    plot.axes(curve.x_label, curve.y_label)
    return plot


def category_plot(categories: list[dict[str, Any]]) -> Plot:
    """Errors per category: false present and false absent stacked (whole-number counts on the y axis)."""
    top = max([r["false_present"] + r["false_absent"] for r in categories] + [1])
    plot = Plot(max(480, 60 + 52 * len(categories)), 300, (0, max(len(categories), 1)), (0, top), "categories",
                "Element errors per category")
    for i, row in enumerate(categories):
        x = plot.x(i) + 6
        width = plot.x(i + 1) - plot.x(i) - 12
        base = 0
        for key, color in (("false_absent", PALETTE[0]), ("false_present", PALETTE[1])):
            v = row[key]
            if v:
                plot.bar(x, width, base, base + v, color, f"{row['category']} {key.replace('_', ' ')}: {v}")
            base += v
        plot.label(plot.x(i + 0.5), plot.h - plot.m[2] + 14, row["category"][:9], "middle", css="category")
    plot.legend([("false absent", PALETTE[0]), ("false present", PALETTE[1])])
    plot.axes("category", "wrong elements", xticks=False, integer_y=True)
    return plot


def calibration_plot(gt: np.ndarray, pred: np.ndarray, official: float, best: float) -> Plot:
    """Predicted element scores of present and absent elements, with the official and the best threshold."""
    lo, hi = padded_range(np.concatenate([pred, [0.0, 1.0]]))
    edges = np.linspace(lo, hi, 26)
    present = gt >= metrics.ELEMENT_THRESHOLD
    counts = [np.histogram(pred[present], edges)[0], np.histogram(pred[~present], edges)[0]]
    top = max(1, int(max(c.max() for c in counts)))
    plot = Plot(480, 300, (lo, hi), (0, top), "calibration", "Predicted element scores")
    for j, (c, color) in enumerate(zip(counts, (PALETTE[3], PALETTE[1]))):
        for k, v in enumerate(c):
            if v:
                x0, x1 = plot.x(edges[k]), plot.x(edges[k + 1])
                w = (x1 - x0) / 2
                plot.bar(x0 + j * w, max(w - 0.5, 0.5), 0, int(v), color)
    for t, color, dash in ((official, "#333333", "4 3"), (best, PALETTE[0], None)):
        plot.polyline([t, t], [0, top], color, "threshold", 1.5, dash)
    plot.legend([("present (reference)", PALETTE[3]), ("absent (reference)", PALETTE[1]),
                 (f"best threshold {best:.3g}", PALETTE[0])], step=140)
    plot.axes("predicted element score", "elements", integer_y=True)
    return plot


def plots(ex: Explanation) -> dict[str, Plot]:
    """The report's plots by file name: ``categories`` and ``calibration`` (Track 1), ``fit`` (both)."""
    out: dict[str, Plot] = {}
    figs = ex.figures
    if ex.track == "align" and ex.data["categories"]:
        out["categories"] = category_plot(ex.data["categories"])
        out["calibration"] = calibration_plot(figs["gt_element"], figs["pred_element"], 0.5,
                                              ex.data["calibration"]["best_threshold"])
    out["fit"] = scatter_plot(figs["curve"], "Scores and the PLCC fit")
    return out


def _overlay_html(pictures: Sequence[dict[str, Any]]) -> str:
    figs = []
    for p in pictures:
        r = p["row"]
        uri = f"data:{p['mime']};base64," + base64.b64encode(p["data"]).decode("ascii")
        caption = (f"{r['image']}: {r['gt_regions']} reference ({r['gt_missed']} missed), "
                   f"{r['pred_regions']} predicted ({r['pred_false']} false), GIoU term {r['giou']:.3f}"
                   + (f", {r['pred_dropped']} predicted speck(s) dropped" if r["pred_dropped"] else ""))
        width, height = p.get("width", OVERLAY_SIZE), p.get("height", OVERLAY_SIZE)
        figs.append(f'<figure class="overlay" data-image="{_e(r["image"])}"><img alt="{_e(r["image"])}" src="{uri}" '
                    f'width="{width}" height="{height}"><figcaption>{_e(caption)}</figcaption></figure>')
    legend = "".join(f'<span><svg class="swatch" viewBox="0 0 12 12"><rect width="12" height="12" fill="{c}"/></svg> '
                     f"{_e(t)}</span>" for c, t in ((REFERENCE_HEX, "reference region"),
                                                    (PREDICTION_HEX, "predicted region"),
                                                    (DROPPED_HEX, "contour below the area threshold")))
    return (f'<p class="legend">{legend}</p><p>Filled: matched (IoU &gt; 0.1 with a region of the other side). '
            "Thick outline with a cross: unmatched (a missed reference region, or a false prediction).</p>"
            f'<div class="overlays" id="overlays">{"".join(figs)}</div>')


def to_html(ex: Explanation) -> str:
    """The whole report as one HTML document."""
    title = f"Where {ex.submission} loses points: {TRACK_TITLES[ex.track]}"
    head = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in _headline(ex))
    parts = [f'<h1>{_e(title)}</h1><table id="headline"><tbody>{head}</tbody></table>',
             '<ul class="findings">' + "".join(f"<li>{_e(line)}</li>" for line in _findings(ex)) + "</ul>"]
    figs = ex.figures
    drawn = plots(ex)
    for section_id, heading, cols, data in _sections(ex):
        if not data:
            continue
        parts.append(f"<h2>{_e(heading)}</h2>")
        if section_id == "categories":
            parts.append(f"<figure>{drawn['categories'].svg()}</figure>")
        parts.append(_table(section_id, cols, data, figs.get("thumbs") if section_id == "rank-errors" else None))
        if section_id == "categories":
            cal = ex.data["calibration"]
            histogram = drawn["calibration"].svg()
            parts.append(f'<h2>Threshold calibration</h2><table id="calibration"><tbody>'
                         f"<tr><td>official threshold</td><td>{cal['official_threshold']}</td><td>ACC</td>"
                         f"<td>{cal['official_acc']:.4f}</td></tr><tr><td>best threshold on this split</td>"
                         f"<td>{cal['best_threshold']:.4g}</td><td>ACC</td><td>{cal['best_acc']:.4f}</td></tr>"
                         f"</tbody></table><figure>{histogram}"
                         "<figcaption>Element scores by reference label; the dashed line is the official 0.5."
                         "</figcaption></figure>")
    parts.append(f"<h2>Score fit</h2><figure>{drawn['fit'].svg()}"
                 "<figcaption>Each point is one image; the curve is the fit the PLCC used "
                 f"({_e(ex.data['fit']['fit'])})."
                 "</figcaption></figure>")
    if ex.track == "structure":
        r = ex.data["regions"]
        rows = "".join(f"<tr><td>{_e(k.replace('_', ' '))}</td><td>{_e(fmt(v, 2))}</td></tr>" for k, v in r.items())
        parts.insert(2, f'<h2>Regions</h2><table id="regions"><tbody>{rows}</tbody></table>')
        if figs["overlays"]:
            parts.append(f"<h2>The {len(figs['overlays'])} worst images</h2><p>Images without a missed or a false "
                         "region are left out.</p>" + _overlay_html(figs["overlays"]))
    if ex.result.warnings:
        parts.append('<h2>Warnings</h2><ul class="warnings">'
                     + "".join(f"<li>{_e(w)}</li>" for w in ex.result.warnings) + "</ul>")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>\n")
