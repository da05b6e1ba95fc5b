"""Batches, fold-model inference and adapters of lvlm-stack (shared by training and prediction).

* :class:`ItemDataset`, :func:`epoch_batches`, :func:`loader`: items -> :class:`~.model.Example` batches.
* :func:`predict_items`: one model's scores for items; :func:`predict_parts`: a fold's scores when it
  has one joint model or separate overall and element models (``train.models``).
* :func:`save_adapter` / :func:`load_adapter`: LoRA weights as ``adapter.safetensors`` and, beside
  them, in peft's own format (``peft/``, loadable with ``PeftModel.from_pretrained``).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from peft import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset

from ..common.data import AlignItem
from .model import Collator, Example, ImageEncoder, Scorer, model_inputs

ADAPTER = "adapter.safetensors"
PEFT_DIR = "peft"


# ---------------------------------------------------------------------------------------------- data
class ItemDataset(Dataset):
    """Items -> :class:`Example` (image patches + the elements to score; subsampled when ``max_elements``).

    Training only: ``ratings_dropout`` is the share of images whose prompt ratings are written as
    unknown, so a model also learns to score records that lack them (the synthetic val/test inputs do);
    ``model_dropout`` the share whose T2I model is written as unknown (NTIRE's val/test records do not
    name it), so the model must judge those from the picture.
    """

    def __init__(self, items: list[AlignItem], encoder: ImageEncoder, max_elements: int = 0, seed: int = 0,
                 ratings_dropout: float = 0.0, model_dropout: float = 0.0):
        self.items, self.encoder, self.max_elements, self.seed = items, encoder, max_elements, seed
        self.ratings_dropout, self.model_dropout = float(ratings_dropout), float(model_dropout)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Example:
        item = self.items[i]
        elements = list(item.elements)
        rng = np.random.default_rng([self.seed, i])
        if self.max_elements and len(elements) > self.max_elements:
            elements = [elements[j] for j in sorted(rng.choice(len(elements), self.max_elements, replace=False))]
        if self.ratings_dropout and item.ratings and rng.random() < self.ratings_dropout:
            item = dataclasses.replace(item, ratings={})
        if self.model_dropout and item.model and rng.random() < self.model_dropout:
            item = dataclasses.replace(item, model="")
        return Example(item, *self.encoder(item.image_file), elements)


def epoch_batches(n: int, batch: int, seed: int, fold: int, epoch: int, rank: int, world: int) -> list[list[int]]:
    """This process's batches of an epoch: a permutation fixed by (seed, fold, epoch), dealt round-robin."""
    order = np.random.default_rng([seed, fold, epoch]).permutation(n).tolist()
    batches = [order[i:i + batch] for i in range(0, n, batch)]
    per = len(batches) // world if len(batches) >= world else 1
    return [batches[(rank + j * world) % len(batches)] for j in range(per)]


def loader(dataset: Dataset, batches: list[list[int]] | None, collator: Collator, workers: int,
           batch: int = 1) -> DataLoader:
    """A DataLoader over given batches (training) or in order (inference)."""
    if batches is not None:
        return DataLoader(dataset, batch_sampler=batches, collate_fn=collator, num_workers=workers)
    return DataLoader(dataset, batch_size=batch, shuffle=False, collate_fn=collator, num_workers=workers)


