"""lvlm-stack baseline: first-token scoring, MSE-on-expectation training, folds/OOF, blend, submission, resume.

Everything runs on a micro config (3 folds, a ~50k-parameter Qwen2.5-VL) over a
synthetic challenge built here, so the file takes well under a minute on 2 CPU cores.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("xgboost")
pytest.importorskip("accelerate")

from click.testing import CliRunner  # noqa: E402

from ntire_t2iqa import score, validate  # noqa: E402
from ntire_t2iqa.cli import main  # noqa: E402
from ntire_t2iqa.data import ChallengePaths, SynthSize, load_folds, make_folds  # noqa: E402
from ntire_t2iqa_baselines.common.data import align_items  # noqa: E402
from ntire_t2iqa_baselines.common.runtime import load_state_dict  # noqa: E402
from ntire_t2iqa_baselines.lvlm_stack import CONFIGS, folds, recipe  # noqa: E402
from ntire_t2iqa_baselines.lvlm_stack import prompts as P  # noqa: E402
from ntire_t2iqa_baselines.lvlm_stack.model import (  # noqa: E402
    Collator,
    Example,
    ImageEncoder,
    Scorer,
    add_lora,
    build_tiny_model,
    expectation_mse,
    expected_value,
    model_inputs,
)
from ntire_t2iqa_baselines.lvlm_stack.tokenizer import build_tiny_tokenizer, single_token_id  # noqa: E402


def micro_config() -> dict:
    """The tiny config shrunk: 3 folds, 2 epochs, a 1-layer text model."""
    cfg = json.loads(Path(CONFIGS["tiny"]).read_text())
    cfg["model"]["tiny"].update(text_hidden=32, text_intermediate=64, text_layers=1, heads=2, kv_heads=1,
                                vision_hidden=16, vision_heads=1, vision_intermediate=32, vocab_size=400)
    cfg["lora"].update(r=4, alpha=8)
    cfg["train"].update(folds=3, epochs=2, batch_images=4, warmup_steps=2, lr_lm=0.01, lr_vision=0.001)
    cfg["infer"]["batch_images"] = 8
    cfg["stack"]["regressor"]["n_estimators"] = 20
    cfg["stack"]["classifier"]["n_estimators"] = 20
    return cfg


@pytest.fixture(scope="module", autouse=True)
def one_thread(torch_one_thread: None) -> None:
    """Micro models run on one torch thread in this module (conftest's ``torch_one_thread``)."""


@pytest.fixture(scope="module")
def challenge(synth_challenge: Callable[..., Path]) -> Path:
    return synth_challenge(5, SynthSize((9, 4, 4), 2, (0, 4, 4)), ("align",))


@pytest.fixture(scope="module")
def trained(challenge: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("lvlm") / "run"
    recipe.train(challenge, run, micro_config(), "cpu", 0)
    return run


@pytest.fixture(scope="module")
def tiny_parts(challenge: Path):
    items = align_items(challenge, "train")
    tok = build_tiny_tokenizer(P.corpus(items), 400)
    cfg = micro_config()
    spec = {**cfg["model"]["tiny"], "patch_size": 14, "merge_size": 2}
    encoder = ImageEncoder({k: cfg["model"][k] for k in ("patch_size", "merge_size", "min_pixels", "max_pixels")},
                           cache=True)
    return items, tok, spec, encoder


def test_expected_value_is_softmax_over_answer_tokens_by_hand() -> None:
    logits = torch.tensor([[0.3, 2.0, -1.0, 0.5, 1.0, 4.0, 0.0],
                           [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 9.0]])
    answer_ids = torch.tensor([1, 2, 3, 4, 5])          # "1".."5" sit at vocab ids 1..5 here
    values = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    got = expected_value(logits, answer_ids, values)
    for row, g in zip(logits.tolist(), got.tolist()):
        e = [math.exp(row[i]) for i in (1, 2, 3, 4, 5)]
        want = sum(v * x for v, x in zip((1, 2, 3, 4, 5), e)) / sum(e)
        assert g == pytest.approx(want, abs=1e-6)
    # token 6 (not an answer) must not matter; a two-answer task gives P("1")
    assert got[1].item() == pytest.approx(3.0, abs=1e-6)
    p1 = expected_value(torch.tensor([[0.0, 2.0]]), torch.tensor([0, 1]), torch.tensor([0.0, 1.0])).item()
    assert p1 == pytest.approx(math.exp(2) / (1 + math.exp(2)), abs=1e-6)


def test_answers_are_single_tokens_and_loss_is_mse_in_task_units(tiny_parts) -> None:
    _, tok, _, _ = tiny_parts
    assert len({single_token_id(tok, a) for a in P.OVERALL.answers + P.ELEMENT.answers}) == 6
    pred = torch.tensor([3.0, 0.2, 0.9])
    target = torch.tensor([5.0, 0.0, 1.0])
    task = torch.tensor([0, 1, 1])
    want = ((3 - 5) / 4) ** 2 + ((0.2 - 0) ** 2 + (0.9 - 1) ** 2) / 2
    assert expectation_mse(pred, target, task).item() == pytest.approx(want, abs=1e-6)


def test_rope_positions_match_qwen_get_rope_index(tiny_parts) -> None:
    items, tok, spec, encoder = tiny_parts
    model = build_tiny_model(spec, tok, 0)
    batch = Collator(tok, 2)([Example(it, *encoder(it.image_file), it.elements[:2]) for it in items[:3]])
    per_seq = torch.tensor([3, 3, 3])
    want, _ = model.model.get_rope_index(batch["input_ids"], batch["mm_token_type_ids"],
                                         image_grid_thw=batch["image_grid_thw"].repeat_interleave(per_seq, 0),
                                         attention_mask=batch["attention_mask"])
    mask = batch["attention_mask"].bool()
    assert torch.equal(want[:, mask], batch["position_ids"][:, mask])
    # the scorer's shared-vision path equals the plain HF forward with pixel values repeated per sequence
    scorer = Scorer(model, tok).eval()
    with torch.no_grad():
        ours = scorer(**model_inputs(batch, torch.device("cpu")))
        pix = torch.cat([batch["pixel_values"][i * 16:(i + 1) * 16] for i in range(3) for _ in range(3)])
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], pixel_values=pix,
                    image_grid_thw=batch["image_grid_thw"].repeat_interleave(per_seq, 0),
                    mm_token_type_ids=batch["mm_token_type_ids"], logits_to_keep=1)
    first = out.logits[0, -1]
    ids = torch.tensor([single_token_id(tok, a) for a in P.OVERALL.answers])
    assert ours[0].item() == pytest.approx(expected_value(first, ids, torch.arange(1.0, 6.0)).item(), abs=1e-4)


