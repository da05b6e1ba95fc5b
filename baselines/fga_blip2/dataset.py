"""Images and prompts as tensors: PIL + numpy preprocessing (no torchvision) and a torch Dataset."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from transformers import BertTokenizerFast

from baselines.common.data import AlignItem
from ntire_t2iqa.data.progress import progress_iter

from .model import IMAGE_MEAN, IMAGE_STD
from .tokenizer import encode_item

_MEAN = np.asarray(IMAGE_MEAN, dtype=np.float32).reshape(3, 1, 1)
_STD = np.asarray(IMAGE_STD, dtype=np.float32).reshape(3, 1, 1)


def load_image(path: Any, size: int) -> np.ndarray:
    """An RGB image resized (bicubic, as LAVIS' eval processor) to ``size x size``: ``(3, size, size)`` uint8."""
    with Image.open(path) as im:
        im = im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, 3, H, W)`` -> float, scaled to 0..1 and normalised with the BLIP means and stds."""
    x = images.float().div_(255.0)
    mean = torch.as_tensor(_MEAN, device=x.device)
    std = torch.as_tensor(_STD, device=x.device)
    return (x - mean) / std


class AlignDataset(Dataset):
    """Track 1 items as ``(index, uint8 image, ids, attention, token target, element mask, total)``.

    With ``cache=True`` every image is decoded once up front (small image sizes); otherwise
    each ``__getitem__`` reads its file (DataLoader workers parallelise that).
    """

    def __init__(self, items: list[AlignItem], tokenizer: BertTokenizerFast, image_size: int, max_len: int,
                 cache: bool = False, show: bool = True) -> None:
        self.items = items
        self.image_size = image_size
        self.encoded = [encode_item(tokenizer, it, max_len) for it in items]
        self.images: np.ndarray | None = None
        if cache:
            self.images = np.empty((len(items), 3, image_size, image_size), dtype=np.uint8)
            for i, it in progress_iter(enumerate(items), len(items), f"decoding {len(items)} images", show):
                self.images[i] = load_image(it.image_file, image_size)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        enc = self.encoded[i]
        image = self.images[i] if self.images is not None else load_image(self.items[i].image_file, self.image_size)
        total = self.items[i].total
        return {"index": i, "image": torch.from_numpy(np.ascontiguousarray(image)),
                "input_ids": torch.from_numpy(enc["input_ids"]),
                "attention_mask": torch.from_numpy(enc["attention_mask"]),
                "token_target": torch.from_numpy(enc["token_target"]),
                "element_mask": torch.from_numpy(enc["element_mask"]),
                "total": torch.tensor(float(total) if total is not None else float("nan"))}
