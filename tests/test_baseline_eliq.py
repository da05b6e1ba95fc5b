"""eliq: negatives against independent statistics, gate/QQT shapes, loss values by hand, the threshold,
and the label-free proof (same weights and predictions when every training label is garbage)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from PIL import Image  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from scipy import ndimage  # noqa: E402

from ntire_t2iqa import validate  # noqa: E402
from ntire_t2iqa.data import SynthSize  # noqa: E402
from ntire_t2iqa.data.sources import locate  # noqa: E402
from ntire_t2iqa_baselines.common.data import align_items, structure_items  # noqa: E402
from ntire_t2iqa_baselines.common.submission import write_submission  # noqa: E402
from ntire_t2iqa_baselines.eliq import CONFIGS, negatives, predict, train  # noqa: E402
from ntire_t2iqa_baselines.eliq.qqt import (  # noqa: E402
    SLOTS,
    GatedVisual,
    QualityQueryTransformer,
    batch_scores,
    element_loss,
    hinge,
    ranking_loss,
)
from ntire_t2iqa_baselines.eliq.scoring import Maps, best_threshold  # noqa: E402
from ntire_t2iqa_baselines.registry import get  # noqa: E402


def _texture(size: int = 96, seed: int = 0) -> Image.Image:
    """A sharp, colourful test picture: checkerboard blocks of random colours plus thin lines."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, (size // 8, size // 8, 3)).astype(np.uint8)
    arr = np.kron(cells, np.ones((8, 8, 1), np.uint8))
    arr[::6, :, :] = 255
    return Image.fromarray(arr)


def _detail(size: int = 96) -> Image.Image:
    """A grey picture with fine detail: a ramp, fine horizontal ripples and film grain (fixed seed)."""
    x = np.linspace(0, 1, size)
    grain = np.random.default_rng(0).standard_normal((size, size))
    arr = 60 + 120 * x[None, :] + 40 * np.sin(np.arange(size)[:, None] * 2.2) + 25 * grain
    return Image.fromarray(np.repeat(np.clip(arr, 0, 255)[..., None], 3, 2).astype(np.uint8))


