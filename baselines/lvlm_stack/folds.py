"""One fold: LoRA fine-tuning under accelerate (DDP, bf16, accumulation), checkpoints, resume, OOF scores.

Run-folder layout (``RUN/``)::

    config.json  folds.json  tokenizer/  base/ (tiny config only: the random-init weights)
    fold_k/checkpoint/{adapter.safetensors,state.pt}   while training (every epoch, every save_steps)
    fold_k/adapter.safetensors  fold_k/oof.json  fold_k/done.json   once the fold is finished

A fold whose ``done.json`` exists is skipped; otherwise training resumes from its checkpoint
(epoch and position inside the epoch: batch order is a function of seed, fold and epoch).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from peft import get_peft_model_state_dict, set_peft_model_state_dict
from rich.console import Console
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset

from ntire_t2iqa.data import load_folds
from ntire_t2iqa.data.folds import fold_assignment

from ..common.data import AlignItem, align_items
from ..common.runtime import cosine_with_warmup, seed_everything
from .model import (
    Collator,
    Example,
    ImageEncoder,
    Scorer,
    add_lora,
    build_tiny_model,
    enable_checkpointing,
    expectation_mse,
    load_model,
    model_inputs,
    param_groups,
)
from .tokenizer import build_tiny_tokenizer, load_tokenizer

ADAPTER = "adapter.safetensors"
DONE = "done.json"
console = Console(stderr=True)


# ---------------------------------------------------------------------------------------------- base model
@contextmanager
def quiet_hub_bars() -> Iterator[None]:
    """No transformers progress bars while (tiny) weights are read or written; restored after."""
    from transformers.utils import logging as hf_logging
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def weights_dir(cfg: dict[str, Any]) -> Path | None:
    """Local Qwen2.5-VL directory of a full config (``LVLM_STACK_WEIGHTS`` overrides ``model.path``)."""
    path = os.environ.get("LVLM_STACK_WEIGHTS") or cfg["model"].get("path")
    if not path:
        return None
    p = Path(path).expanduser()
    if not p.is_dir():
        raise FileNotFoundError(f"Qwen2.5-VL weights directory {p} does not exist; download the model once and set "
                                "model.path in the config or LVLM_STACK_WEIGHTS (no hub access at run time).")
    return p


def prepare_base(run: Path, cfg: dict[str, Any], items: list[AlignItem], seed: int) -> None:
    """Tiny config: train the offline tokenizer and save the random-init base into the run (once)."""
    if weights_dir(cfg) is not None or (run / "base" / "config.json").is_file():
        return
    from .prompts import corpus
    tok = build_tiny_tokenizer(corpus(items), cfg["model"]["tiny"].get("vocab_size", 640))
    tok.save_pretrained(str(run / "tokenizer"))
    spec = {**cfg["model"]["tiny"], "patch_size": cfg["model"]["patch_size"], "merge_size": cfg["model"]["merge_size"]}
    model = build_tiny_model(spec, tok, seed)
    with quiet_hub_bars():
        model.save_pretrained(str(run / "base"))


def load_base(run: Path, cfg: dict[str, Any], device: torch.device | None = None) -> tuple[Any, Any]:
    """(tokenizer, model): the local full-size weights, or the tiny base saved in the run."""
    src = weights_dir(cfg)
    if src is None:
        with quiet_hub_bars():
            return load_tokenizer(run / "tokenizer"), load_model(run / "base", "float32")
    model = load_model(src, cfg["model"].get("dtype", "bfloat16"), cfg["model"].get("attn"), device)
    vision = model.config.vision_config
    if (vision.patch_size, vision.spatial_merge_size) != (cfg["model"]["patch_size"], cfg["model"]["merge_size"]):
        raise ValueError(f"{src} has patch size {vision.patch_size} and merge size {vision.spatial_merge_size}; "
                         "set model.patch_size and model.merge_size in the config to match.")
    return load_tokenizer(src), model


def image_spec(cfg: dict[str, Any]) -> dict[str, Any]:
    """What the image processor needs: patch/merge size and pixel budget."""
    m = cfg["model"]
    return {k: m[k] for k in ("patch_size", "merge_size", "min_pixels", "max_pixels")}


# ---------------------------------------------------------------------------------------------- data
class ItemDataset(Dataset):
    """Items -> :class:`Example` (image patches + the elements to score; subsampled when ``max_elements``)."""

    def __init__(self, items: list[AlignItem], encoder: ImageEncoder, max_elements: int = 0, seed: int = 0):
        self.items, self.encoder, self.max_elements, self.seed = items, encoder, max_elements, seed

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Example:
        item = self.items[i]
        elements = list(item.elements)
        if self.max_elements and len(elements) > self.max_elements:
            rng = np.random.default_rng([self.seed, i])
            elements = [elements[j] for j in sorted(rng.choice(len(elements), self.max_elements, replace=False))]
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


# ---------------------------------------------------------------------------------------------- checkpoints
def _save_checkpoint(fdir: Path, scorer: Scorer, optimizer: Any, scheduler: Any, state: dict[str, Any]) -> None:
    ck = fdir / "checkpoint"
    ck.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in get_peft_model_state_dict(scorer.model).items()}
    save_file(tensors, str(ck / (ADAPTER + ".tmp")))
    os.replace(ck / (ADAPTER + ".tmp"), ck / ADAPTER)
    torch.save({**state, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, ck / "state.tmp")
    os.replace(ck / "state.tmp", ck / "state.pt")


def _load_checkpoint(fdir: Path, scorer: Scorer, optimizer: Any, scheduler: Any) -> dict[str, Any] | None:
    ck = fdir / "checkpoint"
    if not (ck / "state.pt").is_file() or not (ck / ADAPTER).is_file():
        return None
    set_peft_model_state_dict(scorer.model, load_file(str(ck / ADAPTER)))
    state = torch.load(ck / "state.pt", map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state.pop("optimizer"))
    scheduler.load_state_dict(state.pop("scheduler"))
    return state


def load_adapter(scorer: Scorer, fdir: Path) -> None:
    """Load a finished fold's LoRA weights into the (shared) peft model."""
    set_peft_model_state_dict(scorer.model, load_file(str(fdir / ADAPTER)))


