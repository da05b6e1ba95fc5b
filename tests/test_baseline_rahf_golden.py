"""RAHF against the upstream code's own outputs (golden data from benchmarks/golden/rahf_upstream.py).

The upstream EvalMuse-Structure model ran, under the transformers version it pins, on a reduced config
(full widths, 448 px, 2 ViT layers, 2 fusion blocks, narrow heads) with seeded random weights saved in
its checkpoint format. Here the same checkpoint is rebuilt from its manifest, converted with
``python -m ntire_t2iqa_baselines.rahf.convert`` into a run folder and run through this baseline's inference: token
ids, resized pixels, heatmap and score must equal upstream's (within 1e-4), and so must the thresholded
mask, except at pixels whose upstream heatmap sits within 1e-4 of the rounding boundary.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from ntire_t2iqa_baselines.common.data import StructureItem  # noqa: E402
from ntire_t2iqa_baselines.rahf import CONFIGS  # noqa: E402
from ntire_t2iqa_baselines.rahf.convert import main as convert_main  # noqa: E402
from ntire_t2iqa_baselines.rahf.convert import official_to_ours  # noqa: E402
from ntire_t2iqa_baselines.rahf.inputs import load_image  # noqa: E402
from ntire_t2iqa_baselines.rahf.predict import load_run, predict_items  # noqa: E402

GOLDEN = Path(__file__).parent / "data" / "rahf" / "golden"
TOL = 1e-4


def _meta() -> dict[str, Any]:
    return json.loads((GOLDEN / "cases.json").read_text(encoding="utf-8"))


def rebuild_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The upstream-format checkpoint of the golden run, rebuilt from its manifest; returns its ``model``."""
    manifest = json.loads((GOLDEN / "checkpoint.json").read_text())
    state: dict[str, torch.Tensor] = {}
    for t in manifest["tensors"]:
        z = np.random.default_rng([manifest["seed"], t["index"]]).standard_normal(int(np.prod(t["shape"])),
                                                                                   dtype=np.float32)
        arr = (np.float32(t["mean"]) + np.float32(t["std"]) * z).reshape(t["shape"])
        assert arr.reshape(-1)[:3].tolist() == t["first"], f"{t['key']}: the seeded draw differs from the generator's"
        assert float(arr.astype(np.float64).sum()) == pytest.approx(t["sum"], rel=1e-6, abs=1e-3), t["key"]
        state[t["key"]] = torch.from_numpy(arr)
    torch.save({"model": state, "optimizer": manifest["optimizer"], "scheduler": manifest["scheduler"]}, path)
    return state


def reduced_config(meta: dict[str, Any]) -> dict[str, Any]:
    """The full config with the golden run's reduced depths, head widths and vocabulary."""
    r = meta["reduced"]
    config = json.loads(Path(CONFIGS["full"]).read_text())
    config["vision"]["num_hidden_layers"] = r["vision_layers"]
    config["fusion"]["layers"] = r["fusion_layers"]
    config["heatmap"].update(stem=r["heatmap_conv"], stages=r["heatmap_deconv"])
    config["score"].update(channels=r["score_filters"], stride=1, mlp=[2048, 1024])
    config["text"]["vocab_size"] = r["vocab_size"]
    config["init_from_altclip"] = False
    config["train"]["cpu_threads"] = 2
    return config


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Checkpoint rebuilt, converted by the command line into a run folder, loaded as `baseline run` does."""
    meta = _meta()
    tmp = tmp_path_factory.mktemp("rahf_golden")
    state = rebuild_checkpoint(tmp / "last.pth")
    (tmp / "reduced.json").write_text(json.dumps(reduced_config(meta)))
    convert_main([str(tmp / "last.pth"), str(tmp / "run"), "--config", str(tmp / "reduced.json"),
                  "--altclip", str(GOLDEN / "altclip")])
    model, tokenizer, config = load_run(tmp / "run")
    outputs = dict(np.load(GOLDEN / "outputs.npz"))
    return {"meta": meta, "model": model, "tokenizer": tokenizer, "config": config, "outputs": outputs,
            "state": state}


def _items(meta: dict[str, Any]) -> list[StructureItem]:
    return [StructureItem(f"case{n}", GOLDEN / "images" / c["image"], c["prompt"]) for n, c in enumerate(meta["cases"])]


def _run(model: Any, tokenizer: Any, config: dict[str, Any], items: list[StructureItem]
         ) -> tuple[dict[str, Any], list[torch.Tensor]]:
    """``predict_items`` with the head's heatmaps captured on the way."""
    heatmaps: list[torch.Tensor] = []
    hook = model.register_forward_hook(lambda _m, _i, out: heatmaps.extend(out[0][:, 0].float().clone()))
    try:
        preds = predict_items(model, tokenizer, config, items, "cpu", batch_size=2, progress=False)
    finally:
        hook.remove()
    return preds, heatmaps


