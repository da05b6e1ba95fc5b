"""The FGA-BLIP2 converter's pieces, each against a hand-worked or independently computed value."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402

from ntire_t2iqa_baselines.fga_blip2 import CONFIGS  # noqa: E402
from ntire_t2iqa_baselines.fga_blip2 import convert as cv  # noqa: E402
from ntire_t2iqa_baselines.fga_blip2.model import build_model  # noqa: E402


def micro_config(**over) -> dict:
    """tiny.json at micro sizes (every other setting as tiny)."""
    config = json.loads(CONFIGS["tiny"].read_text())
    config.update(image_size=32, num_query_tokens=4, max_txt_len=24, embed_dim=16)
    config["vision"].update(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    config["qformer"].update(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                             cross_attention_frequency=2, max_position_embeddings=32, vocab_size=50)
    config.update(over)
    return config


def lavis_state(seed: int = 0, **over) -> dict:
    """A micro model's weights (distinct random values, no key bias) under LAVIS names."""
    torch.manual_seed(seed)
    model = build_model(micro_config(**over))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
        for layer in model.vision_model.encoder.layers:
            layer.self_attn.qkv.bias[32:64] = 0
    return cv.to_lavis({k: v.clone() for k, v in model.state_dict().items()})


def test_name_patterns_match_whole_names_with_layer_numbers_and_rest() -> None:
    rx = cv._compile("a.{i}.b.{p}")
    m = rx.match("a.12.b.c_d.e2")
    assert m is not None and m.groupdict() == {"i": "12", "p": "c_d.e2"}
    for name in ("a.x.b.c", "a.1.b.", "xa.1.b.c", "a.1Xb.c", "a.1.b.c!", "a.1.b.2c", "a..b.c"):
        assert rx.match(name) is None, name
    assert cv._compile("query_tokens").match("query_tokens") and not cv._compile("query_tokens").match("query_tokensX")


@pytest.mark.parametrize(("keys", "lavis"), [
    (["ln_vision.weight"], True), (["Qformer.bert.embeddings.word_embeddings.weight"], True),
    (["visual_encoder.cls_token"], True), (["vision_model.embeddings.class_embedding", "query_tokens"], False),
    (["LN_VISION.weight"], False), ([], False),
])
def test_lavis_names_are_recognised_by_their_prefixes(keys: list[str], lavis: bool) -> None:
    assert cv.is_lavis(dict.fromkeys(keys)) is lavis


def test_an_unknown_lavis_name_is_refused_unless_not_strict() -> None:
    state = lavis_state()
    unknown = {f"Qformer.bert.pooler.dense.w{i}": torch.zeros(1) for i in range(7)}
    mixed = {**unknown, **state}  # the unknown names first: the known ones after them must still be mapped
    with pytest.raises(ValueError) as err:
        cv.from_lavis(mixed)
    assert str(err.value) == ("7 LAVIS names have no mapping (first: ['Qformer.bert.pooler.dense.w0', "
                              "'Qformer.bert.pooler.dense.w1', 'Qformer.bert.pooler.dense.w2', "
                              "'Qformer.bert.pooler.dense.w3', 'Qformer.bert.pooler.dense.w4']); see the table in "
                              "ntire_t2iqa_baselines/fga_blip2/convert.py")
    loose = cv.from_lavis(mixed, strict=False)
    assert loose.keys() == cv.from_lavis(state).keys()
    assert len(loose) == len(build_model(micro_config()).state_dict())


def test_a_q_bias_without_its_v_bias_is_refused() -> None:
    state = lavis_state()
    del state["visual_encoder.blocks.0.attn.v_bias"]
    with pytest.raises(ValueError) as err:
        cv.from_lavis(state)
    assert str(err.value) == "visual_encoder.blocks.0.attn has only a q_bias; both q and v needed"


def test_q_and_v_biases_merge_around_a_zero_key_bias_and_split_back() -> None:
    q, v = torch.arange(1.0, 33.0), torch.arange(-32.0, 0.0)
    ours = cv.from_lavis({"visual_encoder.blocks.3.attn.q_bias": q, "visual_encoder.blocks.3.attn.v_bias": v})
    (name, bias), = ours.items()
    assert name == "vision_model.encoder.layers.3.self_attn.qkv.bias"
    assert torch.equal(bias, torch.cat([q, torch.zeros(32), v]))
    back = cv.to_lavis(ours)
    assert back.keys() == {"visual_encoder.blocks.3.attn.q_bias", "visual_encoder.blocks.3.attn.v_bias"}
    assert torch.equal(back["visual_encoder.blocks.3.attn.q_bias"], q)
    assert torch.equal(back["visual_encoder.blocks.3.attn.v_bias"], v)
    assert back["visual_encoder.blocks.3.attn.q_bias"].data_ptr() != bias.data_ptr()  # copies, not views
    bad = bias.clone()
    bad[40] = 1.0
    with pytest.raises(ValueError) as err:
        cv.to_lavis({name: bad})
    assert str(err.value) == (f"{name}: the key bias is not 0, so LAVIS (q and v biases only) cannot hold it")
    with pytest.raises(ValueError) as err:
        cv.to_lavis({"vision_model.nothing": bad, name: bias})
    assert str(err.value) == "vision_model.nothing has no LAVIS name"


