"""Diagnostics: hand-computed tables per category, model, type and image; calibration; overlays; CLI; browser."""

from __future__ import annotations

import json
import pickle

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import align_zip, random_align, random_structure, square_mask, structure_zip
from scipy import optimize, stats

from ntire_t2iqa import score
from ntire_t2iqa.cli import main
from ntire_t2iqa.explain import explain
from ntire_t2iqa.explain.align import best_threshold, category_of
from ntire_t2iqa.explain.report import to_html
from ntire_t2iqa.explain.structure import (
    PREDICTION_BGR,
    REFERENCE_BGR,
    draw_overlay,
    image_regions,
    read_background,
)

# --------------------------------------------------------------------------- Track 1, hand-computed

# (img_path, type, gt total, pred total, {element: (gt, pred)})
ALIGN_CASE = [
    ("A/1.png", "t1", 1, 1, {"cat (animal)": (1.0, 0.9), "red (color)": (0.0, 0.7)}),    # red: false present
    ("A/2.png", "t1", 2, 2, {"dog (animal)": (2 / 3, 0.2)}),                            # false absent
    ("A/3.png", "t2", 3, 4, {"two (counting)": (0.0, 0.1)}),
    ("A/4.png", "t2", 4, 3, {"blue (color)": (1.0, 0.45)}),                             # false absent
    ("B/1.png", "t1", 1, 4, {"cat (animal)": (0.0, 0.4), "tree": (1.0, 0.8)}),
    ("B/2.png", "t1", 2, 3, {"three (counting)": (1.0, 0.3)}),                          # false absent
    ("B/3.png", "t2", 3, 2, {"green (Color)": (0.5, 0.5)}),                             # 0.5 counts as present
    ("B/4.png", "t2", 4, 1, {"on (spatial)": (1 / 3, 0.55)}),                           # false present
]


def _align_files(tmp_path, case=ALIGN_CASE):
    ref = [{"img_path": p, "type": t, "prompt": "x", "total_score": g,
            "element_score": {k: v[0] for k, v in el.items()}} for p, t, g, _, el in case]
    sub = [{"img_path": p, "total_score": q, "element_score": {k: v[1] for k, v in el.items()}}
           for p, _, _, q, el in case]
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    return align_zip(tmp_path / "sub.zip", sub), tmp_path / "eval.json"


def test_category_of_reads_the_trailing_parentheses() -> None:
    assert category_of("pig giants (animal)") == "animal"
    assert category_of("bright colors (Color) ") == "color"
    assert category_of("a (b) c (counting)") == "counting"
    assert category_of("tree") == "(none)" and category_of("x ()") == "(none)"


def test_align_tables_match_the_hand_computed_case(tmp_path) -> None:
    zip_path, ref = _align_files(tmp_path)
    ex = explain(zip_path, ref, "align", plcc_fit="none")
    assert ex.result.acc == pytest.approx(0.5)  # 5 of 10 elements wrong
    cats = [(r["category"], r["elements"], r["false_present"], r["false_absent"]) for r in ex.data["categories"]]
    # most costly first; equal costs in the report's category order
    assert cats == [("color", 3, 1, 1), ("counting", 2, 0, 1), ("spatial", 1, 1, 0), ("animal", 3, 0, 1),
                    ("(none)", 1, 0, 0)]
    by_cat = {r["category"]: r for r in ex.data["categories"]}
    assert by_cat["color"]["acc"] == pytest.approx(1 / 3) and by_cat["color"]["cost"] == pytest.approx(0.1)
    assert by_cat["spatial"]["acc"] == 0.0 and by_cat["(none)"]["cost"] == 0.0
    assert sum(r["cost"] for r in ex.data["categories"]) == pytest.approx(0.5 * (1 - ex.result.acc))

    models = {r["group"]: r for r in ex.data["models"]}
    assert set(models) == {"A", "B"}
    # A: gt 1 2 3 4, pred 1 2 4 3 -> rho = 1 - 6*2/(4*15) = 0.8, Pearson 4/5 = 0.8; B reversed -> -1
    assert models["A"]["srcc"] == pytest.approx(0.8) and models["A"]["plcc"] == pytest.approx(0.8)
    assert models["B"]["srcc"] == pytest.approx(-1.0) and models["B"]["plcc"] == pytest.approx(-1.0)
    assert (models["A"]["images"], models["A"]["elements"], models["A"]["acc"]) == (4, 5, pytest.approx(0.4))
    assert (models["B"]["images"], models["B"]["elements"], models["B"]["acc"]) == (4, 5, pytest.approx(0.6))

    types = {r["group"]: r for r in ex.data["types"]}
    # t1: gt 1 2 1 2 vs pred 1 2 4 3 -> both correlations 0; t2: gt 3 4 3 4 vs pred 4 3 2 1 -> -1/sqrt(5)
    assert types["t1"]["srcc"] == pytest.approx(0.0, abs=1e-12) and types["t1"]["plcc"] == pytest.approx(0, abs=1e-12)
    assert types["t2"]["srcc"] == pytest.approx(-1 / np.sqrt(5)) and types["t2"]["plcc"] == pytest.approx(-1 / 5 ** .5)
    assert (types["t1"]["elements"], types["t1"]["acc"]) == (6, pytest.approx(3 / 6))  # red, dog, three wrong
    assert (types["t2"]["elements"], types["t2"]["acc"]) == (4, pytest.approx(2 / 4))  # blue, on wrong


