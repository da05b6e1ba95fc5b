"""Trivial predictors: valid zips, and the scores bracket the range (oracle > random; constant's SRCC/PLCC 0)."""

from __future__ import annotations

import zipfile

import pytest
from click.testing import CliRunner

from ntire_t2iqa import score, validate
from ntire_t2iqa.cli import main
from ntire_t2iqa.data import ChallengePaths, SynthSize, write_trivial
from ntire_t2iqa.data.trivial import readme_text
from ntire_t2iqa.tracks.common import README_KEYS, check_readme

SIZE = SynthSize(align_prompts=(4, 12, 12), images_per_prompt=3, structure_images=(4, 24, 24))


@pytest.fixture(scope="module")
def challenge(synth_challenge):
    return ChallengePaths(synth_challenge(5, SIZE))


@pytest.fixture(scope="module")
def scored(challenge, tmp_path_factory):
    out = tmp_path_factory.mktemp("subs")
    results = {}
    for track in ("align", "structure"):
        for kind, noise in (("constant", 0.3), ("random", 0.3), ("oracle", 0.0), ("oracle", 0.1), ("oracle", 0.6)):
            zip_path = write_trivial(challenge.root, track, kind, "test", out / f"{track}-{kind}-{noise}.zip",
                                     noise=noise, seed=1)
            report = validate(zip_path, track, challenge.inputs(track, "test"))
            assert report.valid and not report.problems, (track, kind, report.problems)
            results[track, kind, noise] = score(zip_path, challenge.reference(track, "test"), track)
    return results


@pytest.mark.parametrize("track", ["align", "structure"])
def test_oracle_beats_random_and_noise_costs_points(scored, track):
    perfect, low, high = (scored[track, "oracle", n].main_score for n in (0.0, 0.1, 0.6))
    random = scored[track, "random", 0.3].main_score
    assert perfect == pytest.approx(1.0, abs=0.02)
    assert perfect >= low > high > random
    assert low > random + 0.3


@pytest.mark.parametrize("track", ["align", "structure"])
def test_constant_leaves_correlations_undefined_and_counted_as_zero(scored, track):
    result = scored[track, "constant", 0.3]
    assert result.srcc == 0.0 and result.plcc == 0.0
    assert any("SRCC is undefined" in w for w in result.warnings)
    assert any("PLCC is undefined" in w for w in result.warnings)
    if track == "structure":
        assert result.f1 == 0.0 and result.main_score == 0.0  # empty masks: no region at all
    else:
        assert result.main_score == pytest.approx(0.5 * result.acc)  # all elements "present"


def test_perfect_oracle_is_exact(scored):
    perfect = scored["align", "oracle", 0.0]
    assert perfect.srcc == pytest.approx(1.0) and perfect.acc == 1.0
    assert scored["structure", "oracle", 0.0].f1 == pytest.approx(1.0)


def test_zip_holds_exactly_the_two_members_and_the_template_readme(challenge, tmp_path):
    path = write_trivial(challenge.root, "structure", "random", "val", tmp_path / "s.zip")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["output.pkl", "readme.txt"]
        values, problems = check_readme(zf.read("readme.txt"))
    assert not problems and list(values) == list(README_KEYS)
    assert values["CPU[1] / GPU[0]"] == "1" and values["LLM[1] / Non-LLM[0]"] == "0"
    assert readme_text("x").count("\n") == 5


def test_cli_trivial_and_bad_arguments(challenge, tmp_path):
    runner = CliRunner()
    out = tmp_path / "a.zip"
    result = runner.invoke(main, ["data", "trivial", str(challenge.root), "--track", "align", "--kind", "oracle",
                                  "--split", "val", "--noise", "0.2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert validate(out, "align", challenge.inputs("align", "val")).valid
    with pytest.raises(ValueError, match="unknown kind"):
        write_trivial(challenge.root, "align", "median", "val", tmp_path / "b.zip")
    with pytest.raises(ValueError, match="has no inputs or reference"):
        write_trivial(challenge.root, "align", "random", "train", tmp_path / "b.zip")
    bad = runner.invoke(main, ["data", "trivial", str(tmp_path), "--track", "align", "--kind", "random"])
    assert bad.exit_code == 2 and "not a synthetic challenge" in bad.output
