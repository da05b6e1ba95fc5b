"""The schema of an lvlm-stack config (``configs/tiny.json``, ``configs/full.json`` or your own copy).

Checked once when a config is loaded (:func:`ntire_t2iqa_baselines.common.config.load_baseline_config`).
A baseline built on this one's model loader and scorer reuses the sections, e.g.
``SCHEMA.extended({"train": TRAIN.extended({"my_weight": Float(min=0)})})``.
"""

from __future__ import annotations

from ..common.config import Anything, Bool, Float, Int, ListOf, Optional, Section, Str

#: the tiny random-init Qwen2.5-VL built in code (tiny config only)
TINY = Section({
    "vocab_size": Int(min=1), "text_hidden": Int(min=1), "text_intermediate": Int(min=1),
    "text_layers": Int(min=1), "heads": Int(min=1), "kv_heads": Int(min=1), "vision_hidden": Int(min=1),
    "vision_depth": Int(min=1), "vision_heads": Int(min=1), "vision_intermediate": Int(min=1),
    "init_std": Float(gt=0), "window_size": Int(min=1), "fullatt_blocks": ListOf(Int(min=0)),
}, required=("text_hidden", "text_intermediate", "text_layers", "heads", "vision_hidden", "vision_depth",
             "vision_heads", "vision_intermediate"))

MODEL = Section({
    "path": Optional(Str(), "build the tiny model of model.tiny"),
    "dtype": Str(("bfloat16", "float16", "float32")),
    "attn": Optional(Str(), "transformers' default attention"),
    "patch_size": Int(min=1),
    "merge_size": Int(min=1),
    "min_pixels": Int(min=1),
    "max_pixels": Int(min=1),
    "tiny": TINY,
}, required=("patch_size", "merge_size", "min_pixels", "max_pixels"))

LORA = Section({
    "r": Int(min=1), "alpha": Float(gt=0), "dropout": Float(min=0, max=1), "vision": Bool(),
    "lm_head": Bool(), "modules_to_save": Optional(ListOf(Str()), "none"),
}, required=("r", "alpha"))

TRAIN = Section({
    "folds": Int(min=2), "models": Str(("joint", "separate")), "fold_seed": Int(min=0), "epochs": Int(min=1),
    "batch_images": Int(min=1), "grad_accum": Int(min=1), "lr_lm": Float(gt=0), "lr_vision": Float(min=0),
    "weight_decay": Float(min=0), "betas": ListOf(Float(min=0, max=1), length=2), "warmup_steps": Int(min=0),
    "max_elements": Int(min=0), "ratings_dropout": Float(min=0, max=1), "model_dropout": Float(min=0, max=1),
    "overall_weight": Float(min=0), "element_weight": Float(min=0),
    "max_grad_norm": Optional(Float(min=0), "no clipping"), "mixed_precision": Str(("no", "fp16", "bf16")),
    "gradient_checkpointing": Bool(), "save_steps": Int(min=0), "workers": Int(min=0), "cache_images": Bool(),
    "cpu_threads": Optional(Int(min=0), "torch's default; 0 too"),
}, required=("folds", "epochs", "batch_images", "lr_lm", "lr_vision", "weight_decay", "warmup_steps"))

INFER = Section({"batch_images": Int(min=1), "workers": Int(min=0)}, required=("batch_images",))

#: XGBoost settings in scikit-learn's names (lvlm_stack.stack.Booster.DEFAULTS fills the rest)
BOOSTER = Section({
    "n_estimators": Int(min=1), "max_depth": Int(min=1), "learning_rate": Float(gt=0),
    "subsample": Float(gt=0, max=1), "colsample_bytree": Float(gt=0, max=1), "min_child_weight": Float(min=0),
    "reg_lambda": Float(min=0), "n_jobs": Int(min=1),
})

STACK = Section({
    "element_classifier": Str(("auto", "always", "never")), "classifier_margin": Float(min=0),
    "regressor": BOOSTER, "classifier": BOOSTER,
})

SCHEMA = Section({
    "name": Str(), "_comment": Anything(), "description": Anything(),
    "model": MODEL, "lora": LORA, "train": TRAIN, "infer": INFER, "stack": STACK,
}, required=("model", "lora", "train", "infer"))
