"""Every baseline trains and runs on the released layouts, as a user would call it, without any conversion.

A Track 1 root (EvalMuse-40K ``train_list.json`` + ``images/``, NTIRE ``val/`` and ``test/``) and a
Track 2 root (EvalMuse-Structure ``train/``, ``val/``, ``test/``) are built here in exactly the
released formats (tests/real_layouts.py); each baseline's tiny config, shrunk to a micro size and
one epoch, goes through ``baseline train`` and ``baseline run`` on both splits, and the zips are
checked with ``validate --inputs`` on the split folder.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from click.testing import CliRunner  # noqa: E402
from real_layouts import write_track1_root, write_track2_root  # noqa: E402

from ntire_t2iqa.cli import main  # noqa: E402
from ntire_t2iqa_baselines import registry  # noqa: E402


def _tiny(name: str) -> dict[str, Any]:
    return json.loads(Path(registry.load(name).CONFIGS["tiny"]).read_text())


def fga_micro() -> dict[str, Any]:
    cfg = _tiny("fga-blip2")
    cfg.update(image_size=32, num_query_tokens=4, max_txt_len=24, embed_dim=16, epochs=1, batch_size=8,
               warmup_steps=1, progress=False)
    cfg["vision"].update(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    cfg["qformer"].update(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                          max_position_embeddings=32)
    return cfg


def rahf_micro() -> dict[str, Any]:
    cfg = _tiny("rahf")
    cfg.update(image_size=32, patch_size=8, width=32)
    cfg["vision"].update(intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    cfg["text"]["max_length"] = 16
    cfg["fusion"] = {"layers": 1, "ffn": 64}
    cfg["heatmap"].update(stem=[32, 16, 16], stages=[16, 8, 8, 4, 4])
    cfg["score"] = {"channels": [32, 16, 8], "stride": 1, "mlp": [16]}
    cfg["train"].update(epochs=1, batch_size=4, warmup_steps=1, heatmap_target="graded", cpu_threads=1)
    return cfg


def lvlm_micro() -> dict[str, Any]:
    cfg = _tiny("lvlm-stack")
    cfg["model"]["tiny"].update(text_hidden=32, text_intermediate=64, text_layers=1, heads=2, kv_heads=1,
                                vision_hidden=16, vision_heads=1, vision_intermediate=32, vocab_size=400)
    cfg["lora"].update(r=4, alpha=8)
    cfg["train"].update(folds=3, epochs=1, batch_images=8, warmup_steps=1)
    cfg["stack"]["regressor"]["n_estimators"] = 5
    cfg["stack"]["classifier"]["n_estimators"] = 5
    return cfg


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("released")
    write_track1_root(base / "evalmuse")
    write_track2_root(base / "evalmuse-structure")
    return {"align": base / "evalmuse", "structure": base / "evalmuse-structure"}


def _invoke(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.mark.parametrize("name, micro", [("fga-blip2", fga_micro), ("rahf", rahf_micro),
                                         ("lvlm-stack", lvlm_micro)])
def test_train_and_run_on_the_released_layout(name: str, micro: Any, roots: dict[str, Path], tmp_path: Path):
    pytest.importorskip("peft") if name == "lvlm-stack" else None
    track = registry.get(name).track
    root = roots[track]
    config = tmp_path / "micro.json"
    config.write_text(json.dumps(micro()))
    run = tmp_path / "run"
    trained = _invoke("baseline", "train", name, "--data", str(root), "--out", str(run), "--config", str(config))
    if name == "rahf":  # upstream's graded targets, and the image nobody annotated trains on an empty one
        assert "graded heatmap targets" in trained.output and "1 training image(s) with no annotator" in trained.output
    zips = {}
    for split in ("val", "test"):
        zips[split] = tmp_path / f"{split}.zip"
        result = _invoke("baseline", "run", name, "--data", str(root), "--split", split, "--weights", str(run),
                         "--out", str(zips[split]))
        assert "valid" in result.output
        _invoke("validate", str(zips[split]), "--track", track, "--inputs", str(root / split))
    with zipfile.ZipFile(zips["val"]) as zf:
        member = zf.read("output.json" if track == "align" else "output.pkl")
    if track == "align":  # val and test share image names, not records: each zip fits its own split only
        val = {r["img_path"]: r for r in json.loads(member)}
        assert set(val["img_0002.png"]["element_score"]) >= {"joy (emotion)"}
        bad = CliRunner().invoke(main, ["validate", str(zips["val"]), "--track", track, "--inputs",
                                        str(root / "test")])
        assert bad.exit_code == 1 and "misses" in bad.output


def test_explicit_pieces_without_a_layout(roots: dict[str, Path], tmp_path: Path):
    root = roots["structure"]
    config = tmp_path / "micro.json"
    config.write_text(json.dumps(rahf_micro()))
    run = tmp_path / "run"
    _invoke("baseline", "train", "rahf", "--train-annotations", str(root / "train" / "train_info.json"),
            "--train-images", str(root / "train" / "images"), "--out", str(run), "--config", str(config))
    out = tmp_path / "sub.zip"
    _invoke("baseline", "run", "rahf", "--split", "val", "--inputs", str(root / "val" / "val_info.json"),
            "--images", str(root / "val" / "images"), "--weights", str(run), "--out", str(out))
    _invoke("validate", str(out), "--track", "structure", "--inputs", str(root / "val" / "images"))


def test_a_folder_of_the_other_track_is_refused_with_what_was_looked_for(roots: dict[str, Path], tmp_path: Path):
    result = CliRunner().invoke(main, ["baseline", "train", "fga-blip2", "--data", str(roots["structure"]),
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "looked in it for" in text and "train_list.json" in text and "looks like a Track 2" in text
    assert not (tmp_path / "run").exists()
