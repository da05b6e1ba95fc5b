"""RAHF baseline (Track 2): training, resume, checkpoint layouts, the inference threshold, the submission.

Everything runs on a micro config (32 px, one layer each) over a synthetic challenge built here.
"""

from __future__ import annotations

import importlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from helpers import rahf_micro  # noqa: E402

from ntire_t2iqa import score, validate  # noqa: E402
from ntire_t2iqa.data import ChallengePaths, SynthSize  # noqa: E402
from ntire_t2iqa_baselines.common.runtime import load_state_dict  # noqa: E402
from ntire_t2iqa_baselines.rahf import CONFIGS, predict, train  # noqa: E402
from ntire_t2iqa_baselines.rahf.convert import (  # noqa: E402
    load_altclip_encoders,
    load_weights,
    ours_to_official,
    read_official_checkpoint,
    save_official_checkpoint,
)
from ntire_t2iqa_baselines.rahf.model import build_model, resize_position_table, text_config, vision_config  # noqa: E402
from ntire_t2iqa_baselines.rahf.predict import THRESHOLD, heatmap_to_mask  # noqa: E402
from ntire_t2iqa_baselines.rahf.train import load_run_state as load_state  # noqa: E402

MICRO: dict[str, Any] = rahf_micro(
    {"epochs": 8, "batch_size": 8, "lr": 0.003, "warmup_steps": 2, "freeze_fraction": 0.25,
     "augment": {"hflip": 0.5, "crop": 0.3, "grayscale": 0.1}, "cache_images": True, "cpu_threads": "auto"})


def micro(**train_overrides: Any) -> dict[str, Any]:
    """A fresh copy of the micro config with ``train`` keys replaced."""
    config = json.loads(json.dumps(MICRO))
    config["train"].update(train_overrides)
    return config


@pytest.fixture(scope="session")
def data(synth_challenge: Callable[..., Path]) -> Path:
    """A Track 2 synthetic challenge: 48 train, 8 val, 8 test images."""
    return synth_challenge(3, SynthSize((0, 4, 4), 1, (48, 8, 8)), ("structure",))


