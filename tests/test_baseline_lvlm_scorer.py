"""lvlm-stack's scorer equals a plain per-sequence forward of transformers' Qwen2.5-VL.

The scorer batches many sequences (left-padded, its own 3-D rope positions) and computes each
image's vision features once for all its sequences. The reference here is the plain model: each
sequence alone, its ids from the tokenizer, its pixels from the PIL image processor, with
``mm_token_type_ids`` as transformers 5 wants. Images of several sizes and aspect ratios; the
tiny model's first vision block attends within windows (as Qwen2.5-VL's do), the second fully.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from PIL import Image  # noqa: E402
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil  # noqa: E402

from ntire_t2iqa_baselines.common.data import AlignItem  # noqa: E402
from ntire_t2iqa_baselines.lvlm_stack import prompts as P  # noqa: E402
from ntire_t2iqa_baselines.lvlm_stack.model import (  # noqa: E402
    Collator,
    Example,
    ImageEncoder,
    Scorer,
    build_tiny_model,
    expected_value,
    model_inputs,
)
from ntire_t2iqa_baselines.lvlm_stack.tokenizer import build_tiny_tokenizer, single_token_id  # noqa: E402

PATCH, MERGE = 14, 2
WINDOW = PATCH * MERGE * 2  # 56 px: 2 x 2 merged tokens per window
SIZES = ((112, 84), (84, 168), (168, 112), (56, 56))  # (width, height) after the processor's resize
IMAGE = {"patch_size": PATCH, "merge_size": MERGE, "min_pixels": 56 * 56, "max_pixels": 168 * 168}
SPEC = {"vocab_size": 400, "text_hidden": 32, "text_intermediate": 64, "text_layers": 2, "heads": 2, "kv_heads": 1,
        "vision_hidden": 32, "vision_depth": 2, "vision_heads": 2, "vision_intermediate": 64, "init_std": 0.1,
        "patch_size": PATCH, "merge_size": MERGE, "window_size": WINDOW, "fullatt_blocks": [1]}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("scorer")
    rng = np.random.default_rng(0)
    items = []
    prompts = ["a red circle above two blue squares", "three striped stars on grass",
               "a small green hexagon left of a cross", "two yellow triangles"]
    for i, ((w, h), prompt) in enumerate(zip(SIZES, prompts)):
        y, x = np.mgrid[0:h, 0:w]
        pixels = np.stack([(x * 7 + i * 40) % 256, (y * 5) % 256, rng.integers(0, 256, (h, w))], -1).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
        words = prompt.split()
        elements = [f"{words[1]} (color)", f"{words[2]} (object)"][: 1 + i % 2]
        items.append(AlignItem(f"img{i}.png", folder / f"img{i}.png", prompt, elements, str(i), "ToyDiT-1.0",
                               "one-group", ratings={"meaningless": 0.0, "split_confidence": 4.5} if i % 2 else {}))
    tok = build_tiny_tokenizer(P.corpus(items), 400)
    model = build_tiny_model(SPEC, tok, 3).eval()
    return items, tok, model


def _answer(tok, logits: torch.Tensor, element: str | None) -> float:
    task = P.OVERALL if element is None else P.ELEMENT
    ids = torch.tensor([single_token_id(tok, a) for a in task.answers])
    return float(expected_value(logits, ids, torch.tensor(task.values)))


def _plain(model, tok, item: AlignItem, element: str | None) -> float:
    """One sequence through the transformers model as a user would call it."""
    proc = Qwen2VLImageProcessorPil(patch_size=PATCH, merge_size=MERGE, temporal_patch_size=2,
                                    size={"shortest_edge": IMAGE["min_pixels"], "longest_edge": IMAGE["max_pixels"]})
    with Image.open(item.image_file) as im:
        vision = proc(images=[im.convert("RGB")], return_tensors="pt")
    n = int(vision["image_grid_thw"][0].prod()) // MERGE**2
    text = P.prefix_text() + P.IMAGE_PAD * n + P.suffix_text(item, element)
    ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    mm = (ids == single_token_id(tok, P.IMAGE_PAD)).to(torch.int32)
    assert int(mm.sum()) == n
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=vision["pixel_values"],
                    image_grid_thw=vision["image_grid_thw"], mm_token_type_ids=mm)
    return _answer(tok, out.logits[0, -1], element)


def test_scorer_equals_a_plain_forward_per_sequence(setup) -> None:
    items, tok, model = setup
    vision = model.config.vision_config
    assert vision.fullatt_block_indexes == [1] and vision.window_size == WINDOW  # block 0 is windowed
    encoder = ImageEncoder(IMAGE)
    examples = [Example(it, *encoder(it.image_file), it.elements) for it in items]
    grids = [tuple(int(v) for v in ex.grid) for ex in examples]
    assert len({g[1] / g[2] for g in grids}) >= 3  # several aspect ratios
    assert any(g[1] // MERGE > 2 or g[2] // MERGE > 2 for g in grids)  # larger than one window
    batch = Collator(tok, MERGE)(examples)
    assert batch["input_ids"].shape[0] == sum(1 + len(it.elements) for it in items) >= 8
    with torch.no_grad():
        ours = Scorer(model, tok).eval()(**model_inputs(batch, torch.device("cpu"))).tolist()
    by_path = {it.img_path: it for it in items}
    plain = [_plain(model, tok, by_path[img], element) for img, element in batch["keys"]]
    assert len(set(round(v, 4) for v in plain)) > len(plain) // 2  # the sequences really differ
    for (img, element), a, b in zip(batch["keys"], ours, plain):
        assert a == pytest.approx(b, abs=1e-4), (img, element)


def test_window_attention_is_exercised(setup) -> None:
    """With every vision block attending fully, the same inputs score differently: the windows matter."""
    items, tok, model = setup
    full = build_tiny_model({**SPEC, "fullatt_blocks": [0, 1]}, tok, 3).eval()
    full.load_state_dict(model.state_dict())
    item = items[2]  # 168 x 112 px: 6 x 4 merged tokens, six windows
    assert abs(_plain(model, tok, item, None) - _plain(full, tok, item, None)) > 1e-4
