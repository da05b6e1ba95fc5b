"""Plots that read right: whole-number ticks for counts, a zero line and a symmetric range for negative
components, a smooth fit curve over the x range, no scatter point cut by an axis, overlays in the picture's
aspect ratio, worst-of lists without perfect images, rank errors with prompts and wrong elements, a
highlighted team, and the same plots as PNG/PDF/SVG files."""

from __future__ import annotations

import io
import json
import pickle
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import align_zip, random_align, random_structure, structure_zip
from PIL import Image

from ntire_t2iqa import metrics
from ntire_t2iqa.cli import main
from ntire_t2iqa.explain import explain
from ntire_t2iqa.explain.report import calibration_plot, category_plot, plots, print_summary, scatter_plot, to_html
from ntire_t2iqa.explain.structure import OVERLAY_SIZE, draw_overlay, image_regions, read_background
from ntire_t2iqa.leaderboard import plots as board_plots
from ntire_t2iqa.leaderboard import rank, render
from ntire_t2iqa.leaderboard.export import to_table
from ntire_t2iqa.leaderboard.html import components_plot, histogram_plot
from ntire_t2iqa.leaderboard.ranking import Leaderboard, Row
from ntire_t2iqa.plotimage import render as render_png
from ntire_t2iqa.plotimage import write_plots
from ntire_t2iqa.svgplot import Plot, axis_ticks

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def labels(svg: str, css: str) -> list[str]:
    return [t.text or "" for t in parse(svg).iter(f"{SVG}text") if t.get("class") == css]


def polyline_points(svg: str, css: str) -> list[np.ndarray]:
    return [np.array([[float(v) for v in p.split(",")] for p in line.get("points", "").split()])
            for line in parse(svg).iter(f"{SVG}polyline") if line.get("class") == css]


def row(team: str, main_score: float, srcc: float, plcc: float, acc: float, rank_: int) -> Row:
    return Row(rank=rank_, team=team, leader="", main_score=main_score,
               components={"srcc": srcc, "plcc": plcc, "acc": acc}, n_submissions=1, submitted_at="2025-03-01",
               sha256=team * 4, path=f"{team}.zip")


def board(values: list[tuple[str, float, float, float, float]]) -> Leaderboard:
    return Leaderboard(track="align", rows=[row(t, m, s, p, a, i + 1) for i, (t, m, s, p, a) in enumerate(values)],
                       baselines=[], invalid=[])


# --------------------------------------------------------------------------- ticks and ranges

@pytest.mark.parametrize("top", [1, 2, 3, 7, 13, 104])
def test_counting_axes_get_whole_number_ticks(top) -> None:
    for svg in (histogram_plot([0.5] * top + [0.6]).svg(),
                category_plot([{"category": "animal", "false_present": top, "false_absent": 0}]).svg(),
                calibration_plot(np.ones(top), np.full(top, 0.7), 0.5, 0.6).svg()):
        ticks = labels(svg, "ytick")
        assert len(ticks) >= 2 and all(t.lstrip("-").isdigit() for t in ticks), ticks
        values = [int(t) for t in ticks]
        assert values == sorted(set(values)) and values[0] == 0 and values[-1] <= max(top, 1)


def test_score_axes_get_round_ticks() -> None:
    assert axis_ticks(0.0, 1.0) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert axis_ticks(-1.0, 1.0) == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert axis_ticks(0.1, 5.4) == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_components_show_zero_and_a_symmetric_range_when_a_value_is_negative() -> None:
    plot = components_plot(board([("north", 0.8, 0.7, 0.75, 0.9), ("flip", 0.3, -0.4, 0.35, 0.8)]))
    svg = plot.svg()
    assert plot.ylim == (-1.0, 1.0)
    ticks = [float(t) for t in labels(svg, "ytick")]
    assert ticks == [-t for t in reversed(ticks)] and 0.0 in ticks and min(ticks) == -1.0
    zero = polyline_points(svg, "zero")
    assert len(zero) == 1 and np.allclose(zero[0][:, 1], round(plot.y(0), 1))
    srcc_bar = next(r for r in parse(svg).iter(f"{SVG}rect") if "flip srcc: -0.4000" in "".join(r.itertext()))
    assert float(srcc_bar.get("y")) == pytest.approx(plot.y(0), abs=0.06)  # it hangs down from zero
    assert float(srcc_bar.get("height")) == pytest.approx(plot.y(-0.4) - plot.y(0), abs=0.1)
    positive = components_plot(board([("north", 0.8, 0.7, 0.75, 0.9)]))
    assert positive.ylim == (0.0, 1.0) and not polyline_points(positive.svg(), "zero")


