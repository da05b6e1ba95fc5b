"""The Codabench/CodaLab scoring program and bundle, through the platform's res/ref layout."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import align_zip, random_align, random_structure, structure_zip

from ntire_t2iqa import codalab, score


def _layout(tmp_path, zip_path, ref_name, ref_bytes):
    res, ref = tmp_path / "input" / "res", tmp_path / "input" / "ref"
    res.mkdir(parents=True)
    ref.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(res)
    (ref / ref_name).write_bytes(ref_bytes)
    return tmp_path / "input", tmp_path / "output"


@pytest.mark.parametrize("track", ["align", "structure"])
def test_program_scores_like_the_scorer(tmp_path, track) -> None:
    if track == "align":
        sub, ref = random_align(50, seed=21)
        zip_path, name, blob = align_zip(tmp_path / "s.zip", sub), "eval.json", json.dumps(ref).encode()
    else:
        sub, ref = random_structure(12, seed=21)
        zip_path, name, blob = structure_zip(tmp_path / "s.zip", sub), "gt.pkl", pickle.dumps(ref)
    inp, out = _layout(tmp_path, zip_path, name, blob)
    assert codalab.run(inp, out) == 0
    expected = score(zip_path, inp / "ref" / name, track=track).to_dict()
    scores = json.loads((out / "scores.json").read_text())
    assert scores == {k: expected[k] for k in codalab.SCORE_KEYS[track]}
    lines = (out / "scores.txt").read_text().splitlines()
    assert lines[0] == f"main_score: {expected['main_score']:.4f}"
    assert lines[len(codalab.SCORE_KEYS[track]):] == ["runtime: 10.43", "cpu: 1", "extra_data: 1", "llm: 1"]
    assert "Main Score" in (out / "detailed_results.html").read_text()


def test_program_reports_invalid_submission(tmp_path, capsys) -> None:
    sub, ref = random_align(10, seed=22)
    inp, out = _layout(tmp_path, align_zip(tmp_path / "s.zip", sub[1:]), "eval.json", json.dumps(ref).encode())
    assert codalab.run(inp, out) == 1
    assert "misses 1 image(s)" in capsys.readouterr().err
    assert not (out / "scores.txt").exists() and "misses 1 image" in (out / "detailed_results.html").read_text()


def test_bundle_scoring_program_runs_standalone(tmp_path) -> None:
    """Unpack the bundle and run its own score.py in a fresh interpreter, as the platform would."""
    sub, ref = random_align(40, seed=23)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    bundle = codalab.write_bundle("align", tmp_path / "eval.json", tmp_path / "bundle.zip")
    unpacked = tmp_path / "bundle"
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        zf.extractall(unpacked)
    assert {"competition.yaml", "overview.md", "scoring_program/metadata.yaml", "scoring_program/score.py",
            "reference_data/eval.json"} <= set(names)
    yaml = (unpacked / "competition.yaml").read_text()
    for key in codalab.SCORE_KEYS["align"]:
        assert f"key: {key}" in yaml
    zip_path = align_zip(tmp_path / "s.zip", sub)
    inp = tmp_path / "input"
    (inp / "res").mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(inp / "res")
    (inp / "ref").symlink_to(unpacked / "reference_data")
    program = unpacked / "scoring_program"
    proc = subprocess.run([sys.executable, "-I", str(program / "score.py"), str(inp), str(tmp_path / "out")],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "out" / "scores.json").read_text())["main_score"] == \
        score(zip_path, tmp_path / "eval.json", track="align").main_score


@pytest.mark.parametrize("track", ["align", "structure"])
def test_program_on_the_synthetic_challenge(tmp_path, track) -> None:
    """A trivial submission of the synthetic challenge, through the platform's res/ref layout."""
    from ntire_t2iqa.data import ChallengePaths, SynthSize, synthesize, write_trivial

    synthesize(tmp_path / "ch", seed=3, size=SynthSize((2, 4, 4), 2, (2, 6, 6)), progress=False, workers=1)
    paths = ChallengePaths(tmp_path / "ch")
    zip_path = write_trivial(paths.root, track, "oracle", "val", tmp_path / "s.zip", noise=0.3)
    ref = paths.reference(track, "val")
    inp, out = _layout(tmp_path, zip_path, ref.name, ref.read_bytes())
    assert codalab.run(inp, out) == 0
    expected = score(zip_path, ref, track=track).to_dict()
    assert json.loads((out / "scores.json").read_text()) == {k: expected[k] for k in codalab.SCORE_KEYS[track]}


