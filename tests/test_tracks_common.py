"""tracks.common's message helpers and result containers, value by value."""

from __future__ import annotations

import numpy as np
import pytest

from ntire_t2iqa.errors import error, warning
from ntire_t2iqa.tracks.common import Report, Result, describe, summarize


@pytest.mark.parametrize(("value", "text"), [
    (None, "null"), (True, "a boolean"), (np.bool_(False), "a boolean"), ("x", "a string"), ("", "an empty string"),
    ([1], "a list"), ((1,), "a tuple"), (3, "an integer"), (np.int16(3), "an integer"), (2.5, "a number"),
    (np.float32(2.5), "a number"), ({"a": 1}, "an object"), (np.zeros((2, 3)), "an array of shape (2, 3)"),
    (b"raw", "bytes"), (1 + 2j, "complex"),
])
def test_describe_names_the_type_never_the_value(value: object, text: str) -> None:
    assert describe(value) == text


def test_summarize_quotes_five_and_counts_the_rest() -> None:
    assert summarize([]) == ""
    assert summarize(["a", "b", "c", "d", "e"]) == "'a', 'b', 'c', 'd', 'e'"
    assert summarize(["a", "b", "c", "d", "e", "f"]) == "'a', 'b', 'c', 'd', 'e' (+1 more)"
    assert summarize([str(i) for i in range(1234)], limit=2) == "'0', '1' (+1,232 more)"


def test_result_to_dict_is_the_json_contract_and_components_read_as_attributes() -> None:
    r = Result("structure", 0.5, 0.25, 0.75, "official", 3, ["w"], {"f1": 0.1, "precision": 0.2},
               plcc_fit_used="logistic4")
    assert r.to_dict() == {"track": "structure", "main_score": 0.5, "srcc": 0.25, "plcc": 0.75,
                           "plcc_fit": "official", "plcc_fit_used": "logistic4", "n_images": 3, "warnings": ["w"],
                           "f1": 0.1, "precision": 0.2}
    assert (r.f1, r.precision) == (0.1, 0.2)
    with pytest.raises(AttributeError, match=r"^recall$"):
        _ = r.recall


def test_report_to_dict_and_coverage_note() -> None:
    problems = [error("a.png", "bad", "fix it"), warning("b.png", "odd")]
    report = Report("align", problems, n_images=2, coverage_checked=False)
    assert (report.valid, report.n_errors, report.n_warnings) == (False, 1, 1)
    assert report.to_dict() == {"track": "align", "valid": False, "n_images": 2, "coverage_checked": False,
                                "errors": [problems[0].to_dict()], "warnings": [problems[1].to_dict()]}
    assert report.coverage_note() == ("Coverage was not checked (no inputs given): missing or extra images and "
                                      "element keys are found only with --inputs (the public test inputs of the "
                                      "split).")
    assert Report("structure", [], coverage_checked=False).coverage_note() == (
        "Coverage was not checked (no inputs given): missing or extra images are found only with --inputs (the "
        "public test inputs of the split).")
    assert Report("align", []).coverage_note() == "" and Report("align", []).valid


def test_mask_dtype_problems_say_what_and_how_word_for_word() -> None:
    from ntire_t2iqa.tracks.structure_masks import check_mask

    fix = "Convert it: `mask.astype(np.uint8)` (e.g. `np.where(heatmap > t, 1, 0).astype(np.uint8)`)."
    accepted = " It accepts uint8, uint16, int16, float32 and float64 at any size."
    mask, (problem,) = check_mask(np.zeros((448, 448), np.int32), "x.png")
    assert mask is None and (problem.severity, problem.where, problem.fix) == ("error", "x.png", fix)
    assert problem.what == ("'pred_area' has dtype int32 and shape (448, 448); the official scorer (OpenCV resize) "
                            "handles int32 only at exactly 512 x 512, where it copies instead of resizing, and "
                            "crashes at any other size." + accepted)
    assert check_mask(np.zeros((512, 512), np.int32), "x.png")[1] == []  # at 512 x 512 it is scored
    _, (problem,) = check_mask(np.zeros((512, 512), np.complex64), "y.png")
    assert problem.what == ("'pred_area' has dtype complex64, which the official scorer (OpenCV resize) cannot "
                            "handle." + accepted) and problem.fix == fix
