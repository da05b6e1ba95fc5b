"""The RAHF converter's pieces, each against hand-written key names and values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from helpers import rahf_micro  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from ntire_t2iqa_baselines.common.runtime import load_state_dict  # noqa: E402
from ntire_t2iqa_baselines.rahf import convert as cv  # noqa: E402
from ntire_t2iqa_baselines.rahf.model import build_model, resize_position_table  # noqa: E402

T = torch.zeros(1)


def micro_config(**changes) -> dict:
    config = rahf_micro({"epochs": 1, "batch_size": 2, "lr": 0.003, "warmup_steps": 1, "freeze_fraction": 0.25,
                         "augment": {}, "cache_images": True, "cpu_threads": "auto"})
    config["text"].update(vocab_size=40, max_position_embeddings=18)
    config.update(changes)
    return config


def micro_model(seed: int = 0, **changes):
    torch.manual_seed(seed)
    model = build_model(micro_config(**changes))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
    return model


def test_prefix_rules_carry_named_parts_in_both_directions() -> None:
    pairs = [("a.{layer}.to_{proj}.", "b.{layer}.{proj}."), ("n.{norm}.", "m.{norm}.")]
    forward, backward = cv._prefix_rules(pairs, reverse=False), cv._prefix_rules(pairs, reverse=True)
    assert forward == [(r"^a\.(?P<layer>\d+)\.to_(?P<proj>q|k|v|out)\.", r"b.\g<layer>.\g<proj>."),
                       (r"^n\.(?P<norm>norm1|norm2)\.", r"m.\g<norm>.")]
    assert backward == [(r"^b\.(?P<layer>\d+)\.(?P<proj>q|k|v|out)\.", r"a.\g<layer>.to_\g<proj>."),
                        (r"^m\.(?P<norm>norm1|norm2)\.", r"n.\g<norm>.")]
    assert cv._rename("a.12.to_out.weight", forward) == "b.12.out.weight"
    assert cv._rename("xa.12.to_out.weight", forward) is None and cv._rename("a.1.to_z.w", forward) is None
    assert cv._rename("n.norm2.n.norm1.bias", forward) == "m.norm2.n.norm1.bias"  # the first match only, once


@pytest.mark.parametrize(("official", "ours"), [
    ("image_encoder.ViT.encoder.layers.0.mlp.fc1.weight", "vision.encoder.layers.0.mlp.fc1.weight"),
    ("text_encoder.text_embedding.word_embeddings.weight", "text_embeddings.word_embeddings.weight"),
    ("self_attention.layers.3.attention.module.to_out.weight", "fusion.blocks.3.attn.out.weight"),
    ("self_attention.layers.0.attention.module.to_k.weight", "fusion.blocks.0.attn.k.weight"),
    ("self_attention.layers.1.feed_forward.module.ff.2.bias", "fusion.blocks.1.mlp.2.bias"),
    ("self_attention.layers.2.norm2.weight", "fusion.blocks.2.norm2.weight"),
    ("self_attention.norm.bias", "fusion.norm.bias"),
    ("heatmap_predictor.conv_layers.3.weight", "heatmap_head.stem.3.weight"),
    ("heatmap_predictor.deconv_layers.2.6.running_mean", "heatmap_head.stages.2.6.running_mean"),
    ("heatmap_predictor.final_layers.0.bias", "heatmap_head.out.bias"),
    ("score_predictor.fc_layers.4.weight", "score_head.mlp.4.weight"),
    ("score_predictor.conv_layers.0.1.weight", "score_head.convs.1.weight"),
    ("score_predictor.conv_layers.2.0.bias", "score_head.convs.6.bias"),
    ("score_predictor.conv_layers.3.1.running_var", "score_head.convs.10.running_var"),
])
def test_official_keys_and_ours_map_one_to_one(official: str, ours: str) -> None:
    assert cv.official_to_ours({official: T}) == {ours: T}
    assert cv.official_to_ours({"module." + official: T}) == {ours: T}
    assert cv.ours_to_official({ours: T}) == {official: T}


def test_index_buffers_are_dropped_and_unknown_keys_named() -> None:
    assert cv.official_to_ours({"text_encoder.text_embedding.position_ids": T,
                                "module.image_encoder.ViT.embeddings.token_type_ids": T}) == {}
    assert cv.ignored_reason("a.position_ids", "official") == \
        "index buffers (position and token-type ids), recomputed by the model"
    assert cv.ignored_reason("a.position_idsX", "official") is None
    assert cv.ignored_reason("logit_scale", "altclip") == "CLIP's contrastive temperature: unused"
    assert cv.ignored_reason("logit_scale", "official") is None
    unknown = {f"self_attention.layers.0.gate{i}.weight": T for i in range(4)}
    with pytest.raises(ValueError) as err:
        cv.official_to_ours({"self_attention.norm.bias": T, **unknown})
    assert str(err.value) == ("4 EM-RAHF key(s) have no place in this model, e.g. ['self_attention.layers.0.gate0."
                              "weight', 'self_attention.layers.0.gate1.weight', "
                              "'self_attention.layers.0.gate2.weight']")
    with pytest.raises(ValueError) as err:
        cv.ours_to_official({"fusion.norm.bias": T, "nowhere.weight": T})
    assert str(err.value) == "key 'nowhere.weight' has no EM-RAHF name"


@pytest.mark.parametrize(("keys", "layout"), [
    (["image_encoder.ViT.x"], "official"), (["module.heatmap_predictor.x"], "official"),
    (["self_attention.norm.bias", "vision.x"], "official"), (["vision_model.x"], "altclip"),
    (["text_model.roberta.x"], "altclip"), (["vision.x"], "ours"), (["module.heatmap_head.out.bias"], "ours"),
    (["fusion.norm.bias"], "ours"),
])
def test_layouts_are_told_apart_by_their_prefixes(keys: list[str], layout: str) -> None:
    assert cv.layout_of(dict.fromkeys(keys)) == layout


def test_an_unknown_layout_is_refused_with_what_was_expected() -> None:
    with pytest.raises(ValueError) as err:
        cv.layout_of({"model.vision.x": T})
    assert str(err.value) == ("the weights have neither this baseline's keys, nor EM-RAHF's (image_encoder., "
                              "heatmap_predictor., ...), nor AltCLIP's (vision_model., text_model.)")


def test_altclip_keys_map_to_the_encoders_and_the_rest_is_dropped_for_its_reason() -> None:
    state = {"vision_model.embeddings.patch_embedding.weight": T, "text_model.roberta.embeddings.LayerNorm.bias": T,
             "text_model.roberta.encoder.layer.0.x": T, "text_model.roberta.pooler.dense.weight": T,
             "text_model.transformation.weight": T, "text_model.pre_LN.bias": T, "text_projection.weight": T,
             "visual_projection.weight": T, "logit_scale": T, "vision_model.embeddings.position_ids": T}
    assert cv.altclip_to_ours(state) == {"vision.embeddings.patch_embedding.weight": T,
                                         "text_embeddings.LayerNorm.bias": T}
    assert cv.to_ours(state) == cv.altclip_to_ours(state)
    with pytest.raises(ValueError) as err:
        cv.altclip_to_ours({**state, "text_model.head.weight": T, "vision.x": T, "a": T, "b": T})
    assert str(err.value) == ("4 AltCLIP key(s) are neither encoder weights nor known unused parts, e.g. "
                              "['text_model.head.weight', 'vision.x', 'a']; is this a BAAI/AltCLIP checkpoint?")


def test_our_own_layout_loses_only_the_ddp_prefix_and_the_buffers() -> None:
    state = {"module.vision.a": T, "fusion.norm.bias": T, "text_embeddings.position_ids": T}
    assert cv.to_ours(state) == {"vision.a": T, "fusion.norm.bias": T}
    assert cv.to_ours({"image_encoder.ViT.a": T}) == {"vision.a": T}


def test_a_position_table_of_another_grid_is_resized_and_the_input_left_alone() -> None:
    model = micro_model()  # 32 px, patch 8: a 4 x 4 grid
    table = torch.randn(1 + 9, 32)
    state = {cv.POSITION_KEY: table, "fusion.norm.bias": T}
    fitted = cv.fit_position_table(state, model)
    assert fitted[cv.POSITION_KEY].shape == (17, 32) and state[cv.POSITION_KEY] is table
    assert torch.equal(fitted[cv.POSITION_KEY], resize_position_table(table, 4))
    same = {cv.POSITION_KEY: torch.randn(17, 32)}
    assert cv.fit_position_table(same, model) is same
    assert cv.fit_position_table({"fusion.norm.bias": T}, model) == {"fusion.norm.bias": T}


def test_loading_refuses_extra_misshapen_or_missing_keys_by_name() -> None:
    model = micro_model()
    state = model.state_dict()
    other = micro_model(1)
    assert cv.load_weights(other, cv.ours_to_official(state)) == []
    assert all(torch.equal(other.state_dict()[k], v) for k, v in state.items())
    extra = {f"fusion.extra{i}.weight": T for i in range(5)}
    with pytest.raises(ValueError) as err:
        cv.load_weights(micro_model(), {**state, **extra})
    assert str(err.value) == ("5 key(s) are not in this model, e.g. ['fusion.extra0.weight', 'fusion.extra1.weight', "
                              "'fusion.extra2.weight']; is it the right config?")
    misshapen = {"fusion.norm.bias": torch.zeros(5), "fusion.norm.weight": torch.zeros(6),
                 "score_head.mlp.0.bias": torch.zeros(7), "heatmap_head.out.bias": torch.zeros(8)}
    with pytest.raises(ValueError) as err:
        cv.load_weights(micro_model(), {**state, **misshapen})
    shown = [f"{k}: {tuple(v.shape)} vs {tuple(state[k].shape)}" for k, v in misshapen.items() if k in state]
    assert len(shown) == 4
    message = str(err.value)
    assert message.startswith("4 shape mismatch(es), e.g. ['")
    assert message.endswith("']; the weights were made with another config")
    assert sum(f"'{m}'" in message for m in shown) == 3  # three named, in the model's order
    heads = {k: v for k, v in state.items() if not k.startswith("score_head.")}
    missing = sorted(k for k in state if k.startswith("score_head."))
    with pytest.raises(ValueError) as err:
        cv.load_weights(micro_model(), heads)
    assert str(err.value) == (f"{len(missing)} model key(s) are missing from the weights, e.g. {missing[:3]}")
    fresh = micro_model(2)
    before = fresh.state_dict()["score_head.mlp.0.weight"].clone()
    assert cv.load_weights(fresh, heads, strict=False) == missing
    assert torch.equal(fresh.state_dict()["score_head.mlp.0.weight"], before)
    assert torch.equal(fresh.state_dict()["fusion.norm.bias"], state["fusion.norm.bias"])


def test_an_official_checkpoint_round_trips(tmp_path: Path) -> None:
    model = micro_model()
    path = cv.save_official_checkpoint(model, str(tmp_path / "last.pth"))
    assert path == tmp_path / "last.pth"
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert list(raw) == ["model"]
    assert raw["model"].keys() == cv.ours_to_official(model.state_dict()).keys()
    back = cv.read_official_checkpoint(path)
    assert back.keys() == raw["model"].keys() and all(torch.equal(back[k], raw["model"][k]) for k in back)


def _altclip_state(model) -> dict:
    """A model's encoder weights under AltCLIP names, plus parts AltCLIP has that RAHF drops."""
    state = {k.replace("vision.", "vision_model.", 1).replace("text_embeddings.", "text_model.roberta.embeddings.", 1):
             v.clone() for k, v in model.state_dict().items() if k.startswith(("vision.", "text_embeddings."))}
    return {**state, "logit_scale": torch.tensor(2.0), "text_projection.weight": torch.zeros(2, 2)}


