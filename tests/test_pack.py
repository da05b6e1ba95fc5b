"""`pack` for Track 1: every input form round-trips into a zip that validates and scores like a hand-made one;
readme.txt in the exact template; coverage; nothing written when invalid."""

from __future__ import annotations

import csv
import json
import os
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import align_zip, random_align

from ntire_t2iqa import SubmissionError, pack, score, validate
from ntire_t2iqa.cli import main
from ntire_t2iqa.errors import MissingDependency
from ntire_t2iqa.tracks.common import README_KEYS

FLAGS = {"runtime": 0.5, "gpu": True, "extra_data": False, "llm": True, "description": "CLIP + MLP"}
CLI_FLAGS = ["--runtime", "0.5", "--gpu", "--no-extra-data", "--llm", "--description", "CLIP + MLP"]
#: The challenge's readme.txt template, filled in by hand for FLAGS (GPU -> "CPU[1] / GPU[0] : 0").
EXPECTED_README = (b"runtime per image [s] : 0.5\nCPU[1] / GPU[0] : 0\nExtra Data [1] / No Extra Data [0] : 0\n"
                   b"LLM[1] / Non-LLM[0] : 1\nOther description : CLIP + MLP\n")


@pytest.fixture()
def case(tmp_path: Path) -> tuple[list[dict], Path, float]:
    """(predictions, eval.json, main score of a hand-made zip of the predictions)."""
    sub, ref = random_align(24, seed=11)
    sub[3]["element_score"] = {}  # an image without elements in the submission ...
    ref[3]["element_score"] = {}  # ... and in the reference
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    hand = score(align_zip(tmp_path / "hand.zip", sub), tmp_path / "eval.json", track="align")
    return sub, tmp_path / "eval.json", hand.to_dict()


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _wide_rows(sub: list[dict]) -> list[list]:
    return [[r["img_path"], repr(r["total_score"]), json.dumps(r["element_score"])] for r in sub]


def _long_rows(sub: list[dict]) -> list[list]:
    rows = []
    for r in sub:
        items = list(r["element_score"].items()) or [("", "")]
        rows += [[r["img_path"], repr(r["total_score"]), k, repr(v) if v != "" else ""] for k, v in items]
    return rows


