"""Images and prompts as tensors: PIL + numpy preprocessing (no torchvision), torch Datasets and their collate.

- :class:`ScoringSet` (val/test): the picture resized to the model's size (bicubic, as LAVIS'
  ``blip_image_eval``), the cleaned prompt's ids whole (no 32-token limit), the element spans.
- :class:`TrainingSet`: the cleaned prompt cut or padded to ``max_txt_len``, upstream's mask and token
  targets (:func:`.text.training_targets`), records whose elements are not all located left out, and
  (``augment``) random resized crops and mirrors drawn per (seed, epoch, record).

:func:`collate` pads ``input_ids`` / ``attention_mask`` to the longest record of a batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ntire_t2iqa.data.progress import progress_iter
from ntire_t2iqa_baselines.common.data import AlignItem

from .augment import random_resized_crop
from .model import IMAGE_MEAN, IMAGE_STD
from .text import MAX_WORDS, encode_prompt, encode_training_prompt, training_targets

_MEAN = np.asarray(IMAGE_MEAN, dtype=np.float32).reshape(3, 1, 1)
_STD = np.asarray(IMAGE_STD, dtype=np.float32).reshape(3, 1, 1)


def _as_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()


def load_image(path: Any, size: int) -> np.ndarray:
    """An RGB image resized (bicubic, as LAVIS' eval processor) to ``size x size``: ``(3, size, size)`` uint8."""
    with Image.open(path) as im:
        return _as_array(im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC))


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, 3, H, W)`` -> float, scaled to 0..1 and normalised with the BLIP means and stds."""
    x = images.float().div_(255.0)
    mean = torch.as_tensor(_MEAN, device=x.device)
    std = torch.as_tensor(_STD, device=x.device)
    return (x - mean) / std


def _decode_all(items: list[AlignItem], size: int, show: bool) -> np.ndarray:
    images = np.empty((len(items), 3, size, size), dtype=np.uint8)
    for i, it in progress_iter(enumerate(items), len(items), f"decoding {len(items)} images", show):
        images[i] = load_image(it.image_file, size)
    return images


class ScoringSet(Dataset):
    """Val/test items as ``(index, uint8 image, ids, attention)``; spans in ``self.encoded[i]["spans"]``."""

    def __init__(self, items: list[AlignItem], tokenizer: Any, image_size: int, max_words: int = MAX_WORDS,
                 max_tokens: int | None = None) -> None:
        self.items = items
        self.image_size = image_size
        self.pad_id = int(tokenizer.pad_token_id or 0)
        self.encoded = [encode_prompt(tokenizer, it.prompt, it.elements, max_words, max_tokens) for it in items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ids = torch.from_numpy(self.encoded[i]["input_ids"])
        return {"index": i, "image": torch.from_numpy(load_image(self.items[i].image_file, self.image_size)),
                "input_ids": ids, "attention_mask": torch.ones_like(ids)}


class TrainingSet(Dataset):
    """Training items as ``(index, uint8 image, ids, attention, token target, element mask, total)``.

    ``dropped``: the items left out because an element is not located in the prompt (upstream drops them).
    With ``cache=True`` every image is decoded once at the model's size (crops are then cut from that copy);
    otherwise each ``__getitem__`` reads its file and crops the full picture. ``epoch`` (set by the training
    loop) and ``seed`` pick the augmentation draws.
    """

    def __init__(self, items: list[AlignItem], tokenizer: Any, config: dict[str, Any], cache: bool = False,
                 show: bool = True, seed: int = 0) -> None:
        length, words = int(config["max_txt_len"]), int(config.get("max_words", MAX_WORDS))
        source = str(config.get("target_prompt", "raw"))
        self.items, self.dropped, self.encoded = [], [], []
        for it in items:
            targets = training_targets(tokenizer, it.prompt, it.element_scores or {}, float(it.total), length,
                                       source, words)
            if targets is None:
                self.dropped.append(it)
                continue
            self.items.append(it)
            self.encoded.append({**encode_training_prompt(tokenizer, it.prompt, length, words), **targets})
        self.image_size = int(config["image_size"])
        self.augment: dict[str, Any] = dict(config.get("augment") or {})
        self.pad_id = int(tokenizer.pad_token_id or 0)
        self.seed, self.epoch = seed, 0
        self.images = _decode_all(self.items, self.image_size, show) if cache else None

    def __len__(self) -> int:
        return len(self.items)

    def _image(self, i: int) -> np.ndarray:
        if not self.augment:
            if self.images is not None:
                return self.images[i]
            return load_image(self.items[i].image_file, self.image_size)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if self.images is not None:
            picture = Image.fromarray(self.images[i].transpose(1, 2, 0))
        else:
            with Image.open(self.items[i].image_file) as im:
                picture = im.convert("RGB")
        return _as_array(random_resized_crop(picture, self.image_size, rng, self.augment))

    def __getitem__(self, i: int) -> dict[str, Any]:
        enc = self.encoded[i]
        return {"index": i, "image": torch.from_numpy(np.ascontiguousarray(self._image(i))),
                "input_ids": torch.from_numpy(enc["input_ids"]),
                "attention_mask": torch.from_numpy(enc["attention_mask"]),
                "token_target": torch.from_numpy(enc["token_target"]),
                "element_mask": torch.from_numpy(enc["element_mask"]),
                "total": torch.tensor(float(self.items[i].total))}


def collate(batch: list[dict[str, Any]], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Stack a batch; ``input_ids`` padded with ``pad_id`` and ``attention_mask`` with 0 to the longest record."""
    longest = max(int(b["input_ids"].shape[0]) for b in batch)
    out: dict[str, torch.Tensor] = {}
    for key in batch[0]:
        if key in ("input_ids", "attention_mask"):
            fill = pad_id if key == "input_ids" else 0
            rows = [torch.nn.functional.pad(b[key], (0, longest - b[key].shape[0]), value=fill) for b in batch]
            out[key] = torch.stack(rows)
        elif key == "index":
            out[key] = torch.tensor([b[key] for b in batch])
        else:
            out[key] = torch.stack([b[key] for b in batch])
    return out
