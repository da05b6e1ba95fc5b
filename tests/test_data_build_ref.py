"""build-ref on hand-made annotations: hand-computed masks and averages, errors that name the image."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ntire_t2iqa import load_reference
from ntire_t2iqa.cli import main
from ntire_t2iqa.data import AnnotationError, build_align_reference, build_structure_reference


def rect(x0, y0, x1, y1):
    return {"bbox_type": 1, "bbox": [{"x": x0, "y": y0}, {"x": x1, "y": y1}]}


def poly(*points):
    return {"bbox_type": 2, "bbox": [list(p) for p in points]}


def build(tmp_path, entries, sizes, **kw):
    raw = tmp_path / "info.json"
    raw.write_text(json.dumps({n: {"prompt_en": "p", "mos": 3, **e} for n, e in entries.items()}))
    return build_structure_reference(raw, None, tmp_path / "gt.pkl", sizes=sizes, **kw)


def test_two_overlapping_rectangles_of_three_annotators_give_exactly_the_overlap(tmp_path):
    ann = [[rect(10, 10, 50, 40)], [rect(30, 20, 70, 60)], []]
    gt = build(tmp_path, {"a": {"bbox_info": ann}}, {"a": (512, 512)})
    expected = np.zeros((512, 512), np.uint8)
    expected[20:40, 30:50] = 1  # x 30..49, y 20..39: marked by annotators 0 and 1
    assert np.array_equal(gt["a"]["pred_area"], expected)
    assert gt["a"]["pred_area"].dtype == np.uint8 and gt["a"]["score"] == 3.0
    ref = load_reference(tmp_path / "gt.pkl", "structure")  # the scorer's own (restricted) loader
    assert np.array_equal(ref.masks["a"], expected.astype(bool))


def test_rasterised_at_the_images_own_size_then_resized_nearest(tmp_path):
    ann = [[rect(0, 0, 64, 64)], [rect(32, 32, 96, 96)], [rect(200, 100, 250, 120)]]
    gt = build(tmp_path, {"wide": {"bbox_info": ann}}, {"wide": (256, 128)})  # width 256, height 128
    expected = np.zeros((512, 512), np.uint8)
    expected[128:256, 64:128] = 1  # overlap x 32..63 (x2), y 32..63 (x4); the lone third box is dropped
    assert np.array_equal(gt["wide"]["pred_area"], expected)


def test_min_votes_and_polygons(tmp_path):
    square = poly((10, 10), (29, 10), (29, 29), (10, 29))  # fillPoly includes the boundary: 20 x 20
    ann = [[square], [square], [rect(10, 10, 30, 30), rect(100, 100, 140, 140)]]
    gt = build(tmp_path, {"p": {"bbox_info": ann}}, {"p": (512, 512)}, min_votes=3)
    assert gt["p"]["pred_area"].sum() == 400 and gt["p"]["pred_area"][10:30, 10:30].all()
    gt1 = build(tmp_path, {"p": {"bbox_info": ann}}, {"p": (512, 512)}, min_votes=1)
    assert gt1["p"]["pred_area"].sum() == 400 + 1600


def test_shapes_are_clamped_to_the_image(tmp_path):
    ann = [[rect(-20, -20, 10, 10)], [poly((-10, -10), (9, -10), (9, 9), (-10, 9))],
           [rect(500, 500, 600, 600)], [rect(505, 490, 520, 530)]]
    gt = build(tmp_path, {"c": {"bbox_info": ann, "mos": [2, 3, 4, 5]}}, {"c": (512, 512)})
    expected = np.zeros((512, 512), np.uint8)
    expected[:10, :10] = 1
    expected[500:512, 505:512] = 1
    assert np.array_equal(gt["c"]["pred_area"], expected)
    assert gt["c"]["score"] == 3.5  # a list of MOS values is averaged


def test_image_sizes_are_read_from_the_files(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (100, 50)).save(images / "small.jpg")
    raw = tmp_path / "info.json"
    raw.write_text(json.dumps({"small": {"prompt_en": "p", "mos": 4.25,
                                         "bbox_info": [[rect(0, 0, 50, 25)], [rect(0, 0, 50, 25)], []]}}))
    gt = build_structure_reference(raw, images, tmp_path / "gt.pkl")
    expected = np.zeros((512, 512), np.uint8)
    expected[:256, :256] = 1  # the left half of the top half
    assert np.array_equal(gt["small"]["pred_area"], expected) and gt["small"]["score"] == 4.25


def test_bad_annotations_are_all_reported_by_image(tmp_path):
    entries = {
        "bad_type": {"bbox_info": [[{"bbox_type": 3, "bbox": []}], [], []]},
        "flat": {"bbox_info": [[rect(10, 10, 10, 40)], [], []]},
        "no_mos": {"bbox_info": [[], [], []], "mos": None},
        "two_points": {"bbox_info": [[poly((1, 1), (5, 5))], [], []]},
        "outside": {"bbox_info": [[rect(600, 600, 700, 700)], [], []]},
        "no_field": {"bbox_info": [[{"bbox": [{"x": 1, "y": 1}, {"x": 5, "y": 5}]}], [], []]},
        "lonely": {"bbox_info": [[rect(1, 1, 9, 9)]]},
        "fine": {"bbox_info": [[rect(1, 1, 9, 9)], [rect(1, 1, 9, 9)], []]},
    }
    raw = tmp_path / "info.json"
    raw.write_text(json.dumps({n: {"prompt_en": "p", "mos": 3, **e} for n, e in entries.items()}))
    with pytest.raises(AnnotationError) as info:
        build_structure_reference(raw, None, tmp_path / "gt.pkl", sizes={n: (512, 512) for n in entries})
    problems = dict(info.value.problems)
    assert "unknown bbox_type 3" in problems["image 'bad_type', annotator 0, shape 0"]
    assert "degenerate" in problems["image 'flat', annotator 0, shape 0"]
    assert "'mos' must be a finite number" in problems["image 'no_mos'"]
    assert "at least 3 points" in problems["image 'two_points', annotator 0, shape 0"]
    assert "outside the 512 x 512 image" in problems["image 'outside', annotator 0, shape 0"]
    assert "no 'bbox_type'" in problems["image 'no_field', annotator 0, shape 0"]
    assert "1 annotator(s)" in problems["image 'lonely'"]
    assert not any("'fine'" in where for where in problems) and len(problems) == 7
    assert "image 'flat'" in str(info.value) and not (tmp_path / "gt.pkl").exists()
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"ghost": {"prompt_en": "p", "mos": 3, "bbox_info": [[], [], []]}}))
    with pytest.raises(AnnotationError, match="image 'ghost': has no readable image"):
        build_structure_reference(missing, tmp_path, None)


def test_align_votes_are_averaged_by_hand(tmp_path):
    raw = [{"prompt_id": "0", "prompt": "a red cat", "type": "one-group", "img_path": "M/00001.png",
            "total_score": [3, 4, 5], "element_score": {"red (color)": [1, 0, 1], "cat (animal)": [0, 0, 0]},
            "promt_meaningless": [0, 0, 0], "fidelity_label": [0, 1, 1]},
           {"prompt_id": "0", "prompt": "a red cat", "img_path": "N/00002.png", "total_score": [1, 1, 2],
            "element_score": {"red (color)": [1, 1, 1], "cat (animal)": [1, 1, 0]}}]
    (tmp_path / "raw.json").write_text(json.dumps(raw))
    records = build_align_reference(tmp_path / "raw.json", tmp_path / "eval.json")
    assert records[0]["total_score"] == 4.0 and records[1]["total_score"] == pytest.approx(4 / 3)
    assert records[0]["element_score"] == {"red (color)": pytest.approx(2 / 3), "cat (animal)": 0.0}
    assert records[0]["fidelity_label"] == pytest.approx(2 / 3) and records[0]["prompt"] == "a red cat"
    ref = load_reference(tmp_path / "eval.json", "align")
    assert ref["N/00002.png"].elements == {"red (color)": 1.0, "cat (animal)": pytest.approx(2 / 3)}


def test_bad_align_records_name_the_image(tmp_path):
    raw = [{"img_path": "M/1.png", "element_score": {"x (object)": [1, 0, 1]}},
           {"img_path": "M/2.png", "total_score": [3, 3, 3], "element_score": {"x (object)": [1, 2, 0]}},
           {"total_score": [3], "element_score": {}},
           {"img_path": "M/4.png", "total_score": [9, 3, 3], "element_score": {}}]
    (tmp_path / "raw.json").write_text(json.dumps(raw))
    with pytest.raises(AnnotationError) as info:
        build_align_reference(tmp_path / "raw.json", tmp_path / "eval.json")
    problems = dict(info.value.problems)
    assert "is missing" in problems["image 'M/1.png' 'total_score'"]
    assert "outside 0..1" in problems["image 'M/2.png' element 'x (object)'"]
    assert "no string 'img_path'" in problems["record 2"]
    assert "outside 1..5" in problems["image 'M/4.png' 'total_score'"]
    assert not (tmp_path / "eval.json").exists()


def test_cli_build_ref(tmp_path):
    raw = [{"img_path": "M/1.png", "total_score": [2, 4], "element_score": {"x (object)": [1, 0]}}]
    (tmp_path / "raw.json").write_text(json.dumps(raw))
    runner = CliRunner()
    result = runner.invoke(main, ["data", "build-ref", str(tmp_path / "raw.json"), "--out", str(tmp_path / "e.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "e.json").read_text())[0]["element_score"] == {"x (object)": 0.5}
    info = {"img": {"prompt_en": "p", "mos": 3, "bbox_info": [[{"bbox_type": 7, "bbox": []}], []]}}
    (tmp_path / "info.json").write_text(json.dumps(info))
    result = runner.invoke(main, ["data", "build-ref", str(tmp_path / "info.json"), "--out", str(tmp_path / "g.pkl")])
    assert result.exit_code == 2 and "--images" in result.output
    Image.new("RGB", (64, 64)).save(tmp_path / "img.png")
    result = runner.invoke(main, ["data", "build-ref", str(tmp_path / "info.json"), "--out", str(tmp_path / "g.pkl"),
                                  "--images", str(tmp_path)])
    assert result.exit_code == 2 and "image 'img', annotator 0, shape 0" in result.output
    assert "unknown bbox_type 7" in result.output
