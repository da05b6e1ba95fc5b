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
import yaml
from helpers import align_zip, random_align, random_structure, structure_zip

from ntire_t2iqa import codalab, score
from ntire_t2iqa.codalab import program
from ntire_t2iqa.errors import MissingDependency
from ntire_t2iqa.tracks.common import README_TEMPLATE


def _metric_keys(track, naming="official"):
    return {c.key: c.source for c in codalab.metric_columns(track, naming)}


def _layout(tmp_path, zip_path, ref_name, ref_bytes):
    res, ref = tmp_path / "input" / "res", tmp_path / "input" / "ref"
    res.mkdir(parents=True)
    ref.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(res)
    (ref / ref_name).write_bytes(ref_bytes)
    return tmp_path / "input", tmp_path / "output"


@pytest.mark.parametrize("naming", ["official", "toolkit"])
@pytest.mark.parametrize("track", ["align", "structure"])
def test_program_scores_like_the_scorer(tmp_path, track, naming) -> None:
    if track == "align":
        sub, ref = random_align(50, seed=21)
        zip_path, name, blob = align_zip(tmp_path / "s.zip", sub), "eval.json", json.dumps(ref).encode()
    else:
        sub, ref = random_structure(12, seed=21)
        zip_path, name, blob = structure_zip(tmp_path / "s.zip", sub), "gt.pkl", pickle.dumps(ref)
    inp, out = _layout(tmp_path, zip_path, name, blob)
    assert codalab.run(inp, out, keys=naming) == 0
    expected = score(zip_path, inp / "ref" / name, track=track).to_dict()
    metrics = _metric_keys(track, naming)
    readme = ({"runtime per image [s]": 10.43, "CPU[1] / GPU[0]": 1, "Extra Data [1] / No Extra Data [0]": 1,
               "LLM[1] / Non-LLM[0]": 1} if naming == "official" else
              {"runtime": 10.43, "cpu": 1, "extra_data": 1, "llm": 1})
    scores = json.loads((out / "scores.json").read_text())
    assert scores == {**{k: expected[src] for k, src in metrics.items()}, **readme}
    lines = (out / "scores.txt").read_text().splitlines()
    assert lines[:len(metrics)] == [f"{k}: {expected[src]:.4f}" for k, src in metrics.items()]
    if naming == "official":  # the official programs' keys, then the readme lines in the template's form
        assert [ln.split(":")[0] for ln in lines[:len(metrics)]] == (
            ["SRCC", "PLCC", "ACC", "Final_Score"] if track == "align" else
            ["Final_Score", "SRCC", "PLCC", "Precision", "Recall", "F1_Score", "GIoU"])
        assert lines[len(metrics):] == README_TEMPLATE.splitlines()
    else:
        assert lines[len(metrics):] == ["runtime: 10.43", "cpu: 1", "extra_data: 1", "llm: 1"]
    parsed = yaml.safe_load((out / "scores.txt").read_text())  # how a platform without scores.json reads it
    assert {k: v for k, v in parsed.items() if k in scores} == {k: round(v, 4) for k, v in scores.items()}
    title = codalab.metric_columns(track, naming)[0].title
    assert title in (out / "detailed_results.html").read_text()


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
    assert {"competition.yaml", "pages/overview.md", "pages/terms.md", "logo.png", "scoring_program/metadata.yaml",
            "scoring_program/score.py", "reference_data/eval.json"} <= set(names)
    doc = yaml.safe_load((unpacked / "competition.yaml").read_text())
    assert {c["key"] for c in doc["leaderboards"][0]["columns"]} == {c.key for c in codalab.all_columns("align")}
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
    assert json.loads((tmp_path / "out" / "scores.json").read_text())["Final_Score"] == \
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
    scores = json.loads((out / "scores.json").read_text())
    assert {k: scores[k] for k in _metric_keys(track)} == {k: expected[src] for k, src in _metric_keys(track).items()}


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
    assert "your zip: member \\xff\\xfe: is a folder" in page and page.rstrip().endswith("</html>")
    err = capsys.readouterr().err
    assert "your zip: member \\xff\\xfe: is a folder" in err and "Traceback" not in err and "res/" not in err


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
        program._write_atomic(target, "main_score: \udcff")
    assert target.read_text() == "old\n" and _files(tmp_path) == {"scores.txt"}

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(program.os, "replace", refuse)
    with pytest.raises(OSError):
        program._write_atomic(target, "new\n")
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
                          "Extra Data [1] / No Extra Data [0]": "1\nFinal_Score: 1.0", "LLM[1] / Non-LLM[0]": "0",
                          "Other description": "ok"})
    lines = codalab.scores_txt(result, "toolkit").splitlines()
    assert lines[4:] == ["llm: 0"]
    lines = codalab.scores_txt(result).splitlines()
    assert lines[4:] == ["LLM[1] / Non-LLM[0] : 0", "Other description : ok"]
    assert all(line.isascii() for line in lines)
    assert codalab.scores_json(result)["LLM[1] / Non-LLM[0]"] == 0 and len(codalab.scores_json(result)) == 5


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
    assert page.count("<li>") == program.MAX_LISTED + 1 and "and 80 more." in page


