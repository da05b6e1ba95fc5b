"""Terminal tables at a fixed width: every number is printed whole; names wrap and optional columns go first."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import align_zip, random_align
from rich.console import Console

from ntire_t2iqa.explain import explain
from ntire_t2iqa.explain.report import DIGITS, _sections, fmt, print_summary
from ntire_t2iqa.leaderboard.export import to_table
from ntire_t2iqa.leaderboard.ranking import Leaderboard, Row


def _board(n_teams: int, resamples: int) -> Leaderboard:
    rows = []
    for i in range(n_teams):
        main = 0.8 - 0.013 * i
        rows.append(Row(i + 1, f"Team {i} of a rather long name from the University of Somewhere",
                        f"Leader {i} Longname", main, {"srcc": main - 0.0123, "plcc": main - 0.0045, "acc": 0.8403},
                        f"{i:064x}", f"/subs/t{i}/s.zip", "2025-03-01T00:00:00Z", 1 + i % 3,
                        (main - 0.0211, main + 0.0187) if resamples else None, 0.25 if resamples else None))
    return Leaderboard("align", rows, [], [], 0, resamples)


def _render(table, width: int) -> str:
    console = Console(width=width, record=True, file=open("/dev/null", "w"), color_system=None)  # noqa: SIM115
    console.print(table)
    return console.export_text()


@pytest.mark.parametrize("width", [80, 100, 66, 56])
@pytest.mark.parametrize("resamples", [0, 200])
def test_leaderboard_numbers_are_never_cut(width: int, resamples: int) -> None:
    board = _board(5, resamples)
    text = _render(to_table(board, width), width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text
    for row in board.rows:
        for value in (row.main_score, *row.components.values()):
            assert f"{value:.4f}" in text, (value, text)
    if width >= 100 and resamples:  # room for everything: the interval and flip odds stay
        assert f"{board.rows[0].ci[0]:.4f}" in text and "P(flip)" in text
    words = set(re.findall(r"\S+", text))
    for row in board.rows if width >= 66 else []:  # names wrap between words (at 56 even a word is folded)
        assert set(row.team.split()) <= words, row.team


def test_leaderboard_drops_leader_only_when_needed() -> None:
    board = _board(3, 0)
    wide = _render(to_table(board, 160), 160)
    narrow = _render(to_table(board, 80), 80)
    assert "Leader 0 Longname" in wide
    assert "Leader" not in narrow


def test_explain_tables_never_split_numbers(tmp_path: Path) -> None:
    sub, ref = random_align(80, seed=4)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    report = explain(align_zip(tmp_path / "s.zip", sub), tmp_path / "eval.json", "align")
    console = Console(width=80, record=True, file=open("/dev/null", "w"), color_system=None)  # noqa: SIM115
    print_summary(report, console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    cells = {c.strip() for c in re.findall(r"[│┃]([^│┃\n]*)", text)}
    checked = 0
    for _, _, cols, data in _sections(report):
        for row in data[:10]:
            for key, _ in cols[1:]:
                shown = fmt(row[key], DIGITS.get(key, 4))
                if re.fullmatch(r"-?\d+(\.\d+)?", shown):
                    assert shown in cells, (key, shown)  # whole, in one cell, on one line
                    checked += 1
    assert checked > 50
