"""Score a split with a trained (or converted official) FGA-BLIP2: batched DataLoader inference, bf16 on GPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from baselines.common.data import align_items
from baselines.common.runtime import autocast, evaluation, read_config, resolve_device
from ntire_t2iqa.data.progress import progress_iter

from .dataset import AlignDataset, normalise
from .model import FGABlip2, build_model
from .tokenizer import element_scores, tokenizer_for_run


def load_run(weights: Path, device: torch.device) -> tuple[FGABlip2, Any, dict[str, Any]]:
    """(model in eval mode on ``device``, tokenizer, config) of a run folder or a weights file beside its config."""
    from .convert import load_weights  # imported here: `python -m baselines.fga_blip2.convert` stays clean

    weights = Path(weights)
    run_dir = weights if weights.is_dir() else weights.parent
    if not (run_dir / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir} holds no config.json; pass a run folder written by `baseline train` "
                                "or by baselines.fga_blip2.convert")
    config = read_config(run_dir)
    tokenizer = tokenizer_for_run(config, run_dir)
    model = build_model(config)
    load_weights(model, weights, strict=True)
    return model.to(device).eval(), tokenizer, config


def predict(data: Path, split: str, weights: Path, device: str = "cpu", batch_size: int | None = None,
            progress: bool = True) -> list[dict[str, Any]]:
    """Track 1 ``output.json`` records for every image of ``split``: overall 1-5 and element scores 0..1."""
    dev = resolve_device(device)
    model, tokenizer, config = load_run(weights, dev)
    items = align_items(data, split)
    dataset = AlignDataset(items, tokenizer, config["image_size"], config["max_txt_len"], cache=False)
    loader = DataLoader(dataset, batch_size=batch_size or int(config.get("eval_batch_size", 64)), shuffle=False,
                        num_workers=int(config.get("num_workers", 0)), pin_memory=dev.type == "cuda")
    records: list[dict[str, Any]] = []
    with evaluation(model):
        for batch in progress_iter(loader, len(loader), f"FGA-BLIP2 {split} ({len(items)} images)", progress):
            pixels = normalise(batch["image"].to(dev, non_blocking=True))
            with autocast(dev):
                out = model(pixels, batch["input_ids"].to(dev), batch["attention_mask"].to(dev), with_mask=False)
            overall = out.overall.float().cpu().numpy()
            tokens = out.token_scores.float().cpu().numpy()
            for row, index in enumerate(batch["index"].tolist()):
                item = items[index]
                spans = dataset.encoded[index]["spans"]
                records.append({"img_path": item.img_path, "prompt": item.prompt,
                                "total_score": float(np.float64(overall[row])),
                                "element_score": element_scores(tokens[row], item.elements, spans)})
    return records
