"""Train FGA-BLIP2 on a challenge's Track 1 training split: resumable (a checkpoint every epoch), AMP on GPU.

Loss (EvalMuse-40K): ``|overall - mean rating| + token_loss_weight * |token P(match) - element score|``
(on element tokens) ``+ mask_loss_weight * |mask - element mask|``; AdamW (no decay on biases and
norms, as LAVIS), linear warm-up then cosine decay, vision encoder frozen unless the config says not.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch.utils.data import DataLoader

from baselines.common.data import align_items
from baselines.common.runtime import (
    CONFIG,
    WEIGHTS,
    autocast,
    cosine_with_warmup,
    load_state,
    resolve_device,
    save_checkpoint,
    seed_everything,
)

from .dataset import AlignDataset, normalise
from .model import FGABlip2, build_model, fga_loss
from .tokenizer import tokenizer_for_run

HISTORY = "history.json"
#: Keys that may differ between the run folder's config and a resumed call (everything else must match).
_RESUMABLE = {"epochs", "num_workers", "progress", "eval_batch_size", "_comment"}


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters; biases, norms, embeddings' 1-D params and query tokens get no weight decay."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() or name == "query_tokens" else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


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
    from .convert import load_weights  # imported here: `python -m baselines.fga_blip2.convert` stays clean

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
    model = _init_model(config, out, state is not None).to(dev)
    show = bool(config.get("progress", True))
    dataset = AlignDataset(items, tokenizer, config["image_size"], config["max_txt_len"],
                           cache=bool(config.get("cache_images", False)), show=show)
    batch_size = int(config["batch_size"])
    steps_per_epoch = -(-len(dataset) // batch_size)
    optimizer = torch.optim.AdamW(_param_groups(model, float(config["weight_decay"])), lr=float(config["lr"]),
                                  betas=tuple(config.get("betas", (0.9, 0.999))))
    scheduler = cosine_with_warmup(optimizer, int(config["warmup_steps"]), epochs * steps_per_epoch)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
    weights = (float(config.get("token_loss_weight", 0.1)), float(config.get("mask_loss_weight", 0.1)))
    clip = config.get("grad_clip")
    token_loss = str(config.get("token_loss", "l1"))
    workers = int(config.get("num_workers", 0))
    model.train()
    with _progress(show) as bar:
        for epoch in range(start_epoch, epochs + 1):
            loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                generator=torch.Generator().manual_seed(seed * 1000 + epoch),
                                pin_memory=dev.type == "cuda", persistent_workers=False)
            task = bar.add_task(f"epoch {epoch}/{epochs}", total=len(loader), loss="")
            t0, losses = time.perf_counter(), []
            for batch in loader:
                pixels = normalise(batch["image"].to(dev, non_blocking=True))
                ids, att = batch["input_ids"].to(dev), batch["attention_mask"].to(dev)
                with autocast(dev):
                    output = model(pixels, ids, att, with_mask=weights[1] > 0)
                loss, parts = fga_loss(output, batch["total"].to(dev), batch["token_target"].to(dev),
                                       batch["element_mask"].to(dev), att, *weights, token_loss)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), float(clip))
                optimizer.step()
                scheduler.step()
                losses.append(float(loss.detach()))
                bar.update(task, advance=1, loss=f"loss {losses[-1]:.4f} (L1 total {parts['total']:.3f})")
            history.append({"epoch": epoch, "loss": sum(losses) / max(1, len(losses)), "step_losses": losses,
                            "seconds": round(time.perf_counter() - t0, 2), "lr": scheduler.get_last_lr()[0]})
            save_checkpoint(out, model, config, epoch, optimizer, scheduler,
                            extra={"seed": seed, "finished": epoch == epochs, "history": history})
            (out / HISTORY).write_text(json.dumps(history))
    return out


def is_finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run trained to its last epoch."""
    state = load_state(Path(run_dir))
    return bool(state and state.get("extra", {}).get("finished"))
