"""The schema of an eliq config (``configs/tiny.json``, ``configs/full.json`` or your own copy).

``model`` and ``lora`` are lvlm-stack's sections (the same loader, tiny base and LoRA); the rest is
eliq's own: the negatives (stage 1), instruction tuning (stage 2), embeddings (stage 3), the Quality
Query Transformer and its ranking losses (stages 4-5) and the label-free element threshold.
"""

from __future__ import annotations

from ..common.config import Anything, Bool, Float, Int, ListOf, Optional, Section, Str
from ..lvlm_stack.schema import LORA, MODEL
from .negatives import AESTHETIC_OPS

NEGATIVES = Section({
    "jpeg_quality": ListOf(Int(min=1, max=100), length=2), "jpeg_rounds": ListOf(Int(min=1), length=2),
    "noise_sigma": ListOf(Float(min=0), length=2), "aesthetic_ops": ListOf(Str(tuple(AESTHETIC_OPS))),
    "aesthetic_n": Int(min=1), "swap_share": Float(min=0, max=1),
})

TUNE = Section({
    "epochs": Int(min=1), "batch_images": Int(min=1), "lr_lm": Float(gt=0), "lr_vision": Float(min=0),
    "weight_decay": Float(min=0), "betas": ListOf(Float(min=0, max=1), length=2), "warmup_steps": Int(min=0),
    "max_grad_norm": Optional(Float(min=0), "no clipping"), "max_images": Int(min=0), "element_pairs": Int(min=0),
    "text_first": Bool(),
    "gradient_checkpointing": Bool(), "workers": Int(min=0), "cache_images": Bool(),
    "cpu_threads": Optional(Int(min=0), "torch's default"),
}, required=("epochs", "batch_images", "lr_lm", "lr_vision", "weight_decay", "warmup_steps"))

EMBED = Section({"draws": Int(min=1), "batch_images": Int(min=1)}, required=("batch_images",))

QQT = Section({
    "width": Int(min=1), "layers": Int(min=1), "heads": Int(min=1), "dropout": Float(min=0, max=1),
    "lr": Float(gt=0), "weight_decay": Float(min=0), "epochs": Int(min=1), "batch": Int(min=1),
    "margin": Float(min=0), "element_weight": Float(min=0),
}, required=("width", "layers", "heads", "lr", "epochs", "batch", "margin"))

THRESHOLD = Section({"images": Int(min=1)})

SCHEMA = Section({
    "name": Str(), "_comment": Anything(), "description": Anything(),
    "model": MODEL, "lora": LORA, "negatives": NEGATIVES, "tune": TUNE, "embed": EMBED, "qqt": QQT,
    "threshold": THRESHOLD,
}, required=("model", "lora", "tune", "embed", "qqt"))
