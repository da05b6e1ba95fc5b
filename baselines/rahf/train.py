"""Train RAHF: MSE on the heatmap plus MSE on the normalised score, AdamW, cosine schedule.

As the official EM-RAHF recipe (``run_train.sh``: lr 2e-5, 2000 steps, cosine to 0, encoders
frozen for the first half): the loss is ``MSE(heatmap, target) + w * MSE(score, (mos - 1) / 4)``
where the heatmap target is ``train.heatmap_target``: ``graded`` (upstream's, the full config:
levels 64/127/180/255 by how many annotators marked a pixel, / 255) or ``binary`` (the
reference's at-least-two-annotators 0/1 mask; the tiny config and the default)
(``score_loss_weight`` w: 1 as the official; the tiny config raises it);
AdamW over all parameters; the vision tower and text embeddings are frozen until
``freeze_fraction`` of the optimiser steps are done. Gradients are accumulated over
``accumulate`` batches. The official run switches to batch 1 x 32 accumulation after
unfreezing; here the batch stays as configured.

A run folder is checkpointed after every epoch (weights, config, optimiser and schedule) and
resumed from there at the next epoch. Every epoch's shuffling, augmentation and dropout draw
from streams seeded by ``(seed, epoch)``, so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch.utils.data import DataLoader

from ntire_t2iqa.data.sources import TrackData

from ..common.data import structure_items
from ..common.runtime import (
    STATE,
    autocast,
    cosine_with_warmup,
    load_state_dict,
    read_config,
    resolve_device,
    save_checkpoint,
    seed_everything,
)
from .convert import load_altclip_encoders, load_weights
from .inputs import (
    TARGET_FIELDS,
    StructureSet,
    augment,
    cpu_threads,
    heatmap_target,
    normalise,
    reuse_freed_memory,
)
from .model import RAHF, build_model, native_heatmap_size
from .tokenizer import PromptTokenizer, WordTokenizer, altclip_folder, load_tokenizer

#: Config keys a resumed run may change (the rest must match the run folder's config.json).
RESUMABLE_CHANGES = {"epochs", "total_steps", "num_workers", "cpu_threads"}
console = Console(stderr=True)


#: What ``save_checkpoint`` pickles besides tensors: the numpy RNG key array. Allowing these
#: rebuilds plain arrays only; nothing else in ``state.pt`` can run code (``weights_only=True``).
_NUMPY_GLOBALS = [np._core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def load_run_state(run_dir: Path) -> dict[str, Any] | None:
    """A run folder's ``state.pt`` (``None`` when absent), loaded with ``weights_only=True`` plus numpy arrays."""
    path = Path(run_dir) / STATE
    if not path.is_file():
        return None
    with torch.serialization.safe_globals(_NUMPY_GLOBALS):
        return torch.load(path, map_location="cpu", weights_only=True)


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    c = json.loads(json.dumps(config))
    for key in RESUMABLE_CHANGES:
        c.get("train", {}).pop(key, None)
    c.setdefault("train", {}).setdefault("heatmap_target", "binary")  # runs from before the key was added
    for key in ("vocab_size", "max_position_embeddings"):  # filled in from the tokenizer
        c.get("text", {}).pop(key, None)
    return c


