"""The schema of a RAHF config (``configs/tiny.json``, ``configs/full.json`` or your own copy).

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

VISION = Section({
    "intermediate_size": Int(min=1),
    "num_hidden_layers": Int(min=1),
    "num_attention_heads": Int(min=1),
    "hidden_act": Str(),
    "layer_norm_eps": Float(gt=0),
}, more_keys=init_keywords("transformers:AltCLIPVisionConfig", exclude=("image_size", "patch_size", "hidden_size")))

TEXT = Section({
    "tokenizer": Str(("word", "altclip")),
    "tokenizer_dir": Optional(Str(), "altclip_dir's tokenizer"),
    "max_length": Int(min=3),
    "vocab_size": Int(min=1),
    "max_position_embeddings": Int(min=1),
    "type_vocab_size": Int(min=1),
    "pad_token_id": Int(min=0),
    "layer_norm_eps": Float(gt=0),
    "hidden_dropout_prob": Float(min=0, max=1),
}, required=("max_length",))

TRAIN = Section({
    "epochs": Int(min=1),
    "total_steps": Int(min=1),
    "batch_size": Int(min=1),
    "accumulate": Int(min=1),
    "unfrozen_batch_size": Int(min=1),
    "unfrozen_accumulate": Int(min=1),
    "lr": Float(gt=0),
    "weight_decay": Float(min=0),
    "warmup_steps": Int(min=0),
    "freeze_fraction": Float(min=0, max=1),
    "grad_clip": Float(min=0),
    "weighted_heatmap_loss": Bool(),
    "heatmap_target": Str(("binary", "graded")),
    "score_loss_weight": Float(min=0),
    "precision": Str(("fp32", "bf16")),
    "augment": Section({"hflip": Float(min=0, max=1), "crop": Float(min=0, max=1),
                        "color_jpeg": Float(min=0, max=1), "grayscale": Float(min=0, max=1)}),
    "num_workers": Int(min=0),
    "cache_images": Bool(),
    "cpu_threads": Optional(AnyOf(Const("auto"), Int(min=0)), "torch's default"),
}, required=("batch_size", "lr"))

SCHEMA = Section({
    "name": Str(),
    "description": Anything(),
    "image_size": Int(min=1),
    "patch_size": Int(min=1),
    "width": Int(min=1),
    "vision": VISION,
    "text": TEXT,
    "fusion": Section({"layers": Int(min=1), "ffn": Int(min=1)}, required=("layers", "ffn")),
    "heatmap": Section({"stem": ListOf(Int(min=1), min_length=1), "stages": ListOf(Int(min=1), min_length=1),
                        "heatmap_size": Int(min=1), "prior": Optional(Float(gt=0, lt=1), "no prior bias")},
                       required=("stem", "stages")),
    "score": Section({"channels": ListOf(Int(min=1), min_length=1), "stride": Int(min=1),
                      "mlp": ListOf(Int(min=1))}, required=("channels", "mlp")),
    "init_from_altclip": Bool(),
    "altclip_dir": Optional(Str(), "no local AltCLIP folder"),
    "train": TRAIN,
    "infer": Section({"precision": Str(("fp32", "bf16")), "score": Str(("raw", "mos"))}),
}, required=("image_size", "patch_size", "width", "vision", "text", "fusion", "heatmap", "score", "train"))
