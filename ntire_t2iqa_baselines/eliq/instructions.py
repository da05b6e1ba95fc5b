"""The three quality-aware instructions (technical, aesthetic, alignment) and their chat sequences.

Sequences use lvlm-stack's chat layout (system turn, the image first, then the text) and its
batching: each :class:`Query` becomes one sequence after the image's placeholder tokens, and the
answer is the first token the assistant would generate, ``high`` or ``low``::

    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n<|im_start|>user\\n
    <|vision_start|><|image_pad|>...<|vision_end|>[Prompt: ...\\n]INSTRUCTION<|im_end|>\\n<|im_start|>assistant\\n
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..lvlm_stack.prompts import Task, prefix_text

TEC, AES, ALI = "technical", "aesthetic", "alignment"
ASPECTS = (TEC, AES, ALI)
INSTRUCTIONS = {
    TEC: "Technical quality (sharpness, noise, compression): high or low?",
    AES: "Aesthetic quality (colour, contrast, composition): high or low?",
    ALI: "Does the image match the prompt: high or low?",
}
#: The answer set: P(``high``) among {``high``, ``low``} is a sequence's score.
QUALITY = Task("quality", ("high", "low"), (1.0, 0.0))
ANSWERS = QUALITY.answers
#: Target value meaning "no target" (an aspect a negative says nothing about is simply not asked).
NO_TARGET = float("nan")


def suffix_text(aspect: str, prompt: str | None = None, text_first: bool = False) -> str:
    """The text after the image for ``aspect`` (the alignment instruction carries ``prompt``, after the
    image, or before it with ``text_first``: see :func:`prefix_for`)."""
    if aspect not in INSTRUCTIONS:
        raise ValueError(f"unknown aspect {aspect!r}; choose one of {', '.join(ASPECTS)}")
    context = f"Prompt: {prompt or ''}\n" if aspect == ALI and not text_first else ""
    return f"<|vision_end|>{context}{INSTRUCTIONS[aspect]}<|im_end|>\n<|im_start|>assistant\n"


def prefix_for(prompt: str) -> str:
    """The text before the image when the prompt comes first (``tune.text_first``)."""
    return prefix_text().removesuffix("<|vision_start|>") + f"Prompt: {prompt}\n<|vision_start|>"


@dataclass(frozen=True)
class Query:
    """One sequence: an aspect, the prompt (alignment only), the target (1 high, 0 low, NaN none) and a key."""

    aspect: str
    prompt: str | None = None
    target: float = NO_TARGET
    key: Any = None


@dataclass
class ImageQueries:
    """An image (patches and grid, as lvlm-stack's encoder gives them) with the queries asked about it."""

    pixels: torch.Tensor
    grid: torch.Tensor
    queries: list[Query] = field(default_factory=list)


def sequences(example: ImageQueries) -> list[tuple[Any, str, int, float]]:
    """lvlm-stack's ``Collator(sequences=...)`` hook: (key, suffix text, task 0, target) per query."""
    return [(q.key, suffix_text(q.aspect, q.prompt), 0, q.target) for q in example.queries]


def sequences_text_first(example: ImageQueries) -> list[tuple[Any, ...]]:
    """The same with the alignment prompt before the image: (key, suffix, task 0, target[, prefix])."""
    return [(q.key, suffix_text(q.aspect, q.prompt, True), 0, q.target)
            + ((prefix_for(q.prompt or ""),) if q.aspect == ALI else ()) for q in example.queries]


def sequence_builder(cfg: dict[str, Any]) -> Any:
    """The ``sequences`` hook of a config: prompt after the image (default) or before it (``tune.text_first``)."""
    return sequences_text_first if cfg["tune"].get("text_first") else sequences


def corpus(prompts: list[str], elements: list[str]) -> list[str]:
    """Texts the offline tiny tokenizer is trained on: the templates, every prompt and element text."""
    texts = [prefix_text(), *(suffix_text(a, "x") for a in ASPECTS), "high low high low"]
    texts.extend(suffix_text(ALI, p) for p in prompts)
    texts.extend(suffix_text(ALI, e) for e in elements)
    texts.append(prefix_for("x"))
    return texts
