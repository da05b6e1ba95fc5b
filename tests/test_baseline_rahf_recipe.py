"""RAHF's upstream recipe pieces: augmentation (PIL/NumPy), the two training phases, precision and score settings.

Augmentation is checked against independent arithmetic (PIL's enhancers are blends with a
grey or mean image; a crop moves picture and target together); the phases by the exact step at
which each pass ends on a micro config.
"""

from __future__ import annotations

import colorsys
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from helpers import rahf_micro  # noqa: E402
from PIL import Image  # noqa: E402

from ntire_t2iqa.data import SynthSize  # noqa: E402
from ntire_t2iqa_baselines.common.data import StructureItem  # noqa: E402
from ntire_t2iqa_baselines.common.runtime import load_state_dict  # noqa: E402
from ntire_t2iqa_baselines.rahf import CONFIGS, train  # noqa: E402
from ntire_t2iqa_baselines.rahf.augment import adjust_hue, augment_item, color_jitter, crop_box, jpeg_round_trip  # noqa: E402
from ntire_t2iqa_baselines.rahf.inputs import StructureSet, precision_context  # noqa: E402
from ntire_t2iqa_baselines.rahf.predict import load_run, predict_items, submitted_score  # noqa: E402
from ntire_t2iqa_baselines.rahf.train import load_run_state, phases, schedule  # noqa: E402

MICRO: dict[str, Any] = rahf_micro(
    {"total_steps": 20, "batch_size": 8, "accumulate": 1, "unfrozen_batch_size": 4, "unfrozen_accumulate": 3,
     "lr": 0.003, "freeze_fraction": 0.35, "augment": {"crop": 0.5, "color_jpeg": 0.1, "grayscale": 0.1},
     "cache_images": True, "cpu_threads": 1})


@pytest.fixture(scope="module")
def data(synth_challenge: Callable[..., Path]) -> Path:
    return synth_challenge(4, SynthSize((0, 4, 4), 1, (48, 4, 4)), ("structure",))