def resolve_config(out: Path, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The config to train with (a resumed run keeps its own) and the saved state, if any."""
    state = load_run_state(out)
    if state is None:
        return json.loads(json.dumps(config)), None
    saved = read_config(out)
    if _comparable(saved) != _comparable(config):
        raise ValueError(f"{out} holds a run with another config; resume it with the same config "
                         f"(only train.{'/'.join(sorted(RESUMABLE_CHANGES))} may change) or pass a new --out")
    for key in RESUMABLE_CHANGES:
        if key in config.get("train", {}):
            saved["train"][key] = config["train"][key]
        else:
            saved["train"].pop(key, None)
    return saved, state


def prepare_tokenizer(config: dict[str, Any], out: Path, prompts: list[str], resumed: bool) -> PromptTokenizer:
    """Build (tiny: word-level, saved in the run folder) or load the tokenizer; fix the config's text sizes."""
    text = config["text"]
    if text.get("tokenizer", "word") == "word" and not resumed:
        tokenizer: PromptTokenizer = WordTokenizer.build(prompts, int(text["max_length"]))
        tokenizer.save(out)  # type: ignore[attr-defined]
    else:
        tokenizer = load_tokenizer(config, out)
    if text.get("vocab_size") not in (None, tokenizer.vocab_size):
        raise ValueError(f"text.vocab_size {text['vocab_size']} does not match the tokenizer's {tokenizer.vocab_size}")
    text["vocab_size"] = tokenizer.vocab_size
    text.setdefault("max_position_embeddings", int(text["max_length"]) + 2)
    return tokenizer


def heatmap_loss(pred: torch.Tensor, target: torch.Tensor, weighted: bool) -> torch.Tensor:
    """Plain MSE, or the official ``--weighted_loss`` variant (per-pixel weight ``target + 1/255``)."""
    if not weighted:
        return F.mse_loss(pred, target)
    weight = target + 1.0 / 255.0
    per_image = ((pred - target) ** 2 * weight).sum(dim=(-2, -1)) / weight.sum(dim=(-2, -1))
    return per_image.mean()


def schedule(n_items: int, tcfg: dict[str, Any]) -> tuple[int, int, int]:
    """(optimiser steps per epoch, epochs, total steps) from ``epochs`` or ``total_steps``."""
    batches = math.ceil(n_items / int(tcfg["batch_size"]))
    per_epoch = math.ceil(batches / int(tcfg.get("accumulate", 1)))
    if tcfg.get("epochs"):
        epochs = int(tcfg["epochs"])
    elif tcfg.get("total_steps"):
        epochs = math.ceil(int(tcfg["total_steps"]) / per_epoch)
    else:
        raise ValueError("the train config needs epochs or total_steps")
    return per_epoch, epochs, per_epoch * epochs


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=not enabled, transient=True)


def _init_model(config: dict[str, Any], out: Path, resumed: bool) -> RAHF:
    model = build_model(config)
    if resumed:
        load_weights(model, load_state_dict(out))
    elif config.get("init_from_altclip"):
        folder = altclip_folder(config)
        if folder is None:
            raise ValueError("this config starts from pretrained AltCLIP but names no folder: set altclip_dir "
                             "(or $RAHF_ALTCLIP_DIR) to a local copy of BAAI/AltCLIP")
        load_altclip_encoders(model, folder)
    return model


def train(data: Path | TrackData, out: Path, config: dict[str, Any], device: str, seed: int,
          progress: bool = True) -> Path:
    """Train (or resume) a RAHF run in ``out``; return the run folder."""
    dev = resolve_device(device)
    with cpu_threads(config.get("train", {}).get("cpu_threads"), dev) as threads, \
            reuse_freed_memory(dev.type == "cpu"):
        if dev.type == "cpu":
            console.print(f"rahf: {threads} CPU thread(s)")
        return _train(data, out, config, dev, seed, progress)


