"""Qwen2.5-VL + LoRA scorer: inputs built without torchvision, first-token expected-value scores.

A batch holds images and sequences; an image's vision features are computed once and
scattered into every sequence that shows it (one overall sequence and one per element).
Sequences are left-padded, so the logits of the last position are those of the first
token the model would generate; restricted to the task's answer tokens and softmaxed,
they give the expected value :func:`expected_value` that is trained with an MSE.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model
from PIL import Image
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from ..common.data import AlignItem
from .prompts import ELEMENT, IMAGE_PAD, OVERALL, TASKS, Task, prefix_text, suffix_text
from .tokenizer import single_token_id

LM_TARGETS = r"language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"
VISION_TARGETS = r"visual\.blocks\.\d+\.(attn\.(qkv|proj)|mlp\.(gate|up|down)_proj)"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def expected_value(logits: torch.Tensor, answer_ids: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Softmax of ``logits[..., answer_ids]`` (float32), dotted with ``values``: the answer's expectation."""
    probs = torch.softmax(logits[..., answer_ids].float(), dim=-1)
    return probs @ values.to(probs.device, torch.float32)


def expectation_mse(pred: torch.Tensor, target: torch.Tensor, task: torch.Tensor,
                    weights: tuple[float, float] = (1.0, 1.0)) -> torch.Tensor:
    """Per task, the MSE of expectation vs label in units of the task's value range; weighted sum."""
    total = pred.new_zeros(())
    for t, (spec, w) in enumerate(zip(TASKS, weights)):
        sel = task == t
        if bool(sel.any()) and w:
            total = total + w * (((pred[sel] - target[sel]) / spec.span) ** 2).mean()
    return total


