"""Weights in other layouts -> this package's :class:`~ntire_t2iqa_baselines.rahf.model.RAHF`, loaded safely.

Three layouts are understood (all tensors loaded with safetensors or ``torch.load(weights_only=True)``,
so no code in a checkpoint ever runs):

1. **Ours**: a run folder's ``model.safetensors`` (keys ``vision.``, ``text_embeddings.``, ``fusion.``,
   ``heatmap_head.``, ``score_head.``).
2. **EvalMuse-Structure (EM-RAHF)**: the official training script saves
   ``torch.save({"model": model.module.state_dict(), "optimizer": ..., "scheduler": ...}, "<iter>.pth")``
   of its ``RAHF`` module (``model/model_final.py`` + ``model/basic_components.py`` of
   ``DYEvaLab/EvalMuse-Structure``). The assumed key mapping, official -> ours (a leading
   ``module.`` from DDP is stripped; buffers such as ``position_ids`` are dropped)::

       image_encoder.ViT.<rest>                                -> vision.<rest>
       text_encoder.text_embedding.<rest>                      -> text_embeddings.<rest>
       self_attention.layers.<i>.norm1 / norm2                 -> fusion.blocks.<i>.norm1 / norm2
       self_attention.layers.<i>.attention.module.to_q|k|v|out -> fusion.blocks.<i>.attn.q|k|v|out
       self_attention.layers.<i>.feed_forward.module.ff.<j>    -> fusion.blocks.<i>.mlp.<j>      (j = 0, 2)
       self_attention.norm                                     -> fusion.norm
       heatmap_predictor.conv_layers.<j>                       -> heatmap_head.stem.<j>          (j = 0, 1, 3, 4)
       heatmap_predictor.deconv_layers.<i>.<j>                 -> heatmap_head.stages.<i>.<j>    (j = 0, 1, 3, 4, 6, 7)
       heatmap_predictor.final_layers.0                        -> heatmap_head.out
       score_predictor.conv_layers.<i>.<j>                     -> score_head.convs.<3i + j>      (j = 0 conv, 1 norm)
       score_predictor.fc_layers.<k>                           -> score_head.mlp.<k>             (k = 0, 2, 4)

   Its vision position table already has the 448 px grid (1025 rows); its prompts are
   tokenised by AltCLIP's processor (XLM-R, padded to 512 tokens): use the ``full`` config.
3. **AltCLIP** (``BAAI/AltCLIP``, a local folder): ``vision_model.<rest>`` -> ``vision.<rest>`` and
   ``text_model.roberta.embeddings.<rest>`` -> ``text_embeddings.<rest>``; the rest is dropped, each
   part for a reason listed in :data:`IGNORED` (an unexpected key is an error). Its
   224 px position table (16 x 16 + CLS) is interpolated bilinearly onto the model's grid, as the
   official ``new_position_embedding_weight_448.pt`` was made.

Command line: ``python -m ntire_t2iqa_baselines.rahf.convert OFFICIAL.pth RUN_DIR [--altclip DIR]`` writes a run
folder (``model.safetensors`` + ``config.json``) that ``ntire-t2iqa baseline run rahf --weights RUN_DIR`` reads.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from ..common.runtime import load_state_dict
from .model import RAHF, resize_position_table

POSITION_KEY = "vision.embeddings.position_embedding.weight"
#: Named parts of a key carried over unchanged between the two layouts.
_SLOTS = {"layer": r"\d+", "proj": "q|k|v|out", "idx": r"\d+", "norm": "norm1|norm2"}
#: (official key prefix, our key prefix); ``{slot}`` stands for a part carried over. Both directions
#: are built from this one table: the first matching prefix wins.
KEY_MAP: list[tuple[str, str]] = [
    ("image_encoder.ViT.", "vision."),
    ("text_encoder.text_embedding.", "text_embeddings."),
    ("self_attention.layers.{layer}.attention.module.to_{proj}.", "fusion.blocks.{layer}.attn.{proj}."),
    ("self_attention.layers.{layer}.feed_forward.module.ff.{idx}.", "fusion.blocks.{layer}.mlp.{idx}."),
    ("self_attention.layers.{layer}.{norm}.", "fusion.blocks.{layer}.{norm}."),
    ("self_attention.norm.", "fusion.norm."),
    ("heatmap_predictor.conv_layers.", "heatmap_head.stem."),
    ("heatmap_predictor.deconv_layers.", "heatmap_head.stages."),
    ("heatmap_predictor.final_layers.0.", "heatmap_head.out."),
    ("score_predictor.fc_layers.", "score_head.mlp."),
]


def _prefix_rules(pairs: list[tuple[str, str]], reverse: bool) -> list[tuple[str, str]]:
    """(regex, replacement) rules for :func:`_rename` from prefix templates, in either direction."""
    rules = []
    for official, ours in pairs:
        source, target = (ours, official) if reverse else (official, ours)
        parts = re.split(r"\{(\w+)\}", source)  # literal, slot, literal, ...
        pattern = "^" + "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>{_SLOTS[part]})"
                                for i, part in enumerate(parts))
        rules.append((pattern, re.sub(r"\{(\w+)\}", r"\\g<\1>", target)))
    return rules


OFFICIAL_TO_OURS = _prefix_rules(KEY_MAP, reverse=False)
OURS_TO_OFFICIAL = _prefix_rules(KEY_MAP, reverse=True)

ALTCLIP_TO_OURS: list[tuple[str, str]] = [
    (r"^vision_model\.", "vision."),
    (r"^text_model\.roberta\.embeddings\.", "text_embeddings."),
]
_SCORE_CONV_OFFICIAL = re.compile(r"^score_predictor\.conv_layers\.(\d+)\.(\d+)\.")
_SCORE_CONV_OURS = re.compile(r"^score_head\.convs\.(\d+)\.")
_BUFFERS = re.compile(r"(^|\.)(position_ids|token_type_ids)$")
#: Keys of each layout that are read and dropped on purpose, with the reason (every other key must map).
IGNORED: dict[str, list[tuple[str, str]]] = {
    "official": [
        (_BUFFERS.pattern, "index buffers (position and token-type ids), recomputed by the model"),
    ],
    "altclip": [
        (_BUFFERS.pattern, "index buffers (position and token-type ids), recomputed by the model"),
        (r"^text_model\.roberta\.encoder\.", "AltCLIP's text transformer: RAHF takes the text embeddings only"),
        (r"^text_model\.roberta\.pooler\.", "AltCLIP's text pooler: RAHF takes the text embeddings only"),
        (r"^text_model\.(transformation|pre_LN)\.", "AltCLIP's text projection to the CLIP space: unused"),
        (r"^(text_projection|visual_projection)\.", "CLIP's contrastive projections: unused"),
        (r"^logit_scale$", "CLIP's contrastive temperature: unused"),
    ],
}


def ignored_reason(key: str, layout: str) -> str | None:
    """Why ``key`` of a ``layout`` state dict is dropped on purpose, or ``None`` when it must be mapped."""
    for pattern, reason in IGNORED[layout]:
        if re.search(pattern, key):
            return reason
    return None


def _rename(key: str, rules: list[tuple[str, str]]) -> str | None:
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, key, count=1)
        if n:
            return new
    return None


def layout_of(state: dict[str, Any]) -> str:
    """``ours``, ``official`` or ``altclip``, from the keys of a state dict."""
    keys = [k.removeprefix("module.") for k in state]
    if any(k.startswith(("image_encoder.", "heatmap_predictor.", "self_attention.")) for k in keys):
        return "official"
    if any(k.startswith(("vision_model.", "text_model.")) for k in keys):
        return "altclip"
    if any(k.startswith(("vision.", "heatmap_head.", "fusion.")) for k in keys):
        return "ours"
    raise ValueError("the weights have neither this baseline's keys, nor EM-RAHF's (image_encoder., "
                     "heatmap_predictor., ...), nor AltCLIP's (vision_model., text_model.)")


def official_to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an EM-RAHF state dict to this package's keys (see the module docstring)."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        key = key.removeprefix("module.")
        if ignored_reason(key, "official"):
            continue
        m = _SCORE_CONV_OFFICIAL.match(key)
        new = f"score_head.convs.{3 * int(m.group(1)) + int(m.group(2))}." + key[m.end():] if m else \
            _rename(key, OFFICIAL_TO_OURS)
        if new is None:
            unknown.append(key)
        else:
            out[new] = value
    if unknown:
        raise ValueError(f"{len(unknown)} EM-RAHF key(s) have no place in this model, e.g. {unknown[:3]}")
    return out


def ours_to_official(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`official_to_ours` (to share weights in the EM-RAHF layout)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = _SCORE_CONV_OURS.match(key)
        if m:
            i, j = divmod(int(m.group(1)), 3)
            new = f"score_predictor.conv_layers.{i}.{j}." + key[m.end():]
        else:
            new = _rename(key, OURS_TO_OFFICIAL)
        if new is None:
            raise ValueError(f"key {key!r} has no EM-RAHF name")
        out[new] = value
    return out


def altclip_to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder weights of an AltCLIP state dict under this package's keys.

    Keys in :data:`IGNORED` ``["altclip"]`` are dropped (each with its reason); any other key that
    has no place in this model is an error, so a renamed or unexpected layout is never half-loaded.
    """
    out, unknown = {}, []
    for key, value in state.items():
        if ignored_reason(key, "altclip"):
            continue
        new = _rename(key, ALTCLIP_TO_OURS)
        if new is None:
            unknown.append(key)
        else:
            out[new] = value
    if unknown:
        raise ValueError(f"{len(unknown)} AltCLIP key(s) are neither encoder weights nor known unused parts, "
                         f"e.g. {unknown[:3]}; is this a BAAI/AltCLIP checkpoint?")
    return out