# --------------------------------------------------------------------------- fit curve and scatter

@pytest.mark.parametrize("track", ["align", "structure"])
def test_fit_curve_is_smooth_over_the_x_range_and_no_point_is_cut(tmp_path, track) -> None:
    if track == "align":
        sub, ref = random_align(150, seed=8)
        (tmp_path / "eval.json").write_text(json.dumps(ref))
        ex = explain(align_zip(tmp_path / "a.zip", sub), tmp_path / "eval.json", "align")
        x, y = ex.result.details["gt_total"], ex.result.details["pred_total"]  # Track 1 fits reference -> prediction
    else:
        sub, gt = random_structure(40, seed=9)
        (tmp_path / "gt.pkl").write_bytes(pickle.dumps(gt))
        ex = explain(structure_zip(tmp_path / "s.zip", sub), tmp_path / "gt.pkl", "structure", overlays=0)
        x, y = ex.result.details["pred_score"], ex.result.details["gt_score"]
    curve = ex.figures["curve"]
    assert curve.curve_x.size >= 100 and curve.curve_x[0] == x.min() and curve.curve_x[-1] == x.max()
    assert np.all(np.diff(curve.curve_x) > 0)
    expected = metrics.logistic4(curve.curve_x, *metrics.fit_logistic_params(x, y))
    assert np.array_equal(curve.curve_y, expected)
    plot = scatter_plot(curve, "fit")
    svg = plot.svg()
    (line,) = polyline_points(svg, "curve")
    assert len(line) == curve.curve_x.size and np.all(np.diff(line[:, 0]) > 0)
    assert line[0, 0] == pytest.approx(plot.x(x.min()), abs=0.06) and line[-1, 0] == pytest.approx(plot.x(x.max()),
                                                                                                  abs=0.06)
    left, right = plot.m[3], plot.w - plot.m[1]
    top, bottom = plot.m[0], plot.h - plot.m[2]
    for c in parse(svg).iter(f"{SVG}circle"):
        cx, cy, r = float(c.get("cx")), float(c.get("cy")), float(c.get("r"))
        assert left + r < cx < right - r and top + r < cy < bottom - r  # inside the axes, whole


def test_private_scatter_points_are_not_cut() -> None:
    from ntire_t2iqa.leaderboard.html import scatter_plot as board_scatter

    rng = np.random.default_rng(1)
    gt, pred = rng.uniform(1, 5, 300), rng.uniform(0, 1, 300)
    plot = board_scatter(pred, gt, "north")
    for c in parse(plot.svg()).iter(f"{SVG}circle"):
        cx, cy, r = float(c.get("cx")), float(c.get("cy")), float(c.get("r"))
        assert plot.m[3] + r < cx < plot.w - plot.m[1] - r and plot.m[0] + r < cy < plot.h - plot.m[2] - r


# --------------------------------------------------------------------------- overlays and worst-of lists

