"""Golden outputs of the upstream FGA-BLIP2 code (EvalMuse's LAVIS), for tests/test_baseline_fga_blip2_golden.py.

Not part of the package and not run by CI: it needs the upstream repository and the library versions it
pins, in a scratch environment of its own::

    git clone https://github.com/DYEvaLab/EvalMuse UPSTREAM
    git -C UPSTREAM checkout 0fa141b508af5bdd78161977bbde0224d05d4e8d
    python -m venv VENV    # a scratch environment, outside the repository
    VENV/bin/pip install torch==2.13.0 transformers==4.33.2 tokenizers==0.13.3
    VENV/bin/pip install --no-deps timm==0.4.12 torchvision==0.28.0
    VENV/bin/pip install 'numpy<2.3' omegaconf pillow pandas iopath opencv-python-headless decord \\
        webdataset fairscale pycocoevalcap 'huggingface-hub<0.18' safetensors
    VENV/bin/python benchmarks/golden/fga_blip2_upstream.py --upstream UPSTREAM --out tests/data/fga_blip2

Versions: ``transformers==4.33.2`` and ``timm==0.4.12`` are what upstream's ``requirements.txt`` pins; both run
with torch 2.13.0 (CPU build). LAVIS imports its whole model zoo, so the other packages above are needed only
to import it (``fairscale`` 0.4.13 instead of the pinned 0.4.4, which does not build here; nothing of it runs).
``torchvision`` 0.28.0 (torch 2.13's) is installed without its compiled operators, which do not load beside
the CPU torch wheel: ``torchvision._meta_registrations`` is replaced by an empty module, and only its Python
image transforms run (upstream's ``blip_image_eval`` processor: PIL bicubic resize to 364, ToTensor, Normalize).

What is stubbed (downloads only, nothing on the forward path):

* ``BertTokenizer.from_pretrained("bert-base-uncased")`` loads a small WordPiece vocabulary written here
  (``golden/tokenizer/vocab.txt``: the special tokens, the characters alone and as ``##`` pieces, the words of
  the prompts); upstream then adds ``[DEC]`` as usual;
* ``BertConfig.from_pretrained("bert-base-uncased")`` gives bert-base-uncased's config with reduced widths
  (below); ``BertLMHeadModel.from_pretrained`` builds upstream's Q-Former from that config (random init);
* ``create_eva_vit_g`` builds upstream's ``VisionTransformer`` with EVA ViT-g's arguments but reduced depth
  and width, and skips the weight download (the checkpoint below replaces every weight anyway);
* ``load_checkpoint_from_config`` (the COCO checkpoint download) does nothing; upstream's ``eval.py`` then loads
  the golden checkpoint with ``model.load_checkpoint`` as it loads ``fga_blip2.pth``;
* ``eval.py`` imports ``utils.load_data`` from a file that is not in the repository: a JSON reader stands in.

Then upstream's own code runs unchanged: ``eval.py``'s ``eval()`` (text processor, element location, scores),
``process/process_train.py`` and ``process/element2mask.py`` (training annotations -> ``train_mask.json``), the
``AlignmentDataset`` and ``FGA_Blip2.forward`` (training loss, mask head) in eval mode (no dropout), on CPU in
float32 (upstream's ``load_model_and_preprocess`` casts the model to float32 on CPU; the deterministic eval image
processor stands in for the random training crops).

Reduced config: ViT 2 blocks of width 64 (4 heads, EVA's MLP ratio 4.3637 -> 279), Q-Former 2 layers of width
64 (4 heads, intermediate 128, cross-attention every 2nd layer as upstream). Image size (364), patch (14),
32 query tokens, position table (512), ``embed_dim`` (256), eps values and every layer kind are upstream's.

What it writes under ``--out``:

* ``upstream_keys.json``: every key of upstream's ``FGA_Blip2.state_dict()`` at full size (EVA ViT-g, 39
  blocks of width 1408, BERT-base Q-Former, vocabulary 30523), with shapes, built on the meta device;
* ``golden/checkpoint.json``: the reduced checkpoint in upstream's format (``torch.save({"model": state_dict})``)
  as key, shape, dtype, mean, std and a checksum per tensor; the values are ``mean + std * z`` with ``z`` a
  standard normal draw of NumPy's PCG64 seeded ``[SEED, index]``, so the test rebuilds the very file (a tensor
  upstream ties to another, the LM decoder to the word embeddings, is ``tied_to`` it and holds its values);
* ``golden/tokenizer/``: the vocabulary; ``golden/images/``: the input pictures;
* ``golden/cases.json``: inference cases (prompt, upstream's cleaned prompt and token ids, element keys) with
  upstream's ``eval.py`` results (``score_result``, ``element_result``);
* ``golden/train.json``: raw training records, and per record what upstream's preprocessing kept (the
  ``mask``/``token_score`` lists of ``train_mask.json``, or dropped) and, for kept records, the dataset's
  padded targets, ``FGA_Blip2.forward``'s loss, its mask head output and its ITM match probabilities.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import io
import json
import os
import runpy
import sys
import tempfile
import types
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

UPSTREAM_REPO = "DYEvaLab/EvalMuse"
UPSTREAM_COMMIT = "0fa141b508af5bdd78161977bbde0224d05d4e8d"
SEED = 20250415
REDUCED_VIT = {"embed_dim": 64, "depth": 2, "num_heads": 4}
FULL_VIT = {"embed_dim": 1408, "depth": 39, "num_heads": 1408 // 88}
REDUCED_QFORMER = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}
#: bert-base-uncased's config.json values (the hub file is not reachable here).
BERT_BASE = {"vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 3072, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
             "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512, "type_vocab_size": 2,
             "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
             "position_embedding_type": "absolute"}
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

#: Inference cases: image file, prompt, element keys (what eval.py reads from a test.json record).
LONG = ("a small purple hexagon floats beside a tall wooden tower while seven striped kites drift over the calm "
        "blue lake under a pale morning sky and a tiny green frog sits on a red leaf near the shore where an old "
        "brown boat rests on the sand beside one yellow umbrella and two sleepy dogs")
CASES: list[dict[str, Any]] = [
    {"image": "a.png", "prompt": "A RED Circle, left of a blue square!",
     "elements": ["red (color)", "circle (object)", "left of (spatial)", "blue (color)", "square (object)"]},
    {"image": "a.png", "prompt": "a red circle, left of a blue square",
     "elements": ["red (color)", "circle (object)", "left of (spatial)", "blue (color)", "square (object)"]},
    {"image": "b.png", "prompt": "The \"happy\" Dog (wearing a hat) #cute: runs; jumps~ *fast*...",
     "elements": ["Dog (animal)", "hat (object)", "happy (attribute)", "runs (activity)", "fast (attribute)",
                  "hat (with a brim) (object)", "grass"]},
    {"image": "c.png", "prompt": LONG,
     "elements": ["purple hexagon (object)", "wooden (material)", "green frog (animal)", "yellow umbrella (object)",
                  "sleepy dogs (animal)", "seven (counting)"]},
    {"image": "b.png", "prompt": "Two cats. One dog!  A bird:   three fish",
     "elements": ["two (counting)", "cats (animal)", "dog (animal)", "bird (animal)", "three fish (animal)"]},
]
#: Training records in the released raw form (per-annotator lists), for process_train.py + element2mask.py.
TRAIN: list[dict[str, Any]] = [
    {"img_path": "a.png", "prompt": "a red circle left of a blue square",
     "total_score": [4, 5, 4], "element_score": {"red (color)": [1, 1, 1], "circle (object)": [1, 1, 0],
                                                 "left of (spatial)": [0, 1, 0], "blue (color)": [1, 0, 1],
                                                 "square (object)": [1, 1, 1]}},
    {"img_path": "b.png", "prompt": "A happy dog. It wears a hat, and a red scarf.",
     "total_score": [2, 3, 2], "element_score": {"hat (object)": [1, 1, 1], "red scarf (object)": [0, 0, 1],
                                                 "happy (attribute)": [1, 0, 0], "dog (animal)": [1, 1, 1]}},
    {"img_path": "c.png", "prompt": LONG,
     "total_score": [3, 3, 4], "element_score": {"purple hexagon (object)": [1, 1, 1], "wooden (material)": [0, 1, 1],
                                                 "sleepy dogs (animal)": [0, 0, 1], "seven (counting)": [0, 0, 0]}},
    {"img_path": "a.png", "prompt": "a blue square near a pink star",
     "total_score": [1, 2, 1], "element_score": {"blue (color)": [0, 0, 1], "pink star (object)": [0, 1, 0],
                                                 "orange (color)": [0, 0, 0]}},
    {"img_path": "b.png", "prompt": "a dog on grass",
     "total_score": [5, 5, 4], "element_score": {"dog (animal)": [1, 1, 1], "grass": [1, 1, 1]}},
]


# --------------------------------------------------------------------------- inputs written here

def draw_images(folder: Path) -> None:
    """Three small pictures of different sizes and aspect ratios (gradients and shapes: PNG stays small)."""
    folder.mkdir(parents=True, exist_ok=True)
    specs = {"a.png": (120, 90), "b.png": (64, 80), "c.png": (150, 110)}
    for i, (name, (w, h)) in enumerate(specs.items()):
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([x * 255 // max(1, w - 1), y * 255 // max(1, h - 1), (x + y + 40 * i) % 256], -1)
        im = Image.fromarray(base.astype(np.uint8), "RGB")
        d = ImageDraw.Draw(im)
        d.ellipse((w // 8, h // 6, w // 2, h // 2 + h // 6), fill=(220, 30 + 60 * i, 40))
        d.rectangle((w // 2, h // 2, w - w // 8, h - h // 10), fill=(30, 60, 210 - 50 * i))
        d.polygon([(w // 3, h - 4), (w // 2, h // 2), (2 * w // 3, h - 4)], fill=(250, 240, 30))
        im.save(folder / name)


def word_list() -> list[str]:
    """Every lower-cased word and punctuation mark of the prompts and element keys."""
    import re

    texts = [c["prompt"] for c in CASES] + [k for c in CASES for k in c["elements"]]
    texts += [r["prompt"] for r in TRAIN] + [k for r in TRAIN for k in r["element_score"]]
    words: set[str] = set()
    for text in texts:
        words.update(re.findall(r"[a-z0-9]+|[^a-z0-9\s]", text.lower()))
    return sorted(words)


def write_vocab(folder: Path) -> Path:
    """A WordPiece vocabulary: specials, every character alone and as ``##`` continuation, then the words."""
    import string

    folder.mkdir(parents=True, exist_ok=True)
    chars = sorted(set(string.ascii_lowercase + string.digits + string.punctuation))
    vocab = SPECIALS + chars + [f"##{c}" for c in chars]
    vocab += [w for w in word_list() if w not in set(vocab)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    return folder


# --------------------------------------------------------------------------- stubs (downloads only)

#: What the stubs build: the tokenizer folder, the ViT and Q-Former sizes, the base vocabulary size.
SETTINGS: dict[str, Any] = {}


def install_stubs(upstream: Path) -> None:
    """Make LAVIS importable offline: local tokenizer, configs of ``SETTINGS``' sizes, no weight downloads."""
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    sys.path.insert(0, str(upstream))
    import transformers
    from transformers import BertConfig, BertTokenizer

    assert transformers.__version__ == "4.33.2", transformers.__version__
    load_tokenizer = BertTokenizer.from_pretrained.__func__

    def tokenizer_from_local(cls, name, *args, **kwargs):  # noqa: ANN001, ANN202
        assert name == "bert-base-uncased", name
        return load_tokenizer(cls, str(SETTINGS["vocab_dir"]), *args, local_files_only=True, **kwargs)

    def config_from_dict(cls, name, *args, **kwargs):  # noqa: ANN001, ANN202
        assert name == "bert-base-uncased", name
        return cls(**{**BERT_BASE, **SETTINGS["qformer"], "vocab_size": SETTINGS["vocab_size"]})

    BertTokenizer.from_pretrained = classmethod(tokenizer_from_local)
    BertConfig.from_pretrained = classmethod(config_from_dict)

    from lavis.models import base_model, eva_vit
    from lavis.models.blip2_models import Qformer, blip2

    def qformer_from_config(cls, name, config=None, **kwargs):  # noqa: ANN001, ANN202
        return cls(config)

    def eva_vit_without_download(img_size=224, drop_path_rate=0.4, use_checkpoint=False, precision="fp16"):  # noqa: ANN001, ANN202
        linspace = torch.linspace
        # the drop-path rates are read with .item(): on the meta device they must be real numbers
        torch.linspace = lambda *a, **k: linspace(*a, **{**k, "device": "cpu"})
        try:
            model = eva_vit.VisionTransformer(
                img_size=img_size, patch_size=14, use_mean_pooling=False, mlp_ratio=4.3637, qkv_bias=True,
                drop_path_rate=drop_path_rate, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                use_checkpoint=use_checkpoint, **SETTINGS["vit"])
        finally:
            torch.linspace = linspace
        if precision == "fp16":
            eva_vit.convert_weights_to_fp16(model)
        return model

    Qformer.BertLMHeadModel.from_pretrained = classmethod(qformer_from_config)
    blip2.create_eva_vit_g = eva_vit_without_download
    base_model.BaseModel.load_checkpoint_from_config = lambda self, cfg, **kwargs: None
    utils = types.ModuleType("utils")
    utils.load_data = lambda path, kind: json.loads(Path(path).read_text(encoding="utf-8"))
    utils.compute_metrics = None
    sys.modules["utils"] = utils


# --------------------------------------------------------------------------- checkpoint values

def draw_spec(name: str, shape: tuple[int, ...]) -> tuple[float, float]:
    """(mean, std) of a tensor's seeded values: outputs stay in a sensible range and every tensor differs."""
    leaf = name.rsplit(".", 1)[-1]
    is_norm = any(t in name for t in ("norm1", "norm2", "ln_vision", "LayerNorm"))
    if is_norm:
        return (1.0, 0.3) if leaf == "weight" else (0.0, 0.1)
    if leaf in ("bias", "q_bias", "v_bias"):
        return 0.0, 0.05
    if name.endswith(("cls_token", "pos_embed", "query_tokens")) or "embeddings" in name:
        return 0.0, 0.5
    if name == "temp":
        return 0.07, 0.0
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    return 0.0, 1.5 / np.sqrt(fan_in)


def seeded(index: int, shape: tuple[int, ...], mean: float, std: float) -> np.ndarray:
    """``mean + std * z`` in float32, ``z`` standard normal from PCG64 seeded ``[SEED, index]``."""
    z = np.random.default_rng([SEED, index]).standard_normal(shape)
    return np.asarray(mean + std * z, dtype=np.float32)


def golden_state(template: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """The checkpoint's tensors (seeded values) and their manifest entries."""
    state, manifest = {}, []
    first_of: dict[int, str] = {}  # storage -> first key: tied tensors (word embeddings = LM decoder) share values
    for index, (name, tensor) in enumerate(template.items()):
        shape = tuple(tensor.shape)
        tied = first_of.setdefault(tensor.data_ptr(), name)
        if tied != name:
            state[name] = state[tied]
            entry = {"key": name, "shape": list(shape), "dtype": "float32", "tied_to": tied}
        elif tensor.dtype == torch.int64:  # position_ids: a buffer of positions, kept as upstream builds it
            state[name] = tensor.clone()
            entry = {"key": name, "shape": list(shape), "dtype": "int64", "fill": "arange"}
        else:
            mean, std = draw_spec(name, shape)
            values = seeded(index, shape, mean, std)
            state[name] = torch.from_numpy(values)
            entry = {"key": name, "shape": list(shape), "dtype": "float32", "mean": mean, "std": float(std)}
        entry["sha256"] = hashlib.sha256(state[name].numpy().tobytes()).hexdigest()
        manifest.append(entry)
    return state, manifest


# --------------------------------------------------------------------------- runs of the upstream code

def build_upstream_model() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """``load_model_and_preprocess("fga_blip2", "coco")`` as eval.py calls it (CPU)."""
    from lavis.models import load_model_and_preprocess

    return load_model_and_preprocess("fga_blip2", "coco", device="cpu", is_eval=True)


def run_eval(upstream: Path, work: Path, images: Path, checkpoint: Path) -> list[dict[str, Any]]:
    """Upstream's eval.py ``eval()`` on the inference cases; returns its result records."""
    spec = importlib.util.spec_from_file_location("upstream_eval", upstream / "eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = [{"img_path": c["image"], "prompt": c["prompt"], "element_score": {k: 0 for k in c["elements"]}}
            for c in CASES]
    (work / "test.json").write_text(json.dumps(data))
    args = argparse.Namespace(data_file=str(work / "test.json"), save_path=str(work / "result.json"),
                              model_path=str(checkpoint), dataset_dir=str(images) + os.sep)
    module.eval(args)
    results = json.loads((work / "result.json").read_text())
    return [{**case, "score_result": res["score_result"], "element_result": res["element_result"]}
            for case, res in zip(CASES, results)]


def run_train_preprocessing(upstream: Path, work: Path) -> list[dict[str, Any]]:
    """process_train.py then element2mask.py on the raw training records; returns train_mask.json."""
    dataset = work / "dataset"
    dataset.mkdir(parents=True, exist_ok=True)
    raw = [{"prompt_id": str(i), "type": "golden", "promt_meaningless": [0, 0, 0], "split_confidence": [0, 0, 0],
            "attribute_confidence": [1, 1, 1], **r} for i, r in enumerate(TRAIN)]
    (dataset / "train_list.json").write_text(json.dumps(raw))
    cwd = os.getcwd()
    try:
        os.chdir(work)
        with contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path(str(upstream / "process" / "process_train.py"), run_name="__main__")
            runpy.run_path(str(upstream / "process" / "element2mask.py"), run_name="__main__")
    finally:
        os.chdir(cwd)
    return json.loads((dataset / "train_mask.json").read_text())


def run_training_forward(model: Any, vis: dict[str, Any], txt: dict[str, Any], images: Path, work: Path,
                         kept: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """AlignmentDataset + FGA_Blip2.forward per kept record: loss, mask head output, ITM match probabilities."""
    from lavis.datasets.datasets.align_datasets import AlignmentDataset

    ann = work / "dataset" / "train_mask.json"
    dataset = AlignmentDataset(vis["eval"], txt["train"], str(images), [str(ann)])
    captured: dict[str, torch.Tensor] = {}
    hooks = [model.mask_proj.register_forward_hook(lambda m, i, o: captured.__setitem__("mask", o.detach())),
             model.itm_head.register_forward_hook(lambda m, i, o: captured.__setitem__("itm", o.detach()))]
    out = []
    model.eval()
    try:
        for index in range(len(dataset)):
            samples = dataset.collater([dataset[index]])
            with torch.no_grad():
                loss = model(samples, match_head="itm", inference=False).loss
            probs = torch.softmax(captured["itm"].float(), dim=2)[0, :, 1]
            out.append({"caption": samples["text_input"][0], "mask_target": samples["mask"][0],
                        "token_target": samples["token_score"][0], "score": float(samples["score"][0]),
                        "loss": float(loss), "mask": captured["mask"][0, :, 0].tolist(),
                        "itm_match": probs.tolist()})
    finally:
        for hook in hooks:
            hook.remove()
    return out


def full_size_keys() -> list[list[Any]]:
    """Every key of FGA_Blip2.state_dict() at full size, with shapes, built on the meta device."""
    from lavis.models.blip2_models.fga_blip2 import FGA_Blip2

    with torch.device("meta"):
        model = FGA_Blip2(img_size=364, vit_precision="fp32", freeze_vit=True, num_query_token=32)
    return [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in model.state_dict().items()]


def main(argv: list[str] | None = None) -> int:
    """Write the key manifest and the golden outputs under ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--upstream", type=Path, required=True, help="a checkout of DYEvaLab/EvalMuse")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (tests/data/fga_blip2)")
    args = parser.parse_args(argv)
    upstream, out = args.upstream.resolve(), args.out.resolve()
    golden = out / "golden"
    images = golden / "images"
    draw_images(images)
    vocab_dir = write_vocab(golden / "tokenizer")
    n_vocab = len((vocab_dir / "vocab.txt").read_text().split("\n")) - 1

    # full-size key list: bert-base-uncased's vocabulary size (30522, + [DEC] = 30523 after resizing)
    full_vocab = Path(tempfile.mkdtemp()) / "full_vocab"
    full_vocab.mkdir()
    (full_vocab / "vocab.txt").write_text("\n".join(SPECIALS + [f"[unused{i}]" for i in range(30522 - 5)]) + "\n")
    install_stubs(upstream)
    SETTINGS.update(vocab_dir=full_vocab, vit=FULL_VIT, qformer={}, vocab_size=30522)
    import timm
    import transformers

    keys = full_size_keys()
    meta = {"upstream": UPSTREAM_REPO, "commit": UPSTREAM_COMMIT, "transformers": transformers.__version__,
            "torch": torch.__version__, "timm": timm.__version__}
    (out / "upstream_keys.json").write_text(json.dumps({**meta, "keys": keys}, indent=0))

    # reduced model: the same code with the small vocabulary and reduced widths
    SETTINGS.update(vocab_dir=vocab_dir, vit=REDUCED_VIT, qformer=REDUCED_QFORMER, vocab_size=n_vocab)
    torch.manual_seed(SEED)
    model, vis, txt = build_upstream_model()
    state, manifest = golden_state(model.state_dict())
    work = Path(tempfile.mkdtemp())
    checkpoint = work / "fga_blip2.pth"
    torch.save({"model": state, "epoch": 0}, checkpoint)
    (golden / "checkpoint.json").write_text(json.dumps({**meta, "seed": SEED, "format": "torch.save({'model': ...})",
                                                        "vision": REDUCED_VIT, "qformer": REDUCED_QFORMER,
                                                        "tensors": manifest}, indent=0))
    msg = model.load_checkpoint(str(checkpoint))
    assert not msg.missing_keys and not msg.unexpected_keys, msg

    cases = run_eval(upstream, work, images, checkpoint)
    for case in cases:
        case["cleaned"] = txt["eval"](case["prompt"])
        case["prompt_ids"] = model.tokenizer(case["cleaned"]).input_ids
    kept = run_train_preprocessing(upstream, work)
    forward = run_training_forward(model, vis, txt, images, work, kept)
    by_prompt = {(k["img_path"], k["prompt"]): (k, f) for k, f in zip(kept, forward)}
    train = []
    for record in TRAIN:
        hit = by_prompt.get((record["img_path"], record["prompt"]))
        entry: dict[str, Any] = {**record, "kept": hit is not None}
        if hit is not None:
            entry.update({"upstream_mask": hit[0]["mask"], "upstream_token_score": hit[0]["token_score"], **hit[1]})
        train.append(entry)
    (golden / "cases.json").write_text(json.dumps({**meta, "cases": cases}, indent=1))
    (golden / "train.json").write_text(json.dumps({**meta, "records": train}, indent=1))
    print(f"wrote {out / 'upstream_keys.json'} ({len(keys)} keys) and {golden} "
          f"({len(cases)} cases, {sum(t['kept'] for t in train)}/{len(train)} training records kept)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