@pytest.mark.parametrize("form", ["safetensors", "bin", "sharded", "sharded-bin"])
def test_altclip_encoders_load_from_every_folder_form(tmp_path: Path, form: str) -> None:
    source = micro_model(5)
    state = _altclip_state(source)
    if form == "safetensors":
        save_file(state, str(tmp_path / "model.safetensors"))
    elif form == "bin":
        torch.save(state, tmp_path / "pytorch_model.bin")
    else:
        names = sorted(state)
        half = len(names) // 2
        suffix = ".bin" if form == "sharded-bin" else ".safetensors"
        for shard, keys in (("a", names[:half]), ("b", names[half:])):
            if suffix == ".bin":
                torch.save({k: state[k] for k in keys}, tmp_path / f"{shard}.bin")
            else:
                save_file({k: state[k] for k in keys}, str(tmp_path / f"{shard}.safetensors"))
        weight_map = {k: ("a" if i < half else "b") + suffix for i, k in enumerate(names)}
        index = "pytorch_model.bin.index.json" if suffix == ".bin" else "model.safetensors.index.json"
        (tmp_path / index).write_text(json.dumps({"weight_map": weight_map}))
    target = micro_model(6)
    untouched = target.state_dict()["score_head.mlp.0.weight"].clone()
    cv.load_altclip_encoders(target, tmp_path)
    for key, value in source.state_dict().items():
        if key.startswith(("vision.", "text_embeddings.")):
            assert torch.equal(target.state_dict()[key], value), key
    assert torch.equal(target.state_dict()["score_head.mlp.0.weight"], untouched)