# ---------------------------------------------------------------------------------------------- model building
def tiny_config(spec: dict[str, Any], tokenizer: Any) -> Qwen2_5_VLConfig:
    """A small Qwen2.5-VL config (random init) whose vocabulary and special ids match ``tokenizer``.

    Vision blocks use full attention unless ``spec["fullatt_blocks"]`` lists fewer (the others then
    attend within windows of ``spec["window_size"]`` pixels, as Qwen2.5-VL's do).
    """
    vocab = ((len(tokenizer) + 63) // 64) * 64
    heads = spec["heads"]
    half = spec["text_hidden"] // heads // 2
    section = [half - 2 * (half // 3), half // 3, half // 3]
    ids = {name: single_token_id(tokenizer, tok) for name, tok in (
        ("image_token_id", IMAGE_PAD), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
    text = dict(vocab_size=vocab, hidden_size=spec["text_hidden"], intermediate_size=spec["text_intermediate"],
                num_hidden_layers=spec["text_layers"], num_attention_heads=heads,
                num_key_value_heads=spec.get("kv_heads", heads), max_position_embeddings=1024,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": section},
                pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.pad_token_id,
                eos_token_id=single_token_id(tokenizer, "<|im_end|>"), initializer_range=spec.get("init_std", 0.02))
    vision = dict(depth=spec["vision_depth"], hidden_size=spec["vision_hidden"], num_heads=spec["vision_heads"],
                  intermediate_size=spec["vision_intermediate"], out_hidden_size=spec["text_hidden"],
                  patch_size=spec["patch_size"], spatial_merge_size=spec["merge_size"], temporal_patch_size=2,
                  window_size=int(spec.get("window_size", spec["patch_size"] * spec["merge_size"] * 4)),
                  fullatt_block_indexes=list(spec.get("fullatt_blocks", range(spec["vision_depth"]))),
                  initializer_range=spec.get("init_std", 0.02))
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **ids)


def build_tiny_model(spec: dict[str, Any], tokenizer: Any, seed: int) -> Qwen2_5_VLForConditionalGeneration:
    """Random-init tiny Qwen2.5-VL (deterministic for ``seed``)."""
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(tiny_config(spec, tokenizer))
    return model.float()


def load_model(path: str | Path, dtype: str = "bfloat16", attn: str | None = None,
               device: torch.device | None = None) -> Qwen2_5_VLForConditionalGeneration:
    """Qwen2.5-VL weights from a local directory (never the hub), straight onto ``device`` when it is a GPU."""
    kwargs: dict[str, Any] = {"dtype": DTYPES[dtype], "local_files_only": True}
    if device is not None and device.type == "cuda":
        kwargs["device_map"] = {"": str(device)}
    if attn:
        kwargs["attn_implementation"] = attn
    return Qwen2_5_VLForConditionalGeneration.from_pretrained(str(path), **kwargs)


def add_lora(model: torch.nn.Module, lora: dict[str, Any]) -> Any:
    """Wrap with peft LoRA on the LM's attention/MLP projections (and the vision blocks' when asked)."""
    parts = [LM_TARGETS] + ([VISION_TARGETS] if lora.get("vision", True) else []) + (
        [r"lm_head"] if lora.get("lm_head") else [])
    target = f".*({'|'.join(parts)})$"
    config = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora.get("dropout", 0.0),
                        target_modules=target, bias="none", modules_to_save=lora.get("modules_to_save") or None)
    with warnings.catch_warnings():  # peft asks the deprecated is_gradient_checkpointing (transformers 5)
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, config)


def enable_checkpointing(model: Any) -> None:
    """Activation (gradient) checkpointing on every decoder/vision block, non-reentrant (DDP- and LoRA-safe)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def param_groups(model: torch.nn.Module, lr_lm: float, lr_vision: float, weight_decay: float
                 ) -> list[dict[str, Any]]:
    """Trainable parameters split into a language-model group and a vision group (own learning rates)."""
    lm, vision = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (vision if ".visual." in f".{name}" else lm).append(p)
    groups = [{"params": lm, "lr": lr_lm, "weight_decay": weight_decay, "name": "lm"}]
    if vision:
        groups.append({"params": vision, "lr": lr_vision, "weight_decay": weight_decay, "name": "vision"})
    return groups


# ---------------------------------------------------------------------------------------------- inputs
class ImageEncoder:
    """Image file -> (patches, grid_thw) with transformers' PIL Qwen2-VL processor (no torchvision)."""

    def __init__(self, spec: dict[str, Any], cache: bool = False):
        self.merge = spec["merge_size"]
        self.proc = Qwen2VLImageProcessorPil(
            patch_size=spec["patch_size"], merge_size=self.merge, temporal_patch_size=2,
            size={"shortest_edge": spec["min_pixels"], "longest_edge": spec["max_pixels"]})
        self.cache: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = {} if cache else None

    def __call__(self, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
        key = str(path)
        if self.cache is not None and key in self.cache:
            return self.cache[key]
        with Image.open(path) as im:
            result = self.encode(im)
        if self.cache is not None:
            self.cache[key] = result
        return result

    def encode(self, image: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        """(patches, grid_thw) of an image in memory (never cached)."""
        out = self.proc(images=[image.convert("RGB")], return_tensors="pt")
        return out["pixel_values"], out["image_grid_thw"][0]

    def size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) the processor resizes a ``width`` x ``height`` image to (multiples of patch x merge)."""
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize
        factor = self.proc.patch_size * self.merge
        h, w = smart_resize(height, width, factor=factor, min_pixels=self.proc.size["shortest_edge"],
                            max_pixels=self.proc.size["longest_edge"])
        return w, h


def rope_positions(n_prefix: int, grid: torch.Tensor, merge: int, n_suffix: int) -> torch.Tensor:
    """3-D rope positions (3, L) of text + image + text, as Qwen2.5-VL's ``get_rope_index`` computes them."""
    gh, gw = int(grid[1]) // merge, int(grid[2]) // merge
    pre = torch.arange(n_prefix).expand(3, -1)
    hh, ww = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    img = torch.stack([torch.zeros(gh * gw, dtype=torch.long), hh.reshape(-1), ww.reshape(-1)]) + n_prefix
    start = n_prefix + max(gh, gw)
    post = (torch.arange(n_suffix) + start).expand(3, -1)
    return torch.cat([pre, img, post], dim=1)


@dataclass
class Example:
    """One image with the sequences to score for it (``None`` = the overall task, else an element key)."""

    item: AlignItem
    pixels: torch.Tensor
    grid: torch.Tensor
    elements: list[str]


class Collator:
    """Examples -> model batch: patches, left-padded ids, masks, rope positions, feature indices, targets.

    ``tasks``: which sequences to build per image: 0 the overall one, 1 one per element (both by
    default; a separate overall or element model is trained and run on its own task only).
    ``sequences``: another baseline's sequences instead: ``example -> [(key, suffix text, task, target)]``
    (the example needs only ``pixels`` and ``grid``); ``tasks`` is then not used. A fifth item, when
    present, is that sequence's own text before the image (instead of :func:`prefix_text`; it must end
    with ``<|vision_start|>``), e.g. the prompt first so that the image tokens can attend to it.
    """

    def __init__(self, tokenizer: Any, merge: int, tasks: tuple[int, ...] = (0, 1),
                 sequences: Any = None):
        self.tok = tokenizer
        self.merge = merge
        self.tasks = tuple(tasks)
        self.sequences = sequences
        self.pad_id = tokenizer.pad_token_id
        self.image_id = single_token_id(tokenizer, IMAGE_PAD)
        self.prefix = tokenizer.encode(prefix_text(), add_special_tokens=False)

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - one collator per run, bounded
    def _suffix(self, text: str) -> tuple[int, ...]:
        return tuple(self.tok.encode(text, add_special_tokens=False))

    def _own(self, ex: Example) -> list[tuple[Any, str, int, float]]:
        """lvlm-stack's sequences of an example: the overall one and one per element, with their targets."""
        out = []
        wanted = ([None] if 0 in self.tasks else []) + (list(ex.elements) if 1 in self.tasks else [])
        for element in wanted:
            if element is None:
                y = ex.item.total if ex.item.total is not None else float("nan")
            else:
                y = (ex.item.element_scores or {}).get(element, float("nan"))
            out.append(((ex.item.img_path, element), suffix_text(ex.item, element), 0 if element is None else 1, y))
        return out

    def __call__(self, examples: list[Example]) -> dict[str, Any]:
        seqs, types, poss, feat_idx, task, target, keys = [], [], [], [], [], [], []
        offset = 0
        for ex in examples:
            n_img = int(ex.grid.prod()) // self.merge ** 2
            for key, text, t, y, *head in (self.sequences(ex) if self.sequences is not None else self._own(ex)):
                suffix = self._suffix(text)
                prefix = list(self._suffix(head[0])) if head else self.prefix
                seqs.append(prefix + [self.image_id] * n_img + list(suffix))
                types.append([0] * len(prefix) + [1] * n_img + [0] * len(suffix))
                poss.append(rope_positions(len(prefix), ex.grid, self.merge, len(suffix)))
                feat_idx.append(torch.arange(offset, offset + n_img))
                task.append(t)
                target.append(y)
                keys.append(key)
            offset += n_img
        width = max(map(len, seqs))
        n = len(seqs)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        mm = torch.zeros((n, width), dtype=torch.int32)
        pos = torch.zeros((3, n, width), dtype=torch.long)
        for i, (s, t, p) in enumerate(zip(seqs, types, poss)):
            ids[i, width - len(s):] = torch.tensor(s)
            mask[i, width - len(s):] = 1
            mm[i, width - len(s):] = torch.tensor(t)
            pos[:, i, width - len(s):] = p
        return {"pixel_values": torch.cat([ex.pixels for ex in examples]),
                "image_grid_thw": torch.stack([ex.grid for ex in examples]),
                "input_ids": ids, "attention_mask": mask, "mm_token_type_ids": mm, "position_ids": pos,
                "feat_index": torch.cat(feat_idx), "task": torch.tensor(task),
                "target": torch.tensor(target, dtype=torch.float32), "keys": keys}


# ---------------------------------------------------------------------------------------------- scorer
class Scorer(torch.nn.Module):
    """Wraps the (peft) Qwen2.5-VL: batch -> expected answer value per sequence (the DDP unit).

    ``output`` (an attribute; it may be changed between calls): ``"expectation"`` (the default: softmax
    over the task's answer tokens only, dotted with their values), ``"argmax"`` (the value of the likeliest
    answer token: greedy decoding restricted to the answer set) or ``"logits"`` (the answer tokens' logits
    in float32, ``(n, widest answer set)``, padded with ``-inf``: for a cross-entropy loss on the answer).
    """

    OUTPUTS = ("expectation", "argmax", "logits")

    def __init__(self, model: Any, tokenizer: Any, tasks: tuple[Task, ...] = TASKS, output: str = "expectation"):
        super().__init__()
        if output not in self.OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(self.OUTPUTS)}, not {output!r}")
        self.model = model
        self.output = output
        self.answer_counts = tuple(len(spec.answers) for spec in tasks)
        self.task_names = tuple(spec.name for spec in tasks)
        for spec in tasks:
            self.register_buffer(f"{spec.name}_ids", torch.tensor(
                [single_token_id(tokenizer, a) for a in spec.answers]), persistent=False)
            self.register_buffer(f"{spec.name}_values", torch.tensor(spec.values), persistent=False)

    def core(self) -> Qwen2_5_VLForConditionalGeneration:
        """The underlying ``Qwen2_5_VLForConditionalGeneration`` (LoRA layers are injected in place)."""
        m = self.model
        return m.get_base_model() if hasattr(m, "get_base_model") else m

    def forward(self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor, mm_token_type_ids: torch.Tensor, position_ids: torch.Tensor,
                feat_index: torch.Tensor, task: torch.Tensor, return_hidden: bool = False, **_: Any
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Expected value of each sequence's first generated token under its task's answer set.

        ``return_hidden``: also the last layer's hidden state at the final input token, ``(n, hidden)``.
        """
        core = self.core()
        visual = core.model.visual
        feats = visual(pixel_values.to(visual.dtype), grid_thw=image_grid_thw).pooler_output
        image = BaseModelOutputWithPooling(pooler_output=(feats[feat_index],))
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         mm_token_type_ids=mm_token_type_ids, mm_encoder_outputs={"image": image},
                         logits_to_keep=1, use_cache=False, output_hidden_states=return_hidden)
        score = self.answer_values(out.logits[:, -1], task)
        if return_hidden:
            return score, out.hidden_states[-1][:, -1]
        return score


    def answer_values(self, last: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """First-token logits ``(n, vocab)`` -> each sequence's value under its task, as ``output`` says."""
        if self.output == "logits":
            out = last.new_full((last.shape[0], max(self.answer_counts)), float("-inf"), dtype=torch.float32)
            for t, (name, count) in enumerate(zip(self.task_names, self.answer_counts)):
                sel = task == t
                out[sel, :count] = last[sel][:, getattr(self, f"{name}_ids")].float()
            return out
        score = None
        for t in range(len(self.task_names) - 1, -1, -1):
            ids, values = getattr(self, f"{self.task_names[t]}_ids"), getattr(self, f"{self.task_names[t]}_values")
            if self.output == "expectation":
                value = expected_value(last, ids, values)
            else:
                value = values.to(last.device, torch.float32)[last[..., ids].argmax(-1)]
            score = value if score is None else torch.where(task == t, value, score)
        return score


def model_inputs(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The batch's tensors on ``device`` (keys and targets stay where they are)."""
    return {k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor) and k != "target"}


__all__ = ["ELEMENT", "OVERALL", "Collator", "Example", "ImageEncoder", "Scorer", "add_lora", "build_tiny_model",
           "enable_checkpointing", "expectation_mse", "expected_value", "load_model", "model_inputs", "param_groups",
           "rope_positions"]
