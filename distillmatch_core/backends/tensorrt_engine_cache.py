"""On-disk cache of serialized TensorRT engines (pure Python: no TensorRT needed to use it).

A serialized engine is only valid for the TensorRT version and the GPU model it was
built on, and it bakes in the ONNX weights and the build flags. The cache key is
therefore sha256 over (ONNX file sha256, TensorRT version, GPU name, build settings);
a change of any of them is a cache miss and a rebuild, never a stale or foreign engine.

Layout: ``<cache_dir>/<onnx stem>-<key[:16]>.engine`` plus ``.json`` beside it, which
holds the key's inputs and the ONNX file's DistillMatch metadata so the engine file can
later be loaded on its own (``backend="tensorrt"`` with ``weights=...engine``).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional

CACHE_DIR_ENV = "DISTILLMATCH_CACHE_DIR"


@dataclass(frozen=True)
class EngineBuildSettings:
    fp16: bool = True  # let TensorRT pick fp16 kernels (numerically sensitive layers stay fp32)
    workspace_mib: int = 1024  # builder scratch memory for tactic selection; Jetson Orin Nano: 512 is safer


@dataclass(frozen=True)
class EngineKey:
    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    settings: EngineBuildSettings

    @property
    def digest(self) -> str:
        payload = json.dumps({"onnx_sha256": self.onnx_sha256, "tensorrt_version": self.tensorrt_version,
                              "gpu_name": self.gpu_name, "settings": asdict(self.settings)}, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def to_dict(self) -> Dict[str, Any]:
        return {"onnx_sha256": self.onnx_sha256, "tensorrt_version": self.tensorrt_version,
                "gpu_name": self.gpu_name, "settings": asdict(self.settings), "digest": self.digest}


def default_cache_dir() -> Path:
    """$DISTILLMATCH_CACHE_DIR/tensorrt, else $XDG_CACHE_HOME (or ~/.cache)/distillmatch/tensorrt."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser() / "tensorrt"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "distillmatch" / "tensorrt"


def sidecar_path(engine_path: Path) -> Path:
    return Path(engine_path).with_suffix(".json")


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class EngineCache:
    def __init__(self, root: Optional[Path] = None):
        self.root = Path(root).expanduser() if root else default_cache_dir()

    def engine_path(self, onnx_path: Path, key: EngineKey) -> Path:
        return self.root / f"{Path(onnx_path).stem}-{key.digest[:16]}.engine"

    def load(self, engine_path: Path, key: EngineKey) -> Optional[bytes]:
        """The cached engine bytes, or None when absent or recorded under a different key."""
        if not engine_path.is_file():
            return None
        try:
            recorded = read_sidecar(engine_path).get("key", {}).get("digest")
        except ValueError:
            return None
        if recorded != key.digest:  # a 16-hex prefix collision or a hand-copied file: rebuild
            return None
        return engine_path.read_bytes()

    def store(self, engine_path: Path, engine: bytes, key: EngineKey, metadata: Dict[str, str]) -> None:
        """Engine first, sidecar last: a sidecar only ever describes a complete engine file."""
        _atomic_write(engine_path, bytes(engine))
        sidecar = {"key": key.to_dict(), "metadata": dict(metadata)}
        _atomic_write(sidecar_path(engine_path), json.dumps(sidecar, indent=2, sort_keys=True).encode("utf-8"))


def read_sidecar(engine_path: Path) -> Dict[str, Any]:
    path = sidecar_path(engine_path)
    if not path.is_file():
        raise ValueError(f"{engine_path} has no sidecar {path.name}; build engines through the tensorrt backend "
                         "from an exported .onnx so their metadata is kept")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a DistillMatch engine sidecar")
    return data
