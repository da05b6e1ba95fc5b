"""Stage 2 (quality-aware instruction tuning with LoRA) and stage 3's embeddings, on lvlm-stack's model.

The model, the offline tiny tokenizer, LoRA, batching and first-token scoring are lvlm-stack's
(:mod:`ntire_t2iqa_baselines.lvlm_stack`): :class:`~..lvlm_stack.model.Scorer` with the answer set
``high``/``low`` gives P(high) of each sequence and, with ``return_hidden``, the last layer's hidden
state of its final input token.

Per training record and epoch the negatives are drawn afresh (a function of seed, epoch and record):
I+ is asked all three instructions with target ``high`` and the alignment instruction with a
mismatched prompt (``low``); the technical negative only the technical one (``low``), the aesthetic
negative only the aesthetic one (``low``). The loss is the binary cross-entropy of P(high).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from torch.utils.data import DataLoader, Dataset

from ..common.data import split_element
from ..common.runtime import autocast, cosine_with_warmup, seed_everything
from ..lvlm_stack.folds import load_base
from ..lvlm_stack.model import (
    Collator,
    ImageEncoder,
    Scorer,
    add_lora,
    enable_checkpointing,
    model_inputs,
    param_groups,
)
from ..lvlm_stack.scoring import epoch_batches
from . import negatives as neg
from .instructions import AES, ALI, QUALITY, TEC, ImageQueries, Query, sequence_builder
from .qqt import SLOT

console = Console(stderr=True)


@dataclass(frozen=True)
class Record:
    """A label-free training or inference record: a key, the image file, its prompt and element keys."""

    key: str
    image_file: Path
    prompt: str
    elements: tuple[str, ...] = ()


class Pictures:
    """Images decoded and resized to the model's input size once (kept in memory when ``cache``)."""

    def __init__(self, encoder: ImageEncoder, cache: bool):
        self.encoder = encoder
        self.cache: dict[Path, Image.Image] | None = {} if cache else None

    def __call__(self, path: Path) -> Image.Image:
        """The RGB picture at the size the processor would resize it to (degradations act at that scale)."""
        if self.cache is not None and path in self.cache:
            return self.cache[path]
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        pic = rgb.resize(self.encoder.size(*rgb.size), Image.BICUBIC)
        if self.cache is not None:
            self.cache[path] = pic
        return pic


def draw_negatives(picture: Image.Image, index: int, pool: neg.PromptPool, rng: np.random.Generator,
                   cfg: dict[str, Any]) -> tuple[Image.Image, Image.Image, str]:
    """(technical negative, aesthetic negative, mismatched prompt) of record ``index``."""
    n = cfg.get("negatives", {})
    tec = neg.technical(picture, rng, tuple(n.get("jpeg_quality", (5, 20))), tuple(n.get("jpeg_rounds", (2, 4))),
                        tuple(n.get("noise_sigma", (8.0, 24.0))))
    aes = neg.aesthetic(picture, rng, tuple(n.get("aesthetic_ops", neg.AESTHETIC_OPS)), n.get("aesthetic_n", 2))
    return tec, aes, pool.alignment_prompt(index, rng, n.get("swap_share", 0.5))


class TuningSet(Dataset):
    """Stage 2 examples of one epoch: record -> [I+ with 4 queries, I_tec- with 1, I_aes- with 1]."""

    def __init__(self, records: list[Record], pictures: Pictures, pool: neg.PromptPool, cfg: dict[str, Any],
                 seed: int, epoch: int):
        self.records, self.pictures, self.pool, self.cfg = records, pictures, pool, cfg
        self.seed, self.epoch = seed, epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> list[ImageQueries]:
        r = self.records[i]
        pic = self.pictures(r.image_file)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        tec, aes, wrong = draw_negatives(pic, i, self.pool, rng, self.cfg)
        enc = self.pictures.encoder.encode
        queries = [Query(TEC, None, 1.0), Query(AES, None, 1.0), Query(ALI, r.prompt, 1.0), Query(ALI, wrong, 0.0)]
        queries += element_pairs(i, r, self.pool, rng, self.cfg["tune"].get("element_pairs", 0))
        return [ImageQueries(*enc(pic), queries), ImageQueries(*enc(tec), [Query(TEC, None, 0.0)]),
                ImageQueries(*enc(aes), [Query(AES, None, 0.0)])]


def element_pairs(index: int, record: Record, pool: neg.PromptPool, rng: np.random.Generator, n: int) -> list[Query]:
    """Up to ``n`` alignment pairs on element texts: one of the record's own (``high``) and one borrowed
    from other prompts that the prompt neither lists nor names (``low``); none when ``n`` is 0."""
    own = sorted({split_element(e)[0] for e in record.elements if split_element(e)[0]})
    if not n or not own:
        return []
    picked = [own[j] for j in rng.choice(len(own), min(n, len(own)), replace=False)]
    borrowed = pool.borrowed_elements(index, rng, len(picked))
    return [Query(ALI, t, 1.0) for t in picked[:len(borrowed)]] + [Query(ALI, t, 0.0) for t in borrowed]


class FlatCollator:
    """Lists of :class:`ImageQueries` per dataset item -> one lvlm-stack batch."""

    def __init__(self, collator: Collator):
        self.collator = collator

    def __call__(self, items: list[list[ImageQueries]] | list[ImageQueries]) -> dict[str, Any]:
        """Flatten and collate."""
        flat = [x for it in items for x in (it if isinstance(it, list) else [it])]
        return self.collator(flat)