def test_unexpected_failure_gives_a_page_not_a_traceback(tmp_path, monkeypatch, capsys) -> None:
    inp, out, _, _ = _align_layout(tmp_path)
    (out).mkdir()
    (out / "scores.txt").write_text("Final_Score: 0.9\n")  # an earlier run's

    def explode(*args, **kwargs):
        raise KeyError("Model0/00000.png 3.14159")  # the message could hold reference data

    monkeypatch.setattr(program, "score", explode)
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

    monkeypatch.setattr(program, "load_reference", explode)
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


# --------------------------------------------------------------------------- platform layout and environment


@pytest.mark.parametrize("folder", ["submission", "My Results (v2)"])
def test_a_zip_holding_a_folder_is_explained_in_the_words_of_the_upload(tmp_path, capsys, folder) -> None:
    """The platform unzips into res/: a zip that held a folder gives res/<folder>/output.json."""
    sub, ref = random_align(10, seed=31)
    zip_path = tmp_path / "s.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr(f"{folder}/output.json", json.dumps(sub))
        zf.writestr(f"{folder}/readme.txt", README_TEMPLATE)
        zf.writestr(f"__MACOSX/{folder}/._output.json", "x")
    inp, out = _layout(tmp_path, zip_path, "eval.json", json.dumps(ref).encode())
    assert codalab.run(inp, out, "align") == 1
    page = (out / "detailed_results.html").read_text()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "res" not in err.replace("results", "")  # one message, about the upload
    shown = "`submission/`" if folder == "submission" else "'My Results (v2)'"
    assert f"your zip: holds a folder {shown} with the files inside" in err
    assert "Zip the files themselves, not their folder" in err and "zip ../submission.zip output.json readme.txt" in err
    assert ("cd submission &&" in err) == (folder == "submission") and "__MACOSX/ folder as well" in err
    assert "holds a folder" in page
    assert codalab.run(inp, tmp_path / "auto") == 1  # the track found from the nested folder too
    assert "holds a folder" in capsys.readouterr().err


def test_other_layout_problems_name_the_zip_not_the_platform_folder(tmp_path, capsys) -> None:
    inp, out, _, _ = _align_layout(tmp_path)
    (inp / "res" / "notes.txt").write_text("x")
    (inp / "res" / "readme.txt").unlink()
    (inp / "res" / "extra").mkdir()
    assert codalab.run(inp, out, "align") == 1
    err = capsys.readouterr().err
    assert "your zip: member 'notes.txt': is not expected" in err
    assert "your zip: member extra: is a folder; the zip must hold only files, at its root." in err
    assert "your zip: has no readme.txt" in err and "res/" not in err and "res:" not in err


@pytest.mark.parametrize("description", ["x\nFinal_Score: 1.0", "!!python/object/apply:os.system ['echo hi']",
                                         "a: b # c", "x\u2028SRCC: 1\x85PLCC: 1\rACC: 1", "- [1, 2]", "ok " * 200])
def test_the_description_cannot_add_or_change_a_scores_txt_entry(tmp_path, description) -> None:
    inp, out, _, _ = _align_layout(tmp_path)
    assert codalab.run(inp, out) == 0
    result = score(inp / "res", inp / "ref", track="align")
    result.readme["Other description"] = description
    text = codalab.scores_txt(result)
    lines = text.splitlines()
    assert len(lines) == 9 and lines[-1].startswith("Other description : ") and text.isascii()
    parsed = yaml.safe_load(text)  # a YAML reader sees exactly the nine keys, the description as plain text
    assert list(parsed) == [*_metric_keys("align"), *(ln.split(" : ")[0] for ln in README_TEMPLATE.splitlines())]
    assert isinstance(parsed["Other description"], str) and len(parsed["Other description"]) <= 260
    assert parsed["Final_Score"] == round(result.main_score, 4)


def test_huge_runtime_is_left_out_of_the_scores(tmp_path) -> None:
    readme = _README_HOSTILE.format(runtime="12345678901234567890", description="fast")
    inp, out, _, _ = _align_layout(tmp_path, readme=readme)
    assert codalab.run(inp, out) == 0  # a valid readme, but a leaderboard stores at most 10 integer digits
    assert "runtime per image [s]" not in json.loads((out / "scores.json").read_text())
    assert "runtime per image" not in (out / "scores.txt").read_text()


def test_missing_opencv_is_the_organizers_problem(tmp_path, monkeypatch, capsys) -> None:
    sub, ref = random_structure(4, seed=32)
    inp, out = _layout(tmp_path, structure_zip(tmp_path / "s.zip", sub), "gt.pkl", pickle.dumps(ref))

    def no_cv2(needed_for):
        raise MissingDependency("OpenCV (cv2)", needed_for, "ModuleNotFoundError: No module named 'cv2'",
                                "install opencv-python-headless")

    monkeypatch.setattr(program.tracks, "require_opencv", no_cv2)
    assert codalab.run(inp, out) == 2
    page, err = (out / "detailed_results.html").read_text(), capsys.readouterr().err
    assert _files(out) == {"detailed_results.html"}
    assert "lacks OpenCV (cv2), which Track 2 (structure) needs; this is not a problem with the submission" in page
    assert "organizers: Track 2 (structure) needs OpenCV (cv2)" in err and "opencv-python-headless" in err
