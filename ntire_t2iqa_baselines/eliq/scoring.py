"""Inference: s_vis and s_ali per image (and s_ali per element text), and the label-free maps to submitted values.

* Track 1: ``total_score = 1 + 4 sigmoid((s_ali - mid) / scale)``, ``mid`` halfway between the training
  images' s_ali with their own prompt and with a mismatched one, ``scale`` the spread of both; each
  element's score is ``sigmoid((s_ali(I, element text) - t) / scale_e)``, ``t`` the threshold that best
  separates the training images' own element texts from element texts borrowed from other prompts
  (balanced accuracy), so 0.5 falls on that threshold.
* Track 2: ``score = 1 + 4 sigmoid((s_vis - mid) / scale)`` from the training positives against the
  technical and aesthetic negatives.

All of these are monotonic, so SRCC is the raw scores'. An optional linear calibration ``a x + b``
(``a >= 0``, fitted on a small labelled split by :mod:`.calibrate`) is applied last when present.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from ..common.data import split_element
from ..lvlm_stack.model import Collator, Scorer
from . import negatives as neg
from .instructions import AES, ALI, TEC, ImageQueries, Query
from .qqt import QualityQueryTransformer, batch_scores
from .tune import Pictures, Record, hidden_states


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.clip(x, -60, 60))))


@dataclass
class Maps:
    """Label-free maps from raw scores to submitted values (see the module docstring)."""

    total_mid: float = 0.0
    total_scale: float = 1.0
    vis_mid: float = 0.0
    vis_scale: float = 1.0
    element: tuple[float, float] | None = None  # (threshold, scale)

    def total(self, s_ali: float, calibration: tuple[float, float] | None = None) -> float:
        """Track 1 total score in 1..5 (then the calibration, when given)."""
        t = 1.0 + 4.0 * _sigmoid((s_ali - self.total_mid) / self.total_scale)
        return float(calibration[0] * t + calibration[1]) if calibration else t

    def structure(self, s_vis: float, calibration: tuple[float, float] | None = None) -> float:
        """Track 2 score in 1..5 (then the calibration, when given)."""
        t = 1.0 + 4.0 * _sigmoid((s_vis - self.vis_mid) / self.vis_scale)
        return float(calibration[0] * t + calibration[1]) if calibration else t

    def element_score(self, s_ali: float) -> float:
        """An element's presence in 0..1; 0.5 at the label-free threshold."""
        if self.element is None:
            raise ValueError("this run has no element threshold (it was not trained on Track 1 images)")
        threshold, scale = self.element
        return _sigmoid((s_ali - threshold) / scale)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Maps:
        """Read :meth:`to_dict`'s output."""
        element = obj.get("element")
        return cls(obj["total_mid"], obj["total_scale"], obj["vis_mid"], obj["vis_scale"],
                   tuple(element) if element is not None else None)  # type: ignore[arg-type]


def _spread(*groups: np.ndarray) -> float:
    return float(max(np.concatenate(groups).std(), 1e-6))


def fit_maps(qqt: QualityQueryTransformer, z: torch.Tensor) -> Maps:
    """Total and structure maps from the cached training embeddings (positives against negatives)."""
    with torch.no_grad():
        s = {k: v.numpy().astype(np.float64) for k, v in batch_scores(qqt, z).items()}
    vis_neg = np.concatenate([s["s_vis_tec"], s["s_vis_aes"]])
    return Maps(total_mid=float((s["s_ali_pos"].mean() + s["s_ali_neg"].mean()) / 2),
                total_scale=_spread(s["s_ali_pos"], s["s_ali_neg"]),
                vis_mid=float((s["s_vis_pos"].mean() + vis_neg.mean()) / 2),
                vis_scale=_spread(s["s_vis_pos"], vis_neg))


def best_threshold(pos: np.ndarray, neg_: np.ndarray) -> float:
    """The cut that maximises balanced accuracy of ``x >= cut`` for ``pos`` against ``neg_`` (midpoint of ties)."""
    values = np.unique(np.concatenate([pos, neg_]))
    cuts = np.concatenate([[values[0] - 1.0], (values[1:] + values[:-1]) / 2, [values[-1] + 1.0]])
    acc = [(np.mean(pos >= c) + np.mean(neg_ < c)) / 2 for c in cuts]
    best = np.flatnonzero(np.isclose(acc, max(acc)))
    return float(cuts[best].mean())


