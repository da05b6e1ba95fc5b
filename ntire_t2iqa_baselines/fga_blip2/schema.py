"""The schema of an FGA-BLIP2 config (``configs/tiny.json``, ``configs/full.json`` or your own copy).

Checked once when a config is loaded (:func:`ntire_t2iqa_baselines.common.config.load_baseline_config`);
README.md beside this file says what each setting does.
"""

from __future__ import annotations

from ..common.config import (
    AnyOf,
    Anything,
    Bool,
    Const,
    Float,
    Int,
    ListOf,
    Optional,
    Section,
    Str,
    init_keywords,
)

#: ``"auto"`` (the free cores), a thread count, or ``null`` (torch's default)
CPU_THREADS = Optional(AnyOf(Const("auto"), Int(min=0)), "torch's default")

VISION = Section({
    "hidden_size": Int(min=1),
    "intermediate_size": Int(min=1),
    "num_hidden_layers": Int(min=1),
    "num_attention_heads": Int(min=1),
    "layer_norm_eps": Float(gt=0),
    "initializer_range": Float(gt=0),
}, more_keys=init_keywords("transformers:Blip2VisionConfig", exclude=("image_size", "patch_size")))

QFORMER = Section({
    "hidden_size": Int(min=1),
    "intermediate_size": Int(min=1),
    "num_hidden_layers": Int(min=1),
    "num_attention_heads": Int(min=1),
    "cross_attention_frequency": Int(min=1),
    "max_position_embeddings": Int(min=1),
    "layer_norm_eps": Float(gt=0),
    "vocab_size": Int(min=1),
}, more_keys=init_keywords("transformers:Blip2QFormerConfig", exclude=("encoder_hidden_size",)))

SCHEMA = Section({
    "name": Str(),
    "_comment": Anything(),
    "image_size": Int(min=1),
    "patch_size": Int(min=1),
    "vision": VISION,
    "ln_vision_eps": Float(gt=0),
    "qformer": QFORMER,
    "num_query_tokens": Int(min=1),
    "max_txt_len": Int(min=1),
    "max_words": Int(min=1),
    "embed_dim": Int(min=1),
    "mask_head_hidden": ListOf(Int(min=1)),
    "tokenizer": Str(),
    "add_dec_token": Bool(),
    "pretrained": Optional(AnyOf(Str(), ListOf(Str(), min_length=1)), "train from random weights"),
    "freeze_vision": Bool(),
    "cache_images": Bool(),
    "augment": Section({"crop_scale": ListOf(Float(gt=0, max=1), length=2), "hflip": Float(min=0, max=1)}),
    "target_prompt": Str(("raw", "cleaned")),
    "mismatched_pairs": Float(min=0, max=1),
    "lr": Float(gt=0),
    "lr_schedule": Str(("epoch_cosine", "step_cosine")),
    "warmup_lr": Float(min=0),
    "min_lr": Float(min=0),
    "warmup_steps": Int(min=0),
    "betas": ListOf(Float(min=0, max=1), length=2),
    "weight_decay": Float(min=0),
    "grad_clip": Optional(Float(min=0), "no clipping; 0 too"),
    "epochs": Int(min=1),
    "batch_size": Int(min=1),
    "eval_batch_size": Int(min=1),
    "token_loss": Str(("l1", "bce")),
    "token_loss_weight": Float(min=0),
    "mask_loss_weight": Float(min=0),
    "train_precision": Str(("fp16", "bf16", "fp32")),
    "inference_precision": Str(("upstream", "bf16", "fp32")),
    "num_workers": Int(min=0),
    "cpu_threads": CPU_THREADS,
    "progress": Bool(),
}, required=("image_size", "patch_size", "num_query_tokens", "max_txt_len", "lr", "weight_decay", "epochs",
             "batch_size"))