# ---------------------------------------------------------------------------------------------- training
def make_accelerator(cfg: dict[str, Any], device: str) -> Accelerator:
    """Accelerator for this process: bf16 autocast on GPU when the config asks, gradient accumulation."""
    on_gpu = device.startswith("cuda")
    if on_gpu and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu.")
    if on_gpu and ":" in device and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        torch.cuda.set_device(int(device.split(":")[1]))
    if not on_gpu and cfg["train"].get("cpu_threads"):
        torch.set_num_threads(int(cfg["train"]["cpu_threads"]))
    precision = cfg["train"].get("mixed_precision", "no") if on_gpu else "no"
    return Accelerator(cpu=not on_gpu, mixed_precision=precision,
                       gradient_accumulation_steps=cfg["train"].get("grad_accum", 1))


def fold_items(run: Path, data: Path, fold: int) -> tuple[list[AlignItem], list[AlignItem]]:
    """(training items, held-out items) of a fold, from ``RUN/folds.json``."""
    assign = fold_assignment(load_folds(run / "folds.json"))
    items = align_items(data, "train")
    missing = [it.img_path for it in items if it.img_path not in assign]
    if missing:
        raise ValueError(f"{run / 'folds.json'} does not assign {missing[0]!r} (and {len(missing) - 1} more); "
                         "it was made for other training data: use a new run folder.")
    return [it for it in items if assign[it.img_path] != fold], [it for it in items if assign[it.img_path] == fold]


