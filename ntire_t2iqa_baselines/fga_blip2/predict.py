"""Score a split with a trained (or converted official) FGA-BLIP2, as EvalMuse's ``eval.py`` scores.

Prompts are cleaned and tokenized whole (:mod:`.text`), elements located in the cleaned prompt's tokens,
an element that is not located scores 0. ``inference_precision`` (the run's config.json) on a GPU:

- ``upstream`` (default): the ViT and its final LayerNorm under fp16 autocast, the Q-Former in float32,
  as ``eval.py`` runs the official checkpoint;
- ``bf16``: the whole forward under bf16 autocast (faster, not upstream's numbers);
- ``fp32``: everything in float32.

On CPU everything runs in float32 (upstream casts the model to float32 there too), with ``cpu_threads``
torch threads (``"auto"``: the cores not already busy).
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ntire_t2iqa.data.progress import progress_iter
from ntire_t2iqa_baselines.common.data import align_items
from ntire_t2iqa_baselines.common.runtime import cpu_threads, evaluation, read_config, resolve_device

from .dataset import ScoringSet, collate, normalise
from .model import FGABlip2, build_model
from .text import MAX_WORDS, element_scores
from .tokenizer import tokenizer_for_run

PRECISIONS = ("upstream", "bf16", "fp32")


def load_run(weights: Path, device: torch.device) -> tuple[FGABlip2, Any, dict[str, Any]]:
    """(model in eval mode on ``device``, tokenizer, config) of a run folder or a weights file beside its config."""
    from .convert import load_weights  # imported here: `python -m ntire_t2iqa_baselines.fga_blip2.convert` stays clean

    weights = Path(weights)
    run_dir = weights if weights.is_dir() else weights.parent
    if not (run_dir / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir} holds no config.json; pass a run folder written by `baseline train` "
                                "or by ntire_t2iqa_baselines.fga_blip2.convert")
    config = read_config(run_dir)
    tokenizer = tokenizer_for_run(config, run_dir)
    model = build_model(config)
    load_weights(model, weights, strict=True)
    return model.to(device).eval(), tokenizer, config


def precision_context(model: FGABlip2, name: str, device: torch.device) -> Any:
    """Set ``model.vision_autocast`` for ``name`` and return the context the whole forward runs in."""
    if name not in PRECISIONS:
        raise ValueError(f"inference_precision must be one of {', '.join(PRECISIONS)}, not {name!r}")
    model.vision_autocast = None
    if device.type != "cuda" or name == "fp32":
        return contextlib.nullcontext()
    if name == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    model.vision_autocast = torch.float16
    return contextlib.nullcontext()


def score_items(model: FGABlip2, tokenizer: Any, config: dict[str, Any], items: list[Any], device: torch.device,
                batch_size: int | None = None, progress: bool = True, label: str = "") -> list[dict[str, Any]]:
    """Track 1 records (``img_path``, ``prompt``, ``total_score``, ``element_score``) of ``items``."""
    positions = int(config.get("qformer", {}).get("max_position_embeddings", 512))
    dataset = ScoringSet(items, tokenizer, int(config["image_size"]), int(config.get("max_words", MAX_WORDS)),
                         positions)
    loader = DataLoader(dataset, batch_size=batch_size or int(config.get("eval_batch_size", 64)), shuffle=False,
                        num_workers=int(config.get("num_workers", 0)), pin_memory=device.type == "cuda",
                        collate_fn=functools.partial(collate, pad_id=dataset.pad_id))
    records: list[dict[str, Any]] = []
    context = precision_context(model, str(config.get("inference_precision", "upstream")), device)
    with evaluation(model), cpu_threads(config.get("cpu_threads"), device):
        for batch in progress_iter(loader, len(loader), f"FGA-BLIP2 {label}({len(items)} images)", progress):
            pixels = normalise(batch["image"].to(device, non_blocking=True))
            with context:
                out = model(pixels, batch["input_ids"].to(device), batch["attention_mask"].to(device),
                            with_mask=False)
            overall = out.overall.float().cpu().numpy()
            tokens = out.token_scores.float().cpu().numpy()
            for row, index in enumerate(batch["index"].tolist()):
                item = items[index]
                spans = dataset.encoded[index]["spans"]
                records.append({"img_path": item.img_path, "prompt": item.prompt,
                                "total_score": float(np.float64(overall[row])),
                                "element_score": element_scores(tokens[row], item.elements, spans)})
    return records


def predict(data: Any, split: str, weights: Path, device: str = "cpu", batch_size: int | None = None,
            progress: bool = True) -> list[dict[str, Any]]:
    """Track 1 ``output.json`` records for every image of ``split``: overall 1-5 and element scores 0..1.

    ``data``: a data folder of any layout or a resolved :class:`~ntire_t2iqa.data.sources.TrackData`.
    """
    dev = resolve_device(device)
    model, tokenizer, config = load_run(weights, dev)
    return score_items(model, tokenizer, config, align_items(data, split), dev, batch_size, progress, f"{split} ")