def _picture(seed: int = 0, size: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(30, 226, (size, size, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------------ augmentation
def test_colour_jitter_factors_follow_upstream_ranges_and_pil_blends() -> None:
    img = Image.fromarray(_picture(1))
    x = np.asarray(img, dtype=np.float64)
    for seed in range(5):  # one draw of each factor, the four applied in a random order
        out = np.asarray(color_jitter(img, np.random.default_rng(seed)), dtype=np.float64)
        assert out.shape == x.shape and np.abs(out - x).mean() < 40
    # each enhancer is a blend with a reference image: brightness with black, saturation with the grey version
    from PIL import ImageEnhance

    bright = np.asarray(ImageEnhance.Brightness(img).enhance(1.05), dtype=np.float64)
    assert np.abs(bright - np.clip(np.round(x * 1.05), 0, 255)).max() <= 1
    grey = np.asarray(img.convert("L"), dtype=np.float64)[..., None]
    sat = np.asarray(ImageEnhance.Color(img).enhance(0.8), dtype=np.float64)
    assert np.abs(sat - np.clip(grey + 0.8 * (x - grey), 0, 255)).max() <= 1.01


def test_hue_shift_rotates_hue_by_the_fraction_asked() -> None:
    img = Image.new("RGB", (4, 4), (200, 60, 60))  # a red: hue 0
    for shift in (0.02, -0.025):
        r, g, b = (c / 255 for c in adjust_hue(img, shift).getpixel((0, 0)))
        hue = colorsys.rgb_to_hsv(r, g, b)[0]
        want = int(shift * 255) % 256 / 255  # whole 8-bit steps, wrapping round the circle
        assert min(abs(hue - want), 1 - abs(hue - want)) < 0.01, (shift, hue, want)


def test_jpeg_noise_quality_is_drawn_from_70_to_100() -> None:
    y, x = np.mgrid[0:48, 0:48]
    img = Image.fromarray(np.stack([x * 5, y * 5, (x + y) * 2], axis=-1).astype(np.uint8))  # smooth gradients
    x = np.asarray(img, dtype=np.float64)
    for seed in range(3):
        out = np.asarray(jpeg_round_trip(img, np.random.default_rng(seed)), dtype=np.float64)
        psnr = 10 * np.log10(255**2 / np.mean((out - x) ** 2))
        assert 25 < psnr < 70 and out.shape == x.shape
    qualities = {int(np.random.default_rng(s).integers(70, 101)) for s in range(300)}
    assert min(qualities) == 70 and max(qualities) == 100


def test_crop_moves_picture_and_target_together() -> None:
    size, target_size = 64, 32
    picture = np.zeros((size, size, 3), np.uint8)
    picture[:, : size // 2] = (250, 10, 10)  # the left half is red, and so is the target
    target = np.zeros((512, 512), np.float32)
    target[:, :256] = 1.0
    boxes = [crop_box(size, size, np.random.default_rng(s)) for s in range(200)]
    for top, left, ch, cw in boxes:
        assert int(0.8 * size) <= ch <= size and int(0.8 * size) <= cw <= size
        assert 0 <= top <= size - ch and 0 <= left <= size - cw
    for seed in range(6):
        out, m = augment_item(picture, target, {"crop": 1.0}, np.random.default_rng(seed), target_size)
        assert out.shape == picture.shape and m.shape == (target_size, target_size)
        red = out[..., 0] > 128
        red_small = np.asarray(Image.fromarray(red.astype(np.uint8) * 255).resize((target_size,) * 2)) > 128
        marked = m > 0.5
        assert (red_small & marked).sum() / (red_small | marked).sum() > 0.9
        rng = np.random.default_rng(seed)
        rng.random()  # augment_item's first draw: whether to crop
        top, left, ch, cw = crop_box(size, size, rng)
        assert abs(red.mean() - np.clip((size // 2 - left) / cw, 0, 1)) < 0.03  # the red part of the window


def test_probabilities_and_determinism_of_the_per_image_draws() -> None:
    picture = _picture(3, 24)
    cfg = {"crop": 0.5, "color_jpeg": 0.1, "grayscale": 0.1}
    gray = 0
    for seed in range(400):
        out, _ = augment_item(picture, None, cfg, np.random.default_rng([7, seed]), 16)
        gray += int(np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2]))
    assert abs(gray / 400 - 0.1) < 4 * np.sqrt(0.1 * 0.9 / 400)
    items = [StructureItem(f"x{i}", Path("unused"), "p", 3.0, np.zeros((512, 512), np.uint8)) for i in range(2)]
    ds = StructureSet(items, 24, 16, target="binary", augment=cfg, seed=5)
    ds.cache = [torch.from_numpy(_picture(i, 24)).permute(2, 0, 1).contiguous() for i in range(2)]
    first = [ds[i][0] for i in range(2)]
    assert all(torch.equal(a, ds[i][0]) for i, a in enumerate(first))  # the same (seed, epoch, index): the same
    changed = []
    for epoch in range(1, 6):
        ds.epoch = epoch
        changed.append(not torch.equal(ds[0][0], first[0]))
    assert any(changed)


# ------------------------------------------------------------------------------------------------ training phases
def test_full_config_follows_upstream_recipe() -> None:
    full = json.loads(Path(CONFIGS["full"]).read_text())
    t = full["train"]
    assert phases(t) == ((8, 32), (1, 256))  # 256 images per step in both phases, batch 1 once unfrozen
    assert schedule(10_000, t) == (2000, 1000)
    assert (t["precision"], full["infer"]["precision"], full["infer"]["score"]) == ("fp32", "fp32", "raw")
    assert t["augment"] == {"crop": 0.5, "color_jpeg": 0.1, "grayscale": 0.1}
    assert precision_context(torch.device("cpu"), "bf16").__class__.__name__ == "nullcontext"
    with pytest.raises(ValueError, match="precision"):
        precision_context(torch.device("cpu"), "fp16")
    assert submitted_score(0.25, "raw") == 0.25 and submitted_score(0.25, "mos") == 2.0
    with pytest.raises(ValueError, match="infer.score"):
        submitted_score(0.25, "percent")


def test_batch_changes_when_the_encoders_unfreeze_and_resume_is_exact(data: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """48 images: 6 steps a pass at 8 x 1; the encoders unfreeze at step 7, ending pass 2 there; then 4 x 3."""
    straight = train(data, tmp_path / "straight", MICRO, "cpu", 0, progress=False)
    history = load_run_state(straight)["extra"]["history"]
    assert [h["steps"] for h in history] == [6, 7, 11, 15, 19, 20]
    rahf_train = importlib.import_module("ntire_t2iqa_baselines.rahf.train")
    real_save = rahf_train.save_checkpoint

    def stop_after_pass_2(*args: Any, **kwargs: Any) -> None:
        real_save(*args, **kwargs)
        if kwargs["extra"]["step"] == 7:
            raise KeyboardInterrupt

    monkeypatch.setattr(rahf_train, "save_checkpoint", stop_after_pass_2)
    with pytest.raises(KeyboardInterrupt):
        train(data, tmp_path / "resumed", MICRO, "cpu", 0, progress=False)
    monkeypatch.setattr(rahf_train, "save_checkpoint", real_save)
    train(data, tmp_path / "resumed", MICRO, "cpu", 0, progress=False)
    a, b = load_state_dict(straight), load_state_dict(tmp_path / "resumed")
    assert all(torch.equal(a[k], b[k]) for k in a)
    frozen = train(data, tmp_path / "frozen", {**MICRO, "train": {**MICRO["train"], "total_steps": 7,
                                                                 "freeze_fraction": 1.0}}, "cpu", 0, progress=False)
    init = load_state_dict(frozen)
    assert not any(torch.equal(init[k], a[k]) for k in a if k.startswith("vision.encoder."))  # trained after 7
    # while frozen, the encoders keep their initial (seeded) weights
    torch.manual_seed(0)
    from ntire_t2iqa_baselines.rahf.model import build_model

    fresh = build_model(json.loads((frozen / "config.json").read_text())).state_dict()
    assert all(torch.equal(init[k], fresh[k]) for k in init if k.startswith(("vision.", "text_embeddings.")))


def test_mos_score_setting_maps_the_raw_sigmoid(data: Path, tmp_path: Path) -> None:
    run = train(data, tmp_path / "run", {**MICRO, "train": {**MICRO["train"], "total_steps": 2}}, "cpu", 0,
                progress=False)
    model, tokenizer, config = load_run(run)
    from ntire_t2iqa_baselines.common.data import structure_items

    items = structure_items(data, "val")
    raw = predict_items(model, tokenizer, config, items, progress=False)
    mos = predict_items(model, tokenizer, {**config, "infer": {"score": "mos"}}, items, progress=False)
    for name, rec in raw.items():
        assert 0.0 < rec["score"] < 1.0
        assert mos[name]["score"] == pytest.approx(rec["score"] * 4 + 1, abs=1e-9)
        assert np.array_equal(mos[name]["pred_area"], rec["pred_area"])
