"""The one dataset layer on the released layouts: detection, explicit pieces, errors, items, and the data commands.

The folders are built here in exactly the released formats (tests/real_layouts.py).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from real_layouts import write_track1_root, write_track2_root

from ntire_t2iqa.cli import main
from ntire_t2iqa.data import ChallengePaths, SynthSize, synthesize
from ntire_t2iqa.data.build_ref import build_structure_targets, graded_map
from ntire_t2iqa.data.sources import DataLayoutError, SplitFiles, locate
from ntire_t2iqa.tracks import align as align_track
from ntire_t2iqa.tracks import structure as structure_track

data_layer = pytest.importorskip("ntire_t2iqa_baselines.common.data")


@pytest.fixture(scope="module")
def track1(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("t1") / "evalmuse"
    return root, write_track1_root(root)


@pytest.fixture(scope="module")
def track2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("t2") / "structure"
    return root, write_track2_root(root)


def test_layouts_are_detected_per_track(track1, track2, tmp_path):
    (r1, _), (r2, _) = track1, track2
    assert locate(r1, "align").layout.startswith("EvalMuse-40K")
    assert locate(r2, "structure").layout == "EvalMuse-Structure"
    assert locate(r1, "align").annotations("val") == r1 / "val" / "val.json"
    assert locate(r2, "structure").images("test") == r2 / "test" / "images"
    with pytest.raises(DataLayoutError) as info:
        locate(r2, "align")
    text = str(info.value)
    assert text.startswith("data error:") and "train_list.json" in text and "val/val.json" in text
    assert "looks like a Track 2" in text and "--train-annotations" in text
    with pytest.raises(DataLayoutError, match=r"subfolder 'evalmuse' fits: pass --data"):
        locate(r1.parent, "align")
    synth = tmp_path / "synth"
    synthesize(synth, seed=1, size=SynthSize((2, 4, 4), 1, (0, 4, 4)), workers=1, progress=False)
    assert locate(synth / "align", "align").layout == "synthetic"
    assert locate(synth, "structure").inputs("val") == ChallengePaths(synth).structure_inputs("val")


def test_explicit_pieces_replace_and_missing_ones_are_named(track1, tmp_path):
    root, _ = track1
    moved = tmp_path / "elsewhere" / "pictures"
    moved.mkdir(parents=True)
    for f in (root / "val" / "images").iterdir():
        (moved / f.name).write_bytes(f.read_bytes())
    source = locate(None, "align", {"val": SplitFiles(root / "val" / "val.json", moved)})
    assert source.layout == "explicit" and data_layer.align_items(source, "val")[0].image_file.parent == moved
    with pytest.raises(DataLayoutError, match=r"no Track 1 .* training annotations.*--train-annotations"):
        source.annotations("train")
    mixed = locate(root, "align", {"test": SplitFiles(images=moved)})
    assert mixed.annotations("test") == root / "test" / "test.json" and mixed.images("test") == moved
    with pytest.raises(DataLayoutError, match="name no Track 2"):
        locate(None, "structure")


def test_track1_items_keep_val_and_test_apart(track1):
    root, records = track1
    train = data_layer.align_items(root, "train")
    assert len(train) == 15 and train[0].model == "SDXL-Turbo" and train[0].image_file.is_file()
    by_path = {it.img_path: it for it in train}
    six = next(r for r in records["train"] if len(r["total_score"]) == 6)
    assert by_path[six["img_path"]].total == pytest.approx(np.mean(six["total_score"]))
    nested = next(it for it in train if "cat (with a tiny hat) (animal)" in it.elements)
    assert data_layer.split_element("cat (with a tiny hat) (animal)") == ("cat (with a tiny hat)", "animal")
    assert data_layer.split_element("wizard (animal/human)") == ("wizard", "animal/human")
    assert nested.element_scores is not None and set(nested.element_scores) == set(nested.elements)
    assert any(it.elements == [] for it in train)  # "element_score": {}
    val, test = data_layer.align_items(root, "val"), data_layer.align_items(root, "test")
    assert [it.img_path for it in val] == [it.img_path for it in test]  # same names ...
    for a, b in zip(val, test):  # ... different files and records
        assert a.image_file.parent == root / "val" / "images" and b.image_file.parent == root / "test" / "images"
        assert a.image_file.read_bytes() != b.image_file.read_bytes()
    assert "joy (emotion)" in val[1].elements and val[0].total is None and val[0].model == ""


def test_track2_items_targets_and_the_unannotated_image(track2, capfd):
    root, raw = track2
    items = data_layer.structure_items(root, "train", targets=("mask", "graded"))
    assert len(items) == 8 and all(it.image_file.suffix == ".jpg" for it in items)
    assert "1 training image(s) with no annotator" in capfd.readouterr().err
    lonely = next(it for it in items if it.name == "0005_f")
    assert not lonely.mask.any() and not lonely.graded.any()
    for it in items:
        with Image.open(it.image_file) as im:
            width, height = im.size
        # upstream's data_process.py, written out independently: per annotator a 0/1 map, summed, levels
        votes = np.zeros((height, width))
        for person in raw["train"][it.name]["bbox_info"]:
            mask = np.zeros((height, width))
            for shape in person:
                if shape["bbox_type"] == 1:
                    tl, br = shape["bbox"]
                    mask[tl["y"]:br["y"], tl["x"]:br["x"]] = 1
                else:
                    cv2.fillPoly(mask, [np.array(shape["bbox"], np.int32)], 1)
            votes += mask
        levels = votes.astype(np.uint8)
        for count, level in ((1, 64), (2, 127), (3, 180), (4, 255)):
            levels[votes == count] = level
        assert np.array_equal(it.graded, cv2.resize(levels, (512, 512)))
        assert np.array_equal(it.mask, cv2.resize((votes >= 2).astype(np.uint8), (512, 512),
                                                  interpolation=cv2.INTER_NEAREST))
        assert it.mos == raw["train"][it.name]["mos"] and it.prompt == raw["train"][it.name]["prompt_en"]
    assert any(it.mask.any() for it in items) and any((it.graded == 64).any() for it in items)
    assert graded_map(np.full((4, 4), 6, np.uint8)).max() == 255  # five or more annotators: 255
    val, test = data_layer.structure_items(root, "val"), data_layer.structure_items(root, "test")
    assert [it.name for it in val] == [it.name for it in test] == ["00000", "00001", "00002"]
    assert val[0].prompt.startswith("val prompt") and test[0].image_file.parent == root / "test" / "images"
    assert build_structure_targets(root / "train" / "train_info.json", root / "train" / "images",
                                   ("graded",))["0001_b"].keys() == {"score", "graded"}


def test_missing_images_are_counted_with_the_option(track2, tmp_path):
    root, _ = track2
    empty = tmp_path / "no_images"
    empty.mkdir()
    source = locate(root, "structure", {"val": SplitFiles(images=empty)})
    with pytest.raises(DataLayoutError, match=r"lacks 3 of the 3 images .*'00000'.*--images DIR"):
        data_layer.structure_items(source, "val")


def test_validate_inputs_takes_the_split_folders(track1, track2):
    (r1, rec1), (r2, _) = track1, track2
    expected = align_track.load_expected(r1 / "val")
    assert list(expected) == [r["img_path"] for r in rec1["val"]] and "joy (emotion)" in expected["img_0002.png"]
    assert structure_track.load_expected(r2 / "val") == ["00000", "00001", "00002"]
    assert structure_track.load_expected(r2 / "val" / "images") == ["00000", "00001", "00002"]
    moved = r2.parent / "val_without_info"
    (moved / "images").mkdir(parents=True)
    for f in (r2 / "val" / "images").iterdir():
        (moved / "images" / f.name).write_bytes(f.read_bytes())
    assert structure_track.load_expected(moved) == ["00000", "00001", "00002"]


def test_data_commands_take_the_roots(track1, track2, tmp_path):
    (r1, rec1), (r2, _) = track1, track2
    runner = CliRunner()
    res = runner.invoke(main, ["data", "folds", str(r2), "--k", "2"])
    assert res.exit_code == 0, res.output
    folds = json.loads((r2 / "train" / "folds.json").read_text())
    assert folds["track"] == "structure" and folds["n_images"] == 8
    res = runner.invoke(main, ["data", "folds", str(r1), "--k", "3"])
    assert res.exit_code == 0, res.output
    assert json.loads((r1 / "folds.json").read_text())["n_images"] == len(rec1["train"])
    res = runner.invoke(main, ["data", "build-ref", str(r2), "--out", str(tmp_path / "gt.pkl")])
    assert res.exit_code == 0, res.output
    assert "no annotator" in res.output and "1 with no annotator (empty mask)" in res.output
    gt = pickle.loads((tmp_path / "gt.pkl").read_bytes())
    assert len(gt) == 8 and not gt["0005_f"]["pred_area"].any() and gt["0001_b"]["pred_area"].any()
    res = runner.invoke(main, ["data", "build-ref", str(r1), "--out", str(tmp_path / "eval.json")])
    assert res.exit_code == 0, res.output
    assert len(json.loads((tmp_path / "eval.json").read_text())) == 15
    res = runner.invoke(main, ["data", "build-ref", str(r1 / "val"), "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "looked in it for" in res.output and "train_list.json" in res.output


def test_one_annotator_hint_is_consistent(tmp_path):
    info = {"solo": {"prompt_en": "p", "mos": 3, "bbox_info": [[{"bbox_type": 1, "bbox": [{"x": 1, "y": 1},
                                                                                        {"x": 9, "y": 9}]}]]}}
    (tmp_path / "info.json").write_text(json.dumps(info))
    Image.new("RGB", (32, 32)).save(tmp_path / "solo.jpg")
    runner = CliRunner()
    args = ["data", "build-ref", str(tmp_path / "info.json"), "--out", str(tmp_path / "g.pkl"),
            "--images", str(tmp_path)]
    res = runner.invoke(main, args)
    assert res.exit_code == 2 and "1 annotator(s)" in res.output and "--min-votes 1 or less" in res.output
    res = runner.invoke(main, [*args, "--min-votes", "1"])
    assert res.exit_code == 0, res.output
    assert pickle.loads((tmp_path / "g.pkl").read_bytes())["solo"]["pred_area"].any()
