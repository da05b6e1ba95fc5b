"""RAHF-style baseline of Track 2 (EvalMuse-Structure's EM-RAHF): heatmap + score from image and prompt.

``ntire-t2iqa baseline train rahf --data DATA --out RUN [--config tiny|full]`` and
``ntire-t2iqa baseline run rahf --data DATA --weights RUN --out submission.zip``.

* :mod:`.model`: AltCLIP vision tower + text embeddings, fusion blocks, heatmap and score heads.
* :mod:`.train`: MSE heatmap + MSE score, AdamW, cosine, encoders frozen for the first half.
* :mod:`.predict`: ``round(heatmap * 255) > 40`` masks and the raw 0..1 score (as upstream; ``mos``: ``x * 4 + 1``).
* :mod:`.convert`: EM-RAHF checkpoints and AltCLIP weights, loaded safely.

Configs: ``tiny`` (CPU minutes, random init) and ``full`` (the official size; needs a local AltCLIP).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ntire_t2iqa.data.sources import TrackData

from ..common.config import load_baseline_config
from .schema import SCHEMA as CONFIG_SCHEMA

TRACK = "structure"
_CONFIG_DIR = Path(__file__).with_name("configs")
CONFIGS: dict[str, Path] = {"tiny": _CONFIG_DIR / "tiny.json", "full": _CONFIG_DIR / "full.json"}

# Importing a submodule binds its name on this package (``ntire_t2iqa_baselines.rahf.train`` would become the
# module); the functions below are defined after these imports, so the names end up as functions.
# Reach the modules through ``sys.modules["ntire_t2iqa_baselines.rahf.train"]`` / ``importlib.import_module``.
from .predict import predict as _predict  # noqa: E402
from .predict import timed_predict as _timed_predict  # noqa: E402
from .train import load_run_state as _load_run_state  # noqa: E402
from .train import train as _train  # noqa: E402


def train(data: Path | TrackData, out: Path, config: dict[str, Any], device: str = "cpu", seed: int = 0,
          progress: bool = True) -> Path:
    """Train (or resume) into the run folder ``out`` from a data folder of any layout; return it."""
    return _train(data, Path(out), config, device, seed, progress=progress)


def predict(data: Path | TrackData, split: str, weights: Path, device: str = "cpu", batch_size: int | None = None,
            progress: bool = True) -> dict[str, Any]:
    """``{image_name: {"score": float, "pred_area": (512, 512) uint8 0/1}}`` for every image of ``split``."""
    return _predict(data, split, Path(weights), device, batch_size, progress=progress)


#: Epochs of the demo's run: the small demo challenge has a third of the medium one's training images, and
#: tiny's 5 epochs leave the heatmap below the threshold there (no region: F1 0; with 10, main 0.199, F1 0.167).
DEMO_EPOCHS = 10


def demo_submission(data: Path, split: str, out_zip: Path, cache_dir: Path, progress: bool = True) -> Path:
    """Train the tiny model (:data:`DEMO_EPOCHS` epochs) into ``cache_dir`` unless a finished run is there, then
    write a validated submission."""
    from ..common.submission import write_submission
    from ..registry import get

    state = _load_run_state(Path(cache_dir))
    if state is None or not state.get("extra", {}).get("finished"):
        config = load_baseline_config(CONFIGS, CONFIG_SCHEMA, "tiny")
        config["train"]["epochs"] = DEMO_EPOCHS
        train(Path(data), Path(cache_dir), config, "cpu", 0, progress=progress)
    preds, seconds = _timed_predict(Path(data), split, Path(cache_dir), "cpu", progress=progress)
    write_submission(get("rahf"), preds, out_zip, seconds, False, data, split)
    return Path(out_zip)


__all__ = ["CONFIGS", "CONFIG_SCHEMA", "TRACK", "demo_submission", "predict", "train"]
