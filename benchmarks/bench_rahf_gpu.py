"""RAHF (Track 2 baseline) GPU benchmark: full-size architecture at random initialisation, bf16.

Measures, on one device:

* inference throughput (images/s) at batch 32: the forward pass in bf16 weights plus the
  ``round(h * 255) > 40`` masks, on device, after warm-up; and its peak memory;
* one training step (AMP bf16 autocast, fp32 master weights, AdamW, encoders unfrozen) at
  ``--train-batch``: seconds and peak memory.

Target: >= 150 images/s on one H100 (exit status 2 when a CUDA run misses it). Run from the
repository root:

    .venv/bin/python benchmarks/bench_rahf_gpu.py                         # full size, cuda
    .venv/bin/python benchmarks/bench_rahf_gpu.py --compile               # with torch.compile
    .venv/bin/python benchmarks/bench_rahf_gpu.py --tiny --device cpu     # smoke test (seconds)

No weights or data are needed: inputs are random pixels and token ids.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_IMAGES_PER_S = 150.0


def _config(tiny: bool) -> dict[str, Any]:
    from ntire_t2iqa_baselines.rahf import CONFIGS

    config = json.loads(Path(CONFIGS["tiny" if tiny else "full"]).read_text())
    text = config["text"]
    text.setdefault("vocab_size", 64)
    text.setdefault("max_position_embeddings", int(text["max_length"]) + 2)
    config["init_from_altclip"] = False
    return config


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_gib(device: Any) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def _reset_peak(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _inputs(config: dict[str, Any], batch: int, device: Any, gen: Any) -> tuple[Any, Any]:
    import torch

    size = int(config["image_size"])
    pixels = torch.randn(batch, 3, size, size, generator=gen).to(device)
    ids = torch.randint(3, int(config["text"]["vocab_size"]), (batch, int(config["text"]["max_length"])),
                        generator=gen)
    ids[:, 0], ids[:, -1] = 0, 2
    return pixels, ids.to(device)


def bench_inference(config: dict[str, Any], device: Any, batch: int, iters: int, warmup: int, bf16: bool,
                    compile_model: bool) -> dict[str, Any]:
    """Images/s and peak memory of forward + masks at ``batch``."""
    import torch

    from ntire_t2iqa_baselines.rahf.model import build_model

    model = build_model(config).to(device).eval()
    dtype = torch.bfloat16 if bf16 else torch.float32
    model.to(dtype)
    run = torch.compile(model) if compile_model else model
    gen = torch.Generator().manual_seed(0)
    pixels, ids = _inputs(config, batch, device, gen)
    pixels = pixels.to(dtype)

    def step() -> Any:
        heat, score = run(pixels, ids)
        heat = model.full_heatmap(heat.float())
        return (torch.round(heat * 255) > 40).to(torch.uint8), score * 4 + 1

    _reset_peak(device)
    with torch.inference_mode():
        for _ in range(warmup):
            step()
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            masks, _ = step()
        _sync(device)
        seconds = time.perf_counter() - t0
    out = {"batch": batch, "iters": iters, "seconds": round(seconds, 4),
           "images_per_s": round(batch * iters / seconds, 2), "peak_gib": _peak_gib(device),
           "mask_shape": list(masks.shape[-2:])}
    return out


def bench_train_step(config: dict[str, Any], device: Any, batch: int, iters: int, bf16: bool) -> dict[str, Any]:
    """Seconds per training step (after one warm-up step) and peak memory."""
    import torch
    import torch.nn.functional as F

    from ntire_t2iqa_baselines.rahf.model import build_model, native_heatmap_size

    model = build_model(config).to(device).train()
    model.set_encoders_trainable(True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    gen = torch.Generator().manual_seed(1)
    pixels, ids = _inputs(config, batch, device, gen)
    side = native_heatmap_size(config)
    target = (torch.rand(batch, side, side, generator=gen) > 0.95).float().to(device)
    mos = torch.rand(batch, generator=gen).to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def step() -> float:
        with autocast:
            heat, score = model(pixels, ids)
        loss = F.mse_loss(heat.float().squeeze(1), target) + F.mse_loss(score.float(), mos)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    _reset_peak(device)
    step()
    _sync(device)
    t0 = time.perf_counter()
    losses = [step() for _ in range(iters)]
    _sync(device)
    seconds = (time.perf_counter() - t0) / iters
    out = {"batch": batch, "seconds_per_step": round(seconds, 4), "images_per_s": round(batch / seconds, 2),
           "peak_gib": _peak_gib(device), "loss": round(losses[-1], 5)}
    return out


def main(argv: list[str] | None = None) -> int:
    """Run both measurements, print them (``--json`` for one JSON object); 2 when a CUDA run misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--tiny", action="store_true", help="the tiny config (smoke test) instead of full size")
    parser.add_argument("--batch", type=int, default=32, help="inference batch (default 32)")
    parser.add_argument("--train-batch", type=int, default=8, help="training-step batch (default 8)")
    parser.add_argument("--iters", type=int, default=10, help="timed inference batches (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed inference batches first (default 3)")
    parser.add_argument("--train-iters", type=int, default=3, help="timed training steps (default 3)")
    parser.add_argument("--fp32", action="store_true", help="float32 instead of bf16")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model for inference")
    parser.add_argument("--skip-train", action="store_true", help="inference only")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    import torch

    from ntire_t2iqa_baselines.common.runtime import resolve_device, seed_everything
    from ntire_t2iqa_baselines.rahf.model import build_model, count_parameters

    device = resolve_device(args.device)
    if device.type == "cpu":  # no more threads than free cores: oversubscribed OpenMP threads crawl
        from ntire_t2iqa_baselines.rahf.inputs import free_cores

        torch.set_num_threads(free_cores())
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    seed_everything(0)
    config = _config(args.tiny)
    bf16 = not args.fp32
    result: dict[str, Any] = {
        "config": config["name"], "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dtype": "bf16" if bf16 else "fp32", "torch": torch.__version__,
        "parameters": count_parameters(build_model(config)),
    }
    result["inference"] = bench_inference(config, device, args.batch, args.iters, args.warmup, bf16, args.compile)
    if not args.skip_train:
        result["train_step"] = bench_train_step(config, device, args.train_batch, args.train_iters, bf16)
    ips = result["inference"]["images_per_s"]
    result["target_images_per_s"] = TARGET_IMAGES_PER_S
    result["meets_target"] = ips >= TARGET_IMAGES_PER_S if device.type == "cuda" and not args.tiny else None
    if args.json:
        print(json.dumps(result))
    else:
        p = result["parameters"]
        print(f"RAHF {result['config']} on {result['device_name']} ({result['dtype']}, torch {result['torch']}): "
              f"{p['total'] / 1e6:.1f} M parameters")
        inf = result["inference"]
        mem = f", peak {inf['peak_gib']:.2f} GiB" if inf["peak_gib"] is not None else ""
        print(f"  inference, batch {inf['batch']}: {ips:.1f} images/s{mem} "
              f"(target >= {TARGET_IMAGES_PER_S:.0f} on an H100: "
              f"{'n/a' if result['meets_target'] is None else 'met' if result['meets_target'] else 'MISSED'})")
        if "train_step" in result:
            tr = result["train_step"]
            mem = f", peak {tr['peak_gib']:.2f} GiB" if tr["peak_gib"] is not None else ""
            print(f"  training step, batch {tr['batch']}: {tr['seconds_per_step']:.3f} s "
                  f"({tr['images_per_s']:.1f} images/s){mem}, loss {tr['loss']}")
    return 2 if result["meets_target"] is False else 0


if __name__ == "__main__":
    sys.exit(main())
