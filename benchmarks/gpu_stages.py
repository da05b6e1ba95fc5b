"""The stages of ``gpu_check.py``: each baseline's model, throughput, training and end-to-end run.

Every stage builds the baseline through its own code (model builders, ``train``, ``predict`` /
``load_run``, ``write_submission``); the throughput measurements of RAHF and Qwen2.5-VL are
``bench_rahf_gpu.py``'s and ``bench_lvlm_gpu.py``'s functions. Weights are random: ``full``
configs are used with every pretrained source switched off (no download anywhere).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ntire_t2iqa_baselines.common.submission import write_submission
from ntire_t2iqa_baselines.registry import get


def _read(configs: dict[str, Path], tiny: bool) -> dict[str, Any]:
    return json.loads(Path(configs["tiny" if tiny else "full"]).read_text())


def fga_config(tiny: bool, precision: str | None = None) -> dict[str, Any]:
    """FGA-BLIP2's config at random init: no LAVIS checkpoint, the offline WordPiece vocabulary, one epoch."""
    from ntire_t2iqa_baselines.fga_blip2 import CONFIGS

    config = _read(CONFIGS, tiny)
    config.update(pretrained=None, tokenizer="build", add_dec_token=False, epochs=1, progress=False,
                  cache_images=False)
    if tiny:
        config.update(batch_size=4, eval_batch_size=8)
    if precision:
        config["inference_precision"] = precision
    return config


def rahf_config(tiny: bool) -> dict[str, Any]:
    """RAHF's config at random init: no AltCLIP, the word-level tokenizer at the config's text length, 2 steps."""
    from ntire_t2iqa_baselines.rahf import CONFIGS

    config = _read(CONFIGS, tiny)
    config["init_from_altclip"] = False
    config["text"]["tokenizer"] = "word"
    config["text"].pop("vocab_size", None)  # sized to the tokenizer built from the training prompts
    train = config["train"]
    train.pop("epochs", None)
    train.update(total_steps=2, batch_size=2, accumulate=1, unfrozen_batch_size=2, unfrozen_accumulate=1,
                 freeze_fraction=0.5, num_workers=0 if tiny else 4)
    return config


def lvlm_config(tiny: bool, weights: Path | None) -> dict[str, Any]:
    """lvlm-stack's config with 2 folds of one epoch; ``weights``: a saved random-init Qwen2.5-VL folder."""
    from ntire_t2iqa_baselines.lvlm_stack import CONFIGS

    config = _read(CONFIGS, tiny)
    config["model"]["path"] = str(weights) if weights else None
    config["train"].update(folds=2, epochs=1, save_steps=0, warmup_steps=1)
    return config


def _timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def end_to_end(name: str, data: Path, run: Path, config: dict[str, Any], device: str, out_zip: Path,
               split: str = "test") -> dict[str, Any]:
    """``baseline train`` then ``baseline run``: the baseline's own train, predict and submission writer."""
    from ntire_t2iqa_baselines import registry

    module = registry.load(name)
    _, train_s = _timed(lambda: module.train(data, run, config, device, 0))
    records, predict_s = _timed(lambda: module.predict(data, split, run, device, None))
    n = len(records)
    report = write_submission(get(name), records, out_zip, predict_s / max(1, n), device.startswith("cuda"),
                              data, split)
    return {"train_seconds": round(train_s, 2), "predict_images": n, "predict_seconds": round(predict_s, 2),
            "predict_images_per_s": round(n / predict_s, 2), "zip": out_zip.name, "valid": bool(report.valid),
            "problems": len(report.problems)}


