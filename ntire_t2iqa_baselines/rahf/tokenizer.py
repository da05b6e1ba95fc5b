"""Prompt tokenizers: AltCLIP's XLM-R tokenizer from a local folder, or a word-level one built offline.

Both prefix the prompt with ``"human artifact"`` (the official tag word), add ``<s>`` and
``</s>``, truncate and pad to ``max_length`` with the pad id (1, as XLM-R), and return a
``(B, max_length)`` LongTensor. The word-level tokenizer (tiny config) uses XLM-R's special
ids too (``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3) and is saved in the run folder.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import torch

PREFIX = "human artifact"
#: How to name the local AltCLIP folder, for messages.
ALTCLIP_HOW = ("set altclip_dir in the config: `baseline train rahf --config full --set altclip_dir=DIR`, "
               "or `python -m ntire_t2iqa_baselines.rahf.convert CKPT RUN --altclip DIR` for a checkpoint")
WORD_TOKENIZER_FILE = "word_tokenizer.json"
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
BOS, PAD, EOS, UNK = 0, 1, 2, 3
_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


class PromptTokenizer(Protocol):
    """What the model needs from a tokenizer."""

    vocab_size: int

    def __call__(self, prompts: list[str]) -> torch.Tensor: ...


def prefixed(prompt: str, prefix: str = PREFIX) -> str:
    """``"human artifact <prompt>"``."""
    return f"{prefix} {prompt}".strip()


class WordTokenizer:
    """Lower-cased words and punctuation -> ids; unknown words -> ``<unk>``."""

    def __init__(self, words: list[str], max_length: int):
        self.words = list(words)
        self.max_length = int(max_length)
        self.index = {w: i + len(SPECIALS) for i, w in enumerate(self.words)}
        self.vocab_size = len(SPECIALS) + len(self.words)

    @classmethod
    def build(cls, prompts: Iterable[str], max_length: int, min_count: int = 1) -> WordTokenizer:
        """A vocabulary of every word seen at least ``min_count`` times (the prefix included), sorted."""
        counts = Counter(w for p in prompts for w in _WORD.findall(prefixed(p).lower()))
        return cls(sorted(w for w, c in counts.items() if c >= min_count or w in PREFIX.split()), max_length)

    def encode(self, prompt: str) -> list[int]:
        """``<s> human artifact ... </s>`` ids, truncated to ``max_length`` (``</s>`` kept)."""
        ids = [self.index.get(w, UNK) for w in _WORD.findall(prefixed(prompt).lower())]
        return [BOS, *ids[: self.max_length - 2], EOS]

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        """Padded ``(B, max_length)`` ids."""
        out = torch.full((len(prompts), self.max_length), PAD, dtype=torch.long)
        for i, p in enumerate(prompts):
            ids = self.encode(p)
            out[i, : len(ids)] = torch.tensor(ids)
        return out

    def save(self, folder: Path) -> Path:
        """Write ``word_tokenizer.json`` into ``folder``."""
        path = Path(folder) / WORD_TOKENIZER_FILE
        path.write_text(json.dumps({"kind": "word", "specials": list(SPECIALS), "max_length": self.max_length,
                                    "words": self.words}))
        return path

    @classmethod
    def load(cls, folder: Path) -> WordTokenizer:
        """Read ``word_tokenizer.json`` from ``folder``."""
        path = Path(folder) / WORD_TOKENIZER_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the run folder has no word tokenizer (train it again)")
        data = json.loads(path.read_text())
        return cls(data["words"], data["max_length"])


class AltCLIPTokenizer:
    """AltCLIP's tokenizer (XLM-R) from a local folder, padded to ``max_length`` as the official processor."""

    def __init__(self, folder: Path, max_length: int):
        from transformers import AutoTokenizer

        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"AltCLIP tokenizer folder {folder} does not exist; point text.tokenizer_dir "
                                    "(or altclip_dir) at a local copy of BAAI/AltCLIP")
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.max_length = int(max_length)
        self.vocab_size = len(self.tokenizer)

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        """Padded ``(B, max_length)`` ids."""
        enc = self.tokenizer([prefixed(p) for p in prompts], padding="max_length", truncation=True,
                             max_length=self.max_length, return_tensors="pt")
        return enc["input_ids"]


def altclip_folder(config: dict[str, Any]) -> Path | None:
    """The local AltCLIP folder: the config's ``altclip_dir``, else ``None``."""
    value = config.get("altclip_dir")
    return Path(value).expanduser() if value else None


def load_tokenizer(config: dict[str, Any], run_dir: Path | None) -> PromptTokenizer:
    """The tokenizer a config names: ``word`` (from the run folder) or ``altclip`` (from the AltCLIP folder)."""
    text = config["text"]
    kind = text.get("tokenizer", "word")
    if kind == "word":
        if run_dir is None:
            raise FileNotFoundError("a word tokenizer lives in its run folder; none was given")
        return WordTokenizer.load(run_dir)
    if kind == "altclip":
        folder = text.get("tokenizer_dir") or altclip_folder(config)
        if folder is None:
            raise ValueError("the config uses AltCLIP's tokenizer but names no folder of a local copy of "
                             f"BAAI/AltCLIP (tokenizer files included): {ALTCLIP_HOW} (or set text.tokenizer_dir)")
        return AltCLIPTokenizer(Path(folder), int(text["max_length"]))
    raise ValueError(f"unknown text.tokenizer {kind!r}; use 'word' or 'altclip'")
