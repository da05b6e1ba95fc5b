"""Leaderboard exporters: rich table, CSV, Markdown, LaTeX (the report's layout) and JSON."""

from __future__ import annotations

import csv
import io
import json
from pathlib import PurePath
from typing import Any

from rich.table import Table

from .. import safetext
from .ranking import COMPONENTS, Leaderboard, Row

LABELS = {"srcc": "SRCC", "plcc": "PLCC", "acc": "ACC", "f1": "F1"}
TRACK_TITLES = {"align": "Track 1: image-text alignment", "structure": "Track 2: structural distortion"}


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def records(board: Leaderboard) -> list[dict[str, Any]]:
    """Rows as plain dicts: ranked teams first, then baselines (rank ``None``)."""
    out = []
    for row in [*board.rows, *board.baselines]:
        rec: dict[str, Any] = {"rank": row.rank, "team": row.display_team, "leader": row.leader,
                               "baseline": row.is_baseline, "main_score": row.main_score}
        rec.update(row.components)
        rec.update({"ci_low": row.ci[0] if row.ci else None, "ci_high": row.ci[1] if row.ci else None,
                    "flip_next": row.flip_next, "submissions": row.n_submissions,
                    "submitted_at": row.submitted_at, "sha256": row.sha256})
        out.append(rec)
    return out


def _columns(board: Leaderboard) -> list[str]:
    cols = ["Rank", "Team", "Leader", "Main Score", *(LABELS[c] for c in COMPONENTS[board.track])]
    if board.resamples:
        cols += ["95% CI", "P(flip)"]
    return cols + ["Subs"]


def _cells(board: Leaderboard, row: Row, digits: int = 4) -> list[str]:
    cells = [str(row.rank) if row.rank else "-", row.display_team, row.leader, _fmt(row.main_score, digits),
             *(_fmt(row.components[c], digits) for c in COMPONENTS[board.track])]
    if board.resamples:
        ci = f"[{_fmt(row.ci[0], digits)}, {_fmt(row.ci[1], digits)}]" if row.ci else ""
        cells += [ci, _fmt(row.flip_next, 3)]
    return cells + [str(row.n_submissions)]


#: Columns a narrow terminal drops first, in this order (the scores themselves are never dropped).
_DROP_ORDER = ("Leader", "Subs", "P(flip)", "95% CI")
_SHORT = {"Main Score": "Main"}
_NAME_MIN = 14  # narrowest Team column before another column is dropped


def is_team(row: Row, team: str | None) -> bool:
    """True when ``team`` names this row (as stored, or as shown without its ``baseline:`` prefix)."""
    return team is not None and team in (row.team, row.display_team)


