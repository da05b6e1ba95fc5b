"""Every organizer command and option through the command line, with the values checked.

Each leaderboard format is parsed back and compared with the store and with each file scored
on its own; bootstrap intervals are recomputed from the same resamples with the plain official
program; a store re-ranked against a corrected reference or another fit never reuses old results.
"""

from __future__ import annotations

import csv
import io
import json
import pickle
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import align_zip, noisy_align, random_align, random_structure, structure_zip
from naive_official import fitted_plcc, score_align

from ntire_t2iqa import metrics, score
from ntire_t2iqa.cli import main
from ntire_t2iqa.leaderboard import stored_scope
from ntire_t2iqa.leaderboard.store import Store

N_IMAGES = 24
#: (file, team, submitted_at, phase, noise on the totals)
PLAN = [("n-dev.zip", "north", "2025-02-01T10:00:00Z", "dev", 0.2),
        ("n-test.zip", "north", "2025-03-02T10:00:00Z", "test", 1.2),
        ("s-test1.zip", "south", "2025-03-02T09:00:00Z", "test", 0.5),
        ("s-test2.zip", "south", "2025-03-03T09:00:00Z", "test", 2.5),
        ("e-dev.zip", "east", "2025-02-02T10:00:00Z", "dev", 0.8)]


def _invoke(*args: str) -> str:
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, res.output
    return res.stdout


@pytest.fixture(scope="module")
def challenge(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A manifest challenge in two phases, ranked once through the CLI with a bootstrap."""
    tmp = tmp_path_factory.mktemp("cli_commands")
    sub, ref = random_align(N_IMAGES, seed=17)
    (tmp / "eval.json").write_text(json.dumps(ref))
    (tmp / "subs").mkdir()
    rows = ["path,team,leader,submitted_at,phase"]
    records = {}
    for k, (name, team, when, phase, noise) in enumerate(PLAN):
        records[name] = noisy_align(sub, noise, seed=k)
        align_zip(tmp / "subs" / name, records[name])
        rows.append(f"subs/{name},{team},Leader {team},{when},{phase}")
    (tmp / "m.csv").write_text("\n".join(rows) + "\n")
    db = tmp / "lb.db"
    _invoke("rank", "--manifest", str(tmp / "m.csv"), "--track", "align", "--ref", str(tmp / "eval.json"),
            "--db", str(db), "--bootstrap", "60", "--seed", "5")
    scores = {name: score(tmp / "subs" / name, tmp / "eval.json", track="align") for name, *_ in PLAN}
    return {"tmp": tmp, "db": db, "ref": ref, "records": records, "scores": scores}


def _expected(ch: dict, pick: str = "best", phase: str | None = None) -> list[tuple[str, str]]:
    """(team, file) per row, computed from each file scored on its own."""
    chosen: dict[str, tuple] = {}
    for name, team, when, ph, _ in PLAN:
        if phase is not None and ph != phase:
            continue
        main_score = ch["scores"][name].main_score
        key = (main_score, when) if pick == "best" else (when,)
        if team not in chosen or key > chosen[team][0]:
            chosen[team] = (key, name)
    order = sorted(chosen, key=lambda t: -ch["scores"][chosen[t][1]].main_score)
    return [(t, chosen[t][1]) for t in order]


def _store_rows(db: Path) -> dict[str, dict]:
    """The stored result of each file, by file name, read from the store itself."""
    with Store(db, readonly=True) as store:
        scope = stored_scope(store, "align")
        return {Path(r["path"]).name: r for r in store.rows(scope, None)}


@pytest.mark.parametrize("pick,phase", [("best", None), ("last", None), ("best", "test"), ("last", "dev")])
def test_csv_and_json_read_back_equal_the_store(challenge: dict, pick: str, phase: str | None) -> None:
    base = ["leaderboard", "--db", str(challenge["db"]), "--track", "align", "--pick", pick]
    if phase:
        base += ["--phase", phase]
    want = _expected(challenge, pick, phase)
    stored = _store_rows(challenge["db"])
    rows = list(csv.DictReader(io.StringIO(_invoke(*base, "--format", "csv"))))
    doc = json.loads(_invoke(*base, "--format", "json"))
    assert [r["team"] for r in rows] == [t for t, _ in want] == [r["team"] for r in doc["rows"]]
    for i, (team, name) in enumerate(want):
        result, rec = challenge["scores"][name], stored[name]
        assert rec["sha256"] == rows[i]["sha256"] == doc["rows"][i]["sha256"]
        for key in ("main_score", "srcc", "plcc", "acc"):
            value = result.main_score if key == "main_score" else getattr(result, key)
            assert float(rows[i][key]) == doc["rows"][i][key] == value
            assert value == (rec["main_score"] if key == "main_score" else rec["metrics"][key])
        assert int(rows[i]["rank"]) == doc["rows"][i]["rank"] == i + 1
        subs = sum(1 for _, t, _, ph, _ in PLAN if t == team and phase in (None, ph))
        assert int(rows[i]["submissions"]) == doc["rows"][i]["submissions"] == subs
        assert rows[i]["leader"] == f"Leader {team}"


def _markdown_rows(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| Rank")]
    return [[c.strip().replace("\\", "") for c in line.strip("|").split("|")] for line in lines]


def _latex_rows(text: str) -> list[list[str]]:
    body = text.split("\\midrule")[1].split("\\bottomrule")[0]
    return [[c.strip() for c in line.rstrip("\\ ").split("&")] for line in body.strip().splitlines()]


class _Cells(HTMLParser):
    """The leaderboard table's cells, by class, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self._cls: str | None = None
        self._in_table = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "table":
            self._in_table = a.get("id") == "leaderboard"
        elif self._in_table and tag == "tr" and a.get("class"):
            self.rows.append({"_class": a["class"]})
        elif self._in_table and tag == "td":
            self._cls = a.get("class")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_table = False
        if tag == "td":
            self._cls = None

    def handle_data(self, data: str) -> None:
        if self._cls and self.rows:
            self.rows[-1][self._cls] = self.rows[-1].get(self._cls, "") + data


def _terminal_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("│").split("│")] for line in text.splitlines()
            if line.startswith("│") and line.split("│")[1].strip().isdigit()]


