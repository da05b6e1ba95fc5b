"""Stages 3-5 on cached embeddings: gated visual representation, Quality Query Transformer, ranking losses.

With ``h`` the language model's hidden width and ``z_tec``, ``z_aes``, ``z_ali`` the last-layer hidden
states of the final input token under each instruction (frozen tuned model)::

    g_tec = sigmoid(W_tec [z_tec; z_aes])      g_aes = sigmoid(W_aes [z_tec; z_aes])        (2h -> h each)
    z_vis = MLP([z_tec * g_tec; z_aes * g_aes])                                             (2h -> h)
    z_va  = [z_vis; z_ali]                                                                   (2h)
    tokens = [P z_va, q_vis, q_ali] + positions  -> Transformer encoder -> s_vis = head_vis(out[1]),
                                                                            s_ali = head_ali(out[2])

Losses with margin ``m``: ``L_vis = [m - s_vis(I+) + s_vis(I_tec-)]_+ + [m - s_vis(I+) + s_vis(I_aes-)]_+``,
``L_ali = [m - s_ali(I+, p) + s_ali(I+, p_ali-)]_+``, ``L = L_vis + L_ali`` (batch means).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class GatedVisual(nn.Module):
    """z_vis from z_tec and z_aes through two sigmoid gates and a 2h -> h MLP."""

    def __init__(self, hidden: int):
        super().__init__()
        self.w_tec = nn.Linear(2 * hidden, hidden)
        self.w_aes = nn.Linear(2 * hidden, hidden)
        self.mlp = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))

    def gates(self, z_tec: torch.Tensor, z_aes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(g_tec, g_aes), each ``(..., h)`` in 0..1."""
        both = torch.cat([z_tec, z_aes], dim=-1)
        return torch.sigmoid(self.w_tec(both)), torch.sigmoid(self.w_aes(both))

    def forward(self, z_tec: torch.Tensor, z_aes: torch.Tensor) -> torch.Tensor:
        """z_vis ``(..., h)``."""
        g_tec, g_aes = self.gates(z_tec, z_aes)
        return self.mlp(torch.cat([z_tec * g_tec, z_aes * g_aes], dim=-1))


