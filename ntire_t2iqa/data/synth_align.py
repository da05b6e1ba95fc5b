"""Track 1 synthetic data: prompts with typed elements, virtual T2I models, simulated annotators.

A prompt such as ``"three large striped red circles left of a blue square on grass"``
has elements ``"three (counting)"``, ``"large (attribute)"``, ``"striped (material)"``,
``"red (color)"``, ``"circles (object)"``, ``"left of (spatial)"``, ``"blue (color)"``,
``"square (object)"``, ``"on grass (location)"``. A virtual model with skill ``s``
renders an element of kind ``k`` (difficulty ``d_k``) correctly with probability
``sigmoid(1.6 (s - d_k) - hardness)``; otherwise it renders it partly (an in-between
colour, a blobby shape, a faint extra object...) or wrongly (another colour, shape,
count, a swapped relation, a missing group). Each element's *state* (1, 0.5 or 0) is
visible in the pixels. Three simulated annotators vote on each element (P(1) = 0.93,
0.5, 0.06 for the three states, with per-annotator leniency) and rate overall
alignment ``round(1 + 4 a^1.5 + bias + N(0, 0.55))`` clipped to 1..5, where ``a`` is the
weighted mean element state (objects count double).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .align_render import IMAGE_SIZE, LOCATIONS, PALETTE, RADIUS, SHAPES, TEXTURES, DrawnGroup, Scene

COUNT_WORDS = {2: "two", 3: "three", 4: "four"}
RELATIONS = ("left of", "right of", "above", "below")
#: Element kind -> difficulty (higher is harder for every model).
DIFFICULTY = {"object": -0.6, "color": -0.2, "location": 0.2, "attribute": 0.5, "material": 0.7,
              "counting": 1.0, "spatial": 1.2}
PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars",
          "hexagon": "hexagons", "cross": "crosses"}


@dataclass(frozen=True)
class VirtualModel:
    """A virtual T2I model: a name, a skill, and a drawing style."""

    name: str
    skill: float
    outline: int
    blur: float
    posterize: int
    tint: tuple[int, int, int]


MODELS = (
    VirtualModel("ShapeDiffusion-XL", 2.2, 1, 0.0, 1, (0, 0, 4)),
    VirtualModel("PixelFlow-2", 1.7, 2, 0.4, 1, (4, 0, 0)),
    VirtualModel("ToyDiT-1.0", 1.2, 1, 0.7, 8, (0, 4, 0)),
    VirtualModel("SketchGAN-v3", 0.8, 2, 0.3, 12, (-4, -4, 0)),
    VirtualModel("BlockyTurbo", 0.4, 0, 1.0, 24, (0, -4, -4)),
    VirtualModel("TinyUNet-0.1", 0.0, 1, 1.4, 16, (3, 3, -3)),
)


@dataclass
class Group:
    """One group of a prompt: ``[count] [size] [texture] [colour] shape(s)``."""

    shape: str
    count: int = 1
    stated_count: bool = False
    color: str | None = None
    size: str | None = None
    texture: str | None = None

    def phrase(self) -> str:
        """The group's words in the prompt."""
        words = [COUNT_WORDS[self.count] if self.stated_count else ("an" if self._vowel() else "a")]
        words += [w for w in (self.size, self.texture, self.color) if w]
        words.append(PLURAL[self.shape] if self.count > 1 else self.shape)
        return " ".join(words)

    def _vowel(self) -> bool:
        first = next(w for w in (self.size, self.texture, self.color, self.shape) if w)
        return first[0] in "aeiou"


@dataclass
class Prompt:
    """A prompt, its elements (key, kind, group index or None) and its hardness."""

    prompt_id: str
    text: str
    groups: list[Group]
    relation: str | None
    location: str | None
    elements: list[tuple[str, str, int | None]]
    hardness: float

    @property
    def kind(self) -> str:
        """The record's ``type`` field: the prompt template."""
        return "two-group" if len(self.groups) == 2 else "one-group"


def _pick(rng: np.random.Generator, options: Any, exclude: set[str]) -> str:
    choices = [o for o in options if o not in exclude]
    return str(choices[int(rng.integers(len(choices)))])


