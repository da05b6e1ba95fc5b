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

from pathlib import Path
from typing import Any

from .recipe import predict, train
from .schema import SCHEMA as CONFIG_SCHEMA

TRACK = "align"
_CONFIG_DIR = Path(__file__).with_name("configs")
CONFIGS = {"tiny": _CONFIG_DIR / "tiny.json", "full": _CONFIG_DIR / "full.json"}


def tiny_demo_submission(name: str, train_fn: Any, predict_fn: Any, configs: dict[str, Path], schema: Any,
                         data: Path, split: str, out_zip: Path, cache_dir: Path) -> Path:
    """The demo of a baseline on this recipe's run folder: train its tiny config into ``cache_dir`` (skipped
    when finished there on the same training data), predict ``split``, write a validated zip."""
    from ..common.config import load_baseline_config
    from ..common.submission import timed_submission
    from .recipe import drop_stale_run

    run = Path(cache_dir)
    drop_stale_run(run, Path(data))  # a cache of another challenge: start again
    if not (run / "finished.json").is_file():
        train_fn(Path(data), run, load_baseline_config(configs, schema, "tiny"), "cpu", 0)
    return timed_submission(name, predict_fn, data, split, run, out_zip)


def demo_submission(data: Path, split: str, out_zip: Path, cache_dir: Path) -> Path:
    """Train the tiny config into ``cache_dir`` (skipped when finished), predict ``split``, write a validated zip."""
    return tiny_demo_submission("lvlm-stack", train, predict, CONFIGS, CONFIG_SCHEMA, data, split, out_zip, cache_dir)


__all__ = ["CONFIGS", "CONFIG_SCHEMA", "TRACK", "demo_submission", "predict", "tiny_demo_submission", "train"]