def test_align_rank_errors_and_missing_groups(tmp_path) -> None:
    case = [(p.replace("/", "-"), None, g, q, el) for p, _, g, q, el in ALIGN_CASE]  # no folders, no types
    zip_path, ref = _align_files(tmp_path, case)
    data = json.loads((tmp_path / "eval.json").read_text())
    for rec in data:
        del rec["type"]
    (tmp_path / "eval.json").write_text(json.dumps(data))
    ex = explain(zip_path, ref, "align", top=3)
    assert ex.data["models"] == [] and ex.data["types"] == []
    # B-1: reference rank 1.5 (tied 1s), predicted rank 7.5 (tied 4s) -> +6; B-4 the reverse -> -6; then A-3 +2
    first = ex.data["rank_errors"][0]
    gt_rank, pred_rank = stats.rankdata([g for *_, g, _, _ in case]), stats.rankdata([q for *_, q, _ in case])
    errors = pred_rank - gt_rank
    assert len(ex.data["rank_errors"]) == 3
    assert abs(first["rank_error"]) == np.abs(errors).max() == 6
    assert [r["rank_error"] for r in ex.data["rank_errors"]] == sorted(errors, key=lambda e: -abs(e))[:3] == [6, -6, 2]
    assert [r["name"] for r in ex.data["rank_errors"]] == ["B-1.png", "B-4.png", "A-3.png"]


def test_headline_is_exactly_scores(tmp_path) -> None:
    sub, ref = random_align(300, seed=4)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    zip_path = align_zip(tmp_path / "s.zip", sub)
    assert explain(zip_path, tmp_path / "eval.json", "align").result.to_dict() == \
        score(zip_path, tmp_path / "eval.json", "align").to_dict()
    ssub, sref = random_structure(12, seed=2)
    (tmp_path / "gt.pkl").write_bytes(pickle.dumps(sref))
    szip = structure_zip(tmp_path / "t.zip", ssub)
    assert explain(szip, tmp_path / "gt.pkl", "structure").result.to_dict() == \
        score(szip, tmp_path / "gt.pkl", "structure").to_dict()


def test_group_plcc_uses_the_official_fit_per_group(tmp_path) -> None:
    sub, ref = random_align(240, seed=9)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    ex = explain(align_zip(tmp_path / "s.zip", sub), tmp_path / "eval.json", "align")
    by_path = {r["img_path"]: r for r in sub}
    for row in ex.data["models"]:
        members = sorted(r["img_path"] for r in ref if r["img_path"].startswith(row["group"] + "/"))
        gt = np.array([next(r["total_score"] for r in ref if r["img_path"] == p) for p in members])
        pred = np.array([by_path[p]["total_score"] for p in members])
        assert row["srcc"] == pytest.approx(stats.spearmanr(gt, pred)[0], abs=1e-12)

        def f(x, b1, b2, b3, b4):
            return b2 + (b1 - b2) / (1 + np.exp(-(x - b3) / np.abs(b4)))

        popt, _ = optimize.curve_fit(f, gt, pred, p0=[pred.max(), pred.min(), gt.mean(), gt.std()], maxfev=100000000)
        assert row["plcc_fit"] == "logistic4_gt_to_pred"
        assert row["plcc"] == pytest.approx(stats.pearsonr(pred, f(gt, *popt))[0], abs=1e-9)


