"""Training runtime shared by the baselines: seeds, devices, AMP, schedules, checkpoints, safe weights, CPU threads."""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

WEIGHTS = "model.safetensors"
STATE = "state.pt"
CONFIG = "config.json"


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices) and make cuDNN deterministic."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.benchmark = False


def resolve_device(device: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N``; asking for CUDA without a GPU is a clear error."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu.")
    return torch.device(device)


def autocast(device: torch.device) -> Any:
    """bf16 autocast on GPU (AMP); plain float32 on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def cosine_with_warmup(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
                       ) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up for ``warmup_steps``, then cosine decay to 0 at ``total_steps``."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _atomic(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def save_checkpoint(run_dir: Path, model: torch.nn.Module, config: dict[str, Any], epoch: int,
                    optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None,
                    extra: dict[str, Any] | None = None) -> None:
    """Write weights (safetensors), config and training state; each file replaced atomically."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, str(_atomic(run_dir / WEIGHTS)))
    os.replace(_atomic(run_dir / WEIGHTS), run_dir / WEIGHTS)
    (_atomic(run_dir / CONFIG)).write_text(json.dumps(config, indent=2))
    os.replace(_atomic(run_dir / CONFIG), run_dir / CONFIG)
    numpy_rng = torch.from_numpy(np.random.get_state()[1].copy())  # a tensor, so weights_only loading accepts it
    state = {"epoch": epoch, "torch_rng": torch.get_rng_state(), "numpy_rng": numpy_rng,
             "python_rng": repr(random.getstate()), "extra": extra or {}}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    torch.save(state, _atomic(run_dir / STATE))
    os.replace(_atomic(run_dir / STATE), run_dir / STATE)


def load_state(run_dir: Path) -> dict[str, Any] | None:
    """The training state of a run directory (``None`` when there is none), loaded with weights_only."""
    path = run_dir / STATE
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def weights_file(path: str | Path) -> Path:
    """A weights file from a run directory or a file path (safetensors preferred)."""
    p = Path(path)
    if p.is_dir():
        for name in (WEIGHTS, "model.pt", "model.pth", "checkpoint.pth", "pytorch_model.bin"):
            if (p / name).is_file():
                return p / name
        raise FileNotFoundError(f"{p} holds no {WEIGHTS} (or .pt/.pth/.bin) file")
    if not p.is_file():
        raise FileNotFoundError(f"{p} does not exist")
    return p


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load tensors safely: safetensors first, else ``torch.load(weights_only=True)`` (no code runs)."""
    file = weights_file(path)
    if file.suffix == ".safetensors":
        return load_file(str(file))
    obj = torch.load(file, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict", "module"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ValueError(f"{file} does not hold a state dict")
    return obj


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The config.json saved beside the weights."""
    p = Path(run_dir)
    p = p if p.is_dir() else p.parent
    return json.loads((p / CONFIG).read_text())


@contextmanager
def evaluation(model: torch.nn.Module) -> Iterator[None]:
    """``model.eval()`` and no gradients inside; restores training mode after."""
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was)


def free_cores() -> int:
    """CPU cores not already busy: the core count minus the 1-minute load average (at least 1)."""
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:  # not available on this platform
        busy = 0.0
    return max(1, min(cores, cores - round(busy)))


@contextmanager
def cpu_threads(setting: int | str | None, device: torch.device) -> Iterator[int]:
    """Torch's CPU thread count inside the block: ``"auto"`` (:func:`free_cores`), a number, or ``None`` (unchanged).

    On a shared machine more threads than free cores make OpenMP's spin-waiting threads many
    times slower than one thread; ``"auto"`` avoids that. Restored on exit. No effect on GPU.
    """
    before = torch.get_num_threads()
    if device.type != "cpu" or setting is None:
        yield before
        return
    torch.set_num_threads(free_cores() if setting == "auto" else max(1, int(setting)))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