def test_overlays_keep_the_pictures_aspect_ratio(tmp_path) -> None:
    ref_mask = np.zeros((512, 512), np.uint8)
    ref_mask[200:300, 100:200] = 1  # a square in the scoring frame
    pred = np.zeros((448, 448), np.uint8)
    pred[300:400, 300:400] = 1  # a false prediction elsewhere
    photo = tmp_path / "tall.png"
    cv2.imwrite(str(photo), np.full((512, 384, 3), 255, np.uint8))  # 384 wide, 512 high
    background = read_background(photo)
    assert background.shape == (512, 384, 3)
    found = image_regions(pred, ref_mask.astype(bool))
    picture = draw_overlay(found, background)
    assert picture.shape == (512, 384, 3)
    green = np.all(np.abs(picture.astype(int) - [119, 158, 27]) < 8, axis=-1)  # the missed square's outline
    ys, xs = np.nonzero(green)
    assert xs.min() == pytest.approx(100 * 0.75, abs=3) and xs.max() == pytest.approx(200 * 0.75, abs=3)
    assert ys.min() == pytest.approx(200, abs=3) and ys.max() == pytest.approx(300, abs=3)  # squeezed, not moved

    (tmp_path / "gt.pkl").write_bytes(pickle.dumps({"tall": {"score": 1.0, "pred_area": ref_mask},
                                                    "b": {"score": 2.0, "pred_area": ref_mask},
                                                    "c": {"score": 3.0, "pred_area": ref_mask},
                                                    "d": {"score": 4.0, "pred_area": ref_mask}}))
    good = np.zeros((448, 448), np.uint8)
    good[175:262, 88:175] = 1  # the reference square, at 448 x 448: matched, nothing false
    sub = {"tall": {"score": 1.0, "pred_area": pred}, "b": {"score": 2.5, "pred_area": good},
           "c": {"score": 2.0, "pred_area": good}, "d": {"score": 4.0, "pred_area": good}}
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "tall.png"), np.full((512, 384, 3), 200, np.uint8))
    ex = explain(structure_zip(tmp_path / "s.zip", sub), tmp_path / "gt.pkl", "structure", images=images)
    assert [o["image"] for o in ex.data["overlays"]] == ["tall"]  # b, c and d are perfect: no overlay
    (pic,) = ex.figures["overlays"]
    assert (pic["width"], pic["height"]) == (240, OVERLAY_SIZE)
    assert Image.open(io.BytesIO(pic["data"])).size == (240, 320)
    assert 'width="240" height="320"' in to_html(ex)
    assert [r["name"] for r in ex.data["rank_errors"]] == ["b", "c"]  # a and d are ranked right: left out


# --------------------------------------------------------------------------- rank errors: prompts, wrong elements

def test_rank_errors_show_the_prompt_and_the_wrong_elements(tmp_path) -> None:
    ref = [{"img_path": f"M/{i}.png", "prompt": f"prompt number {i}", "total_score": float(i),
            "element_score": {"cat (animal)": 1.0, "red (color)": 0.0}} for i in range(1, 7)]
    totals = [1.0, 2.0, 6.0, 4.0, 5.0, 3.0]  # images 3 and 6 swap places; the rest are ranked right
    sub = [{"img_path": r["img_path"], "total_score": t,
            "element_score": {"cat (animal)": 0.9 if i != 2 else 0.1, "red (color)": 0.2 if i != 5 else 0.8}}
           for i, (r, t) in enumerate(zip(ref, totals))]
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    ex = explain(align_zip(tmp_path / "a.zip", sub), tmp_path / "eval.json", "align")
    got = [(r["name"], r["rank_error"], r["prompt"], r["wrong_element_keys"]) for r in ex.data["rank_errors"]]
    assert got == [("M/3.png", 3.0, "prompt number 3", ["cat (animal)"]),
                   ("M/6.png", -3.0, "prompt number 6", ["red (color)"])]
    page = to_html(ex)
    table = page.split('id="rank-errors"')[1].split("</table>")[0]
    assert '<th class="text">prompt</th>' in table and '<td class="text">prompt number 3</td>' in table
    assert '<td class="text">cat (animal)</td>' in table
    from rich.console import Console

    console = Console(width=80, record=True, color_system=None)
    print_summary(ex, console)
    text = console.export_text()
    assert "M/6.png: prompt: prompt number 6; wrong elements: red (color)" in text
    assert max(len(line) for line in text.splitlines()) <= 80


# --------------------------------------------------------------------------- highlight

def test_terminal_table_highlights_the_team() -> None:
    table = to_table(board([("north", 0.8, 0.7, 0.75, 0.9), ("south", 0.6, 0.5, 0.55, 0.7)]), 80, "south")
    assert [r.style for r in table.rows] == [None, "bold reverse"]


