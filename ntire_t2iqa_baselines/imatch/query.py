"""iMatch's instruction queries and targets: the text after the image and the level each sequence is trained on.

Both tasks use lvlm-stack's chat layout (system turn, image, then text; the answer is the first token the
assistant generates). After the image::

    Prompt: ...\\nPrompt ratings: meaningless ..., split confidence ..., attribute confidence ...\\n
    [T2I model: ...\\n]                                    (``query.t2i_model``)
    overall: [Element levels: <element> <1..7>; ...\\n]    (``element_hints``: the element augmentation)
             INSTRUCTION (answer a..o)
    element: [Prompt type: ...\\n]                        (``type_aug``: prompt-type augmentation)
             Element: ...\\nCategory: ...\\nINSTRUCTION (answer 1..7)

Element hints come from the labels at training time (:meth:`Query.hints_from_labels`) and from the element
model's predicted levels at inference (``Query(hints=...)``, filled by the recipe after the element model ran).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..common.data import AlignItem, split_element
from ..lvlm_stack.prompts import ratings_text
from .levels import ELEMENT_LEVELS, element_level, overall_level, round_half_up

OVERALL_INSTRUCTION = ("How well does the image match the prompt? Answer with one letter from a (not at all) "
                       "to o (perfectly).")
ELEMENT_INSTRUCTION = ("How well is this element of the prompt shown in the image? Answer with one digit from 1 "
                       "(not at all) to 7 (clearly).")
END = "<|im_end|>\n<|im_start|>assistant\n"

#: img_path -> {element key: level 1..7}
Hints = dict[str, dict[str, float]]


def hints_from_labels(items: list[AlignItem]) -> Hints:
    """Training hints: every element's level from its (pseudo-)label, ``round(s * 6) + 1``."""
    return {it.img_path: {e: float(element_level(s)) for e, s in (it.element_scores or {}).items()} for it in items}


def hint_text(item: AlignItem, levels: dict[str, float]) -> str:
    """``Element levels: cat 6; red (color) 2`` (element keys as given; a level rounded half up, 1..7)."""
    parts = []
    for e in item.elements:
        if e in levels:
            lv = min(max(round_half_up(float(levels[e])), 1), ELEMENT_LEVELS)
            parts.append(f"{e} {lv}")
    return f"Element levels: {'; '.join(parts) or 'none'}\n"


class Query:
    """Builds each sequence's text and target from the config's switches (one object per model part).

    ``cfg``: the ``recipe`` section (``element_hints``, ``type_aug``, ``element_perturbation``) and
    ``query`` (``t2i_model``); ``hints``: element levels per image for the overall query (labels when
    training, predictions at inference); ``seed``: the perturbation's random stream.
    """

    def __init__(self, cfg: dict[str, Any], hints: Hints | None = None, seed: int = 0, train: bool = False):
        recipe = cfg.get("recipe", {})
        self.use_hints = bool(recipe.get("element_hints", False))
        self.type_aug = bool(recipe.get("type_aug", False))
        self.epsilon = float(recipe.get("element_perturbation", 0.0)) if train else 0.0
        self.t2i_model = bool(cfg.get("query", {}).get("t2i_model", False))
        self.hints = hints or {}
        self.rng = np.random.default_rng(seed)
        if self.use_hints and hints is None and not train:
            raise ValueError("element hints are on but no element predictions were given for the overall query")

    def context(self, item: AlignItem) -> str:
        """Prompt, the prompt's ratings and (when asked) the T2I model."""
        text = f"<|vision_end|>Prompt: {item.prompt}\nPrompt ratings: {ratings_text(item)}\n"
        if self.t2i_model:
            text += f"T2I model: {item.model or 'unknown'}\n"
        return text

    def overall_text(self, item: AlignItem) -> str:
        """The overall query (with the element levels when ``element_hints`` is on)."""
        hint = hint_text(item, self.hints.get(item.img_path, {})) if self.use_hints else ""
        return f"{self.context(item)}{hint}{OVERALL_INSTRUCTION}{END}"

    def element_text(self, item: AlignItem, element: str) -> str:
        """The element query (with the prompt type when ``type_aug`` is on)."""
        name, category = split_element(element)
        kind = f"Prompt type: {item.prompt_type or 'unknown'}\n" if self.type_aug else ""
        return (f"{self.context(item)}{kind}Element: {name}\nCategory: {category or 'unknown'}\n"
                f"{ELEMENT_INSTRUCTION}{END}")

    def overall_target(self, item: AlignItem) -> float:
        """The overall level's index 0..14 (NaN without a label)."""
        return float(overall_level(item.total) - 1) if item.total is not None else float("nan")

    def element_target(self, item: AlignItem, element: str) -> float:
        """The element level's index 0..6, perturbed by ``U(-eps, eps)`` levels before rounding when training."""
        scores = item.element_scores or {}
        if element not in scores:
            return float("nan")
        level = float(element_level(scores[element]))
        if self.epsilon:
            level = float(min(max(round_half_up(level + self.rng.uniform(-self.epsilon, self.epsilon)), 1),
                              ELEMENT_LEVELS))
        return level - 1.0

    def sequences(self, part: str) -> Callable[[Any], list[tuple[Any, str, int, float]]]:
        """lvlm-stack's ``Collator(sequences=...)`` callback of a part: ``"overall"`` (task 0) or ``"element"`` (1)."""
        def overall(ex: Any) -> list[tuple[Any, str, int, float]]:
            return [((ex.item.img_path, None), self.overall_text(ex.item), 0, self.overall_target(ex.item))]

        def element(ex: Any) -> list[tuple[Any, str, int, float]]:
            return [((ex.item.img_path, e), self.element_text(ex.item, e), 1, self.element_target(ex.item, e))
                    for e in ex.elements]

        if part not in ("overall", "element"):
            raise ValueError(f"part must be 'overall' or 'element', not {part!r}")
        return overall if part == "overall" else element


def corpus(items: list[AlignItem], cfg: dict[str, Any]) -> list[str]:
    """Texts the offline tiny tokenizer is trained on: both queries of every training item."""
    full = {**cfg, "recipe": {**cfg.get("recipe", {}), "element_hints": True, "type_aug": True},
            "query": {"t2i_model": True}}
    q = Query(full, hints_from_labels(items), train=True)
    texts = [OVERALL_INSTRUCTION, ELEMENT_INSTRUCTION, "a b c d e f g h i j k l m n o", "0 1 2 3 4 5 6 7 8 9 ."]
    for it in items:
        texts.append(q.overall_text(it))
        texts.extend(q.element_text(it, e) for e in it.elements)
    return texts