@pytest.mark.parametrize("pick,phase", [("best", None), ("last", "test")])
def test_every_text_format_shows_the_stored_numbers(challenge: dict, pick: str, phase: str | None) -> None:
    base = ["leaderboard", "--db", str(challenge["db"]), "--track", "align", "--pick", pick]
    if phase:
        base += ["--phase", phase]
    want = [(team, challenge["scores"][name]) for team, name in _expected(challenge, pick, phase)]
    md = _markdown_rows(_invoke(*base, "--format", "md"))
    tex = _latex_rows(_invoke(*base, "--format", "latex"))
    page = _Cells()
    page.feed(_invoke(*base, "--format", "html"))
    table = _terminal_rows(_invoke(*base))
    assert len(md) == len(tex) == len(page.rows) == len(table) == len(want)
    for i, (team, result) in enumerate(want):
        numbers = [f"{v:.4f}" for v in (result.main_score, result.srcc, result.plcc, result.acc)]
        assert md[i][:7] == [str(i + 1), team, f"Leader {team}", *numbers]
        assert tex[i][:7] == [str(i + 1), team, f"Leader {team}", *numbers]
        cells = page.rows[i]
        assert [cells["rank"], cells["team"], cells["leader"], cells["main score"], cells["srcc"], cells["plcc"],
                cells["acc"]] == [str(i + 1), team, f"Leader {team}", *numbers]
        assert table[i][0] == str(i + 1) and table[i][1] == team and numbers[0] in table[i]


def test_team_highlights_only_that_row(challenge: dict) -> None:
    base = ["leaderboard", "--db", str(challenge["db"]), "--track", "align"]
    md = _markdown_rows(_invoke(*base, "--format", "md", "--team", "south"))
    assert [r[1] for r in md if r[1].startswith("**")] == ["**south**"]
    tex = _latex_rows(_invoke(*base, "--format", "latex", "--team", "south"))
    assert [r[1] for r in tex if "textbf" in r[1]] == ["\\textbf{south}"]
    page = _Cells()
    page.feed(_invoke(*base, "--format", "html", "--team", "south"))
    assert [r["team"] for r in page.rows if "highlight" in r["_class"]] == ["south"]
    res = CliRunner().invoke(main, [*base, "--team", "nobody"])
    assert res.exit_code == 2 and "south" in res.output


def test_phase_without_submissions_is_an_empty_board(challenge: dict) -> None:
    doc = json.loads(_invoke("leaderboard", "--db", str(challenge["db"]), "--track", "align", "--format", "json",
                             "--phase", "final"))
    assert doc["rows"] == [] and doc["invalid"] == []