def test_altclip_folders_without_weights_or_with_missing_ones_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        cv.load_altclip_encoders(micro_model(), tmp_path)
    assert str(err.value) == f"{tmp_path} holds no AltCLIP weights (model.safetensors or pytorch_model.bin)"
    state = _altclip_state(micro_model())
    gone = sorted(k for k in state if k.startswith("text_model."))
    save_file({k: v for k, v in state.items() if k not in gone}, str(tmp_path / "model.safetensors"))
    expected = sorted(k.replace("text_model.roberta.embeddings.", "text_embeddings.") for k in gone)
    with pytest.raises(ValueError) as err:
        cv.load_altclip_encoders(micro_model(), tmp_path)
    assert str(err.value) == f"{tmp_path}: {len(expected)} encoder weight(s) missing, e.g. {expected[:3]}"


def test_the_command_converts_and_records_the_altclip_folder(tmp_path: Path, capsys) -> None:
    model = micro_model(7)
    cv.save_official_checkpoint(model, tmp_path / "last.pth")
    (tmp_path / "micro.json").write_text(json.dumps(micro_config()))
    (tmp_path / "altclip").mkdir()
    cv.main([str(tmp_path / "last.pth"), str(tmp_path / "run"), "--config", str(tmp_path / "micro.json"),
             "--altclip", str(tmp_path / "altclip" / ".." / "altclip")])
    n = sum(p.numel() for p in model.parameters())
    assert capsys.readouterr().out == f"wrote {tmp_path / 'run'} ({n:,} parameters)\n"
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config == {**micro_config(), "altclip_dir": str((tmp_path / "altclip").resolve())}
    written = load_state_dict(tmp_path / "run")
    assert all(torch.equal(written[k], v) for k, v in model.state_dict().items())
    (tmp_path / "bad.json").write_text(json.dumps({"name": "broken"}))
    with pytest.raises(SystemExit) as exit_info:
        cv.main([str(tmp_path / "last.pth"), str(tmp_path / "run2"), "--config", str(tmp_path / "bad.json")])
    assert exit_info.value.code == 2 and "bad.json" in capsys.readouterr().err


