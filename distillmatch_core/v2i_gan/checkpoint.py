"""V2I-GAN checkpoints: a shippable generator file and a full training state.

Both are plain dicts of tensors and builtins so they load with
``torch.load(..., weights_only=True)`` (no pickled code is ever executed on load).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch

from distillmatch_core.config import to_dict
from distillmatch_core.v2i_gan.config import generator_config_from_dict
from distillmatch_core.v2i_gan.generator import V2IGenerator
from distillmatch_core.version import __version__

GENERATOR_FORMAT = "distillmatch.v2i_gan.generator"
TRAINING_STATE_FORMAT = "distillmatch.v2i_gan.training_state"
# Bumped when the generator file layout changes incompatibly.
V2I_GAN_FORMAT_VERSION = 1
VISIBLE_TO_INFRARED = "visible_to_infrared"
INFRARED_TO_VISIBLE = "infrared_to_visible"


class V2IGanCheckpointError(ValueError):
    """A file is not a usable V2I-GAN checkpoint."""


def save_generator(path: str | Path, generator: V2IGenerator, direction: str = VISIBLE_TO_INFRARED,
                   metadata: Optional[Dict[str, Any]] = None) -> Path:
    """Writes the generator weights + config; ``metadata`` (builtins only) records training facts,
    e.g. ``{"inference_short_side": 120, "mode": "paired", "dev_metrics": {...}}``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in generator.state_dict().items()}
    torch.save({
        "format": GENERATOR_FORMAT,
        "format_version": V2I_GAN_FORMAT_VERSION,
        "package_version": __version__,
        "direction": direction,
        "generator_config": to_dict(generator.cfg),
        "metadata": dict(metadata or {}),
        "state_dict": state,
    }, path)
    return path


def load_generator(path: str | Path, map_location: str = "cpu") -> Tuple[V2IGenerator, Dict[str, Any]]:
    """-> (generator in eval mode, the whole checkpoint dict minus the weights)."""
    path = Path(path)
    if not path.is_file():
        raise V2IGanCheckpointError(f"V2I-GAN checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise V2IGanCheckpointError(f"cannot read V2I-GAN checkpoint {path}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != GENERATOR_FORMAT:
        raise V2IGanCheckpointError(f"{path} is not a V2I-GAN generator checkpoint")
    if int(ckpt.get("format_version", -1)) != V2I_GAN_FORMAT_VERSION:
        raise V2IGanCheckpointError(f"{path}: V2I-GAN format version {ckpt.get('format_version')} is not "
                                    f"supported (this package reads {V2I_GAN_FORMAT_VERSION})")
    generator = V2IGenerator(generator_config_from_dict(ckpt["generator_config"]))
    try:
        generator.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise V2IGanCheckpointError(f"{path}: weights do not fit the generator architecture: {exc}") from exc
    generator.eval()
    info = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return generator, info


def save_training_state(path: str | Path, trainer: torch.nn.Module, step: int, elapsed_seconds: float) -> Path:
    """Everything needed to resume: all networks, both optimisers, the run config."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({
        "format": TRAINING_STATE_FORMAT,
        "format_version": V2I_GAN_FORMAT_VERSION,
        "package_version": __version__,
        "config": to_dict(trainer.cfg),
        "step": int(step),
        "elapsed_seconds": float(elapsed_seconds),
        "model": trainer.state_dict(),
        "optim_g": trainer.optim_g.state_dict(),
        "optim_d": trainer.optim_d.state_dict(),
    }, path)
    return path


def load_training_state(path: str | Path, trainer: torch.nn.Module) -> Dict[str, Any]:
    """Restores ``trainer`` in place -> {"step", "elapsed_seconds", "config"}."""
    ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != TRAINING_STATE_FORMAT:
        raise V2IGanCheckpointError(f"{path} is not a V2I-GAN training state")
    trainer.load_state_dict(ckpt["model"])
    trainer.optim_g.load_state_dict(ckpt["optim_g"])
    trainer.optim_d.load_state_dict(ckpt["optim_d"])
    return {k: ckpt[k] for k in ("step", "elapsed_seconds", "config")}


__all__ = ["save_generator", "load_generator", "save_training_state", "load_training_state",
           "V2IGanCheckpointError", "VISIBLE_TO_INFRARED", "INFRARED_TO_VISIBLE"]
