"""``eliq``: a label-free quality and alignment baseline (ELIQ) for both tracks, on lvlm-stack's Qwen2.5-VL.

Stage 1 builds negatives from the training images and prompts only (technical: repeated JPEG and
noise; aesthetic: colour and composition degradations; alignment: a mismatched prompt). Stage 2
tunes the model with LoRA to answer ``high``/``low`` to one instruction per aspect. Stages 3-5
freeze it, cache the last-layer hidden state of the final input token under each instruction,
and train gates and a Quality Query Transformer with hinge ranking losses. Track 1 submits s_ali
(total and per element text), Track 2 s_vis with empty masks. No score, vote, MOS, mask or flag
of the training data is read. See README.md in this folder.
"""

from __future__ import annotations

from pathlib import Path

from .recipe import predict, train
from .schema import SCHEMA as CONFIG_SCHEMA

TRACK = "align"
TRACKS = ("align", "structure")
_CONFIG_DIR = Path(__file__).with_name("configs")
CONFIGS = {"tiny": _CONFIG_DIR / "tiny.json", "full": _CONFIG_DIR / "full.json"}

__all__ = ["CONFIGS", "CONFIG_SCHEMA", "TRACK", "TRACKS", "predict", "train"]