def make_prompt(rng: np.random.Generator, prompt_id: str) -> Prompt:
    """Sample one prompt with unique element keys."""
    n_groups = 2 if rng.random() < 0.5 else 1
    used: dict[str, set[str]] = {k: set() for k in ("shape", "color", "size", "texture", "count")}
    groups = []
    for gi in range(n_groups):
        g = Group(shape=_pick(rng, SHAPES, used["shape"]))
        if rng.random() < (0.5 if gi == 0 else 0.3):
            count = int(rng.integers(2, 5))
            if COUNT_WORDS[count] not in used["count"]:
                g.count, g.stated_count = count, True
        if rng.random() < 0.85:
            g.color = _pick(rng, PALETTE, used["color"])
        if rng.random() < 0.35:
            g.size = _pick(rng, ("small", "large"), used["size"]) if len(used["size"]) < 2 else None
        if rng.random() < 0.35:
            g.texture = _pick(rng, TEXTURES, used["texture"])
        for key, value in (("shape", g.shape), ("color", g.color), ("size", g.size), ("texture", g.texture),
                           ("count", COUNT_WORDS.get(g.count) if g.stated_count else None)):
            if value:
                used[key].add(value)
        groups.append(g)
    relation = _pick(rng, RELATIONS, set()) if n_groups == 2 and rng.random() < 0.75 else None
    location = _pick(rng, LOCATIONS, set()) if rng.random() < 0.35 else None
    elements: list[tuple[str, str, int | None]] = []
    for gi, g in enumerate(groups):
        if g.stated_count:
            elements.append((f"{COUNT_WORDS[g.count]} (counting)", "counting", gi))
        if g.size:
            elements.append((f"{g.size} (attribute)", "attribute", gi))
        if g.texture:
            elements.append((f"{g.texture} (material)", "material", gi))
        if g.color:
            elements.append((f"{g.color} (color)", "color", gi))
        noun = PLURAL[g.shape] if g.count > 1 else g.shape
        elements.append((f"{noun} (object)", "object", gi))
    text = groups[0].phrase()
    if n_groups == 2:
        text += f" {relation} " if relation else " and "
        text += groups[1].phrase()
        if relation:
            elements.append((f"{relation} (spatial)", "spatial", None))
    if location:
        text += f" {location}"
        elements.append((f"{location} (location)", "location", None))
    return Prompt(prompt_id, text, groups, relation, location, elements, float(rng.normal(0, 0.5)))


@dataclass
class Rendering:
    """What a model decided for one image: element key -> state, and whether group 2 is dropped."""

    states: dict[str, float]
    dropped_second: bool = False


def decide_states(prompt: Prompt, model: VirtualModel, rng: np.random.Generator) -> Rendering:
    """Which elements the model renders: key -> 1 (right), 0.5 (partly) or 0 (wrong or missing)."""
    crowd = 0.15 * max(0, len(prompt.elements) - 3)
    states: dict[str, float] = {}
    for key, kind, _ in prompt.elements:
        p = 1 / (1 + np.exp(-(1.6 * (model.skill - DIFFICULTY[kind]) - prompt.hardness - crowd)))
        if rng.random() < p:
            states[key] = 1.0
        else:
            states[key] = 0.5 if rng.random() < 0.3 else 0.0
    # A failed second object is often dropped altogether, with everything attached to it.
    if len(prompt.groups) == 2:
        obj2 = [k for k, kind, gi in prompt.elements if kind == "object" and gi == 1][0]
        if states[obj2] == 0.0 and rng.random() < 0.5:
            for key, kind, gi in prompt.elements:
                if gi == 1 or kind == "spatial":
                    states[key] = 0.0
            return Rendering(states, dropped_second=True)
    return Rendering(states)


def _other(rng: np.random.Generator, options: Any, current: str) -> str:
    return _pick(rng, options, {current})


def build_scene(prompt: Prompt, model: VirtualModel, rendering: Rendering,
                rng: np.random.Generator) -> Scene:
    """Turn element states into a drawable scene (what the pixels will show)."""
    states = rendering.states
    drawn: list[DrawnGroup] = []
    colours = list(PALETTE)
    for gi, g in enumerate(prompt.groups):
        st = {kind: states[key] for key, kind, i in prompt.elements if i == gi}
        shape, distortion = g.shape, 0.0
        if st["object"] == 0.5:
            distortion = 0.35
        elif st["object"] == 0.0:
            shape = _other(rng, SHAPES, g.shape)
        name = g.color or colours[int(rng.integers(len(colours)))]
        colour = PALETTE[name]
        if g.color and st.get("color") == 0.5:
            i = colours.index(name)
            colour = PALETTE[colours[(i + (1 if rng.random() < 0.5 else -1)) % len(colours)]]
            colour = tuple(int(round((a + b) / 2)) for a, b in zip(PALETTE[name], colour))  # type: ignore[assignment]
        elif g.color and st.get("color") == 0.0:
            colour = PALETTE[_other(rng, colours, name)]
        count, faint = g.count, False
        if g.stated_count and st["counting"] == 0.5:
            faint = True
        elif g.stated_count and st["counting"] == 0.0:
            count = int(np.clip(g.count + rng.choice([-2, -1, 1, 2]), 1, 5))
            count = count if count != g.count else g.count + 1
        size_word = g.size or "medium"
        radius = RADIUS[size_word] * rng.uniform(0.9, 1.1)
        if g.size and st["attribute"] == 0.5:
            radius = RADIUS["medium"] * rng.uniform(0.95, 1.05)
        elif g.size and st["attribute"] == 0.0:
            radius = RADIUS["small" if g.size == "large" else "large"]
        radius *= 1.0 if count <= 2 else 0.85
        texture, strength = g.texture, 1.0
        if g.texture and st["material"] == 0.5:
            strength = 0.3
        elif g.texture and st["material"] == 0.0:
            texture = None
        drawn.append(DrawnGroup(shape, count, colour, radius, texture, strength, distortion, faint))
    regions = _regions(prompt, states, rng)
    if rendering.dropped_second:
        drawn, regions = drawn[:1], regions[:1]
    background, strength = prompt.location, 1.0
    if prompt.location:
        lst = states[f"{prompt.location} (location)"]
        if lst == 0.5:
            strength = 0.4
        elif lst == 0.0:
            background = None if rng.random() < 0.6 else _other(rng, LOCATIONS, prompt.location)
    return Scene(drawn, regions, background, strength, model.outline, model.blur, model.posterize, model.tint)


