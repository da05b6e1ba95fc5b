"""`pack` for Track 2: mask images of any size (0/1, 0/255, 16-bit, grey heatmaps with a threshold), .npz files,
dicts and DataFrames become output.pkl with 2-D uint8 0/1 masks, and score like a hand-made zip."""

from __future__ import annotations

import csv
import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import random_structure, structure_zip
from PIL import Image

from ntire_t2iqa import SubmissionError, pack, score, validate
from ntire_t2iqa.cli import main

FLAGS = {"runtime": 0.2, "gpu": True, "extra_data": False, "llm": False, "description": "UNet"}


@pytest.fixture()
def case(tmp_path: Path) -> tuple[dict, Path]:
    """(0/1 uint8 predictions at mixed sizes, gt.pkl); the public inputs (image names) in test_images.json."""
    sub, ref = random_structure(8, seed=21, pred_size=448)
    for i, name in enumerate(list(sub)[:3]):  # other sizes: 512, 300 x 700, 1024
        shape = [(512, 512), (300, 700), (1024, 1024)][i]
        sub[name]["pred_area"] = np.ascontiguousarray(
            Image.fromarray(sub[name]["pred_area"]).resize(shape[::-1], Image.NEAREST))
    (tmp_path / "gt.pkl").write_bytes(pickle.dumps(ref))
    (tmp_path / "test_images.json").write_text(json.dumps([f"{name}.jpg" for name in ref]))
    return sub, tmp_path / "gt.pkl"


def _inputs(ref: Path) -> Path:
    return ref.parent / "test_images.json"


def _scores_csv(path: Path, sub: dict) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "score"])
        writer.writerows([[f"{name}.png", repr(e["score"])] for name, e in sub.items()])  # names with extension
    return path


def _output_pkl(zip_path: Path) -> dict:
    with zipfile.ZipFile(zip_path) as zf:
        assert sorted(zf.namelist()) == ["output.pkl", "readme.txt"]
        return pickle.loads(zf.read("output.pkl"))


def _check(out: Path, sub: dict, ref: Path, want_masks: dict, tmp: Path) -> None:
    """``out`` holds ``want_masks`` as 2-D uint8 0/1 arrays and scores exactly like a hand-made zip of them."""
    written = _output_pkl(out)
    assert list(written) == list(want_masks)
    for name, mask in want_masks.items():
        got = written[name]["pred_area"]
        assert got.dtype == np.uint8 and got.ndim == 2 and np.array_equal(got, mask)
        assert written[name]["score"] == sub[name]["score"] and type(written[name]["score"]) is float
    hand = {n: {"score": sub[n]["score"], "pred_area": m} for n, m in want_masks.items()}
    expected = score(structure_zip(tmp / "hand.zip", hand), ref, track="structure").to_dict()
    assert score(out, ref, track="structure").to_dict() == expected


@pytest.mark.parametrize("style", ["0/1 png", "0/255 png", "1-bit png", "16-bit png", "grey rgb png", "palette png"])
def test_mask_folder_round_trips(style: str, case, tmp_path: Path) -> None:
    sub, ref = case
    folder = tmp_path / "masks"
    folder.mkdir()
    for name, e in sub.items():
        m = e["pred_area"]
        img = {"0/1 png": lambda m: Image.fromarray(m),
               "0/255 png": lambda m: Image.fromarray(m * 255),
               "1-bit png": lambda m: Image.fromarray(m.astype(bool)),
               "16-bit png": lambda m: Image.fromarray(m.astype(np.uint16) * 40000),
               "grey rgb png": lambda m: Image.fromarray(np.repeat(m[..., None] * 200, 3, axis=2)),
               "palette png": lambda m: Image.fromarray(m * 255).convert("P")}[style](m)
        img.save(folder / f"{name}.png")
    (folder / "notes.txt").write_text("not a mask")
    out = tmp_path / "sub.zip"
    scores = _scores_csv(tmp_path / "scores.csv", sub)
    report = pack(folder, out, "structure", scores=scores, inputs=_inputs(ref), **FLAGS)
    assert report.valid and report.n_images == len(sub)
    assert any("not mask images" in p.what and "notes.txt" in p.what for p in report.warnings)
    _check(out, sub, ref, {n: e["pred_area"] for n, e in sorted(sub.items())}, tmp_path)


def test_grey_heatmaps_and_jpegs_need_a_threshold(case, tmp_path: Path) -> None:
    sub, ref = case
    rng = np.random.default_rng(0)
    folder = tmp_path / "heat"
    folder.mkdir()
    heat = {}
    for name, e in sub.items():
        h = np.clip(e["pred_area"] * 180 + rng.integers(0, 30, e["pred_area"].shape), 0, 255).astype(np.uint8)
        heat[name] = h
        Image.fromarray(h).save(folder / f"{name}.png")
    scores = _scores_csv(tmp_path / "scores.csv", sub)
    with pytest.raises(SubmissionError) as info:
        pack(folder, tmp_path / "x.zip", "structure", scores=scores, **FLAGS)
    assert "looks like a heatmap" in str(info.value) and "--threshold" in str(info.value)
    assert not (tmp_path / "x.zip").exists()
    out = tmp_path / "t.zip"
    pack(folder, out, "structure", scores=scores, threshold=0.4, **FLAGS)
    _check(out, sub, ref, {n: (h > 0.4 * 255).astype(np.uint8) for n, h in sorted(heat.items())}, tmp_path)
    jpegs = tmp_path / "jpg"
    jpegs.mkdir()
    for name, e in sub.items():
        Image.fromarray(e["pred_area"] * 255).save(jpegs / f"{name}.jpg", quality=70)
    with pytest.raises(SubmissionError, match="looks like a heatmap"):
        pack(jpegs, tmp_path / "j.zip", "structure", scores=scores, **FLAGS)
    pack(jpegs, tmp_path / "j.zip", "structure", scores=scores, threshold=0.5, **FLAGS)
    want = {}
    for name in sorted(sub):
        with Image.open(jpegs / f"{name}.jpg") as img:
            want[name] = (np.asarray(img) > 127.5).astype(np.uint8)
    _check(tmp_path / "j.zip", sub, ref, want, tmp_path)


