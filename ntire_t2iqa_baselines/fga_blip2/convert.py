"""Map the official LAVIS checkpoint (``fga_blip2.pth``) onto :class:`.model.FGABlip2`, and back.

Mapping table (LAVIS name -> this model's name; ``{i}`` a layer number, ``{p}`` the rest of the name):

=====================================================  ===================================================
LAVIS (``Blip2Qformer`` + FGA-BLIP2)                    here (transformers ``Blip2ForImageTextRetrieval``)
=====================================================  ===================================================
``visual_encoder.cls_token``                           ``vision_model.embeddings.class_embedding``
``visual_encoder.pos_embed``                           ``vision_model.embeddings.position_embedding`` [1]
``visual_encoder.patch_embed.proj.{p}``                ``vision_model.embeddings.patch_embedding.{p}``
``visual_encoder.blocks.{i}.norm1.{p}`` / ``norm2``    ``vision_model.encoder.layers.{i}.layer_norm1/2.{p}``
``visual_encoder.blocks.{i}.attn.qkv.weight``          ``vision_model.encoder.layers.{i}.self_attn.qkv.weight``
``visual_encoder.blocks.{i}.attn.q_bias`` + ``v_bias``  ``vision_model.encoder.layers.{i}.self_attn.qkv.bias`` [2]
``visual_encoder.blocks.{i}.attn.proj.{p}``            ``vision_model.encoder.layers.{i}.self_attn.projection.{p}``
``visual_encoder.blocks.{i}.mlp.{p}``                  ``vision_model.encoder.layers.{i}.mlp.{p}``
``ln_vision.{p}``                                      ``vision_model.post_layernorm.{p}``
``query_tokens``                                       ``query_tokens``
``Qformer.bert.embeddings.word_embeddings.weight``     ``embeddings.word_embeddings.weight``
``Qformer.bert.embeddings.position_embeddings.weight`` ``embeddings.position_embeddings.weight``
``Qformer.bert.embeddings.LayerNorm.{p}``              ``qformer.layernorm.{p}``
``Qformer.bert.encoder.layer.{i}.attention.self.{p}``  ``qformer.encoder.layer.{i}.attention.attention.{p}``
``Qformer.bert.encoder.layer.{i}.crossattention.self.{p}``  ``qformer.encoder.layer.{i}.crossattention.attention.{p}``
``Qformer.bert.encoder.layer.{i}.{p}`` (the rest)      ``qformer.encoder.layer.{i}.{p}``
``vision_proj.{p}`` / ``text_proj.{p}``                ``vision_projection.{p}`` / ``text_projection.{p}``
``itm_head.{p}``                                       ``itm_head.{p}``
``mask_proj.layers.{i}.{p}`` (FGA-BLIP2's MLP)         ``mask_proj.layers.{i}.{p}``
LAVIS names in :data:`IGNORED` (the position-id buffer, the captioning LM head ``Qformer.cls.*``, the ITC
temperature ``temp``, the unused stage-2 head ``weight_proj.*``)  -> dropped, each for the reason given there.
=====================================================  ===================================================

[1] interpolated (bicubic, as LAVIS does) when the checkpoint's grid differs from the config's image size.
[2] EVA attention has no key bias: ``qkv.bias = cat(q_bias, 0, v_bias)``; the reverse mapping requires the
    key third to be 0 (the model keeps it 0 while training).

EvalMuse's LAVIS runner saves the whole state dict, frozen ViT included (the lines that would leave frozen
parameters out are commented out in its ``_save_checkpoint``), so ``fga_blip2.pth`` carries
``visual_encoder.*``. A checkpoint saved without them (another LAVIS version) loads with LAVIS'
``eva_vit_g.pth`` passed as well (its bare names, ``blocks.{i}...``, ``patch_embed...``, get the
``visual_encoder.`` prefix).

The vision final LayerNorm (``ln_vision``) has eps 1e-5 upstream (a plain ``LayerNorm``), the ViT blocks'
norms 1e-6: the configs set ``ln_vision_eps`` and ``vision.layer_norm_eps`` so.

Command line (writes a run folder that ``ntire-t2iqa baseline run fga-blip2 --weights OUT`` reads)::

    python -m ntire_t2iqa_baselines.fga_blip2.convert fga_blip2.pth [eva_vit_g.pth] --out weights/fga-blip2 \\
        --config full --tokenizer weights/bert-base-uncased
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ntire_t2iqa_baselines.common.runtime import CONFIG, WEIGHTS, load_state_dict

_VE, _VM, _QB, _QH = "visual_encoder.", "vision_model.", "Qformer.bert.", "qformer."
#: (LAVIS pattern, this model's pattern); the first matching rule wins, in both directions.
RULES: tuple[tuple[str, str], ...] = (
    (f"{_VE}cls_token", f"{_VM}embeddings.class_embedding"),
    (f"{_VE}pos_embed", f"{_VM}embeddings.position_embedding"),
    (f"{_VE}patch_embed.proj.{{p}}", f"{_VM}embeddings.patch_embedding.{{p}}"),
    (f"{_VE}blocks.{{i}}.norm1.{{p}}", f"{_VM}encoder.layers.{{i}}.layer_norm1.{{p}}"),
    (f"{_VE}blocks.{{i}}.norm2.{{p}}", f"{_VM}encoder.layers.{{i}}.layer_norm2.{{p}}"),
    (f"{_VE}blocks.{{i}}.attn.qkv.weight", f"{_VM}encoder.layers.{{i}}.self_attn.qkv.weight"),
    (f"{_VE}blocks.{{i}}.attn.proj.{{p}}", f"{_VM}encoder.layers.{{i}}.self_attn.projection.{{p}}"),
    (f"{_VE}blocks.{{i}}.mlp.{{p}}", f"{_VM}encoder.layers.{{i}}.mlp.{{p}}"),
    ("ln_vision.{p}", f"{_VM}post_layernorm.{{p}}"),
    ("query_tokens", "query_tokens"),
    (f"{_QB}embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight"),
    (f"{_QB}embeddings.position_embeddings.weight", "embeddings.position_embeddings.weight"),
    (f"{_QB}embeddings.LayerNorm.{{p}}", f"{_QH}layernorm.{{p}}"),
    (f"{_QB}encoder.layer.{{i}}.attention.self.{{p}}", f"{_QH}encoder.layer.{{i}}.attention.attention.{{p}}"),
    (f"{_QB}encoder.layer.{{i}}.crossattention.self.{{p}}",
     f"{_QH}encoder.layer.{{i}}.crossattention.attention.{{p}}"),
    (f"{_QB}encoder.layer.{{i}}.{{p}}", f"{_QH}encoder.layer.{{i}}.{{p}}"),
    ("vision_proj.{p}", "vision_projection.{p}"),
    ("text_proj.{p}", "text_projection.{p}"),
    ("itm_head.{p}", "itm_head.{p}"),
    ("mask_proj.{p}", "mask_proj.{p}"),
)
#: LAVIS names with no counterpart here, each with why the ITM / element / mask outputs do not need it.
IGNORED: tuple[tuple[str, str], ...] = (
    (r"Qformer\.bert\.embeddings\.position_ids", "a buffer of positions 0..511; the model builds its own"),
    (r"Qformer\.cls\..*", "the Q-Former's masked-language-model head (captioning); FGA-BLIP2 never calls it"),
    (r"temp", "the ITC temperature; only the image-text contrastive loss of BLIP-2 pre-training uses it"),
    (r"weight_proj\..*", "stage-2 weighting head, commented out in FGA_Blip2 (absent from its checkpoint)"),
)
DROPPED = re.compile("^(" + "|".join(pattern for pattern, _ in IGNORED) + ")$")
_QV_BIAS = re.compile(r"^visual_encoder\.blocks\.(\d+)\.attn\.([qv])_bias$")
_QKV_BIAS = re.compile(r"^vision_model\.encoder\.layers\.(\d+)\.self_attn\.qkv\.bias$")
_EVA_BARE = re.compile(r"^(cls_token|pos_embed|patch_embed\.|blocks\.\d+\.)")


def _compile(pattern: str) -> re.Pattern[str]:
    rx = re.escape(pattern).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{p\}", r"(?P<p>[A-Za-z_][\w.]*)")
    return re.compile(f"^{rx}$")


_FORWARD = [(_compile(src), dst) for src, dst in RULES]
_BACKWARD = [(_compile(dst), src) for src, dst in RULES]


def _rename(name: str, rules: list[tuple[re.Pattern[str], str]]) -> str | None:
    for rx, target in rules:
        m = rx.match(name)
        if m:
            return target.format(**m.groupdict())
    return None


def is_lavis(state: dict[str, Any]) -> bool:
    """Whether a state dict carries LAVIS names (``Qformer.bert.*``, ``visual_encoder.*``, ``ln_vision.*``)."""
    return any(k.startswith((_QB, _VE, "ln_vision.")) for k in state)


def from_lavis(state: dict[str, torch.Tensor], strict: bool = True) -> dict[str, torch.Tensor]:
    """LAVIS names -> this model's names (q/v biases merged, unused LAVIS entries dropped).

    ``strict``: a LAVIS name that no rule knows is an error (else it is left out silently).
    """
    out: dict[str, torch.Tensor] = {}
    biases: dict[int, dict[str, torch.Tensor]] = {}
    unknown = []
    for name, tensor in state.items():
        if DROPPED.match(name):
            continue
        m = _QV_BIAS.match(name)
        if m:
            biases.setdefault(int(m.group(1)), {})[m.group(2)] = tensor
            continue
        new = _rename(name, _FORWARD)
        if new is None:
            unknown.append(name)
            continue
        out[new] = tensor
    for layer, qv in biases.items():
        if set(qv) != {"q", "v"}:
            raise ValueError(f"visual_encoder.blocks.{layer}.attn has only a {''.join(qv)}_bias; both q and v needed")
        qkv_bias = torch.cat([qv["q"], torch.zeros_like(qv["q"]), qv["v"]])
        out[f"{_VM}encoder.layers.{layer}.self_attn.qkv.bias"] = qkv_bias
    if unknown and strict:
        raise ValueError(f"{len(unknown)} LAVIS names have no mapping (first: {unknown[:5]}); "
                         "see the table in ntire_t2iqa_baselines/fga_blip2/convert.py")
    return out


def to_lavis(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """This model's names -> LAVIS names (the inverse of :func:`from_lavis`; qkv bias split into q and v)."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        m = _QKV_BIAS.match(name)
        if m:
            q, k, v = tensor.chunk(3)
            if torch.count_nonzero(k):
                raise ValueError(f"{name}: the key bias is not 0, so LAVIS (q and v biases only) cannot hold it")
            out[f"{_VE}blocks.{m.group(1)}.attn.q_bias"] = q.clone()
            out[f"{_VE}blocks.{m.group(1)}.attn.v_bias"] = v.clone()
            continue
        new = _rename(name, _BACKWARD)
        if new is None:
            raise ValueError(f"{name} has no LAVIS name")
        out[new] = tensor
    return out