def to_table(board: Leaderboard, width: int | None = None, highlight: str | None = None) -> Table:
    """A rich table (baselines last, dimmed) that fits ``width`` columns without cutting a number.

    Numbers never wrap or get an ellipsis: names wrap first, then the optional columns
    (leader, submission count, flip odds, interval) are dropped, in that order. The row of
    team ``highlight`` is shown bold and reversed.
    """
    cols = _columns(board)
    ranked = [*board.rows, *board.baselines]
    chosen = {i for i, r in enumerate(ranked) if is_team(r, highlight)}
    rows = [([safetext.terminal(c) for c in _cells(board, r)], r.is_baseline) for r in ranked]
    if rows and not any(cells[cols.index("Leader")] for cells, _ in rows):
        keep = [i for i, c in enumerate(cols) if c != "Leader"]
        cols, rows = [cols[i] for i in keep], [([cells[i] for i in keep], b) for cells, b in rows]
    names = {"Team", "Leader"}

    def needed(columns: list[str], cells: list[list[str]]) -> int:
        fixed = sum(max([len(_SHORT.get(c, c)), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)
                    if c not in names)
        return fixed + _NAME_MIN * sum(c in names for c in columns) + 3 * len(columns) + 1

    if width:
        for drop in _DROP_ORDER:
            if needed(cols, [c for c, _ in rows]) <= width or drop not in cols:
                continue
            i = cols.index(drop)
            cols, rows = cols[:i] + cols[i + 1:], [(cells[:i] + cells[i + 1:], b) for cells, b in rows]
    name_min = _NAME_MIN
    if width:  # all optional columns gone and still too wide: narrower names (never narrower numbers)
        spare = width - (needed(cols, [c for c, _ in rows]) - _NAME_MIN * sum(c in names for c in cols))
        name_min = max(6, min(_NAME_MIN, spare // max(1, sum(c in names for c in cols))))
    table = Table(title=f"{TRACK_TITLES[board.track]} leaderboard")
    for i, col in enumerate(cols):
        if col in names:
            table.add_column(col, justify="left", overflow="fold", min_width=min(name_min, max(
                [len(col), *(len(cells[i]) for cells, _ in rows)])))
        else:
            widest = max([len(_SHORT.get(col, col)), *(len(cells[i]) for cells, _ in rows)])
            table.add_column(_SHORT.get(col, col) if width and widest < len(col) else col, justify="right",
                             no_wrap=True, min_width=widest)
    for i, (cells, baseline) in enumerate(rows):
        table.add_row(*cells, style="bold reverse" if i in chosen else "dim" if baseline else None)
    return table


def to_csv(board: Leaderboard) -> str:
    """CSV with full-precision numbers."""
    rows = records(board)
    buf = io.StringIO()
    fields = list(rows[0]) if rows else ["rank", "team", "leader", "main_score"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: safetext.csv_cell(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows)
    return buf.getvalue()


def to_markdown(board: Leaderboard, highlight: str | None = None) -> str:
    """A GitHub-flavoured Markdown table, with invalid submissions listed below; team ``highlight``'s row bold."""
    cols = _columns(board)
    lines = [f"## {TRACK_TITLES[board.track]}", "", "| " + " | ".join(cols) + " |",
             "|" + "|".join("---" if c in ("Team", "Leader") else "---:" for c in cols) + "|"]
    for row in [*board.rows, *board.baselines]:
        bold = "**" if is_team(row, highlight) else ""
        lines.append("| " + " | ".join(f"{bold}{safetext.markdown(c)}{bold}" if c else c
                                       for c in _cells(board, row)) + " |")
    if board.invalid:
        lines += ["", f"Invalid submissions ({len(board.invalid)}):", ""]
        for rec in board.invalid:
            where, what = first_reason(rec)
            lines.append(f"- {safetext.markdown(rec['team'])} ({safetext.markdown(rec['submitted_at'])}, "
                         f"{safetext.markdown(PurePath(rec['path']).name)}): {safetext.markdown(where)}: "
                         f"{safetext.markdown(what)}")
    return "\n".join(lines) + "\n"


def first_reason(rec: dict[str, Any]) -> tuple[str, str]:
    """``(where, what)`` of an invalid submission's first stored problem, each clipped for a listing."""
    reason = (rec.get("reason") or [{}])[0]
    where, what = str(reason.get("where", "")), str(reason.get("what", "invalid"))
    return safetext.clip(where, 120), safetext.clip(what, 300)


def to_latex(board: Leaderboard, highlight: str | None = None) -> str:
    """The report's Table 1 / Table 2 layout: Rank, Team, Leader, Main Score, components; baseline last.

    The row of team ``highlight`` is set in bold.
    """

    def line(row: Row, cells: list[str]) -> str:
        return " & ".join(rf"\textbf{{{c}}}" if c and is_team(row, highlight) else c for c in cells) + r" \\"

    comps = COMPONENTS[board.track]
    head = ["Rank", "Team", "Leader", "Main Score", *(LABELS[c] for c in comps)]
    lines = [r"\begin{table*}[t]", r"\centering",
             rf"\caption{{Results of the NTIRE 2025 T2I quality assessment challenge, "
             rf"{safetext.latex(TRACK_TITLES[board.track])}.}}",
             rf"\label{{tab:{board.track}}}",
             r"\begin{tabular}{cll" + "c" * (1 + len(comps)) + "}", r"\toprule",
             " & ".join(head) + r" \\", r"\midrule"]
    for row in board.rows:
        cells = [str(row.rank), safetext.latex(row.display_team), safetext.latex(row.leader),
                 _fmt(row.main_score), *(_fmt(row.components[c]) for c in comps)]
        lines.append(line(row, cells))
    if board.baselines:
        lines.append(r"\midrule")
        for row in board.baselines:
            cells = ["-", safetext.latex(row.display_team), safetext.latex(row.leader), _fmt(row.main_score),
                     *(_fmt(row.components[c]) for c in comps)]
            lines.append(line(row, cells))
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table*}"]
    text = "\n".join(lines) + "\n"
    return (safetext.LATEX_NON_LATIN_NOTE + "\n" + text) if safetext.needs_unicode_engine(text) else text


def to_json(board: Leaderboard) -> str:
    """JSON: rows, baselines, invalid submissions (with reasons) and the bootstrap size."""
    invalid = [{"team": r["team"], "file": PurePath(r["path"]).name, "submitted_at": r["submitted_at"],
                "reasons": r["reason"]} for r in board.invalid]  # the file's name: never the organizer's folders
    return json.dumps({"track": board.track, "rows": records(board), "invalid": invalid,
                       "pending": board.pending, "resamples": board.resamples}, indent=2)