@pytest.fixture(scope="session")
def run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A micro run, trained for 8 epochs (48 steps)."""
    return train(data, tmp_path_factory.mktemp("rahf_run") / "run", micro(), "cpu", 0, progress=False)


def _weights(folder: Path) -> dict[str, Any]:
    return load_state_dict(folder)


def test_configs_are_complete_json() -> None:
    for name, path in CONFIGS.items():
        config = json.loads(Path(path).read_text())
        assert config["name"] == name
        keys = {"image_size", "patch_size", "width", "vision", "text", "fusion", "heatmap", "score", "train"}
        assert keys <= set(config)
    full = json.loads(Path(CONFIGS["full"]).read_text())
    assert (full["image_size"], full["patch_size"], full["width"], full["fusion"]["layers"]) == (448, 14, 1024, 6)
    assert (full["train"]["lr"], full["train"]["freeze_fraction"]) == (2e-5, 0.5)


def test_loss_falls(run: Path) -> None:
    history = load_state(run)["extra"]["history"]
    assert len(history) == 8
    first, last = (h["heatmap_loss"] + h["score_loss"] for h in (history[0], history[-1]))
    assert last < 0.5 * first, history


def test_submission_validates_and_scores(data: Path, run: Path, tmp_path: Path) -> None:
    from ntire_t2iqa_baselines.common.submission import write_submission
    from ntire_t2iqa_baselines.registry import get

    preds = predict(data, "val", run, "cpu", 4, progress=False)
    paths = ChallengePaths(data)
    assert set(preds) == set(json.loads(paths.structure_inputs("val").read_text()))
    for rec in preds.values():
        assert rec["pred_area"].shape == (512, 512) and rec["pred_area"].dtype == np.uint8
        assert set(np.unique(rec["pred_area"])) <= {0, 1}
        assert 0.0 <= rec["score"] <= 1.0  # the raw sigmoid, as upstream's evaluate.py submits it
    zip_path = write_submission(get("rahf"), preds, tmp_path / "rahf.zip", 0.01, False, data, "val")
    assert zip_path.valid
    assert validate(tmp_path / "rahf.zip", "structure", paths.inputs("structure", "val")).valid
    result = score(tmp_path / "rahf.zip", paths.reference("structure", "val"), "structure")
    assert 0.0 <= result.f1 <= 1.0 and np.isfinite(result.main_score)


def test_resume_continues_at_next_epoch(data: Path, run: Path, tmp_path: Path) -> None:
    resumed = tmp_path / "resumed"
    shutil.copytree(run, resumed)
    before = _weights(resumed)
    train(data, resumed, micro(epochs=9), "cpu", 0, progress=False)
    state = load_state(resumed)
    assert state["epoch"] == 8 and [h["epoch"] for h in state["extra"]["history"]] == list(range(9))
    assert state["extra"]["finished"]
    assert any(not torch.equal(before[k], v) for k, v in _weights(resumed).items())
    with pytest.raises(ValueError, match="another config"):
        train(data, resumed, micro(lr=0.1), "cpu", 0, progress=False)


def test_interrupted_run_resumes_to_the_same_weights(data: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    config = micro(epochs=2)
    straight = train(data, tmp_path / "straight", config, "cpu", 0, progress=False)
    # the module (the package's `train` is the function)
    rahf_train = importlib.import_module("ntire_t2iqa_baselines.rahf.train")
    real_save = rahf_train.save_checkpoint

    def save_then_stop(*args: Any, **kwargs: Any) -> None:
        real_save(*args, **kwargs)
        raise KeyboardInterrupt  # killed right after the first epoch's checkpoint

    monkeypatch.setattr(rahf_train, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(data, tmp_path / "broken", config, "cpu", 0, progress=False)
    monkeypatch.setattr(rahf_train, "save_checkpoint", real_save)
    assert load_state(tmp_path / "broken")["epoch"] == 0
    train(data, tmp_path / "broken", config, "cpu", 0, progress=False)
    a, b = _weights(straight), _weights(tmp_path / "broken")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _micro_model(seed: int = 0, **changes: Any) -> Any:
    config = micro()
    config["text"]["vocab_size"] = 40
    config["text"]["max_position_embeddings"] = 18
    config.update(changes)
    torch.manual_seed(seed)
    return build_model(config).eval(), config


def test_official_checkpoint_round_trip(tmp_path: Path) -> None:
    model, config = _micro_model(0)
    path = save_official_checkpoint(model, tmp_path / "last.pth")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    keys = set(raw["model"])
    for expected in ("image_encoder.ViT.embeddings.patch_embedding.weight",
                     "text_encoder.text_embedding.word_embeddings.weight",
                     "self_attention.layers.0.attention.module.to_q.weight",
                     "self_attention.layers.0.feed_forward.module.ff.2.bias", "self_attention.norm.weight",
                     "heatmap_predictor.conv_layers.4.weight", "heatmap_predictor.deconv_layers.3.7.weight",
                     "heatmap_predictor.final_layers.0.weight", "score_predictor.conv_layers.1.1.weight",
                     "score_predictor.fc_layers.2.weight"):
        assert expected in keys, expected
    other, _ = _micro_model(1)
    load_weights(other, read_official_checkpoint(path))
    mine, theirs = model.state_dict(), other.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    ddp = {"module." + k: v for k, v in ours_to_official(mine).items()}  # as saved from a DDP wrapper
    third, _ = _micro_model(2)
    load_weights(third, ddp)
    pixels, ids = torch.randn(2, 3, 32, 32), torch.randint(0, 40, (2, 16))
    with torch.no_grad():
        for out_a, out_b in zip(model(pixels, ids), third(pixels, ids)):
            assert torch.equal(out_a, out_b)


def test_official_checkpoint_predicts_like_the_run(data: Path, run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "official"
    folder.mkdir()
    for name in ("config.json", "word_tokenizer.json"):
        shutil.copy(run / name, folder / name)
    model = build_model(json.loads((run / "config.json").read_text()))
    load_weights(model, load_state_dict(run))
    save_official_checkpoint(model, folder / "checkpoint.pth")
    a = predict(data, "test", run, "cpu", None, progress=False)
    b = predict(data, "test", folder / "checkpoint.pth", "cpu", None, progress=False)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k]["score"] == pytest.approx(b[k]["score"], abs=1e-6)
        assert np.array_equal(a[k]["pred_area"], b[k]["pred_area"])


def test_checkpoint_with_code_is_refused(tmp_path: Path) -> None:
    model, _ = _micro_model(0)
    torch.save({"model": ours_to_official(model.state_dict()), "payload": Path("x")}, tmp_path / "evil.pth")
    with pytest.raises(Exception, match="(?i)weights"):
        read_official_checkpoint(tmp_path / "evil.pth")


def test_altclip_weights_load_with_interpolated_positions(tmp_path: Path) -> None:
    from safetensors.torch import save_file
    from transformers import AltCLIPVisionModel
    from transformers.models.altclip.modeling_altclip import AltRobertaEmbeddings

    model, config = _micro_model(6)  # 4 x 4 grid
    torch.manual_seed(5)
    vision = AltCLIPVisionModel(vision_config({**config, "image_size": 16}))  # 2 x 2, as 224 px is 16 x 16
    text = AltRobertaEmbeddings(text_config(config))
    state = {f"vision_model.{k}": v.contiguous() for k, v in vision.state_dict().items()}
    state.update({f"text_model.roberta.embeddings.{k}": v for k, v in text.state_dict().items()})
    state["text_model.transformation.weight"] = torch.zeros(3, 3)  # ignored
    save_file(state, str(tmp_path / "model.safetensors"))
    load_altclip_encoders(model, tmp_path)
    table = vision.embeddings.position_embedding.weight
    assert table.shape[0] == 5 and model.vision.embeddings.position_embedding.weight.shape[0] == 17
    assert torch.allclose(model.vision.embeddings.position_embedding.weight, resize_position_table(table, 4))
    assert torch.equal(model.vision.encoder.layers[0].mlp.fc1.weight, vision.encoder.layers[0].mlp.fc1.weight)
    assert torch.equal(model.text_embeddings.word_embeddings.weight, text.word_embeddings.weight)


def test_threshold_rule_on_a_hand_made_heatmap() -> None:
    assert THRESHOLD == 40
    h = np.zeros((4, 6), np.float32)
    h[0, :] = np.array([40.0, 40.4, 40.5, 40.6, 41.0, 255.0]) / 255  # round(): 40, 40, 40 (half to even), 41, 41, 255
    h[1, :] = np.array([0.0, 1.0, 0.5, 0.16, 0.15, 0.2])            # 0, 255, 128 (half to even), 41, 38, 51
    mask = heatmap_to_mask(h)
    assert mask.dtype == np.uint8 and mask.shape == (4, 6)
    assert mask[0].tolist() == [0, 0, 0, 1, 1, 1]
    assert mask[1].tolist() == [0, 1, 1, 1, 0, 1]
    assert mask[2:].sum() == 0
    assert np.array_equal(heatmap_to_mask(torch.from_numpy(h)), mask)
    with pytest.raises(ValueError, match="2-D"):
        heatmap_to_mask(h[None])


def test_gpu_benchmark_runs_tiny_on_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    from bench_rahf_gpu import main

    assert main(["--tiny", "--device", "cpu", "--batch", "2", "--iters", "1", "--warmup", "0",
                 "--train-batch", "2", "--train-iters", "1", "--fp32", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["inference"]["images_per_s"] > 0 and result["inference"]["mask_shape"] == [512, 512]
    assert result["train_step"]["seconds_per_step"] > 0 and result["meets_target"] is None


def test_convert_command_writes_a_run_folder(tmp_path: Path) -> None:
    from ntire_t2iqa_baselines.rahf.convert import main as convert_main

    model, config = _micro_model(3)
    save_official_checkpoint(model, tmp_path / "last.pth")
    (tmp_path / "micro.json").write_text(json.dumps(config))
    convert_main([str(tmp_path / "last.pth"), str(tmp_path / "run"), "--config", str(tmp_path / "micro.json")])
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == config
    converted = load_state_dict(tmp_path / "run")
    assert all(torch.equal(converted[k], v) for k, v in model.state_dict().items())


def test_demo_submission_trains_once_then_reuses_the_run(data: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import ntire_t2iqa_baselines.rahf as rahf

    (tmp_path / "micro.json").write_text(json.dumps(micro(epochs=1)))
    monkeypatch.setitem(rahf.CONFIGS, "tiny", tmp_path / "micro.json")
    monkeypatch.setattr(rahf, "DEMO_EPOCHS", 1)
    cache = tmp_path / "cache"
    out = rahf.demo_submission(data, "test", tmp_path / "demo.zip", cache, progress=False)
    assert validate(out, "structure", ChallengePaths(data).inputs("structure", "test")).valid
    stamp = (cache / "model.safetensors").stat().st_mtime_ns
    rahf.demo_submission(data, "test", tmp_path / "demo2.zip", cache, progress=False)
    assert (cache / "model.safetensors").stat().st_mtime_ns == stamp


def test_altclip_tokenizer_pads_prefixed_prompts_from_a_local_folder(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from ntire_t2iqa_baselines.rahf.tokenizer import AltCLIPTokenizer

    words = ["<s>", "<pad>", "</s>", "<unk>", "human", "artifact", "a", "cat"]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                            unk_token="<unk>").save_pretrained(tmp_path)
    ids = AltCLIPTokenizer(tmp_path, 8)(["a cat", "a dog a cat a cat a cat"])
    assert ids.shape == (2, 8)
    assert ids[0].tolist() == [4, 5, 6, 7, 1, 1, 1, 1]  # "human artifact a cat", then <pad>
    assert ids[1, :2].tolist() == [4, 5] and 3 in ids[1].tolist()  # truncated to 8; "dog" is unknown


def test_shared_checkpoint_state_loads_with_weights_only(tmp_path) -> None:
    """The framework's save_checkpoint writes only what torch.load(weights_only=True) accepts."""
    torch = pytest.importorskip("torch")
    from ntire_t2iqa_baselines.common.runtime import load_state, save_checkpoint

    model = torch.nn.Linear(3, 2)
    save_checkpoint(tmp_path, model, {"name": "x"}, 4, torch.optim.AdamW(model.parameters()))
    state = load_state(tmp_path)
    assert state["epoch"] == 4 and state["numpy_rng"].shape == (624,)
