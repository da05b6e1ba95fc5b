"""Name -> baseline. Imports a baseline's module only when it is asked for."""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class BaselineSpec:
    """What the CLI needs to know about a baseline before importing it."""

    name: str
    track: str
    module: str
    summary: str
    extra_data: bool = False
    llm: bool = False
    #: every track it submits to, when more than ``track`` (the default one); ``--track`` picks one
    tracks: tuple[str, ...] = ()

    @property
    def all_tracks(self) -> tuple[str, ...]:
        """The tracks this baseline submits to (``track`` first)."""
        return self.tracks or (self.track,)


REGISTRY: dict[str, BaselineSpec] = {
    spec.name: spec
    for spec in (
        BaselineSpec("fga-blip2", "align", "ntire_t2iqa_baselines.fga_blip2",
                     "FGA-BLIP2 (EvalMuse-40K): BLIP-2 Q-Former ITM head, element token scores, mask head."),
        BaselineSpec("rahf", "structure", "ntire_t2iqa_baselines.rahf",
                     "RAHF-style (EvalMuse-Structure): AltCLIP encoders, fusion blocks, heatmap and score heads."),
        BaselineSpec("lvlm-stack", "align", "ntire_t2iqa_baselines.lvlm_stack",
                     "Qwen2.5-VL + LoRA in 5 prompt-grouped folds, first-token scores, XGBoost blend.", llm=True),
        BaselineSpec("eliq", "align", "ntire_t2iqa_baselines.eliq",
                     "ELIQ, label-free: Qwen2.5-VL + LoRA tuned on built negatives (high/low), gated embeddings, "
                     "Quality Query Transformer with ranking losses; no human label read.", llm=True,
                     tracks=("align", "structure")),
        BaselineSpec("imatch", "align", "ntire_t2iqa_baselines.imatch",
                     "iMatch (NTIRE 2025 Track 1 winner): Qwen2.5-VL + LoRA, QAlign levels, element hints, "
                     "val pseudo-labels, image augmentation.", llm=True),
    )
}


def get(name: str) -> BaselineSpec:
    """The spec of a baseline; an unknown name lists the known ones and the closest match."""
    try:
        return REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"unknown baseline {name!r}; known: {', '.join(REGISTRY)}.{hint}") from None


def load(name: str) -> ModuleType:
    """Import a baseline's module (this is where torch gets imported)."""
    return importlib.import_module(get(name).module)
