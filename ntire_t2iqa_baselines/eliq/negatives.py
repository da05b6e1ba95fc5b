"""Stage 1: label-free negatives built from a training image and its prompt only.

* :func:`technical`: repeated JPEG compression at low quality, then Gaussian noise.
* :func:`aesthetic`: colour and composition degradations that need no generator (a colour cast,
  desaturation, a contrast collapse, under-exposure, an off-centre crop), two of them at a time.
* :func:`alignment_prompt`: a mismatched prompt for an image: another record's prompt, or the image's
  prompt with one element swapped for an element of the same category from another prompt.

Every function takes a :class:`numpy.random.Generator`, so a negative is a function of its seed.
Nothing here reads a score, vote, MOS, mask or flag: only pixels and prompt text.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..common.data import split_element


def jpeg_repeat(image: Image.Image, quality: int, rounds: int) -> Image.Image:
    """``image`` saved and re-read as JPEG ``rounds`` times at ``quality`` (blocking, lost detail)."""
    out = image.convert("RGB")
    for _ in range(rounds):
        buf = io.BytesIO()
        out.save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        with Image.open(buf) as im:
            out = im.convert("RGB")
    return out


def gaussian_noise(image: Image.Image, sigma: float, rng: np.random.Generator) -> Image.Image:
    """``image`` plus i.i.d. Gaussian noise of standard deviation ``sigma`` (0..255 units), clipped."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float32)
    arr = arr + rng.normal(0.0, sigma, arr.shape).astype(np.float32)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))


def technical(image: Image.Image, rng: np.random.Generator, quality: tuple[int, int] = (5, 20),
              rounds: tuple[int, int] = (2, 4), sigma: tuple[float, float] = (8.0, 24.0)) -> Image.Image:
    """The technical negative: repeated JPEG compression (quality and rounds drawn), then Gaussian noise."""
    q = int(rng.integers(quality[0], quality[1] + 1))
    n = int(rng.integers(rounds[0], rounds[1] + 1))
    return gaussian_noise(jpeg_repeat(image, q, n), float(rng.uniform(*sigma)), rng)


