"""The RAHF-style network of the EvalMuse-Structure baseline, built from a config dict on transformers modules.

Layout (the official EM-RAHF model, ``DYEvaLab/EvalMuse-Structure`` ``model/model_final.py``):

* ``vision``: AltCLIP's vision tower (:class:`~transformers.AltCLIPVisionModel`) at ``image_size``
  (448 px, patch 14: a 32 x 32 grid). Its position table is sized for that grid; pretrained
  224 px weights (16 x 16) are interpolated onto it when loaded (:func:`resize_position_table`).
  The last hidden state (before the unused post-layernorm) is taken.
* ``text_embeddings``: AltCLIP's text *embeddings* only (word, position, token type, LayerNorm),
  of the prompt prefixed with ``"human artifact"``; no text transformer layers.
* ``fusion``: ``layers`` blocks over the concatenated image and text tokens. Each block is
  ``x = norm1(x); x = x + attn(x); x = norm2(x); x = x + mlp(x)`` with single-head, bias-free
  attention scaled by ``1/sqrt(width)`` and a GELU MLP; a final LayerNorm.
* ``heatmap_head``: the image tokens (CLS dropped) as a ``grid x grid`` map -> two 3x3 convs ->
  4 upsampling stages (3x3 transposed conv, stride 2, then two 3x3 convs; each conv followed by
  LayerNorm over ``[C, H, W]`` and ReLU) -> a 3x3 conv and a sigmoid, at ``16 * grid`` pixels.
  ``heatmap.prior`` (tiny only) starts that conv's bias at ``logit(prior)`` rather than 0.
  When that is not ``heatmap_size`` (512), :meth:`RAHF.full_heatmap` resizes it bilinearly.
* ``score_head``: 2x2 convs (``score.stride``; 1 in the official model) with LayerNorm and
  ReLU, flattened, an MLP with ReLU and a sigmoid: the normalised MOS ``(mos - 1) / 4``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AltCLIPTextConfig, AltCLIPVisionConfig, AltCLIPVisionModel
from transformers.models.altclip.modeling_altclip import AltRobertaEmbeddings

#: CLIP's pixel statistics (AltCLIP's processor uses them).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
UPSAMPLING_STAGES = 4


def grid_size(config: dict[str, Any]) -> int:
    """Patches per side: ``image_size // patch_size``."""
    size, patch = int(config["image_size"]), int(config["patch_size"])
    if size % patch:
        raise ValueError(f"image_size {size} is not a multiple of patch_size {patch}")
    return size // patch


def native_heatmap_size(config: dict[str, Any]) -> int:
    """Side of the heatmap the head produces: the grid doubled by each of the 4 stages."""
    return grid_size(config) * 2**UPSAMPLING_STAGES


def vision_config(config: dict[str, Any]) -> AltCLIPVisionConfig:
    """The AltCLIP vision config at the model's image size."""
    v = dict(config["vision"])
    return AltCLIPVisionConfig(image_size=int(config["image_size"]), patch_size=int(config["patch_size"]),
                               hidden_size=int(config["width"]), **v)


def text_config(config: dict[str, Any]) -> AltCLIPTextConfig:
    """The AltCLIP text config (only its embedding sizes matter here)."""
    t = config["text"]
    return AltCLIPTextConfig(vocab_size=int(t["vocab_size"]), hidden_size=int(config["width"]),
                             max_position_embeddings=int(t["max_position_embeddings"]),
                             type_vocab_size=int(t.get("type_vocab_size", 1)),
                             pad_token_id=int(t.get("pad_token_id", 1)),
                             layer_norm_eps=float(t.get("layer_norm_eps", 1e-5)),
                             hidden_dropout_prob=float(t.get("hidden_dropout_prob", 0.1)))