def _check_against_upstream(preds: dict[str, Any], heatmaps: list[torch.Tensor], meta: dict[str, Any],
                            outputs: dict[str, np.ndarray]) -> None:
    scale = float(meta["heatmap_scale"])
    for n, case in enumerate(meta["cases"]):
        want = outputs[f"heatmap_{n}"].astype(np.float64) / scale  # quantisation error <= 7.7e-6
        got = heatmaps[n].numpy().astype(np.float64)
        assert got.shape == want.shape == (512, 512)
        err = float(np.abs(got - want).max())
        assert err < TOL, f"case {n}: heatmap differs from upstream's by up to {err:.2e}"
        assert preds[f"case{n}"]["score"] == pytest.approx(case["score"], abs=TOL), f"case {n}: score"
        mask = np.unpackbits(outputs[f"mask_{n}"])[: 512 * 512].reshape(512, 512)
        ours = preds[f"case{n}"]["pred_area"]
        assert ours.shape == (512, 512) and ours.dtype == np.uint8
        boundary = np.abs(want * 255.0 - 40.5) < TOL * 255.0  # rounds to 40 or 41 within the tolerance
        assert np.array_equal(ours[~boundary], mask[~boundary]), f"case {n}: mask differs from upstream's"
        assert 0.05 < mask.mean() < 0.95  # both sides of the threshold are exercised


def test_inputs_are_upstream_tokens_and_pixels(golden: dict[str, Any]) -> None:
    meta, outputs = golden["meta"], golden["outputs"]
    ids = golden["tokenizer"]([c["prompt"] for c in meta["cases"]])
    assert ids.shape == (len(meta["cases"]), 512)
    for n, case in enumerate(meta["cases"]):
        assert ids[n].tolist() == outputs[f"ids_{n}"].tolist(), f"case {n}: token ids differ"
        pixels = load_image(GOLDEN / "images" / case["image"], 448).permute(1, 2, 0).numpy()
        digest = hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()
        assert digest == case["resized_sha256"], f"case {n}: the 448 px pixels differ from upstream's LANCZOS resize"
    assert int((ids[1] != 1).sum()) == 512  # the long prompt is truncated to upstream's 512 tokens


def test_outputs_equal_the_upstream_code(golden: dict[str, Any]) -> None:
    preds, heatmaps = _run(golden["model"], golden["tokenizer"], golden["config"], _items(golden["meta"]))
    assert golden["config"]["infer"]["score"] == "raw"  # upstream submits score.item(), 0..1
    _check_against_upstream(preds, heatmaps, golden["meta"], golden["outputs"])