def _forms(sub: list[dict], tmp: Path) -> dict[str, tuple]:
    """Every Track 1 input form: (predictions, extra keyword arguments)."""
    (tmp / "pred.json").write_text(json.dumps(sub))
    (tmp / "keyed.json").write_text(json.dumps({r["img_path"]: {k: v for k, v in r.items() if k != "img_path"}
                                                for r in sub}))
    wide = _write_csv(tmp / "wide.csv", ["img_path", "total_score", "element_score"], _wide_rows(sub))
    (tmp / "bom.csv").write_bytes(b"\xef\xbb\xbf" + wide.read_bytes())  # Excel's "CSV UTF-8"
    long = _write_csv(tmp / "long.csv", ["img_path", "total_score", "element", "score"], _long_rows(sub))
    totals = _write_csv(tmp / "totals.csv", ["img_path", "prompt", "total_score"],
                        [[r["img_path"], "a prompt, with a comma", repr(r["total_score"])] for r in sub])
    elements = _write_csv(tmp / "elements.csv", ["img_path", "element", "score"],
                          [[r["img_path"], k, repr(v)] for r in sub for k, v in r["element_score"].items()])
    with open(tmp / "wide.tsv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter="\t").writerows([["img_path", "total_score", "element_score"], *_wide_rows(sub)])
    df_wide = pd.DataFrame({"img_path": [r["img_path"] for r in sub], "total_score": [r["total_score"] for r in sub],
                            "element_score": [json.dumps(r["element_score"]) for r in sub]})
    df_dicts = pd.DataFrame(sub)
    df_long = pd.read_csv(long, keep_default_na=True)
    return {
        "json list": (tmp / "pred.json", {}),
        "json keyed by img_path": (tmp / "keyed.json", {}),
        "csv, element_score JSON column": (wide, {}),
        "csv with a UTF-8 BOM": (tmp / "bom.csv", {}),
        "tsv": (tmp / "wide.tsv", {}),
        "csv, long form": (long, {}),
        "csv totals + long elements table": (totals, {"elements": elements}),
        "records in memory": (sub, {}),
        "DataFrame, JSON column": (df_wide, {}),
        "DataFrame, dict column": (df_dicts, {}),
        "DataFrame, long form": (df_long, {}),
        "DataFrame totals + long elements DataFrame": (pd.read_csv(totals), {"elements": pd.read_csv(elements)}),
    }


FORMS = ["json list", "json keyed by img_path", "csv, element_score JSON column", "csv with a UTF-8 BOM", "tsv",
         "csv, long form", "csv totals + long elements table", "records in memory", "DataFrame, JSON column",
         "DataFrame, dict column", "DataFrame, long form", "DataFrame totals + long elements DataFrame"]


@pytest.mark.parametrize("form", FORMS)
def test_every_input_form_round_trips(form: str, case, tmp_path: Path) -> None:
    sub, ref, hand = case
    predictions, extra = _forms(sub, tmp_path)[form]
    out = tmp_path / "out" / "sub.zip"
    report = pack(predictions, out, "align", inputs=ref, **FLAGS, **extra)
    assert report.valid and report.n_images == len(sub) and report.coverage_checked
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["output.json", "readme.txt"]
        assert zf.read("readme.txt") == EXPECTED_README
    assert validate(out, "align", inputs=ref).valid
    assert score(out, ref, track="align").to_dict() == hand


def test_parquet_round_trips_and_without_pyarrow_says_what_to_install(case, tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("pyarrow")
    sub, ref, hand = case
    frame = pd.DataFrame({"img_path": [r["img_path"] for r in sub], "total_score": [r["total_score"] for r in sub],
                          "element_score": [json.dumps(r["element_score"]) for r in sub]})
    frame.to_parquet(tmp_path / "pred.parquet")
    long = pd.DataFrame(_long_rows(sub), columns=["img_path", "total_score", "element", "score"])
    long["total_score"] = long["total_score"].astype(float)
    long["score"] = pd.to_numeric(long["score"])
    long.to_parquet(tmp_path / "long.parquet")
    for name in ("pred.parquet", "long.parquet"):
        out = tmp_path / f"{name}.zip"
        pack(tmp_path / name, out, "align", inputs=ref, **FLAGS)
        assert score(out, ref, track="align").to_dict() == hand

    def no_engine(*args, **kwargs):
        raise ImportError("Unable to find a usable engine; tried using: 'pyarrow', 'fastparquet'.")

    monkeypatch.setattr(pd, "read_parquet", no_engine)
    with pytest.raises(MissingDependency) as info:
        pack(tmp_path / "pred.parquet", tmp_path / "x.zip", "align", **FLAGS)
    assert "pip install pyarrow" in str(info.value) and "CSV" in str(info.value)
    res = CliRunner().invoke(main, ["pack", str(tmp_path / "pred.parquet"), "--track", "align", "--out",
                                    str(tmp_path / "x.zip"), *CLI_FLAGS])
    assert res.exit_code == 2 and "pip install pyarrow" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x.zip").exists()


def test_readme_flags_fill_the_template(tmp_path: Path, case) -> None:
    sub, ref, _ = case
    for flags, lines in [
        ({"runtime": 1e-05, "gpu": False, "extra_data": True, "llm": False, "description": "two\nlines"},
         ["0.00001", "1", "1", "0", "two lines"]),
        ({"runtime": 12, "gpu": True, "extra_data": False, "llm": False, "description": "Ünïcode ok"},
         ["12", "0", "0", "0", "Ünïcode ok"]),
    ]:
        out = tmp_path / "r.zip"
        pack(sub, out, "align", **flags)
        with zipfile.ZipFile(out) as zf:
            text = zf.read("readme.txt").decode("utf-8")
        assert text == "".join(f"{k} : {v}\n" for k, v in zip(README_KEYS, lines))
    with pytest.raises(ValueError, match="runtime"):
        pack(sub, tmp_path / "r.zip", "align", gpu=True, extra_data=False, llm=False, description="x")
    (tmp_path / "readme.txt").write_bytes(EXPECTED_README)
    pack(sub, tmp_path / "copied.zip", "align", readme=tmp_path / "readme.txt")
    with zipfile.ZipFile(tmp_path / "copied.zip") as zf:
        assert zf.read("readme.txt") == EXPECTED_README


def test_invalid_predictions_write_nothing_and_keep_an_existing_zip(case, tmp_path: Path) -> None:
    sub, ref, _ = case
    out = tmp_path / "sub.zip"
    out.write_bytes(b"the previous upload")
    with pytest.raises(SubmissionError) as info:  # coverage: one image missing from the inputs' set
        pack(sub[1:], out, "align", inputs=ref, **FLAGS)
    assert "misses 1 image(s)" in str(info.value) and sub[0]["img_path"] in str(info.value)
    bad = [dict(r) for r in sub]
    bad[2]["total_score"] = float("nan")
    with pytest.raises(SubmissionError, match="not a finite number"):
        pack(bad, out, "align", **FLAGS)
    with pytest.raises(SubmissionError, match="not a plain decimal"):  # a readme the validator refuses
        pack(sub, out, "align", **{**FLAGS, "runtime": "fast"})
    assert out.read_bytes() == b"the previous upload"
    assert sorted(os.listdir(tmp_path)) == ["eval.json", "hand.zip", "sub.zip"]  # no temporary file left


def test_table_problems_are_located_and_bounded(tmp_path: Path) -> None:
    rows = [[f"M/{i}.png", "oops" if i % 2 else "3.5", "{}"] for i in range(500)]
    rows.append(["M/1.png", "2", "{}"])
    path = _write_csv(tmp_path / "bad.csv", ["img_path", "total_score", "element_score"], rows)
    with pytest.raises(SubmissionError) as info:
        pack(path, tmp_path / "x.zip", "align", **FLAGS)
    problems = info.value.problems
    assert len(problems) <= 41
    assert problems[0].where == "bad.csv, line 3" and "'oops', not a number" in problems[0].what
    assert any("and 240 more bad total scores" in p.what for p in problems)
    missing = _write_csv(tmp_path / "cols.csv", ["path", "total"], [["a", "1"]])
    with pytest.raises(SubmissionError, match="has no column 'img_path', 'total_score'"):
        pack(missing, tmp_path / "x.zip", "align", **FLAGS)
    long = _write_csv(tmp_path / "long.csv", ["img_path", "total_score", "element", "score"],
                      [["A/1.png", "3", "cat (animal)", "0.9"], ["A/1.png", "4", "red (color)", "0.1"]])
    with pytest.raises(SubmissionError, match="differs from 3.0 on an earlier row"):
        pack(long, tmp_path / "x.zip", "align", **FLAGS)
    assert not (tmp_path / "x.zip").exists()


def test_cli_pack_exit_codes_and_output(case, tmp_path: Path) -> None:
    sub, ref, hand = case
    (tmp_path / "pred.json").write_text(json.dumps(sub))
    out = tmp_path / "sub.zip"
    args = ["pack", str(tmp_path / "pred.json"), "--track", "align", "--out", str(out), *CLI_FLAGS]
    res = CliRunner().invoke(main, [*args, "--inputs", str(ref)])
    assert res.exit_code == 0, res.output
    assert f"valid align submission, {len(sub)} images" in res.output and "not checked" not in res.output
    assert score(out, ref, track="align").to_dict() == hand
    res = CliRunner().invoke(main, args)  # no --inputs: says that coverage was not checked
    assert res.exit_code == 0 and "Coverage was not checked" in res.output
    res = CliRunner().invoke(main, [*args[:-2], "--json"])  # no --description
    assert res.exit_code == 2 and "--description" in res.output
    (tmp_path / "short.json").write_text(json.dumps(sub[1:]))
    res = CliRunner().invoke(main, ["pack", str(tmp_path / "short.json"), "--track", "align", "--out",
                                    str(tmp_path / "short.zip"), *CLI_FLAGS, "--inputs", str(ref), "--json"])
    assert res.exit_code == 1 and not (tmp_path / "short.zip").exists()
    payload = json.loads(res.stdout)
    assert payload["written"] is None and "misses 1 image(s)" in payload["errors"][0]["what"]
