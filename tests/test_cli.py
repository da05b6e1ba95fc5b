"""The command line: JSON contract, exit codes, zips and folders."""

from __future__ import annotations

import json
import pickle
import zipfile

import pytest
from click.testing import CliRunner
from helpers import align_zip, random_align, random_structure, structure_zip

from ntire_t2iqa import score
from ntire_t2iqa.cli import main

ALIGN_KEYS = {"track", "main_score", "srcc", "plcc", "plcc_fit", "plcc_fit_used", "n_images", "warnings", "acc"}
STRUCTURE_KEYS = {"track", "main_score", "srcc", "plcc", "plcc_fit", "plcc_fit_used", "n_images", "warnings",
                  "f1", "precision", "recall", "giou"}


@pytest.fixture()
def align_case(tmp_path):
    sub, ref = random_align(30, seed=7)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    return align_zip(tmp_path / "sub.zip", sub), tmp_path / "eval.json"


@pytest.fixture()
def structure_case(tmp_path):
    sub, ref = random_structure(10, seed=7)
    (tmp_path / "gt.pkl").write_bytes(pickle.dumps(ref))
    return structure_zip(tmp_path / "sub.zip", sub), tmp_path / "gt.pkl"


def test_score_json_contract_align(align_case) -> None:
    zip_path, ref = align_case
    res = CliRunner().invoke(main, ["score", str(zip_path), "--track", "align", "--ref", str(ref), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert set(payload) == ALIGN_KEYS
    assert payload["track"] == "align" and payload["n_images"] == 30 and payload["plcc_fit"] == "official"
    assert payload["main_score"] == score(zip_path, ref, track="align").main_score


def test_score_json_contract_structure_and_reference_folder(structure_case) -> None:
    zip_path, ref = structure_case
    res = CliRunner().invoke(main, ["score", str(zip_path), "--track", "structure", "--ref", str(ref.parent),
                                    "--json", "--plcc-fit", "poly3"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert set(payload) == STRUCTURE_KEYS and payload["plcc_fit"] == "poly3"
    assert payload["f1"] == score(zip_path, ref, track="structure", plcc_fit="poly3").f1


def test_unpacked_folder_scores_like_the_zip(align_case, tmp_path) -> None:
    zip_path, ref = align_case
    folder = tmp_path / "unpacked"
    folder.mkdir()
    with zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():
            (folder / name).write_bytes(zf.read(name))
    assert score(folder, ref, track="align").to_dict() == score(zip_path, ref, track="align").to_dict()
    res = CliRunner().invoke(main, ["validate", str(folder), "--track", "align", "--inputs", str(ref)])
    assert res.exit_code == 0 and "valid align submission: 30 images" in res.output


def test_invalid_submission_exit_1_lists_every_problem(align_case, tmp_path) -> None:
    _, ref = align_case
    sub, _ = random_align(30, seed=7)
    sub[2]["total_score"] = "high"
    sub[5]["element_score"] = [0.1]
    del sub[9]["img_path"]
    bad = align_zip(tmp_path / "bad.zip", sub, readme="runtime per image [s] : fast\n")
    res = CliRunner().invoke(main, ["score", str(bad), "--track", "align", "--ref", str(ref), "--json"])
    assert res.exit_code == 1
    payload = json.loads(res.stdout)
    wheres = " | ".join(e["where"] + " " + e["what"] for e in payload["errors"])
    for needle in ("record 2", "record 5", "record 9", "readme.txt, line 1", "readme.txt, line 5"):
        assert needle in wheres
    res = CliRunner().invoke(main, ["validate", str(bad), "--track", "align"])
    assert res.exit_code == 1 and "fix:" in res.output and "Traceback" not in res.output


def test_bad_reference_and_usage_exit_2(align_case, tmp_path) -> None:
    zip_path, _ = align_case
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    res = CliRunner().invoke(main, ["score", str(zip_path), "--track", "align", "--ref", str(broken), "--json"])
    assert res.exit_code == 2 and json.loads(res.stdout)["error"] == "reference"
    res = CliRunner().invoke(main, ["score", str(zip_path), "--track", "nope", "--ref", str(broken)])
    assert res.exit_code == 2
    res = CliRunner().invoke(main, ["validate", str(zip_path), "--track", "align", "--inputs", str(broken)])
    assert res.exit_code == 2


def test_wrong_track_is_explained(structure_case) -> None:
    zip_path, _ = structure_case
    res = CliRunner().invoke(main, ["validate", str(zip_path), "--track", "align"])
    assert res.exit_code == 1 and "--track structure" in res.output


def test_table_output(align_case) -> None:
    zip_path, ref = align_case
    res = CliRunner().invoke(main, ["score", str(zip_path), "--track", "align", "--ref", str(ref)])
    assert res.exit_code == 0 and "main_score" in res.output and "acc" in res.output
