"""Every problem message, word for word: docs/problems.md is the catalogue rendered from tests/catalogue_*.py."""

from __future__ import annotations

import pytest
from catalogue import DOC, cases, differences, render, run_case


def test_the_catalogue_is_the_document_word_for_word() -> None:
    diff = differences(render())
    assert not diff, ("docs/problems.md differs from what the toolkit reports now; if the change is deliberate, "
                      "run `python tests/catalogue.py --write` and review the difference:\n" + diff[:20000])


@pytest.mark.parametrize("section", [name for name, _, _ in cases()])
def test_every_case_title_is_unique_and_documented(section: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    titles = [case.title for name, _, section_cases in cases() if name == section for case in section_cases]
    assert len(titles) == len(set(titles)), "two cases share a title"
    for title in titles:
        assert f"### {title}\n" in doc


def test_a_case_shows_the_scratch_folder_never_the_machine_path() -> None:
    from catalogue import TMP, Case

    from ntire_t2iqa.tracks import align

    lines = run_case(Case("missing", "none", lambda tmp: align.load_reference(tmp / "nowhere.json")))
    assert lines == ["### missing", "", "Input: none", "",
                     f"- raises `ReferenceDataError`: reference error: {TMP}/nowhere.json: does not exist. Fix: Pass "
                     "the path of eval.json.", ""]