# ---------------------------------------------------------------------------------------------- aesthetic
def colour_cast(arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Strong tint: one channel raised, another lowered."""
    gains = np.ones(3, np.float32)
    up, down = rng.choice(3, 2, replace=False)
    gains[up], gains[down] = rng.uniform(1.3, 1.6), rng.uniform(0.45, 0.7)
    return arr * gains


def desaturate(arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Most of the colour removed (blend towards the luma)."""
    grey = arr @ np.asarray([0.299, 0.587, 0.114], np.float32)
    t = rng.uniform(0.75, 1.0)
    return (1 - t) * arr + t * grey[..., None]


def contrast_collapse(arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Contrast pressed towards the mean grey (a washed-out picture)."""
    t = rng.uniform(0.25, 0.45)
    return arr.mean() + t * (arr - arr.mean())


def underexpose(arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dark, muddy picture (gain and gamma)."""
    return 255.0 * (arr / 255.0) ** rng.uniform(1.8, 2.6) * rng.uniform(0.55, 0.8)


def off_centre_crop(arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A corner crop of 45-65 % of each side, scaled back to the full size (the subject cut off)."""
    h, w = arr.shape[:2]
    f = rng.uniform(0.45, 0.65)
    ch, cw = max(1, int(h * f)), max(1, int(w * f))
    y = 0 if rng.random() < 0.5 else h - ch
    x = 0 if rng.random() < 0.5 else w - cw
    crop = Image.fromarray(np.clip(arr[y:y + ch, x:x + cw], 0, 255).astype(np.uint8))
    return np.asarray(crop.resize((w, h), Image.BILINEAR), dtype=np.float32)


AESTHETIC_OPS = {"colour_cast": colour_cast, "desaturate": desaturate, "contrast_collapse": contrast_collapse,
                 "underexpose": underexpose, "off_centre_crop": off_centre_crop}


def aesthetic(image: Image.Image, rng: np.random.Generator, ops: tuple[str, ...] = tuple(AESTHETIC_OPS),
              n_ops: int = 2) -> Image.Image:
    """The aesthetic negative: ``n_ops`` of ``ops`` (drawn without repetition) applied in turn."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float32)
    for name in rng.choice(list(ops), min(n_ops, len(ops)), replace=False):
        arr = AESTHETIC_OPS[str(name)](arr, rng)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))


# ---------------------------------------------------------------------------------------------- alignment
@dataclass(frozen=True)
class PromptRecord:
    """What the alignment negatives may read of a training record: its prompt and element keys."""

    prompt: str
    elements: tuple[str, ...] = ()


def mentions(prompt: str, text: str) -> bool:
    """Whether ``text`` occurs in ``prompt`` as whole words (case-insensitive)."""
    return re.search(rf"(?<!\w){re.escape(text.lower())}(?!\w)", prompt.lower()) is not None


class PromptPool:
    """The training prompts and their element texts, indexed once, for drawing mismatched prompts."""

    TRIES = 32

    def __init__(self, records: list[PromptRecord]):
        self.records = records
        names: dict[str, set[str]] = {}
        for r in records:
            for e in r.elements:
                name, category = split_element(e)
                if name:
                    names.setdefault(category, set()).add(name)
        self.by_category = {c: sorted(v) for c, v in sorted(names.items())}
        self.all_names = sorted({n for v in names.values() for n in v})

    def _foreign(self, index: int, pool: list[str], rng: np.random.Generator) -> str | None:
        """A name of ``pool`` that is neither an element of record ``index`` nor named in its prompt."""
        own = self.records[index]
        own_names = {split_element(e)[0].lower() for e in own.elements}
        for _ in range(self.TRIES if pool else 0):
            name = pool[int(rng.integers(len(pool)))]
            if name.lower() not in own_names and not mentions(own.prompt, name):
                return name
        return None

    def element_swap(self, index: int, rng: np.random.Generator) -> str | None:
        """The prompt with one of its elements replaced by a same-category element of other prompts.

        The borrowed element is neither one of the record's elements nor named in its prompt; ``None``
        when no element of the prompt can be swapped.
        """
        own = self.records[index]
        for j in rng.permutation(len(own.elements)).tolist():
            name, category = split_element(own.elements[j])
            if not name or not mentions(own.prompt, name):
                continue
            other = self._foreign(index, self.by_category.get(category, []), rng)
            if other is None:
                continue
            pattern = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)", re.IGNORECASE)
            return pattern.sub(other.replace("\\", "\\\\"), own.prompt, count=1)
        return None

    def other_prompt(self, index: int, rng: np.random.Generator) -> str:
        """Another record's prompt (never one equal to this record's prompt)."""
        own = self.records[index].prompt
        for _ in range(self.TRIES):
            other = self.records[int(rng.integers(len(self.records)))].prompt
            if other != own:
                return other
        candidates = [r.prompt for r in self.records if r.prompt != own]
        if not candidates:
            raise ValueError("alignment negatives need at least two different prompts in the training set")
        return candidates[int(rng.integers(len(candidates)))]

    def alignment_prompt(self, index: int, rng: np.random.Generator, swap_share: float = 0.5) -> str:
        """A mismatched prompt for record ``index``: an element swap with probability ``swap_share``
        (when the record has a swappable element), otherwise another record's prompt."""
        if swap_share and rng.random() < swap_share:
            swapped = self.element_swap(index, rng)
            if swapped is not None and swapped != self.records[index].prompt:
                return swapped
        return self.other_prompt(index, rng)

    def borrowed_elements(self, index: int, rng: np.random.Generator, n: int) -> list[str]:
        """Up to ``n`` element texts of other prompts that record ``index`` neither lists nor names."""
        out: list[str] = []
        for _ in range(n):
            name = self._foreign(index, self.all_names, rng)
            if name is not None and name not in out:
                out.append(name)
        return out