# --------------------------------------------------------------------------- pictures

def test_png_pdf_and_svg_files_of_a_plot(tmp_path) -> None:
    plot = components_plot(board([("north", 0.8, 0.7, 0.75, 0.9), ("flip", 0.3, -0.4, 0.35, 0.8)]), "flip")
    written = write_plots({"components": plot}, tmp_path, ("png", "pdf", "svg"), scale=2)
    assert [p.name for p in written] == ["components.png", "components.pdf", "components.svg"]
    png = Image.open(tmp_path / "components.png")
    assert png.format == "PNG" and png.size == (plot.w * 2, plot.h * 2)
    pixels = np.asarray(png.convert("RGB")).astype(int)
    row_zero = round(plot.y(0) * 2)
    dark = np.all(pixels[row_zero - 1:row_zero + 2, plot.m[3] * 2:(plot.w - plot.m[1]) * 2] < 80, axis=-1)
    assert dark.any(axis=0).mean() > 0.9  # the zero line runs across the plot
    blue = np.all(np.abs(pixels - [0x33, 0x66, 0xCC]) < 20, axis=-1)
    assert blue.sum() > 2000  # the main-score bars
    band = np.all(np.abs(pixels - [0xFF, 0xF2, 0xB3]) < 6, axis=-1)
    assert band.sum() > 10_000  # the highlighted team's band
    assert (tmp_path / "components.pdf").read_bytes().startswith(b"%PDF")
    assert parse((tmp_path / "components.svg").read_text()).get("data-plot") == "components"
    text_plot = Plot(200, 100, (0, 1), (0, 1), "t", "Title")
    text_plot.axes("x label", "y label")
    assert render_png(text_plot, scale=1).size == (200, 100)


def test_leaderboard_and_explain_write_plot_files(tmp_path) -> None:
    sub, ref = random_align(60, seed=12)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    for team, noise in (("north", 0.3), ("south", 1.0)):
        (tmp_path / "subs" / team).mkdir(parents=True)
        align_zip(tmp_path / "subs" / team / "a.zip",
                  [{**r, "total_score": r["total_score"] + noise * (k % 3)} for k, r in enumerate(sub)])
    db = tmp_path / "lb.db"
    rank(tmp_path / "subs", "align", tmp_path / "eval.json", db)
    runner = CliRunner()
    res = runner.invoke(main, ["leaderboard", "--db", str(db), "--track", "align", "--team", "south", "--plots",
                               str(tmp_path / "board"), "--plot-format", "png", "--plot-format", "pdf"])
    assert res.exit_code == 0, res.output
    expected = board_plots(db, "align", team="south")
    assert set(expected) == {"histogram", "components"}
    for name, plot in expected.items():
        assert Image.open(tmp_path / "board" / f"{name}.png").size == (plot.w * 3, plot.h * 3)
        assert (tmp_path / "board" / f"{name}.pdf").read_bytes().startswith(b"%PDF")
    assert "wrote 4 plot file(s)" in res.stderr
    assert render(db, "align", "table") is not None

    res = runner.invoke(main, ["explain", str(tmp_path / "subs" / "north" / "a.zip"), "--track", "align", "--ref",
                               str(tmp_path / "eval.json"), "--plots", str(tmp_path / "explain")])
    assert res.exit_code == 0, res.output
    ex = explain(tmp_path / "subs" / "north" / "a.zip", tmp_path / "eval.json", "align")
    for name, plot in plots(ex).items():
        picture = Image.open(tmp_path / "explain" / f"{name}.png")
        assert picture.size == (plot.w * 3, plot.h * 3) and len(np.unique(np.asarray(picture))) > 10
    assert sorted(p.name for p in (tmp_path / "explain").iterdir()) == ["calibration.png", "categories.png",
                                                                        "fit.png"]
    res = runner.invoke(main, ["leaderboard", "--db", str(db), "--track", "align", "--plots",
                               str(tmp_path / "eval.json")])
    assert res.exit_code == 2 and "--plots" in res.output
