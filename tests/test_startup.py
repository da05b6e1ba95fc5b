"""A fast start: what each command imports, read from ``sys.modules`` when a fresh process exits.

``--help`` (the group's and every command's), Track 1 ``validate`` and ``pack``, and
``leaderboard`` never load scipy, pandas, OpenCV or torch; ``score`` of Track 1 loads only
scipy's compiled MINPACK module (not ``scipy.optimize`` nor ``scipy.stats``); OpenCV comes
in where Track 2 needs it. Each command runs in its own interpreter, as a user starts it.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from helpers import align_zip, random_align, random_structure, structure_zip

from ntire_t2iqa import cli
from ntire_t2iqa.cli_common import PLOT_FORMATS
from ntire_t2iqa.data import SIZES
from ntire_t2iqa.data.layout import SYNTH_SIZES, TRIVIAL_KINDS
from ntire_t2iqa.data.trivial import KINDS
from ntire_t2iqa.plotimage import FORMATS

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("scipy", "pandas", "cv2", "torch", "PIL")
#: Runs the command line in this interpreter and writes the top-level packages and toolkit modules loaded.
DRIVER = """
import atexit, json, os, sys
def _dump():
    with open(os.environ["MODULES_OUT"], "w") as f:
        json.dump(sorted(sys.modules), f)
atexit.register(_dump)
sys.argv = ["ntire-t2iqa", *sys.argv[1:]]
from ntire_t2iqa.cli import main
main()
"""


def loaded(tmp_path: Path, *args: str, code: int = 0) -> set[str]:
    """The modules in ``sys.modules`` when ``ntire-t2iqa ARGS`` exits, run in a fresh interpreter."""
    out = tmp_path / f"modules-{abs(hash(args))}.json"
    proc = subprocess.run([sys.executable, "-c", DRIVER, *args], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "MODULES_OUT": str(out)}, timeout=120)
    assert proc.returncode == code, (args, proc.stdout[-2000:], proc.stderr[-2000:])
    return set(json.loads(out.read_text()))


def packages(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def every_help() -> list[tuple[str, ...]]:
    """``--help`` of the group, of every command, and of every subcommand of a group (data, baseline)."""
    out: list[tuple[str, ...]] = [("--help",)]
    for name in cli.COMMANDS:
        out.append((name, "--help"))
        command = cli.load_command(name)
        if isinstance(command, click.Group):
            out.extend((name, sub, "--help") for sub in command.commands)
    return out


def test_group_help_loads_only_click(tmp_path) -> None:
    modules = loaded(tmp_path, "--help")
    assert not packages(modules) & {*HEAVY, "numpy", "rich"}
    assert {m for m in modules if m.startswith("ntire_t2iqa")} == {"ntire_t2iqa", "ntire_t2iqa.cli",
                                                                  "ntire_t2iqa.errors", "ntire_t2iqa.lazy"}


@pytest.mark.parametrize("args", every_help(), ids=" ".join)
def test_no_help_loads_a_heavy_library(tmp_path, args) -> None:
    assert not packages(loaded(tmp_path, *args)) & set(HEAVY)


def test_the_listed_help_lines_are_the_commands_own() -> None:
    for name, (_, _, short) in cli.COMMANDS.items():
        assert cli.load_command(name).get_short_help_str(10_000) == short, name
    result = CliRunner().invoke(cli.main, ["--help"])
    assert result.exit_code == 0 and all(f"  {name} " in result.output for name in cli.COMMANDS)


def test_choices_named_for_help_match_their_modules() -> None:
    assert tuple(SIZES) == SYNTH_SIZES and KINDS == TRIVIAL_KINDS and PLOT_FORMATS == FORMATS


def test_track1_validate_pack_and_leaderboard_load_no_heavy_library(tmp_path) -> None:
    from ntire_t2iqa.leaderboard import rank

    sub, ref = random_align(30, seed=3)
    zip_path = align_zip(tmp_path / "sub.zip", sub)
    assert not packages(loaded(tmp_path, "validate", str(zip_path), "--track", "align")) & set(HEAVY)
    (tmp_path / "pred.json").write_text(json.dumps(sub))
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps([{"img_path": r["img_path"], "element_score": dict.fromkeys(r["element_score"])}
                                  for r in ref]))
    pack = ["pack", str(tmp_path / "pred.json"), "--track", "align", "--out", str(tmp_path / "packed.zip"),
            "--runtime", "0.5", "--gpu", "--no-extra-data", "--no-llm", "--description", "x", "--inputs", str(inputs)]
    assert not packages(loaded(tmp_path, *pack)) & set(HEAVY)
    (tmp_path / "pred.csv").write_text("img_path,total_score,element_score\n" + "".join(
        f'{r["img_path"]},{r["total_score"]},"{json.dumps(r["element_score"]).replace(chr(34), chr(34) * 2)}"\n'
        for r in sub))
    pack[1], pack[5] = str(tmp_path / "pred.csv"), str(tmp_path / "packed2.zip")
    assert not packages(loaded(tmp_path, *pack)) & set(HEAVY)

    (tmp_path / "eval.json").write_text(json.dumps(ref))
    (tmp_path / "subs" / "north").mkdir(parents=True)
    align_zip(tmp_path / "subs" / "north" / "a.zip", sub)
    rank(tmp_path / "subs", "align", tmp_path / "eval.json", tmp_path / "lb.db")
    for fmt in ("table", "html", "md", "latex", "csv", "json"):
        args = ["leaderboard", "--db", str(tmp_path / "lb.db"), "--track", "align", "--format", fmt]
        assert not packages(loaded(tmp_path, *args)) & set(HEAVY), fmt


def test_scoring_loads_the_fit_alone_and_opencv_only_for_track2(tmp_path) -> None:
    sub, ref = random_align(30, seed=4)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    modules = loaded(tmp_path, "score", str(align_zip(tmp_path / "a.zip", sub)), "--track", "align", "--ref",
                     str(tmp_path / "eval.json"))
    assert "scipy.optimize._minpack" in modules  # the logistic fit: scipy's MINPACK, bit for bit curve_fit's
    assert not {"scipy.optimize", "scipy.stats", "scipy.linalg", "scipy.sparse"} & modules
    assert not packages(modules) & {"pandas", "cv2", "torch", "PIL"}
    preds, gt = random_structure(6, seed=2)
    (tmp_path / "gt.pkl").write_bytes(pickle.dumps(gt))
    zip2 = structure_zip(tmp_path / "s.zip", preds)
    assert "cv2" in packages(loaded(tmp_path, "validate", str(zip2), "--track", "structure"))
    modules = loaded(tmp_path, "score", str(zip2), "--track", "structure", "--ref", str(tmp_path / "gt.pkl"))
    assert "cv2" in packages(modules) and not {"scipy.stats", "scipy.optimize"} & modules
