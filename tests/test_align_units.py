"""tracks.align's value checks, coverage counts, reference averaging and scorer details, value by value
against hand computation; and tracks.common's Result as a value (copied, pickled)."""

from __future__ import annotations

import copy
import json
import pickle
import sys
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from ntire_t2iqa.errors import SubmissionError
from ntire_t2iqa.tracks import align
from ntire_t2iqa.tracks.align import AlignRecord
from ntire_t2iqa.tracks.common import Result

BIG = int(sys.float_info.max)  # the largest integer a float holds exactly


@pytest.mark.parametrize(("value", "finite"), [
    (0.5, True), (-0.0, True), (float("nan"), False), (float("inf"), False), (float("-inf"), False),
    (3, True), (BIG, True), (-BIG, True), (BIG + 1, False), (-BIG - 1, False), (10**400, False),
    (True, False), (np.bool_(True), False), ("3", False), (None, False), ([0.5], False), (Decimal(1), False),
    (np.float32(0.5), True), (np.float16(-2), True), (np.float64("nan"), False), (np.float32("inf"), False),
    (np.int64(7), True), (np.uint8(200), True), (Fraction(1, 3), True), (Fraction(10**400), False),
    (np.longdouble("1e4000"), False),
])
def test_a_finite_number_is_a_real_number_that_a_float_holds(value: object, finite: bool) -> None:
    # integers are compared exactly: BIG + 1 rounds to the largest float, yet is refused as too large
    assert align._finite_number(value) is finite


def test_bad_numbers_are_named_by_kind_never_by_a_huge_repr() -> None:
    records, problems = align.parse_predictions([
        {"img_path": "a.png", "total_score": 10**400, "element_score": {"x (y)": BIG + 1}},
        {"img_path": "b.png", "total_score": np.float32("nan"), "element_score": {"x (y)": Decimal("0.5")}},
        {"img_path": "c.png", "total_score": np.float32(2.5), "element_score": {"x (y)": np.int64(1)}},
    ])
    assert [(p.where, p.what, p.kind) for p in problems] == [
        ("output.json, record 0 (img_path 'a.png')",
         "'total_score' is an integer too large for a float, not a finite number.", "bad total scores"),
        ("output.json, record 0 (img_path 'a.png')",
         "element 'x (y)' is an integer too large for a float, not a finite number.", "bad element scores"),
        ("output.json, record 1 (img_path 'b.png')", f"'total_score' is {np.float32('nan')!r}, not a finite number.",
         "bad total scores"),
        ("output.json, record 1 (img_path 'b.png')", "element 'x (y)' is Decimal, not a number.",
         "bad element scores"),
    ]
    assert records == {"c.png": AlignRecord(2.5, {"x (y)": 1.0})}
    assert type(records["c.png"].total) is float and type(records["c.png"].elements["x (y)"]) is float


@pytest.mark.parametrize(("obj", "expected"), [
    ({"a.png": AlignRecord(1.0, {})}, True), ({}, False), ([], False), ([AlignRecord(1.0, {})], False),
    ({"a.png": 1.0}, False), ("eval.json", False), (None, False),
])
def test_is_reference_knows_what_load_reference_returns(obj: object, expected: bool) -> None:
    assert align.is_reference(obj) is expected


@pytest.mark.parametrize(("key", "bare", "has"), [
    ("pig giants (animal)", "pig giants", True), ("cat(animal)", "cat", True), ("cat (animal) ", "cat", True),
    ("a (b) (c)", "a (b)", True), ("cat ()", "cat", True), ("cat", "cat", False), ("(animal)", "", False),
    ("cat (an(i)mal)", "cat (an(i)mal)", False), ("cat (animal) x", "cat (animal) x", False),
])
def test_the_category_suffix(key: str, bare: str, has: bool) -> None:
    assert align.without_category(key) == bare
    assert align.has_category(key) is has


def _records(*recs: tuple[str, dict[str, float]]) -> dict[str, AlignRecord]:
    return {path: AlignRecord(1.0, elements) for path, elements in recs}


def test_coverage_counts_extra_keys_over_every_record() -> None:
    records = _records(("a.png", {"cat (animal)": 1, "hat (object)": 0, "sun (scene)": 0}),
                       ("b.png", {"dog (animal)": 1, "red (colour)": 1}),
                       ("c.png", {"sky": 1, "sea (scene)": 0}))          # sky: bare, not extra; sea: extra
    expected = {"a.png": ["cat (animal)"], "b.png": ["dog (animal)"], "c.png": ["sky (scene)"]}
    problems = align.check_coverage(records, expected, "inputs")
    assert [(p.severity, p.what) for p in problems] == [
        ("error", "your element keys lack the category suffix in 1 record(s): e.g. 'sky' for 'sky (scene)' "
                  "(img_path 'c.png')."),
        ("warning", "4 element key(s) are not in the inputs and are ignored."),  # 2 + 1 + 1
    ]