_HALVES = {"left of": ((0.02, 0.1, 0.5, 0.9), (0.5, 0.1, 0.98, 0.9)),
           "above": ((0.1, 0.02, 0.9, 0.5), (0.1, 0.5, 0.9, 0.98))}


def _regions(prompt: Prompt, states: dict[str, float],
             rng: np.random.Generator) -> list[tuple[float, float, float, float]]:
    full = (0.04, 0.04, 0.96, 0.96)
    if len(prompt.groups) == 1:
        return [full]
    relation = prompt.relation or (RELATIONS[int(rng.integers(4))])
    base = "left of" if relation in ("left of", "right of") else "above"
    first, second = _HALVES[base]
    if relation in ("right of", "below"):
        first, second = second, first
    state = states.get(f"{prompt.relation} (spatial)", 1.0) if prompt.relation else 1.0
    if state == 0.0:
        first, second = second, first
    elif state == 0.5:  # overlapping halves along the relation's axis: the relation is unclear
        first, second = full, full
    return [first, second]


def annotate(prompt: Prompt, model: VirtualModel, states: dict[str, float],
             rng: np.random.Generator, n_annotators: int = 3) -> dict[str, Any]:
    """Raw per-annotator fields of one image: total_score, element_score and the flag fields."""
    p_yes = {1.0: 0.93, 0.5: 0.5, 0.0: 0.06}
    keys = [k for k, _, _ in prompt.elements]
    weights = np.array([2.0 if kind == "object" else 1.0 for _, kind, _ in prompt.elements])
    alignment = float(np.dot(weights, [states[k] for k in keys]) / weights.sum())
    leniency = rng.normal(0, 0.03, n_annotators)
    bias = rng.normal(0, 0.25, n_annotators)
    votes = {k: [int(rng.random() < np.clip(p_yes[states[k]] + leniency[a], 0, 1)) for a in range(n_annotators)]
             for k in keys}
    totals = [int(np.clip(np.round(1 + 4 * alignment ** 1.5 + bias[a] + rng.normal(0, 0.55)), 1, 5))
              for a in range(n_annotators)]
    has_attr = any(kind in ("attribute", "material") for _, kind, _ in prompt.elements)
    blurry = model.blur >= 1.0
    return {
        "total_score": totals,
        "element_score": votes,
        "promt_meaningless": [int(rng.random() < 0.01) for _ in range(n_annotators)],
        "split_confidence": [int(rng.random() < 0.05) for _ in range(n_annotators)],
        "attribute_confidence": [int(not (has_attr and rng.random() < 0.1)) for _ in range(n_annotators)],
        "fidelity_label": [int(rng.random() < (0.5 if blurry else 0.08)) for _ in range(n_annotators)],
    }


def image_record(prompt: Prompt, img_path: str, raw: dict[str, Any]) -> dict[str, Any]:
    """One train_list.json-style record (raw form), keys in EvalMuse's order."""
    return {"prompt_id": prompt.prompt_id, "prompt": prompt.text, "type": prompt.kind, "img_path": img_path,
            "total_score": raw["total_score"], "element_score": raw["element_score"],
            "promt_meaningless": raw["promt_meaningless"], "split_confidence": raw["split_confidence"],
            "attribute_confidence": raw["attribute_confidence"], "fidelity_label": raw["fidelity_label"]}


def input_record(record: dict[str, Any]) -> dict[str, Any]:
    """The public form of a record: element keys present, every score null."""
    return {"prompt_id": record["prompt_id"], "prompt": record["prompt"], "type": record["type"],
            "img_path": record["img_path"], "total_score": None,
            "element_score": {k: None for k in record["element_score"]}}


__all__ = ["IMAGE_SIZE", "MODELS", "Prompt", "Rendering", "VirtualModel", "annotate", "build_scene", "decide_states",
           "image_record", "input_record", "make_prompt"]
