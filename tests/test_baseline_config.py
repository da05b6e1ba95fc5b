"""Baseline configs: one schema per baseline, checked once at load (file, key path and fix in every error)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ntire_t2iqa.cli import main
from ntire_t2iqa.data import SynthSize
from ntire_t2iqa_baselines import registry
from ntire_t2iqa_baselines.common.config import (
    AnyOf,
    Bool,
    ConfigError,
    Const,
    Float,
    Int,
    ListOf,
    Optional,
    Section,
    Str,
    apply_overrides,
    load_baseline_config,
    load_config,
    parse_override,
    validate,
)

pytest.importorskip("torch")

SMALL = Section({
    "name": Str(),
    "threads": Optional(AnyOf(Const("auto"), Int(min=0))),
    "train": Section({"epochs": Int(min=1, max=100), "lr": Float(gt=0), "prior": Float(gt=0, lt=1),
                      "betas": ListOf(Float(min=0, max=1), length=2), "kind": Str(("joint", "separate")),
                      "flag": Bool()}, required=("epochs",)),
}, required=("train",))


def _error(config: Any, schema: Section = SMALL) -> str:
    with pytest.raises(ConfigError) as info:
        validate(config, schema, "cfg.json")
    return str(info.value)


@pytest.mark.parametrize("name", sorted(registry.REGISTRY))
def test_every_shipped_config_fits_its_schema_and_loads_unchanged(name: str) -> None:
    module = registry.load(name)
    assert getattr(module, "CONFIG_SCHEMA", None) is not None, (
        f"{name} declares no CONFIG_SCHEMA (see ntire_t2iqa_baselines/common/config.py)")
    assert set(module.CONFIGS) >= {"tiny", "full"}
    for choice, path in module.CONFIGS.items():
        loaded = load_baseline_config(module.CONFIGS, module.CONFIG_SCHEMA, choice)
        assert loaded == json.loads(Path(path).read_text()), f"{name} {choice}: loading changed the config"


def test_each_kind_of_problem_names_the_file_the_key_path_and_the_fix() -> None:
    good = {"train": {"epochs": 3}}
    assert validate(good, SMALL, "cfg.json") is good
    assert _error({"train": {"epochs": 0}}) == (
        "cfg.json: train.epochs: 0 is below the minimum 1; set it to an integer >= 1 and <= 100.")
    assert _error({"train": {"epochs": 101}}) == (
        "cfg.json: train.epochs: 101 is above the maximum 100; set it to an integer >= 1 and <= 100.")
    assert _error({"train": {"epochs": True}}) == (
        "cfg.json: train.epochs: true is a boolean, not an integer; set it to an integer >= 1 and <= 100.")
    assert _error({"train": {"epochs": 2.0}}).startswith("cfg.json: train.epochs: 2.0 is a number, not an integer")
    assert _error({"train": {"epochs": 1, "lr": 0}}) == "cfg.json: train.lr: 0 is not above 0; set it to a number > 0."
    assert _error({"train": {"epochs": 1, "prior": 1.0}}) == (
        "cfg.json: train.prior: 1.0 is not below 1; set it to a number > 0 and < 1.")
    assert _error({"train": {"epochs": 1, "lr": "1e-4"}}) == (
        'cfg.json: train.lr: "1e-4" is a string, not a number; set it to a number > 0.')
    assert _error({"train": {"epochs": 1, "kind": "jiont"}}) == (
        "cfg.json: train.kind: \"jiont\" is not allowed (did you mean 'joint'?); set it to one of 'joint', "
        "'separate'.")
    assert _error({"train": {"epochs": 1, "epohcs": 2}}) == (
        "cfg.json: train.epohcs: unknown key; did you mean 'epochs'? remove it or use one of: betas, epochs, flag, "
        "kind, lr, prior.")
    assert _error({"train": {}}) == "cfg.json: train.epochs: missing; add it (an integer >= 1 and <= 100)."
    assert _error({}) == "cfg.json: train: missing; add it (an object)."
    assert _error([1]) == "cfg.json: (top level): list is a list, not an object; set it to {...} with keys name, " \
                          "threads, train."
    assert _error({"train": {"epochs": 1, "betas": [0.9]}}) == (
        "cfg.json: train.betas: has 1 items, not 2; set it to a list of 2 items, each a number >= 0 and <= 1.")
    assert _error({"train": {"epochs": 1, "betas": [0.9, 1.5]}}) == (
        "cfg.json: train.betas[1]: 1.5 is above the maximum 1; set it to a number >= 0 and <= 1.")
    assert _error({"train": {"epochs": 1, "flag": 1}}) == (
        "cfg.json: train.flag: 1 is an integer, not true/false; set it to true or false.")


def test_optional_and_alternatives_accept_each_form_and_list_every_problem() -> None:
    for threads in (None, "auto", 0, 4):
        validate({"threads": threads, "train": {"epochs": 1}}, SMALL)
    assert _error({"threads": "all", "train": {"epochs": 1}}) == (
        'cfg.json: threads: "all" does not fit; set it to null or "auto" or an integer >= 0.')
    text = _error({"threads": -1, "train": {"epochs": 0, "lr": -1.0}, "nmae": "x"})
    assert text.startswith("cfg.json: 4 problems:\n")
    assert [line.split(":")[0].strip() for line in text.splitlines()[1:]] == ["threads", "train.epochs", "train.lr",
                                                                             "nmae"]
    assert "did you mean 'name'?" in text


def test_a_schema_extended_by_another_baseline_keeps_the_old_keys_and_adds_new_ones() -> None:
    more = SMALL.extended({"extra": Int(min=0)})
    validate({"train": {"epochs": 1}, "extra": 2}, more)
    assert _error({"train": {"epochs": 1}, "extra": -1}, more).startswith("cfg.json: extra: -1 is below the minimum 0")
    assert "unknown key" in _error({"train": {"epochs": 1}, "extra": 2})


def test_library_keyword_sections_accept_the_library_keywords_and_reject_the_ones_set_elsewhere() -> None:
    from ntire_t2iqa_baselines.fga_blip2.schema import SCHEMA

    base = json.loads(Path(registry.load("fga-blip2").CONFIGS["tiny"]).read_text())
    base["vision"]["hidden_act"] = "gelu"  # a keyword of transformers' Blip2VisionConfig, not listed in the schema
    validate(base, SCHEMA)
    base["vision"]["image_size"] = 224  # set by the top-level image_size
    base["qformer"]["num_hiden_layers"] = 2
    text = _error(base, SCHEMA)
    assert "vision.image_size: unknown key" in text
    assert "but image_size, patch_size, set elsewhere" in text
    assert "qformer.num_hiden_layers: unknown key; did you mean 'num_hidden_layers'?" in text


def test_overrides_are_read_as_json_else_as_strings_and_create_objects_on_the_way() -> None:
    assert parse_override("train.lr=1e-4") == (["train", "lr"], 1e-4)
    assert parse_override("model.path=/models/Qwen") == (["model", "path"], "/models/Qwen")
    assert parse_override("train.betas=[0.9, 0.95]") == (["train", "betas"], [0.9, 0.95])
    assert parse_override("altclip_dir=null") == (["altclip_dir"], None)
    assert apply_overrides({"a": {"b": 1}}, ["a.b=2", "c.d=true"]) == {"a": {"b": 2}, "c": {"d": True}}
    for bad in ("train.lr", "=3", "train..lr=1"):
        with pytest.raises(ConfigError, match="write KEY=VALUE"):
            parse_override(bad)
    with pytest.raises(ConfigError, match=r"--set 'a\.b\.c=1': a\.b is an integer, not an object"):
        apply_overrides({"a": {"b": 1}}, ["a.b.c=1"])


def test_a_broken_file_is_an_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"train": {"epochs": 1,}}')
    with pytest.raises(ConfigError, match=r"bad\.json: not valid JSON at line 1, column 24"):
        load_config(bad, SMALL)
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match=r"bad\.json: the config is a list, not a JSON object"):
        load_config(bad, SMALL)
    with pytest.raises(ConfigError, match="neither one of tiny nor a JSON file"):
        load_baseline_config({"tiny": bad}, SMALL, "huge")


# ------------------------------------------------------------------------------------------------ through the CLI
def _train_cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["baseline", "train", *args], catch_exceptions=False)


def test_cli_rejects_a_bad_config_before_training_with_the_file_and_key(tmp_path: Path) -> None:
    config = json.loads(Path(registry.load("rahf").CONFIGS["tiny"]).read_text())
    config["train"]["lerning_rate"] = 0.1
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(config))
    result = _train_cli("rahf", "--config", str(path), "--out", str(tmp_path / "run"))
    assert result.exit_code == 2
    assert "train.lerning_rate: unknown key" in result.output and "mine.json" in result.output
    result = _train_cli("lvlm-stack", "--set", "train.folds=1", "--out", str(tmp_path / "run"))
    assert result.exit_code == 2
    assert "train.folds: 1 is below the minimum 2" in result.output and "tiny.json (with --set train.folds=1)" in \
        result.output
    result = _train_cli("fga-blip2", "--set", "epochs", "--out", str(tmp_path / "run"))
    assert result.exit_code == 2 and "write KEY=VALUE" in result.output
    assert not (tmp_path / "run").exists()


def test_cli_set_reaches_the_baseline_as_the_validated_config(tmp_path: Path, synth_challenge: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    data = synth_challenge(5, SynthSize((0, 4, 4), 1, (4, 4, 4)), ("structure",))
    module = registry.load("rahf")
    seen: dict[str, Any] = {}

    def fake_train(source: Any, out: Path, config: dict[str, Any], device: str, seed: int) -> Path:
        seen.update(config=config, out=out, seed=seed)
        return out

    monkeypatch.setattr(module, "train", fake_train)
    result = _train_cli("rahf", "--data", str(data), "--out", str(tmp_path / "run"), "--seed", "3",
                        "--set", "altclip_dir=/models/AltCLIP", "--set", "train.epochs=2",
                        "--set", "train.augment={\"hflip\": 0.25}")
    assert result.exit_code == 0, result.output
    expected = json.loads(Path(module.CONFIGS["tiny"]).read_text())
    expected["altclip_dir"] = "/models/AltCLIP"
    expected["train"]["epochs"] = 2
    expected["train"]["augment"] = {"hflip": 0.25}
    assert seen == {"config": expected, "out": tmp_path / "run", "seed": 3}


def test_lvlm_train_fold_script_checks_its_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ntire_t2iqa_baselines.lvlm_stack.train_fold import main as train_fold

    with pytest.raises(SystemExit) as info:
        train_fold(["--out", str(tmp_path / "run"), "--config", "tiny", "--set", "lora.r=0", "--device", "cpu"])
    assert info.value.code == 2
    assert "lora.r: 0 is below the minimum 1" in capsys.readouterr().err


# ------------------------------------------------------------------------- settings once hidden in the environment
def test_rahf_altclip_folder_comes_from_the_config_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ntire_t2iqa_baselines.rahf.tokenizer import altclip_folder, load_tokenizer

    monkeypatch.setenv("RAHF_ALTCLIP_DIR", str(tmp_path))  # no longer read
    assert altclip_folder({"altclip_dir": None}) is None
    assert altclip_folder({"altclip_dir": "~/AltCLIP"}) == Path("~/AltCLIP").expanduser()
    with pytest.raises(ValueError, match=r"--set altclip_dir=DIR"):
        load_tokenizer({"text": {"tokenizer": "altclip", "max_length": 8}, "altclip_dir": None}, None)


def test_lvlm_weights_folder_comes_from_model_path_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ntire_t2iqa_baselines.lvlm_stack.folds import weights_dir

    monkeypatch.setenv("LVLM_STACK_WEIGHTS", str(tmp_path))  # no longer read
    assert weights_dir({"model": {"path": None}}) is None
    assert weights_dir({"model": {"path": str(tmp_path)}}) == tmp_path
    with pytest.raises(FileNotFoundError, match=r"--set model.path=DIR"):
        weights_dir({"model": {"path": str(tmp_path / "absent")}})