def test_coverage_counts_missing_images_and_records_with_bare_keys() -> None:
    records = _records(*[(f"{i}.png", {"cat": 1}) for i in range(3)], ("x.png", {}), ("y.png", {}))
    expected = {f"{i}.png": ["cat (animal)"] for i in range(9)}
    problems = align.check_coverage(records, expected, "reference")
    assert [p.what for p in problems] == [
        "misses 6 image(s) of the reference: '3.png', '4.png', '5.png', '6.png', '7.png' (+1 more).",
        "has 2 img_path(s) that are not in the reference: 'x.png', 'y.png'.",
        "your element keys lack the category suffix in 3 record(s): e.g. 'cat' for 'cat (animal)' "
        "(img_path '0.png').",
    ]


def test_load_reference_averages_votes(tmp_path) -> None:
    ref = tmp_path / "eval.json"
    ref.write_text(json.dumps([
        {"img_path": "b.png", "total_score": [1, 2, 2, 4], "element_score": {"a (x)": [0, 1, 1], "b (y)": 0.25}},
        {"img_path": "a.png", "total_score": 3, "element_score": {"c (z)": [1]}, "type": "t", "prompt": "p"},
    ]))
    out = align.load_reference(ref)
    assert list(out) == ["b.png", "a.png"]
    assert out["b.png"] == AlignRecord(9 / 4, {"a (x)": 2 / 3, "b (y)": 0.25})
    assert out["a.png"] == AlignRecord(3.0, {"c (z)": 1.0}, "t", "p")
    assert all(type(v) is float for r in out.values() for v in [r.total, *r.elements.values()])


def test_compute_of_an_empty_reference_is_all_zero_with_the_reasons() -> None:
    result = align.compute({}, {}, "official")
    assert (result.main_score, result.srcc, result.plcc, result.acc, result.n_images) == (0.0, 0.0, 0.0, 0.0, 0)
    assert (result.plcc_fit, result.plcc_fit_used) == ("none", "none")
    assert result.warnings == ["SRCC is undefined because only 0 image(s); counted as 0.",
                               "PLCC: the logistic4 fit failed (4 parameters cannot be fitted to 0 points); PLCC "
                               "uses the raw scores (plcc_fit none).",
                               "PLCC is undefined because only 0 image(s); counted as 0.",
                               "ACC is undefined because the reference has no elements; counted as 0."]
    d = result.details
    assert d["elements_per_image"].dtype == np.int64 and d["correct_per_image"].dtype == np.int64
    assert d["gt_element"].dtype == np.float64 and d["pred_element"].dtype == np.float64


def test_compute_details_when_the_last_images_have_no_elements_and_scores_are_integers() -> None:
    reference = {"a.png": AlignRecord(1, {"x (y)": 1}), "b.png": AlignRecord(2, {}), "c.png": AlignRecord(3, {})}
    records = {"a.png": AlignRecord(2, {"x (y)": 0}), "b.png": AlignRecord(1, {}), "c.png": AlignRecord(3, {})}
    d = align.compute(records, reference, "none").details
    assert d["elements_per_image"].tolist() == [1, 0, 0]
    assert d["correct_per_image"].tolist() == [0, 0, 0]  # one per image, the images without elements included
    for name in ("gt_total", "pred_total", "gt_element", "pred_element"):
        assert d[name].dtype == np.float64, name
    assert d["gt_element"].tolist() == [1.0] and d["pred_element"].tolist() == [0.0]


def test_compute_reports_coverage_against_the_reference() -> None:
    reference = {"a.png": AlignRecord(1.0, {"x (y)": 1.0}), "b.png": AlignRecord(2.0, {"z (w)": 0.0})}
    records = {"a.png": AlignRecord(1.0, {"x (y)": 1.0, "q (r)": 0.0}), "b.png": AlignRecord(3.0, {"z (w)": 0.0})}
    result = align.compute(records, reference, "none")
    assert result.warnings[0] == ("output.json: 1 element key(s) are not in the reference and are ignored. "
                                  "Fix: Use exactly the inputs' element keys.")
    assert result.acc == 1.0 and result.srcc == pytest.approx(1.0) and result.plcc == pytest.approx(1.0)
    with pytest.raises(SubmissionError) as caught:
        align.compute({"a.png": records["a.png"]}, reference, "none")
    assert str(caught.value) == ("output.json: misses 1 image(s) of the reference: 'b.png'. "
                                 "Fix: Add one record for every img_path of the test inputs.")


def test_a_result_copies_and_pickles_as_a_value() -> None:
    result = Result("align", 0.5, 0.25, 0.75, "official", 2, ["w"], {"acc": 0.5}, plcc_fit_used="logistic4",
                    details={"gt_total": np.array([1.0, 2.0])})
    for twin in (copy.copy(result), copy.deepcopy(result), pickle.loads(pickle.dumps(result))):
        assert twin.to_dict() == result.to_dict() and twin.acc == 0.5
        assert twin.details["gt_total"].tolist() == [1.0, 2.0]
