"""The baselines on one GPU: full architectures at random init, end to end, with throughput and memory.

For each baseline (fga-blip2, rahf, lvlm-stack), on a small synthetic challenge:

* ``throughput``: scoring images/s per precision and batch size, a training step, peak memory
  (FGA-BLIP2 through its ``load_run`` + ``score_items``; RAHF and Qwen2.5-VL-7B through
  ``bench_rahf_gpu.py`` and ``bench_lvlm_gpu.py``);
* ``end_to_end``: the baseline's own ``train`` (a few steps) and ``predict`` on the test split, the
  submission zip written and validated by the toolkit (``ntire_t2iqa_baselines.common.submission``).

Each stage records its seconds and ``torch.cuda.max_memory_allocated``; a stage that fails records
its error and the rest go on; a stage whose estimate no longer fits ``--budget`` is skipped (said so
in the report). Writes ``gpu_check.json`` and ``gpu_check.txt`` to ``--out``.

    python3 benchmarks/gpu_check.py --budget 480 --out $OUT            # one GPU, full size
    .venv/bin/python benchmarks/gpu_check.py --tiny --device cpu --out /tmp/gc   # CPU smoke test (seconds)

Exit status: 0 when every stage that ran passed, 1 otherwise, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BASELINES = ("fga-blip2", "rahf", "lvlm-stack")
#: Seconds each stage is expected to take on one H200 at full size (budget planning; tiny stages take ~1 s).
ESTIMATES = {("fga-blip2", "end_to_end"): 60, ("fga-blip2", "throughput"): 60, ("rahf", "end_to_end"): 50,
             ("rahf", "throughput"): 40, ("lvlm-stack", "throughput"): 120, ("lvlm-stack", "end_to_end"): 150}
TARGETS = {"fga-blip2": 150.0, "rahf": 150.0, "lvlm-stack": 20.0}  # images/s on an H100/H200, bf16


class Check:
    """Runs stages under a time budget and collects their results."""

    def __init__(self, budget: float, device: Any) -> None:
        self.budget, self.device, self.t0 = budget, device, time.perf_counter()
        self.stages: list[dict[str, Any]] = []

    def left(self) -> float:
        """Seconds of the budget still left."""
        return self.budget - (time.perf_counter() - self.t0)

    def stage(self, baseline: str, name: str, estimate: float, fn: Any) -> Any:
        """Run ``fn()`` as one stage (skipped when ``estimate`` exceeds what is left); never raises."""
        import torch

        row: dict[str, Any] = {"baseline": baseline, "stage": name}
        self.stages.append(row)
        if estimate > self.left():
            row.update(status="skipped", reason=f"budget: {self.left():.0f} s left, about {estimate:.0f} s needed")
            return None
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        try:
            result = fn()
            row.update(status="ok", result=result)
        except Exception as exc:  # one stage failing must not stop the others
            result = None
            row.update(status="error", error=f"{type(exc).__name__}: {str(exc)[:2000]}",
                       traceback=traceback.format_exc()[-4000:])
        row["seconds"] = round(time.perf_counter() - t0, 2)
        row["peak_gib"] = round(torch.cuda.max_memory_allocated(self.device) / 2**30, 3) if cuda else None
        from benchmarks.gpu_stages import _free

        _free(self.device)
        return result


def _synth(folder: Path, tiny: bool) -> Path:
    from ntire_t2iqa.data.synth import SynthSize, synthesize

    size = SynthSize((8, 4, 4), 1, (6, 4, 4)) if tiny else SynthSize((28, 8, 32), 1, (16, 8, 32))
    synthesize(folder, seed=0, size=size, workers=1, progress=False)
    return folder


def _baseline(check: Check, name: str, args: argparse.Namespace, data: Path, work: Path, device: Any) -> None:
    """The stages of one baseline (end to end first where its run folder feeds the throughput stage)."""
    from benchmarks import gpu_stages as st

    tiny, zips = args.tiny, Path(args.out) / "zips"

    def est(stage: str) -> float:
        return 0 if tiny else ESTIMATES[(name, stage)]

    if name == "fga-blip2":
        run = work / "fga_run"
        check.stage(name, "end_to_end", est("end_to_end"), lambda: st.end_to_end(
            name, data, run, st.fga_config(tiny), args.device, zips / "fga-blip2.zip"))
        check.stage(name, "throughput", est("throughput"), lambda: st.fga_throughput(
            data, run, device, [4, 8] if tiny else [32, 64, 128], ["upstream", "bf16"], 2 if tiny else 8,
            0 if tiny else 8))
    elif name == "rahf":
        check.stage(name, "end_to_end", est("end_to_end"), lambda: st.end_to_end(
            name, data, work / "rahf_run", st.rahf_config(tiny), args.device, zips / "rahf.zip"))
        check.stage(name, "throughput", est("throughput"), lambda: st.rahf_throughput(
            tiny, device, 4 if tiny else 32, 2 if tiny else 8, 3 if tiny else 10))
    elif name == "lvlm-stack":
        base = None if tiny else work / "qwen_random"
        check.stage(name, "throughput", est("throughput"), lambda: st.lvlm_throughput(
            tiny, device, [2, 4] if tiny else [8, 16, 32, 64], [56] if tiny else [448, 1024],
            0.0 if tiny else 4.0, 2 if tiny else 8, work / "lvlm_images", base))
        if base is not None and not (base / "config.json").is_file():
            check.stages.append({"baseline": name, "stage": "end_to_end", "status": "skipped",
                                 "reason": "no random-init base was saved (the throughput stage did not finish)"})
            return
        check.stage(name, "end_to_end", est("end_to_end"), lambda: st.end_to_end(
            name, data, work / "lvlm_run", st.lvlm_config(tiny, base), args.device, zips / "lvlm-stack.zip"))


def run_check(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every selected baseline's stages; the report as a dict."""
    import torch

    from ntire_t2iqa_baselines.common.runtime import resolve_device, seed_everything
    device = resolve_device(args.device)
    seed_everything(0)
    if device.type == "cpu":  # no more threads than free cores: oversubscribed OpenMP threads crawl
        from ntire_t2iqa_baselines.common.runtime import free_cores

        torch.set_num_threads(free_cores())
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    tiny = args.tiny
    check = Check(args.budget, device)
    data = _synth(work / "data", tiny)
    report: dict[str, Any] = {
        "mode": "tiny" if tiny else "full", "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "python": sys.version.split()[0], "budget_s": args.budget,
        "flash_sdp": bool(device.type == "cuda" and torch.backends.cuda.flash_sdp_enabled()),
        "targets_images_per_s": TARGETS}
    for name in args.baselines:
        _baseline(check, name, args, data, work, device)
    report["stages"] = check.stages
    report["seconds"] = round(time.perf_counter() - check.t0, 1)
    return report