def _raw_scores(qqt: QualityQueryTransformer, hidden: dict[Any, torch.Tensor], i: int, texts: list[Any]
                ) -> tuple[float, list[float]]:
    """(s_vis of image i, s_ali of each text key) from its hidden states."""
    tec, aes = hidden[(i, "tec")], hidden[(i, "aes")]
    z_ali = torch.stack([hidden[(i, t)] for t in texts])
    n = len(texts)
    with torch.no_grad():
        s_vis, s_ali = qqt(tec.expand(n, -1), aes.expand(n, -1), z_ali)
    return float(s_vis[0]), [float(v) for v in s_ali]


def _collect(scorer: Scorer, collator: Collator, examples: Iterator[ImageQueries], batch: int,
             device: torch.device) -> dict[Any, torch.Tensor]:
    return {key: h for key, h, _ in hidden_states(scorer, examples, collator, batch, device)}


def score_records(scorer: Scorer, collator: Collator, qqt: QualityQueryTransformer, records: list[Record],
                  pictures: Pictures, batch: int, device: torch.device, elements: bool) -> list[dict[str, Any]]:
    """Per record ``{"s_vis", "s_ali", "elements": {key: s_ali with the element's text}}``."""
    def examples() -> Iterator[ImageQueries]:
        for i, r in enumerate(records):
            qs = [Query(TEC, key=(i, "tec")), Query(AES, key=(i, "aes")), Query(ALI, r.prompt, key=(i, "ali"))]
            if elements:
                qs += [Query(ALI, split_element(e)[0], key=(i, ("el", e))) for e in r.elements]
            yield ImageQueries(*pictures.encoder.encode(pictures(r.image_file)), qs)

    hidden = _collect(scorer, collator, examples(), batch, device)
    out = []
    for i, r in enumerate(records):
        keys = ["ali"] + ([("el", e) for e in r.elements] if elements else [])
        s_vis, s_ali = _raw_scores(qqt, hidden, i, keys)
        out.append({"s_vis": s_vis, "s_ali": s_ali[0],
                    "elements": {e: v for e, v in zip(r.elements, s_ali[1:])} if elements else {}})
    return out


def element_threshold(scorer: Scorer, collator: Collator, qqt: QualityQueryTransformer, records: list[Record],
                      pictures: Pictures, pool: neg.PromptPool, cfg: dict[str, Any], seed: int,
                      device: torch.device) -> tuple[float, float] | None:
    """(threshold, scale) between training images' own element texts and borrowed ones; ``None`` without elements."""
    limit = cfg.get("threshold", {}).get("images", 200)
    index = [i for i, r in enumerate(records) if r.elements][:limit]
    if not index:
        return None
    rng = np.random.default_rng([seed, 31337])
    asked: dict[int, tuple[list[str], list[str]]] = {}
    for i in index:
        own = sorted({split_element(e)[0] for e in records[i].elements if split_element(e)[0]})
        asked[i] = (own, pool.borrowed_elements(i, rng, len(own)))

    def examples() -> Iterator[ImageQueries]:
        for i in index:
            own, borrowed = asked[i]
            qs = [Query(TEC, key=(i, "tec")), Query(AES, key=(i, "aes"))]
            qs += [Query(ALI, t, key=(i, ("own", t))) for t in own] + [Query(ALI, t, key=(i, ("other", t)))
                                                                       for t in borrowed]
            yield ImageQueries(*pictures.encoder.encode(pictures(records[i].image_file)), qs)

    hidden = _collect(scorer, collator, examples(), cfg["embed"]["batch_images"], device)
    pos, other = [], []
    for i in index:
        own, borrowed = asked[i]
        keys = [("own", t) for t in own] + [("other", t) for t in borrowed]
        if not keys:
            continue
        _, s = _raw_scores(qqt, hidden, i, keys)
        pos += s[:len(own)]
        other += s[len(own):]
    if not pos or not other:
        return None
    p, o = np.asarray(pos), np.asarray(other)
    return best_threshold(p, o), _spread(p, o)
