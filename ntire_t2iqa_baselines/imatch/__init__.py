"""``imatch``: the NTIRE 2025 Track 1 winner's recipe (iMatch) on lvlm-stack's Qwen2.5-VL, LoRA, folds and scorer.

Instruction targets as discrete levels (overall: 15 letters ``a``..``o``; elements: 7 digits), QAlign
read-out (closed-set softmax, expected level, mapped back), element levels as hints in the overall
query, pseudo-labelled val images in a second training phase, image-augmented copies, prompt type and
level perturbation for the element model, an ensemble over folds or seeds. Every strategy is a switch
of the config's ``recipe`` section (all on in ``full``). See README.md in this folder.
"""

from __future__ import annotations

from pathlib import Path

from .predict import predict
from .schema import SCHEMA as CONFIG_SCHEMA
from .train import train

TRACK = "align"
_CONFIG_DIR = Path(__file__).with_name("configs")
CONFIGS = {"tiny": _CONFIG_DIR / "tiny.json", "full": _CONFIG_DIR / "full.json"}


def demo_submission(data: Path, split: str, out_zip: Path, cache_dir: Path) -> Path:
    """Train the tiny config into ``cache_dir`` (skipped when finished), predict ``split``, write a validated zip."""
    from ..lvlm_stack import tiny_demo_submission

    return tiny_demo_submission("imatch", train, predict, CONFIGS, CONFIG_SCHEMA, data, split, out_zip, cache_dir)


__all__ = ["CONFIGS", "CONFIG_SCHEMA", "TRACK", "demo_submission", "predict", "train"]
