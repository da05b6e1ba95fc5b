"""Train FGA-BLIP2 on a challenge's Track 1 training split: resumable (a checkpoint every epoch), AMP on GPU.

The recipe of EvalMuse's LAVIS runner (``lavis/projects/blip2/train/fga_blip2.yaml``, the ``full`` config):

- loss: :func:`.model.fga_loss` (upstream's ``FGA_Blip2.forward``: overall L1, token term with weight 0.1
  over all 32 text positions, mask term with weight 0.1 over all positions);
- data: cleaned prompts cut or padded to 32 tokens; records whose elements are not all located in the prompt
  are left out (:class:`.dataset.TrainingSet`); ``augment``: random resized crops (scale 0.5-1) and mirrors;
  shuffled every epoch, the last incomplete batch dropped (LAVIS' training loader);
- AdamW (betas 0.9/0.999), weight decay on every parameter of two or more dimensions except biases (LAVIS'
  ``get_optimizer_params``: query tokens and embeddings included);
- ``lr_schedule``: ``epoch_cosine`` (LAVIS' ``linear_warmup_cosine_lr``: in the first epoch the rate rises
  from ``warmup_lr`` to ``lr`` over ``warmup_steps`` steps and stays there; epoch ``e`` (from 0) then runs at
  ``min_lr + (lr - min_lr) (1 + cos(pi e / epochs)) / 2``) or ``step_cosine`` (linear warm-up, then a cosine
  over all steps to 0);
- ``train_precision`` on a GPU: ``fp16`` (autocast with loss scaling, LAVIS' ``amp: True``), ``bf16`` or
  ``fp32``; float32 on CPU. The ViT is frozen when ``freeze_vision`` (its final LayerNorm still trains).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch.utils.data import DataLoader

from ntire_t2iqa_baselines.common.data import align_items
from ntire_t2iqa_baselines.common.data.items import warn
from ntire_t2iqa_baselines.common.runtime import (
    CONFIG,
    WEIGHTS,
    cpu_threads,
    load_state,
    resolve_device,
    save_checkpoint,
    seed_everything,
)

from .dataset import TrainingSet, collate, normalise
from .model import FGABlip2, build_model, fga_loss
from .tokenizer import tokenizer_for_run

HISTORY = "history.json"
#: Keys that may differ between the run folder's config and a resumed call (everything else must match).
_RESUMABLE = {"epochs", "num_workers", "progress", "eval_batch_size", "_comment", "cpu_threads",
              "inference_precision"}
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters as LAVIS groups them: no decay on 1-D tensors and biases, decay on the rest."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def learning_rate(config: dict[str, Any], epoch: int, step: int, steps_per_epoch: int) -> float:
    """The rate of optimiser step ``step`` (from 0) of epoch ``epoch`` (from 1) under ``config["lr_schedule"]``."""
    lr, warmup = float(config["lr"]), int(config.get("warmup_steps", 0))
    kind = config.get("lr_schedule", "epoch_cosine")
    if kind == "epoch_cosine":
        if epoch == 1:
            start = float(config.get("warmup_lr", lr))
            return min(lr, start + (lr - start) * step / max(warmup, 1))
        low = float(config.get("min_lr", 0.0))
        return low + (lr - low) * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / int(config["epochs"])))
    if kind == "step_cosine":
        done, total = (epoch - 1) * steps_per_epoch + step, int(config["epochs"]) * steps_per_epoch
        if done < warmup:
            return lr * (done + 1) / max(1, warmup)
        return lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (done - warmup) / max(1, total - warmup))))
    raise ValueError(f"lr_schedule must be 'epoch_cosine' or 'step_cosine', not {kind!r}")


def mismatch(batch: dict[str, torch.Tensor], prompt_ids: list[str], fraction: float) -> dict[str, torch.Tensor]:
    """Give the first ``fraction`` of a batch the next record's picture, as non-matching pairs (tiny config only).

    Such a record's targets become "no match": total 1, every token target 0 (the mask targets, about the text
    alone, stay). A record whose neighbour shows the same prompt keeps its own picture. BLIP-2 learns image-text
    matching from such negatives in pre-training; a randomly initialised model has no pre-training, and without
    them it scores from the prompt alone.
    """
    n = len(prompt_ids)
    count = min(n, int(round(fraction * n))) if n > 1 else 0
    if count == 0:
        return batch
    batch = dict(batch)
    images, total, token = batch["image"].clone(), batch["total"].clone(), batch["token_target"].clone()
    for i in range(count):
        j = (i + 1) % n
        if prompt_ids[i] == prompt_ids[j]:
            continue
        images[i], total[i] = batch["image"][j], 1.0
        token[i] = 0.0
    batch.update(image=images, total=total, token_target=token)
    return batch


def _check_resume(run_dir: Path, config: dict[str, Any]) -> None:
    saved_file = run_dir / CONFIG
    if not saved_file.is_file():
        return
    saved = json.loads(saved_file.read_text())
    diff = sorted(k for k in set(saved) | set(config)
                  if k not in _RESUMABLE and saved.get(k) != config.get(k))
    if diff:
        raise ValueError(f"{run_dir} holds a run with another config (differs in {', '.join(diff)}); "
                         "pass a new --out folder or the same config to resume")


def _resolved_config(config: dict[str, Any], vocab_size: int) -> dict[str, Any]:
    """The config as trained: the Q-Former's vocabulary sized to the tokenizer."""
    qformer = {**config.get("qformer", {}), "vocab_size": vocab_size}
    return {**config, "qformer": qformer}


