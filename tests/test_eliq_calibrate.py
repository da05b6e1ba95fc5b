"""eliq's optional calibration command: the least-squares line, composed with an earlier one, refused when falling."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ntire_t2iqa_baselines.eliq import calibrate as cal

README = "runtime per image [s] : 1\nCPU[1] / GPU[0] : 1\nExtra Data [1] / No Extra Data [0] : 0\n" \
         "LLM[1] / Non-LLM[0] : 0\nOther description : test\n"


def _run(tmp: Path, track: str = "align") -> Path:
    run = tmp / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "eliq.json").write_text(json.dumps({"track": track}))
    return run


def _split(tmp: Path, x: list[float], y: list[float]) -> tuple[Path, Path]:
    names = [f"M/{i:03d}.png" for i in range(len(x))]
    (tmp / "eval.json").write_text(json.dumps([{"img_path": n, "total_score": t, "element_score": {"a (b)": 1.0}}
                                               for n, t in zip(names, y)]))
    records = [{"img_path": n, "total_score": s, "element_score": {"a (b)": 0.9}} for n, s in zip(names, x)]
    with zipfile.ZipFile(tmp / "val.zip", "w") as z:
        z.writestr("output.json", json.dumps(records[::-1]))  # any order: the scorer pairs by img_path
        z.writestr("readme.txt", README)
    return tmp / "val.zip", tmp / "eval.json"


def test_the_line_is_the_least_squares_fit_of_the_labels(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 40)
    y = np.clip(1 + 4 * x + rng.normal(0, 0.3, 40), 1, 5)
    run = _run(tmp_path)
    zip_path, ref = _split(tmp_path, list(x), list(y))
    assert cal.main([str(run), str(zip_path), "--reference", str(ref)]) == 0
    saved = json.loads((run / "calibration_align.json").read_text())
    a, b = np.polyfit(x, y, 1)
    assert saved["a"] == pytest.approx(a, rel=1e-12) and saved["b"] == pytest.approx(b, rel=1e-12)
    assert saved["n_images"] == 40
    assert capsys.readouterr().out == (f"wrote {run / 'calibration_align.json'}: a = {saved['a']:.6g}, "
                                       f"b = {saved['b']:.6g} (40 images)\n")


def test_an_earlier_calibration_is_composed_with_the_new_line(tmp_path: Path) -> None:
    run = _run(tmp_path)
    (run / "calibration_align.json").write_text(json.dumps({"a": 2.0, "b": 1.0}))
    raw = np.array([0.1, 0.4, 0.5, 0.9])
    submitted = 2.0 * raw + 1.0  # what run wrote with the earlier calibration
    labels = 3.0 * submitted - 2.0
    zip_path, ref = _split(tmp_path, list(submitted), list(labels))
    out = cal.calibrate(run, zip_path, ref, "align")
    assert out["a"] == pytest.approx(6.0, rel=1e-12) and out["b"] == pytest.approx(1.0, rel=1e-12)
    assert np.allclose(out["a"] * raw + out["b"], labels)


def test_a_falling_or_flat_relation_and_another_track_are_refused(tmp_path: Path, capsys) -> None:
    run = _run(tmp_path)
    zip_path, ref = _split(tmp_path, [0.1, 0.2, 0.3], [4.0, 3.0, 2.0])
    assert cal.main([str(run), str(zip_path), "--reference", str(ref)]) == 2
    assert capsys.readouterr().err == ("error: the labels fall as the scores rise (slope -10): a monotonic "
                                       "calibration cannot fit them; check that the submission and the reference "
                                       "are of the same split\n")
    assert not (run / "calibration_align.json").exists()
    with pytest.raises(ValueError, match="^3 image\\(s\\) with one submitted score: a line needs"):
        cal.fit_line(np.array([0.5, 0.5, 0.5]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="^0 image\\(s\\) with no score"):
        cal.fit_line(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="trained on structure training images, not align"):
        cal.calibrate(_run(tmp_path / "s", "structure") if (tmp_path / "s").mkdir() is None else None,
                      zip_path, ref, "align")
    assert cal.main([str(tmp_path / "nowhere"), str(zip_path), "--reference", str(ref)]) == 2
    assert "is not a finished eliq run folder" in capsys.readouterr().err


def test_track2_calibration_pairs_the_structure_scores(tmp_path: Path) -> None:
    import pickle

    run = _run(tmp_path, "structure")
    x = [0.2, 0.5, 0.1, 0.9, 0.4]
    y = [2.0 + 3.0 * v for v in x]
    mask = np.zeros((512, 512), np.uint8)
    (tmp_path / "gt.pkl").write_bytes(pickle.dumps({f"{i}.png": {"score": t, "pred_area": mask}
                                                    for i, t in enumerate(y)}))
    with zipfile.ZipFile(tmp_path / "val.zip", "w") as z:
        z.writestr("output.pkl", pickle.dumps({f"{i}.png": {"score": s, "pred_area": mask} for i, s in enumerate(x)}))
        z.writestr("readme.txt", README)
    out = cal.calibrate(run, tmp_path / "val.zip", tmp_path / "gt.pkl", "structure")
    assert out["a"] == pytest.approx(3.0, rel=1e-12) and out["b"] == pytest.approx(2.0, rel=1e-12)
    assert json.loads((run / "calibration_structure.json").read_text())["n_images"] == 5