def _gray(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"), dtype=np.float64)


def _sharpness(img: Image.Image) -> float:
    """Variance of the Laplacian (scipy), a standard focus/sharpness statistic."""
    return float(ndimage.laplace(_gray(img)).var())


def _noise_sigma(img: Image.Image) -> float:
    """Immerkaer's fast noise estimate (a 3 x 3 kernel that cancels smooth structure) of the red channel."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    g = np.asarray(img, dtype=np.float64)[..., 0]
    h, w = g.shape
    return float(np.sqrt(np.pi / 2) / (6 * (h - 2) * (w - 2)) * np.abs(ndimage.convolve(g, kernel)[1:-1, 1:-1]).sum())


def _colourfulness(img: Image.Image) -> float:
    """Hasler and Suesstrunk's colourfulness metric."""
    a = np.asarray(img, dtype=np.float64)
    rg, yb = a[..., 0] - a[..., 1], 0.5 * (a[..., 0] + a[..., 1]) - a[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


# ---------------------------------------------------------------------------------------------- negatives
def test_jpeg_lowers_sharpness_and_noise_raises_the_noise_estimate() -> None:
    smooth = Image.fromarray(np.tile(np.linspace(40, 200, 96, dtype=np.uint8), (96, 1))[..., None].repeat(3, 2))
    img = _detail()
    for quality in (5, 12, 20):  # the fine detail is lost: the Laplacian's variance drops by a third or more
        assert _sharpness(negatives.jpeg_repeat(img, quality, 3)) < 0.67 * _sharpness(img)
    noisy = negatives.gaussian_noise(smooth, 20.0, np.random.default_rng(0))
    assert _noise_sigma(smooth) < 1.0
    assert 17.0 < _noise_sigma(noisy) < 23.0  # the estimate recovers the added sigma of 20 (before clipping)
    # the technical negative (both): far from the original (PSNR under 25 dB) on the smooth picture
    tec = negatives.technical(smooth, np.random.default_rng(1))
    mse = np.mean((np.asarray(tec, np.float64) - np.asarray(smooth, np.float64)) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) < 25.0
    assert tec.size == smooth.size and tec.mode == "RGB"


def test_aesthetic_operations_change_what_they_name() -> None:
    img = _texture(seed=3)
    arr = np.asarray(img, np.float32)
    rng = np.random.default_rng(0)
    assert _colourfulness(Image.fromarray(negatives.desaturate(arr, rng).astype(np.uint8))) < 0.3 * _colourfulness(img)
    collapsed = negatives.contrast_collapse(arr, rng)
    assert collapsed.std() < 0.5 * arr.std() and abs(collapsed.mean() - arr.mean()) < 1e-3
    cast = negatives.colour_cast(arr, rng)
    ratios = cast.reshape(-1, 3).mean(0) / arr.reshape(-1, 3).mean(0)
    assert ratios.max() >= 1.3 and ratios.min() <= 0.7
    assert negatives.underexpose(arr, rng).mean() < 0.6 * arr.mean()
    crop = negatives.off_centre_crop(arr, rng)
    assert crop.shape == arr.shape and not np.allclose(crop, arr)
    out = negatives.aesthetic(img, np.random.default_rng(5))
    assert out.size == img.size and not np.array_equal(np.asarray(out), np.asarray(img))


RECORDS = [negatives.PromptRecord("a red circle on grass", ("red (color)", "circle (object)", "on grass (location)")),
           negatives.PromptRecord("two blue squares in the snow", ("two (counting)", "blue (color)", "squares (object)",
                                                                   "in the snow (location)")),
           negatives.PromptRecord("a green star", ("green (color)", "star (object)")),
           negatives.PromptRecord("a red circle on grass", ("red (color)", "circle (object)", "on grass (location)"))]


def test_alignment_negatives_never_reuse_the_own_prompt_or_elements() -> None:
    pool = negatives.PromptPool(RECORDS)
    rng = np.random.default_rng(0)
    swaps = 0
    for _ in range(200):
        for i, rec in enumerate(RECORDS):
            own = {negatives.split_element(e)[0] for e in rec.elements}
            wrong = pool.alignment_prompt(i, rng, swap_share=0.5)
            assert wrong != rec.prompt
            swapped = pool.element_swap(i, rng)
            assert swapped is not None and swapped != rec.prompt
            new_words = set(swapped.split()) - set(rec.prompt.split())
            assert new_words and not new_words & {w for o in own for w in o.split()}
            swaps += 1
            for name in pool.borrowed_elements(i, rng, 3):
                assert name not in own and not negatives.mentions(rec.prompt, name)
    assert swaps == 800
    # a swap keeps the category: colours for colours (same prompt otherwise)
    got = {pool.element_swap(2, np.random.default_rng(s)) for s in range(50)}
    assert {"a red star", "a blue star", "a green circle", "a green squares"} & got
    assert all(g.startswith("a ") for g in got)
    with pytest.raises(ValueError, match="two different prompts"):
        negatives.PromptPool([RECORDS[0], RECORDS[3]]).other_prompt(0, rng)


# ---------------------------------------------------------------------------------------------- QQT
def test_gates_and_quality_query_transformer_shapes() -> None:
    torch.manual_seed(0)
    h, n = 12, 5
    gv = GatedVisual(h)
    z_tec, z_aes, z_ali = torch.randn(n, h), torch.randn(n, h), torch.randn(n, h)
    with torch.no_grad():
        g_tec, g_aes = gv.gates(z_tec, z_aes)
    assert g_tec.shape == g_aes.shape == (n, h)
    assert float(g_tec.min()) > 0 and float(g_tec.max()) < 1
    expected = torch.sigmoid(torch.cat([z_tec, z_aes], -1) @ gv.w_tec.weight.T + gv.w_tec.bias)
    assert torch.allclose(g_tec, expected, atol=1e-6)
    assert gv(z_tec, z_aes).shape == (n, h)
    qqt = QualityQueryTransformer(h, width=16, layers=2, heads=4).eval()
    assert qqt.tokens(gv(z_tec, z_aes), z_ali).shape == (n, 3, 16)
    s_vis, s_ali = qqt(z_tec, z_aes, z_ali)
    assert s_vis.shape == s_ali.shape == (n,)
    scores = batch_scores(qqt, torch.randn(n, len(SLOTS), h))
    assert set(scores) == {"s_vis_pos", "s_vis_tec", "s_vis_aes", "s_ali_pos", "s_ali_neg", "s_el_own", "s_el_other"}
    assert all(v.shape == (n,) for v in scores.values())


def test_ranking_losses_on_hand_made_scores() -> None:
    t = torch.tensor
    assert float(hinge(t([1.0, 0.2]), t([0.0, 0.5]), 0.5)) == pytest.approx((0.0 + 0.8) / 2)
    loss = ranking_loss(t([2.0, 0.0]), t([1.0, 0.3]), t([2.5, -1.0]), t([1.0, 1.0]), t([0.0, 1.2]), margin=1.0)
    # L_vis: tec [1-2+1, 1-0+0.3] = [0, 1.3] -> 0.65; aes [1-2+2.5, 1-0-1] = [1.5, 0] -> 0.75; L_ali [0, 1.2] -> 0.6
    assert float(loss["vis"]) == pytest.approx(0.65 + 0.75)
    assert float(loss["ali"]) == pytest.approx(0.6)
    assert float(loss["total"]) == pytest.approx(2.0)
    s = {"s_el_own": t([1.0, 0.0, 3.0]), "s_el_other": t([0.8, 0.0, 9.0])}
    # rows 0 and 1 have elements: [1 - 1 + 0.8, 1 - 0 + 0] = [0.8, 1.0] -> 0.9; row 2 is left out
    assert float(element_loss(s, t([True, True, False]), 1.0)) == pytest.approx(0.9)
    assert float(element_loss(s, t([False, False, False]), 1.0)) == 0.0


def test_label_free_threshold_and_maps() -> None:
    assert best_threshold(np.array([3.0, 4.0, 5.0]), np.array([0.0, 1.0, 2.0])) == pytest.approx(2.5)
    # overlapping: 2 of 3 on each side is the best balanced accuracy, reached between 1.5 and 2.5 -> midpoint
    cut = best_threshold(np.array([1.0, 3.0, 4.0]), np.array([0.0, 2.0, 5.0]))
    assert 1.0 < cut < 3.0
    maps = Maps(total_mid=1.0, total_scale=2.0, vis_mid=0.0, vis_scale=1.0, element=(0.5, 0.25))
    assert maps.total(1.0) == pytest.approx(3.0) and maps.element_score(0.5) == pytest.approx(0.5)
    assert maps.total(1.0, (2.0, -1.0)) == pytest.approx(5.0)
    assert maps.structure(0.0) == pytest.approx(3.0)
    assert 1.0 < maps.structure(-3.0) < 3.0 < maps.structure(3.0) < 5.0
    assert Maps.from_dict(json.loads(json.dumps(maps.to_dict()))) == maps


# ---------------------------------------------------------------------------------------------- label-free
TINY_SIZE = SynthSize((6, 4, 4), 2, (10, 4, 4))


def _reduced_config() -> dict:
    cfg = json.loads(CONFIGS["tiny"].read_text())
    cfg["model"]["min_pixels"] = cfg["model"]["max_pixels"] = 3136
    cfg["model"]["tiny"].update(vocab_size=400, text_hidden=32, text_intermediate=64, heads=2, kv_heads=1,
                                vision_hidden=16, vision_intermediate=32)
    cfg["lora"]["r"] = 4
    cfg["tune"].update(epochs=1, batch_images=4, warmup_steps=1)
    cfg["qqt"].update(width=16, epochs=3, batch=8)
    cfg["threshold"]["images"] = 4
    return cfg


def _garbage_copy(root: Path, out: Path) -> Path:
    """The challenge with every training label replaced by garbage (scores, votes, ratings, flags, MOS, boxes)."""
    shutil.copytree(root, out)
    rng = np.random.default_rng(123)
    path = out / "align" / "train_list.json"
    records = json.loads(path.read_text())
    for rec in records:
        for key in list(rec):
            if key not in ("img_path", "prompt", "prompt_id", "type", "element_score"):
                rec[key] = ["garbage", float(rng.normal())]
        rec["element_score"] = {k: "?" * int(rng.integers(1, 5)) for k in rec["element_score"]}
    path.write_text(json.dumps(records))
    path = out / "structure" / "train_info.json"
    info = json.loads(path.read_text())
    for entry in info.values():
        for key in list(entry):
            if key != "prompt_en":
                entry[key] = {"garbage": float(rng.normal())}
    path.write_text(json.dumps(info))
    return out


@pytest.mark.parametrize("track", ["align", "structure"])
def test_training_reads_no_label(track: str, synth_challenge, tmp_path: Path, torch_one_thread) -> None:
    root = synth_challenge(3, TINY_SIZE)
    garbage = _garbage_copy(root, tmp_path / "garbage")
    with pytest.raises(Exception):  # noqa: B017 - the labelled readers cannot make sense of the garbage
        (align_items(garbage, "train") if track == "align" else structure_items(garbage, "train"))
    cfg = _reduced_config()
    runs, preds = [], []
    for data in (root, garbage):
        run = tmp_path / f"run_{data.name}"
        train(locate(data, track), run, cfg, "cpu", 7)
        runs.append(run)
        preds.append(predict(locate(data, track), "val", run, "cpu"))
    for name in ("adapter.safetensors", "qqt.safetensors", "embeddings.safetensors"):
        a, b = load_file(str(runs[0] / name)), load_file(str(runs[1] / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    state = [json.loads((r / "eliq.json").read_text()) for r in runs]
    assert state[0]["maps"] == state[1]["maps"] and state[0]["qqt_loss"] == state[1]["qqt_loss"]
    if track == "align":
        assert preds[0] == preds[1] and len({p["total_score"] for p in preds[0]}) > 1
        assert state[0]["maps"]["element"] is not None
    else:
        assert {k: v["score"] for k, v in preds[0].items()} == {k: v["score"] for k, v in preds[1].items()}
    # the optional calibration file: a x + b of the mapped scores, the same ranking
    (runs[0] / f"calibration_{track}.json").write_text(json.dumps({"a": 2.0, "b": -1.0}))
    calibrated = predict(locate(root, track), "val", runs[0], "cpu")
    if track == "align":
        assert [c["total_score"] for c in calibrated] == pytest.approx([2 * p["total_score"] - 1 for p in preds[0]])
        assert [c["element_score"] for c in calibrated] == [p["element_score"] for p in preds[0]]
    else:
        assert [c["score"] for c in calibrated.values()] == pytest.approx(
            [2 * p["score"] - 1 for p in preds[0].values()])
    # the predictions make a valid submission of the track
    zp = tmp_path / "sub.zip"
    write_submission(get("eliq"), preds[0], zp, 0.0, False, root, "val", track)
    assert validate(zp, track, inputs=locate(root, track).inputs("val")).valid


def test_a_run_refuses_the_other_track(synth_challenge, tmp_path: Path) -> None:
    root = synth_challenge(3, TINY_SIZE)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(_reduced_config()))
    (run / "eliq.json").write_text(json.dumps({"track": "structure"}))
    with pytest.raises(ValueError, match="--track align"):
        predict(locate(root, "align"), "val", run, "cpu")
    with pytest.raises(ValueError, match="submits to align and structure only"):
        write_submission(get("eliq"), [], tmp_path / "x.zip", 0.0, False, track="video")


def test_text_first_puts_the_prompt_before_the_image() -> None:
    from ntire_t2iqa_baselines.eliq.instructions import (
        ALI,
        ANSWERS,
        TEC,
        ImageQueries,
        Query,
        corpus,
        sequences,
        sequences_text_first,
    )
    from ntire_t2iqa_baselines.lvlm_stack.model import Collator, ImageEncoder
    from ntire_t2iqa_baselines.lvlm_stack.tokenizer import build_tiny_tokenizer, single_token_id

    tok = build_tiny_tokenizer(corpus(["a red circle on grass"], ["red"]), 400, ANSWERS)
    assert [len(tok.encode(a, add_special_tokens=False)) for a in ANSWERS] == [1, 1]
    assert len(tok.encode("yellow", add_special_tokens=False)) >= 1 and "low" not in [
        tok.decode([i]) for i in tok.encode("yellow", add_special_tokens=False)]  # whole-word answer tokens
    enc = ImageEncoder({"patch_size": 14, "merge_size": 2, "min_pixels": 3136, "max_pixels": 3136})
    ex = ImageQueries(*enc.encode(_texture(56)),
                      [Query(ALI, "a red circle on grass", 1.0, "ali"), Query(TEC, None, 0.0, "tec")])
    image_id = single_token_id(tok, "<|image_pad|>")
    for hook, first in ((sequences, False), (sequences_text_first, True)):
        batch = Collator(tok, 2, sequences=hook)([ex])
        assert batch["keys"] == ["ali", "tec"] and batch["target"].tolist() == [1.0, 0.0]
        ids = batch["input_ids"][0][batch["attention_mask"][0].bool()].tolist()
        text = tok.decode(ids)
        before_image = tok.decode(ids[:ids.index(image_id)])
        assert ("Prompt: a red circle on grass" in before_image) is first
        assert text.count("Prompt: a red circle on grass") == 1 and text.endswith("assistant\n")
        assert ids.count(image_id) == 4  # 56 x 56 pixels: 2 x 2 merged patches
        tec = tok.decode(batch["input_ids"][1][batch["attention_mask"][1].bool()].tolist())
        assert "Prompt" not in tec  # the technical instruction never sees a prompt


def test_cli_track_option(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ntire_t2iqa.cli import main

    res = CliRunner().invoke(main, ["baseline", "run", "rahf", "--track", "align", "--weights", str(tmp_path),
                                    "--out", str(tmp_path / "x.zip")])
    assert res.exit_code == 2 and "rahf submits to structure only" in res.output
    listed = json.loads(CliRunner().invoke(main, ["baseline", "list", "--json"]).stdout)
    tracks = {d["name"]: d["tracks"] for d in listed}
    assert tracks["eliq"] == ["align", "structure"] and tracks["rahf"] == ["structure"]
