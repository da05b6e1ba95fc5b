"""Golden outputs of the upstream RAHF code (EvalMuse-Structure), for tests/test_baseline_rahf_golden.py.

Not part of the package and not run by CI: it needs the upstream repository and the library versions
it pins, in a scratch environment of its own::

    git clone https://github.com/erandow/EvalMuse-Structure UPSTREAM
    git -C UPSTREAM checkout eef0bcc4b5936891eed490d1789224a05b56cb1d
    python -m venv /tmp/rahf-golden && /tmp/rahf-golden/bin/pip install torch==2.13.0 transformers==4.40.1 \\
        'numpy<2.3' pillow sentencepiece protobuf
    /tmp/rahf-golden/bin/python benchmarks/golden/rahf_upstream.py --upstream UPSTREAM --out tests/data/rahf

``transformers==4.40.1`` is the version upstream's ``requirements.txt`` pins; it runs with torch 2.13.0 (CPU).
What it writes under ``--out``:

* ``upstream_keys.json``: every key of upstream's ``RAHF.state_dict()`` at full size (AltCLIP ViT-L/14 at
  448 px, 6 fusion blocks, full heads), with shapes, built on the meta device.
* ``altclip_hub_keys.json``: every key of ``AltCLIPModel.state_dict()`` for BAAI/AltCLIP's config (the layout
  of the hub checkpoint under this transformers version), with shapes.
* ``golden/``: a reduced RAHF run by the upstream code itself, with seeded random weights:

  - ``checkpoint.json``: the checkpoint in upstream's format (``torch.save({"model", "optimizer",
    "scheduler"})``), as key, shape, dtype and a seeded normal draw per tensor (NumPy PCG64, seed
    ``[SEED, index]``), plus a checksum of each, so the test rebuilds the very file (about 300 MB) in a second;
  - ``altclip/``: the AltCLIP processor folder, with a small XLM-R-style SentencePiece tokenizer trained here
    (upstream's ``altclip_processor`` configs; its 250,002-token vocabulary is not in the repository);
  - ``images/``: the input pictures (a 1800 px JPEG, where PIL's draft mode would change the pixels);
  - ``cases.json`` + ``outputs.npz``: per case, the prompt, the token ids, a digest of the 448 px LANCZOS
    pixels, upstream's score (``score.item()``), heatmap (uint16, ``round(h * 65535)``) and mask
    (``torch.round(heatmap * 255) > 40``, bit-packed).

Reduced config: 2 ViT layers and 2 fusion blocks instead of 24 and 6, heads of fewer channels (heatmap
``conv_info=[1024, 64, 32]``, ``deconv_info=[32, 16, 8, 8, 4]``; score ``filter_info=[1024, 64, 32, 16, 8]``),
a text vocabulary of a few hundred tokens. Widths (1024), image size (448), grid (32 x 32), text length (512)
and every layer kind are upstream's. Upstream's ``RAHF.__init__`` runs unchanged: only the three head classes it
instantiates get the reduced arguments, ``AutoModel.from_pretrained`` builds from the config (no download)
and the position table file is written here (its values are replaced by the checkpoint anyway).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

UPSTREAM_REPO = "erandow/EvalMuse-Structure"
UPSTREAM_COMMIT = "eef0bcc4b5936891eed490d1789224a05b56cb1d"
SEED = 20250314
REDUCED = {"vision_layers": 2, "fusion_layers": 2, "heatmap_conv": [1024, 64, 32],
           "heatmap_deconv": [32, 16, 8, 8, 4], "score_filters": [1024, 64, 32, 16, 8], "vocab_size": 0}
SP_PIECES = 240  # SentencePiece pieces asked for (fewer when the corpus has fewer); the vocabulary adds 5
TAG = "human artifact"  # evaluate.py's tag_word[0]
LONG = " ".join(["a wizard with a long grey beard waving at two dragons above the castle,"] * 60)
#: (image, prompt): upper case and punctuation, a prompt past 512 tokens, non-ASCII text, a plain one.
CASES = [
    ("scene_1800.jpg", 'A Portrait of TWO People: shaking hands!! (photo-realistic), 8K; "studio" lighting ~ #1'),
    ("portrait_300x500.png", LONG),
    ("street_640x480.jpg", "Zwei Bäume im Schnee, 雪の中の木 and a bicycle"),
    ("scene_1800.jpg", "a hand with five fingers"),
]


# ------------------------------------------------------------------------------------------------ inputs
def _scene(width: int, height: int, seed: int) -> Image.Image:
    """A picture with gradients, shapes and fine texture (so JPEG draft decoding would change pixels)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([128 + 100 * np.sin(x / (37 + 5 * c) + y / (53 - 7 * c) + c) for c in range(3)], axis=-1)
    base += rng.normal(0, 6, base.shape).astype(np.float32)  # texture
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
        w, h = int(rng.integers(20, width // 3)), int(rng.integers(20, height // 3))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x0 + w, y0 + h], fill=colour)
    for _ in range(40):
        pts = [(int(rng.integers(0, width)), int(rng.integers(0, height))) for _ in range(2)]
        draw.line(pts, fill=tuple(int(v) for v in rng.integers(0, 256, 3)), width=int(rng.integers(1, 4)))
    return img.filter(ImageFilter.SMOOTH) if width < 1000 else img


def write_images(folder: Path) -> None:
    """The three input pictures (deterministic)."""
    folder.mkdir(parents=True, exist_ok=True)
    _scene(1800, 1800, 1).save(folder / "scene_1800.jpg", quality=70)
    _scene(300, 500, 2).save(folder / "portrait_300x500.png")
    _scene(640, 480, 3).save(folder / "street_640x480.jpg", quality=80)


# ------------------------------------------------------------------------------------------------ tokenizer
def _corpus() -> list[str]:
    words = ("a an the of with and on in at two three five red blue green grey long small big hand hands finger "
             "fingers person people man woman child dog cat horse bicycle car tree trees snow street castle dragon "
             "dragons wizard beard portrait photo realistic studio lighting shaking waving above under running "
             "standing sitting face eyes arm arms leg legs body human artifact segmentation picture image").split()
    rng = np.random.default_rng(7)
    lines = [" ".join(rng.choice(words, int(rng.integers(4, 14)))) for _ in range(3000)]
    return lines + [p for _, p in CASES] + [TAG]


def write_processor(upstream: Path, folder: Path) -> None:
    """AltCLIP's processor folder: upstream's configs, a SentencePiece unigram model trained here, tokenizer.json."""
    import sentencepiece as spm
    from transformers import XLMRobertaTokenizer, XLMRobertaTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("preprocessor_config.json", "special_tokens_map.json", "tokenizer_config.json"):
        shutil.copy(upstream / "altclip_processor" / name, folder / name)
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "corpus.txt"
        text.write_text("\n".join(_corpus()), encoding="utf-8")
        # XLM-R adds <s> <pad> </s> <unk> itself (fairseq offset 1) and <mask> at the end.
        spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(Path(tmp) / "sp"), model_type="unigram",
                                       vocab_size=SP_PIECES, character_coverage=1.0,
                                       bos_id=-1, eos_id=-1, unk_id=0, pad_id=-1, hard_vocab_limit=False,
                                       num_threads=1, minloglevel=2, normalization_rule_name="identity")
        shutil.copy(Path(tmp) / "sp.model", folder / "sentencepiece.bpe.model")
    slow = XLMRobertaTokenizer(str(folder / "sentencepiece.bpe.model"))
    fast = XLMRobertaTokenizerFast(__slow_tokenizer=slow, vocab_file=str(folder / "sentencepiece.bpe.model"))
    fast._tokenizer.save(str(folder / "tokenizer.json"))
    REDUCED["vocab_size"] = len(fast)


# ------------------------------------------------------------------------------------------------ upstream model
def altclip_config(upstream: Path, reduced: bool) -> dict[str, Any]:
    """Upstream's altclip_model/config.json, with the reduced depths and vocabulary when asked."""
    cfg = json.loads((upstream / "altclip_model" / "config.json").read_text())
    if reduced:
        for key in ("vision_config", "vision_config_dict"):
            cfg[key]["num_hidden_layers"] = REDUCED["vision_layers"]
        for key in ("text_config", "text_config_dict"):
            cfg[key]["num_hidden_layers"] = 1  # the text transformer is not part of RAHF
            cfg[key]["vocab_size"] = REDUCED["vocab_size"]
    return cfg


def _with_arguments(init: Any, changes: dict[str, Any]) -> Any:
    """An ``__init__`` that calls ``init`` with ``changes`` overriding the caller's keyword arguments."""
    return lambda self, **kw: init(self, **{**kw, **changes})


def build_upstream(upstream: Path, reduced: bool, meta: bool) -> torch.nn.Module:
    """Upstream's ``RAHF(pretrained_model_path, freeze=True)``; downloads stubbed, heads reduced when asked."""
    sys.path.insert(0, str(upstream))
    import model.model_final as mf
    from transformers import AutoModel

    reduced_args = {"SelfAttention": {"num_layers": REDUCED["fusion_layers"]},
                    "HeatmapPredictor": {"conv_info": REDUCED["heatmap_conv"],
                                         "deconv_info": REDUCED["heatmap_deconv"]},
                    "ScorePredictor": {"filter_info": REDUCED["score_filters"]}}
    inits = {name: getattr(mf, name).__init__ for name in reduced_args}
    real_load = torch.load
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(altclip_config(upstream, reduced)))
        table = torch.empty(1025, 1024) if meta else torch.zeros(1025, 1024)
        try:
            mf.AutoModel = type("NoDownload", (), {"from_pretrained": staticmethod(
                lambda path, config=None, **_: AutoModel.from_config(config))})
            torch.load = lambda *a, **k: table  # new_position_embedding_weight_448.pt (overwritten by the weights)
            if reduced:  # RAHF.__init__ unchanged; the classes it instantiates take the reduced arguments
                for name, changes in reduced_args.items():
                    getattr(mf, name).__init__ = _with_arguments(inits[name], changes)
            if meta:
                with torch.device("meta"):
                    return mf.RAHF(pretrained_model_path=tmp, freeze=True)
            return mf.RAHF(pretrained_model_path=tmp, freeze=True)
        finally:
            torch.load = real_load
            mf.AutoModel = AutoModel
            for name, init in inits.items():
                getattr(mf, name).__init__ = init


