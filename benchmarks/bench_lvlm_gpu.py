"""lvlm-stack (Track 1 baseline) GPU benchmark: full-size Qwen2.5-VL-7B at random initialisation, bf16.

Measures, on one device, through the baseline's own code path (Collator + Scorer: image
features once per image, left-padded sequences, first-token expected value):

* overall-score throughput (images/s, one sequence per image) for each batch size until
  memory runs out, the best batch size and its peak memory;
* one LoRA training step at the full config (rank 64 on LM and vision projections, two
  learning-rate groups, AdamW, bf16 autocast, gradient checkpointing) with the overall
  sequence plus ``--train-elements`` element sequences per image: seconds and peak memory.

Anchor: 4.03 images/s at batch 4 on an RTX 4090D (the team's report); target: >= 20 images/s
on one H100 (exit status 2 when a CUDA run misses it). Run from the repository root:

    .venv/bin/python benchmarks/bench_lvlm_gpu.py                       # 7B architecture, cuda
    .venv/bin/python benchmarks/bench_lvlm_gpu.py --weights /models/Qwen2.5-VL-7B-Instruct
    .venv/bin/python benchmarks/bench_lvlm_gpu.py --tiny --device cpu   # smoke test (seconds)

No weights or data are needed: images are random pixels (resized to ``--max-pixels``, the
full config's 448 x 448 budget = 256 visual tokens by default), text comes from the
offline tiny tokenizer (the sequence layout and lengths match the real prompts).
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

ANCHOR_IMAGES_PER_S = 4.03  # RTX 4090D, batch 4
TARGET_IMAGES_PER_S = 20.0  # one H100

#: Qwen2.5-VL-7B-Instruct's architecture (its config.json), built here at random initialisation.
QWEN25_VL_7B = {
    "text": dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                 num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=128000, rms_norm_eps=1e-6,
                 rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]}),
    "vision": dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                   patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                   fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2, hidden_act="silu"),
}


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: Any) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None


def _items(n: int, size: int, folder: Path) -> list[Any]:
    """``n`` random-pixel images with prompts and elements shaped like the challenge's."""
    import numpy as np
    from PIL import Image

    from ntire_t2iqa_baselines.common.data import AlignItem

    rng = np.random.default_rng(0)
    words = ["red", "striped", "circle", "two", "large", "square", "left of", "on grass", "blue", "star"]
    models = ["SDXL-Turbo", "Midjourney-v6", "DALLE-3", "Kolors"]
    items = []
    for i in range(n):
        path = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
        picks = [words[j] for j in rng.choice(len(words), 8, replace=False)]
        prompt = "a photo of " + " ".join(picks) + " in the style of a detailed oil painting at sunset"
        elements = [f"{w} ({c})" for w, c in zip(picks, ["color", "material", "object", "counting", "attribute",
                                                         "object", "spatial", "location"])]
        items.append(AlignItem(f"{models[i % 4]}/{i:05d}.png", path, prompt, elements, str(i), models[i % 4],
                               "real", 3.0, {e: 1.0 for e in elements}))
    return items


