"""Hostile text: no participant string changes an output's structure, styling, links or the terminal,
and no report about a participant's file grows without bound.

Each output kind is checked with an independent reader: rich's own markup parser, the csv
module, a CommonMark renderer, Python's HTML parser, and pdflatex where it is installed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers import align_zip, random_align
from markdown_it import MarkdownIt
from rich.text import Text

from ntire_t2iqa import safetext
from ntire_t2iqa.errors import MAX_LISTED, ProblemLog, error
from ntire_t2iqa.leaderboard import rank, render
from ntire_t2iqa.tracks.common import README_TEMPLATE

HOSTILE = [
    "[/bold]",
    "[link=https://evil.example]Trusted Team[/link]",
    "\x1b[2J\x1b]0;pwned\x07Team",
    "back\bspace\rover\x7f",
    "new\nline | col",
    "# Heading",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '=HYPERLINK("http://evil.example")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1)",
    "\tTab",
    "\r\nCR",
    "Zoë Ærø Łódź ñ ß \\ & % $ # _ { } ~ ^",
    "x\u202eevil\u200b",
    ":warning: emoji",
    "trailing\\",
    "\\[escaped]",
    "**bold** _it_ `code` ![i](x) [a](http://evil.example)",
    "\u2028line\u2029sep\x85",
]
CLI = [sys.executable, "-m", "ntire_t2iqa"]


# --------------------------------------------------------------------------- one sanitiser per kind


@pytest.mark.parametrize("text", HOSTILE)
def test_terminal_text_is_never_markup(text: str) -> None:
    parsed = Text.from_markup(f"[bold]{safetext.terminal(text)}[/bold]", emoji=False)  # as the CLI's consoles
    assert parsed.plain == safetext.visible(text)
    assert all(str(span.style) == "bold" for span in parsed.spans)
    assert parsed.plain.isprintable()


@pytest.mark.parametrize("text", HOSTILE)
def test_visible_keeps_printable_text_and_escapes_the_rest(text: str) -> None:
    shown = safetext.visible(text)
    assert shown.isprintable()
    expected = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
    assert shown == expected


def test_quote_bounds_and_escapes() -> None:
    assert safetext.quote("a" * 1_000_000) == repr("a" * 80) + "… (1,000,000 characters)"
    assert safetext.quote("\x1b]0;x\x07") == "'\\x1b]0;x\\x07'"
    assert safetext.quote(frozenset()) == "<frozenset>"
    assert safetext.clip("abc", 2) == "ab… (3 characters)"


def test_unicode_safe_writes_undecodable_bytes_as_escapes() -> None:
    name = os.fsdecode(b"caf\xe9")
    safe = safetext.unicode_safe(name)
    assert safe == "caf\\xe9"
    safe.encode("utf-8")
    assert safetext.unicode_safe("café") == "café"


@pytest.mark.parametrize("text", ["١٢", "1_0", "１０", "1e3", "inf", "nan", "-1", "0x10", "", " ", "1.", ".5"])
def test_ascii_decimal_refuses_what_float_would_take(text: str) -> None:
    assert safetext.ascii_decimal(text) is None


@pytest.mark.parametrize("text", ["0", "12", "0.52", " 10.43 "])
def test_ascii_decimal_accepts_plain_numbers(text: str) -> None:
    assert safetext.ascii_decimal(text) == text.strip()


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.mark.parametrize("text", HOSTILE)
def test_html_text_parses_back_to_itself(text: str) -> None:
    parser = _Collect()
    parser.feed(f'<p title="{safetext.html(text)}">{safetext.html(text)}</p>')
    parser.close()
    assert parser.tags == ["p"]
    assert parser.attrs == [("title", safetext.visible(text))]
    assert "".join(parser.text) == safetext.visible(text)


# --------------------------------------------------------------------------- a leaderboard of hostile teams


@pytest.fixture(scope="module")
def hostile_board(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A ranked store whose team and leader names, and invalid file names, are all hostile."""
    root = tmp_path_factory.mktemp("hostile_board")
    sub, ref = random_align(40, seed=3)
    (root / "eval.json").write_text(json.dumps(ref))
    rows = []
    for i, team in enumerate(HOSTILE):
        noisy = [dict(r, total_score=r["total_score"] + 0.05 * i * ((j % 5) - 2)) for j, r in enumerate(sub)]
        path = align_zip(root / f"s{i}.zip", noisy)
        rows.append({"path": path.name, "team": team, "leader": HOSTILE[-1 - i], "submitted_at": "",
                     "phase": ""})
    bad = align_zip(root / "bad.zip", [{"img_path": "<img src=x onerror=alert(1)>\x1b[2J" * 3}])
    rows.append({"path": bad.name, "team": "<script>x</script>\n# h", "leader": "", "submitted_at": "",
                 "phase": ""})
    with open(root / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "team", "leader", "submitted_at", "phase"])
        writer.writeheader()
        writer.writerows(rows)
    db = root / "lb.db"
    board, _ = rank(None, "align", root / "eval.json", db, manifest=root / "manifest.csv")
    assert len(board.rows) == len(HOSTILE) and len(board.invalid) == 1
    return db, [r.team for r in board.rows]