# --------------------------------------------------------------------------- calibration


def test_best_threshold_hand_case() -> None:
    out = best_threshold(np.array([1.0, 1.0, 0.0, 0.0]), np.array([0.45, 0.6, 0.3, 0.2]))
    assert out["official_acc"] == 0.75 and out["best_acc"] == 1.0
    assert out["best_threshold"] == pytest.approx(0.375)  # midpoint of the gap (0.3, 0.45]
    same = best_threshold(np.array([1.0, 0.0]), np.array([0.9, 0.1]))
    assert same["best_threshold"] == 0.5 and same["best_acc"] == same["official_acc"] == 1.0
    everything_present = best_threshold(np.array([1.0, 1.0]), np.array([0.1, 0.2]))
    assert everything_present["best_acc"] == 1.0 and everything_present["best_threshold"] == 0.1  # t <= 0.1
    nothing_present = best_threshold(np.array([0.0, 0.0]), np.array([0.7, 0.9]))
    assert nothing_present["best_acc"] == 1.0 and nothing_present["best_threshold"] > 0.9


@pytest.mark.parametrize("seed", range(6))
def test_best_threshold_is_the_brute_force_optimum(seed) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    gt = rng.integers(0, 4, n) / 3
    pred = np.round(np.clip(gt * 0.6 + rng.normal(0.1, 0.25, n), 0, 1), 2)  # ties on purpose
    out = best_threshold(gt, pred)
    candidates = np.concatenate([pred, pred + 1e-9, pred - 1e-9, [0.5, -1.0, 2.0]])
    brute = max(np.mean((gt >= 0.5) == (pred >= t)) for t in candidates)
    assert out["best_acc"] == pytest.approx(brute)
    assert np.mean((gt >= 0.5) == (pred >= out["best_threshold"])) == pytest.approx(out["best_acc"])
    assert out["official_acc"] == pytest.approx(np.mean((gt >= 0.5) == (pred >= 0.5)))


# --------------------------------------------------------------------------- Track 2, hand-computed


def _structure_case(tmp_path):
    z = lambda: np.zeros((512, 512), np.uint8)  # noqa: E731
    ref = {"a": {"score": 1.0, "pred_area": square_mask(400, 400, 10, into=square_mask(100, 100, 40))},  # 10x10 dropped
           "b": {"score": 2.0, "pred_area": square_mask(300, 300, 30, into=square_mask(10, 10, 30))},
           "c": {"score": 3.0, "pred_area": z()}}
    pa = square_mask(300, 300, 30, into=square_mask(105, 105, 40))
    for x in (20, 40, 60):
        square_mask(x, 480, 5, into=pa)  # specks of contour area 16, dropped
    sub = {"a": {"score": 1.5, "pred_area": pa}, "b": {"score": 2.5, "pred_area": z()},
           "c": {"score": 2.0, "pred_area": square_mask(200, 200, 20)}}
    (tmp_path / "gt.pkl").write_bytes(pickle.dumps(ref))
    return structure_zip(tmp_path / "sub.zip", sub), tmp_path / "gt.pkl", sub, ref


