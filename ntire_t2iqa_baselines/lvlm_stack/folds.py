"""One fold: LoRA fine-tuning under accelerate (DDP, bf16, accumulation), checkpoints, resume, OOF scores.

A fold trains one model for both tasks (``train.models: joint``) or, as the TokenFocus-VQA paper
does, a separate overall model and element model (``separate``: each sees only its own task's
sequences, from its own LoRA initialisation). Run-folder layout (``RUN/``)::

    config.json  folds.json  tokenizer/  base/ (tiny config only: the random-init weights)
    fold_k/PART/checkpoint/{adapter.safetensors,state.pt}    while training (every epoch, every save_steps)
    fold_k/PART/adapter.safetensors  fold_k/PART/peft/        a trained model: LoRA weights, and the same
                                                              adapter in peft's format (PeftModel.from_pretrained)
    fold_k/oof.json  fold_k/done.json                         once the fold is finished

``PART`` is empty for a joint model (``fold_k/adapter.safetensors``), else ``overall`` and ``element``.
A fold whose ``done.json`` exists is skipped, a trained part too; otherwise training resumes from the
part's checkpoint (epoch and position inside the epoch: batch order is a function of seed, fold and epoch).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from peft import get_peft_model_state_dict, set_peft_model_state_dict
from rich.console import Console
from safetensors.torch import load_file, save_file

from ntire_t2iqa.data import load_folds
from ntire_t2iqa.data.folds import fold_assignment

from ..common.data import AlignItem, align_items
from ..common.runtime import cosine_with_warmup, seed_everything
from .model import (
    Collator,
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
from .scoring import (  # noqa: F401 - ItemDataset, epoch_batches, loader, predict_items, load_adapter re-exported
    ADAPTER,
    PART_TASKS,
    PEFT_DIR,
    ItemDataset,
    epoch_batches,
    load_adapter,
    loader,
    model_parts,
    part_dir,
    part_items,
    predict_items,
    predict_parts,
    save_adapter,
)
from .tokenizer import build_tiny_tokenizer, load_tokenizer

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
    """Local Qwen2.5-VL directory of a full config: ``model.path`` (``--set model.path=DIR``; train_fold's
    ``--weights DIR``)."""
    path = cfg["model"].get("path")
    if not path:
        return None
    p = Path(path).expanduser()
    if not p.is_dir():
        raise FileNotFoundError(f"Qwen2.5-VL weights directory {p} does not exist; download the model once and set "
                                "model.path in the config (baseline train lvlm-stack --set model.path=DIR, or "
                                "train_fold --weights DIR; no hub access at run time).")
    return p


def prepare_base(run: Path, cfg: dict[str, Any], items: list[AlignItem], seed: int,
                 texts: list[str] | None = None, extra_tokens: tuple[str, ...] = ()) -> None:
    """Tiny config: train the offline tokenizer and save the random-init base into the run (once).

    ``texts``: the tokenizer's training corpus (default: lvlm-stack's prompts of ``items``);
    ``extra_tokens``: words that must be single tokens (another baseline's answers).
    """
    if weights_dir(cfg) is not None or (run / "base" / "config.json").is_file():
        return
    from .prompts import corpus
    tok = build_tiny_tokenizer(corpus(items) if texts is None else texts,
                               cfg["model"]["tiny"].get("vocab_size", 640), extra_tokens)
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
    """Train fold ``fold``'s model(s) (resuming), then score its held-out images; returns ``RUN/fold_k``."""
    fdir = run / f"fold_{fold}"
    if (fdir / DONE).is_file():
        return fdir
    t0 = time.perf_counter()
    tc = cfg["train"]
    train_items, held = fold_items(run, data, fold)
    encoder = encoder or ImageEncoder(image_spec(cfg), cache=tc.get("cache_images", False))
    parts = model_parts(cfg)
    scorer, tokenizer, steps, losses = None, None, {}, {}
    for part in parts:
        pdir = part_dir(fdir, part)
        if (pdir / ADAPTER).is_file():  # trained before an interruption
            continue
        scorer, tokenizer, state = _train_part(run, pdir, part, part_items(train_items, part), cfg, fold,
                                               accelerator, seed, encoder, t0)
        steps[part], losses[part] = state["step"], state["loss"]
    if scorer is None:
        tokenizer, base = load_base(run, cfg, accelerator.device)
        scorer = Scorer(add_lora(base, cfg["lora"]), tokenizer).to(accelerator.device)
    oof = predict_parts(scorer, held, encoder, tokenizer, cfg["model"]["merge_size"], fdir, parts,
                        cfg["infer"]["batch_images"], accelerator, tc.get("workers", 0))
    if accelerator.is_main_process:
        (fdir / "oof.json").write_text(json.dumps(oof))
        done = {"fold": fold, "models": parts, "n_train": len(train_items), "n_heldout": len(held),
                "steps": sum(steps.values()), "steps_per_model": steps, "epoch_loss": losses,
                "seconds": round(time.perf_counter() - t0, 2), "processes": accelerator.num_processes}
        (fdir / DONE).write_text(json.dumps(done, indent=1))
    accelerator.wait_for_everyone()
    return fdir


def _train_part(run: Path, pdir: Path, part: str, train_items: list[AlignItem], cfg: dict[str, Any], fold: int,
                accelerator: Accelerator, seed: int, encoder: ImageEncoder, t0: float,
                scorer_options: dict[str, Any] | None = None, make_collator: Callable[[Any], Collator] | None = None,
                loss_fn: Callable[[torch.Tensor, dict[str, Any]], torch.Tensor] | None = None
                ) -> tuple[Scorer, Any, dict]:
    """Train one model of a fold (joint, overall or element) from a fresh LoRA; save its adapter both ways.

    For another baseline on the same loop (defaults: lvlm-stack's): ``scorer_options`` are passed to
    :class:`Scorer` (``tasks``, ``output``); ``make_collator(tokenizer)`` builds the batches' collator;
    ``loss_fn(scorer output, batch)`` is the loss (default: :func:`expectation_mse` on the batch's targets).
    """
    tc = cfg["train"]
    main = accelerator.is_main_process
    tokenizer, base = load_base(run, cfg, accelerator.device)
    seed_everything(seed * 1000 + fold + (0 if part in ("joint", "overall") else 500))
    peft_model = add_lora(base, cfg["lora"])
    if tc.get("gradient_checkpointing"):
        enable_checkpointing(base)
    scorer = Scorer(peft_model, tokenizer, **(scorer_options or {}))
    collator = (make_collator(tokenizer) if make_collator is not None
                else Collator(tokenizer, cfg["model"]["merge_size"], PART_TASKS[part]))
    world, rank = accelerator.num_processes, accelerator.process_index
    micro = len(epoch_batches(len(train_items), tc["batch_images"], seed, fold, 0, rank, world))
    per_epoch = max(1, math.ceil(micro / tc.get("grad_accum", 1)))
    total = per_epoch * tc["epochs"]
    optimizer = torch.optim.AdamW(param_groups(scorer, tc["lr_lm"], tc["lr_vision"], tc["weight_decay"]),
                                  betas=tuple(tc.get("betas", (0.9, 0.95))), eps=1e-8)
    scheduler = cosine_with_warmup(optimizer, tc["warmup_steps"], total)
    state = _load_checkpoint(pdir, scorer, optimizer, scheduler) or {"epoch": 0, "batch": 0, "step": 0, "loss": []}
    scorer, optimizer = accelerator.prepare(scorer, optimizer)
    weights = (tc.get("overall_weight", 1.0), tc.get("element_weight", 1.0))
    save_steps = tc.get("save_steps", 0)
    raw = accelerator.unwrap_model(scorer)
    label = f"fold {fold}" + ("" if part == "joint" else f" {part} model")
    scorer.train()
    for epoch in range(state["epoch"], tc["epochs"]):
        batches = epoch_batches(len(train_items), tc["batch_images"], seed, fold, epoch, rank, world)
        skip = state["batch"] if epoch == state["epoch"] else 0
        data_set = ItemDataset(train_items, encoder, tc.get("max_elements", 0), seed * 7919 + fold * 131 + epoch,
                               tc.get("ratings_dropout", 0.0), tc.get("model_dropout", 0.0))
        losses = []
        for b, batch in enumerate(loader(data_set, batches[skip:], collator, tc.get("workers", 0)), start=skip):
            with accelerator.accumulate(scorer):
                with accelerator.autocast():
                    pred = scorer(**model_inputs(batch, accelerator.device))
                if loss_fn is not None:
                    loss = loss_fn(pred, batch)
                else:
                    loss = expectation_mse(pred.float(), batch["target"].to(pred.device),
                                           batch["task"].to(pred.device), weights)
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
                        _save_checkpoint(pdir, raw, optimizer, scheduler, state)
                    accelerator.wait_for_everyone()
        state["loss"].append(float(np.mean(losses)) if losses else float("nan"))
        state.update(epoch=epoch + 1, batch=0)
        if main:
            _save_checkpoint(pdir, raw, optimizer, scheduler, state)
            console.print(f"{label} epoch {epoch + 1}/{tc['epochs']}: loss {state['loss'][-1]:.4f} "
                          f"({time.perf_counter() - t0:.0f} s)", highlight=False)
        accelerator.wait_for_everyone()
    if main:
        save_adapter(raw, pdir)
        shutil.rmtree(pdir / "checkpoint", ignore_errors=True)
    accelerator.wait_for_everyone()
    return raw, tokenizer, state


#: The training loop of one model, public for other baselines built on lvlm-stack (see its keyword arguments).
train_part = _train_part