def lavis_name(name: str) -> str | None:
    """The LAVIS name of one of this model's tensors (``qkv.bias`` -> its ``q_bias``; ``v_bias`` goes with it)."""
    m = _QKV_BIAS.match(name)
    if m:
        return f"{_VE}blocks.{m.group(1)}.attn.q_bias"
    return _rename(name, _BACKWARD)


def with_eva_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A bare EVA ViT-g state dict (``blocks.0...``) with LAVIS' ``visual_encoder.`` prefix."""
    return {(f"{_VE}{k}" if _EVA_BARE.match(k) else k): v for k, v in state.items()}


def interpolate_positions(pos: torch.Tensor, num_positions: int) -> torch.Tensor:
    """Resize a ``(1, 1 + g*g, D)`` position embedding to ``num_positions`` (bicubic on the grid, class token kept)."""
    if pos.shape[1] == num_positions:
        return pos
    old, new = math.isqrt(pos.shape[1] - 1), math.isqrt(num_positions - 1)
    if old * old != pos.shape[1] - 1 or new * new != num_positions - 1:
        raise ValueError(f"position embeddings of {pos.shape[1]} and {num_positions} are not square grids + class")
    wide = pos[:, 1:] if pos.dtype == torch.float64 else pos[:, 1:].float()  # half precision resized in float32
    grid = wide.reshape(1, old, old, -1).permute(0, 3, 1, 2)
    grid = torch.nn.functional.interpolate(grid, size=(new, new), mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, new * new, -1).to(pos.dtype)], dim=1)


