"""The Codabench/CodaLab scoring program and bundle, through the platform's res/ref layout."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import zipfile

import pytest
from helpers import align_zip, random_align, random_structure, structure_zip

from ntire_t2iqa import codalab, score


def _layout(tmp_path, zip_path, ref_name, ref_bytes):
    res, ref = tmp_path / "input" / "res", tmp_path / "input" / "ref"
    res.mkdir(parents=True)
    ref.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(res)
    (ref / ref_name).write_bytes(ref_bytes)
    return tmp_path / "input", tmp_path / "output"


@pytest.mark.parametrize("track", ["align", "structure"])
def test_program_scores_like_the_scorer(tmp_path, track) -> None:
    if track == "align":
        sub, ref = random_align(50, seed=21)
        zip_path, name, blob = align_zip(tmp_path / "s.zip", sub), "eval.json", json.dumps(ref).encode()
    else:
        sub, ref = random_structure(12, seed=21)
        zip_path, name, blob = structure_zip(tmp_path / "s.zip", sub), "gt.pkl", pickle.dumps(ref)
    inp, out = _layout(tmp_path, zip_path, name, blob)
    assert codalab.run(inp, out) == 0
    expected = score(zip_path, inp / "ref" / name, track=track).to_dict()
    scores = json.loads((out / "scores.json").read_text())
    assert scores == {k: expected[k] for k in codalab.SCORE_KEYS[track]}
    lines = (out / "scores.txt").read_text().splitlines()
    assert lines[0] == f"main_score: {expected['main_score']:.4f}"
    assert lines[len(codalab.SCORE_KEYS[track]):] == ["runtime: 10.43", "cpu: 1", "extra_data: 1", "llm: 1"]
    assert "Main Score" in (out / "detailed_results.html").read_text()


def test_program_reports_invalid_submission(tmp_path, capsys) -> None:
    sub, ref = random_align(10, seed=22)
    inp, out = _layout(tmp_path, align_zip(tmp_path / "s.zip", sub[1:]), "eval.json", json.dumps(ref).encode())
    assert codalab.run(inp, out) == 1
    assert "misses 1 image(s)" in capsys.readouterr().err
    assert not (out / "scores.txt").exists() and "misses 1 image" in (out / "detailed_results.html").read_text()


def test_bundle_scoring_program_runs_standalone(tmp_path) -> None:
    """Unpack the bundle and run its own score.py in a fresh interpreter, as the platform would."""
    sub, ref = random_align(40, seed=23)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    bundle = codalab.write_bundle("align", tmp_path / "eval.json", tmp_path / "bundle.zip")
    unpacked = tmp_path / "bundle"
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        zf.extractall(unpacked)
    assert {"competition.yaml", "overview.md", "scoring_program/metadata.yaml", "scoring_program/score.py",
            "reference_data/eval.json"} <= set(names)
    yaml = (unpacked / "competition.yaml").read_text()
    for key in codalab.SCORE_KEYS["align"]:
        assert f"key: {key}" in yaml
    zip_path = align_zip(tmp_path / "s.zip", sub)
    inp = tmp_path / "input"
    (inp / "res").mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(inp / "res")
    (inp / "ref").symlink_to(unpacked / "reference_data")
    program = unpacked / "scoring_program"
    proc = subprocess.run([sys.executable, "-I", str(program / "score.py"), str(inp), str(tmp_path / "out")],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "out" / "scores.json").read_text())["main_score"] == \
        score(zip_path, tmp_path / "eval.json", track="align").main_score


@pytest.mark.parametrize("track", ["align", "structure"])
def test_program_on_the_synthetic_challenge(tmp_path, track) -> None:
    """A trivial submission of the synthetic challenge, through the platform's res/ref layout."""
    from ntire_t2iqa.data import ChallengePaths, SynthSize, synthesize, write_trivial

    synthesize(tmp_path / "ch", seed=3, size=SynthSize((2, 4, 4), 2, (2, 6, 6)), progress=False, workers=1)
    paths = ChallengePaths(tmp_path / "ch")
    zip_path = write_trivial(paths.root, track, "oracle", "val", tmp_path / "s.zip", noise=0.3)
    ref = paths.reference(track, "val")
    inp, out = _layout(tmp_path, zip_path, ref.name, ref.read_bytes())
    assert codalab.run(inp, out) == 0
    expected = score(zip_path, ref, track=track).to_dict()
    assert json.loads((out / "scores.json").read_text()) == {k: expected[k] for k in codalab.SCORE_KEYS[track]}
