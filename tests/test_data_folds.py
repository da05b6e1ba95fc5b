"""Prompt-grouped folds: no prompt in two folds, every image in one fold, deterministic."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ntire_t2iqa.cli import main
from ntire_t2iqa.data import ChallengePaths, SynthSize, load_folds, make_folds
from ntire_t2iqa.data.folds import assign_folds, fold_assignment
from ntire_t2iqa.errors import ReferenceDataError

SIZE = SynthSize(align_prompts=(20, 4, 4), images_per_prompt=3, structure_images=(12, 4, 4))


@pytest.fixture(scope="module")
def challenge(synth_challenge):
    return ChallengePaths(synth_challenge(1, SIZE))


def _check_partition(folds, records_by_image, group_of):
    assignment = fold_assignment(folds)
    assert sorted(assignment) == sorted(records_by_image)  # every training image in exactly one fold
    assert sum(len(f["images"]) for f in folds["folds"]) == len(records_by_image)
    fold_of_group: dict[str, int] = {}
    for image, fold in assignment.items():
        group = group_of(records_by_image[image])
        assert fold_of_group.setdefault(group, fold) == fold, f"prompt {group!r} is split"


def test_track1_folds_never_split_a_prompt(challenge, tmp_path):
    train = json.loads(challenge.align_raw("train").read_text())
    folds = make_folds(challenge.align_raw("train"), k=5, seed=0, out=tmp_path / "folds.json")
    assert folds["track"] == "align" and folds["k"] == 5 and folds["n_images"] == 60
    _check_partition(folds, {r["img_path"]: r for r in train}, lambda r: r["prompt_id"])
    sizes = [len(f["images"]) for f in folds["folds"]]
    assert sizes == [12] * 5  # 20 prompts x 3 images dealt evenly
    assert all(len(f["prompt_ids"]) == 4 for f in folds["folds"])
    models = [{img.split("/")[0] for img in f["images"]} for f in folds["folds"]]
    assert len(set.intersection(*models)) >= 1  # T2I models repeat across folds
    assert load_folds(tmp_path / "folds.json") == json.loads(json.dumps(folds))


def test_folds_are_deterministic_for_a_seed(challenge):
    a = make_folds(challenge.align_raw("train"), k=4, seed=7)
    b = make_folds(challenge.align_raw("train"), k=4, seed=7)
    c = make_folds(challenge.align_raw("train"), k=4, seed=8)
    assert a == b
    assert fold_assignment(a) != fold_assignment(c)


def test_track2_folds_group_by_prompt_text(challenge):
    info = json.loads(challenge.structure_raw("train").read_text())
    folds = make_folds(challenge.structure_raw("train"), k=3, seed=0)
    assert folds["track"] == "structure" and "prompt_ids" not in folds["folds"][0]
    _check_partition(folds, info, lambda e: e["prompt_en"])


def test_shared_prompt_text_or_id_joins_groups():
    items = [("a.png", "1", "red cat"), ("b.png", "2", "red cat"), ("c.png", "2", "blue dog"),
             ("d.png", "3", "green owl"), ("e.png", "4", "pink pig"), ("f.png", "5", "tan fox")]
    for seed in range(10):
        fold = assign_folds(items, k=3, seed=seed)
        assert fold[0] == fold[1] == fold[2]  # a-b share the text, b-c share the id
    fold = assign_folds(items, k=3, seed=0)
    counts = sorted(fold.count(f) for f in range(3))
    assert counts == [1, 2, 3]  # the 3-image group alone, the 3 singletons spread over the rest
    with pytest.raises(ValueError, match="between 2 and the number of prompt groups"):
        assign_folds(items, k=5, seed=0)


def test_records_without_prompts_are_refused(tmp_path):
    (tmp_path / "train_list.json").write_text(json.dumps([{"img_path": "M/1.png", "total_score": [3]}]))
    with pytest.raises(ReferenceDataError, match="'M/1.png' has neither 'prompt_id' nor 'prompt'"):
        make_folds(tmp_path / "train_list.json")


def test_cli_folds_for_a_whole_challenge(challenge):
    result = CliRunner().invoke(main, ["data", "folds", str(challenge.root), "--k", "4", "--seed", "2"])
    assert result.exit_code == 0, result.output
    align = load_folds(challenge.align / "folds.json")
    structure = load_folds(challenge.structure / "folds.json")
    assert align["k"] == structure["k"] == 4 and align["seed"] == 2
    assert align == make_folds(challenge.align_raw("train"), k=4, seed=2)
    bad = CliRunner().invoke(main, ["data", "folds", str(challenge.root), "--k", "99", "--track", "align"])
    assert bad.exit_code == 2 and "number of prompt groups (20)" in bad.output