# ---------------------------------------------------------------------------------------------- inference
def predict_items(scorer: Scorer, items: list[AlignItem], encoder: ImageEncoder, collator: Collator,
                  batch_images: int, accelerator: Accelerator | None = None, workers: int = 0
                  ) -> dict[str, dict[str, Any]]:
    """img_path -> {"total": expected 1-5 score, "elements": {key: P(yes)}}; sharded over processes."""
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    device = accelerator.device if accelerator else next(scorer.parameters()).device
    mine = items[rank::world]
    out: dict[str, dict[str, Any]] = {it.img_path: {"total": None, "elements": {}} for it in mine}
    was = scorer.training
    scorer.eval()
    on_gpu = device.type == "cuda"
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if on_gpu else torch.autocast("cpu", enabled=False)
    with torch.inference_mode(), amp:
        for batch in loader(ItemDataset(mine, encoder), None, collator, workers, batch_images):
            pred = scorer(**model_inputs(batch, device)).float().cpu().tolist()
            for (img, element), value in zip(batch["keys"], pred):
                if element is None:
                    out[img]["total"] = value
                else:
                    out[img]["elements"][element] = value
    scorer.train(was)
    if world > 1:
        from accelerate.utils import gather_object
        merged: dict[str, dict[str, Any]] = {}
        for part in gather_object([out]):
            merged.update(part)
        out = merged
    return out


def load_adapter(scorer: Scorer, fdir: Path) -> None:
    """Load a trained model's LoRA weights (``adapter.safetensors`` in ``fdir``) into the (shared) peft model."""
    set_peft_model_state_dict(scorer.model, load_file(str(fdir / ADAPTER)))


# ---------------------------------------------------------------------------------------------- model parts
#: part -> (tasks its sequences cover: 0 overall, 1 elements).
PART_TASKS = {"joint": (0, 1), "overall": (0,), "element": (1,)}


def model_parts(cfg: dict[str, Any]) -> list[str]:
    """``["joint"]`` or ``["overall", "element"]`` from ``train.models``."""
    kind = cfg["train"].get("models", "joint")
    if kind not in ("joint", "separate"):
        raise ValueError(f"train.models must be 'joint' or 'separate', not {kind!r}")
    return ["joint"] if kind == "joint" else ["overall", "element"]


def part_dir(fdir: Path, part: str) -> Path:
    """Where a part's adapter lives: the fold folder for a joint model, else ``fold_k/<part>``."""
    return fdir if part == "joint" else fdir / part


def part_items(items: list[AlignItem], part: str) -> list[AlignItem]:
    """The items a part scores: every item, or (element model) those with at least one element."""
    return [it for it in items if it.elements] if part == "element" else list(items)


def predict_parts(scorer: Scorer, items: list[AlignItem], encoder: ImageEncoder, tokenizer: Any, merge: int,
                  fdir: Path, parts: list[str], batch_images: int, accelerator: Accelerator | None = None,
                  workers: int = 0) -> dict[str, dict[str, Any]]:
    """A fold's predictions: each part's adapter loaded in turn, scoring its own task; merged per image."""
    out: dict[str, dict[str, Any]] = {}
    for part in parts:
        load_adapter(scorer, part_dir(fdir, part))
        preds = predict_items(scorer, part_items(items, part), encoder, Collator(tokenizer, merge, PART_TASKS[part]),
                              batch_images, accelerator, workers)
        for img, pred in preds.items():
            slot = out.setdefault(img, {"total": None, "elements": {}})
            if pred["total"] is not None:
                slot["total"] = pred["total"]
            slot["elements"].update(pred["elements"])
    for it in items:  # an item without elements (element model only) still gets its record
        out.setdefault(it.img_path, {"total": None, "elements": {}})
    return out


def save_adapter(scorer: Scorer, pdir: Path) -> None:
    """A trained model's LoRA weights: ``adapter.safetensors`` and peft's own format in ``peft/``."""
    pdir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # peft asks the deprecated is_gradient_checkpointing (transformers 5)
        warnings.filterwarnings("ignore", category=FutureWarning)
        scorer.model.save_pretrained(str(pdir / PEFT_DIR))
    tensors = {k: v.detach().contiguous().cpu() for k, v in get_peft_model_state_dict(scorer.model).items()}
    save_file(tensors, str(pdir / (ADAPTER + ".tmp")))
    os.replace(pdir / (ADAPTER + ".tmp"), pdir / ADAPTER)  # last: its presence marks the model trained
