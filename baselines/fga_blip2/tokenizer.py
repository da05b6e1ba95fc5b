"""Prompt tokenizer (BERT WordPiece, lower-cased) and the element <-> token-span bookkeeping of FGA-BLIP2.

- The full config loads a local ``bert-base-uncased`` folder and adds LAVIS' ``[DEC]`` bos token
  (vocabulary 30523, as the official checkpoint's word embeddings).
- The tiny config builds a small WordPiece vocabulary offline from the training prompts: the
  special tokens, every character alone and as a ``##`` continuation (so no word is ever
  ``[UNK]``), then every whole word of the prompts and element texts.

An element's tokens are found the way the EvalMuse scripts do: tokenize the element text
(the key without its `` (category)`` suffix), drop ``[CLS]``/``[SEP]``, and take the first
place where that id sequence occurs in the prompt's ids (after ``[CLS]``); not found -> no span.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from transformers import BertTokenizerFast

from baselines.common.data import AlignItem, split_element

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
TOKENIZER_DIR = "tokenizer"
_WORD = re.compile(r"\w+|[^\w\s]")


def build_vocab(texts: Iterable[str]) -> list[str]:
    """Specials, characters (alone and ``##``), then the sorted whole words of ``texts`` (lower-cased)."""
    chars = set(string.ascii_lowercase + string.digits + string.punctuation)
    words: set[str] = set()
    for text in texts:
        for w in _WORD.findall(text.lower()):
            words.add(w)
            chars.update(w)
    chars_sorted = sorted(chars)
    vocab = list(SPECIALS) + chars_sorted + [f"##{c}" for c in chars_sorted]
    seen = set(vocab)
    vocab += [w for w in sorted(words) if w not in seen]
    return vocab


def build_tokenizer(items: list[AlignItem], out_dir: Path) -> BertTokenizerFast:
    """A WordPiece tokenizer from the training prompts and element texts, saved under ``out_dir``."""
    texts = [it.prompt for it in items] + [split_element(k)[0] for it in items for k in it.elements]
    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = build_vocab(texts)
    # transformers 5 takes ``vocab`` (a dict or a path); an unknown ``vocab_file`` would be ignored silently
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    tok.save_pretrained(str(out_dir))
    (out_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return _checked(tok, out_dir)


def _checked(tok: BertTokenizerFast, source: Path) -> BertTokenizerFast:
    """Refuse a tokenizer that lost its vocabulary (every word would become [UNK])."""
    if len(tok) <= len(SPECIALS) or tok.convert_tokens_to_ids("a") == tok.unk_token_id:
        raise ValueError(f"the tokenizer from {source} has {len(tok)} tokens and no plain words; "
                         "its vocabulary did not load")
    return tok


def load_tokenizer(path: str | Path, add_dec: bool = False) -> BertTokenizerFast:
    """A tokenizer from a local folder (never the hub); ``add_dec`` adds LAVIS' ``[DEC]`` bos token."""
    folder = Path(path)
    if not (folder / "vocab.txt").is_file() and not (folder / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{folder} holds no tokenizer (vocab.txt or tokenizer.json); for the full config "
                                "put bert-base-uncased's files there (vocab.txt, tokenizer_config.json)")
    tok = _checked(BertTokenizerFast.from_pretrained(str(folder), local_files_only=True), folder)
    if add_dec and "[DEC]" not in tok.get_vocab():
        tok.add_special_tokens({"bos_token": "[DEC]"})
    return tok


def tokenizer_for_run(config: dict[str, Any], run_dir: Path, items: list[AlignItem] | None = None
                      ) -> BertTokenizerFast:
    """The run's tokenizer: its saved copy, else the config's local folder, else (tiny) one built from ``items``."""
    saved = run_dir / TOKENIZER_DIR
    if (saved / "vocab.txt").is_file():
        return load_tokenizer(saved)
    source = config.get("tokenizer", "build")
    if source == "build":
        if items is None:
            raise FileNotFoundError(f"{saved} holds no tokenizer; train the run first")
        return build_tokenizer(items, saved)
    tok = load_tokenizer(source, add_dec=config.get("add_dec_token", True))
    tok.save_pretrained(str(saved))
    return tok


def element_span(tokenizer: BertTokenizerFast, prompt_ids: list[int], element: str) -> tuple[int, int] | None:
    """``(start, end)`` of the element text's first occurrence in ``prompt_ids`` (after [CLS]), else ``None``."""
    ids = tokenizer(split_element(element)[0], add_special_tokens=False)["input_ids"]
    n = len(ids)
    if n == 0:
        return None
    for i in range(1, len(prompt_ids) - n + 1):
        if prompt_ids[i:i + n] == ids:
            return i, i + n
    return None


def encode_item(tokenizer: BertTokenizerFast, item: AlignItem, max_len: int) -> dict[str, np.ndarray]:
    """Padded ids, attention mask, element spans and (train) token targets and element mask of one item.

    Token targets follow EvalMuse's ``element2mask``: a token covered by several elements gets the
    mean of their scores; the element mask is 1 on every token of a located element.
    """
    enc = tokenizer(item.prompt, padding="max_length", truncation=True, max_length=max_len)
    ids = list(enc["input_ids"])
    spans = np.full((len(item.elements), 2), -1, dtype=np.int64)
    total = np.zeros(max_len, dtype=np.float32)
    count = np.zeros(max_len, dtype=np.float32)
    for j, key in enumerate(item.elements):
        span = element_span(tokenizer, ids, key)
        if span is None:
            continue
        spans[j] = span
        if item.element_scores is not None:
            total[span[0]:span[1]] += item.element_scores[key]
            count[span[0]:span[1]] += 1
    element_mask = (count > 0).astype(np.float32)
    token_target = np.where(count > 0, total / np.maximum(count, 1), 0).astype(np.float32)
    return {"input_ids": np.asarray(ids, dtype=np.int64),
            "attention_mask": np.asarray(enc["attention_mask"], dtype=np.int64),
            "spans": spans, "token_target": token_target, "element_mask": element_mask}


def element_scores(token_scores: np.ndarray, elements: list[str], spans: np.ndarray) -> dict[str, float]:
    """Element -> mean token match probability over its span; 0 where the element was not located."""
    out = {}
    for key, (a, b) in zip(elements, spans.tolist()):
        out[key] = float(token_scores[a:b].mean()) if a >= 0 and b > a else 0.0
    return out