def to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Any understood layout -> this package's keys."""
    layout = layout_of(state)
    if layout == "official":
        return official_to_ours(state)
    if layout == "altclip":
        return altclip_to_ours(state)
    return {k.removeprefix("module."): v for k, v in state.items() if not _BUFFERS.search(k)}


def fit_position_table(state: dict[str, torch.Tensor], model: RAHF) -> dict[str, torch.Tensor]:
    """Interpolate the vision position table of ``state`` onto the model's grid when their sizes differ."""
    table = state.get(POSITION_KEY)
    if table is not None and table.shape[0] != 1 + model.grid**2:
        state = dict(state)
        state[POSITION_KEY] = resize_position_table(table, model.grid)
    return state


def load_weights(model: RAHF, state: dict[str, torch.Tensor], strict: bool = True) -> list[str]:
    """Load a state dict of any understood layout into ``model``; return the model keys left untouched.

    ``strict``: every model key must be given and every given key must fit (shape included).
    """
    state = fit_position_table(to_ours(state), model)
    own = model.state_dict()
    extra = sorted(set(state) - set(own))
    if extra:
        raise ValueError(f"{len(extra)} key(s) are not in this model, e.g. {extra[:3]}; is it the right config?")
    bad = [f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items() if v.shape != own[k].shape]
    if bad:
        raise ValueError(f"{len(bad)} shape mismatch(es), e.g. {bad[:3]}; the weights were made with another config")
    missing = sorted(set(own) - set(state))
    if strict and missing:
        raise ValueError(f"{len(missing)} model key(s) are missing from the weights, e.g. {missing[:3]}")
    model.load_state_dict(state, strict=False)
    return missing