def test_structure_tables_match_the_hand_computed_case(tmp_path) -> None:
    zip_path, gt, _, _ = _structure_case(tmp_path)
    ex = explain(zip_path, gt, "structure", top=5, overlays=3)
    rows = {r["image"]: r for r in ex.data["images"]}
    got = {n: (r["gt_regions"], r["gt_missed"], r["pred_regions"], r["pred_hit"], r["pred_false"], r["pred_dropped"],
               r["gt_dropped"]) for n, r in rows.items()}
    assert got == {"a": (1, 0, 2, 1, 1, 3, 1), "b": (2, 2, 0, 0, 0, 0, 0), "c": (0, 0, 1, 0, 1, 0, 0)}
    assert ex.result.precision == pytest.approx(1 / 3) and ex.result.recall == pytest.approx(1 / 3)
    assert rows["b"]["recall_cost"] == pytest.approx(2 / 3) and rows["c"]["precision_cost"] == pytest.approx(1 / 3)
    assert [r["image"] for r in ex.data["worst_recall"]] == ["b"]
    assert [r["image"] for r in ex.data["worst_precision"]] == ["a", "c"]
    summary = ex.data["regions"]
    assert (summary["pred_dropped"], summary["images_with_pred_dropped"], summary["gt_dropped"]) == (3, 1, 1)
    assert (summary["pred_false"], summary["gt_missed"], summary["images_without_pred"]) == (2, 2, 1)
    # worst first: b (2 errors), then c and a (1 each), c's GIoU term (0) below a's
    assert [o["image"] for o in ex.data["overlays"]] == ["b", "c", "a"]
    assert all(o["background"] == "blank" for o in ex.data["overlays"])


def test_overlay_marks_matched_and_unmatched_regions(tmp_path) -> None:
    _, _, sub, ref = _structure_case(tmp_path)
    found = image_regions(sub["a"]["pred_area"], ref["a"]["pred_area"].astype(bool))
    assert (found.gt_hit, found.pred_hit) == ([True], [True, False]) or (found.gt_hit, found.pred_hit) == (
        [True], [False, True])
    assert len(found.pred_dropped) == 3 and len(found.gt_dropped) == 1
    picture = draw_overlay(found, None).astype(int)
    assert np.all(picture[315, 315] == PREDICTION_BGR)  # the cross on the false prediction's centre
    blend = lambda c: np.round(0.35 * np.array(c) + 0.65 * 244)  # noqa: E731
    assert np.abs(picture[120, 103] - blend(REFERENCE_BGR)).max() <= 1  # reference only, matched: filled
    assert np.abs(picture[125, 125] - blend(PREDICTION_BGR)).max() <= 1  # both: the prediction's fill on top
    assert np.all(picture[250, 450] == 244)  # nothing there
    photo = tmp_path / "a.png"
    cv2.imwrite(str(photo), np.full((64, 64, 3), (255, 0, 0), np.uint8))
    over = draw_overlay(found, read_background(photo)).astype(int)
    assert np.abs(over[250, 450] - [255, 102, 102]).max() <= 1  # the lightened picture shows through


def test_overlay_regions_agree_with_the_scorer(tmp_path) -> None:
    sub, ref = random_structure(30, seed=7)
    (tmp_path / "gt.pkl").write_bytes(pickle.dumps(ref))
    ex = explain(structure_zip(tmp_path / "s.zip", sub), tmp_path / "gt.pkl", "structure", overlays=30)
    imperfect = [r["image"] for r in ex.data["images"] if r["gt_missed"] + r["pred_false"] > 0]
    assert 0 < len(imperfect) < 30  # the perfect images (nothing missed, nothing false) get no overlay
    assert sorted(o["image"] for o in ex.data["overlays"]) == sorted(imperfect)
    for pic in ex.figures["overlays"]:
        row, found = pic["row"], pic["regions"]
        assert (len(found.pred), sum(found.pred_hit), len(found.gt), len(found.gt) - sum(found.gt_hit)) == \
            (row["pred_regions"], row["pred_hit"], row["gt_regions"], row["gt_missed"])
        assert (len(found.pred_dropped), len(found.gt_dropped)) == (row["pred_dropped"], row["gt_dropped"])


# --------------------------------------------------------------------------- CLI


