"""The HTML leaderboard in a real browser: table and plots present, in the DOM and on screen; the scatter
only on the organizer-only page, under its banner."""

from __future__ import annotations

import json

import numpy as np
from browser import render as browser_render
from helpers import align_zip, random_align
from PIL import Image

from ntire_t2iqa.leaderboard import rank, render
from ntire_t2iqa.leaderboard.html import PRIVATE_NOTICE


def test_html_leaderboard_renders_table_and_plots(tmp_path) -> None:
    sub, ref = random_align(80, seed=31)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    rng = np.random.default_rng(0)
    for t, team in enumerate(["north", "south", "east", "baseline"]):
        (tmp_path / "subs" / team).mkdir(parents=True)
        for k in range(2):
            noisy = [{**r, "total_score": r["total_score"] + float(rng.normal(0, 0.3 + t))} for r in sub]
            align_zip(tmp_path / "subs" / team / f"{k}.zip", noisy)
    db = tmp_path / "lb.db"
    rank(tmp_path / "subs", "align", tmp_path / "eval.json", db, resamples=30)
    page = tmp_path / "board.html"
    page.write_text(render(db, "align", "html"))  # the page to publish: aggregates only
    dom = browser_render(page, tmp_path / "public.png")
    assert dom.count('<tr class="ranked">') == 4
    for plot in ("histogram", "components"):
        assert f'data-plot="{plot}"' in dom
    assert 'data-plot="scatter"' not in dom and 'id="private-banner"' not in dom and "<circle" not in dom
    page.write_text(render(db, "align", "html", team="south", private=True))  # organizers only
    dom = browser_render(page, tmp_path / "shot.png")
    assert dom.count('<tr class="ranked') == 4 and dom.count('<tr class="ranked highlight">') == 1  # south's row
    for plot in ("histogram", "components", "scatter"):
        assert f'data-plot="{plot}"' in dom
    assert dom.count('class="point"') == 80 and "Predicted vs reference score: south" in dom
    assert f"<title>{PRIVATE_NOTICE}" in dom and f'<div id="private-banner" role="alert">{PRIVATE_NOTICE}' in dom
    assert "95% intervals" in dom
    shot = np.asarray(Image.open(tmp_path / "shot.png").convert("RGB"))
    assert shot.shape[0] >= 1000 and shot.shape[1] >= 1000
    blue = np.all(np.abs(shot.astype(int) - [0x33, 0x66, 0xCC]) < 40, axis=-1)  # the bars and points
    assert blue.sum() > 500
    assert len(np.unique(shot.reshape(-1, 3), axis=0)) > 50  # text, table and plots, not a blank page
    banner = np.all(np.abs(shot[:150].astype(int) - [0xB0, 0x00, 0x20]) < 40, axis=-1)  # red, at the top
    assert banner.sum() > 20_000
