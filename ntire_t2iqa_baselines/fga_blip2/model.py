"""The FGA-BLIP2 network on transformers' BLIP-2 modules (vision encoder, Q-Former, ITM head) plus the mask head.

Parameter names follow transformers' ``Blip2ForImageTextRetrieval`` (``vision_model.*``,
``query_tokens``, ``embeddings.*``, ``qformer.*``, ``vision_projection``, ``text_projection``,
``itm_head``) with FGA-BLIP2's addition ``mask_proj.layers.{0,2,4,6,8}``; :mod:`.convert`
maps the LAVIS names of the official checkpoint onto them.

Forward pass (EvalMuse-40K, FGA-BLIP2):
- image -> ViT (frozen in the full config) -> ``post_layernorm`` (LAVIS ``ln_vision``, eps 1e-5 as
  upstream's, trainable even when the ViT is frozen, as upstream);
- queries + prompt tokens -> Q-Former (queries cross-attend to the image, text and queries
  attend to each other) -> ITM head on every output position;
- overall score = mean over queries of P(match) * 4 + 1; token scores = P(match) at each text token;
- mask = sigmoid(MLP(text-only Q-Former output)): which tokens belong to elements.

Precision (:attr:`FGABlip2.vision_autocast`): upstream scores with the ViT and ``ln_vision`` under fp16
autocast (the features rounded to fp16) and the Q-Former in float32; setting ``vision_autocast`` to
``torch.float16`` on a GPU does the same. ``None`` leaves the vision tower to the caller's context.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers.models.blip_2.configuration_blip_2 import Blip2QFormerConfig, Blip2VisionConfig
from transformers.models.blip_2.modeling_blip_2 import Blip2QFormerModel, Blip2TextEmbeddings, Blip2VisionModel

#: BLIP / CLIP image normalisation (LAVIS ``blip_image_eval``).
IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)


class MaskHead(nn.Module):
    """FGA-BLIP2's token mask head: an MLP ``hidden -> 256 -> 128 -> 64 -> 16 -> 1`` (ReLU), then sigmoid."""

    def __init__(self, input_size: int, hidden: tuple[int, ...] = (256, 128, 64, 16)) -> None:
        super().__init__()
        sizes = (input_size, *hidden)
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], 1))
        self.layers = nn.Sequential(*layers)
        for name, param in self.layers.named_parameters():  # the paper's initialisation
            if name.endswith("weight"):
                nn.init.normal_(param, mean=0.0, std=1.0 / (input_size + 1))
            else:
                nn.init.zeros_(param)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """``(B, T, H)`` -> ``(B, T)`` probabilities that a token belongs to an element."""
        return torch.sigmoid(self.layers(hidden_states)).squeeze(-1)


@dataclass
class FGAOutput:
    """Scores of one batch: overall (1-5), per-text-token match probabilities, predicted element mask."""

    overall: torch.Tensor  # (B,)
    token_scores: torch.Tensor  # (B, T)
    mask: torch.Tensor | None  # (B, T)


def _hf_configs(config: dict[str, Any]) -> tuple[Blip2VisionConfig, Blip2QFormerConfig]:
    vision = Blip2VisionConfig(image_size=config["image_size"], patch_size=config["patch_size"],
                               **config.get("vision", {}))
    qformer = Blip2QFormerConfig(**{"use_qformer_text_input": True, **config.get("qformer", {}),
                                    "encoder_hidden_size": vision.hidden_size})
    return vision, qformer


