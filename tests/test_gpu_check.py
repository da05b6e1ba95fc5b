"""benchmarks/gpu_check.py: the tiny CPU run end to end, the report's structure, the budget and error handling."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("xgboost")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.gpu_check import BASELINES, Check, passed, summary  # noqa: E402
from ntire_t2iqa import validate  # noqa: E402

TRACKS = {"fga-blip2": "align", "rahf": "structure", "lvlm-stack": "align"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict, Path]:
    out = tmp_path_factory.mktemp("gpu_check")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--tiny", "--device", "cpu",
                           "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    report = json.loads((out / "gpu_check.json").read_text())
    return proc.returncode, report, out


def test_tiny_report_structure(tiny_run: tuple[int, dict, Path]) -> None:
    rc, report, out = tiny_run
    assert rc == 0, [r.get("error") for r in report["stages"]]
    assert report["passed"] is True and report["mode"] == "tiny" and report["device"] == "cpu"
    stages = {(r["baseline"], r["stage"]): r for r in report["stages"]}
    assert set(stages) == {(b, s) for b in BASELINES for s in ("end_to_end", "throughput")}
    for row in stages.values():
        assert row["status"] == "ok", row
        assert row["seconds"] >= 0 and row["peak_gib"] is None  # no CUDA memory on the CPU
    fga = stages[("fga-blip2", "throughput")]["result"]
    assert {(r["precision"], r["batch"]) for r in fga} == {(p, b) for p in ("upstream", "bf16") for b in (4, 8)}
    assert all(r["images"] == 8 and r["images_per_s"] > 0 for r in fga)
    rahf = stages[("rahf", "throughput")]["result"]
    assert set(rahf) == {"inference_fp32", "inference_bf16", "train_step_bf16"}
    assert rahf["inference_fp32"]["mask_shape"] == [512, 512]
    lvlm = stages[("lvlm-stack", "throughput")]["result"]
    assert [r["batch"] for r in lvlm["scoring"]["56x56"]["runs"]] == [2, 4]
    assert lvlm["lora_step"]["trainable_params"] > 0
    text = (out / "gpu_check.txt").read_text()
    assert text.splitlines()[0].startswith("gpu_check tiny on cpu") and len(text.splitlines()) == 1 + len(stages)


def test_each_baseline_submission_validated(tiny_run: tuple[int, dict, Path]) -> None:
    _, report, out = tiny_run
    for row in report["stages"]:
        if row["stage"] != "end_to_end":
            continue
        res = row["result"]
        assert res["valid"] is True and res["problems"] == 0 and res["predict_images"] == 4  # the tiny test split
        zp = out / "zips" / res["zip"]
        track = TRACKS[row["baseline"]]
        assert validate(zp, track).valid  # checked again here, from the file alone
        with zipfile.ZipFile(zp) as zf:
            assert sorted(zf.namelist()) == sorted(["readme.txt", "output.json" if track == "align" else "output.pkl"])
            if track == "align":
                records = json.loads(zf.read("output.json"))
                assert len(records) == 4 and all(1 <= r["total_score"] <= 5 or r["total_score"] == r["total_score"]
                                                 for r in records)
            else:
                preds = pickle.loads(zf.read("output.pkl"))
                assert len(preds) == 4 and all(v["pred_area"].shape == (512, 512) for v in preds.values())


def test_budget_skips_and_errors_are_recorded() -> None:
    import torch

    check = Check(budget=100.0, device=torch.device("cpu"))
    assert check.stage("rahf", "throughput", 1e6, lambda: 1) is None
    assert check.stage("rahf", "end_to_end", 0, lambda: 1 / 0) is None
    assert check.stage("fga-blip2", "throughput", 0, lambda: {"x": 1}) == {"x": 1}
    skipped, failed, ok = check.stages
    assert skipped["status"] == "skipped" and "budget" in skipped["reason"]
    assert failed["status"] == "error" and failed["error"].startswith("ZeroDivisionError")
    assert ok["status"] == "ok" and ok["result"] == {"x": 1}
    report = {"mode": "tiny", "device_name": "cpu", "torch": "x", "seconds": 1, "budget_s": 100.0,
              "stages": check.stages}
    assert passed(report) is False
    assert "ZeroDivisionError" in summary(report) and "budget" in summary(report)


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    from benchmarks.gpu_check import main

    assert main(["--out", str(tmp_path), "--baselines", "nope"]) == 2
    assert main(["--out", str(tmp_path), "--budget", "0"]) == 2
