"""The synthetic challenge: official formats, the toolkit's own loaders, determinism, a real signal."""

from __future__ import annotations

import json
import pickle
import re

import cv2
import numpy as np
import pytest
from PIL import Image

from ntire_t2iqa import load_reference
from ntire_t2iqa.data import ChallengePaths, SynthSize, synthesize
from ntire_t2iqa.data import synth_align as sa
from ntire_t2iqa.data import synth_structure as ss
from ntire_t2iqa.data.align_render import PALETTE, render_scene
from ntire_t2iqa.errors import ReferenceDataError
from ntire_t2iqa.tracks import align as align_track
from ntire_t2iqa.tracks import structure as structure_track

TINY = SynthSize(align_prompts=(6, 4, 4), images_per_prompt=3, structure_images=(8, 6, 6))
CATEGORIES = {"object", "color", "counting", "spatial", "attribute", "material", "location"}
MODEL_NAMES = {m.name for m in sa.MODELS}


@pytest.fixture(scope="module")
def challenge(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "challenge"
    manifest = synthesize(root, seed=3, size=TINY, workers=1, progress=False)
    return ChallengePaths(root), manifest


def test_manifest_lists_every_file_with_its_role(challenge):
    paths, manifest = challenge
    on_disk = json.loads(paths.manifest.read_text())
    assert on_disk["files"] == manifest["files"]
    assert manifest["tracks"]["align"]["splits"]["test"] == {"prompts": 4, "images": 12,
                                                             "elements": manifest["tracks"]["align"]["splits"]
                                                             ["test"]["elements"]}
    assert manifest["tracks"]["structure"]["splits"]["val"]["images"] == 6
    for rel, role in manifest["files"].items():
        assert (paths.root / rel).exists(), rel
        hidden = rel.endswith(("_eval.json", "_gt.pkl", "val_list.json", "test_list.json", "_annotations.json"))
        assert role == ("hidden" if hidden else "public"), rel
    assert paths.is_complete()


def test_align_raw_form_matches_evalmuse(challenge):
    paths, _ = challenge
    train = json.loads(paths.align_raw("train").read_text())
    assert len(train) == 6 * 3
    for rec in train:
        assert list(rec) == ["prompt_id", "prompt", "type", "img_path", "total_score", "element_score",
                             "promt_meaningless", "split_confidence", "attribute_confidence", "fidelity_label"]
        model, file = rec["img_path"].split("/")
        assert model in MODEL_NAMES and re.fullmatch(r"\d{5}\.png", file)
        assert (paths.align_images / rec["img_path"]).is_file()
        assert len(rec["total_score"]) == 3 and all(isinstance(v, int) and 1 <= v <= 5 for v in rec["total_score"])
        for key, votes in rec["element_score"].items():
            assert re.fullmatch(r"[a-z ]+ \(([a-z]+)\)", key) and key.rsplit("(", 1)[1][:-1] in CATEGORIES
            assert len(votes) == 3 and set(votes) <= {0, 1}
            assert key.split(" (")[0] in rec["prompt"]  # element keys are words of the prompt, verbatim
        for field in ("promt_meaningless", "split_confidence", "attribute_confidence", "fidelity_label"):
            assert len(rec[field]) == 3 and set(rec[field]) <= {0, 1}
    by_prompt: dict[str, set[str]] = {}
    for rec in train:
        by_prompt.setdefault(rec["prompt_id"], set()).add(rec["img_path"].split("/")[0])
    assert all(len(models) == 3 for models in by_prompt.values())  # several images per prompt, distinct models


def test_align_files_load_with_the_toolkits_loaders(challenge):
    paths, _ = challenge
    for split in ("val", "test"):
        expected = align_track.load_expected(paths.align_inputs(split))
        reference = load_reference(paths.align_reference(split), "align")
        raw = load_reference(paths.align_raw(split), "align")  # the loader averages the raw form itself
        assert set(expected) == set(reference) == set(raw)
        for img, rec in reference.items():
            assert expected[img] == list(rec.elements)
            assert rec.total == pytest.approx(raw[img].total)
            assert rec.elements == pytest.approx(raw[img].elements)
            assert all(abs(3 * v - round(3 * v)) < 1e-9 for v in rec.elements.values())  # 3 voters
        public = json.loads(paths.align_inputs(split).read_text())
        assert all(r["total_score"] is None and set(r["element_score"].values()) <= {None} for r in public)
    prompts = {s: {r["prompt"] for r in json.loads(paths.align_raw(s).read_text())} for s in ("train", "val", "test")}
    assert not prompts["train"] & prompts["test"] and not prompts["val"] & prompts["test"]


def test_structure_files_load_with_the_toolkits_loaders(challenge):
    paths, _ = challenge
    sizes = set()
    for split in ("val", "test"):
        names = structure_track.load_expected(paths.structure_inputs(split))
        reference = load_reference(paths.structure_reference(split), "structure")
        assert names == list(reference.scores) == [f"{split}_{i:05d}" for i in range(1, 7)]
        with open(paths.structure_reference(split), "rb") as f:
            gt = pickle.load(f)
        for name in names:
            assert gt[name]["pred_area"].shape == (512, 512) and gt[name]["pred_area"].dtype == np.uint8
            assert set(np.unique(gt[name]["pred_area"])) <= {0, 1}
            assert 1.0 <= gt[name]["score"] <= 5.0
        info = json.loads(paths.structure_info(split).read_text())
        assert list(info) == names and all(set(v) == {"prompt_en"} for v in info.values())
    train = json.loads(paths.structure_raw("train").read_text())
    for name, entry in train.items():
        assert set(entry) == {"prompt_en", "mos", "bbox_info"} and len(entry["bbox_info"]) == 3
        with Image.open(paths.structure_images / f"{name}.jpg") as im:
            sizes.add(im.size)
        for shapes in entry["bbox_info"]:
            for shape in shapes:
                if shape["bbox_type"] == 1:
                    (a, b) = shape["bbox"]
                    assert set(a) == set(b) == {"x", "y"} and a["x"] < b["x"] and a["y"] < b["y"]
                else:
                    assert shape["bbox_type"] == 2 and len(shape["bbox"]) >= 3
                    assert all(len(p) == 2 and all(isinstance(v, int) for v in p) for p in shape["bbox"])
    assert sizes <= set(ss.IMAGE_SIZES) and len(sizes) > 1  # mixed sizes exercise rasterisation


def test_same_seed_same_files_whatever_the_workers(tmp_path, challenge):
    paths, _ = challenge
    other = ChallengePaths(tmp_path / "again")
    synthesize(other.root, seed=3, size=TINY, workers=2, progress=False)  # 42 Track 1 jobs: a process pool
    for rel in ("align/train_list.json", "align/test_eval.json", "structure/train_info.json"):
        assert (paths.root / rel).read_bytes() == (other.root / rel).read_bytes(), rel
    first = json.loads(paths.align_raw("train").read_text())[0]["img_path"]
    assert (paths.align_images / first).read_bytes() == (other.align_images / first).read_bytes()
    different = ChallengePaths(tmp_path / "seed4")
    synthesize(different.root, seed=4, size=TINY, workers=1, progress=False, tracks=("align",))
    assert different.align_raw("train").read_bytes() != paths.align_raw("train").read_bytes()
    assert not different.structure.exists()


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(ReferenceDataError, match="not empty"):
        synthesize(tmp_path, size=TINY, progress=False)
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="unknown size"):
        synthesize(tmp_path / "x", size="huge", progress=False)
    with pytest.raises(ValueError, match="val >= 4"):
        SynthSize((5, 2, 5), 2, (5, 5, 5))