def resize_position_table(table: torch.Tensor, grid: int) -> torch.Tensor:
    """A ``(1 + g*g, D)`` position table resized to ``(1 + grid*grid, D)``; CLS row kept, bilinear as the official."""
    old = round((table.shape[0] - 1) ** 0.5)
    if old * old != table.shape[0] - 1:
        raise ValueError(f"position table of {table.shape[0]} rows is not 1 + a square grid")
    if old == grid:
        return table.clone()
    patches = table[1:].reshape(old, old, -1).permute(2, 0, 1).unsqueeze(0).float()
    patches = F.interpolate(patches, size=(grid, grid), mode="bilinear", align_corners=False)
    patches = patches.squeeze(0).permute(1, 2, 0).reshape(grid * grid, -1).to(table.dtype)
    return torch.cat([table[:1], patches], dim=0)


class SingleHeadAttention(nn.Module):
    """Bias-free single-head self-attention, scaled by ``1/sqrt(width)``."""

    def __init__(self, width: int):
        super().__init__()
        self.q = nn.Linear(width, width, bias=False)
        self.k = nn.Linear(width, width, bias=False)
        self.v = nn.Linear(width, width, bias=False)
        self.out = nn.Linear(width, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, D) -> (B, N, D)``."""
        q, k, v = (proj(x).unsqueeze(1) for proj in (self.q, self.k, self.v))
        return self.out(F.scaled_dot_product_attention(q, k, v).squeeze(1))


class FusionBlock(nn.Module):
    """``x = norm1(x); x = x + attn(x); x = norm2(x); x = x + mlp(x)`` (the official block order)."""

    def __init__(self, width: int, ffn: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = SingleHeadAttention(width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, ffn), nn.GELU(), nn.Linear(ffn, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One block."""
        x = self.norm1(x)
        x = x + self.attn(x)
        x = self.norm2(x)
        return x + self.mlp(x)


class Fusion(nn.Module):
    """Self-attention blocks over image and text tokens, then a LayerNorm."""

    def __init__(self, width: int, layers: int, ffn: int):
        super().__init__()
        self.blocks = nn.ModuleList(FusionBlock(width, ffn) for _ in range(layers))
        self.norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, D) -> (B, N, D)``."""
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


def _conv_norm_relu(cin: int, cout: int, size: int, transposed: bool = False) -> list[nn.Module]:
    conv: nn.Module = (nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1) if transposed
                       else nn.Conv2d(cin, cout, 3, padding=1))
    return [conv, nn.LayerNorm([cout, size, size]), nn.ReLU()]


class HeatmapHead(nn.Module):
    """Two convs, 4 upsampling stages (transposed conv + two convs, LayerNorm, ReLU), a conv and a sigmoid."""

    def __init__(self, stem: list[int], stages: list[int], grid: int, prior: float | None = None):
        super().__init__()
        if len(stem) != 3 or len(stages) != UPSAMPLING_STAGES + 1 or stem[2] != stages[0]:
            raise ValueError(f"heatmap stem must be [in, mid, out] and stages [out, s1..s4]; got {stem}, {stages}")
        self.stem = nn.Sequential(*_conv_norm_relu(stem[0], stem[1], grid), *_conv_norm_relu(stem[1], stem[2], grid))
        self.stages = nn.ModuleList()
        for i in range(UPSAMPLING_STAGES):
            size = grid * 2 ** (i + 1)
            c = stages[i + 1]
            self.stages.append(nn.Sequential(*_conv_norm_relu(stages[i], c, size, transposed=True),
                                             *_conv_norm_relu(c, c, size), *_conv_norm_relu(c, c, size)))
        self.out = nn.Conv2d(stages[-1], 1, 3, padding=1)
        if prior is not None:  # start near the artefact pixels' base rate instead of 0.5 (``heatmap.prior``)
            nn.init.constant_(self.out.bias, math.log(prior / (1 - prior)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, g, g) -> (B, 1, 16g, 16g)`` in 0..1."""
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return torch.sigmoid(self.out(x))


