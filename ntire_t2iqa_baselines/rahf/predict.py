"""Inference: heatmap -> mask ``round(h * 255) > 40`` (2-D uint8 0/1), score as upstream submits it.

The official ``evaluate.py`` runs the model in float32, thresholds ``torch.round(heatmap * 255)``
at 40 and submits the uint8 array with the raw sigmoid score (``score.item()``, 0..1). This does
the same on the 512 x 512 heatmap (the tiny model's smaller head output is resized bilinearly to
512 first), with two settings in the config's ``infer`` section: ``precision`` (``fp32``, upstream's
default; ``bf16`` autocast on a GPU is faster, and pixels near the threshold may flip) and ``score``
(``raw``, upstream's 0..1 default; ``mos`` maps it to ``x * 4 + 1``, the 1..5 MOS scale; SRCC does not
change). The mask is ``(H, W)``; upstream's ``evaluate.py`` keeps a leading axis, ``(1, H, W)``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..common.data import structure_items
from ..common.runtime import CONFIG, WEIGHTS, evaluation, load_state_dict, resolve_device, weights_file
from .inputs import StructureSet, cpu_threads, normalise, precision_context
from .model import RAHF, build_model
from .tokenizer import PromptTokenizer, load_tokenizer

THRESHOLD = 40  # on the 0..255 scale, as the official evaluate.py
DEFAULT_BATCH = {"cpu": 16, "cuda": 32}
SCORE_SCALES = ("raw", "mos")


def submitted_score(x: float, scale: str) -> float:
    """The model's sigmoid output as submitted: ``raw`` (upstream, 0..1) or ``mos`` (``x * 4 + 1``)."""
    if scale not in SCORE_SCALES:
        raise ValueError(f"infer.score must be one of {', '.join(SCORE_SCALES)}, not {scale!r}")
    return float(x) if scale == "raw" else float(x) * 4.0 + 1.0


def heatmap_to_mask(heatmap: torch.Tensor | np.ndarray) -> np.ndarray:
    """``(H, W)`` heatmap in 0..1 -> ``(H, W)`` uint8 mask: 1 where ``round(h * 255) > 40``."""
    h = torch.as_tensor(heatmap, dtype=torch.float32)
    if h.ndim != 2:
        raise ValueError(f"a heatmap must be 2-D (H, W), not {tuple(h.shape)}")
    return (torch.round(h * 255.0) > THRESHOLD).to(torch.uint8).numpy()


def _default_config() -> dict[str, Any]:
    from ..common.config import load_baseline_config
    from . import CONFIG_SCHEMA, CONFIGS

    return load_baseline_config(CONFIGS, CONFIG_SCHEMA, "full")


def load_run(weights: str | Path, device: str = "cpu") -> tuple[RAHF, PromptTokenizer, dict[str, Any]]:
    """Model (eval mode, on ``device``), tokenizer and config from a run folder or a checkpoint file.

    A run folder holds ``model.safetensors`` + ``config.json`` (+ the tiny tokenizer). A bare
    checkpoint (e.g. an EM-RAHF ``.pth``) uses the ``config.json`` beside it, else the full config;
    its tokenizer then comes from the AltCLIP folder of that config's ``altclip_dir`` (``convert --altclip`` sets
    it in the run folder it writes).
    """
    path = Path(weights)
    file = weights_file(path)
    folder = file.parent
    config = json.loads((folder / CONFIG).read_text()) if (folder / CONFIG).is_file() else _default_config()
    model = build_model(config)
    from .convert import load_weights  # imported here: `python -m ntire_t2iqa_baselines.rahf.convert` stays clean

    load_weights(model, load_state_dict(file))
    tokenizer = load_tokenizer(config, folder)
    model.to(resolve_device(device)).eval()
    return model, tokenizer, config


def predict_items(model: RAHF, tokenizer: PromptTokenizer, config: dict[str, Any], items: list[Any],
                  device: str = "cpu", batch_size: int | None = None, progress: bool = True) -> dict[str, Any]:
    """``{name: {"score": float, "pred_area": (512, 512) uint8}}`` for ``items``."""
    from ntire_t2iqa.data.progress import progress_iter

    dev = resolve_device(device)
    bs = batch_size or DEFAULT_BATCH.get(dev.type, 16)
    dataset = StructureSet(items, int(config["image_size"]), target_size=0)
    workers = min(4, int(config.get("train", {}).get("num_workers", 0))) if dev.type == "cuda" else 0
    loader = DataLoader(dataset, batch_size=bs, shuffle=False, num_workers=workers)
    infer = config.get("infer", {})
    precision, scale = str(infer.get("precision", "fp32")), str(infer.get("score", "raw"))
    submitted_score(0.5, scale)  # an unknown setting fails before the first batch
    out: dict[str, Any] = {}
    with evaluation(model), cpu_threads(config.get("train", {}).get("cpu_threads"), dev):
        for images, _, _, index in progress_iter(loader, len(loader), "rahf inference", progress):
            ids = tokenizer([items[i].prompt for i in index.tolist()]).to(dev)
            with precision_context(dev, precision):
                heat, score = model(normalise(images.to(dev)), ids)
            heat = model.full_heatmap(heat.float())[:, 0].cpu()
            for j, i in enumerate(index.tolist()):
                out[items[i].name] = {"score": submitted_score(float(score[j].float()), scale),
                                      "pred_area": heatmap_to_mask(heat[j])}
    return out


def predict(data: Path, split: str, weights: Path, device: str = "cpu", batch_size: int | None = None,
            progress: bool = True) -> dict[str, Any]:
    """The Track 2 ``output.pkl`` content for every image of ``split``."""
    model, tokenizer, config = load_run(weights, device)
    return predict_items(model, tokenizer, config, structure_items(data, split), device, batch_size, progress)


def timed_predict(data: Path, split: str, weights: Path, device: str = "cpu", batch_size: int | None = None,
                  progress: bool = True) -> tuple[dict[str, Any], float]:
    """Predictions and seconds per image (model loading included, as the CLI measures)."""
    t0 = time.perf_counter()
    preds = predict(data, split, weights, device, batch_size, progress)
    return preds, (time.perf_counter() - t0) / max(1, len(preds))


__all__ = ["THRESHOLD", "WEIGHTS", "heatmap_to_mask", "load_run", "predict", "predict_items", "submitted_score",
           "timed_predict"]