def test_every_lavis_name_of_a_model_and_its_inverse() -> None:
    state = build_model(micro_config()).state_dict()
    lavis = cv.to_lavis(dict(state))
    for name in state:
        expected = cv.lavis_name(name)
        assert expected in lavis, name
    assert cv.lavis_name("vision_model.encoder.layers.7.self_attn.qkv.bias") == \
        "visual_encoder.blocks.7.attn.q_bias"
    assert cv.lavis_name("vision_model.post_layernorm.bias") == "ln_vision.bias"
    assert cv.lavis_name("qformer.encoder.layer.1.attention.attention.query.weight") == \
        "Qformer.bert.encoder.layer.1.attention.self.query.weight"
    assert cv.lavis_name("nothing.here") is None


def test_bare_eva_names_get_the_visual_encoder_prefix() -> None:
    t = torch.zeros(1)
    state = {"cls_token": t, "pos_embed": t, "patch_embed.proj.weight": t, "blocks.11.mlp.fc1.bias": t,
             "norm.weight": t, "Qformer.bert.x": t, "blocksX": t, "visual_encoder.blocks.0.norm1.weight": t}
    assert list(cv.with_eva_prefix(state)) == [
        "visual_encoder.cls_token", "visual_encoder.pos_embed", "visual_encoder.patch_embed.proj.weight",
        "visual_encoder.blocks.11.mlp.fc1.bias", "norm.weight", "Qformer.bert.x", "blocksX",
        "visual_encoder.blocks.0.norm1.weight"]