def _init_model(config: dict[str, Any], run_dir: Path, resuming: bool) -> FGABlip2:
    """The model to train: resumed from the run folder, else from ``pretrained`` (LAVIS names welcome)."""
    from .convert import load_weights  # imported here: `python -m ntire_t2iqa_baselines.fga_blip2.convert` stays clean

    model = build_model(config)
    if resuming:
        load_weights(model, run_dir / WEIGHTS, strict=True)
    elif config.get("pretrained"):
        sources = config["pretrained"] if isinstance(config["pretrained"], list) else [config["pretrained"]]
        missing, _ = load_weights(model, sources, strict=False)
        fatal = [k for k in missing if not k.startswith("mask_proj.")]
        if fatal:
            raise ValueError(f"pretrained weights miss {len(fatal)} tensors (first: {fatal[:3]}); "
                             "add eva_vit_g.pth to 'pretrained' when the checkpoint has no visual_encoder.*")
    return model


def _progress(enabled: bool) -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[loss]}"))
    return Progress(*columns, console=Console(stderr=True), disable=not enabled)


def _precision(config: dict[str, Any], dev: torch.device) -> tuple[Any, torch.amp.GradScaler | None]:
    """The autocast context and (fp16) loss scaler of ``train_precision``; plain float32 on CPU."""
    name = str(config.get("train_precision", "fp16"))
    if name not in ("fp16", "bf16", "fp32"):
        raise ValueError(f"train_precision must be 'fp16', 'bf16' or 'fp32', not {name!r}")
    if dev.type != "cuda" or name == "fp32":
        return contextlib.nullcontext, None
    scaler = torch.amp.GradScaler("cuda") if name == "fp16" else None
    return functools.partial(torch.autocast, "cuda", dtype=_DTYPES[name]), scaler


def _dataset(items: list[Any], tokenizer: Any, config: dict[str, Any], seed: int, show: bool) -> TrainingSet:
    dataset = TrainingSet(items, tokenizer, config, cache=bool(config.get("cache_images", False)), show=show,
                          seed=seed)
    warn([f"{it.img_path}: {it.prompt!r}" for it in dataset.dropped],
         f"of {len(items)} training records left out, as upstream does: an element of each is not found in "
         "its prompt")
    if not len(dataset):
        raise ValueError("no training record is left: no record has all its elements in its prompt")
    return dataset


def train(data: Path, out: Path, config: dict[str, Any], device: str, seed: int) -> Path:
    """Train (or resume) into ``out``; returns the run folder (weights, config, state, tokenizer, history)."""
    seed_everything(seed)
    dev = resolve_device(device)
    out = Path(out)
    state = load_state(out)
    items = align_items(data, "train")
    tokenizer = tokenizer_for_run(config, out, items)
    config = _resolved_config(config, len(tokenizer))
    if state is not None:
        _check_resume(out, config)
    epochs = int(config["epochs"])
    start_epoch = state["epoch"] + 1 if state is not None else 1
    # the state file is the record (written atomically with the weights); history.json is a readable copy
    history: list[dict[str, Any]] = list(state.get("extra", {}).get("history", [])) if state is not None else []
    if start_epoch > epochs:
        return out
    with cpu_threads(config.get("cpu_threads"), dev):
        _train_epochs(out, config, dev, seed, state, items, tokenizer, start_epoch, history)
    return out


