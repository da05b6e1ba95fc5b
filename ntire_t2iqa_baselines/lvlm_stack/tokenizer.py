"""An offline tokenizer for the tiny config (no model hub): byte-level BPE with Qwen's special tokens.

Digits are split one by one before BPE (as in Qwen's tokenizer), so ``"0"``..``"5"`` are
single tokens; byte-level fallback means any text encodes without unknown tokens.
The full config loads the real tokenizer from the local weights directory instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from .prompts import ELEMENT, OVERALL, PAD, SPECIAL_TOKENS


def build_tiny_tokenizer(texts: list[str], vocab_size: int = 640, extra_tokens: tuple[str, ...] = ()
                         ) -> PreTrainedTokenizerFast:
    """Train a small byte-level BPE on ``texts`` with Qwen's special tokens registered.

    ``extra_tokens``: words that must be single tokens (other baselines' answer words, e.g. ``high``/``low``),
    added as whole-word tokens (``yellow`` does not contain the token ``low``).
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    if extra_tokens:
        tok.add_tokens([AddedToken(t, single_word=True, normalized=False) for t in extra_tokens])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token="<|im_end|>",
                                   additional_special_tokens=[t for t in SPECIAL_TOKENS if t != PAD])
    for t in extra_tokens:
        single_token_id(fast, t)
    check_answer_tokens(fast)
    return fast


def load_tokenizer(path: str | Path) -> Any:
    """A tokenizer saved in a local directory (the tiny one, or Qwen's beside the weights)."""
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = PAD
    check_answer_tokens(tok)
    return tok


def single_token_id(tokenizer: Any, text: str) -> int:
    """The id of ``text``, which must encode to exactly one token."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        raise ValueError(f"the tokenizer splits {text!r} into {len(ids)} tokens; answers must be single tokens")
    return int(ids[0])


def check_answer_tokens(tokenizer: Any) -> None:
    """Every answer of both tasks and the image placeholder must be one token."""
    for task in (OVERALL, ELEMENT):
        for answer in task.answers:
            single_token_id(tokenizer, answer)
    for special in SPECIAL_TOKENS[1:]:
        single_token_id(tokenizer, special)