def test_csv_cells_are_never_formulas(hostile_board: tuple[Path, list[str]]) -> None:
    db, teams = hostile_board
    rows = list(csv.DictReader(io.StringIO(render(db, "align", "csv"))))
    assert len(rows) == len(HOSTILE)
    for row in rows:
        for key in ("team", "leader"):
            assert not row[key].startswith(("=", "+", "-", "@", "\t", "\r", "\n")), row[key]
    assert sorted(r["team"].lstrip("'") for r in rows) == sorted(safetext.visible(t) for t in teams)


def test_markdown_table_keeps_its_shape(hostile_board: tuple[Path, list[str]]) -> None:
    db, teams = hostile_board
    page = MarkdownIt("commonmark").enable("table").render(render(db, "align", "md"))
    parser = _Collect()
    parser.feed(page)
    allowed = {"h2", "table", "thead", "tbody", "tr", "th", "td", "p", "ul", "li"}
    assert set(parser.tags) <= allowed, set(parser.tags) - allowed
    assert parser.tags.count("tr") == len(HOSTILE) + 1
    assert parser.tags.count("h2") == 1
    assert parser.tags.count("td") == len(HOSTILE) * parser.tags.count("th")
    assert parser.tags.count("li") == 1  # the one invalid submission, on one line
    text = "".join(parser.text)
    for team in teams:
        assert safetext.visible(team) in text


def test_html_page_has_only_its_own_markup(hostile_board: tuple[Path, list[str]]) -> None:
    db, teams = hostile_board
    parser = _Collect()
    parser.feed(render(db, "align", "html"))
    assert "script" not in parser.tags and "img" not in parser.tags and "a" not in parser.tags
    assert all(not name.startswith("on") for name, _ in parser.attrs)
    text = "".join(parser.text)
    for team in teams:
        assert safetext.visible(team) in text


def test_latex_table_compiles_with_pdflatex(hostile_board: tuple[Path, list[str]], tmp_path: Path) -> None:
    db, _ = hostile_board
    table = render(db, "align", "latex")
    assert all(ch.isprintable() or ch == "\n" for ch in table)
    latin = "\n".join(line for line in table.splitlines() if line.isascii())  # every name here is Latin
    assert latin == table.rstrip("\n"), "Latin-script names must come out as ASCII LaTeX"
    if shutil.which("pdflatex") is None:
        if os.environ.get("REQUIRE_PDFLATEX"):
            pytest.fail("pdflatex is required (REQUIRE_PDFLATEX is set) but not installed")
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-base)")
    doc = ("\\documentclass{article}\n\\providecommand{\\toprule}{\\hline}\\providecommand{\\midrule}{\\hline}"
           "\\providecommand{\\bottomrule}{\\hline}\n\\begin{document}\n" + table + "\\end{document}\n")
    (tmp_path / "t.tex").write_text(doc, encoding="utf-8")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "t.pdf").stat().st_size > 0


