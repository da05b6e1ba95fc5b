"""``data synth``: write a complete mini-challenge for both tracks in the official formats.

Every image has its own random stream, derived from ``(seed, track, split, index)``,
so the output does not depend on the number of worker processes. References are built
from the raw val/test annotations by :mod:`.build_ref`, the same code an organizer runs
on real data. The layout is described in the package docstring (``ntire_t2iqa.data``).

Example:
    >>> from ntire_t2iqa.data import synthesize                     # doctest: +SKIP
    >>> manifest = synthesize("demo", seed=0, size="small")        # doctest: +SKIP
    >>> manifest["tracks"]["align"]["splits"]["test"]["images"]    # doctest: +SKIP
    60
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import ReferenceDataError
from . import synth_align as sa
from . import synth_structure as ss
from .align_render import IMAGE_SIZE, render_scene, save_png
from .build_ref import build_align_reference, build_structure_reference
from .layout import EVAL_SPLITS, FORMAT_VERSION, SPLITS, ChallengePaths, write_json
from .progress import progress_iter


@dataclass(frozen=True)
class SynthSize:
    """How much to generate: Track 1 prompts per split and images per prompt; Track 2 images per split."""

    align_prompts: tuple[int, int, int]  # train, val, test
    images_per_prompt: int
    structure_images: tuple[int, int, int]  # train, val, test

    def __post_init__(self) -> None:
        if self.images_per_prompt < 1 or self.images_per_prompt > len(sa.MODELS):
            raise ValueError(f"images_per_prompt must be 1..{len(sa.MODELS)} (one per virtual model), "
                             f"not {self.images_per_prompt}")
        for name, counts in (("align_prompts", self.align_prompts), ("structure_images", self.structure_images)):
            if len(counts) != 3 or min(counts[1:]) < 4 or counts[0] < 0:
                raise ValueError(f"{name} must be (train >= 0, val >= 4, test >= 4), not {counts}: the "
                                 "PLCC fit needs at least 4 images per scored split")


SIZES: dict[str, SynthSize] = {
    "small": SynthSize((40, 15, 15), 4, (120, 40, 40)),
    "medium": SynthSize((700, 150, 150), 4, (2400, 300, 300)),
}


def _jobs(workers: int) -> int:
    return max(1, min(workers, os.cpu_count() or 1))


@contextmanager
def _mapper(workers: int, n_items: int) -> Iterator[Callable[[Callable[[Any], Any], list[Any]], Iterator[Any]]]:
    """An ordered ``map``, over a process pool when ``workers > 1`` and there is enough work.

    The pool's processes are started before the caller opens a progress bar, so no
    process is forked while the bar's refresh thread runs.
    """
    if workers <= 1 or n_items < 16:
        yield lambda func, items: iter(map(func, items))
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pool.submit(int).result()  # start the workers now
        yield lambda func, items: pool.map(func, items, chunksize=8)


# --------------------------------------------------------------------------- Track 1


def _align_job(job: tuple[sa.Prompt, int, tuple[int, ...], str]) -> dict[str, Any]:
    prompt, model_index, key, path = job
    rng = np.random.default_rng(list(key))
    model = sa.MODELS[model_index]
    rendering = sa.decide_states(prompt, model, rng)
    save_png(path, render_scene(sa.build_scene(prompt, model, rendering, rng), rng))
    img_path = f"{model.name}/{Path(path).name}"
    return sa.image_record(prompt, img_path, sa.annotate(prompt, model, rendering.states, rng))


def _make_prompts(seed: int, counts: tuple[int, int, int]) -> dict[str, list[sa.Prompt]]:
    seen: set[str] = set()
    out: dict[str, list[sa.Prompt]] = {}
    next_id = 0
    for si, split in enumerate(SPLITS):
        prompts = []
        for pi in range(counts[si]):
            rng = np.random.default_rng([seed, 1, si, pi])
            for _ in range(1000):  # prompts are unique across splits, so no prompt leaks from train to test
                prompt = sa.make_prompt(rng, f"{next_id:05d}")
                if prompt.text not in seen:
                    break
            else:
                raise ValueError(f"could not find {sum(counts)} distinct prompts; ask for fewer")
            seen.add(prompt.text)
            prompts.append(prompt)
            next_id += 1
        out[split] = prompts
    return out


def _synth_align(paths: ChallengePaths, seed: int, size: SynthSize, workers: int, show: bool) -> dict[str, Any]:
    prompts = _make_prompts(seed, size.align_prompts)
    for model in sa.MODELS:
        (paths.align_images / model.name).mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, tuple[sa.Prompt, int, tuple[int, ...], str]]] = []
    index = 0
    for si, split in enumerate(SPLITS):
        for pi, prompt in enumerate(prompts[split]):
            rng = np.random.default_rng([seed, 1, si, pi, 7])
            for mi in sorted(rng.choice(len(sa.MODELS), size.images_per_prompt, replace=False).tolist()):
                index += 1
                path = paths.align_images / sa.MODELS[mi].name / f"{index:05d}.png"
                jobs.append((split, (prompt, mi, (seed, 1, si, pi, mi), str(path))))
    records: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    with _mapper(workers, len(jobs)) as run:
        results = run(_align_job, [j for _, j in jobs])
        for (split, _), record in progress_iter(zip(jobs, results), len(jobs), "Track 1 images", show):
            records[split].append(record)
    for split in SPLITS:
        write_json(paths.align_raw(split), records[split])
    for split in EVAL_SPLITS:
        write_json(paths.align_inputs(split), [sa.input_record(r) for r in records[split]])
        build_align_reference(paths.align_raw(split), paths.align_reference(split))
    return {
        "image_size": [IMAGE_SIZE, IMAGE_SIZE],
        "models": [{"name": m.name, "skill": m.skill} for m in sa.MODELS],
        "element_kinds": {k: {"difficulty": d} for k, d in sa.DIFFICULTY.items()},
        "splits": {s: {"prompts": len(prompts[s]), "images": len(records[s]),
                       "elements": sum(len(r["element_score"]) for r in records[s])} for s in SPLITS},
    }


# --------------------------------------------------------------------------- Track 2


def _structure_job(job: tuple[tuple[int, ...], str]) -> dict[str, Any]:
    key, path = job
    rng = np.random.default_rng(list(key))
    item = ss.render_image(rng)
    ss.save_jpeg(path, item.image)
    record = ss.info_record(item, ss.annotate(item, rng))
    record["_artefacts"] = len(item.artefacts)
    return record


def _synth_structure(paths: ChallengePaths, seed: int, size: SynthSize, workers: int,
                     show: bool) -> dict[str, Any]:
    paths.structure_images.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, str, tuple[tuple[int, ...], str]]] = []
    for si, split in enumerate(SPLITS):
        for i in range(size.structure_images[si]):
            name = f"{split}_{i + 1:05d}"
            jobs.append((split, name, ((seed, 2, si, i), str(paths.structure_images / f"{name}{ss.IMAGE_SUFFIX}"))))
    info: dict[str, dict[str, Any]] = {s: {} for s in SPLITS}
    artefacts = {s: 0 for s in SPLITS}
    with _mapper(workers, len(jobs)) as run:
        results = run(_structure_job, [j for _, _, j in jobs])
        for (split, name, _), record in progress_iter(zip(jobs, results), len(jobs), "Track 2 images", show):
            artefacts[split] += record.pop("_artefacts")
            info[split][name] = record
    for split in SPLITS:
        write_json(paths.structure_raw(split), info[split])
    for split in EVAL_SPLITS:
        write_json(paths.structure_info(split), {n: {"prompt_en": r["prompt_en"]} for n, r in info[split].items()})
        write_json(paths.structure_inputs(split), list(info[split]))
        build_structure_reference(paths.structure_raw(split), paths.structure_images,
                                  paths.structure_reference(split))
    return {
        "image_sizes": [list(s) for s in ss.IMAGE_SIZES],
        "image_suffix": ss.IMAGE_SUFFIX,
        "splits": {s: {"images": len(info[s]), "artefacts": artefacts[s]} for s in SPLITS},
    }


# --------------------------------------------------------------------------- both


def _files(paths: ChallengePaths) -> dict[str, str]:
    rel = lambda p: p.relative_to(paths.root).as_posix()  # noqa: E731
    files = {rel(paths.align_images): "public", rel(paths.structure_images): "public",
             rel(paths.align_raw("train")): "public", rel(paths.structure_raw("train")): "public"}
    for split in EVAL_SPLITS:
        files.update({rel(paths.align_inputs(split)): "public", rel(paths.align_raw(split)): "hidden",
                      rel(paths.align_reference(split)): "hidden", rel(paths.structure_info(split)): "public",
                      rel(paths.structure_inputs(split)): "public", rel(paths.structure_raw(split)): "hidden",
                      rel(paths.structure_reference(split)): "hidden"})
    return files


def _prepare(root: Path) -> ChallengePaths:
    paths = ChallengePaths(root)
    if root.exists() and not root.is_dir():
        raise ReferenceDataError(str(root), "is a file.", "Pass a folder for the challenge.")
    if root.is_dir() and any(root.iterdir()) and not paths.manifest.is_file():
        raise ReferenceDataError(str(root), "exists, is not empty and holds no synthetic challenge "
                                 "(no manifest.json), so it is left alone.", "Pass a new or empty folder.")
    for sub in (paths.align, paths.structure):
        if sub.exists():
            shutil.rmtree(sub)
    paths.manifest.unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    return paths


def synthesize(out: str | os.PathLike[str], seed: int = 0, size: str | SynthSize = "small",
               workers: int = 2, progress: bool = True,
               tracks: Iterable[str] = ("align", "structure")) -> dict[str, Any]:
    """Write the synthetic challenge to ``out`` and return its manifest.

    ``size`` is ``"small"`` (default, seconds), ``"medium"`` (a few thousand images per
    track, enough to train the tiny baselines) or a :class:`SynthSize`. ``out`` must be
    new, empty, or an earlier synthetic challenge (which is replaced).
    """
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; choose one of: {', '.join(SIZES)} (or pass a SynthSize)")
        size_name, spec = size, SIZES[size]
    else:
        size_name, spec = "custom", size
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    tracks = tuple(tracks)
    unknown = set(tracks) - {"align", "structure"}
    if unknown or not tracks:
        raise ValueError(f"tracks must be a non-empty subset of align, structure; got {tracks}")
    paths = _prepare(Path(out))
    start = time.perf_counter()
    jobs = _jobs(workers)
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION, "generator": f"ntire-t2iqa {__version__} data synth",
        "seed": seed, "size": size_name, "spec": asdict(spec), "tracks": {},
    }
    if "align" in tracks:
        manifest["tracks"]["align"] = _synth_align(paths, seed, spec, jobs, progress)
    if "structure" in tracks:
        manifest["tracks"]["structure"] = _synth_structure(paths, seed, spec, jobs, progress)
    files = _files(paths)
    manifest["files"] = {f: role for f, role in files.items() if (paths.root / f).exists()}
    manifest["seconds"] = round(time.perf_counter() - start, 2)
    write_json(paths.manifest, manifest, indent=2)
    return manifest
