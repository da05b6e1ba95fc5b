"""What an organizer publishes by default never lets anyone recover a hidden per-image reference value.

A team knows its own predictions; a plot or list that pairs them with the reference, or any
run of per-image numbers that follows the reference, gives the hidden labels away. Every
default export is parsed down to its numbers (SVG coordinates and titles included) and
scanned for such a run; the scan must find the one on the organizer-only ``--private`` page.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import align_zip, random_align
from numpy.lib.stride_tricks import sliding_window_view

from ntire_t2iqa.cli import main
from ntire_t2iqa.errors import ReferenceDataError
from ntire_t2iqa.leaderboard import Store, rank, render, stored_scope
from ntire_t2iqa.leaderboard.html import PRIVATE_NOTICE

N_IMAGES = 400
WINDOW = 16  # a run of this many numbers that follows the reference this closely is no accident
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A ranked store: three teams, two submissions each, bootstrap intervals; and the reference in store order."""
    tmp = tmp_path_factory.mktemp("public")
    sub, ref = random_align(N_IMAGES, seed=51)
    (tmp / "eval.json").write_text(json.dumps(ref))
    rng = np.random.default_rng(5)
    for t, team in enumerate(["north", "south", "east"]):
        (tmp / "subs" / team).mkdir(parents=True)
        for k in range(2):
            noisy = [{**r, "total_score": r["total_score"] + float(rng.normal(0, 0.3 + t))} for r in sub]
            align_zip(tmp / "subs" / team / f"{k}.zip", noisy)
    db = tmp / "lb.db"
    board, _ = rank(tmp / "subs", "align", tmp / "eval.json", db, resamples=20)
    with Store(db) as st:
        scope = stored_scope(st, "align")
        gts = [st.details(scope, row.sha256)["gt_total"] for row in board.rows]
    assert all(np.array_equal(gts[0], g) for g in gts) and len(gts[0]) == N_IMAGES
    return db, np.asarray(gts[0], float)


def numbers(text: str) -> np.ndarray:
    """Every number in a document, in order (attribute values, titles, cells, JSON)."""
    return np.array([float(m) for m in _NUMBER.findall(text)])


def _standardized(rows: np.ndarray) -> np.ndarray:
    centred = rows - rows.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(centred, axis=1, keepdims=True)
    return np.divide(centred, norm, out=np.zeros_like(centred), where=norm > 1e-12)


def best_run_correlation(values: np.ndarray, reference: np.ndarray, max_stride: int = 6) -> float:
    """The largest |Pearson r| between any run of ``WINDOW`` numbers of the document (taking every
    1st..``max_stride``-th number, from every offset) and any ``WINDOW`` consecutive reference values."""
    ref = _standardized(sliding_window_view(reference, WINDOW))
    best = 0.0
    for stride in range(1, max_stride + 1):
        for offset in range(stride):
            seq = values[offset::stride]
            if seq.size < WINDOW:
                continue
            corr = _standardized(sliding_window_view(seq, WINDOW)) @ ref.T
            best = max(best, float(np.abs(corr).max()))
    return best


@pytest.mark.parametrize("fmt", ["html", "md", "csv", "latex", "json"])
def test_default_exports_hold_no_per_image_reference_values(store, fmt) -> None:
    db, gt = store
    text = render(db, "align", fmt)
    values = numbers(text)
    assert 'data-plot="scatter"' not in text and "<circle" not in text and PRIVATE_NOTICE not in text
    assert values.size < N_IMAGES  # fewer numbers than images: there is no value for each image
    assert best_run_correlation(values, gt) < 0.98
    assert not {f"{v:.4f}" for v in gt if v not in (1.0, 5.0)} & {f"{v:.4f}" for v in values}
    if fmt == "html":  # the aggregate plots stay
        assert 'data-plot="histogram"' in text and 'data-plot="components"' in text


def test_private_page_holds_the_scatter_and_says_so(store) -> None:
    db, gt = store
    page = render(db, "align", "html", team="south", private=True)
    assert 'data-plot="scatter"' in page and page.count('class="point"') == N_IMAGES
    assert "Predicted vs reference score: south" in page
    assert f"<title>{PRIVATE_NOTICE}" in page and 'id="private-banner"' in page
    assert page.index('id="private-banner"') < page.index("<h1>") < page.index('id="leaderboard"')
    assert best_run_correlation(numbers(page), gt) > 0.999  # the scan finds what the public page must not hold
    top = render(db, "align", "html", private=True)  # no team: the top row's scatter, still marked
    assert 'data-plot="scatter"' in top and 'id="private-banner"' in top


def test_team_highlights_a_row_on_public_outputs_and_picks_the_private_scatter(store, tmp_path) -> None:
    db, gt = store
    page = render(db, "align", "html", team="south")  # a highlight is not a leak: still a public page
    assert page.count('<tr class="ranked highlight">') == 1 and page.count('<tr class="ranked') == 3
    highlighted = page.split('<tr class="ranked highlight">')[1].split("</tr>")[0]
    assert '<td class="team">south</td>' in highlighted
    assert 'class="highlight"' in page.split('data-plot="components"')[1]  # the band behind south's bars
    assert 'data-plot="scatter"' not in page and 'id="private-banner"' not in page and PRIVATE_NOTICE not in page
    assert best_run_correlation(numbers(page), gt) < 0.98
    md = render(db, "align", "md", team="south")
    assert len([line for line in md.splitlines() if line.startswith("| **")]) == 1 and "| **south** |" in md
    latex = render(db, "align", "latex", team="south")
    assert len([line for line in latex.splitlines() if r"\textbf{south}" in line]) == 1
    assert render(db, "align", "md") == render(db, "align", "md", team=None) and "**" not in render(db, "align", "md")
    for fmt in ("csv", "json"):  # plain data: no styling to carry a highlight
        with pytest.raises(ValueError, match="highlights"):
            render(db, "align", fmt, team="south")
    with pytest.raises(ReferenceDataError, match="no team 'nobody'"):
        render(db, "align", "html", team="nobody")
    with pytest.raises(ValueError, match="HTML"):
        render(db, "align", "csv", private=True)
    runner = CliRunner()
    base = ["leaderboard", "--db", str(db), "--track", "align", "--format", "html"]
    res = runner.invoke(main, [*base, "--team", "south"])
    assert res.exit_code == 0 and 'ranked highlight' in res.stdout and 'id="private-banner"' not in res.stdout
    res = runner.invoke(main, ["leaderboard", "--db", str(db), "--track", "align", "--team", "south"])
    assert res.exit_code == 0 and "south" in res.stdout
    res = runner.invoke(main, ["leaderboard", "--db", str(db), "--track", "align", "--format", "csv", "--team", "x"])
    assert res.exit_code == 2 and "--team highlights" in res.output and "Traceback" not in res.output
    res = runner.invoke(main, [*base, "--team", "nobody"])
    assert res.exit_code == 2 and "no team 'nobody'" in res.output
    res = runner.invoke(main, ["leaderboard", "--db", str(db), "--track", "align", "--format", "csv", "--private"])
    assert res.exit_code == 2 and "--format html" in res.output
    page = tmp_path / "private.html"
    res = runner.invoke(main, [*base, "--private", "--team", "south", "--out", str(page)])
    assert res.exit_code == 0, res.output
    text = page.read_text()
    assert "do not publish" in res.stderr and 'id="private-banner"' in text
    assert "Predicted vs reference score: south" in text and 'ranked highlight' in text
    res = runner.invoke(main, base)
    assert res.exit_code == 0 and 'data-plot="scatter"' not in res.stdout and 'id="private-banner"' not in res.stdout
