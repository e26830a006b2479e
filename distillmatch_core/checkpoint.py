"""Model checkpoints: weights + config + format version + lineage, loaded with ``weights_only=True``.

A file written here holds only tensors and builtins, so ``torch.load(weights_only=True)``
can read it and a tampered pickle cannot run code. Training checkpoints add optimiser,
scheduler and RNG state under ``"training"``.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch

from distillmatch_core.config import ModelConfig, model_config_from_dict, to_dict
from distillmatch_core.version import CHECKPOINT_FORMAT_VERSION, __version__

MAGIC = "distillmatch-checkpoint"


class CheckpointError(ValueError):
    """The file is missing, corrupt, not a DistillMatch checkpoint, or does not fit the model."""


def git_commit(repo: Optional[Path] = None) -> str:
    repo = repo or Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write to a temporary file in the same folder, then rename: never a half-written checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; a model others install and a ROS node user reads must be world-readable.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_checkpoint(path: Path, model: torch.nn.Module, config: ModelConfig,
                    lineage: Optional[Dict[str, Any]] = None, training: Optional[Dict[str, Any]] = None,
                    half: bool = False) -> None:
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
             for k, v in model.state_dict().items()}
    payload = {
        "magic": MAGIC,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "package_version": __version__,
        "model_config": to_dict(config),
        "state_dict": state,
        "lineage": dict(lineage or {}),
    }
    if training is not None:
        payload["training"] = training
    atomic_torch_save(payload, path)


def read_checkpoint(path: Path) -> Dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # zip/pickle errors of every kind mean "corrupt or foreign"
        raise CheckpointError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("magic") != MAGIC:
        raise CheckpointError(f"{path} is not a DistillMatch checkpoint")
    version = payload.get("format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {version}; this package reads "
                              f"format {CHECKPOINT_FORMAT_VERSION} (package {__version__})")
    return payload


def load_model(path: Path, device: str = "cpu") -> Tuple[torch.nn.Module, ModelConfig, Dict[str, Any]]:
    """-> (DistillMatch in eval mode on ``device``, its config, the raw payload)."""
    from distillmatch_core.model.distillmatch import DistillMatch

    payload = read_checkpoint(path)
    try:
        config = model_config_from_dict(payload["model_config"])
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: invalid model config: {exc}") from None
    model = DistillMatch(config)
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0:3]
        raise CheckpointError(f"{path}: weights do not match the stored config: {' '.join(first)}") from None
    return model.to(device).eval(), config, payload
