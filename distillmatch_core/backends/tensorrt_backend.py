"""TensorRT backend: builds (once) and runs an engine from a graph written by ``distillmatch export onnx``.

``weights`` is either the exported ``.onnx`` file, whose engine is built on first use and
cached on disk (``tensorrt_engine_cache``: keyed by ONNX sha256 + TensorRT version + GPU
name + build settings, reloaded without rebuilding), or a cached ``.engine`` file with
its ``.json`` sidecar.

Buffers are torch CUDA tensors, not cuda-python/pycuda: torch is already a dependency,
JetPack has its own CUDA build of it, and its caching allocator and streams spare us a
second CUDA binding. Inputs are copied into preallocated device tensors and the engine
runs on torch's current stream (``execute_async_v3``, TensorRT >= 8.5).

Precision: with ``fp16`` TensorRT may run any layer in half precision. Two places of this
model do not survive that: the coarse ``exp(S / temperature)`` (|S| <= 1/0.05 gives
e^20, beyond fp16's 65504) and the keypoint arithmetic (at x = 600 px, fp16 steps are
0.5 px). ``layers_kept_in_fp32`` pins every layer between the last MatMul/Conv and the
graph outputs, plus the normalisation layers, to fp32; the MatMuls and convolutions,
where the time goes, stay fp16.

INT8 is not implemented: it needs a calibration set of real RGB-thermal pairs and an
``IInt8EntropyCalibrator2`` (or a QAT graph); see docs/deployment.md.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np

from distillmatch_core.backends.backend_options import options_from_kwargs
from distillmatch_core.backends.tensorrt_engine_cache import (EngineBuildSettings, EngineCache, EngineKey,
                                                              read_sidecar)
from distillmatch_core.config import ModelConfig, model_config_from_dict
from distillmatch_core.export.onnx_metadata import INPUT_NAMES, OUTPUT_NAMES, ExportedModelInfo
from distillmatch_core.matcher import ENGINE_SUFFIXES

LOG = logging.getLogger(__name__)
INSTALL_HINT = ("the tensorrt backend needs NVIDIA TensorRT's Python package: pip install tensorrt "
                "(desktop/server GPUs) or, on Jetson, JetPack's python3-libnvinfer (apt install nvidia-tensorrt)")
# Layers whose cost dominates and whose fp16 error stays small (bounded inputs, fp32 accumulation).
HEAVY_LAYER_TYPES = ("CONVOLUTION", "MATRIX_MULTIPLY", "EINSUM", "FULLY_CONNECTED", "DECONVOLUTION")
# fp16 normalisation overflows on large activations (TensorRT itself warns about it).
ALWAYS_FP32_LAYER_TYPES = ("NORMALIZATION",)


@dataclass(frozen=True)
class TensorRTOptions:
    fp16: bool = True
    workspace_mib: int = 1024
    cache_dir: Optional[str] = None  # None: $DISTILLMATCH_CACHE_DIR/tensorrt or ~/.cache/distillmatch/tensorrt
    rebuild: bool = False  # ignore a cached engine and build again
    int8: bool = False  # documented extension only; True raises


def import_tensorrt():
    try:
        import tensorrt
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})", name="tensorrt") from None
    return tensorrt


def require_cuda_device(device: str):
    """-> torch.device for ``device``; a clear error when no GPU (or no CUDA torch) is there."""
    import torch

    if not device.startswith("cuda"):
        raise ValueError(f"the tensorrt backend runs on a CUDA GPU; pass device='cuda' (got {device!r})")
    if not torch.cuda.is_available():
        raise RuntimeError("the tensorrt backend needs a CUDA GPU visible to torch (its buffers are torch CUDA "
                           "tensors); none found. On Jetson install JetPack's CUDA build of torch.")
    return torch.device(device)


def layers_kept_in_fp32(layers: Sequence[Any], output_names: Iterable[str], heavy_types: Set[Any],
                        always_fp32_types: Set[Any], float_types: Set[Any]) -> List[int]:
    """Indices of layers to pin to fp32 under an fp16 build.

    ``layers``: TensorRT ILayer-likes (``type``, ``num_inputs``, ``get_input(i)``, ``num_outputs``,
    ``get_output(i)``; tensors with ``name`` and ``dtype``). Walks back from the graph outputs
    through every producer, stopping at (and excluding) heavy layers, and adds layers of the
    always-fp32 types. Only layers with a floating-point output are returned.
    """
    producer: Dict[str, int] = {}
    for index, layer in enumerate(layers):
        for o in range(layer.num_outputs):
            producer[layer.get_output(o).name] = index
    chosen: Set[int] = set()
    stack = [producer[name] for name in output_names if name in producer]
    seen: Set[int] = set()
    while stack:
        index = stack.pop()
        if index in seen:
            continue
        seen.add(index)
        layer = layers[index]
        if layer.type in heavy_types:
            continue
        chosen.add(index)
        for i in range(layer.num_inputs):
            tensor = layer.get_input(i)
            if tensor is not None and tensor.name in producer:
                stack.append(producer[tensor.name])
    chosen.update(i for i, layer in enumerate(layers) if layer.type in always_fp32_types)
    return sorted(i for i in chosen
                  if any(layers[i].get_output(o).dtype in float_types for o in range(layers[i].num_outputs)))


class TensorRTBackend:
    name = "tensorrt"
    built_engine = False  # True when this instance built (not loaded) its engine

    def __init__(self, weights: Path, device: str = "cuda", **options):
        self.options = options_from_kwargs(TensorRTOptions, options, self.name)
        if self.options.int8:
            raise ValueError("INT8 engines are not implemented (they need a calibration set); see "
                             "docs/deployment.md, 'INT8'")
        self.trt = import_tensorrt()
        self.device = require_cuda_device(device)
        import torch

        self.torch = torch
        self.logger = self.trt.Logger(self.trt.Logger.WARNING)
        weights = Path(weights)
        if weights.suffix.lower() == ".onnx":
            engine_bytes, self.engine_path, metadata = self._engine_for_onnx(weights)
        elif weights.suffix.lower() in ENGINE_SUFFIXES:
            engine_bytes, self.engine_path = weights.read_bytes(), weights
            metadata = read_sidecar(weights).get("metadata", {})
        else:
            raise ValueError(f"the tensorrt backend loads an exported .onnx or a cached .engine, got {weights.name}")
        self.info = ExportedModelInfo.from_properties(metadata, source=str(weights))
        self.config: ModelConfig = model_config_from_dict(self.info.model_config)
        with torch.cuda.device(self.device):
            self.engine = self.trt.Runtime(self.logger).deserialize_cuda_engine(engine_bytes)
            if self.engine is None and weights.suffix.lower() == ".onnx" and not self.built_engine:
                # A cached file that no longer deserializes (truncated, or a TensorRT patch update that
                # kept the version string): replace it instead of failing the robot's start-up.
                LOG.warning("cached TensorRT engine %s is unusable; rebuilding it", self.engine_path)
                engine_bytes, self.engine_path, metadata = self._engine_for_onnx(weights, force_rebuild=True)
                self.engine = self.trt.Runtime(self.logger).deserialize_cuda_engine(engine_bytes)
            if self.engine is None:
                raise RuntimeError(f"TensorRT {self.trt.__version__} could not deserialize {self.engine_path} "
                                   "(built by another TensorRT version or GPU?); build it again from the .onnx")
            self.context = self.engine.create_execution_context()
            self.buffers = self._allocate_buffers()
        self.input_size: Tuple[int, int] = tuple(self.buffers[INPUT_NAMES[0]].shape[-2:])
        if self.input_size != tuple(self.info.input_size):
            raise ValueError(f"engine input size {self.input_size} disagrees with its metadata {self.info.input_size}")

    # ------------------------------------------------------------------ engine
    def _engine_for_onnx(self, onnx_path: Path, force_rebuild: bool = False) -> Tuple[bytes, Path, Dict[str, str]]:
        import onnx

        torch, trt = self.torch, self.trt
        onnx_bytes = onnx_path.read_bytes()
        proto = onnx.load_from_string(onnx_bytes)
        metadata = {p.key: p.value for p in proto.metadata_props}
        ExportedModelInfo.from_properties(metadata, source=str(onnx_path))  # fail before a long build
        settings = EngineBuildSettings(fp16=self.options.fp16, workspace_mib=self.options.workspace_mib)
        key = EngineKey(onnx_sha256=hashlib.sha256(onnx_bytes).hexdigest(), tensorrt_version=trt.__version__,
                        gpu_name=torch.cuda.get_device_name(self.device), settings=settings)
        cache = EngineCache(Path(self.options.cache_dir) if self.options.cache_dir else None)
        engine_path = cache.engine_path(onnx_path, key)
        cached = None if self.options.rebuild or force_rebuild else cache.load(engine_path, key)
        if cached is not None:
            LOG.info("TensorRT engine cache hit: %s", engine_path)
            self.built_engine = False
            return cached, engine_path, metadata
        LOG.warning("building a TensorRT engine for %s (once per model, TensorRT version and GPU; minutes on "
                    "Jetson) -> %s", onnx_path.name, engine_path)
        engine_bytes = self._build(onnx_bytes, settings)
        cache.store(engine_path, engine_bytes, key, metadata)
        self.built_engine = True
        return engine_bytes, engine_path, metadata

    def _build(self, onnx_bytes: bytes, settings: EngineBuildSettings) -> bytes:
        trt = self.trt
        builder = trt.Builder(self.logger)
        # TensorRT 10 networks are always explicit-batch (the flag is deprecated); 8.x needs it set.
        flags = 0 if int(trt.__version__.split(".")[0]) >= 10 else \
            1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(onnx_bytes):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT's ONNX parser rejected the graph: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(settings.workspace_mib) << 20)
        if settings.fp16:
            if not builder.platform_has_fast_fp16:
                LOG.warning("this GPU has no fast fp16; building an fp16 engine anyway")
            config.set_flag(trt.BuilderFlag.FP16)
            self._pin_sensitive_layers_to_fp32(network, config)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError("TensorRT failed to build the engine (see the TensorRT log above)")
        return bytes(serialized)

    def _pin_sensitive_layers_to_fp32(self, network, config) -> None:
        trt = self.trt
        layers = [network.get_layer(i) for i in range(network.num_layers)]
        outputs = [network.get_output(i).name for i in range(network.num_outputs)]

        def types(names):
            return {getattr(trt.LayerType, n) for n in names if hasattr(trt.LayerType, n)}

        pinned = layers_kept_in_fp32(layers, outputs, types(HEAVY_LAYER_TYPES), types(ALWAYS_FP32_LAYER_TYPES),
                                     {trt.float32, trt.float16})
        for index in pinned:
            layer = layers[index]
            layer.precision = trt.float32
            for o in range(layer.num_outputs):
                if layer.get_output(o).dtype in (trt.float32, trt.float16):
                    layer.set_output_type(o, trt.float32)
        # "Prefer": a layer TensorRT has no fp32 kernel for is built anyway (with a warning), not refused.
        config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
        LOG.info("fp16 engine: %d of %d layers kept in fp32", len(pinned), len(layers))

    # ------------------------------------------------------------------ buffers / run
    def _torch_dtype(self, trt_dtype):
        trt, torch = self.trt, self.torch
        table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
                 trt.bool: torch.bool, trt.int8: torch.int8}
        if hasattr(trt, "int64"):
            table[trt.int64] = torch.int64
        return table[trt_dtype]

    def _allocate_buffers(self) -> Dict[str, Any]:
        torch = self.torch
        buffers = {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.engine.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise ValueError(f"engine tensor {name} has a dynamic shape {shape}; DistillMatch engines are static")
            tensor = torch.empty(shape, dtype=self._torch_dtype(self.engine.get_tensor_dtype(name)),
                                 device=self.device)
            self.context.set_tensor_address(name, tensor.data_ptr())
            buffers[name] = tensor
        missing = set(INPUT_NAMES + OUTPUT_NAMES) - set(buffers)
        if missing:
            raise ValueError(f"engine lacks tensors {sorted(missing)}; not a DistillMatch engine")
        return buffers

    def run(self, image0: np.ndarray, image1: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(1, 1, H, W) float32 canvases of ``input_size`` -> keypoints0/1 (N, 2) network pixels,
        confidence (N,), valid matches only."""
        torch = self.torch
        expected = (1, 1) + tuple(self.input_size)
        with torch.cuda.device(self.device):
            for name, image in zip(INPUT_NAMES, (image0, image1)):
                if tuple(image.shape) != expected:
                    raise ValueError(f"{name} has shape {tuple(image.shape)}; this engine takes {expected} "
                                     "(Matcher.match fits images to it)")
                self.buffers[name].copy_(torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)))
            stream = torch.cuda.current_stream(self.device)
            if not self.context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed (see the TensorRT log)")
            stream.synchronize()
            valid = self.buffers["valid"][0].bool()
            return tuple(self.buffers[n][0][valid].float().cpu().numpy() for n in OUTPUT_NAMES[:3])