def _colour_fraction(image: np.ndarray, rgb: tuple[int, int, int]) -> float:
    return float((np.abs(image.astype(int) - rgb).sum(axis=2) < 40).mean())


def test_track1_pixels_show_which_colour_elements_were_rendered():
    # A colour element rendered right paints its palette colour; rendered wrong, it does not.
    rng = np.random.default_rng(11)
    hits, n = 0, 0
    for i in range(150):
        prompt = sa.make_prompt(rng, str(i))
        if len(prompt.groups) != 1 or not prompt.groups[0].color:
            continue
        model = sa.MODELS[i % len(sa.MODELS)]
        rendering = sa.decide_states(prompt, model, rng)
        state = rendering.states[f"{prompt.groups[0].color} (color)"]
        if state == 0.5:
            continue
        image = render_scene(sa.build_scene(prompt, model, rendering, rng), rng)
        visible = _colour_fraction(image, PALETTE[prompt.groups[0].color]) > 0.002
        hits += visible == (state == 1.0)
        n += 1
    assert n > 30 and hits / n > 0.9


def test_track1_ratings_follow_the_models_skill(challenge):
    paths, _ = challenge
    records = json.loads(paths.align_raw("train").read_text())
    skill = {m.name: m.skill for m in sa.MODELS}
    x = [skill[r["img_path"].split("/")[0]] for r in records]
    y = [np.mean(r["total_score"]) for r in records]
    assert np.corrcoef(x, y)[0, 1] > 0.3


def test_track2_artefacts_change_pixels_inside_their_regions_only():
    inside, outside, mos_clean, mos_bad = [], [], [], []
    for i in range(40):
        item = ss.render_image(np.random.default_rng(i))
        clean = ss.render_image(np.random.default_rng(i), with_artefacts=False)
        changed = np.abs(item.image.astype(int) - clean.image.astype(int)).sum(axis=2) > 30
        if not item.artefacts:
            assert not changed.any()
            mos_clean.append(item.mos)
            continue
        mos_bad.append(item.mos)
        region = np.zeros(changed.shape, np.uint8)
        for art in item.artefacts:
            cv2.fillPoly(region, [np.round(art.region).astype(np.int32)], 1)
        inside.append(changed[region > 0].mean())
        outside.append(changed[region == 0].mean())
    assert np.mean(inside) > 0.3 and np.mean(outside) < 0.01
    assert np.mean(mos_clean) > np.mean(mos_bad) + 1.0  # MOS falls with the artefacts
