"""`integrity`: label probing and collusion found from the store, on teams built to behave so.

One Track 1 challenge (300 images) with: a team probing the labels with a chain of
single-image changes, a team probing element decisions only, a team copying another's file
with small noise, two teams submitting the public baseline (the same file, and the same
predictions in another zip), and three normal teams. Every chain and copied pair must be
found, every figure must equal one computed here from the submitted JSON with scipy, and no
normal team may be flagged.
"""

from __future__ import annotations

import hashlib
import json
import math
from html.parser import HTMLParser

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import align_zip, random_align
from scipy import stats

from ntire_t2iqa import cli_common
from ntire_t2iqa.cli import main
from ntire_t2iqa.leaderboard import FORMATS, rank, render
from ntire_t2iqa.leaderboard.integrity import IntegrityOptions, analyse
from ntire_t2iqa.leaderboard.integrity_html import to_html
from ntire_t2iqa.tracks.common import README_TEMPLATE

N = 300
HOSTILE = "[bold red]Copy[/bold red]\x1b]0;pwned\x07<script>alert(1)</script>|=cmd"
PROBED = [7, 42, 99, 150, 211]  # images the prober changes, one per probe
FLIPPED = [3, 120, 260]  # images whose element decisions the decision prober flips


def _team_model(ref: list[dict], sigma: float, rng: np.random.Generator) -> list[dict]:
    """A normal team's model: the reference plus its own noise."""
    return [{"img_path": r["img_path"], "total_score": r["total_score"] + float(rng.normal(0, sigma)),
             "element_score": {k: float(np.clip(v + rng.normal(0, 0.3), 0, 1)) for k, v in r["element_score"].items()}}
            for r in ref]


def _variant(recs: list[dict], rng: np.random.Generator, sigma: float = 0.2) -> list[dict]:
    """Another submission of the same team: the model retrained (every image moves a little)."""
    return [{**r, "total_score": r["total_score"] + float(rng.normal(0, sigma)),
             "element_score": {k: float(np.clip(v + rng.normal(0, 0.05), 0, 1)) for k, v in r["element_score"].items()}}
            for r in recs]


def _probe(recs: list[dict], i: int, total: bool = True) -> list[dict]:
    """``recs`` with image ``i`` changed: its total (unless ``total`` is False) and every element decision."""
    out = [dict(r) for r in recs]
    r = out[i]
    if total:
        r["total_score"] = r["total_score"] + 2.5
    r["element_score"] = {k: 0.9 if v < 0.5 else 0.1 for k, v in r["element_score"].items()}
    return out


