"""imatch end to end on a micro config: both phases, pseudo-labels, augmentation, OOF tau, CLI train and run.

A ~50k-parameter Qwen2.5-VL, 2 ensemble members (prompt-grouped folds), one epoch per model, on a
synthetic challenge built here; the whole module takes well under a minute on 2 CPU cores.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("accelerate")

from click.testing import CliRunner  # noqa: E402

from ntire_t2iqa import score, validate  # noqa: E402
from ntire_t2iqa.cli import main  # noqa: E402
from ntire_t2iqa.data import ChallengePaths, SynthSize  # noqa: E402
from ntire_t2iqa_baselines.common.data import align_items  # noqa: E402
from ntire_t2iqa_baselines.imatch import CONFIGS, levels, predict  # noqa: E402
from ntire_t2iqa_baselines.imatch import query as Q  # noqa: E402
from ntire_t2iqa_baselines.imatch.predict import LevelPredictor, member_dirs, run_info  # noqa: E402


def micro_config() -> dict:
    """The tiny config shrunk: 2 folds = 2 members, 1 epoch, a 1-layer text model; every strategy on."""
    cfg = json.loads(Path(CONFIGS["tiny"]).read_text())
    cfg["model"]["tiny"].update(text_hidden=32, text_intermediate=64, text_layers=1, heads=2, kv_heads=1,
                                vision_hidden=16, vision_heads=1, vision_intermediate=32, vocab_size=400)
    cfg["lora"].update(r=4, alpha=8)
    cfg["train"].update(folds=2, epochs=1, batch_images=6, warmup_steps=1, lr_lm=0.01, lr_vision=0.001)
    cfg["recipe"]["element_epochs"] = 1
    cfg["infer"]["batch_images"] = 12
    cfg["ensemble"]["members"] = 2
    cfg["recipe"]["image_aug_share"] = 0.25
    return cfg


@pytest.fixture(scope="module", autouse=True)
def one_thread(torch_one_thread: None) -> None:
    """Micro models run on one torch thread in this module (conftest's ``torch_one_thread``)."""


@pytest.fixture(scope="module")
def challenge(synth_challenge: Callable[..., Path]) -> Path:
    return synth_challenge(7, SynthSize((6, 4, 4), 2, (0, 4, 4)), ("align",))


@pytest.fixture(scope="module")
def trained(challenge: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("imatch") / "run"
    config = tmp_path_factory.mktemp("imatch") / "micro.json"
    config.write_text(json.dumps(micro_config()))
    result = CliRunner().invoke(main, ["baseline", "train", "imatch", "--data", str(challenge), "--out", str(run),
                                       "--config", str(config)])
    assert result.exit_code == 0, result.output
    return run


def test_run_folder_has_both_phases_pseudo_labels_and_copies(challenge: Path, trained: Path) -> None:
    cfg, info = run_info(trained)
    assert info["final_phase"] == "phase2" and info["members"] == [0, 1]
    for phase in ("phase1", "phase2"):
        for mdir in member_dirs(trained, phase, [0, 1]):
            assert (mdir / "element" / "adapter.safetensors").is_file()
            assert (mdir / "overall" / "adapter.safetensors").is_file()
    train = align_items(challenge, "train")
    assert info["n_augmented"] == round(len(train) * 0.25) == len(list((trained / "augmented").rglob("*.png")))
    pseudo = json.loads((trained / "pseudo_val.json").read_text())
    val = {it.img_path for it in align_items(challenge, "val")}
    test = {it.img_path for it in align_items(challenge, "test")}
    sources = {p["img_path"].removeprefix("pseudo/") for p in pseudo}
    assert sources == val and not sources & test  # every val image, no test image
    for p in pseudo:
        assert 1.0 <= p["total_score"] <= 5.0 and all(0.0 <= s <= 1.0 for s in p["element_score"].values())
    assert info["n_oof"] == len(train) and info["tau_calibrated"] and 1.5 <= info["tau"] <= 6.5


def test_overall_query_gets_the_element_models_predictions(challenge: Path, trained: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, info = run_info(trained)
    items = align_items(challenge, "test")
    predictor = LevelPredictor(trained, cfg)
    members = member_dirs(trained, info["final_phase"], info["members"])
    elements = predictor.element_levels(members, items)
    seen: list[str] = []
    original = Q.Query.overall_text
    monkeypatch.setattr(Q.Query, "overall_text", lambda self, item: seen.append(original(self, item)) or seen[-1])
    records = predict(challenge, "test", trained)
    want = {it.img_path: Q.hint_text(it, elements[it.img_path]) for it in items}
    assert len(seen) == 2 * len(items)  # each member's overall model
    assert all(any(want[it.img_path] in text and it.prompt in text for text in seen) for it in items)
    by_img = {r["img_path"]: r for r in records}
    for it in items:  # elements written as 0..1 with the run's tau: >= 0.5 exactly when the mean level > tau
        for e in it.elements:
            assert (by_img[it.img_path]["element_score"][e] >= 0.5) == (elements[it.img_path][e] > info["tau"])


def test_cli_run_writes_valid_submissions_that_score(challenge: Path, trained: Path, tmp_path: Path) -> None:
    for split in ("val", "test"):
        zp = tmp_path / f"imatch-{split}.zip"
        result = CliRunner().invoke(main, ["baseline", "run", "imatch", "--data", str(challenge), "--split", split,
                                           "--weights", str(trained), "--out", str(zp)])
        assert result.exit_code == 0, result.output
        inputs = ChallengePaths.locate(challenge).inputs("align", split)
        assert validate(zp, "align", inputs=inputs).valid
    r = score(tmp_path / "imatch-val.zip", ChallengePaths.locate(challenge).align_reference("val"), "align")
    assert 0.0 <= r.components["acc"] <= 1.0
    records = predict(challenge, "val", trained, qalign=False)  # without QAlign: whole levels, averaged over 2
    for rec in records:
        lv = (rec["total_score"] - 1) / 4 * 14 + 1
        assert 1 <= lv <= 15 and abs(2 * lv - round(2 * lv)) < 1e-9
    assert levels.overall_level(records[0]["total_score"]) in range(1, 16)


def test_resume_skips_trained_models_and_refuses_another_recipe(challenge: Path, trained: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    T = importlib.import_module("ntire_t2iqa_baselines.imatch.train")  # the module (the package exports train())
    calls: list[str] = []
    monkeypatch.setattr(T, "train_part", lambda *a, **k: calls.append(a[2]))
    T.train(challenge, trained, micro_config(), "cpu", 0)
    assert calls == []
    other = micro_config()
    other["recipe"]["element_hints"] = False
    with pytest.raises(ValueError, match="another recipe"):
        T.train(challenge, trained, other, "cpu", 0)


def test_demo_submission_reuses_a_finished_run(challenge: Path, trained: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    T = importlib.import_module("ntire_t2iqa_baselines.imatch.train")
    from ntire_t2iqa_baselines.imatch import demo_submission
    monkeypatch.setattr(T, "train_part", lambda *a, **k: pytest.fail("a finished run must not be retrained"))
    zp = demo_submission(challenge, "test", tmp_path / "demo.zip", trained)
    assert validate(zp, "align", inputs=ChallengePaths.locate(challenge).inputs("align", "test")).valid


def test_element_epochs_apply_to_the_element_model_only() -> None:
    import importlib
    T = importlib.import_module("ntire_t2iqa_baselines.imatch.train")
    cfg = micro_config()
    cfg["recipe"]["element_epochs"] = 7
    assert T.part_config(cfg, "element")["train"]["epochs"] == 7
    assert T.part_config(cfg, "overall")["train"]["epochs"] == 1 and cfg["train"]["epochs"] == 1
    del cfg["recipe"]["element_epochs"]
    assert T.part_config(cfg, "element") is cfg  # full: the paper's one schedule for both models
    assert "element_epochs" not in json.loads(Path(CONFIGS["full"]).read_text())["recipe"]


def test_element_model_learns_a_prior_that_only_the_t2i_model_carries(challenge: Path, trained: Path,
                                                                    tmp_path: Path) -> None:
    """The collapse of the tiny element model ("present" for every element): relabel the training elements so that
    some T2I models' are all present (level 7), the other models' all absent (level 1); with the model named in the
    query (tiny's ``query.t2i_model``) and enough epochs the element model must separate them."""
    import dataclasses
    import importlib
    T = importlib.import_module("ntire_t2iqa_baselines.imatch.train")
    from ntire_t2iqa_baselines.lvlm_stack.folds import image_spec, make_accelerator, part_items
    from ntire_t2iqa_baselines.lvlm_stack.model import ImageEncoder

    cfg = micro_config()
    cfg["recipe"].update(element_perturbation=0.0, element_epochs=60)
    cfg["query"]["t2i_model"] = True
    items = align_items(challenge, "train")
    good: set[str] = set()  # T2I models whose elements are present: the first ones, until about half
    for model in sorted({it.model for it in items}):
        if sum(len(it.elements) for it in items if it.model in good) < sum(len(it.elements) for it in items) / 2.5:
            good.add(model)
    items = [dataclasses.replace(it, element_scores={e: float(it.model in good) for e in it.elements}) for it in items]
    n_good = sum(len(it.elements) for it in items if it.model in good)
    assert 0.3 < n_good / sum(len(it.elements) for it in items) < 0.7
    pdir = tmp_path / "member_0"
    T.train_member(trained, pdir, items, cfg, 0, make_accelerator(cfg, "cpu"), 0,
                   ImageEncoder(image_spec(cfg), cache=True), 0.0)
    assert (pdir / "element" / "adapter.safetensors").is_file() and len(part_items(items, "element")) == len(items)
    lv = LevelPredictor(trained, cfg).element_levels([pdir], items)
    present = [v for it in items if it.model in good for v in lv[it.img_path].values()]
    absent = [v for it in items if it.model not in good for v in lv[it.img_path].values()]
    assert sum(present) / len(present) > 5.0 and sum(absent) / len(absent) < 3.0, (present, absent)
    flat = [(v, it.model in good) for it in items for v in lv[it.img_path].values()]
    tau = levels.calibrate_tau([v for v, _ in flat], [y for _, y in flat])
    assert all((v > tau) == y for v, y in flat)
