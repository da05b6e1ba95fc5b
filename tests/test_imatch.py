"""imatch: level mappings and inverses, QAlign's closed-set softmax, queries and hints, pseudo-labels, augmentations.

Fast units (no training); the end-to-end recipe is in test_imatch_recipe.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from PIL import Image  # noqa: E402

from ntire_t2iqa_baselines.common.data import AlignItem  # noqa: E402
from ntire_t2iqa_baselines.imatch import augment as A  # noqa: E402
from ntire_t2iqa_baselines.imatch import levels as L  # noqa: E402
from ntire_t2iqa_baselines.imatch.predict import pseudo_items  # noqa: E402
from ntire_t2iqa_baselines.imatch.query import Query, corpus, hint_text, hints_from_labels  # noqa: E402
from ntire_t2iqa_baselines.imatch.train import level_cross_entropy  # noqa: E402
from ntire_t2iqa_baselines.lvlm_stack.model import Scorer, expected_value  # noqa: E402
from ntire_t2iqa_baselines.lvlm_stack.tokenizer import build_tiny_tokenizer, single_token_id  # noqa: E402

CFG = {"recipe": {"element_hints": True, "type_aug": True, "element_perturbation": 0.0}, "query": {}}


def item(img: str = "M/1.png", total: float | None = 3.5, scores: dict[str, float] | None = None,
         file: Path = Path("x.png"), kind: str = "real") -> AlignItem:
    """An item with two elements (labels when ``scores`` is given)."""
    return AlignItem(img_path=img, image_file=file, prompt="a red cat", elements=["red (color)", "cat (animal)"],
                     prompt_id="1", model="M", prompt_type=kind, total=total, element_scores=scores,
                     ratings={"meaningless": 0.0})


# ---------------------------------------------------------------------------------------------- levels
@pytest.mark.parametrize(("score", "level", "letter"), [
    (1.0, 1, "a"), (5.0, 15, "o"), (3.14, 8, "h"), (3.0, 8, "h"), (0.9999999, 1, "a"), (5.0000001, 15, "o")])
def test_overall_level_and_letter(score: float, level: int, letter: str) -> None:
    # by hand: (3.14 - 1) / 4 * 14 + 1 = 8.49 -> 8; (3 - 1) / 4 * 14 + 1 = 8.0
    assert L.overall_level(score) == level
    assert L.overall_letter(L.overall_level(score)) == letter


@pytest.mark.parametrize(("score", "level"), [(0.0, 1), (0.5, 4), (1.0, 7), (1.0000001, 7), (-1e-9, 1),
                                              (1 / 3, 3), (2 / 3, 5), (0.25, 3), (0.75, 6)])
def test_element_level(score: float, level: int) -> None:
    # 0.25 * 6 = 1.5 -> 2 (half up) -> level 3; 0.75 * 6 = 4.5 -> 5 -> level 6 (banker's rounding would give 5)
    assert L.element_level(score) == level


def test_inverses_and_round_trips() -> None:
    assert L.overall_score(1) == 1.0 and L.overall_score(15) == 5.0
    assert L.overall_score(8) == pytest.approx(1 + 7 / 14 * 4)          # 3.0
    assert L.overall_score(L.overall_level(3.14)) == pytest.approx(3.0)  # quantisation error 0.14 < 4 / 28
    assert [L.element_fraction(v) for v in (1, 4, 7)] == [0.0, 0.5, 1.0]
    assert all(L.overall_level(L.overall_score(v)) == v for v in range(1, 16))
    assert all(L.element_level(L.element_fraction(v)) == v for v in range(1, 8))
    assert L.element_digit(7) == "7" and L.ELEMENT_TASK.values == tuple(float(v) for v in range(1, 8))
    for bad in (6.0, 0.5, float("nan")):
        with pytest.raises(ValueError):
            L.overall_level(bad)
    with pytest.raises(ValueError, match="outside 0..1"):
        L.element_level(1.5)


def test_closed_set_softmax_equals_manual_numpy() -> None:
    logits = np.array([[0.3, 2.0, -1.0, 0.5, 1.0, 4.0, 0.0, -2.0, 1.5, 0.2, 0.0, 3.1, -0.7, 0.9, 1.1],
                       [9.0] + [0.0] * 14])
    e = np.exp(logits)
    p = e / e.sum(axis=1, keepdims=True)
    want = (p * np.arange(1, 16)).sum(axis=1)
    assert np.allclose(L.closed_set_softmax(logits), p, rtol=1e-12)
    assert np.allclose(L.qalign_expected_level(logits), want, rtol=1e-12)
    # the scorer's read-out (lvlm-stack's expected_value, float32) on a vocabulary where the letters sit at ids 3..17
    vocab = torch.full((2, 20), 50.0)  # large logits elsewhere must not matter: the softmax is over the closed set
    vocab[:, 3:18] = torch.tensor(logits, dtype=torch.float32)
    got = expected_value(vocab, torch.arange(3, 18), torch.arange(1.0, 16.0))
    assert np.allclose(got.numpy(), want, atol=1e-5)
    assert L.overall_score(want[1]) == pytest.approx(1 + (want[1] - 1) / 14 * 4)


@pytest.fixture(scope="module")
def tok():
    items = [item(scores={"red (color)": 1.0, "cat (animal)": 0.0})]
    return build_tiny_tokenizer(corpus(items, CFG), 300)


def test_scorer_outputs_over_the_level_tokens(tok) -> None:
    scorer = Scorer(torch.nn.Identity(), tok, tasks=L.TASKS, output="expectation")
    letters = [single_token_id(tok, a) for a in L.OVERALL_LETTERS]
    digits = [single_token_id(tok, a) for a in L.ELEMENT_DIGITS]
    assert len(set(letters)) == 15 and len(set(digits)) == 7
    rng = np.random.default_rng(0)
    last = torch.tensor(rng.normal(0, 2, (3, len(tok))), dtype=torch.float32)
    task = torch.tensor([0, 1, 1])
    raw = last.double().numpy()
    want = [L.qalign_expected_level(raw[0, letters]), L.qalign_expected_level(raw[1, digits]),
            L.qalign_expected_level(raw[2, digits])]
    assert np.allclose(scorer.answer_values(last, task).numpy(), want, atol=1e-5)
    scorer.output = "argmax"
    assert scorer.answer_values(last, task).tolist() == [1 + int(np.argmax(raw[0, letters])),
                                                        1 + int(np.argmax(raw[1, digits])),
                                                        1 + int(np.argmax(raw[2, digits]))]
    scorer.output = "logits"
    closed = scorer.answer_values(last, task)
    assert closed.shape == (3, 15) and torch.isinf(closed[1:, 7:]).all()
    assert torch.equal(closed[1, :7], last[1, digits])
    target = torch.tensor([4.0, 6.0, float("nan")])  # level indices; the NaN one is skipped
    manual = (-torch.log_softmax(closed[0], 0)[4] - torch.log_softmax(closed[1, :7], 0)[6]) / 2
    assert level_cross_entropy(closed, {"target": target}).item() == pytest.approx(manual.item(), rel=1e-5)


def test_element_score_crosses_one_half_exactly_above_tau() -> None:
    assert L.element_score(1.0) == 0.0 and L.element_score(7.0) == 1.0
    assert L.element_score(3.0) < 0.5 <= L.element_score(3.0 + 1e-9)       # "hit = level > 3"
    assert L.element_score(5.0) == pytest.approx(0.5 + 0.5 * 2 / 4)
    assert L.element_score(2.0) == pytest.approx(0.25)
    assert L.element_score(4.5, tau=4.2) >= 0.5 > L.element_score(4.2, tau=4.2)
    levels = [1.0, 2.0, 3.5, 4.1, 4.6, 5.0, 6.5]
    truth = [False, False, False, False, True, True, True]
    tau = L.calibrate_tau(levels, truth)
    assert 4.1 <= tau < 4.6 and all((lv > tau) == y for lv, y in zip(levels, truth))
    assert L.calibrate_tau([], []) == L.DEFAULT_TAU


# ---------------------------------------------------------------------------------------------- queries
def test_element_hints_from_labels_when_training_from_predictions_at_test_time() -> None:
    labelled = item(scores={"red (color)": 1.0, "cat (animal)": 1 / 3})
    q = Query(CFG, hints_from_labels([labelled]), train=True)
    assert "Element levels: red (color) 7; cat (animal) 3\n" in q.overall_text(labelled)
    unlabelled = item(total=None)
    predicted = {unlabelled.img_path: {"red (color)": 5.6, "cat (animal)": 1.2}}
    text = Query(CFG, hints=predicted).overall_text(unlabelled)
    assert "Element levels: red (color) 6; cat (animal) 1\n" in text
    assert text.endswith("(perfectly).<|im_end|>\n<|im_start|>assistant\n")
    with pytest.raises(ValueError, match="no element predictions"):
        Query(CFG)
    assert "Element levels" not in Query({"recipe": {}}).overall_text(unlabelled)
    assert hint_text(unlabelled, {}) == "Element levels: none\n"


def test_element_query_type_and_perturbed_targets() -> None:
    it = item(scores={"red (color)": 0.5, "cat (animal)": 1.0}, kind="synthetic")
    q = Query(CFG, train=True)
    text = q.element_text(it, "red (color)")
    assert "Prompt type: synthetic\nElement: red\nCategory: color\n" in text
    assert "Prompt type" not in Query({"recipe": {"type_aug": False}}, train=True).element_text(it, "red (color)")
    assert q.element_target(it, "red (color)") == 3.0 and q.overall_target(it) == L.overall_level(3.5) - 1
    eps = 0.8  # U(-0.8, 0.8) around level 4: one level down or up with probability 0.3 / 0.8 / 2 each
    qp = Query({"recipe": {"element_perturbation": eps}}, train=True, seed=1)
    draws = np.array([qp.element_target(it, "red (color)") for _ in range(4000)])
    assert set(draws.tolist()) == {2.0, 3.0, 4.0}
    assert np.mean(draws != 3.0) == pytest.approx(0.3 / 0.8, abs=0.03)
    assert {qp.element_target(it, "cat (animal)") for _ in range(200)} == {5.0, 6.0}  # clamped at level 7
    assert Query({"recipe": {"element_perturbation": eps}}).element_target(it, "red (color)") == 3.0  # not training


def test_pseudo_labels_never_include_test_images(tmp_path: Path) -> None:
    val = [item("A/1.png", None, file=tmp_path / "a1.png"), item("A/2.png", None, file=tmp_path / "shared.png"),
           item("A/3.png", None, file=tmp_path / "a3.png")]
    test = [item("B/1.png", None, file=tmp_path / "shared.png"), item("A/3.png", None, file=tmp_path / "b3.png")]
    levels = {it.img_path: {"total": 8.0, "elements": {"red (color)": 4.0, "cat (animal)": 1.0}} for it in val}
    got = pseudo_items(val, levels, "val", test)
    assert [it.img_path for it in got] == ["pseudo/A/1.png"]  # same file or same path as a test image: left out
    assert got[0].total == pytest.approx(3.0) and got[0].element_scores == {"red (color)": 0.5, "cat (animal)": 0.0}
    with pytest.raises(ValueError, match="val split only"):
        pseudo_items(test, levels, "test", [])


# ---------------------------------------------------------------------------------------------- augmentation
def picture(w: int = 64, h: int = 48) -> Image.Image:
    """Mid-grey noise (60..120, no clipping at x 1.5) with a horizontal ramp in the red channel."""
    rng = np.random.default_rng(3)
    arr = rng.integers(60, 121, (h, w, 3)).astype(np.uint8)
    arr[..., 0] = np.linspace(0, 255, w).round().astype(np.uint8)[None, :]
    return Image.fromarray(arr, "RGB")


def test_brightness_scales_pixels() -> None:
    im = picture()
    for change in (0.3, -0.4):
        out = A.brightness(im, change)
        assert out.mode == "RGB" and out.size == im.size
        a, b = np.asarray(im)[..., 1:].astype(float), np.asarray(out)[..., 1:].astype(float)
        assert np.abs(b - a * (1 + change)).max() <= 1.0  # PIL rounds to 8 bits


def test_grid_distortion_moves_the_inside_keeps_the_corners() -> None:
    im = picture()
    out = A.grid_distortion(im, 0.6, np.random.default_rng(0))
    a, b = np.asarray(im), np.asarray(out)
    assert out.mode == "RGB" and out.size == im.size and not np.array_equal(a, b)
    for y, x in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        assert np.array_equal(a[y, x], b[y, x])
    xs = A.grid_offsets(100, 5, 0.6, np.random.default_rng(1))
    assert xs[0] == 0 and xs[-1] == 99 and np.all(np.diff(xs) > 0)  # a monotone warp of the whole axis
    cells = np.diff(np.interp(np.linspace(0, 99, 6), xs, np.arange(100.0)))  # output width of each source cell
    assert np.all(np.abs(cells / (99 / 5) - 1) < 0.6 / (1 - 0.6) + 1e-9) and np.ptp(cells) > 1
    assert np.array_equal(np.asarray(A.grid_distortion(im, 0.0, np.random.default_rng(0))), a)


def test_random_crop_keeps_the_area_share() -> None:
    im = picture(200, 100)
    for area in (0.1, 0.5):
        left, top, right, bottom = A.crop_box(200, 100, area, np.random.default_rng(2))
        assert (right - left) * (bottom - top) / 20000 == pytest.approx(area, rel=0.03)
        out = A.random_crop(im, area, np.random.default_rng(2))
        assert out.mode == "RGB" and out.size == im.size
        ramp = np.asarray(out)[50, :, 0].astype(float)  # red ramp 0..255 across 200 px, cropped then stretched
        assert np.ptp(ramp) == pytest.approx(255 * math.sqrt(area), abs=8)


def test_augmented_copies_are_added_with_their_labels(tmp_path: Path) -> None:
    items = []
    for i in range(20):
        path = tmp_path / f"{i}.png"
        picture().save(path)
        items.append(item(f"M/{i}.png", 2.0 + i / 10, {"red (color)": 1.0, "cat (animal)": 0.0}, file=path))
    copies = A.augmented_copies(items, 0.1, tmp_path / "aug", seed=0)
    assert len(copies) == 2
    by_path = {it.img_path: it for it in items}
    for c in copies:
        kind, source = c.img_path.split("/", 2)[1:]
        orig = by_path[source]
        assert kind in A.KINDS and c.total == orig.total and c.element_scores == orig.element_scores
        with Image.open(c.image_file) as new, Image.open(orig.image_file) as old:
            assert new.mode == old.mode == "RGB" and new.size == old.size
            assert not np.array_equal(np.asarray(new), np.asarray(old))
    kinds = [A.augment(picture(), np.random.default_rng(s))[1:] for s in range(60)]
    assert {k for k, _ in kinds} == set(A.KINDS)
    for kind, p in kinds:
        low, high = A.RANGES[kind]
        assert low <= abs(p) <= high