def _train(data: Path | TrackData, out: Path, config: dict[str, Any], dev: torch.device, seed: int,
           progress: bool) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config, state = resolve_config(out, config)
    tcfg = config["train"]
    seed_everything(seed)
    target = heatmap_target(tcfg)
    items = structure_items(data, "train", targets=(TARGET_FIELDS[target],))
    tokenizer = prepare_tokenizer(config, out, [it.prompt for it in items], resumed=state is not None)
    model = _init_model(config, out, resumed=state is not None).to(dev)
    per_epoch, epochs, total_steps = schedule(len(items), tcfg)
    start_epoch = int(state["epoch"]) + 1 if state else 0
    step = int(state["extra"].get("step", 0)) if state else 0
    history: list[dict[str, float]] = list(state["extra"].get("history", [])) if state else []
    if start_epoch >= epochs:
        console.print(f"{out}: already trained ({epochs} epochs)")
        return out
    unfreeze_step = round(float(tcfg.get("freeze_fraction", 0.5)) * total_steps)
    model.set_encoders_trainable(step >= unfreeze_step)
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(tcfg["lr"]),
                                  weight_decay=float(tcfg.get("weight_decay", 0.01)))
    scheduler = cosine_with_warmup(optimizer, int(tcfg.get("warmup_steps", 0)), total_steps)
    if state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])

    t_load = time.perf_counter()
    dataset = StructureSet(items, int(config["image_size"]), native_heatmap_size(config),
                           cache=bool(tcfg.get("cache_images", False)), target=target)
    ids = tokenizer([it.prompt for it in items])
    console.print(f"rahf: {len(items)} training images ({target} heatmap targets) ready in "
                  f"{time.perf_counter() - t_load:.1f} s; "
                  f"{epochs} epochs x {per_epoch} steps, encoders frozen until step {unfreeze_step}")
    accumulate = int(tcfg.get("accumulate", 1))
    weighted = bool(tcfg.get("weighted_heatmap_loss", False))
    score_weight = float(tcfg.get("score_loss_weight", 1.0))
    clip = float(tcfg.get("grad_clip", 0.0))
    workers = int(tcfg.get("num_workers", 0))
    model.train()
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        torch.manual_seed(seed * 100_003 + epoch)  # dropout
        order = torch.Generator().manual_seed(seed * 100_003 + epoch)
        aug_rng = torch.Generator().manual_seed(seed * 100_003 + epoch + 50_000)
        loader = DataLoader(dataset, batch_size=int(tcfg["batch_size"]), shuffle=True, generator=order,
                            num_workers=workers, pin_memory=dev.type == "cuda", persistent_workers=False)
        sums = {"heatmap": 0.0, "score": 0.0}
        n_batches = len(loader)
        with _progress(progress) as bar:
            task = bar.add_task(f"epoch {epoch + 1}/{epochs}", total=n_batches)
            for b, (images, targets, scores, index) in enumerate(loader):
                images = images.to(dev, non_blocking=True).float()
                targets = targets.to(dev, non_blocking=True)
                images, targets = augment(images, targets, tcfg.get("augment", {}), aug_rng)
                with autocast(dev):
                    heat, score = model(normalise(images), ids[index].to(dev))
                loss_h = heatmap_loss(heat.float().squeeze(1), targets, weighted)
                loss_s = F.mse_loss(score.float(), scores.to(dev).float())
                ((loss_h + score_weight * loss_s) / accumulate).backward()
                sums["heatmap"] += loss_h.item()
                sums["score"] += loss_s.item()
                if (b + 1) % accumulate == 0 or b + 1 == n_batches:
                    if clip > 0:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    scheduler.step()
                    step += 1
                    if step == unfreeze_step:
                        model.set_encoders_trainable(True)
                bar.update(task, advance=1, description=f"epoch {epoch + 1}/{epochs} "
                           f"loss {(sums['heatmap'] + sums['score']) / (b + 1):.4f}")
        record = {"epoch": epoch, "heatmap_loss": sums["heatmap"] / n_batches, "score_loss": sums["score"] / n_batches,
                  "seconds": round(time.perf_counter() - t0, 2)}
        history.append(record)
        save_checkpoint(out, model, config, epoch, optimizer, scheduler,
                        extra={"step": step, "history": history, "finished": epoch + 1 == epochs, "seed": seed})
        console.print(f"rahf epoch {epoch + 1}/{epochs}: heatmap loss {record['heatmap_loss']:.5f}, "
                      f"score loss {record['score_loss']:.5f}, {record['seconds']:.1f} s")
    return out