def _train_epochs(out: Path, config: dict[str, Any], dev: torch.device, seed: int,
                  state: dict[str, Any] | None, items: list[Any], tokenizer: Any, start_epoch: int,
                  history: list[dict[str, Any]]) -> None:
    model = _init_model(config, out, state is not None).to(dev)
    show = bool(config.get("progress", True))
    dataset = _dataset(items, tokenizer, config, seed, show)
    batch_size, epochs = int(config["batch_size"]), int(config["epochs"])
    drop_last = len(dataset) >= batch_size  # as LAVIS' training loader, unless that would leave no batch
    steps_per_epoch = len(dataset) // batch_size if drop_last else 1
    optimizer = torch.optim.AdamW(param_groups(model, float(config["weight_decay"])), lr=float(config["lr"]),
                                  betas=tuple(config.get("betas", (0.9, 0.999))))
    autocast, scaler = _precision(config, dev)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if scaler is not None and state.get("extra", {}).get("scaler"):
            scaler.load_state_dict(state["extra"]["scaler"])
    weights = (float(config.get("token_loss_weight", 0.1)), float(config.get("mask_loss_weight", 0.1)))
    clip = config.get("grad_clip")
    token_loss = str(config.get("token_loss", "l1"))
    workers = int(config.get("num_workers", 0))
    negatives = float(config.get("mismatched_pairs", 0.0))
    model.train()
    with _progress(show) as bar:
        for epoch in range(start_epoch, epochs + 1):
            dataset.epoch = epoch
            loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=drop_last,
                                generator=torch.Generator().manual_seed(seed * 1000 + epoch),
                                collate_fn=functools.partial(collate, pad_id=dataset.pad_id),
                                pin_memory=dev.type == "cuda", persistent_workers=False)
            task = bar.add_task(f"epoch {epoch}/{epochs}", total=len(loader), loss="")
            t0, losses = time.perf_counter(), []
            for step, batch in enumerate(loader):
                if negatives:
                    batch = mismatch(batch, [dataset.items[i].prompt_id for i in batch["index"].tolist()], negatives)
                rate = learning_rate(config, epoch, step, steps_per_epoch)
                for group in optimizer.param_groups:
                    group["lr"] = rate
                pixels = normalise(batch["image"].to(dev, non_blocking=True))
                ids, att = batch["input_ids"].to(dev), batch["attention_mask"].to(dev)
                with autocast():
                    output = model(pixels, ids, att, with_mask=weights[1] > 0)
                loss, parts = fga_loss(output, batch["total"].to(dev), batch["token_target"].to(dev),
                                       batch["element_mask"].to(dev), *weights, token_loss)
                optimizer.zero_grad(set_to_none=True)
                _step(loss, optimizer, scaler, model, clip)
                losses.append(float(loss.detach()))
                bar.update(task, advance=1, loss=f"loss {losses[-1]:.4f} (L1 total {parts['total']:.3f})")
            history.append({"epoch": epoch, "loss": sum(losses) / max(1, len(losses)), "step_losses": losses,
                            "seconds": round(time.perf_counter() - t0, 2), "lr": rate,
                            "records": len(dataset), "left_out": len(dataset.dropped)})
            extra = {"seed": seed, "finished": epoch == epochs, "history": history}
            if scaler is not None:
                extra["scaler"] = scaler.state_dict()
            save_checkpoint(out, model, config, epoch, optimizer, None, extra=extra)
            (out / HISTORY).write_text(json.dumps(history))


def _step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None,
          model: torch.nn.Module, clip: Any) -> None:
    """One optimiser step (through the loss scaler when there is one), gradients clipped at ``clip``."""
    if scaler is None:
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), float(clip))
        optimizer.step()
        return
    scaler.scale(loss).backward()
    if clip:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(clip))
    scaler.step(optimizer)
    scaler.update()


def is_finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run trained to its last epoch."""
    state = load_state(Path(run_dir))
    return bool(state and state.get("extra", {}).get("finished"))