def key_list(state: dict[str, torch.Tensor]) -> list[list[Any]]:
    """``[key, shape, dtype]`` for every tensor of a state dict, in order."""
    return [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in state.items()]


# ------------------------------------------------------------------------------------------------ weights
def init_rules(model: torch.nn.Module) -> dict[str, tuple[float, float]]:
    """(mean, std) of the seeded normal draw of every state-dict tensor, by the kind of module that holds it."""
    rules: dict[str, tuple[float, float]] = {}
    for mname, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            key = f"{mname}.{pname}" if mname else pname
            if isinstance(module, torch.nn.LayerNorm):
                rules[key] = (1.0, 0.1) if pname == "weight" else (0.0, 0.1)
            elif isinstance(module, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                if pname == "weight":
                    fan_in = p.shape[1] * int(np.prod(p.shape[2:])) if not isinstance(
                        module, torch.nn.ConvTranspose2d) else p.shape[0] * int(np.prod(p.shape[2:])) // 4
                    rules[key] = (0.0, 1.0 / np.sqrt(fan_in))
                else:
                    rules[key] = (0.0, 0.05)
            else:  # embeddings, class embedding
                rules[key] = (0.0, 0.5)
    # the heatmap's last conv: a bias near logit(0.18) puts many pixels on both sides of 40/255
    rules["heatmap_predictor.final_layers.0.bias"] = (-1.5, 0.0)
    rules["score_predictor.fc_layers.4.bias"] = (0.0, 0.0)
    return rules


def draw(index: int, shape: list[int], mean: float, std: float) -> np.ndarray:
    """The seeded tensor: ``mean + std * N(0, 1)`` from PCG64 seeded with ``[SEED, index]`` (float32)."""
    z = np.random.default_rng([SEED, index]).standard_normal(int(np.prod(shape)), dtype=np.float32)
    return (np.float32(mean) + np.float32(std) * z).reshape(shape)


def seeded_state(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """The model's state dict filled with seeded draws, and the manifest entries that rebuild it."""
    rules = init_rules(model)
    state, entries = {}, []
    for i, (key, value) in enumerate(model.state_dict().items()):
        if key not in rules:
            raise SystemExit(f"no init rule for {key} (a buffer?)")
        mean, std = rules[key]
        arr = draw(i, list(value.shape), mean, std)
        state[key] = torch.from_numpy(arr)
        entries.append({"key": key, "shape": list(value.shape), "dtype": "float32", "mean": mean, "std": std,
                        "index": i, "sum": float(arr.astype(np.float64).sum()), "first": arr.reshape(-1)[:3].tolist()})
    return state, entries


# ------------------------------------------------------------------------------------------------ run
def run_golden(upstream: Path, out: Path) -> None:
    """Build, weight and run the reduced upstream RAHF as evaluate.py does; write the golden folder."""
    from transformers import AutoProcessor

    golden = out / "golden"
    if golden.exists():
        shutil.rmtree(golden)
    write_images(golden / "images")
    write_processor(upstream, golden / "altclip")
    torch.manual_seed(0)
    model = build_upstream(upstream, reduced=True, meta=False)
    state, entries = seeded_state(model)
    model.load_state_dict(state, strict=True)
    model.eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)  # train.py's optimizer and scheduler, as saved
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=2000, eta_min=0.0)
    checkpoint = {"model": state, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)  # the format loads with weights_only=True
    torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    processor = AutoProcessor.from_pretrained(str(golden / "altclip"))
    cases, arrays = [], {}
    with torch.no_grad():
        for n, (image_name, prompt) in enumerate(CASES):
            img = Image.open(golden / "images" / image_name)
            image = img.resize((448, 448), Image.LANCZOS)  # evaluate.py
            inputs = processor(images=image, text=[f"{TAG} {prompt}", f"human segmentation {prompt}"],
                               padding="max_length", return_tensors="pt", truncation=True)
            ids = inputs["input_ids"][0, :].unsqueeze(0)
            heatmap, score = model(inputs["pixel_values"], ids, need_score=True)
            mask = torch.where(torch.round(heatmap * 255.0) > 40, 1, 0).squeeze(0).numpy().astype(np.uint8)[0]
            h = heatmap[0, 0].numpy().astype(np.float64)
            arrays[f"ids_{n}"] = ids[0].numpy().astype(np.int32)
            arrays[f"heatmap_{n}"] = np.round(h * 65535).astype(np.uint16)
            arrays[f"mask_{n}"] = np.packbits(mask.reshape(-1))
            arrays[f"pixels_{n}"] = inputs["pixel_values"][0, :, ::16, ::16].numpy()  # a 28 x 28 sample
            cases.append({"image": image_name, "prompt": prompt, "score": float(score.item()),
                          "resized_sha256": hashlib.sha256(np.asarray(image.convert("RGB")).tobytes()).hexdigest(),
                          "n_tokens": int((ids != 1).sum()), "mask_fraction": float(mask.mean()),
                          "heatmap_min": float(h.min()), "heatmap_max": float(h.max())})
            print(f"case {n}: score {score.item():.6f}, mask {mask.mean():.3f}, heatmap {h.min():.3f}..{h.max():.3f}, "
                  f"{cases[-1]['n_tokens']} tokens")
    np.savez_compressed(golden / "outputs.npz", **arrays)
    import transformers
    meta = {"upstream": UPSTREAM_REPO, "commit": UPSTREAM_COMMIT, "transformers": transformers.__version__,
            "torch": torch.__version__, "numpy": np.__version__, "reduced": REDUCED, "seed": SEED,
            "tag": TAG, "threshold": 40, "heatmap_scale": 65535}
    (golden / "cases.json").write_text(json.dumps({**meta, "cases": cases}, indent=1, ensure_ascii=False) + "\n")
    optim = {"optimizer": checkpoint["optimizer"], "scheduler": checkpoint["scheduler"]}
    (golden / "checkpoint.json").write_text(json.dumps({**meta, **optim, "tensors": entries}) + "\n")