def test_a_swapped_query_and_key_mapping_is_caught(golden: dict[str, Any]) -> None:
    """The golden data sees a converter that exchanges to_q and to_k in the fusion blocks."""
    swapped = {}
    for key, value in golden["state"].items():
        for a, b in ((".to_q.", ".to_k."), (".to_k.", ".to_q.")):
            if a in key and key.startswith("self_attention."):
                key = key.replace(a, b)
                break
        swapped[key] = value
    model = golden["model"]
    original = {k: v.clone() for k, v in model.state_dict().items() if ".attn." in k}
    try:
        model.load_state_dict(official_to_ours(swapped), strict=False)
        items = _items(golden["meta"])[:1]
        preds, heatmaps = _run(model, golden["tokenizer"], golden["config"], items)
    finally:
        model.load_state_dict(original, strict=False)
    want = golden["outputs"]["heatmap_0"].astype(np.float64) / golden["meta"]["heatmap_scale"]
    assert float(np.abs(heatmaps[0].numpy() - want).max()) > 100 * TOL


# ------------------------------------------------------------------------------------------- full-size key manifests
def _meta_state(manifest: Path) -> dict[str, torch.Tensor]:
    keys = json.loads(manifest.read_text())["keys"]
    return {k: torch.empty(shape, dtype=getattr(torch, dtype), device="meta") for k, shape, dtype in keys}


def _full_model_on_meta() -> Any:
    from ntire_t2iqa_baselines.rahf.model import build_model

    with torch.device("meta"):
        return build_model(json.loads(Path(CONFIGS["full"]).read_text()))


def test_every_upstream_rahf_key_fills_the_full_size_model() -> None:
    """All 550 keys of upstream's full-size RAHF map onto this model's parameters, shape for shape, and fill it."""
    from ntire_t2iqa_baselines.rahf.convert import ignored_reason, load_weights

    state = _meta_state(GOLDEN.parent / "upstream_keys.json")
    assert len(state) == 550
    model = _full_model_on_meta()
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    ignored = {k: ignored_reason(k, "official") for k in state if ignored_reason(k, "official")}
    converted = official_to_ours(state)
    assert len(converted) + len(ignored) == len(state)  # every upstream key consumed or ignored with a reason
    assert set(converted) == set(own), (sorted(set(own) - set(converted))[:5], sorted(set(converted) - set(own))[:5])
    bad = {k: (tuple(v.shape), own[k]) for k, v in converted.items() if tuple(v.shape) != own[k]}
    assert not bad, bad
    assert load_weights(model, state) == []  # strict: every parameter filled
    assert sum(v.numel() for v in converted.values()) == sum(p.numel() for p in model.parameters())


def test_every_altclip_hub_key_is_an_encoder_weight_or_dropped_for_a_reason() -> None:
    """AltCLIP's hub layout: encoder keys fill the vision tower and text embeddings; the rest is named unused."""
    from ntire_t2iqa_baselines.rahf.convert import POSITION_KEY, altclip_to_ours, fit_position_table, ignored_reason

    state = _meta_state(GOLDEN.parent / "altclip_hub_keys.json")
    assert len(state) == 787
    reasons = {k: ignored_reason(k, "altclip") for k in state}
    kept = altclip_to_ours(state)
    assert len(kept) + sum(r is not None for r in reasons.values()) == len(state)
    assert {r for r in reasons.values() if r} and all(r is None or len(r) > 20 for r in reasons.values())
    model = _full_model_on_meta()
    encoder = {k: tuple(v.shape) for k, v in model.state_dict().items()
               if k.startswith(("vision.", "text_embeddings."))}
    assert set(kept) == set(encoder)  # every encoder parameter comes from the hub checkpoint
    assert tuple(kept[POSITION_KEY].shape) == (257, 1024)  # 224 px: 16 x 16 + CLS, interpolated onto 32 x 32
    fitted = fit_position_table(kept, model)
    assert {k: tuple(v.shape) for k, v in fitted.items()} == encoder
    with pytest.raises(ValueError, match="neither encoder weights"):
        altclip_to_ours({**state, "text_model.roberta.new_head.weight": torch.empty(2, device="meta")})