def test_npz_layouts_dicts_and_dataframes(case, tmp_path: Path) -> None:
    sub, ref = case
    want = {n: e["pred_area"] for n, e in sub.items()}
    scores = _scores_csv(tmp_path / "scores.csv", sub)
    np.savez_compressed(tmp_path / "per_image.npz", **{n: m.astype(bool) for n, m in want.items()})
    pack(tmp_path / "per_image.npz", tmp_path / "a.zip", "structure", scores=scores, **FLAGS)
    _check(tmp_path / "a.zip", sub, ref, want, tmp_path)
    same = {n: m for n, m in want.items() if m.shape == (448, 448)}
    np.savez(tmp_path / "batch.npz", names=np.array(list(same)), scores=np.array([sub[n]["score"] for n in same]),
             masks=np.stack([m.astype(np.float32) * 0.9 for m in same.values()]))
    with pytest.raises(SubmissionError, match="misses"):  # only the 448 x 448 images: the others are missing
        pack(tmp_path / "batch.npz", tmp_path / "b.zip", "structure", inputs=_inputs(ref), **FLAGS)
    pack(tmp_path / "batch.npz", tmp_path / "b.zip", "structure", **FLAGS)
    batch = _output_pkl(tmp_path / "b.zip")
    assert list(batch) == list(same) and all(np.array_equal(batch[n]["pred_area"], same[n]) for n in same)
    assert all(batch[n]["pred_area"].dtype == np.uint8 and batch[n]["score"] == sub[n]["score"] for n in same)
    # In memory: masks np.where gives (int64), booleans, (1, H, W), float 0/1; numpy scores.
    odd = {}
    for i, (n, e) in enumerate(sub.items()):
        m = e["pred_area"]
        odd[n] = {"score": np.float32(e["score"]) if i % 2 else e["score"],
                  "pred_area": [np.where(m > 0, 1, 0), m.astype(bool), m[None], m.astype(np.float64)][i % 4]}
    pack(odd, tmp_path / "c.zip", "structure", inputs=_inputs(ref), **FLAGS)
    written = _output_pkl(tmp_path / "c.zip")
    assert all(np.array_equal(written[n]["pred_area"], want[n]) for n in sub)
    assert all(written[n]["pred_area"].dtype == np.uint8 and written[n]["pred_area"].ndim == 2 for n in sub)
    frame = pd.DataFrame({"name": list(sub), "score": [e["score"] for e in sub.values()],
                          "pred_area": [e["pred_area"] * 255 for e in sub.values()]})
    pack(frame, tmp_path / "d.zip", "structure", inputs=_inputs(ref), **FLAGS)
    _check(tmp_path / "d.zip", sub, ref, want, tmp_path)


def test_scores_and_masks_must_pair_up(case, tmp_path: Path) -> None:
    sub, _ = case
    folder = tmp_path / "masks"
    folder.mkdir()
    names = list(sub)
    for name in names[1:]:
        Image.fromarray(sub[name]["pred_area"]).save(folder / f"{name}.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / "stray.png")
    with pytest.raises(SubmissionError) as info:
        pack(folder, tmp_path / "x.zip", "structure", scores=_scores_csv(tmp_path / "scores.csv", sub), **FLAGS)
    text = str(info.value) + " ".join(p.what for p in info.value.problems)
    assert "no score for 1 mask(s): 'stray'" in text and f"no mask for 1 scored image(s): '{names[0]}'" in text
    with pytest.raises(SubmissionError, match="scores are missing"):
        pack(folder, tmp_path / "x.zip", "structure", **FLAGS)


def test_cli_pack_structure(case, tmp_path: Path) -> None:
    sub, ref = case
    folder = tmp_path / "masks"
    folder.mkdir()
    for name, e in sub.items():
        buf = io.BytesIO()
        Image.fromarray(e["pred_area"] * 255).save(buf, format="PNG")
        (folder / f"{name}.png").write_bytes(buf.getvalue())
    out = tmp_path / "sub.zip"
    res = CliRunner().invoke(main, ["pack", str(folder), "--track", "structure", "--out", str(out), "--scores",
                                    str(_scores_csv(tmp_path / "s.csv", sub)), "--runtime", "0.2", "--cpu",
                                    "--extra-data", "--no-llm", "--description", "UNet", "--inputs", str(_inputs(ref))])
    assert res.exit_code == 0, res.output
    assert validate(out, "structure", inputs=_inputs(ref)).valid
    with zipfile.ZipFile(out) as zf:
        assert zf.read("readme.txt").decode().splitlines()[1:4] == [
            "CPU[1] / GPU[0] : 1", "Extra Data [1] / No Extra Data [0] : 1", "LLM[1] / Non-LLM[0] : 0"]