def _model(args: argparse.Namespace, tok: Any, device: Any) -> tuple[Any, dict[str, Any]]:
    """(model, image spec): tiny random, 7B random, or local weights."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from ntire_t2iqa_baselines.lvlm_stack import CONFIGS
    from ntire_t2iqa_baselines.lvlm_stack.model import build_tiny_model, load_model
    from ntire_t2iqa_baselines.lvlm_stack.tokenizer import single_token_id

    dtype = torch.bfloat16 if args.dtype == "bfloat16" else torch.float32
    if args.tiny:
        cfg = json.loads(Path(CONFIGS["tiny"]).read_text())
        spec = {**cfg["model"]["tiny"], "patch_size": cfg["model"]["patch_size"],
                "merge_size": cfg["model"]["merge_size"]}
        model = build_tiny_model(spec, tok, 0).to(device=device, dtype=dtype)
        return model, {k: cfg["model"][k] for k in ("patch_size", "merge_size", "min_pixels", "max_pixels")}
    image = {"patch_size": 14, "merge_size": 2, "min_pixels": 3136, "max_pixels": args.max_pixels}
    if args.weights:
        return load_model(args.weights, args.dtype, "sdpa", device), image
    ids = {k: single_token_id(tok, t) for k, t in (("image_token_id", "<|image_pad|>"),
                                                   ("video_token_id", "<|video_pad|>"),
                                                   ("vision_start_token_id", "<|vision_start|>"),
                                                   ("vision_end_token_id", "<|vision_end|>"))}
    text = {**QWEN25_VL_7B["text"], "pad_token_id": tok.pad_token_id}
    config = Qwen2_5_VLConfig(text_config=text, vision_config=QWEN25_VL_7B["vision"], tie_word_embeddings=False,
                              **ids)
    config._attn_implementation = "sdpa"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = Qwen2_5_VLForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    return model, image


def _tokenizer(args: argparse.Namespace, items: list[Any]) -> Any:
    from ntire_t2iqa_baselines.lvlm_stack.prompts import corpus
    from ntire_t2iqa_baselines.lvlm_stack.tokenizer import build_tiny_tokenizer, load_tokenizer

    return load_tokenizer(args.weights) if args.weights else build_tiny_tokenizer(corpus(items), 640)


def throughput(scorer: Any, examples: list[Any], collator: Any, batch: int, device: Any, min_seconds: float,
               amp: Any) -> dict[str, Any]:
    """Images/s of the overall-score forward at ``batch`` (after warm-up) and its peak memory."""
    import torch

    from ntire_t2iqa_baselines.lvlm_stack.model import model_inputs

    batches = [collator(examples[i:i + batch]) for i in range(0, len(examples) - batch + 1, batch)] or \
        [collator(examples[:batch])]
    _reset_peak(device)
    with torch.inference_mode(), amp():
        for b in batches[:2]:
            scorer(**model_inputs(b, device))
        _sync(device)
        n, t0 = 0, time.perf_counter()
        while True:
            for b in batches:
                scorer(**model_inputs(b, device)).float().cpu()
                n += batch
            if time.perf_counter() - t0 >= min_seconds and n >= 3 * batch:
                break
        _sync(device)
        dt = time.perf_counter() - t0
    return {"batch": batch, "images_per_s": round(n / dt, 3), "peak_gib": _peak_gib(device)}


def train_step(model: Any, tok: Any, examples: list[Any], collator: Any, device: Any, amp: Any, tiny: bool
               ) -> dict[str, Any]:
    """One LoRA step at the full config's LoRA and optimiser settings (after one warm-up step)."""
    import torch

    from ntire_t2iqa_baselines.lvlm_stack import CONFIGS
    from ntire_t2iqa_baselines.lvlm_stack.model import (
        Scorer,
        add_lora,
        enable_checkpointing,
        expectation_mse,
        model_inputs,
        param_groups,
    )

    cfg = json.loads(Path(CONFIGS["tiny" if tiny else "full"]).read_text())
    if cfg["train"].get("gradient_checkpointing"):
        enable_checkpointing(model)
    scorer = Scorer(add_lora(model, cfg["lora"]), tok).to(device)
    scorer.train()
    t = cfg["train"]
    opt = torch.optim.AdamW(param_groups(scorer, t["lr_lm"], t["lr_vision"], t["weight_decay"]))
    batch = collator(examples)
    inputs = model_inputs(batch, device)
    target, task = batch["target"].to(device), batch["task"].to(device)
    _reset_peak(device)
    times = []
    for _ in range(2):
        _sync(device)
        t0 = time.perf_counter()
        with amp():
            pred = scorer(**inputs)
        loss = expectation_mse(pred.float(), target, task)
        loss.backward()
        opt.step()
        opt.zero_grad()
        _sync(device)
        times.append(time.perf_counter() - t0)
    n_trainable = sum(p.numel() for p in scorer.parameters() if p.requires_grad)
    return {"images": len(examples), "sequences": int(batch["input_ids"].shape[0]),
            "seq_len": int(batch["input_ids"].shape[1]), "seconds": round(times[-1], 3),
            "peak_gib": _peak_gib(device), "trainable_params": n_trainable, "loss": round(float(loss.detach()), 4),
            "gradient_checkpointing": bool(cfg["train"].get("gradient_checkpointing"))}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a JSON report and a summary line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="tiny config instead of the 7B architecture")
    ap.add_argument("--weights", default=None, help="local Qwen2.5-VL directory instead of random init")
    ap.add_argument("--dtype", default=None, choices=["bfloat16", "float32"],
                    help="default: bfloat16 on cuda, float32 on cpu")
    ap.add_argument("--batch-sizes", default="1,2,4,8,16,32,64")
    ap.add_argument("--max-pixels", type=int, default=448 * 448)
    ap.add_argument("--image-size", type=int, default=512, help="side of the random input images")
    ap.add_argument("--min-seconds", type=float, default=5.0, help="timed seconds per batch size")
    ap.add_argument("--train-images", type=int, default=2)
    ap.add_argument("--train-elements", type=int, default=8)
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON report here")
    args = ap.parse_args(argv)

    import tempfile
    from contextlib import nullcontext

    import torch

    from ntire_t2iqa_baselines.lvlm_stack.model import Collator, Example, ImageEncoder, Scorer

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device visible; use --tiny --device cpu for the smoke test", file=sys.stderr)
        return 1
    args.dtype = args.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    if args.tiny:
        args.image_size = min(args.image_size, 128)
    amp = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else nullcontext
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                              "model": "tiny" if args.tiny else (args.weights or "Qwen2.5-VL-7B (random init)"),
                              "dtype": args.dtype, "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        items = _items(max(sizes) * 2, args.image_size, Path(tmp))
        tok = _tokenizer(args, items)
        t0 = time.perf_counter()
        model, image = _model(args, tok, device)
        report["build_seconds"] = round(time.perf_counter() - t0, 1)
        report["params_b"] = round(sum(p.numel() for p in model.parameters()) / 1e9, 3)
        encoder = ImageEncoder(image)
        t0 = time.perf_counter()
        pix = [encoder(it.image_file) for it in items]
        report["cpu_preprocess_images_per_s"] = round(len(items) / (time.perf_counter() - t0), 1)
        report["visual_tokens_per_image"] = int(pix[0][1].prod()) // image["merge_size"] ** 2
        collator = Collator(tok, image["merge_size"])
        overall = [Example(it, p, g, []) for it, (p, g) in zip(items, pix)]
        scorer = Scorer(model, tok).to(device).eval()
        runs = []
        for b in sizes:
            try:
                runs.append(throughput(scorer, overall, collator, b, device, args.min_seconds, amp))
            except torch.OutOfMemoryError:
                runs.append({"batch": b, "oom": True})
                break
            print(json.dumps(runs[-1]), file=sys.stderr)
        ok = [r for r in runs if not r.get("oom")]
        best = max(ok, key=lambda r: r["images_per_s"])
        report.update(scoring=runs, best=best, anchor_images_per_s=ANCHOR_IMAGES_PER_S,
                      ratio_vs_anchor=round(best["images_per_s"] / ANCHOR_IMAGES_PER_S, 2),
                      target_images_per_s=TARGET_IMAGES_PER_S)
        del scorer
        if not args.skip_train:
            n = args.train_images
            train = [Example(it, p, g, it.elements[:args.train_elements]) for it, (p, g) in zip(items[:n], pix[:n])]
            model.train()
            report["train_step"] = train_step(model, tok, train, collator, device, amp, args.tiny)
    print(json.dumps(report, indent=1))
    met = best["images_per_s"] >= TARGET_IMAGES_PER_S
    print(f"best {best['images_per_s']:.2f} images/s at batch {best['batch']} on {report['device']} "
          f"({report['ratio_vs_anchor']:.2f}x the 4.03 images/s RTX 4090D anchor; target >= {TARGET_IMAGES_PER_S:g} "
          f"on an H100: {'met' if met else 'missed'})", file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 2 if device.type == "cuda" and not args.tiny and not met else 0


if __name__ == "__main__":
    sys.exit(main())
