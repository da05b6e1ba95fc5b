"""The schema of an imatch config: lvlm-stack's model, lora, train and infer sections plus the recipe switches.

Checked once when a config is loaded (:func:`ntire_t2iqa_baselines.common.config.load_baseline_config`).
"""

from __future__ import annotations

from ..common.config import Anything, Bool, Float, Int, Section, Str
from ..lvlm_stack.schema import INFER, LORA, MODEL, TRAIN

#: Each of iMatch's strategies as a switch (README.md in this folder).
RECIPE = Section({
    "qalign": Bool(), "pseudo_labels": Bool(), "element_hints": Bool(), "image_aug": Bool(),
    "image_aug_share": Float(min=0, max=1), "type_aug": Bool(), "element_perturbation": Float(min=0, max=3),
    "tau": Float(gt=1, lt=7), "calibrate_tau": Bool(), "element_epochs": Int(min=1),
})

QUERY = Section({"t2i_model": Bool()})

ENSEMBLE = Section({"by": Str(("folds", "seeds")), "members": Int(min=1)})

SCHEMA = Section({
    "name": Str(), "_comment": Anything(), "description": Anything(),
    "model": MODEL, "lora": LORA, "train": TRAIN, "infer": INFER,
    "recipe": RECIPE, "query": QUERY, "ensemble": ENSEMBLE,
}, required=("model", "lora", "train", "infer", "recipe"))