def _percentile(values: np.ndarray, q: float) -> float:
    """Linear-interpolation percentile, written out (numpy's default method)."""
    s = np.sort(values)
    pos = q / 100 * (len(s) - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, len(s) - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore:Covariance:scipy.optimize.OptimizeWarning")
def test_bootstrap_interval_is_the_percentile_of_the_same_resamples(challenge: dict) -> None:
    doc = json.loads(_invoke("leaderboard", "--db", str(challenge["db"]), "--track", "align", "--format", "json"))
    assert doc["resamples"] == 60
    teams = [row["team"] for row in doc["rows"]]
    chosen = dict(_expected(challenge))
    ref = sorted(challenge["ref"], key=lambda r: r["img_path"])  # images in img_path order, as stored
    subs = {t: {r["img_path"]: r for r in challenge["records"][chosen[t]]} for t in teams}
    rng = np.random.default_rng(5)
    draws = np.empty((60, len(teams)))
    for b in range(60):
        idx = rng.integers(0, N_IMAGES, N_IMAGES)
        # distinct img_paths per draw, so the plain program pairs each copy with its own reference
        ref_b = [{**ref[i], "img_path": f"{j:03d}"} for j, i in enumerate(idx)]
        for t, team in enumerate(teams):
            sub_b = [{**subs[team][ref[i]["img_path"]], "img_path": f"{j:03d}"} for j, i in enumerate(idx)]
            draws[b, t] = score_align(sub_b, ref_b)["main_score"]
    for t, row in enumerate(doc["rows"]):
        assert row["ci_low"] == pytest.approx(_percentile(draws[:, t], 2.5), abs=1e-9)
        assert row["ci_high"] == pytest.approx(_percentile(draws[:, t], 97.5), abs=1e-9)
        if t + 1 < len(teams):
            assert row["flip_next"] == pytest.approx(float(np.mean(draws[:, t] < draws[:, t + 1])), abs=1e-12)
        else:
            assert row["flip_next"] is None


def test_rerank_after_the_reference_or_the_fit_changes(tmp_path: Path) -> None:
    sub, ref = random_align(30, seed=23)
    (tmp_path / "subs" / "north").mkdir(parents=True)
    (tmp_path / "subs" / "south").mkdir(parents=True)
    zips = [align_zip(tmp_path / "subs" / "north" / "s.zip", noisy_align(sub, 0.4, 1)),
            align_zip(tmp_path / "subs" / "south" / "s.zip", noisy_align(sub, 0.9, 2))]
    first, fixed = tmp_path / "eval.json", tmp_path / "eval_fixed.json"
    first.write_text(json.dumps(ref))
    corrected = [dict(r) for r in ref]
    corrected[3] = {**corrected[3], "total_score": 5.0 - corrected[3]["total_score"] / 2,
                    "element_score": {k: 1.0 - v for k, v in corrected[3]["element_score"].items()}}
    fixed.write_text(json.dumps(corrected))
    db = tmp_path / "lb.db"
    for reference, fit in [(first, "official"), (fixed, "official"), (fixed, "poly3"), (first, "none"),
                           (first, "official")]:
        _invoke("rank", str(tmp_path / "subs"), "--track", "align", "--ref", str(reference), "--db", str(db),
                "--plcc-fit", fit)
        doc = json.loads(_invoke("leaderboard", "--db", str(db), "--track", "align", "--format", "json"))
        got = {row["team"]: row for row in doc["rows"]}
        for team, z in zip(("north", "south"), zips):
            want = score(z, reference, track="align", plcc_fit=fit)
            assert (got[team]["main_score"], got[team]["plcc"], got[team]["acc"]) == \
                (want.main_score, want.plcc, want.acc), (reference.name, fit)


def test_baseline_list_names_each_baseline_and_its_track() -> None:
    text = _invoke("baseline", "list")
    rows = {c[0]: c[1] for c in _terminal_rows_any(text)}
    assert rows == {"fga-blip2": "align", "rahf": "structure", "lvlm-stack": "align", "eliq": "align, structure",
                    "imatch": "align"}


def _terminal_rows_any(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("│").split("│")]
        if line.startswith("│") and cells[0] and cells[1] in ("align", "structure", "align, structure"):
            rows.append(cells)
    return rows


def test_max_json_mib_raises_the_default_limit(tmp_path: Path) -> None:
    sub, ref = random_align(4, seed=2)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    body = json.dumps(sub).encode()
    pad = 256 * 2 ** 20 + 1 - len(body)  # one byte over the default 256 MiB
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("output.json", "w", force_zip64=True) as member:
            member.write(body[:-1])
            chunk = b" " * 2 ** 22
            for _ in range(pad // len(chunk)):
                member.write(chunk)
            member.write(b" " * (pad % len(chunk)) + body[-1:])
        zf.writestr("readme.txt", zipfile.ZipFile(align_zip(tmp_path / "r.zip", sub)).read("readme.txt"))
    refused = CliRunner().invoke(main, ["score", str(path), "--track", "align", "--ref", str(tmp_path / "eval.json"),
                                        "--json"])
    assert refused.exit_code == 1
    (problem,) = json.loads(refused.stdout)["errors"]
    assert problem["where"] == "output.json" and "256.0 MiB" in problem["what"]
    accepted = CliRunner().invoke(main, ["score", str(path), "--track", "align", "--ref",
                                         str(tmp_path / "eval.json"), "--json", "--max-json-mib", "257"])
    assert accepted.exit_code == 0, accepted.output
    want = score(align_zip(tmp_path / "small.zip", sub), tmp_path / "eval.json", track="align")
    assert json.loads(accepted.stdout)["main_score"] == want.main_score


def test_max_pkl_mib_sets_the_pickle_limit(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    preds = {f"img_{i}": {"score": float(i), "pred_area": (rng.random((512, 512)) < 0.5).astype(np.uint8)}
             for i in range(6)}  # about 1.5 MiB of pickle, incompressible
    path = structure_zip(tmp_path / "s.zip", preds)
    size = zipfile.ZipFile(path).getinfo("output.pkl").file_size
    assert 2 ** 20 < size < 2 * 2 ** 20
    base = ["validate", str(path), "--track", "structure", "--json"]
    assert CliRunner().invoke(main, base).exit_code == 0  # under the 2 GiB default
    refused = CliRunner().invoke(main, [*base, "--max-pkl-mib", "1"])
    assert refused.exit_code == 1
    (problem,) = json.loads(refused.stdout)["errors"]
    assert problem["where"] == "output.pkl" and "1.0 MiB" in problem["what"]
    assert CliRunner().invoke(main, [*base, "--max-pkl-mib", "2"]).exit_code == 0


@pytest.mark.parametrize("track,want", [("align", "logistic4_gt_to_pred"), ("structure", "logistic4")])
def test_the_result_names_the_fit_direction_it_used(tmp_path: Path, track: str, want: str) -> None:
    if track == "align":
        sub, ref = random_align(40, seed=9)
        (tmp_path / "eval.json").write_text(json.dumps(ref))
        zip_path, ref_path = align_zip(tmp_path / "s.zip", sub), tmp_path / "eval.json"
        gt = [r["total_score"] for r in sorted(ref, key=lambda r: r["img_path"])]
        pred = [r["total_score"] for r in sorted(sub, key=lambda r: r["img_path"])]
        expected = fitted_plcc(gt, pred)  # Track 1: reference -> prediction
    else:
        sub, ref = random_structure(12, seed=9)
        (tmp_path / "gt.pkl").write_bytes(pickle.dumps(ref))
        zip_path, ref_path = structure_zip(tmp_path / "s.zip", sub), tmp_path / "gt.pkl"
        gt = [ref[k]["score"] for k in sorted(ref)]
        pred = [sub[k]["score"] for k in sorted(sub)]
        expected = fitted_plcc(pred, gt)  # Track 2: prediction -> reference
    assert metrics.resolve_fit(track, "official") == want
    assert metrics.resolve_fit(track, "poly3") == "poly3"
    payload = json.loads(_invoke("score", str(zip_path), "--track", track, "--ref", str(ref_path), "--json"))
    assert (payload["plcc_fit"], payload["plcc_fit_used"]) == ("official", want)
    assert payload["plcc"] == pytest.approx(expected, abs=1e-9)
    other = fitted_plcc(pred, gt) if track == "align" else fitted_plcc(gt, pred)
    assert abs(other - expected) > 1e-6  # the other direction would be caught
    with pytest.raises(ValueError, match="unknown PLCC fit"):
        metrics.resolve_fit(track, "logistic5")
