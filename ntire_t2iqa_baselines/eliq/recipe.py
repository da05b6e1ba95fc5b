"""ELIQ end to end: label-free records -> stage 2 tuning -> cached embeddings -> QQT -> submissions.

Run folder (``RUN/``)::

    config.json          the config, the seed and the track whose training images were used
    tokenizer/ base/     tiny config only: the offline tokenizer and the random-init Qwen2.5-VL
    adapter.safetensors  peft/      stage 2's LoRA (lvlm-stack's format; skipped on resume when present)
    embeddings.safetensors          stage 3's cache: (records x draws, 10, h) hidden states
    qqt.safetensors                 stages 4-5: gates, Quality Query Transformer, heads
    eliq.json                       label-free maps (score scales, element threshold), losses, seconds
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import load_file, save_file

from ntire_t2iqa.data.sources import TrackData, locate

from ..common.data import align_items, split_element, structure_items
from ..common.runtime import cpu_threads, resolve_device, seed_everything
from ..lvlm_stack.folds import image_spec, prepare_base, quiet_hub_bars
from ..lvlm_stack.model import Collator, ImageEncoder
from ..lvlm_stack.scoring import ADAPTER, load_adapter, save_adapter
from . import negatives as neg
from .instructions import ANSWERS, corpus, sequence_builder
from .qqt import QualityQueryTransformer, train_qqt
from .scoring import Maps, element_threshold, fit_maps, score_records
from .tune import Pictures, Record, build_scorer, training_embeddings, tune

STATE = "eliq.json"
QQT = "qqt.safetensors"
EMBEDDINGS = "embeddings.safetensors"


def records_of(data: Path | TrackData, track: str, split: str) -> list[Record]:
    """Label-free records of a split: image file, prompt, element keys; no score, vote, MOS or mask is read."""
    source = locate(data, track)
    if track == "align":
        return [Record(it.img_path, it.image_file, it.prompt, tuple(it.elements))
                for it in align_items(source, split, labels=False)]
    return [Record(it.name, it.image_file, it.prompt) for it in structure_items(source, split, (), labels=False)]


def _subset(records: list[Record], limit: int, seed: int) -> list[Record]:
    if not limit or len(records) <= limit:
        return records
    keep = np.sort(np.random.default_rng([seed, 77]).choice(len(records), limit, replace=False))
    return [records[i] for i in keep]


def _prepare(run: Path, cfg: dict[str, Any], track: str, records: list[Record], seed: int) -> None:
    run.mkdir(parents=True, exist_ok=True)
    saved = run / "config.json"
    meta = {**cfg, "_seed": seed, "_track": track}
    if saved.is_file():
        old = json.loads(saved.read_text())
        if old != meta:
            raise ValueError(f"{run} holds an eliq run with another config, seed or track; resume it with the same "
                             "--config, --seed and --track, or pass a new --out folder.")
    saved.write_text(json.dumps(meta, indent=1))
    elements = sorted({split_element(e)[0] for r in records for e in r.elements})
    with quiet_hub_bars():
        prepare_base(run, cfg, [], seed, texts=corpus([r.prompt for r in records], elements), extra_tokens=ANSWERS)


def save_qqt(model: QualityQueryTransformer, path: Path) -> None:
    """The scoring module's weights as safetensors."""
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(path))


def load_qqt(run: Path, cfg: dict[str, Any], hidden: int) -> QualityQueryTransformer:
    """The trained scoring module of a run."""
    q = cfg["qqt"]
    model = QualityQueryTransformer(hidden, q["width"], q["layers"], q["heads"], q.get("dropout", 0.0))
    model.load_state_dict(load_file(str(run / QQT)))
    return model.eval()


