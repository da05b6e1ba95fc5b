"""The Python API: predictions in memory (records, dicts, DataFrames), references kept to their track, metric
functions that return plain floats, docstrings, and the README's Python blocks and pack commands as written."""

from __future__ import annotations

import inspect
import json
import os
import pickle
import re
import shlex
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import align_zip, random_align, random_structure, structure_zip
from PIL import Image
from scipy import stats

import ntire_t2iqa
from ntire_t2iqa import SubmissionError, load_reference, metrics, score, validate
from ntire_t2iqa.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def test_score_takes_paths_records_dicts_and_dataframes(tmp_path: Path) -> None:
    sub, ref = random_align(30, seed=41)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    want = score(align_zip(tmp_path / "a.zip", sub), tmp_path / "eval.json", track="align").to_dict()
    loaded = load_reference(tmp_path / "eval.json", "align")
    assert score(sub, loaded, track="align").to_dict() == want
    assert score(pd.DataFrame(sub), loaded, track="align").to_dict() == want
    long = pd.DataFrame([{"img_path": r["img_path"], "total_score": r["total_score"], "element": k, "score": v}
                         for r in sub for k, v in r["element_score"].items()])
    assert score(long, loaded, track="align").to_dict() == want
    preds, gt = random_structure(10, seed=42)
    (tmp_path / "gt.pkl").write_bytes(pickle.dumps(gt))
    want = score(structure_zip(tmp_path / "s.zip", preds), tmp_path / "gt.pkl", track="structure").to_dict()
    assert score(preds, tmp_path / "gt.pkl", track="structure").to_dict() == want
    frame = pd.DataFrame({"name": list(preds), "score": [e["score"] for e in preds.values()],
                          "pred_area": [e["pred_area"] for e in preds.values()]})
    assert score(frame, tmp_path / "gt.pkl", track="structure").to_dict() == want


def test_in_memory_predictions_are_checked_like_files(tmp_path: Path) -> None:
    sub, ref = random_align(8, seed=43)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    sub[2]["total_score"] = "high"
    with pytest.raises(SubmissionError) as info:
        score(sub, tmp_path / "eval.json", track="align")
    assert info.value.errors[0].where == f"output.json, record 2 (img_path {sub[2]['img_path']!r})"
    bad_masks = {"a": {"score": 1.0, "pred_area": np.zeros((448, 448), bool)}}
    assert "boolean array" in str(validate(bad_masks, "structure").errors[0])
    with pytest.raises(TypeError, match=r"Track 1 \(align\) predictions are a path .* not dict"):
        validate({"a": {}}, "align")
    with pytest.raises(TypeError, match=r"Track 2 \(structure\) predictions are a path .* not list"):
        validate([{"img_path": "a"}], "structure")


def test_a_reference_of_one_track_used_with_the_other_is_a_clear_error(tmp_path: Path) -> None:
    sub, ref = random_align(6, seed=44)
    preds, gt = random_structure(5, seed=44)
    (tmp_path / "eval.json").write_text(json.dumps(ref))
    (tmp_path / "gt.pkl").write_bytes(pickle.dumps(gt))
    align_ref = load_reference(tmp_path / "eval.json", "align")
    structure_ref = load_reference(tmp_path / "gt.pkl", "structure")
    with pytest.raises(TypeError) as info:
        score(preds, align_ref, track="structure")
    assert str(info.value).startswith("the reference was loaded for Track 1 (align) (load_reference(path, 'align')), "
                                      "but it is scored here as Track 2 (structure)")
    with pytest.raises(TypeError, match=r"loaded for Track 2 \(structure\).*pass track='structure'"):
        score(sub, structure_ref, track="align")
    with pytest.raises(TypeError, match=r"reference must be a path or what load_reference\(path, 'align'\) returns, "
                                        r"not list"):
        score(sub, ref, track="align")