# --------------------------------------------------------------------------- hostile submissions

_README_HOSTILE = ("runtime per image [s] : {runtime}\nCPU[1] / GPU[0] : 1\nExtra Data [1] / No Extra Data [0] : 0\n"
                   "LLM[1] / Non-LLM[0] : 0\nOther description : {description}\n")
_OUTPUTS = {"scores.txt", "scores.json", "detailed_results.html"}


def _align_layout(tmp_path, n=30, seed=41, readme=None, records=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    sub, ref = random_align(n, seed=seed)
    kwargs = {} if readme is None else {"readme": readme}
    zip_path = align_zip(tmp_path / "s.zip", sub if records is None else records, **kwargs)
    inp, out = _layout(tmp_path, zip_path, "eval.json", json.dumps(ref).encode())
    return inp, out, sub, ref


def _files(folder) -> set[str]:
    return {p.name for p in folder.iterdir()}


def _cli(inp, out) -> subprocess.CompletedProcess:
    """``ntire-t2iqa codalab-score IN OUT`` in a fresh process, as an organizer or the platform runs it."""
    exe = Path(sys.executable).with_name("ntire-t2iqa")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ntire_t2iqa"]
    return subprocess.run([*cmd, "codalab-score", str(inp), str(out)], capture_output=True, text=True, timeout=300)


def test_undecodable_entry_name_is_named_safely(tmp_path, capsys) -> None:
    inp, out, _, _ = _align_layout(tmp_path)
    os.mkdir(os.path.join(str(inp / "res"), os.fsdecode(b"\xff\xfe")))
    assert codalab.run(inp, out) == 1
    assert _files(out) == {"detailed_results.html"}  # whole, and nothing else (no temporary file)
    page = (out / "detailed_results.html").read_bytes().decode("utf-8")  # strict: valid UTF-8
    assert "res/\\xff\\xfe: is a folder" in page and page.rstrip().endswith("</html>")
    err = capsys.readouterr().err
    assert "res/\\xff\\xfe: is a folder" in err and "Traceback" not in err


def test_earlier_outputs_are_removed_before_scoring(tmp_path) -> None:
    inp, out, sub, _ = _align_layout(tmp_path)
    assert codalab.run(inp, out) == 0 and _files(out) == _OUTPUTS
    (inp / "res" / "output.json").write_text(json.dumps(sub[1:]))  # now invalid: one image missing
    assert codalab.run(inp, out) == 1
    assert _files(out) == {"detailed_results.html"} and "misses 1 image" in (out / "detailed_results.html").read_text()
    assert codalab.run(inp, tmp_path / "fresh" / "nested") == 1  # a missing output folder is created


def test_write_is_atomic(tmp_path, monkeypatch) -> None:
    target = tmp_path / "scores.txt"
    target.write_text("old\n")
    with pytest.raises(UnicodeEncodeError):  # text that cannot be encoded never reaches the disk
        codalab._write_atomic(target, "main_score: \udcff")
    assert target.read_text() == "old\n" and _files(tmp_path) == {"scores.txt"}

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(codalab.os, "replace", refuse)
    with pytest.raises(OSError):
        codalab._write_atomic(target, "new\n")
    assert target.read_text() == "old\n" and _files(tmp_path) == {"scores.txt"}
    inp, out, _, _ = _align_layout(tmp_path / "run")
    assert codalab.run(inp, out) == 2 and _files(out) == set()  # cannot write: organizer's problem, no output


@pytest.mark.parametrize("runtime", ["١٢", "1_0", "１０", "1e3", "inf", "-1", " 0x10"])
def test_runtime_must_be_ascii_decimal(tmp_path, runtime) -> None:
    readme = _README_HOSTILE.format(runtime=runtime, description="ok")
    inp, out, _, _ = _align_layout(tmp_path, readme=readme)
    assert codalab.run(inp, out) == 1 and _files(out) == {"detailed_results.html"}
    page = (out / "detailed_results.html").read_text()
    assert "is not a plain decimal number" in page and "digits 0-9 and a dot, e.g. 0.52" in page


def test_scores_txt_takes_only_ascii_decimal_readme_values(tmp_path) -> None:
    inp, out, _, _ = _align_layout(tmp_path)
    assert codalab.run(inp, out) == 0
    result = score(inp / "res", inp / "ref", track="align")
    result.readme.update({"runtime per image [s]": "١٢", "CPU[1] / GPU[0]": "１",
                          "Extra Data [1] / No Extra Data [0]": "1\nFinal_Score: 1.0", "LLM[1] / Non-LLM[0]": "0"})
    lines = codalab.scores_txt(result).splitlines()
    assert lines[len(codalab.SCORE_KEYS["align"]):] == ["llm: 0"]
    assert all(line.isascii() for line in lines)


def test_submission_text_is_escaped_and_bounded(tmp_path, capsys) -> None:
    readme = _README_HOSTILE.format(runtime="0.5", description="<script>alert(1)</script>\x1b[2J" + "x" * 10_000)
    inp, out, _, _ = _align_layout(tmp_path, readme=readme)
    assert codalab.run(inp, out) == 0
    page = (out / "detailed_results.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[2J" in page
    assert len(page) < 5000  # the description is clipped
    capsys.readouterr()

    inp, out, _, _ = _align_layout(tmp_path / "names")
    for name in ("<img src=x onerror=alert(1)>", "evil\x1b]0;pwned\x07", "note\nFinal_Score: 1"):
        (inp / "res" / name).write_text("x")
    assert codalab.run(inp, out) == 1
    page = (out / "detailed_results.html").read_text()
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "evil\\x1b]0;pwned\\x07" in err
    assert "\nFinal_Score" not in err and all(line.isprintable() for line in err.splitlines())

    page = codalab.detailed_html(None, [f"problem {i}" for i in range(130)])
    assert page.count("<li>") == codalab.MAX_LISTED + 1 and "and 80 more." in page


def test_unexpected_failure_gives_a_page_not_a_traceback(tmp_path, monkeypatch, capsys) -> None:
    inp, out, _, _ = _align_layout(tmp_path)
    (out).mkdir()
    (out / "scores.txt").write_text("main_score: 0.9\n")  # an earlier run's

    def explode(*args, **kwargs):
        raise KeyError("Model0/00000.png 3.14159")  # the message could hold reference data

    monkeypatch.setattr(codalab, "score", explode)
    assert codalab.run(inp, out) == 1
    assert _files(out) == {"detailed_results.html"}
    page, err = (out / "detailed_results.html").read_text(), capsys.readouterr().err
    assert "could not be scored" in page and "KeyError" in page and "3.14159" not in page + err
    assert "Traceback" not in err and "KeyError" in err


def test_reference_problems_exit_2(tmp_path, monkeypatch, capsys) -> None:
    inp, out, _, _ = _align_layout(tmp_path)
    (inp / "ref" / "eval.json").write_text("{not json")
    assert codalab.run(inp, out) == 2
    assert _files(out) == {"detailed_results.html"} and "reference data" in (out / "detailed_results.html").read_text()
    assert "Traceback" not in capsys.readouterr().err

    def explode(*args, **kwargs):
        raise ValueError("bad")

    monkeypatch.setattr(codalab, "load_reference", explode)
    assert codalab.run(inp, out) == 2 and "ValueError" in capsys.readouterr().err


def test_outputs_hold_no_per_image_values(tmp_path) -> None:
    n = 120
    inp, out, _, ref = _align_layout(tmp_path, n=n)
    assert codalab.run(inp, out) == 0
    for name in ("detailed_results.html", "scores.json", "scores.txt"):
        text = (out / name).read_text()
        numbers = re.findall(r"-?\d+(?:\.\d+)?", text)
        assert len(numbers) < 20, name  # a handful of aggregates, however many images
        for rec in ref:
            for digits in (3, 4, 6):
                value = f"{rec['total_score']:.{digits}f}"
                if rec["total_score"] not in (1.0, 5.0):
                    assert value not in text, (name, value)


def test_cli_on_a_hostile_submission(tmp_path) -> None:
    """The command itself: exit code, no traceback, exactly the files it should leave."""
    readme = _README_HOSTILE.format(runtime="1_0", description="<b>x</b>")
    inp, out, _, _ = _align_layout(tmp_path, readme=readme)
    os.mkdir(os.path.join(str(inp / "res"), os.fsdecode(b"\xff\xfe")))
    out.mkdir()
    for name in _OUTPUTS:
        (out / name).write_text("stale")
    proc = _cli(inp, out)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert _files(out) == {"detailed_results.html"}
    page = (out / "detailed_results.html").read_text(encoding="utf-8")
    assert "\\xff\\xfe" in page and "1_0" in page and "Traceback" not in page