def _cubic(x: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Keys' cubic convolution kernel (PyTorch's bicubic uses a = -0.75)."""
    x = np.abs(x)
    return np.where(x <= 1, (a + 2) * x**3 - (a + 3) * x**2 + 1,
                    np.where(x < 2, a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a, 0.0))


def _bicubic_matrix(old: int, new: int) -> np.ndarray:
    """(new, old) weights of 1-D bicubic resampling, half-pixel centres, border samples repeated."""
    w = np.zeros((new, old))
    for j in range(new):
        src = (j + 0.5) * old / new - 0.5
        base = int(np.floor(src))
        for k in range(base - 1, base + 3):
            w[j, min(max(k, 0), old - 1)] += _cubic(np.array(src - k))
    return w


def test_position_embeddings_are_resized_bicubically_class_token_kept() -> None:
    torch.manual_seed(1)
    old, new, dim = 5, 7, 3
    pos = torch.randn(1, 1 + old * old, dim, dtype=torch.float64)
    out = cv.interpolate_positions(pos, 1 + new * new)
    assert out.shape == (1, 1 + new * new, dim) and out.dtype == torch.float64
    assert torch.equal(out[0, 0], pos[0, 0])
    grid = pos[0, 1:].numpy().reshape(old, old, dim)  # row-major: position r * old + c is row r, column c
    w = _bicubic_matrix(old, new)
    expected = np.einsum("ir,jc,rcd->ijd", w, w, grid).reshape(new * new, dim)
    np.testing.assert_allclose(out[0, 1:].numpy(), expected, rtol=0, atol=1e-12)  # float64 stays float64
    # fewer positions too, and the dtype is kept
    half = cv.interpolate_positions(pos.to(torch.float16), 1 + 3 * 3)
    assert half.dtype == torch.float16 and half.shape == (1, 10, dim)
    single = cv.interpolate_positions(pos.to(torch.float16).float(), 1 + 3 * 3)
    assert single.dtype == torch.float32 and torch.equal(half, single.half())  # computed in float32, then rounded
    w3 = _bicubic_matrix(old, 3)
    np.testing.assert_allclose(half[0, 1:].double().numpy(),
                               np.einsum("ir,jc,rcd->ijd", w3, w3, grid).reshape(9, dim), atol=1e-2)
    assert cv.interpolate_positions(pos, 1 + old * old) is pos


@pytest.mark.parametrize(("have", "want"), [(1 + 24, 1 + 9), (1 + 16, 1 + 10), (1 + 9, 1 + 15)])
def test_position_tables_that_are_not_square_grids_are_refused(have: int, want: int) -> None:
    with pytest.raises(ValueError) as err:
        cv.interpolate_positions(torch.zeros(1, have, 2), want)
    assert str(err.value) == f"position embeddings of {have} and {want} are not square grids + class"


def test_weights_load_strictly_and_name_what_does_not_fit(tmp_path) -> None:
    torch.save({"model": lavis_state()}, tmp_path / "fga_blip2.pth")
    model = build_model(micro_config())
    assert cv.load_weights(model, tmp_path / "fga_blip2.pth") == ([], [])
    assert cv.load_weights(model, [tmp_path / "fga_blip2.pth"]) == ([], [])
    partial = {k: v for k, v in lavis_state().items() if not k.startswith("mask_proj.")}
    partial["Qformer.bert.encoder.layer.0.extra.weight"] = torch.zeros(1)
    torch.save(partial, tmp_path / "partial.pth")
    missing, unexpected = cv.load_weights(build_model(micro_config()), tmp_path / "partial.pth", strict=False)
    assert sorted(missing) == sorted(k for k in model.state_dict() if k.startswith("mask_proj."))
    assert unexpected == ["qformer.encoder.layer.0.extra.weight"]
    with pytest.raises(ValueError) as err:
        cv.load_weights(build_model(micro_config()), tmp_path / "partial.pth")
    assert len(missing) > 3
    assert str(err.value) == (
        f"weights {tmp_path / 'partial.pth'} do not fit the config: {len(missing)} missing (first: {missing[:3]}), "
        "1 unexpected (first: ['qformer.encoder.layer.0.extra.weight']). A LAVIS checkpoint without "
        "visual_encoder.* needs eva_vit_g.pth too.")


def test_a_checkpoint_of_another_image_size_has_its_positions_interpolated(tmp_path) -> None:
    small = lavis_state(image_size=32)  # 2 x 2 grid + class
    torch.save(small, tmp_path / "small.pth")
    model = build_model(micro_config(image_size=48))  # 3 x 3 grid + class
    assert cv.load_weights(model, tmp_path / "small.pth") == ([], [])
    loaded = model.state_dict()["vision_model.embeddings.position_embedding"]
    assert torch.equal(loaded, cv.interpolate_positions(small["visual_encoder.pos_embed"], 10))


def test_the_command_writes_a_run_folder_with_the_checkpoints_weights(tmp_path, capsys) -> None:
    state = lavis_state()
    torch.save({"model": state}, tmp_path / "fga_blip2.pth")
    (tmp_path / "micro.json").write_text(json.dumps(micro_config()))
    out = tmp_path / "run"
    assert cv.main([str(tmp_path / "fga_blip2.pth"), "--out", str(out), "--config", str(tmp_path / "micro.json")]) == 0
    assert capsys.readouterr().out == f"wrote {out / 'model.safetensors'}, {out / 'config.json'}\n"
    written = load_file(str(out / "model.safetensors"))
    expected = cv.from_lavis(state)
    assert written.keys() == expected.keys() and all(torch.equal(written[k], expected[k]) for k in written)
    config = json.loads((out / "config.json").read_text())
    assert config == micro_config() and not (out / "tokenizer").exists()
    with pytest.raises(SystemExit) as exit_info:
        cv.main([str(tmp_path / "fga_blip2.pth"), "--out", str(out), "--config", "nonesuch"])
    assert exit_info.value.code == 2
    assert re.search(r"nonesuch", capsys.readouterr().err)


def test_a_run_folder_keeps_the_tokenizer_it_was_given(tmp_path) -> None:
    from ntire_t2iqa_baselines.fga_blip2.tokenizer import build_tokenizer, load_tokenizer

    tok_dir = tmp_path / "bert"
    item = SimpleNamespace(prompt="a red cat on a mat", elements=["cat (animal)", "red (color)"])
    build_tokenizer([item], tok_dir)
    torch.save(lavis_state(), tmp_path / "fga_blip2.pth")
    config = micro_config(tokenizer="build")
    del config["add_dec_token"]  # LAVIS' default: the [DEC] token is added
    out = cv.convert_to_run([tmp_path / "fga_blip2.pth"], tmp_path / "run", config, tok_dir)
    assert out == tmp_path / "run" and config["tokenizer"] == "build"  # the caller's dict is left alone
    saved = json.loads((out / "config.json").read_text())
    assert saved["tokenizer"] == str(tok_dir)
    again = load_tokenizer(str(out / "tokenizer"))
    assert again.get_vocab() == load_tokenizer(str(tok_dir), add_dec=True).get_vocab()
    assert "[DEC]" in again.get_vocab() and "[DEC]" not in load_tokenizer(str(tok_dir)).get_vocab()
    no_dec = cv.convert_to_run([tmp_path / "fga_blip2.pth"], tmp_path / "run2", {**config, "add_dec_token": False},
                               tok_dir)
    assert "[DEC]" not in load_tokenizer(str(no_dec / "tokenizer")).get_vocab()
    del config["tokenizer"]  # no tokenizer named: the run builds its own, nothing is copied
    bare = cv.convert_to_run([tmp_path / "fga_blip2.pth"], tmp_path / "run3", config, None)
    assert not (bare / "tokenizer").exists()


def test_the_command_s_help_names_each_input(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cv.main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith("usage: ")
    assert "sources [sources ...]" in text and "--out OUT" in text
    assert "Mapping table" not in text  # the description is the docstring's first line only
    for phrase in ("Map the official LAVIS checkpoint (``fga_blip2.pth``) onto :class:`.model.FGABlip2`, and back.",
                   "sources fga_blip2.pth (and eva_vit_g.pth when needed)", "--out OUT run folder to write",
                   "--config CONFIG full, tiny, or a JSON file (default: full)",
                   "--tokenizer TOKENIZER local bert-base-uncased folder"):
        assert phrase in text, phrase
    with pytest.raises(SystemExit) as exit_info:
        cv.main(["x.pth"])
    assert exit_info.value.code == 2 and "the following arguments are required: --out" in capsys.readouterr().err


def test_the_command_merges_a_checkpoint_without_its_vit_with_the_eva_weights(tmp_path, capsys) -> None:
    state = lavis_state()
    vit = {k.removeprefix("visual_encoder."): v for k, v in state.items() if k.startswith("visual_encoder.")}
    torch.save({"model": {k: v for k, v in state.items() if not k.startswith("visual_encoder.")}},
               tmp_path / "fga_blip2.pth")
    torch.save(vit, tmp_path / "eva_vit_g.pth")
    (tmp_path / "micro.json").write_text(json.dumps(micro_config()))
    args = ["--out", str(tmp_path / "run"), "--config", str(tmp_path / "micro.json")]
    with pytest.raises(ValueError, match=r"do not fit the config: \d+ missing"):
        cv.main([str(tmp_path / "fga_blip2.pth"), *args])  # strict: the ViT is missing
    assert cv.main([str(tmp_path / "fga_blip2.pth"), str(tmp_path / "eva_vit_g.pth"), *args]) == 0
    written = load_file(str(tmp_path / "run" / "model.safetensors"))
    expected = cv.from_lavis(state)
    assert written.keys() == expected.keys() and all(torch.equal(written[k], expected[k]) for k in written)
    assert (tmp_path / "run" / "config.json").read_text() == json.dumps(micro_config(), indent=2)


def test_the_command_checks_the_config_and_passes_the_tokenizer_on(tmp_path, capsys) -> None:
    from ntire_t2iqa_baselines.fga_blip2.tokenizer import build_tokenizer

    torch.save(lavis_state(), tmp_path / "fga_blip2.pth")
    (tmp_path / "bad.json").write_text(json.dumps({**micro_config(), "epochs": "many"}))
    with pytest.raises(SystemExit) as exit_info:
        cv.main([str(tmp_path / "fga_blip2.pth"), "--out", str(tmp_path / "run"), "--config",
                 str(tmp_path / "bad.json")])
    assert exit_info.value.code == 2 and "epochs" in capsys.readouterr().err
    build_tokenizer([SimpleNamespace(prompt="a red cat", elements=["cat (animal)"])], tmp_path / "bert")
    (tmp_path / "micro.json").write_text(json.dumps(micro_config()))
    out = tmp_path / "deep" / "er" / "run"
    assert cv.main([str(tmp_path / "fga_blip2.pth"), "--out", str(out), "--config", str(tmp_path / "micro.json"),
                    "--tokenizer", str(tmp_path / "bert")]) == 0
    assert json.loads((out / "config.json").read_text())["tokenizer"] == str(tmp_path / "bert")
    assert (out / "tokenizer" / "tokenizer_config.json").is_file()
    # converting again into the same folder replaces the files
    assert cv.main([str(tmp_path / "fga_blip2.pth"), "--out", str(out), "--config", str(tmp_path / "micro.json")]) == 0
    assert json.loads((out / "config.json").read_text())["tokenizer"] == "build"


def test_a_refusal_names_every_source_and_three_unexpected_names(tmp_path) -> None:
    state = lavis_state()
    torch.save(state, tmp_path / "a.pth")
    torch.save({f"mask_proj.extra{i}.weight": torch.zeros(1) for i in range(5)}, tmp_path / "b.pth")
    with pytest.raises(ValueError) as err:
        cv.load_weights(build_model(micro_config()), [tmp_path / "a.pth", tmp_path / "b.pth"])
    assert str(err.value) == (
        f"weights {tmp_path / 'a.pth'}, {tmp_path / 'b.pth'} do not fit the config: 0 missing (first: []), "
        "5 unexpected (first: ['mask_proj.extra0.weight', 'mask_proj.extra1.weight', 'mask_proj.extra2.weight']). "
        "A LAVIS checkpoint without visual_encoder.* needs eva_vit_g.pth too.")