def train(data: Path | TrackData, out: Path, config: dict[str, Any], device: str = "cpu", seed: int = 0) -> Path:
    """All five stages on the training images and prompts of ``data``'s track (no label is read). Returns ``out``."""
    t0 = time.perf_counter()
    source = data if isinstance(data, TrackData) else locate(data, "align")
    track, run, dev = source.track, Path(out), resolve_device(device)
    records = _subset(records_of(source, track, "train"), config["tune"].get("max_images", 0), seed)
    _prepare(run, config, track, records, seed)
    seconds: dict[str, float] = {}
    with cpu_threads(config["tune"].get("cpu_threads"), dev):
        encoder = ImageEncoder(image_spec(config))
        pictures = Pictures(encoder, config["tune"].get("cache_images", False))
        pool = neg.PromptPool([neg.PromptRecord(r.prompt, r.elements) for r in records])
        scorer, tokenizer = build_scorer(run, config, dev)
        history: list[float] = []
        if (run / ADAPTER).is_file():
            load_adapter(scorer, run)
        else:
            history = tune(scorer, tokenizer, records, pictures, pool, config, dev, seed)
            save_adapter(scorer, run)
        seconds["stage2"] = time.perf_counter() - t0
        scorer.eval()
        collator = Collator(tokenizer, config["model"]["merge_size"], sequences=sequence_builder(config))
        if (run / EMBEDDINGS).is_file():
            cache = load_file(str(run / EMBEDDINGS))
            z, has_elements = cache["z"], cache["has_elements"]
        else:
            z, has_elements = training_embeddings(scorer, collator, records, pictures, pool, config, seed, dev)
            save_file({"z": z.contiguous(), "has_elements": has_elements}, str(run / EMBEDDINGS))
        seconds["stage3"] = time.perf_counter() - t0 - seconds["stage2"]
        seed_everything(seed)
        qqt, qqt_losses = train_qqt(z, config["qqt"], seed, has_elements)
        save_qqt(qqt, run / QQT)
        maps = fit_maps(qqt, z)
        if track == "align":
            maps.element = element_threshold(scorer, collator, qqt, records, pictures, pool, config, seed, dev)
        seconds["stages4_5"] = time.perf_counter() - t0 - seconds["stage2"] - seconds["stage3"]
    state = {"track": track, "n_images": len(records), "hidden": int(z.shape[-1]), "maps": maps.to_dict(),
             "stage2_loss": history, "qqt_loss": qqt_losses, "seconds": {k: round(v, 2) for k, v in seconds.items()}}
    (run / STATE).write_text(json.dumps(state, indent=1))
    return run


def run_state(weights: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, state) of a finished run folder, or a clear error."""
    weights = Path(weights)
    if not (weights / "config.json").is_file() or not (weights / STATE).is_file():
        raise FileNotFoundError(f"{weights} is not a finished eliq run folder (no config.json or {STATE}); pass the "
                                "--out folder of `baseline train eliq`, or run that command again to finish it.")
    return json.loads((weights / "config.json").read_text()), json.loads((weights / STATE).read_text())


def predict(data: Path | TrackData, split: str, weights: Path, device: str = "cpu", batch_size: int | None = None
            ) -> Any:
    """The split's submission content: Track 1 output.json records or the Track 2 output.pkl dict (empty masks)."""
    source = data if isinstance(data, TrackData) else locate(data, "align")
    cfg, state = run_state(weights)
    track = source.track
    if state["track"] != track:
        raise ValueError(f"{weights} was trained on {state['track']} training images; train eliq with "
                         f"--track {track} for {track} submissions.")
    dev = resolve_device(device)
    records = records_of(source, track, split)
    with cpu_threads(cfg["tune"].get("cpu_threads"), dev):
        scorer, tokenizer = build_scorer(Path(weights), cfg, dev)
        load_adapter(scorer, Path(weights))
        scorer.eval()
        collator = Collator(tokenizer, cfg["model"]["merge_size"], sequences=sequence_builder(cfg))
        qqt = load_qqt(Path(weights), cfg, state["hidden"])
        pictures = Pictures(ImageEncoder(image_spec(cfg)), False)
        batch = batch_size or cfg["embed"]["batch_images"]
        scores = score_records(scorer, collator, qqt, records, pictures, batch, dev, track == "align")
    maps = Maps.from_dict(state["maps"])
    calibration = _calibration(Path(weights), track)
    if track == "align":
        return [{"img_path": r.key, "total_score": maps.total(s["s_ali"], calibration),
                 "element_score": {e: maps.element_score(s["elements"][e]) for e in r.elements}}
                for r, s in zip(records, scores)]
    return {r.key: {"score": maps.structure(s["s_vis"], calibration), "pred_area": np.zeros((512, 512), np.uint8)}
            for r, s in zip(records, scores)}


def _calibration(run: Path, track: str) -> tuple[float, float] | None:
    """The optional monotonic linear calibration ``(a >= 0, b)`` of ``RUN/calibration_<track>.json``."""
    path = run / f"calibration_{track}.json"
    if not path.is_file():
        return None
    obj = json.loads(path.read_text())
    return float(obj["a"]), float(obj["b"])


__all__ = ["predict", "records_of", "run_state", "train"]