def fga_throughput(data: Path, run: Path, device: Any, batches: list[int], precisions: list[str],
                   repeat: int, workers: int) -> list[dict[str, Any]]:
    """Images/s of FGA-BLIP2 scoring (JPEG/PNG decoding and preprocessing in DataLoader workers included)
    for each precision and batch size, with the run's model (``predict.load_run``) and ``score_items``."""
    import torch

    from ntire_t2iqa_baselines.common.data import align_items
    from ntire_t2iqa_baselines.fga_blip2.predict import load_run, score_items

    model, tokenizer, config = load_run(run, device)
    items = align_items(data, "test") * repeat
    rows = []
    for precision in precisions:
        for batch in batches:
            cfg = {**config, "inference_precision": precision, "num_workers": workers}
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            try:
                score_items(model, tokenizer, cfg, items[:batch], device, batch, progress=False)  # warm-up
                t0 = time.perf_counter()
                records = score_items(model, tokenizer, cfg, items, device, batch, progress=False)
                seconds = time.perf_counter() - t0
            except torch.OutOfMemoryError:
                rows.append({"precision": precision, "batch": batch, "oom": True})
                break
            rows.append({"precision": precision, "batch": batch, "images": len(records),
                         "images_per_s": round(len(records) / seconds, 2), "peak_gib": _peak(device)})
    return rows


def _peak(device: Any) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated(device) / 2**30, 3) if device.type == "cuda" else None


def rahf_throughput(tiny: bool, device: Any, batch: int, train_batch: int, iters: int) -> dict[str, Any]:
    """``bench_rahf_gpu``'s inference (fp32 and bf16) and training-step measurements at random init."""
    from benchmarks.bench_rahf_gpu import _config, bench_inference, bench_train_step

    config = _config(tiny)
    out: dict[str, Any] = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        out[f"inference_{name}"] = bench_inference(config, device, batch, iters, 1, bf16, False)
    out["train_step_bf16"] = bench_train_step(config, device, train_batch, max(1, iters // 3), True)
    return out


def lvlm_throughput(tiny: bool, device: Any, batches: list[int], sides: list[int], min_seconds: float,
                    train_images: int, folder: Path, save_to: Path | None) -> dict[str, Any]:
    """``bench_lvlm_gpu``'s first-token scoring (per image side, batch sizes until memory runs out) and LoRA
    step at random init; ``save_to``: also save the random base (and tokenizer) there for the end-to-end run."""
    from contextlib import nullcontext

    import torch

    from benchmarks.bench_lvlm_gpu import _items, _model, _tokenizer, throughput, train_step
    from ntire_t2iqa_baselines.lvlm_stack.model import Collator, Example, ImageEncoder, Scorer

    dtype = "bfloat16" if device.type == "cuda" else "float32"
    amp = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else nullcontext
    out: dict[str, Any] = {"scoring": {}}
    folder.mkdir(parents=True, exist_ok=True)
    items = _items(max(batches) * 2, max(sides), folder)
    args = argparse.Namespace(tiny=tiny, weights=None, dtype=dtype, max_pixels=sides[0] ** 2)
    tok = _tokenizer(args, items)
    model, image = _model(args, tok, device)
    out["params_b"] = round(sum(p.numel() for p in model.parameters()) / 1e9, 3)
    collator = Collator(tok, image["merge_size"])
    scorer = Scorer(model, tok).to(device).eval()
    pix: list[Any] = []
    for side in sides:
        spec = image if tiny else {**image, "max_pixels": side * side}  # tiny: the tiny config's own budget
        encoder = ImageEncoder(spec)
        pix = [encoder(it.image_file) for it in items]
        examples = [Example(it, p, g, []) for it, (p, g) in zip(items, pix)]
        runs = []
        for b in batches:
            try:
                runs.append(throughput(scorer, examples, collator, b, device, min_seconds, amp))
            except torch.OutOfMemoryError:
                runs.append({"batch": b, "oom": True})
                break
            finally:
                _free(device)
        out["scoring"][f"{side}x{side}"] = {"visual_tokens": int(pix[0][1].prod()) // image["merge_size"] ** 2,
                                           "runs": runs}
    del scorer
    if save_to is not None and not tiny:
        t0 = time.perf_counter()
        model.save_pretrained(str(save_to))
        tok.save_pretrained(str(save_to))
        out["save_base_seconds"] = round(time.perf_counter() - t0, 1)
    train = [Example(it, p, g, it.elements[:8]) for it, (p, g) in zip(items[:train_images], pix[:train_images])]
    model.train()
    out["lora_step"] = train_step(model, tok, train, collator, device, amp, tiny)
    return out


def _free(device: Any) -> None:
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


__all__ = ["end_to_end", "fga_config", "fga_throughput", "lvlm_config", "lvlm_throughput", "rahf_config",
           "rahf_throughput"]