def build_scorer(run: Path, cfg: dict[str, Any], device: torch.device) -> tuple[Scorer, Any]:
    """(scorer with a fresh LoRA on the base, tokenizer): lvlm-stack's loader, the high/low answer set."""
    tokenizer, base = load_base(run, cfg, device)
    model = add_lora(base, cfg["lora"])
    if cfg["tune"].get("gradient_checkpointing"):
        enable_checkpointing(base)
    return Scorer(model, tokenizer, tasks=(QUALITY,)).to(device), tokenizer


def bce(p_high: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of P(high) against 1/0 targets; NaN targets (no target) are left out."""
    keep = ~torch.isnan(target)
    if not bool(keep.any()):
        return p_high.sum() * 0.0
    p = p_high[keep].clamp(1e-6, 1 - 1e-6)
    return torch.nn.functional.binary_cross_entropy(p, target[keep])


def tune(scorer: Scorer, tokenizer: Any, records: list[Record], pictures: Pictures, pool: neg.PromptPool,
         cfg: dict[str, Any], device: torch.device, seed: int) -> list[float]:
    """Stage 2: LoRA instruction tuning for ``tune.epochs`` epochs; returns the mean loss per epoch."""
    tc = cfg["tune"]
    seed_everything(seed)
    collate = FlatCollator(Collator(tokenizer, cfg["model"]["merge_size"], sequences=sequence_builder(cfg)))
    per_epoch = len(epoch_batches(len(records), tc["batch_images"], seed, 0, 0, 0, 1))
    optimizer = torch.optim.AdamW(param_groups(scorer, tc["lr_lm"], tc["lr_vision"], tc["weight_decay"]),
                                  betas=tuple(tc.get("betas", (0.9, 0.95))), eps=1e-8)
    scheduler = cosine_with_warmup(optimizer, tc["warmup_steps"], per_epoch * tc["epochs"])
    t0, history = time.perf_counter(), []
    scorer.train()
    for epoch in range(tc["epochs"]):
        batches = epoch_batches(len(records), tc["batch_images"], seed, 0, epoch, 0, 1)
        data = TuningSet(records, pictures, pool, cfg, seed, epoch)
        losses = []
        for batch in DataLoader(data, batch_sampler=batches, collate_fn=collate, num_workers=tc.get("workers", 0)):
            with autocast(device):
                p = scorer(**model_inputs(batch, device))
            loss = bce(p.float(), batch["target"].to(device))
            optimizer.zero_grad()
            loss.backward()
            if tc.get("max_grad_norm"):
                torch.nn.utils.clip_grad_norm_(scorer.parameters(), tc["max_grad_norm"])
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
        history.append(float(np.mean(losses)) if losses else float("nan"))
        console.print(f"eliq stage 2 epoch {epoch + 1}/{tc['epochs']}: loss {history[-1]:.4f} "
                      f"({time.perf_counter() - t0:.0f} s)", highlight=False)
    scorer.eval()
    return history


# ---------------------------------------------------------------------------------------------- embeddings
def hidden_states(scorer: Scorer, examples: Iterable[ImageQueries], collator: Collator, batch_images: int,
                  device: torch.device) -> Iterator[tuple[Any, torch.Tensor, float]]:
    """(key, last-layer hidden state of the final input token (float32, CPU), P(high)) for every query."""
    flat = FlatCollator(collator)
    batch: list[ImageQueries] = []

    def run(chunk: list[ImageQueries]) -> Iterator[tuple[Any, torch.Tensor, float]]:
        b = flat(chunk)
        with torch.inference_mode(), autocast(device):
            p, h = scorer(**model_inputs(b, device), return_hidden=True)
        yield from zip(b["keys"], h.float().cpu(), p.float().cpu().tolist())

    for ex in examples:
        batch.append(ex)
        if len(batch) >= batch_images:
            yield from run(batch)
            batch = []
    if batch:
        yield from run(batch)


def training_embeddings(scorer: Scorer, collator: Collator, records: list[Record], pictures: Pictures,
                        pool: neg.PromptPool, cfg: dict[str, Any], seed: int, device: torch.device
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage 3's cache: ``(draws x records, 12, h)`` hidden states in the order of :data:`.qqt.SLOTS`, and per
    row whether its element slots are filled (one own and one borrowed element text; records with elements)."""
    draws = cfg["embed"].get("draws", 1)
    has_elements = torch.zeros(draws * len(records), dtype=torch.bool)

    def examples() -> Iterator[ImageQueries]:
        enc = pictures.encoder.encode
        for d in range(draws):
            for i, r in enumerate(records):
                pic = pictures(r.image_file)
                tec, aes, wrong = draw_negatives(pic, i, pool, np.random.default_rng([seed, 10_000 + d, i]), cfg)
                row = d * len(records) + i
                for name, image in (("pos", pic), ("tec", tec), ("aes", aes)):
                    qs = [Query(TEC, key=(row, f"{name}_tec")), Query(AES, key=(row, f"{name}_aes")),
                          Query(ALI, r.prompt, key=(row, f"{name}_ali"))]
                    if name == "pos":
                        qs.append(Query(ALI, wrong, key=(row, "pos_ali_neg")))
                        pair = element_pairs(i, r, pool, np.random.default_rng([seed, 20_000 + d, i]), 1)
                        if len(pair) == 2:
                            has_elements[row] = True
                            qs += [Query(ALI, pair[0].prompt, key=(row, "pos_el_own")),
                                   Query(ALI, pair[1].prompt, key=(row, "pos_el_other"))]
                    yield ImageQueries(*enc(image), qs)

    out: torch.Tensor | None = None
    for (row, slot), h, _ in hidden_states(scorer, examples(), collator, cfg["embed"]["batch_images"], device):
        if out is None:
            out = torch.zeros(draws * len(records), len(SLOT), h.shape[-1])
        out[row, SLOT[slot]] = h
    if out is None:
        raise ValueError("no training records to embed")
    return out, has_elements