def test_latex_marks_tables_that_need_a_unicode_engine() -> None:
    assert safetext.latex("李") == "李" and safetext.needs_unicode_engine(safetext.latex("李"))
    assert safetext.latex("Zoë Łódź") == r'Zo\"{e} \L{}\'{o}d\'{z}'
    assert not safetext.needs_unicode_engine(safetext.latex("Zoë Łódź"))


def test_terminal_commands_never_print_raw_controls(hostile_board: tuple[Path, list[str]]) -> None:
    db, _ = hostile_board
    for fmt in ("table", "md", "csv", "latex", "html"):
        done = subprocess.run([*CLI, "leaderboard", "--db", str(db), "--track", "align", "--format", fmt],
                              capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        for stream in (done.stdout, done.stderr):
            assert not re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", stream.replace(b"\r\n", b"\n")), fmt
            assert b"Traceback" not in stream
    table = subprocess.run([*CLI, "leaderboard", "--db", str(db), "--track", "align"], capture_output=True,
                           text=True, timeout=120, env={**os.environ, "COLUMNS": "1000"}).stdout
    assert "[/bold]" in table and "[link=https://evil.example]" in table and ":warning:" in table


# --------------------------------------------------------------------------- bounded reports


def test_problem_log_keeps_a_few_dozen_and_counts_the_rest() -> None:
    log = ProblemLog()
    for i in range(1100):
        log.add(error(f"output.json, record {i}", "bad", "fix it", "non-numeric element scores"))
    for i in range(100):
        log.add(error(f"output.json, record {i}", "worse", "", "records without img_path"))
    problems = log.problems()
    assert len(problems) == 10 + 10 + 2 <= MAX_LISTED
    summary = [p for p in problems if p.count > 1]
    assert [(p.what, p.count) for p in summary] == [("and 1,090 more non-numeric element scores.", 1090),
                                                    ("and 90 more records without img_path.", 90)]
    assert sum(p.count for p in problems) == 1200


def _run_limited(args: list[str]) -> tuple[int, bytes, int]:
    """Run the CLI in a child; return (exit code, stdout+stderr, the child's peak memory in KiB).

    The peak is the child's own VmHWM: ``ru_maxrss`` would also count the parent's memory, which
    Linux carries over to the child when a vfork()ed child (subprocess's way) runs exec.
    """
    code = ("import re, runpy, sys; sys.argv = ['ntire-t2iqa'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('ntire_t2iqa', run_name='__main__')\n"
            "finally:\n    status = open('/proc/self/status').read()\n"
            "    print('MAXRSS', re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1), file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, timeout=300)
    output = done.stdout + done.stderr
    peak = int(re.findall(rb"MAXRSS (\d+)", output)[-1])
    return done.returncode, output.split(b"MAXRSS")[0], peak


def test_a_huge_key_and_many_bad_scores_give_a_short_report(tmp_path: Path) -> None:
    record = {"img_path": "x" * 1_000_000, "total_score": 1,
              "element_score": {f"e{i} (\x1b[2J[/bold])": "no" for i in range(1100)}}
    zip_path = tmp_path / "huge.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("output.json", json.dumps([record]))
        zf.writestr("readme.txt", README_TEMPLATE)
    assert zip_path.stat().st_size < 10_000
    for extra in ([], ["--json"]):
        rc, output, _ = _run_limited(["validate", str(zip_path), "--track", "align", *extra])
        assert rc == 1
        assert len(output) < 64 * 1024
        assert b"\x1b" not in output
        assert b"1,090 more bad element scores" in output
        assert b"1,000,000 characters" in output


def test_a_million_tiny_records_validate_in_bounded_memory(tmp_path: Path) -> None:
    n = 1_000_000
    zip_path = tmp_path / "many.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("output.json", "[" + ",".join(['{"img_path": "a"}'] * n) + "]")
        zf.writestr("readme.txt", README_TEMPLATE)
    assert zip_path.stat().st_size < 100_000
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rc, output, peak = _run_limited(["validate", str(zip_path), "--track", "align"])
    assert rc == 1
    assert len(output) < 64 * 1024
    assert b"999,990 more records without total_score" in output
    assert b"2,000,000 error(s)" in output
    assert peak < 1024 * 1024, f"peak {peak / 1024:.0f} MiB (this process: {baseline / 1024:.0f} MiB)"
