"""The demo: generate, submit, validate and score end to end; plugins add rows."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from ntire_t2iqa.cli import main
from ntire_t2iqa.data import SynthSize
from ntire_t2iqa.data import demo as demo_module
from ntire_t2iqa.data.demo import run_demo
from ntire_t2iqa.data.trivial import write_trivial

TINY = SynthSize(align_prompts=(2, 4, 4), images_per_prompt=2, structure_images=(2, 6, 6))


def test_run_demo_scores_every_trivial_submission_and_plugin(tmp_path, monkeypatch):
    def plugin(paths, split, out_dir):
        return [("align", "plugin oracle", write_trivial(paths.root, "align", "oracle", split,
                                                          out_dir / "plugin.zip", noise=0.0))]

    monkeypatch.setattr(demo_module, "_SUBMITTERS", [])
    monkeypatch.setattr(demo_module, "PLUGIN_MODULES", [])
    demo_module.register_submitter(plugin)
    run = run_demo(tmp_path / "demo", tmp_path / "subs", "val", progress=False, size=TINY)
    rows, timings = run.rows, run.timings
    labels = [(r.track, r.label) for r in rows]
    assert labels == [("align", "constant"), ("align", "random"), ("align", "oracle σ=0.3"),
                      ("structure", "constant"), ("structure", "random"), ("structure", "oracle σ=0.3"),
                      ("align", "plugin oracle")]
    assert all(r.valid and r.main_score is not None for r in rows)
    assert rows[-1].main_score == pytest.approx(1.0)
    assert rows[0].components["srcc"] == 0.0 and rows[0].warnings
    assert timings["generate"] > 0
    assert sorted(p.name for p in (tmp_path / "subs").iterdir())[0] == "demo-align-constant.zip"
    again = run_demo(tmp_path / "demo", tmp_path / "subs", "val", progress=False, size=TINY)
    assert again.timings["generate"] == 0.0  # the complete challenge is reused


def test_quiet_demo_holds_back_plugin_stderr_unless_the_plugin_fails(tmp_path, monkeypatch, capsys):
    def chatty(paths, split, out_dir):
        print("epoch 1/1: loss 0.5", file=sys.stderr)
        return [("align", "chatty", write_trivial(paths.root, "align", "constant", split, out_dir / "c.zip"))]

    def failing(paths, split, out_dir):
        print("what went wrong before the crash", file=sys.stderr)
        raise RuntimeError("plugin failed")

    monkeypatch.setattr(demo_module, "_SUBMITTERS", [])
    monkeypatch.setattr(demo_module, "PLUGIN_MODULES", [])
    demo_module.register_submitter(chatty)
    run = run_demo(tmp_path / "demo", tmp_path / "subs", "val", progress=False, size=TINY)
    assert run.rows[-1].label == "chatty" and "epoch" not in capsys.readouterr().err
    run_demo(tmp_path / "demo", tmp_path / "subs", "val", progress=True, size=TINY)
    assert "epoch 1/1" in capsys.readouterr().err  # with progress output, plugins speak as usual
    demo_module.register_submitter(failing)
    with pytest.raises(RuntimeError, match="plugin failed"):
        run_demo(tmp_path / "demo", tmp_path / "subs", "val", progress=False, size=TINY)
    assert "what went wrong before the crash" in capsys.readouterr().err


def test_cli_demo_end_to_end_on_the_small_challenge(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(demo_module, "_SUBMITTERS", [])
    runner = CliRunner()
    result = runner.invoke(main, ["demo", "--quiet", "--baselines", "none"])
    assert result.exit_code == 0, result.output
    for label in ("constant", "random", "oracle σ=0.3", "structure", "align"):
        assert label in result.output
    assert (tmp_path / "demo" / "manifest.json").is_file()
    assert len(list((tmp_path / "submissions").glob("demo-*.zip"))) == 6
    # the demo also ranks its submissions: the oracle is an unranked baseline row, HTML pages are written
    assert "Track 1: image-text alignment leaderboard" in result.output
    for track in ("align", "structure"):
        page = (tmp_path / "demo" / f"leaderboard_{track}.html").read_text()
        assert page.count('<tr class="ranked">') == 2 and page.count('<tr class="baseline">') == 1
    # and explains its best non-oracle submission per track (constant wins Track 1: most elements are present)
    assert "Where constant (align) loses points" in result.output
    report = (tmp_path / "demo" / "explain_structure.html").read_text()
    assert "Where demo-structure-random.zip loses points" in report and 'class="overlay"' in report
    assert 'id="categories"' in (tmp_path / "demo" / "explain_align.html").read_text()
    as_json = runner.invoke(main, ["demo", "--json", "--baselines", "none"])
    payload = json.loads(as_json.output)
    assert as_json.exit_code == 0 and payload["seconds"]["generate"] == 0.0
    assert payload["reports"]["align"]["submission"] == "constant"
    oracle = {r["track"]: r["main_score"] for r in payload["rows"] if r["submission"].startswith("oracle")}
    random = {r["track"]: r["main_score"] for r in payload["rows"] if r["submission"] == "random"}
    assert all(oracle[t] > random[t] + 0.3 for t in ("align", "structure"))


def test_a_plugin_whose_dependency_is_missing_is_skipped_with_a_note(tmp_path, monkeypatch):
    package = tmp_path / "fakeplugin"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "demo.py").write_text("import torch_that_is_not_installed\n")
    (package / "other.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(demo_module, "PLUGIN_MODULES", ["fakeplugin.demo", "fakeplugin.absent", "fakeplugin.other"])
    monkeypatch.setattr(demo_module, "_SUBMITTERS", [])
    run = run_demo(tmp_path / "demo", tmp_path / "subs", "val", progress=False, size=TINY)
    assert len(run.rows) == 6
    assert run.notes == ["fakeplugin.demo skipped: it needs 'torch_that_is_not_installed', which is not installed "
                         "(pip install -e '.[baselines]')."]


def test_demo_baselines_option_reaches_the_plugin_and_unknown_names_are_usage_errors(tmp_path, monkeypatch):
    package = tmp_path / "recordplugin"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "demo.py").write_text("SEEN = []\n"
                                      "def demo_submissions(paths, split, out_dir, baselines=None):\n"
                                      "    SEEN.append(baselines)\n"
                                      "    return []\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(demo_module, "PLUGIN_MODULES", ["recordplugin.demo"])
    monkeypatch.setattr(demo_module, "_SUBMITTERS", [])
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for option, expected in ((["--baselines", "rahf, lvlm-stack,rahf"], ("rahf", "lvlm-stack")),
                             (["--baselines", "none"], ()), ([], None)):
        result = runner.invoke(main, ["demo", "--json", *option])
        assert result.exit_code == 0, result.output
        assert sys.modules["recordplugin.demo"].SEEN[-1] == expected
    result = runner.invoke(main, ["demo", "--baselines", "fga-blip,rahf"])
    assert result.exit_code == 2
    assert "unknown baseline 'fga-blip'" in result.output and "Did you mean 'fga-blip2'?" in result.output


def test_the_baselines_plugin_checks_names_against_the_registry():
    pytest.importorskip("torch")
    from ntire_t2iqa_baselines import demo as plugin

    assert plugin.selected() == ["fga-blip2", "rahf"]
    assert plugin.selected(("lvlm-stack", "rahf", "lvlm-stack")) == ["lvlm-stack", "rahf"]
    assert plugin.selected(()) == []
    with pytest.raises(KeyError, match="unknown baseline 'nope'"):
        plugin.selected(["nope"])
