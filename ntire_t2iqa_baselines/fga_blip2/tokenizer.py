"""Prompt tokenizer of FGA-BLIP2 (BERT WordPiece, lower-cased); prompt cleaning and element spans are in :mod:`.text`.

- The full config loads a local ``bert-base-uncased`` folder and adds LAVIS' ``[DEC]`` bos token
  (vocabulary 30523, as the official checkpoint's word embeddings).
- The tiny config builds a small WordPiece vocabulary offline from the training prompts: the
  special tokens, every character alone and as a ``##`` continuation (so no word is ever
  ``[UNK]``), then every whole word of the prompts and element texts.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from transformers import BertTokenizerFast

from ntire_t2iqa_baselines.common.data import AlignItem, split_element

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