def summary(report: dict[str, Any]) -> str:
    """A short text table: one line per stage, the headline figures."""
    lines = [f"gpu_check {report['mode']} on {report['device_name']} (torch {report['torch']}): "
             f"{report['seconds']} s of a {report['budget_s']:.0f} s budget"]
    for row in report["stages"]:
        head = f"{row['baseline']:<11} {row['stage']:<11} {row['status']:<8}"
        if row["status"] != "ok":
            lines.append(f"{head} {row.get('error') or row.get('reason', '')}"[:300])
            continue
        peak = f" peak {row['peak_gib']} GiB" if row.get("peak_gib") is not None else ""
        res = row["result"]
        if row["stage"] == "end_to_end":
            lines.append(f"{head} {row['seconds']} s; train {res['train_seconds']} s; predict "
                         f"{res['predict_images_per_s']} images/s; zip valid: {res['valid']}{peak}")
        else:
            lines.append(f"{head} {row['seconds']} s{peak}; {json.dumps(res)[:400]}")
    return "\n".join(lines)


def passed(report: dict[str, Any]) -> bool:
    """No stage failed and every end-to-end zip that was written validated."""
    return all(r["status"] != "error" and (r["stage"] != "end_to_end" or r["status"] != "ok" or r["result"]["valid"])
               for r in report["stages"])


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the check, write the JSON report and the text summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json, gpu_check.txt and zips")
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    ap.add_argument("--tiny", action="store_true", help="tiny configs, a handful of steps and images (tests)")
    ap.add_argument("--budget", type=float, default=480.0, help="seconds the whole check may take (default 480)")
    ap.add_argument("--baselines", default=",".join(BASELINES), help="comma-separated subset (default all)")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default a temporary one)")
    args = ap.parse_args(argv)
    args.baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    unknown = [b for b in args.baselines if b not in BASELINES]
    if unknown or args.budget <= 0:
        print(f"error: unknown baseline(s) {unknown}; choose from {', '.join(BASELINES)}" if unknown
              else "error: --budget must be positive", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        report = run_check(args, Path(tmp))
    report["passed"] = passed(report)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    text = summary(report)
    (args.out / "gpu_check.txt").write_text(text + "\n")
    print(text)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
