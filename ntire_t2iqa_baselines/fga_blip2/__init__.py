"""FGA-BLIP2 (EvalMuse-40K), the Track 1 baseline: BLIP-2 ITM head on Q-Former queries (overall score)
and on text tokens (element scores), plus a token mask head.

``CONFIGS``: ``tiny`` (CPU, minutes, random init) and ``full`` (EvalMuse's recipe, GPU, from LAVIS'
checkpoints through :mod:`.convert`). README.md beside this file lists every setting and difference.
"""

from __future__ import annotations

from pathlib import Path

from ..common.config import load_baseline_config
from .predict import predict
from .schema import SCHEMA as CONFIG_SCHEMA
from .train import is_finished, train

TRACK = "align"
_HERE = Path(__file__).resolve().parent
CONFIGS: dict[str, Path] = {"tiny": _HERE / "configs" / "tiny.json", "full": _HERE / "configs" / "full.json"}


def demo_submission(data: Path, split: str, out_zip: Path, cache_dir: Path) -> Path:
    """Train the tiny model into ``cache_dir`` unless a finished run is there, then write a validated zip."""
    from ntire_t2iqa_baselines.common.submission import timed_submission

    cache_dir = Path(cache_dir)
    if not is_finished(cache_dir):
        train(Path(data), cache_dir, load_baseline_config(CONFIGS, CONFIG_SCHEMA, "tiny"), "cpu", 0)
    return timed_submission("fga-blip2", predict, data, split, cache_dir, out_zip)


__all__ = ["CONFIGS", "CONFIG_SCHEMA", "TRACK", "demo_submission", "predict", "train"]