class ScoreHead(nn.Module):
    """2x2 convs with LayerNorm and ReLU, then an MLP to one sigmoid output."""

    def __init__(self, channels: list[int], mlp: list[int], grid: int, stride: int = 1):
        super().__init__()
        layers: list[nn.Module] = []
        size = grid
        for cin, cout in zip(channels[:-1], channels[1:]):
            size = (size - 2) // stride + 1
            if size < 1:
                raise ValueError(f"score head: the {grid}x{grid} grid is too small for {len(channels) - 1} convs")
            layers += [nn.Conv2d(cin, cout, 2, stride=stride), nn.LayerNorm([cout, size, size]), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        dims = [channels[-1] * size * size, *mlp]
        fc: list[nn.Module] = []
        for din, dout in zip(dims[:-1], dims[1:]):
            fc += [nn.Linear(din, dout), nn.ReLU()]
        self.mlp = nn.Sequential(*fc, nn.Linear(dims[-1], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, g, g) -> (B,)`` in 0..1."""
        return torch.sigmoid(self.mlp(self.convs(x).flatten(1))).squeeze(1)


class RAHF(nn.Module):
    """Image + prompt -> (artefact heatmap in 0..1, normalised score in 0..1)."""

    def __init__(self, config: dict[str, Any]):
        super().__init__()
        self.config = config
        self.grid = grid_size(config)
        width = int(config["width"])
        vcfg = vision_config(config)
        vcfg._attn_implementation = "sdpa"
        self.vision = AltCLIPVisionModel(vcfg)
        self.text_embeddings = AltRobertaEmbeddings(text_config(config))
        fusion = config["fusion"]
        self.fusion = Fusion(width, int(fusion["layers"]), int(fusion["ffn"]))
        heat = config["heatmap"]
        if int(heat["stem"][0]) != width or int(config["score"]["channels"][0]) != width:
            raise ValueError(f"heatmap.stem[0] and score.channels[0] must equal width {width}")
        prior = heat.get("prior")
        self.heatmap_head = HeatmapHead([int(c) for c in heat["stem"]], [int(c) for c in heat["stages"]], self.grid,
                                        None if prior is None else float(prior))
        self.heatmap_head.to(memory_format=torch.channels_last)  # faster convolutions (CPU and GPU)
        score = config["score"]
        self.score_head = ScoreHead([int(c) for c in score["channels"]], [int(c) for c in score["mlp"]], self.grid,
                                    int(score.get("stride", 1)))
        self.heatmap_size = int(heat.get("heatmap_size", 512))

    def encoders(self) -> list[nn.Module]:
        """The pretrained parts, frozen for the first part of training."""
        return [self.vision, self.text_embeddings]

    def set_encoders_trainable(self, trainable: bool) -> None:
        """Freeze or unfreeze the encoders; the vision post-layernorm (unused) always stays frozen."""
        for module in self.encoders():
            for p in module.parameters():
                p.requires_grad_(trainable)
        for p in self.vision.post_layernorm.parameters():
            p.requires_grad_(False)

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixels ``(B, 3, S, S)`` (normalised) and ids ``(B, L)`` -> heatmap ``(B, 1, 16g, 16g)``, score ``(B,)``."""
        image = self.vision(pixel_values=pixel_values).last_hidden_state
        text = self.text_embeddings(input_ids=input_ids)
        x = self.fusion(torch.cat([image, text.to(image.dtype)], dim=1))
        g = self.grid
        fmap = x[:, 1:1 + g * g].transpose(1, 2).reshape(x.shape[0], -1, g, g)
        heatmap = self.heatmap_head(fmap.contiguous(memory_format=torch.channels_last))
        return heatmap, self.score_head(fmap)

    def full_heatmap(self, heatmap: torch.Tensor) -> torch.Tensor:
        """The head's heatmap at ``heatmap_size`` (bilinear when the head's own size differs)."""
        if heatmap.shape[-1] == self.heatmap_size and heatmap.shape[-2] == self.heatmap_size:
            return heatmap
        return F.interpolate(heatmap.float(), size=(self.heatmap_size, self.heatmap_size), mode="bilinear",
                             align_corners=False).clamp_(0, 1)


def build_model(config: dict[str, Any]) -> RAHF:
    """A randomly initialised :class:`RAHF` for ``config`` (load weights separately)."""
    return RAHF(config)


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Parameters per top-level part and in total."""
    out = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    out["total"] = sum(out.values())
    return out