def test_mse_on_expectation_falls_with_lora(tiny_parts) -> None:
    items, tok, spec, encoder = tiny_parts
    torch.manual_seed(0)
    scorer = Scorer(add_lora(build_tiny_model(spec, tok, 1), {"r": 8, "alpha": 16, "vision": True}), tok)
    batch = Collator(tok, 2)([Example(it, *encoder(it.image_file), it.elements) for it in items[:6]])
    inputs = model_inputs(batch, torch.device("cpu"))
    trainable = [p for p in scorer.parameters() if p.requires_grad]
    assert trainable and all(".lora_" in n for n, p in scorer.named_parameters() if p.requires_grad)
    opt = torch.optim.AdamW(trainable, lr=1e-2)
    losses = []
    for _ in range(40):
        loss = expectation_mse(scorer(**inputs), batch["target"], batch["task"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5, losses


def test_folds_are_prompt_grouped_and_oof_covers_train_once(challenge: Path, trained: Path) -> None:
    fold_file = load_folds(trained / "folds.json")
    assert len(fold_file["folds"]) == 3
    cli_folds = make_folds(ChallengePaths.locate(challenge).align_raw("train"), k=3, seed=0)  # = `data folds`
    assert fold_file["folds"] == cli_folds["folds"]
    items = {it.img_path: it for it in align_items(challenge, "train")}
    prompts = [{items[i].prompt_id for i in f["images"]} for f in fold_file["folds"]]
    for a in range(3):
        for b in range(a + 1, 3):
            assert not prompts[a] & prompts[b]
    seen: list[str] = []
    for f in fold_file["folds"]:
        oof = json.loads((trained / f"fold_{f['fold']}" / "oof.json").read_text())
        assert sorted(oof) == sorted(f["images"])  # a fold scores exactly its held-out images
        for img, pred in oof.items():
            assert 1.0 <= pred["total"] <= 5.0
            assert set(pred["elements"]) == set(items[img].elements)
            assert all(0.0 <= p <= 1.0 for p in pred["elements"].values())
        seen += list(oof)
    assert sorted(seen) == sorted(items)  # every training image exactly once
    assert len(recipe.oof_predictions(trained, 3)) == len(items)


def test_blend_and_submission_validate_and_score(challenge: Path, trained: Path, tmp_path: Path) -> None:
    report = json.loads((trained / "stack" / "stack.json").read_text())["report"]
    assert report["element_source"] in ("classifier", "fold_mean")
    out = tmp_path / "sub.zip"
    res = CliRunner().invoke(main, ["baseline", "run", "lvlm-stack", "--data", str(challenge), "--split", "val",
                                    "--weights", str(trained), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert validate(out, "align", inputs=ChallengePaths.locate(challenge).inputs("align", "val")).valid
    result = score(out, ChallengePaths.locate(challenge).align_reference("val"), "align")
    assert 0.0 <= result.components["acc"] <= 1.0 and math.isfinite(result.main_score)
    preds = recipe.predict(challenge, "test", trained, "cpu", 3)
    expected = {it.img_path: it.elements for it in align_items(challenge, "test")}
    assert {p["img_path"] for p in preds} == set(expected)
    for p in preds:
        assert set(p["element_score"]) == set(expected[p["img_path"]])
        assert math.isfinite(p["total_score"])


def test_resume_skips_finished_folds(challenge: Path, trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = {f: (trained / f"fold_{f}" / "done.json").stat().st_mtime_ns for f in range(3)}

    def refuse(*_a, **_k):
        raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(folds, "load_base", refuse)
    recipe.train(challenge, trained, micro_config(), "cpu", 0)
    assert before == {f: (trained / f"fold_{f}" / "done.json").stat().st_mtime_ns for f in range(3)}
    other = micro_config()
    other["lora"]["r"] = 8
    with pytest.raises(ValueError, match="another config"):
        recipe.train(challenge, trained, other, "cpu", 0)


def test_interrupted_fold_resumes_inside_the_epoch(challenge: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = copy.deepcopy(micro_config())
    cfg["train"]["save_steps"] = 1
    run = tmp_path / "run"
    recipe.prepare_run(run, challenge, cfg, 0)
    acc = folds.make_accelerator(cfg, "cpu")
    real = folds._save_checkpoint

    class Interrupted(Exception):
        pass

    def save_then_stop(fdir, scorer, optimizer, scheduler, state):
        real(fdir, scorer, optimizer, scheduler, state)
        assert all(g["betas"] == (0.9, 0.95) for g in optimizer.param_groups)  # the paper's AdamW betas
        raise Interrupted(dict(state))

    monkeypatch.setattr(folds, "_save_checkpoint", save_then_stop)
    with pytest.raises(Interrupted) as info:
        folds.train_fold(run, challenge, cfg, 0, acc, 0)
    saved = info.value.args[0]
    assert (saved["epoch"], saved["batch"], saved["step"]) == (0, 1, 1)  # stopped after the first step
    assert not (run / "fold_0" / "done.json").exists()
    monkeypatch.setattr(folds, "_save_checkpoint", real)
    folds.train_fold(run, challenge, cfg, 0, acc, 0)
    done = json.loads((run / "fold_0" / "done.json").read_text())
    n_train = done["n_train"]
    per_epoch = len(folds.epoch_batches(n_train, cfg["train"]["batch_images"], 0, 0, 0, 0, 1))
    assert done["steps"] == cfg["train"]["epochs"] * per_epoch  # no step lost or repeated
    assert len(done["epoch_loss"]["joint"]) == cfg["train"]["epochs"]
    assert not (run / "fold_0" / "checkpoint").exists()


def test_demo_submission_reuses_a_finished_run(challenge: Path, trained: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from ntire_t2iqa_baselines import lvlm_stack

    monkeypatch.setattr(lvlm_stack, "train", lambda *a, **k: pytest.fail("a finished run was retrained"))
    out = lvlm_stack.demo_submission(challenge, "test", tmp_path / "demo.zip", trained)
    assert validate(out, "align", inputs=ChallengePaths.locate(challenge).inputs("align", "test")).valid


def _scores(scorer, batch) -> torch.Tensor:
    with torch.no_grad():
        return scorer.eval()(**model_inputs(batch, torch.device("cpu")))


def test_adapters_load_with_peft_from_pretrained(challenge: Path, trained: Path) -> None:
    """fold_k/peft is peft's own format: PeftModel.from_pretrained on the base scores as the baseline does."""
    from peft import PeftModel

    cfg = json.loads((trained / "config.json").read_text())
    peft_dir = trained / "fold_1" / "peft"
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in peft_dir.iterdir()}
    tok, base = folds.load_base(trained, cfg)
    items = align_items(challenge, "val")[:4]
    encoder = ImageEncoder(folds.image_spec(cfg))
    batch = Collator(tok, 2)([Example(it, *encoder(it.image_file), it.elements) for it in items])
    bare = _scores(Scorer(base, tok), batch)
    loaded = _scores(Scorer(PeftModel.from_pretrained(base, str(peft_dir)), tok), batch)
    ours = Scorer(add_lora(folds.load_base(trained, cfg)[1], cfg["lora"]), tok)
    folds.load_adapter(ours, trained / "fold_1")
    assert torch.allclose(loaded, _scores(ours, batch), atol=1e-6)
    assert float((loaded - bare).abs().max()) > 1e-3  # the adapter changes the scores


def test_separate_overall_and_element_models(challenge: Path, tmp_path: Path) -> None:
    """train.models = separate: per fold an overall model and an element model, each scoring its own task."""
    cfg = micro_config()
    cfg["train"].update(models="separate", epochs=1)
    run = tmp_path / "run"
    recipe.train(challenge, run, cfg, "cpu", 0)
    done = json.loads((run / "fold_0" / "done.json").read_text())
    assert done["models"] == ["overall", "element"] and set(done["steps_per_model"]) == {"overall", "element"}
    adapters = [load_state_dict(run / "fold_0" / part / "adapter.safetensors") for part in ("overall", "element")]
    assert any(not torch.equal(adapters[0][k], adapters[1][k]) for k in adapters[0])
    tok, base = folds.load_base(run, cfg)
    scorer = Scorer(add_lora(base, cfg["lora"]), tok)
    items = [it for it in align_items(challenge, "val") if it.elements][:3]
    preds = folds.predict_parts(scorer, items, ImageEncoder(folds.image_spec(cfg)), tok, 2, run / "fold_0",
                                ["overall", "element"], 8)
    encoder = ImageEncoder(folds.image_spec(cfg))
    batch = Collator(tok, 2)([Example(it, *encoder(it.image_file), it.elements) for it in items])
    by_part = {}
    for part in ("overall", "element"):
        folds.load_adapter(scorer, run / "fold_0" / part)
        by_part[part] = _scores(scorer, batch).tolist()
    for (img, element), o, e in zip(batch["keys"], by_part["overall"], by_part["element"]):
        want = o if element is None else e  # each task comes from its own model
        got = preds[img]["total"] if element is None else preds[img]["elements"][element]
        assert got == pytest.approx(want, abs=1e-6)
    out = tmp_path / "sub.zip"
    res = CliRunner().invoke(main, ["baseline", "run", "lvlm-stack", "--data", str(challenge), "--split", "val",
                                    "--weights", str(run), "--out", str(out)])
    assert res.exit_code == 0, res.output


def test_prompt_carries_the_prompt_ratings(tmp_path: Path) -> None:
    import dataclasses

    from real_layouts import write_track1_root

    write_track1_root(tmp_path / "evalmuse")
    val = align_items(tmp_path / "evalmuse", "val")[0]
    assert val.ratings == {"meaningless": 0.0, "split_confidence": 4.333333, "attribute_confidence": 4.0}
    assert "Prompt ratings: meaningless 0.00, split confidence 4.33, attribute confidence 4.00\n" in P.suffix_text(val)
    train = align_items(tmp_path / "evalmuse", "train")
    raw = json.loads((tmp_path / "evalmuse" / "train_list.json").read_text())[0]
    votes = raw["split_confidence"]
    assert train[0].ratings["split_confidence"] == pytest.approx(sum(votes) / len(votes))
    bare = dataclasses.replace(val, ratings={})
    assert "Prompt ratings: meaningless unknown, split confidence unknown, attribute confidence unknown" in \
        P.suffix_text(bare, "cat (animal)")
    encoder = ImageEncoder({"patch_size": 14, "merge_size": 2, "min_pixels": 3136, "max_pixels": 3136})
    kept = folds.ItemDataset(train, encoder, seed=1, ratings_dropout=0.0)
    dropped = folds.ItemDataset(train, encoder, seed=1, ratings_dropout=1.0, model_dropout=1.0)
    assert kept[0].item.ratings == train[0].ratings
    assert dropped[0].item.ratings == {} and dropped[0].item.model == ""
    half = [folds.ItemDataset(train, encoder, seed=s, ratings_dropout=0.5)[0].item.ratings == {} for s in range(40)]
    assert 8 <= sum(half) <= 32  # about half, and a function of the seed
    assert half == [folds.ItemDataset(train, encoder, seed=s, ratings_dropout=0.5)[0].item.ratings == {}
                    for s in range(40)]
