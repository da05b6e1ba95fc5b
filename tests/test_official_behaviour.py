"""Files shaped like real ones get the official program's answer: the shape-dependent mask dtype rule (taken from
the installed OpenCV), a UTF-8 BOM, a graded reference in GIoU, heatmaps, reversed scores, keys without their
category suffix, validation without inputs, and a UTF-16 readme."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import align_zip, random_align, random_structure, square_mask, structure_zip, write_zip
from naive_official import fitted_plcc, score_structure
from scipy import stats

from ntire_t2iqa import score, validate
from ntire_t2iqa.cli import main
from ntire_t2iqa.regions import prediction_mask
from ntire_t2iqa.tracks.common import README_TEMPLATE

DTYPES = ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "uint64", "float16", "float32",
          "float64"]
SHAPES = [(512, 512), (448, 448), (512, 448), (300, 700), (1024, 1024)]


def _opencv_scores(dtype: str, shape: tuple[int, int]) -> bool:
    """Whether the official step 1, ``cv2.resize(mask, (512, 512)) > 0``, runs on this OpenCV."""
    try:
        _ = cv2.resize(np.zeros(shape, dtype), (512, 512)) > 0
    except cv2.error:
        return False
    return True


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("dtype", DTYPES)
def test_mask_dtype_rule_is_what_the_installed_opencv_does(dtype: str, shape: tuple[int, int]) -> None:
    accepted = _opencv_scores(dtype, shape)
    mask = np.zeros(shape, dtype)
    mask[10:60, 20:90] = 1
    report = validate({"img": {"score": 1.0, "pred_area": mask}}, "structure")
    assert report.valid == accepted, (cv2.__version__, report.problems)
    if not accepted:
        assert "mask.astype(np.uint8)" in str(report.errors[0])


def test_the_rule_depends_on_the_shape_as_documented() -> None:
    """What docs/scoring.md says (seen on OpenCV 4.5.5 to 5.0) holds on the OpenCV installed here."""
    for dtype in ("int8", "int32", "int64", "float16"):
        assert _opencv_scores(dtype, (512, 512)) and not _opencv_scores(dtype, (448, 448)), dtype
    assert not any(_opencv_scores("bool", s) for s in SHAPES)


def test_integer_masks_at_512_score_as_the_official_program(tmp_path: Path) -> None:
    """``np.where(m > t, 1, 0)`` (int64) at 512 x 512 is scored; OpenCV hands it on as int32, its low 32 bits, so
    2**32 counts as 0 and 2**31 as negative, exactly as in the official program."""
    sub, ref = random_structure(12, seed=31, pred_size=512)
    odd = {}
    for i, (name, entry) in enumerate(sub.items()):
        mask = np.where(entry["pred_area"] > 0, 1, 0)  # int64
        if i % 3 == 1:
            mask[mask == 1] = 2 ** 32  # all of it becomes 0 through OpenCV's int32 conversion
        elif i % 3 == 2:
            mask[:100][mask[:100] == 1] = 2 ** 31  # -2**31 after conversion: not > 0
        odd[name] = {"score": entry["score"], "pred_area": mask if i % 4 else mask.astype(np.int8 if i % 3 == 0
                                                                                          else np.int64)}
    gt = tmp_path / "gt.pkl"
    gt.write_bytes(pickle.dumps(ref))
    got = score(structure_zip(tmp_path / "odd.zip", odd), gt, track="structure")
    official = score_structure(odd, ref)  # the plain official program: cv2.resize(pred_area, (512, 512)) > 0
    for key, value in official.items():
        assert got.to_dict()[key] == pytest.approx(value, abs=1e-9), key
    step1 = {n: {"score": e["score"], "pred_area": (cv2.resize(e["pred_area"], (512, 512)) > 0).astype(np.uint8)}
             for n, e in odd.items()}
    assert got.to_dict() == score(structure_zip(tmp_path / "step1.zip", step1), gt, track="structure").to_dict()
    assert not step1[list(odd)[1]]["pred_area"].any()  # the 2**32 mask is empty for the official program


def test_output_json_with_a_bom_warns_that_the_official_program_fails(tmp_path: Path) -> None:
    sub, ref = random_align(6, seed=32)
    data = b"\xef\xbb\xbf" + json.dumps(sub).encode()
    with pytest.raises(json.JSONDecodeError, match="Unexpected UTF-8 BOM"):  # what the official json.load meets
        json.loads(data.decode("utf-8"))
    zip_path = write_zip(tmp_path / "s.zip", {"output.json": data, "readme.txt": README_TEMPLATE.encode()})
    report = validate(zip_path, "align")
    assert report.valid
    (bom,) = [p for p in report.warnings if "byte-order mark" in p.what]
    assert "Unexpected UTF-8 BOM" in bom.what and "encoding='utf-8'" in bom.fix
    assert not any("byte-order mark" in p.what for p in validate(align_zip(tmp_path / "p.zip", sub), "align").problems)


def test_giou_with_a_graded_reference_counts_only_pixels_equal_to_1(tmp_path: Path) -> None:
    ref = {
        "a": {"score": 1.0, "pred_area": square_mask(100, 100, 40, value=255)},   # no pixel equals 1
        "b": {"score": 2.0, "pred_area": square_mask(100, 100, 40)},              # 0/1
        "c": {"score": 3.0, "pred_area": square_mask(230, 200, 30, value=64, into=square_mask(200, 200, 30))},  # 1, 64
        "d": {"score": 4.0, "pred_area": np.zeros((512, 512), np.uint8)},
        "e": {"score": 5.0, "pred_area": square_mask(300, 300, 20, value=180)},
    }
    sub = {
        "a": {"score": 1.2, "pred_area": square_mask(100, 100, 40)},
        "b": {"score": 1.9, "pred_area": square_mask(100, 100, 40)},
        "c": {"score": 3.3, "pred_area": square_mask(200, 200, 60)},  # covers both levels: 60 x 30 of the 60 x 60
        "d": {"score": 3.8, "pred_area": np.zeros((512, 512), np.uint8)},
        "e": {"score": 5.1, "pred_area": square_mask(300, 300, 20)},
    }
    (tmp_path / "gt.pkl").write_bytes(pickle.dumps(ref))
    got = score(sub, tmp_path / "gt.pkl", track="structure", plcc_fit="none")
    eps = 1e-4
    by_hand = [eps / (1600 + eps), 1.0, (900 + eps) / (3600 + eps), 1.0, eps / (400 + eps)]
    assert got.giou == pytest.approx(np.mean(by_hand), abs=1e-15)
    independent = []  # the rule written out: P = resized prediction > 0, G = reference == 1
    for name in ref:
        p = cv2.resize(sub[name]["pred_area"], (512, 512)) > 0
        g = ref[name]["pred_area"] == 1
        independent.append((np.sum(p & g) + eps) / (np.sum(p | g) + eps))
    assert got.giou == pytest.approx(float(np.mean(independent)), abs=1e-15)
    binary = {n: {"score": e["score"], "pred_area": (e["pred_area"] > 0).astype(np.uint8)} for n, e in ref.items()}
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "gt.pkl").write_bytes(pickle.dumps(binary))
    plain = score(sub, tmp_path / "bin" / "gt.pkl", track="structure", plcc_fit="none")
    assert (got.f1, got.precision, got.recall, got.srcc, got.plcc) == \
        (plain.f1, plain.precision, plain.recall, plain.srcc, plain.plcc)  # regions use every nonzero pixel
    assert plain.giou == pytest.approx(np.mean([1.0, 1.0, (1800 + eps) / (3600 + eps), 1.0, 1.0]), abs=1e-15)
    (note,) = [w for w in got.warnings if w.startswith("GIoU")]
    assert "3 of the reference's 5 masks" in note and "equal to 1" in note
    assert not any(w.startswith("GIoU") for w in plain.warnings)


def test_heatmaps_and_mostly_marked_masks_are_warned_about() -> None:
    rng = np.random.default_rng(33)
    heat = np.zeros((448, 448), np.float32)
    heat[100:160, 100:200] = 0.9
    heat += rng.uniform(0.0, 0.02, heat.shape).astype(np.float32)  # a small noise floor
    assert prediction_mask(heat).all()  # after the official `> 0`, one region: the whole image
    wide = np.zeros((448, 448), np.uint8)
    wide[:, :300] = 1  # 67% of the pixels
    few_levels = np.zeros((448, 448), np.uint8)
    few_levels[50:90, 50:90] = np.arange(1, 11, dtype=np.uint8).repeat(4)[None, :]  # 10 levels: not a heatmap
    preds = {"heat": heat, "wide": wide, "binary255": (heat > 0.5).astype(np.uint8) * 255, "few": few_levels}
    report = validate({n: {"score": 1.0, "pred_area": m} for n, m in preds.items()}, "structure")
    assert report.valid
    (note,) = [p for p in report.warnings if "heatmaps" in p.what]
    assert note.what.startswith("2 mask(s) look like heatmaps")
    assert "'heat': 4,096+ distinct non-zero values" in note.what and "'wide': 67% of pixels above 0" in note.what
    assert "Threshold your heatmap first" in note.fix


def test_reversed_scores_keep_the_official_plcc_and_warn(tmp_path: Path) -> None:
    sub, ref = random_align(60, seed=34)
    for s, r in zip(sub, ref):
        s["total_score"] = 6 - r["total_score"]
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    got = score(sub, tmp_path / "eval.json", track="align")
    paths = sorted(r["img_path"] for r in ref)
    gt = np.array([next(r["total_score"] for r in ref if r["img_path"] == p) for p in paths])
    assert got.srcc == pytest.approx(stats.spearmanr(gt, 6 - gt)[0], abs=1e-12) == -1.0
    assert got.plcc == pytest.approx(fitted_plcc(gt, 6 - gt), abs=1e-9) and got.plcc > 0.999
    (note,) = [w for w in got.warnings if "opposite signs" in w]
    assert "SRCC (-1.0000) and PLCC (+1.0000)" in note
    sub2, _ = random_align(60, seed=34)
    assert not any("opposite signs" in w for w in score(sub2, tmp_path / "eval.json", track="align").warnings)


def test_keys_without_the_category_suffix_get_one_diagnosis(tmp_path: Path) -> None:
    sub, ref = random_align(60, seed=35, n_elements=(1, 4))
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    bare = [{**s, "element_score": {k.rsplit(" (", 1)[0]: v for k, v in s["element_score"].items()}} for s in sub]
    report = validate(bare, "align", inputs=tmp_path / "eval.json")
    (only,) = report.errors
    first = bare[0]["img_path"]
    key = next(iter(sub[0]["element_score"]))
    assert only.what == (f"your element keys lack the category suffix in 60 record(s): e.g. "
                         f"{key.rsplit(' (', 1)[0]!r} for {key!r} (img_path {first!r}).")
    assert not report.warnings  # the bare keys are explained, not also listed as ignored extras
    bare[5]["element_score"] = {}  # this record misses keys for another reason
    report = validate(bare, "align", inputs=tmp_path / "eval.json")
    assert [e.what.split(":")[0] for e in report.errors] == [
        "'element_score' misses " + ", ".join(repr(k) for k in sub[5]["element_score"]) + ".",
        "your element keys lack the category suffix in 59 record(s)"]
    no_inputs = validate(bare, "align")
    assert no_inputs.valid and not no_inputs.coverage_checked
    assert any("lack the category suffix" in p.what for p in no_inputs.warnings)
    assert not any("suffix" in p.what for p in validate(sub, "align").problems)


def test_validate_without_inputs_says_coverage_was_not_checked(tmp_path: Path) -> None:
    sub, ref = random_align(5, seed=36)
    zip_path = align_zip(tmp_path / "s.zip", sub)
    (tmp_path / "inputs.json").write_text(json.dumps(ref))
    res = CliRunner().invoke(main, ["validate", str(zip_path), "--track", "align"])
    assert res.exit_code == 0 and "Coverage was not checked" in res.output and "--inputs" in res.output
    res = CliRunner().invoke(main, ["validate", str(zip_path), "--track", "align", "--json"])
    assert json.loads(res.stdout)["coverage_checked"] is False
    res = CliRunner().invoke(main, ["validate", str(zip_path), "--track", "align", "--inputs",
                                    str(tmp_path / "inputs.json")])
    assert res.exit_code == 0 and "not checked" not in res.output


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-16-le"])
def test_utf16_readme_is_refused_with_that_diagnosis(encoding: str, tmp_path: Path) -> None:
    """Notepad's "Unicode" is UTF-16 with a byte-order mark; without one it still shows in its zero bytes."""
    sub, _ = random_align(4, seed=37)
    data = README_TEMPLATE.encode(encoding)
    # A program that reads readme.txt as UTF-8 fails on it, or reads no key of the template from it.
    assert "runtime per image" not in data.decode("utf-8", "replace")
    if encoding == "utf-16":
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
    zip_path = write_zip(tmp_path / "s.zip", {"output.json": json.dumps(sub).encode(), "readme.txt": data})
    report = validate(zip_path, "align")
    (problem,) = report.errors
    assert "is UTF-16 text" in problem.what and "Notepad" in problem.what and "UTF-8" in problem.fix
    res = CliRunner().invoke(main, ["validate", str(zip_path), "--track", "align"])
    assert res.exit_code == 1 and "UTF-16" in res.output


def test_metric_warnings_reach_python_callers_through_the_warnings_module() -> None:
    from ntire_t2iqa import metrics

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert metrics.srcc([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]) == 0.0
    assert [w.category for w in caught] == [metrics.MetricWarning]
    assert "predicted scores are all equal" in str(caught[0].message)
