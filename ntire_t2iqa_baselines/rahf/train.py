"""Train RAHF: MSE on the heatmap plus MSE on the normalised score, AdamW, cosine schedule.

As the official EM-RAHF recipe (``train.py`` + ``run_train.sh``: lr 2e-5, 2000 steps, cosine to 0,
encoders frozen for the first half): the loss is ``MSE(heatmap, target) + w * MSE(score, (mos - 1) / 4)``
where the heatmap target is ``train.heatmap_target``: ``graded`` (upstream's, the full config:
levels 64/127/180/255 by how many annotators marked a pixel, / 255) or ``binary`` (the
reference's at-least-two-annotators 0/1 mask; the tiny config and the default)
(``score_loss_weight`` w: 1 as the official; the tiny config raises it);
AdamW over all parameters; the vision tower and text embeddings are frozen until
``freeze_fraction`` of the optimiser steps are done. Gradients are accumulated over
``accumulate`` batches of ``batch_size``; once the encoders are unfrozen, over
``unfrozen_accumulate`` batches of ``unfrozen_batch_size`` (upstream: batch 1, as its full backward
pass through ViT-L needs the memory). The pass in which the encoders unfreeze ends there, and the
next pass starts with the new batch size (upstream starts a new data loader too). ``precision``:
``fp32`` (upstream) or ``bf16`` autocast on a GPU. Pictures are augmented per image (:mod:`.augment`).

A run folder is checkpointed after every pass (weights, config, optimiser and schedule) and
resumed from there at the next one. Every pass's shuffling, augmentation and dropout draw
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
    cosine_with_warmup,
    load_state_dict,
    read_config,
    resolve_device,
    save_checkpoint,
    seed_everything,
)
from .inputs import (
    TARGET_FIELDS,
    StructureSet,
    cpu_threads,
    heatmap_target,
    normalise,
    precision_context,
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
    c.pop("infer", None)  # inference settings do not change training
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


def _steps_per_pass(n_items: int, batch_size: int, accumulate: int) -> int:
    return math.ceil(math.ceil(n_items / batch_size) / accumulate)


def phases(tcfg: dict[str, Any]) -> tuple[tuple[int, int], tuple[int, int]]:
    """((batch, accumulate) while the encoders are frozen, (batch, accumulate) once they are trained)."""
    frozen = (int(tcfg["batch_size"]), int(tcfg.get("accumulate", 1)))
    return frozen, (int(tcfg.get("unfrozen_batch_size", frozen[0])), int(tcfg.get("unfrozen_accumulate", frozen[1])))


def schedule(n_items: int, tcfg: dict[str, Any]) -> tuple[int, int]:
    """(total optimiser steps, the step at which the encoders unfreeze).

    ``total_steps`` is taken as is (upstream's ``--iters``); ``epochs`` counts passes at the first
    phase's batch size. The encoders unfreeze after ``round(freeze_fraction * total)`` steps.
    """
    if tcfg.get("epochs"):
        total = _steps_per_pass(n_items, *phases(tcfg)[0]) * int(tcfg["epochs"])
    elif tcfg.get("total_steps"):
        total = int(tcfg["total_steps"])
    else:
        raise ValueError("the train config needs epochs or total_steps")
    return total, round(float(tcfg.get("freeze_fraction", 0.5)) * total)


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=not enabled, transient=True)


def _init_model(config: dict[str, Any], out: Path, resumed: bool) -> RAHF:
    model = build_model(config)
    if resumed:
        from .convert import load_weights  # imported here: `python -m ntire_t2iqa_baselines.rahf.convert` stays clean

        load_weights(model, load_state_dict(out))
    elif config.get("init_from_altclip"):
        folder = altclip_folder(config)
        if folder is None:
            raise ValueError("this config starts from pretrained AltCLIP but names no local copy of BAAI/AltCLIP: "
                             "ntire-t2iqa baseline train rahf --config full --set altclip_dir=/models/AltCLIP ...")
        from .convert import load_altclip_encoders

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
    total_steps, unfreeze_step = schedule(len(items), tcfg)
    epoch = int(state["epoch"]) + 1 if state else 0
    step = int(state["extra"].get("step", 0)) if state else 0
    history: list[dict[str, float]] = list(state["extra"].get("history", [])) if state else []
    if step >= total_steps:
        console.print(f"{out}: already trained ({total_steps} steps)")
        return out
    model.set_encoders_trainable(step >= unfreeze_step)
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(tcfg["lr"]),
                                  weight_decay=float(tcfg.get("weight_decay", 0.01)))
    scheduler = cosine_with_warmup(optimizer, int(tcfg.get("warmup_steps", 0)), total_steps)
    if state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])

    t_load = time.perf_counter()
    dataset = StructureSet(items, int(config["image_size"]), native_heatmap_size(config),
                           cache=bool(tcfg.get("cache_images", False)), target=target, augment=tcfg.get("augment"),
                           seed=seed)
    ids = tokenizer([it.prompt for it in items])
    (b1, a1), (b2, a2) = phases(tcfg)
    console.print(f"rahf: {len(items)} training images ({target} heatmap targets) ready in "
                  f"{time.perf_counter() - t_load:.1f} s; {total_steps} steps, encoders frozen until step "
                  f"{unfreeze_step}; batch {b1} x {a1} accumulated, then {b2} x {a2}")
    run = _Pass(model, optimizer, scheduler, tcfg, dev, ids, progress)
    model.train()
    while step < total_steps:
        t0 = time.perf_counter()
        frozen = step < unfreeze_step
        batch, accumulate = (b1, a1) if frozen else (b2, a2)
        dataset.epoch = epoch
        torch.manual_seed(seed * 100_003 + epoch)  # dropout
        order = torch.Generator().manual_seed(seed * 100_003 + epoch)
        loader = DataLoader(dataset, batch_size=batch, shuffle=True, generator=order,
                            num_workers=int(tcfg.get("num_workers", 0)), pin_memory=dev.type == "cuda",
                            persistent_workers=False)
        # the pass in which the encoders unfreeze ends there when the batch size changes with them
        stops = {total_steps} | ({unfreeze_step} if frozen and (b1, a1) != (b2, a2) else set())
        step, sums, n_batches = run(loader, accumulate, step, stops, unfreeze_step, f"pass {epoch + 1}")
        record = {"epoch": epoch, "heatmap_loss": sums["heatmap"] / n_batches, "score_loss": sums["score"] / n_batches,
                  "seconds": round(time.perf_counter() - t0, 2), "steps": step}
        history.append(record)
        save_checkpoint(out, model, config, epoch, optimizer, scheduler,
                        extra={"step": step, "history": history, "finished": step >= total_steps, "seed": seed})
        console.print(f"rahf pass {epoch + 1} (step {step}/{total_steps}): heatmap loss "
                      f"{record['heatmap_loss']:.5f}, score loss {record['score_loss']:.5f}, {record['seconds']:.1f} s")
        epoch += 1
    return out


class _Pass:
    """One pass over the training data: forward, losses, accumulation, optimiser steps."""

    def __init__(self, model: RAHF, optimizer: torch.optim.Optimizer, scheduler: Any, tcfg: dict[str, Any],
                 dev: torch.device, ids: torch.Tensor, progress: bool):
        self.model, self.optimizer, self.scheduler, self.dev, self.ids = model, optimizer, scheduler, dev, ids
        self.weighted = bool(tcfg.get("weighted_heatmap_loss", False))
        self.score_weight = float(tcfg.get("score_loss_weight", 1.0))
        self.clip = float(tcfg.get("grad_clip", 0.0))
        self.precision = str(tcfg.get("precision", "fp32"))
        self.progress = progress

    def __call__(self, loader: DataLoader, accumulate: int, step: int, stops: set[int], unfreeze_step: int,
                 label: str) -> tuple[int, dict[str, float], int]:
        """Train until the loader is exhausted or a step in ``stops`` is reached; (step, loss sums, batches).

        The encoders are made trainable when ``unfreeze_step`` is reached.
        """
        sums = {"heatmap": 0.0, "score": 0.0}
        n_batches, done = len(loader), 0
        with _progress(self.progress) as bar:
            task = bar.add_task(label, total=n_batches)
            for b, (images, targets, scores, index) in enumerate(loader):
                images = images.to(self.dev, non_blocking=True)
                targets = targets.to(self.dev, non_blocking=True)
                with precision_context(self.dev, self.precision):
                    heat, score = self.model(normalise(images), self.ids[index].to(self.dev))
                loss_h = heatmap_loss(heat.float().squeeze(1), targets, self.weighted)
                loss_s = F.mse_loss(score.float(), scores.to(self.dev).float())
                ((loss_h + self.score_weight * loss_s) / accumulate).backward()
                sums["heatmap"] += loss_h.item()
                sums["score"] += loss_s.item()
                done = b + 1
                bar.update(task, advance=1, description=f"{label} loss {(sums['heatmap'] + sums['score']) / done:.4f}")
                if done % accumulate == 0 or done == n_batches:
                    if self.clip > 0:
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
                    self.optimizer.step()
                    self.optimizer.zero_grad(set_to_none=True)
                    self.scheduler.step()
                    step += 1
                    if step == unfreeze_step:
                        self.model.set_encoders_trainable(True)
                    if step in stops:
                        break
        return step, sums, max(done, 1)
