"""``lvlm-stack``: Qwen2.5-VL + LoRA in five prompt-grouped folds, first-token scores, XGBoost blend.

The second-place Track 1 recipe of NTIRE 2025 (main score 0.8426): per fold, LoRA on
Qwen2.5-VL for two tasks (overall alignment answered with one of "1".."5", element
presence with "0"/"1"); a score is the expectation of the first generated token's
softmax over the answer tokens, trained with an MSE against the label. Out-of-fold
predictions plus statistical features train an XGBoost regressor (total score);
element presence is the fold-mean probability, or an XGBoost classifier when that wins
out of fold. See README.md in this folder for the full-size multi-GPU run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..common.config import load_baseline_config
from .recipe import predict, train
from .schema import SCHEMA as CONFIG_SCHEMA

TRACK = "align"
_CONFIG_DIR = Path(__file__).with_name("configs")
CONFIGS = {"tiny": _CONFIG_DIR / "tiny.json", "full": _CONFIG_DIR / "full.json"}


def demo_submission(data: Path, split: str, out_zip: Path, cache_dir: Path) -> Path:
    """Train the tiny config into ``cache_dir`` (skipped when finished), predict ``split``, write a validated zip."""
    import json
    import shutil

    from ..common.submission import write_submission
    from ..registry import get
    from .recipe import train_fingerprint

    config = load_baseline_config(CONFIGS, CONFIG_SCHEMA, "tiny")
    run = Path(cache_dir)
    if (run / "config.json").is_file():
        old = json.loads((run / "config.json").read_text())
        if old.get("_train_sha256") != train_fingerprint(Path(data)) or old.get("_seed") != 0:
            shutil.rmtree(run)  # a cache of another challenge: start again
    if not (run / "finished.json").is_file():
        train(Path(data), run, config, "cpu", 0)
    t0 = time.perf_counter()
    predictions: list[dict[str, Any]] = predict(Path(data), split, run, "cpu", None)
    seconds = (time.perf_counter() - t0) / max(len(predictions), 1)
    write_submission(get("lvlm-stack"), predictions, out_zip, seconds, False, data, split)
    return Path(out_zip)


__all__ = ["CONFIGS", "CONFIG_SCHEMA", "TRACK", "demo_submission", "predict", "train"]