@pytest.fixture(scope="module")
def challenge(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("integrity")
    _, ref = random_align(N, seed=5)
    (tmp / "eval.json").write_text(json.dumps(ref))
    rng = np.random.default_rng(2025)
    plan: list[tuple[str, str, list[dict], str]] = []  # (team, file, records, readme)
    models = {t: _team_model(ref, s, rng) for t, s in (("honest1", 0.7), ("honest2", 0.8), ("honest3", 0.9))}
    for team, model in models.items():
        plan += [(team, f"{team}_{k}.zip", _variant(model, rng), README_TEMPLATE) for k in range(3)]
    plan.append(("honest3", "honest3_again.zip", plan[-1][2], README_TEMPLATE))  # a resubmission: no probe
    chain = [_team_model(ref, 0.75, rng)]
    for i in PROBED:
        chain.append(_probe(chain[-1], i))
    plan += [("prober", f"probe_{k}.zip", recs, README_TEMPLATE) for k, recs in enumerate(chain)]
    dchain = [_team_model(ref, 0.85, rng)]
    for i in FLIPPED:
        dchain.append(_probe(dchain[-1], i, total=False))
    plan += [("decider", f"d_{k}.zip", recs, README_TEMPLATE) for k, recs in enumerate(dchain)]
    source = plan[0][2]
    copied = [{"img_path": r["img_path"], "total_score": r["total_score"] + float(rng.normal(0, 0.01)),
               "element_score": {k: float(np.clip(v + rng.normal(0, 0.01), 0, 1))
                                 for k, v in r["element_score"].items()}} for r in source]
    plan += [(HOSTILE, "mine.zip", copied, README_TEMPLATE)]
    baseline = _team_model(ref, 1.0, rng)
    plan += [("baseline:FGA-BLIP2", "baseline.zip", baseline, README_TEMPLATE), ("lazy", "baseline.zip", baseline,
                                                                                 README_TEMPLATE),
             ("lazy2", "ours.zip", baseline, README_TEMPLATE.replace("Other description : ", "Other description : x"))]
    lines = ["path,team,leader,submitted_at,phase"]
    for k, (team, file, recs, readme) in enumerate(plan):
        folder = tmp / f"t{hashlib.sha1(team.encode()).hexdigest()[:8]}"
        folder.mkdir(exist_ok=True)
        if not (folder / file).exists():
            align_zip(folder / file, recs, readme)
        quoted = '"' + team.replace('"', '""') + '"'
        lines.append(f"{folder.name}/{file},{quoted},,2025-03-{1 + k // 8:02d}T{k % 8 + 8:02d}:00:00Z,test")
    (tmp / "manifest.csv").write_text("\n".join(lines) + "\n")
    db = tmp / "lb.db"
    rank(None, "align", tmp / "eval.json", db, manifest=tmp / "manifest.csv", workers=2)
    return {"db": db, "ref": ref, "plan": plan, "tmp": tmp, "report": analyse(db, "align")}


def _by_path(recs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(totals, element decisions) in the scorer's order: sorted img_path, each record's element order."""
    ordered = sorted(recs, key=lambda r: r["img_path"])
    totals = np.array([r["total_score"] for r in ordered])
    decisions = np.array([v >= 0.5 for r in ordered for v in r["element_score"].values()])
    return totals, decisions


def test_every_probe_chain_is_found_with_its_images_and_bits(challenge) -> None:
    report, ref = challenge["report"], challenge["ref"]
    probing = {t.team: t for t in report.probing}
    prober = probing["prober"]
    assert prober.flagged and len(prober.chains) == 1
    chain = prober.chains[0]
    assert [s.sub.file for s in chain.steps] == [f"probe_{k}.zip" for k in range(len(PROBED) + 1)]
    assert [s.parent.file if s.parent else None for s in chain.steps] == \
        [None] + [f"probe_{k}.zip" for k in range(len(PROBED))]
    names = [[report.data.image_name(i) for i in s.changed] for s in chain.probes]
    assert names == [[ref[i]["img_path"]] for i in PROBED]
    assert (prober.probes, prober.single_image_probes) == (5, 5) and prober.bits == pytest.approx(5.0)
    decider = probing["decider"]  # totals untouched: found through the element decisions alone
    assert decider.flagged and decider.probes == 3 and decider.bits == pytest.approx(3 * math.log2(2))
    assert sorted(report.data.image_name(i) for i in decider.images()) == sorted(ref[i]["img_path"] for i in FLIPPED)
    assert set(probing) == {"prober", "decider"}  # normal teams have no probe pair at all
    assert probing.get("honest3") is None  # the very same file twice is a repeat, never a probe


def test_copied_pairs_and_baseline_copies_are_found_with_exact_evidence(challenge) -> None:
    report, plan = challenge["report"], challenge["plan"]
    pairs = {(p.team_a, p.team_b): p for p in report.copies}
    assert list(pairs) == [(HOSTILE, "honest1")] or list(pairs) == [("honest1", HOSTILE)]
    pair = next(iter(pairs.values()))
    assert len(pair.matches) == 1 and pair.first == "honest1"
    m = pair.matches[0]
    files = {m.a.file, m.b.file}
    assert files == {"honest1_0.zip", "mine.zip"}
    (ta, da), (tb, db) = _by_path(plan[0][2]), _by_path(next(r for t, f, r, _ in plan if f == "mine.zip"))
    assert m.pearson == pytest.approx(stats.pearsonr(ta, tb)[0], abs=1e-9)
    assert m.spearman == pytest.approx(stats.spearmanr(ta, tb)[0], abs=1e-9)
    assert m.agreement == pytest.approx(np.mean(da == db), abs=1e-12) and m.agreement < 1
    assert m.identical_images == int(np.sum(ta == tb)) and not m.identical
    base = {(p.team_a, p.team_b): p for p in report.baseline_copies}
    assert set(base) == {("lazy", "baseline:FGA-BLIP2"), ("lazy2", "baseline:FGA-BLIP2")}
    assert all(p.matches[0].identical and p.matches[0].pearson == 1.0 for p in base.values())
    assert all(p.first == "baseline:FGA-BLIP2" for p in base.values())
    flagged = {t for p in report.collusion for t in (p.team_a, p.team_b)}
    assert flagged == {HOSTILE, "honest1", "lazy", "lazy2", "baseline:FGA-BLIP2"}
    # lazy and lazy2 hold identical predictions, but both are the baseline's: not a copy of each other
    assert not {"lazy", "lazy2"} & {t for p in report.copies for t in (p.team_a, p.team_b)}


def test_thresholds_are_options(challenge) -> None:
    strict = analyse(challenge["db"], "align", IntegrityOptions(min_agreement=0.9999, min_probes=6))
    assert not strict.copies and not any(t.flagged for t in strict.probing)
    assert {p.team_a for p in strict.baseline_copies} == {"lazy", "lazy2"}  # identical files still match
    narrow = analyse(challenge["db"], "align", IntegrityOptions(probe_max_images=1, probe_max_share=0.0))
    assert {t.team for t in narrow.probing} == {"prober", "decider"}  # all their probes are single-image


def test_public_outputs_hold_no_integrity_data_and_stay_unchanged(challenge) -> None:
    db = challenge["db"]
    before = {fmt: render(db, "align", fmt) for fmt in FORMATS if fmt != "table"}
    stamp = hashlib.sha256(db.read_bytes()).hexdigest()
    analyse(db, "align")
    CliRunner().invoke(main, ["integrity", "--db", str(db), "--track", "align", "--json"])
    assert hashlib.sha256(db.read_bytes()).hexdigest() == stamp  # read-only
    for fmt, text in before.items():
        assert render(db, "align", fmt) == text
        low = text.lower()
        assert not any(word in low for word in ("probe pair", "probing", "bits", "collusion", "integrity",
                                                "refused", "organizers only", "matching", "changed"))


def test_cli_terminal_json_and_private_html_with_a_hostile_team_name(challenge, tmp_path, monkeypatch) -> None:
    db = challenge["db"]
    monkeypatch.setattr(cli_common.out, "_width", 1000)  # a wide terminal: no cell is wrapped
    res = CliRunner().invoke(main, ["integrity", "--db", str(db), "--track", "align", "--html",
                                    str(tmp_path / "private.html")])
    assert res.exit_code == 0, res.output
    assert "ORGANIZERS ONLY" in res.stdout and "prober" in res.stdout and "\x1b" not in res.stdout
    assert "[bold red]Copy[/bold red]" in res.stdout  # markup shown as text, never applied
    assert "\\x1b]0;pwned\\x07" in res.stdout and "never publish" in res.stderr
    payload = json.loads(CliRunner().invoke(main, ["integrity", "--db", str(db), "--track", "align",
                                                   "--json"]).stdout)
    assert payload["private"].startswith("ORGANIZERS ONLY")
    assert [t["team"] for t in payload["probing"] if t["flagged"]] == ["prober", "decider"]
    prober = payload["probing"][0]
    assert prober["team"] == "prober" and prober["bits_estimate"] == 5.0
    assert sorted(prober["probed_images"], key=lambda x: x["image"]) == \
        sorted(({"image": challenge["ref"][i]["img_path"], "probes": 1} for i in PROBED), key=lambda x: x["image"])
    assert {payload["collusion"][0]["team_a"], payload["collusion"][0]["team_b"]} == {HOSTILE, "honest1"}
    assert "/" not in json.dumps([m["a"]["file"] for p in payload["collusion"] for m in p["matches"]])
    page = (tmp_path / "private.html").read_text()
    assert page.index('id="private-banner"') < page.index("<h1>")
    assert "<title>ORGANIZERS ONLY - DO NOT PUBLISH" in page and 'content="noindex, nofollow"' in page

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[str] = []
            self.text: list[str] = []

        def handle_starttag(self, tag: str, attrs: list) -> None:
            self.tags.append(tag)

        def handle_data(self, data: str) -> None:
            self.text.append(data)

    parser = Collect()
    parser.feed(page)
    assert "script" not in parser.tags and HOSTILE.replace("\x1b", "").replace("\x07", "") not in page
    assert any("<script>alert(1)</script>" in t for t in parser.text)  # the name, as text
    assert to_html(challenge["report"]) == page


def test_organizer_errors_exit_2_with_the_fix(challenge, tmp_path) -> None:
    for args in (["--db", str(tmp_path / "none.db"), "--track", "align"],
                 ["--db", str(challenge["db"]), "--track", "structure"]):
        res = CliRunner().invoke(main, ["integrity", *args])
        assert res.exit_code == 2 and "Fix:" in res.stderr and "Traceback" not in res.output
    assert not (tmp_path / "none.db").exists()  # read-only: nothing created