class QualityQueryTransformer(nn.Module):
    """[z_va, q_vis, q_ali] -> Transformer encoder -> (s_vis, s_ali) from the two query outputs."""

    def __init__(self, hidden: int, width: int = 128, layers: int = 2, heads: int = 4, dropout: float = 0.0):
        super().__init__()
        self.visual = GatedVisual(hidden)
        self.project = nn.Linear(2 * hidden, width)
        self.queries = nn.Parameter(torch.randn(2, width) * 0.02)
        self.positions = nn.Parameter(torch.randn(3, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head_vis = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, 1))
        self.head_ali = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, 1))

    def tokens(self, z_vis: torch.Tensor, z_ali: torch.Tensor) -> torch.Tensor:
        """The encoder's input ``(n, 3, width)``: projected z_va and the two query tokens, plus positions."""
        z_va = self.project(torch.cat([z_vis, z_ali], dim=-1))
        q = self.queries.unsqueeze(0).expand(z_va.shape[0], -1, -1)
        return torch.cat([z_va.unsqueeze(1), q], dim=1) + self.positions

    def forward(self, z_tec: torch.Tensor, z_aes: torch.Tensor, z_ali: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(s_vis, s_ali), each ``(n,)``, for embeddings ``(n, h)`` (each layer-normalised without weights first)."""
        h = (z_tec.shape[-1],)
        z_tec, z_aes, z_ali = (nn.functional.layer_norm(z.float(), h) for z in (z_tec, z_aes, z_ali))
        out = self.norm(self.encoder(self.tokens(self.visual(z_tec, z_aes), z_ali)))
        return self.head_vis(out[:, 1]).squeeze(-1), self.head_ali(out[:, 2]).squeeze(-1)


def hinge(pos: torch.Tensor, neg: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean of ``max(0, margin - pos + neg)``."""
    return torch.clamp(margin - pos + neg, min=0).mean()


def ranking_loss(s_vis_pos: torch.Tensor, s_vis_tec: torch.Tensor, s_vis_aes: torch.Tensor,
                 s_ali_pos: torch.Tensor, s_ali_neg: torch.Tensor, margin: float) -> dict[str, torch.Tensor]:
    """``{"vis", "ali", "total"}``: the ranking losses of ELIQ's stage 5."""
    vis = hinge(s_vis_pos, s_vis_tec, margin) + hinge(s_vis_pos, s_vis_aes, margin)
    ali = hinge(s_ali_pos, s_ali_neg, margin)
    return {"vis": vis, "ali": ali, "total": vis + ali}


#: Slots of the cached embeddings per training record: (image, aspect, prompt) for each of the 12 states;
#: the last two are I+ with one of its own element texts and with a borrowed one (zeros without elements).
SLOTS = ("pos_tec", "pos_aes", "pos_ali", "pos_ali_neg", "tec_tec", "tec_aes", "tec_ali", "aes_tec", "aes_aes",
         "aes_ali", "pos_el_own", "pos_el_other")
SLOT = {name: i for i, name in enumerate(SLOTS)}


def batch_scores(model: QualityQueryTransformer, z: torch.Tensor) -> dict[str, torch.Tensor]:
    """The five scores the losses compare, from cached embeddings ``z`` of shape ``(n, len(SLOTS), h)``."""
    def zs(name: str) -> torch.Tensor:
        return z[:, SLOT[name]]

    s_vis_pos, s_ali_pos = model(zs("pos_tec"), zs("pos_aes"), zs("pos_ali"))
    _, s_ali_neg = model(zs("pos_tec"), zs("pos_aes"), zs("pos_ali_neg"))
    s_vis_tec, _ = model(zs("tec_tec"), zs("tec_aes"), zs("tec_ali"))
    s_vis_aes, _ = model(zs("aes_tec"), zs("aes_aes"), zs("aes_ali"))
    _, s_el_own = model(zs("pos_tec"), zs("pos_aes"), zs("pos_el_own"))
    _, s_el_other = model(zs("pos_tec"), zs("pos_aes"), zs("pos_el_other"))
    return {"s_vis_pos": s_vis_pos, "s_vis_tec": s_vis_tec, "s_vis_aes": s_vis_aes, "s_ali_pos": s_ali_pos,
            "s_ali_neg": s_ali_neg, "s_el_own": s_el_own, "s_el_other": s_el_other}


def element_loss(s: dict[str, torch.Tensor], has_elements: torch.Tensor, margin: float) -> torch.Tensor:
    """``[m - s_ali(I+, own element) + s_ali(I+, borrowed element)]_+`` over the rows with elements (0 if none)."""
    if not bool(has_elements.any()):
        return s["s_el_own"].sum() * 0.0
    return hinge(s["s_el_own"][has_elements], s["s_el_other"][has_elements], margin)


def train_qqt(z: torch.Tensor, cfg: dict[str, Any], seed: int, has_elements: torch.Tensor | None = None
              ) -> tuple[QualityQueryTransformer, list[float]]:
    """Train the scoring module on cached embeddings ``(n, len(SLOTS), h)``; returns it and the epoch losses.

    ``qqt.element_weight`` > 0 adds that weight times :func:`element_loss` (rows flagged in ``has_elements``).
    """
    el_weight = float(cfg.get("element_weight", 0.0))
    has_elements = torch.zeros(z.shape[0], dtype=torch.bool) if has_elements is None else has_elements.bool()
    torch.manual_seed(seed)
    model = QualityQueryTransformer(z.shape[-1], cfg["width"], cfg["layers"], cfg["heads"], cfg.get("dropout", 0.0))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg.get("weight_decay", 0.01))
    gen = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for _ in range(cfg["epochs"]):
        order = torch.randperm(z.shape[0], generator=gen)
        total = []
        for i in range(0, len(order), cfg["batch"]):
            rows = order[i:i + cfg["batch"]]
            s = batch_scores(model, z[rows])
            loss = ranking_loss(s["s_vis_pos"], s["s_vis_tec"], s["s_vis_aes"], s["s_ali_pos"], s["s_ali_neg"],
                                cfg["margin"])["total"]
            if el_weight:
                loss = loss + el_weight * element_loss(s, has_elements[rows], cfg["margin"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total.append(float(loss.detach()))
        losses.append(sum(total) / max(len(total), 1))
    model.eval()
    return model, losses
