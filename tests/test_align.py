"""Track 1 scoring: hand-computed cases, raw references, coverage and invariances."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import align_zip, random_align
from scipy import stats

from ntire_t2iqa import SubmissionError, score, validate


def _ref_file(tmp_path, ref):
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(ref))
    return path


def test_hand_computed_without_fit(tmp_path) -> None:
    ref = [
        {"img_path": "A/1.png", "total_score": 1.0, "element_score": {"cat (animal)": 1.0, "red (color)": 0.0}},
        {"img_path": "A/2.png", "total_score": 2.0, "element_score": {"cat (animal)": 2 / 3}},
        {"img_path": "B/1.png", "total_score": 3.0, "element_score": {}},
        {"img_path": "B/2.png", "total_score": 4.0, "element_score": {"dog (animal)": 1 / 3}},
    ]
    sub = [
        {"img_path": "B/2.png", "total_score": 5.0, "element_score": {"dog (animal)": 0.7}},  # wrong
        {"img_path": "A/1.png", "total_score": 1.0, "element_score": {"cat (animal)": 0.9, "red (color)": 0.1}},
        {"img_path": "A/2.png", "total_score": 2.0, "element_score": {"cat (animal)": 0.2, "x (other)": 1}},  # wrong
        {"img_path": "B/1.png", "total_score": 3.0, "element_score": {}},
    ]
    result = score(align_zip(tmp_path / "s.zip", sub), _ref_file(tmp_path, ref), track="align", plcc_fit="none")
    plcc = 6.5 / math.sqrt(43.75)
    assert result.srcc == 1.0
    assert result.plcc == pytest.approx(plcc, abs=1e-15)
    assert result.acc == 2 / 4
    assert result.main_score == pytest.approx(0.25 + 0.25 * plcc + 0.25, abs=1e-15)
    assert result.n_images == 4
    assert any("not in the reference and are ignored" in w for w in result.warnings)


def test_raw_reference_form_equals_averaged(tmp_path) -> None:
    sub, ref = random_align(40, seed=1)
    raw = []
    for r in ref:
        votes = {k: [1, 1, 0] if v >= 0.5 else [0, 0, 1] for k, v in r["element_score"].items()}
        raw.append({**r, "total_score": [int(round(r["total_score"]))] * 2 + [3], "element_score": votes})
    averaged = [{**r, "total_score": float(np.mean(r["total_score"])),
                 "element_score": {k: float(np.mean(v)) for k, v in r["element_score"].items()}} for r in raw]
    z = align_zip(tmp_path / "s.zip", sub)
    a = score(z, _ref_file(tmp_path, raw), track="align")
    (tmp_path / "avg").mkdir()
    b = score(z, _ref_file(tmp_path / "avg", averaged), track="align")
    assert a.to_dict() == b.to_dict()


def test_official_fit_matches_independent_scipy(tmp_path) -> None:
    sub, ref = random_align(200, seed=2)
    result = score(align_zip(tmp_path / "s.zip", sub), _ref_file(tmp_path, ref), track="align")
    paths = sorted(r["img_path"] for r in ref)
    gt = np.array([next(r["total_score"] for r in ref if r["img_path"] == p) for p in paths])
    pred = np.array([next(r["total_score"] for r in sub if r["img_path"] == p) for p in paths])
    assert result.srcc == pytest.approx(stats.spearmanr(gt, pred)[0], abs=1e-12)
    assert result.plcc_fit == "official"
    assert 0.3 < result.plcc < 1


def test_shuffling_and_renaming_change_nothing(tmp_path) -> None:
    sub, ref = random_align(300, seed=3)
    base = score(align_zip(tmp_path / "a.zip", sub), _ref_file(tmp_path, ref), track="align")
    rng = np.random.default_rng(0)
    shuffled = [sub[i] for i in rng.permutation(len(sub))]
    again = score(align_zip(tmp_path / "b.zip", shuffled), tmp_path / "eval.json", track="align")
    assert again.to_dict() == base.to_dict()
    # An order-preserving renaming changes nothing at all.
    rename = {r["img_path"]: f"R/{r['img_path'].replace('/', '_')}" for r in ref}
    renamed = _score_renamed(tmp_path / "r1", sub, ref, rename)
    assert renamed.to_dict() == base.to_dict()
    # An arbitrary renaming reorders the points the logistic is fitted on, as the official program
    # (which sorts by img_path) would: rank and element metrics are exact, PLCC equal to the fit's
    # convergence tolerance (scipy's default ftol is 1.49e-8).
    rename = {r["img_path"]: f"Z{idx}/{idx * 7919 % 1000:05d}.png" for idx, r in enumerate(ref)}
    renamed = _score_renamed(tmp_path / "r2", sub, ref, rename)
    assert (renamed.srcc, renamed.acc) == (base.srcc, base.acc)
    assert renamed.plcc == pytest.approx(base.plcc, abs=1e-7)


def _score_renamed(folder, sub, ref, rename):
    folder.mkdir()
    ren_ref = [{**r, "img_path": rename[r["img_path"]]} for r in ref]
    ren_sub = [{**r, "img_path": rename[r["img_path"]]} for r in sub]
    return score(align_zip(folder / "c.zip", ren_sub), _ref_file(folder, ren_ref), track="align")


def test_missing_extra_and_duplicate_images_are_errors(tmp_path) -> None:
    sub, ref = random_align(10, seed=4)
    ref_path = _ref_file(tmp_path, ref)
    bad = sub[1:] + [{**sub[1], "img_path": "Other/99999.png"}, sub[2]]
    with pytest.raises(SubmissionError) as info:
        score(align_zip(tmp_path / "s.zip", bad), ref_path, track="align")
    text = "\n".join(str(p) for p in info.value.errors)
    assert "misses 1 image(s)" in text and sub[0]["img_path"] in text
    assert "not in the reference" in text and "Other/99999.png" in text
    assert "repeats the img_path of record 1" in text


def test_missing_element_key_is_an_error(tmp_path) -> None:
    sub, ref = random_align(6, seed=5, n_elements=(2, 3))
    del sub[3]["element_score"][next(iter(sub[3]["element_score"]))]
    report = validate(align_zip(tmp_path / "s.zip", sub), "align", inputs=_ref_file(tmp_path, ref))
    assert not report.valid
    assert "'element_score' misses" in str(report.errors[0]) and sub[3]["img_path"] in str(report.errors[0])


def test_validate_with_inputs_counts_images_and_warns_out_of_range(tmp_path) -> None:
    sub, ref = random_align(8, seed=6)
    inputs = [{"img_path": r["img_path"], "prompt": "p", "total_score": None,
               "element_score": {k: None for k in r["element_score"]}} for r in ref]
    sub[0]["element_score"] = {k: 1.5 for k in sub[0]["element_score"]}
    report = validate(align_zip(tmp_path / "s.zip", sub), "align", inputs=_ref_file(tmp_path, inputs))
    assert report.valid and report.n_images == 8
    assert any("outside 0..1" in p.what for p in report.warnings)