class FGABlip2(nn.Module):
    """FGA-BLIP2: BLIP-2 ITM on query outputs (overall) and on text-token outputs (elements), plus a mask head."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        vision_config, qformer_config = _hf_configs(config)
        self.config = config
        self.vision_model = Blip2VisionModel(vision_config)
        hidden = qformer_config.hidden_size
        self.query_tokens = nn.Parameter(torch.zeros(1, config["num_query_tokens"], hidden))
        nn.init.normal_(self.query_tokens, std=qformer_config.initializer_range)  # LAVIS initialises them so
        self.embeddings = Blip2TextEmbeddings(qformer_config)
        self.qformer = Blip2QFormerModel(qformer_config)
        self.vision_projection = nn.Linear(hidden, config.get("embed_dim", 256))  # ITC, kept for the checkpoint
        self.text_projection = nn.Linear(hidden, config.get("embed_dim", 256))
        self.itm_head = nn.Linear(hidden, 2)
        self.mask_proj = MaskHead(hidden, tuple(config.get("mask_head_hidden", (256, 128, 64, 16))))
        self._init_text_embeddings(qformer_config)
        self._keep_key_bias_zero()
        # LAVIS' ln_vision is a LayerNorm of its own (eps 1e-5); the ViT blocks' norms use eps 1e-6
        self.vision_model.post_layernorm.eps = float(config.get("ln_vision_eps", vision_config.layer_norm_eps))
        #: dtype of the autocast around the vision tower (``None``: whatever context the caller set)
        self.vision_autocast: torch.dtype | None = None
        if config.get("freeze_vision", True):  # upstream freezes the ViT but trains ln_vision
            self.vision_model.embeddings.requires_grad_(False)
            self.vision_model.encoder.requires_grad_(False)

    def _init_text_embeddings(self, qformer_config: Blip2QFormerConfig) -> None:
        std = qformer_config.initializer_range
        for module in (self.embeddings.word_embeddings, self.embeddings.position_embeddings,
                       self.vision_projection, self.text_projection, self.itm_head):
            nn.init.normal_(module.weight, std=std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    def _keep_key_bias_zero(self) -> None:
        """EVA/LAVIS attention has q and v biases only: the k third of ``qkv.bias`` stays 0 (grad masked)."""
        for layer in self.vision_model.encoder.layers:
            bias = layer.self_attn.qkv.bias
            if bias is None:
                continue
            dim = bias.shape[0] // 3
            with torch.no_grad():
                bias[dim:2 * dim].zero_()
            keep = torch.ones_like(bias)
            keep[dim:2 * dim] = 0
            bias.register_hook(lambda grad, keep=keep: grad * keep.to(grad.device, grad.dtype))

    @property
    def num_queries(self) -> int:
        """How many learned query tokens the Q-Former uses."""
        return self.query_tokens.shape[1]

    def image_embeds(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Vision features after ``post_layernorm`` (LAVIS ``ln_vision``), as float32 for the Q-Former."""
        vision = self.vision_model
        dtype = self.vision_autocast
        context = (torch.autocast(pixel_values.device.type, dtype=dtype) if dtype is not None
                   else contextlib.nullcontext())
        frozen = not any(p.requires_grad for p in vision.encoder.parameters())
        with context:
            with torch.no_grad() if frozen else contextlib.nullcontext():  # frozen: no activations kept
                hidden = vision.encoder(inputs_embeds=vision.embeddings(pixel_values)).last_hidden_state
            embeds = vision.post_layernorm(hidden)
        if dtype is not None:  # upstream's ln_vision returns the autocast dtype: round as it does
            embeds = embeds.to(dtype)
        return embeds.float()

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                with_mask: bool = True) -> FGAOutput:
        """Overall score (1-5), token match probabilities and (``with_mask``) the element mask of a batch."""
        image_embeds = self.image_embeds(pixel_values)
        image_atts = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device)
        queries = self.query_tokens.expand(image_embeds.shape[0], -1, -1)
        query_atts = torch.ones(queries.shape[:-1], dtype=attention_mask.dtype, device=attention_mask.device)
        embeds = self.embeddings(input_ids=input_ids, query_embeds=queries)
        itm_hidden = self.qformer(query_embeds=embeds, query_length=self.num_queries,
                                  attention_mask=torch.cat([query_atts, attention_mask], dim=1),
                                  encoder_hidden_states=image_embeds,
                                  encoder_attention_mask=image_atts).last_hidden_state
        probs = torch.softmax(self.itm_head(itm_hidden.float()).float(), dim=-1)[..., 1]
        overall = probs[:, :self.num_queries].mean(dim=1) * 4 + 1
        token_scores = probs[:, self.num_queries:]
        mask = None
        if with_mask:  # the text-only pass (no queries, no image), as FGA-BLIP2's stage 1 does
            text_hidden = self.qformer(query_embeds=self.embeddings(input_ids=input_ids), query_length=0,
                                       attention_mask=attention_mask).last_hidden_state
            mask = self.mask_proj(text_hidden.float())
        return FGAOutput(overall, token_scores, mask)


def fga_loss(out: FGAOutput, total: torch.Tensor, token_target: torch.Tensor, element_mask: torch.Tensor,
             token_weight: float = 0.1, mask_weight: float = 0.1, token_loss: str = "l1"
             ) -> tuple[torch.Tensor, dict[str, float]]:
    """Upstream's training loss (``FGA_Blip2.forward``), averaged over the batch; ``(loss, parts)``.

    Per record, with ``m`` the element mask and ``y`` the token targets of :func:`.text.training_targets`
    (position 0: ``m = 1``, ``y = (total - 1) / 4``), ``p`` the text-token match probabilities and ``T`` the
    text length (padding included)::

        |overall - total| + token_weight * sum_t |p_t * m_t - y_t| / T + mask_weight * sum_t |mask_t - m_t| / T

    ``token_loss="bce"`` replaces ``|p_t * m_t - y_t|`` by ``m_t * BCE(p_t, y_t)`` (same averaging).
    """
    per_total = (out.overall.float() - total.float()).abs()
    m = element_mask.float()
    probs = out.token_scores.float()
    if token_loss == "l1":
        per_token = (probs * m - token_target).abs()
    elif token_loss == "bce":
        per_token = m * torch.nn.functional.binary_cross_entropy(probs.clamp(1e-6, 1 - 1e-6), token_target,
                                                                 reduction="none")
    else:
        raise ValueError(f"token_loss must be 'l1' or 'bce', not {token_loss!r}")
    per_token = per_token.mean(dim=1)
    per_record = per_total + token_weight * per_token
    parts = {"total": float(per_total.mean().detach()), "token": float(per_token.mean().detach())}
    if out.mask is not None:
        per_mask = (out.mask.float() - m).abs().mean(dim=1)
        per_record = per_record + mask_weight * per_mask
        parts["mask"] = float(per_mask.mean().detach())
    return per_record.mean(), parts


def build_model(config: dict[str, Any]) -> FGABlip2:
    """The FGA-BLIP2 model of a config (random init; load weights with :func:`.convert.load_weights`)."""
    return FGABlip2(config)