def read_official_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``model`` state dict of an EM-RAHF ``.pth`` file, loaded with ``weights_only=True``."""
    return load_state_dict(path)


def save_official_checkpoint(model: RAHF, path: str | Path) -> Path:
    """Write ``{"model": state_dict}`` in the EM-RAHF layout (as its training script does)."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save({"model": ours_to_official(state)}, path)
    return path


def _altclip_weight_files(folder: Path) -> list[Path]:
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (folder / index).is_file():
            shards = sorted(set(json.loads((folder / index).read_text())["weight_map"].values()))
            return [folder / s for s in shards]
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return [folder / name]
    raise FileNotFoundError(f"{folder} holds no AltCLIP weights (model.safetensors or pytorch_model.bin)")


def load_altclip_encoders(model: RAHF, folder: str | Path) -> None:
    """Initialise the vision tower and text embeddings from a local AltCLIP folder (position table interpolated)."""
    folder = Path(folder).expanduser()
    state: dict[str, torch.Tensor] = {}
    for file in _altclip_weight_files(folder):
        raw = load_file(str(file)) if file.suffix == ".safetensors" else \
            torch.load(file, map_location="cpu", weights_only=True)
        state.update(altclip_to_ours(raw))
    wanted = {k for k in model.state_dict() if k.startswith(("vision.", "text_embeddings."))}
    missing = sorted(wanted - set(state))
    if missing:
        raise ValueError(f"{folder}: {len(missing)} encoder weight(s) missing, e.g. {missing[:3]}")
    load_weights(model, {k: state[k] for k in wanted}, strict=False)


def main(argv: list[str] | None = None) -> None:
    """Convert an EM-RAHF checkpoint into a run folder of this baseline."""
    from ..common.config import ConfigError, load_config
    from ..common.runtime import save_checkpoint
    from . import CONFIG_SCHEMA, CONFIGS
    from .model import build_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="EM-RAHF .pth ({'model': state_dict})")
    parser.add_argument("run_dir", type=Path, help="run folder to write")
    parser.add_argument("--config", type=Path, default=Path(CONFIGS["full"]), help="config JSON (default: full)")
    parser.add_argument("--altclip", default=None, help="local AltCLIP folder (its tokenizer is used at inference)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, CONFIG_SCHEMA)
    except ConfigError as exc:
        parser.error(str(exc))
    if args.altclip:
        config["altclip_dir"] = str(Path(args.altclip).expanduser().resolve())
    model = build_model(config)
    load_weights(model, read_official_checkpoint(args.checkpoint))
    save_checkpoint(args.run_dir, model, config, epoch=-1, extra={"converted_from": str(args.checkpoint),
                                                                  "finished": True})
    print(f"wrote {args.run_dir} ({sum(p.numel() for p in model.parameters()):,} parameters)")


if __name__ == "__main__":
    main()