def test_public_metric_functions_return_plain_floats() -> None:
    rng = np.random.default_rng(45)
    gt = rng.uniform(1, 5, 80)
    pred = gt + rng.normal(0, 0.8, 80)
    values = {
        "srcc": metrics.srcc(gt, pred), "spearman": metrics.spearman(gt, pred), "pearson": metrics.pearson(gt, pred),
        "plcc none": metrics.plcc(gt, pred, fit="none"), "plcc logistic4": metrics.plcc(gt, pred),
        "plcc gt->pred": metrics.plcc(gt, pred, fit="logistic4_gt_to_pred"),
        "plcc poly3": metrics.plcc(gt, pred, "poly3"),
        "acc": metrics.element_accuracy(gt / 5, pred / 5), "f1": metrics.region_f1(4, 3, 5, 1),
        "main": metrics.align_main(0.5, 0.5, 0.5),
    }
    for name, value in values.items():
        assert type(value) is float, name
    assert values["srcc"] == values["spearman"] == pytest.approx(stats.spearmanr(gt, pred)[0], abs=1e-12)
    assert values["pearson"] == values["plcc none"] == pytest.approx(stats.pearsonr(gt, pred)[0], abs=1e-12)
    assert metrics.srcc(list(gt), list(pred)) == values["srcc"]  # lists work as arrays do
    scores = metrics.region_scores(4, 3, 5, 1)
    assert all(type(v) is float for v in scores) and (scores.precision, scores.recall) == (0.75, 0.8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert np.isnan(metrics.pearson([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))  # undefined: NaN, as scipy
        assert metrics.plcc([1.0, 2.0, 3.0], [1.0, 1.0, 1.0]) == 0.0
        assert metrics.region_scores(0, 0, 0, 0) == (0.0, 0.0, 0.0)
    assert [type(w.message) for w in caught] == [metrics.MetricWarning] * 4  # fit failed, PLCC undefined, P, R


def test_every_public_function_has_a_docstring() -> None:
    import ntire_t2iqa.packing as packing
    from ntire_t2iqa import scoring
    from ntire_t2iqa.packing import align_inputs, convert, structure_inputs, tables

    missing = []
    for module in (ntire_t2iqa, scoring, metrics, packing, align_inputs, structure_inputs, tables, convert):
        for name, obj in vars(module).items():
            if name.startswith("_") or not callable(obj) or getattr(obj, "__module__", "") != module.__name__:
                continue
            if not (obj.__doc__ or "").strip():
                missing.append(f"{module.__name__}.{name}")
            if inspect.isclass(obj):
                missing += [f"{module.__name__}.{name}.{m}" for m, f in vars(obj).items()
                            if not m.startswith("_") and inspect.isfunction(f) and not (f.__doc__ or "").strip()]
    assert missing == []
    assert ntire_t2iqa.pack is packing.pack and "Write a valid submission zip" in ntire_t2iqa.pack.__doc__


def _readme_fixtures(folder: Path) -> None:
    """The files the README's examples name, written as the challenge publishes them."""
    sub, ref = random_align(20, seed=46)
    (folder / "eval.json").write_text(json.dumps(ref))
    inputs = [{"img_path": r["img_path"], "prompt": "a prompt", "total_score": None,
               "element_score": {k: None for k in r["element_score"]}} for r in ref]
    (folder / "test_inputs.json").write_text(json.dumps(inputs))
    align_zip(folder / "submission.zip", sub)
    (folder / "pred.json").write_text(json.dumps(sub))
    pd.DataFrame({"img_path": [r["img_path"] for r in sub], "total_score": [r["total_score"] for r in sub],
                  "element_score": [json.dumps(r["element_score"]) for r in sub]}).to_csv(folder / "pred.csv",
                                                                                        index=False)
    pd.DataFrame(sub)[["img_path", "total_score"]].to_csv(folder / "totals.csv", index=False)
    pd.DataFrame([{"img_path": r["img_path"], "element": k, "score": v} for r in sub
                  for k, v in r["element_score"].items()]).to_csv(folder / "elements.csv", index=False)
    preds, gt = random_structure(6, seed=47)
    (folder / "gt.pkl").write_bytes(pickle.dumps(gt))
    (folder / "test_images.json").write_text(json.dumps(list(gt)))
    (folder / "masks").mkdir()
    for name, entry in preds.items():
        Image.fromarray(entry["pred_area"] * 255).save(folder / "masks" / f"{name}.png")
    np.savez(folder / "masks.npz", **{n: e["pred_area"] for n, e in preds.items()})
    pd.DataFrame({"name": list(preds), "score": [e["score"] for e in preds.values()]}).to_csv(
        folder / "scores.csv", index=False)


def test_readme_python_blocks_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3
    _readme_fixtures(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.MetricWarning)
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - the project's own README
    printed = capsys.readouterr().out.splitlines()
    assert "True" in printed and "0.8" in printed
    assert any(line.startswith("the reference was loaded for Track 2 (structure)") for line in printed)
    assert namespace["report"].valid and os.path.exists("my_submission.zip")


def _readme_commands(prefix: str) -> list[list[str]]:
    text = README.read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        if line.startswith(prefix):
            out.append(shlex.split(line.split("  #")[0].split(" # ")[0])[1:])
    return out


def test_readme_pack_commands_work_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = _readme_commands("ntire-t2iqa pack ")
    assert len(commands) == 5
    _readme_fixtures(tmp_path)
    monkeypatch.chdir(tmp_path)
    for args in commands:
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, (args, res.output)
        track = args[args.index("--track") + 1]
        assert validate("submission.zip", track).valid
        os.remove("submission.zip")