def test_an_altclip_bin_that_holds_more_than_tensors_is_refused_unread(tmp_path: Path) -> None:
    import argparse
    import pickle

    state = _altclip_state(micro_model())
    torch.save({**state, "vision_model.extra": argparse.Namespace(code="runs on load")}, tmp_path / "pytorch_model.bin")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        cv.load_altclip_encoders(micro_model(), tmp_path)


def test_the_command_s_help_and_the_run_state_it_writes(tmp_path: Path, capsys) -> None:
    from ntire_t2iqa_baselines.common.runtime import load_state

    with pytest.raises(SystemExit) as exit_info:
        cv.main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("usage: ", "checkpoint run_dir",
                   "Weights in other layouts -> this package's :class:`~ntire_t2iqa_baselines.rahf.model.RAHF`, "
                   "loaded safely.", "checkpoint EM-RAHF .pth ({'model': state_dict})", "run_dir run folder to write",
                   "--config CONFIG config JSON (default: full)",
                   "--altclip ALTCLIP local AltCLIP folder (its tokenizer is used at inference)"):
        assert phrase in text, phrase
    model = micro_model(8)
    cv.save_official_checkpoint(model, tmp_path / "last.pth")
    (tmp_path / "micro.json").write_text(json.dumps(micro_config()))
    cv.main([str(tmp_path / "last.pth"), str(tmp_path / "run"), "--config", str(tmp_path / "micro.json")])
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == micro_config()  # no altclip_dir added
    state = load_state(tmp_path / "run")
    assert state["epoch"] == -1
    assert state["extra"] == {"converted_from": str(tmp_path / "last.pth"), "finished": True}


def test_the_command_reads_the_full_config_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ntire_t2iqa_baselines.rahf as rahf

    (tmp_path / "stand-in.json").write_text(json.dumps(micro_config()))
    monkeypatch.setitem(rahf.CONFIGS, "full", tmp_path / "stand-in.json")  # the full model is too big for a test
    cv.save_official_checkpoint(micro_model(9), tmp_path / "last.pth")
    cv.main([str(tmp_path / "last.pth"), str(tmp_path / "run")])
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == micro_config()