def read_sources(paths: Iterable[str | Path]) -> dict[str, torch.Tensor]:
    """Merge state dicts (safetensors, or ``torch.load(weights_only=True)``), LAVIS names converted."""
    merged: dict[str, torch.Tensor] = {}
    for path in paths:
        state = with_eva_prefix(load_state_dict(path))
        merged.update(from_lavis(state) if is_lavis(state) else state)
    return merged


def load_weights(model: torch.nn.Module, paths: str | Path | Iterable[str | Path], strict: bool = True
                 ) -> tuple[list[str], list[str]]:
    """Load weight files (this model's names or LAVIS names) into ``model``; returns (missing, unexpected).

    ``strict``: anything missing or unexpected is an error naming the first few keys.
    """
    sources = [paths] if isinstance(paths, (str, Path)) else list(paths)
    state = read_sources(sources)
    key = f"{_VM}embeddings.position_embedding"
    if key in state:
        state[key] = interpolate_positions(state[key], model.state_dict()[key].shape[1])
    result = model.load_state_dict(state, strict=False)
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if strict and (missing or unexpected):
        raise ValueError(f"weights {', '.join(map(str, sources))} do not fit the config: {len(missing)} missing "
                         f"(first: {missing[:3]}), {len(unexpected)} unexpected (first: {unexpected[:3]}). "
                         "A LAVIS checkpoint without visual_encoder.* needs eva_vit_g.pth too.")
    return missing, unexpected