def train_fold(run: Path, data: Path, cfg: dict[str, Any], fold: int, accelerator: Accelerator, seed: int,
               encoder: ImageEncoder | None = None) -> Path:
    """Train fold ``fold`` (resuming), then score its held-out images; returns ``RUN/fold_k``."""
    fdir = run / f"fold_{fold}"
    if (fdir / DONE).is_file():
        return fdir
    t0 = time.perf_counter()
    tc = cfg["train"]
    main = accelerator.is_main_process
    train_items, held = fold_items(run, data, fold)
    tokenizer, base = load_base(run, cfg, accelerator.device)
    seed_everything(seed * 1000 + fold)
    peft_model = add_lora(base, cfg["lora"])
    if tc.get("gradient_checkpointing"):
        enable_checkpointing(base)
    scorer = Scorer(peft_model, tokenizer)
    encoder = encoder or ImageEncoder(image_spec(cfg), cache=tc.get("cache_images", False))
    collator = Collator(tokenizer, cfg["model"]["merge_size"])
    world, rank = accelerator.num_processes, accelerator.process_index
    micro = len(epoch_batches(len(train_items), tc["batch_images"], seed, fold, 0, rank, world))
    per_epoch = max(1, math.ceil(micro / tc.get("grad_accum", 1)))
    total = per_epoch * tc["epochs"]
    optimizer = torch.optim.AdamW(param_groups(scorer, tc["lr_lm"], tc["lr_vision"], tc["weight_decay"]),
                                  betas=(0.9, 0.999), eps=1e-8)
    scheduler = cosine_with_warmup(optimizer, tc["warmup_steps"], total)
    state = _load_checkpoint(fdir, scorer, optimizer, scheduler) or {"epoch": 0, "batch": 0, "step": 0, "loss": []}
    scorer, optimizer = accelerator.prepare(scorer, optimizer)
    weights = (tc.get("overall_weight", 1.0), tc.get("element_weight", 1.0))
    save_steps = tc.get("save_steps", 0)
    raw = accelerator.unwrap_model(scorer)
    scorer.train()
    for epoch in range(state["epoch"], tc["epochs"]):
        batches = epoch_batches(len(train_items), tc["batch_images"], seed, fold, epoch, rank, world)
        skip = state["batch"] if epoch == state["epoch"] else 0
        data_set = ItemDataset(train_items, encoder, tc.get("max_elements", 0), seed * 7919 + fold * 131 + epoch)
        losses = []
        for b, batch in enumerate(loader(data_set, batches[skip:], collator, tc.get("workers", 0)), start=skip):
            with accelerator.accumulate(scorer):
                with accelerator.autocast():
                    pred = scorer(**model_inputs(batch, accelerator.device))
                loss = expectation_mse(pred.float(), batch["target"].to(pred.device), batch["task"].to(pred.device),
                                       weights)
                accelerator.backward(loss)
                if accelerator.sync_gradients and tc.get("max_grad_norm"):
                    accelerator.clip_grad_norm_(scorer.parameters(), tc["max_grad_norm"])
                optimizer.step()
                optimizer.zero_grad()
            losses.append(float(loss.detach()))
            if accelerator.sync_gradients:
                scheduler.step()
                state["step"] += 1
                if save_steps and state["step"] % save_steps == 0 and b + 1 < len(batches):
                    state.update(epoch=epoch, batch=b + 1)
                    if main:
                        _save_checkpoint(fdir, raw, optimizer, scheduler, state)
                    accelerator.wait_for_everyone()
        state["loss"].append(float(np.mean(losses)) if losses else float("nan"))
        state.update(epoch=epoch + 1, batch=0)
        if main:
            _save_checkpoint(fdir, raw, optimizer, scheduler, state)
            console.print(f"fold {fold} epoch {epoch + 1}/{tc['epochs']}: loss {state['loss'][-1]:.4f} "
                          f"({time.perf_counter() - t0:.0f} s)", highlight=False)
        accelerator.wait_for_everyone()
    oof = predict_items(raw, held, encoder, collator, cfg["infer"]["batch_images"], accelerator,
                        tc.get("workers", 0))
    if main:
        tensors = {k: v.detach().contiguous().cpu() for k, v in get_peft_model_state_dict(raw.model).items()}
        save_file(tensors, str(fdir / ADAPTER))
        (fdir / "oof.json").write_text(json.dumps(oof))
        done = {"fold": fold, "n_train": len(train_items), "n_heldout": len(held), "steps": state["step"],
                "epoch_loss": state["loss"], "seconds": round(time.perf_counter() - t0, 2), "processes": world}
        (fdir / DONE).write_text(json.dumps(done, indent=1))
        shutil.rmtree(fdir / "checkpoint", ignore_errors=True)
    accelerator.wait_for_everyone()
    return fdir

