"""Instructions and chat layout of the two scoring tasks (overall alignment, element presence).

Every sequence follows Qwen2.5-VL's chat format with the image first and the structured
context as text after it; the answer is the first token the assistant would generate::

    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n<|im_start|>user\\n
    <|vision_start|><|image_pad|>...<|vision_end|>T2I model: ...\\nPrompt type: ...\\nPrompt: ...\\n
    Prompt ratings: meaningless ..., split confidence ..., attribute confidence ...\\n
    [Element: ...\\nCategory: ...\\n]INSTRUCTION<|im_end|>\\n<|im_start|>assistant\\n

The prompt ratings are the data's own evaluation of the prompt (EvalMuse's ``promt_meaningless``,
``split_confidence``, ``attribute_confidence``, averaged over annotators; the NTIRE phase inputs
carry them too), written with two decimals, ``unknown`` where a record lacks one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..common.data import AlignItem, split_element

SYSTEM = "You are a helpful assistant."
OVERALL_INSTRUCTION = ("How well does the image match the prompt? Answer with one digit from 1 (not at all) "
                       "to 5 (perfectly).")
ELEMENT_INSTRUCTION = "Is this element shown correctly in the image? Answer 1 for yes or 0 for no."

#: Qwen2.5-VL's special tokens (the tiny tokenizer registers the same strings).
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")
IMAGE_PAD = "<|image_pad|>"
PAD = "<|endoftext|>"


@dataclass(frozen=True)
class Task:
    """A scoring task: its answer tokens and the value each stands for."""

    name: str
    answers: tuple[str, ...]
    values: tuple[float, ...]

    @property
    def span(self) -> float:
        """Range of the values (the MSE is taken in units of this range)."""
        return max(self.values) - min(self.values)


OVERALL = Task("overall", ("1", "2", "3", "4", "5"), (1.0, 2.0, 3.0, 4.0, 5.0))
ELEMENT = Task("element", ("0", "1"), (0.0, 1.0))
TASKS = (OVERALL, ELEMENT)


def prefix_text() -> str:
    """Text before the image placeholder tokens."""
    return f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n<|vision_start|>"


#: (item key, words in the context line) of the prompt ratings, in the order written.
RATINGS = (("meaningless", "meaningless"), ("split_confidence", "split confidence"),
           ("attribute_confidence", "attribute confidence"))


def ratings_text(item: AlignItem) -> str:
    """``meaningless 0.00, split confidence 4.33, attribute confidence 4.00`` (``unknown`` where absent)."""
    return ", ".join(f"{words} {item.ratings[key]:.2f}" if key in item.ratings else f"{words} unknown"
                     for key, words in RATINGS)


def context_text(item: AlignItem) -> str:
    """The structured context shared by both tasks: T2I model, prompt type, prompt, the prompt's ratings."""
    model, kind = item.model or "unknown", item.prompt_type or "unknown"
    return f"T2I model: {model}\nPrompt type: {kind}\nPrompt: {item.prompt}\nPrompt ratings: {ratings_text(item)}\n"


def suffix_text(item: AlignItem, element: str | None = None) -> str:
    """Text after the image: context, the element (if any) and the task's instruction, then the answer slot."""
    if element is None:
        question = OVERALL_INSTRUCTION
    else:
        name, category = split_element(element)
        question = f"Element: {name}\nCategory: {category or 'unknown'}\n{ELEMENT_INSTRUCTION}"
    return f"<|vision_end|>{context_text(item)}{question}<|im_end|>\n<|im_start|>assistant\n"


def corpus(items: list[AlignItem]) -> list[str]:
    """Texts the offline tiny tokenizer is trained on: templates, contexts and element questions."""
    texts = [prefix_text(), OVERALL_INSTRUCTION, ELEMENT_INSTRUCTION, "0 1 2 3 4 5 6 7 8 9 .",
             f"Prompt ratings: {ratings_text(AlignItem('', Path(), '', [], '', '', ''))}"]
    for item in items:
        texts.append(suffix_text(item))
        texts.extend(suffix_text(item, e) for e in item.elements)
    return texts