def test_cli_json_text_and_html(tmp_path) -> None:
    zip_path, ref = _align_files(tmp_path)
    runner = CliRunner()
    res = runner.invoke(main, ["explain", str(zip_path), "--track", "align", "--ref", str(ref), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    scored = json.loads(runner.invoke(main, ["score", str(zip_path), "--track", "align", "--ref", str(ref),
                                             "--json"]).output)
    assert data["headline"] == scored
    assert data["categories"][0]["category"] == "color" and data["calibration"]["elements"] == 10
    page = tmp_path / "out" / "report.html"
    res = runner.invoke(main, ["explain", str(zip_path), "--track", "align", "--ref", str(ref), "--out", str(page)])
    assert res.exit_code == 0, res.output
    assert "Element accuracy per category" in res.output and "costliest category: color" in res.output.lower()
    assert page.read_text().startswith("<!DOCTYPE html>") and list(page.parent.iterdir()) == [page]


def test_cli_errors(tmp_path) -> None:
    zip_path, ref = _align_files(tmp_path)
    runner = CliRunner()
    bad = align_zip(tmp_path / "bad.zip", [{"img_path": "A/1.png", "total_score": 1, "element_score": {}}])
    res = runner.invoke(main, ["explain", str(bad), "--track", "align", "--ref", str(ref)])
    assert res.exit_code == 1 and "misses 7 image(s)" in res.output and "Traceback" not in res.output
    (tmp_path / "broken.json").write_text("[{")
    res = runner.invoke(main, ["explain", str(zip_path), "--track", "align", "--ref", str(tmp_path / "broken.json"),
                               "--json"])
    assert res.exit_code == 2 and json.loads(res.output)["error"] == "reference"
    res = runner.invoke(main, ["explain", str(zip_path), "--track", "align", "--ref", str(ref), "--out",
                               str(tmp_path)])
    assert res.exit_code == 2  # a folder is not a file to write


# --------------------------------------------------------------------------- browser


def test_html_report_renders_in_chromium(tmp_path) -> None:
    from browser import render
    from PIL import Image

    sub, ref = random_structure(60, seed=3)
    (tmp_path / "gt.pkl").write_bytes(pickle.dumps(ref))
    images = tmp_path / "images"
    images.mkdir()
    for i, name in enumerate(sorted(ref)[:10]):
        cv2.imwrite(str(images / f"{name}.jpg"), np.full((96, 96, 3), (40 * (i % 5), 120, 200), np.uint8))
    ex = explain(structure_zip(tmp_path / "s.zip", sub), tmp_path / "gt.pkl", "structure", images=images, overlays=50)
    assert sum(o["background"] == "image" for o in ex.data["overlays"]) == \
        len({o["image"] for o in ex.data["overlays"]} & set(sorted(ref)[:10]))
    page = tmp_path / "report.html"
    page.write_text(to_html(ex))
    dom = render(page, tmp_path / "shot.png", size="1400,4000")
    for section in ("headline", "regions", "worst-recall", "worst-precision", "rank-errors", "overlays"):
        assert f'id="{section}"' in dom
    imperfect = sum(r["gt_missed"] + r["pred_false"] > 0 for r in ex.data["images"])
    assert 0 < imperfect < 60 and dom.count('class="overlay"') == dom.count("data:image/") == min(50, imperfect)
    assert dom.count('data-plot="fit"') == 1 and 'class="curve"' in dom
    shot = np.asarray(Image.open(tmp_path / "shot.png").convert("RGB")).astype(int)
    orange = np.all(np.abs(shot - [0xD9, 0x5F, 0x02]) < 30, axis=-1)  # predicted regions in the overlays
    green = np.all(np.abs(shot - [0x1B, 0x9E, 0x77]) < 30, axis=-1)  # reference regions
    assert orange.sum() > 300 and green.sum() > 300

    asub, aref = random_align(120, seed=5)
    (tmp_path / "eval.json").write_text(json.dumps(aref))
    apage = tmp_path / "align.html"
    apage.write_text(to_html(explain(align_zip(tmp_path / "a.zip", asub), tmp_path / "eval.json", "align")))
    adom = render(apage, tmp_path / "ashot.png")
    for section in ("headline", "categories", "models", "calibration", "rank-errors"):
        assert f'id="{section}"' in adom
    assert adom.count('data-plot="categories"') == adom.count('data-plot="calibration"') == 1
    n_categories = len({k.rsplit("(", 1)[1] for r in aref for k in r["element_score"]})
    table = adom.split('id="categories"')[1].split("</table>")[0]
    assert table.count("<tr>") == n_categories + 1  # the heading row and one per category
