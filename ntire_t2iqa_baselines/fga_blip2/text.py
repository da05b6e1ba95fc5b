"""Prompt text as EvalMuse's FGA-BLIP2 code reads it: cleaning, element spans, training targets, element scores.

Every rule here is upstream's (DYEvaLab/EvalMuse: LAVIS ``blip_caption`` text processor, ``eval.py``,
``process/element2mask.py``, ``AlignmentDataset``):

- **Cleaning** (:func:`clean_prompt`): lower-case; each of ``.!"()*#:;~`` becomes a space; runs of two or
  more whitespace characters become one space; outer spaces go; at most 50 space-separated words. Prompts
  that differ only in case or in those characters read the same.
- **Scoring** (:func:`encode_prompt`): the cleaned prompt is tokenized whole (no 32-token limit), so an
  element past the 32nd token gets a real score.
- **Element text** (:func:`element_text`): the key up to its last ``(``, as upstream's
  ``key.rpartition("(")[0]``: ``"cat (animal)"`` -> ``"cat "``. A key with no ``(`` has no text, so it is
  never located and scores 0, as upstream. The element text is tokenized as it is (not cleaned), so an
  element that keeps one of the cleaned characters (``"hat (with a brim) (object)"``) is not found either.
- **Location** (:func:`locate`): the first place after ``[CLS]`` where the element's token ids occur in the
  prompt's ids; not found -> no span, element score 0.
- **Training targets** (:func:`training_targets`): upstream locates the elements in the tokens of the *raw*
  prompt (``element2mask.py`` tokenizes ``item["prompt"]`` before any cleaning) while the network reads the
  cleaned one; a record with an element that is not located is dropped. Targets are cut or padded to the text
  length (32), then position 0 (``[CLS]``) gets mask 1 and token target ``(total - 1) / 4``. ``source="cleaned"``
  locates in the cleaned prompt instead (positions then agree with what the network reads).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

#: The characters upstream's text processor turns into spaces.
CLEANED_CHARACTERS = '.!"()*#:;~'
MAX_WORDS = 50
_CLEANED = re.compile("[" + re.escape(CLEANED_CHARACTERS) + "]")
_WHITESPACE_RUN = re.compile(r"\s{2,}")


def clean_prompt(prompt: str, max_words: int = MAX_WORDS) -> str:
    """A prompt as upstream's ``blip_caption`` processor gives it to the tokenizer (see the module docstring)."""
    text = _WHITESPACE_RUN.sub(" ", _CLEANED.sub(" ", prompt.lower()))
    text = text.rstrip("\n").strip(" ")
    words = text.split(" ")
    return " ".join(words[:max_words]) if len(words) > max_words else text


def element_text(key: str) -> str:
    """The text of an element key as upstream takes it: everything before the last ``(`` (``""`` when none)."""
    head, sep, _ = key.rpartition("(")
    return head if sep else ""


def element_ids(tokenizer: Any, key: str) -> list[int]:
    """The token ids of an element's text (no special tokens); empty when the key has no text."""
    text = element_text(key)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def locate(prompt_ids: Sequence[int], ids: Sequence[int]) -> tuple[int, int] | None:
    """``(start, end)`` of the first occurrence of ``ids`` in ``prompt_ids`` after position 0, else ``None``."""
    n = len(ids)
    if n == 0:
        return None
    target = list(ids)
    for start in range(1, len(prompt_ids) - n + 1):
        if list(prompt_ids[start:start + n]) == target:
            return start, start + n
    return None


def encode_prompt(tokenizer: Any, prompt: str, elements: Sequence[str], max_words: int = MAX_WORDS,
                  max_tokens: int | None = None) -> dict[str, np.ndarray]:
    """Scoring input of one record: the cleaned prompt's ids (whole, unpadded) and each element's span.

    ``spans[j] = (-1, -1)`` where element ``j`` is not located (it scores 0). ``max_tokens``: the Q-Former's
    position table; a longer prompt (never at 50 words with upstream's 512 positions, possible with a small
    config's table and vocabulary) keeps its first ``max_tokens - 1`` tokens and ``[SEP]``.
    """
    ids = list(tokenizer(clean_prompt(prompt, max_words))["input_ids"])
    if max_tokens is not None and len(ids) > max_tokens:
        ids = ids[:max_tokens - 1] + ids[-1:]
    spans = np.full((len(elements), 2), -1, dtype=np.int64)
    for j, key in enumerate(elements):
        span = locate(ids, element_ids(tokenizer, key))
        if span is not None:
            spans[j] = span
    return {"input_ids": np.asarray(ids, dtype=np.int64), "spans": spans}


def training_targets(tokenizer: Any, prompt: str, element_scores: dict[str, float], total: float, length: int,
                     source: str = "raw", max_words: int = MAX_WORDS) -> dict[str, np.ndarray] | None:
    """Element mask and token targets of one training record (``length`` positions), or ``None`` to drop it.

    A token covered by several elements gets the mean of their scores and mask 1; position 0 gets mask 1
    and target ``(total - 1) / 4``. ``source``: ``"raw"`` (upstream: the prompt as written) or ``"cleaned"``.
    """
    if source not in ("raw", "cleaned"):
        raise ValueError(f"target_prompt must be 'raw' or 'cleaned', not {source!r}")
    text = prompt if source == "raw" else clean_prompt(prompt, max_words)
    ids = list(tokenizer(text)["input_ids"])
    covered = np.zeros(len(ids), dtype=np.float64)
    summed = np.zeros(len(ids), dtype=np.float64)
    for key, value in element_scores.items():
        span = locate(ids, element_ids(tokenizer, key))
        if span is None:
            return None
        covered[span[0]:span[1]] += 1
        summed[span[0]:span[1]] += value
    token = np.where(covered > 0, summed / np.maximum(covered, 1), 0.0)
    mask = (covered > 0).astype(np.float64)
    out_mask = np.zeros(length, dtype=np.float32)
    out_token = np.zeros(length, dtype=np.float32)
    n = min(length, len(ids))
    out_mask[:n], out_token[:n] = mask[:n], token[:n]
    out_mask[0], out_token[0] = 1.0, (total - 1.0) / 4.0
    return {"element_mask": out_mask, "token_target": out_token}


def encode_training_prompt(tokenizer: Any, prompt: str, length: int, max_words: int = MAX_WORDS
                           ) -> dict[str, np.ndarray]:
    """The network's training input: the cleaned prompt cut or padded to ``length`` tokens, and its attention."""
    enc = tokenizer(clean_prompt(prompt, max_words), padding="max_length", truncation=True, max_length=length)
    return {"input_ids": np.asarray(enc["input_ids"], dtype=np.int64),
            "attention_mask": np.asarray(enc["attention_mask"], dtype=np.int64)}


def element_scores(token_scores: np.ndarray, elements: Sequence[str], spans: np.ndarray) -> dict[str, float]:
    """Element -> mean token match probability over its span; 0 where the element was not located."""
    out = {}
    for key, (a, b) in zip(elements, spans.tolist()):
        out[key] = float(np.mean(token_scores[a:b], dtype=np.float64)) if a >= 0 and b > a else 0.0
    return out