def convert_to_run(sources: list[Path], out: Path, config: dict[str, Any], tokenizer: Path | None) -> Path:
    """Write a run folder (``model.safetensors``, ``config.json``, ``tokenizer/``) from LAVIS checkpoints."""
    from .model import build_model
    from .tokenizer import TOKENIZER_DIR, load_tokenizer

    config = dict(config)
    if tokenizer is not None:
        config["tokenizer"] = str(tokenizer)
    model = build_model(config)
    load_weights(model, sources, strict=True)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(out / WEIGHTS))
    (out / CONFIG).write_text(json.dumps(config, indent=2))
    if config.get("tokenizer", "build") != "build":
        load_tokenizer(config["tokenizer"], add_dec=config.get("add_dec_token", True)).save_pretrained(
            str(out / TOKENIZER_DIR))
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m ntire_t2iqa_baselines.fga_blip2.convert SRC [SRC...] --out DIR [--config full]
    [--tokenizer DIR]``."""
    from ..common.config import ConfigError, load_baseline_config
    from . import CONFIG_SCHEMA, CONFIGS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sources", nargs="+", type=Path, help="fga_blip2.pth (and eva_vit_g.pth when needed)")
    parser.add_argument("--out", type=Path, required=True, help="run folder to write")
    parser.add_argument("--config", default="full", help="full, tiny, or a JSON file (default: %(default)s)")
    parser.add_argument("--tokenizer", type=Path, default=None, help="local bert-base-uncased folder")
    args = parser.parse_args(argv)
    try:
        config = load_baseline_config(CONFIGS, CONFIG_SCHEMA, args.config)
    except ConfigError as exc:
        parser.error(str(exc))
    convert_to_run(args.sources, args.out, config, args.tokenizer)
    print(f"wrote {args.out / WEIGHTS}, {args.out / CONFIG}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