def write_manifests(upstream: Path, out: Path) -> None:
    """Full-size key lists: upstream RAHF and AltCLIP's hub layout."""
    import transformers
    from transformers import AltCLIPConfig, AltCLIPModel

    meta = {"upstream": UPSTREAM_REPO, "commit": UPSTREAM_COMMIT, "transformers": transformers.__version__}
    rahf = build_upstream(upstream, reduced=False, meta=True)
    keys = key_list(rahf.state_dict())
    (out / "upstream_keys.json").write_text(json.dumps(
        {**meta, "what": "RAHF(pretrained_model_path='altclip_model').state_dict(), full size", "keys": keys},
        indent=0) + "\n")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(altclip_config(upstream, reduced=False)))
        config = AltCLIPConfig.from_pretrained(tmp)
    with torch.device("meta"):
        hub = AltCLIPModel(config)
    keys = key_list(hub.state_dict())
    (out / "altclip_hub_keys.json").write_text(json.dumps(
        {**meta, "what": "AltCLIPModel(BAAI/AltCLIP config).state_dict(): the hub checkpoint's layout",
         "vision_image_size": config.vision_config.image_size, "keys": keys}, indent=0) + "\n")
    print(f"manifests: {len(rahf.state_dict())} RAHF keys, {len(keys)} AltCLIP keys")


def main(argv: list[str] | None = None) -> None:
    """Write the manifests and the golden folder."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", type=Path, required=True, help=f"a checkout of {UPSTREAM_REPO} at {UPSTREAM_COMMIT}")
    ap.add_argument("--out", type=Path, required=True, help="output folder (tests/data/rahf)")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    args.out.mkdir(parents=True, exist_ok=True)
    write_manifests(args.upstream, args.out)
    run_golden(args.upstream, args.out)


if __name__ == "__main__":
    main()
