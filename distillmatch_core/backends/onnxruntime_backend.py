"""ONNX Runtime backend: runs a static graph written by ``distillmatch export onnx``.

Providers: CPU for ``device="cpu"``; for ``device="cuda[:N]"`` the TensorRT execution
provider (if this onnxruntime build has it and it is not disabled), then CUDA, then
CPU for any node the GPU providers do not take. The graph's input size is static; the
``Matcher`` fits each image into it (``input_size``) and maps keypoints back.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np

from distillmatch_core.backends.backend_options import options_from_kwargs
from distillmatch_core.config import ModelConfig, model_config_from_dict
from distillmatch_core.export.onnx_metadata import INPUT_NAMES, OUTPUT_NAMES, ExportedModelInfo

INSTALL_HINT = ("the onnxruntime backend needs the 'onnxruntime' package: pip install onnxruntime "
                "(or onnxruntime-gpu for the CUDA / TensorRT execution providers)")
ProviderSpec = Union[str, Tuple[str, dict]]


@dataclass(frozen=True)
class OnnxRuntimeOptions:
    threads: Optional[int] = None  # intra-op threads; None: onnxruntime's default (all cores)
    use_tensorrt_provider: bool = True  # on cuda, prefer the TensorRT execution provider when present
    fp16: bool = True  # TensorRT execution provider only: allow fp16 kernels
    tensorrt_cache_dir: Optional[str] = None  # TensorRT execution provider engine cache; None: no cache


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})", name="onnxruntime") from None
    return onnxruntime


def select_providers(device: str, available: List[str], options: OnnxRuntimeOptions) -> List[ProviderSpec]:
    """Ordered execution providers for ``device``; raises if the device cannot be served."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r} for the onnxruntime backend; use 'cpu' or 'cuda[:N]'")
    device_id = int(device.split(":", 1)[1]) if ":" in device else 0
    if "CUDAExecutionProvider" not in available:
        raise RuntimeError(f"device {device!r} requested but this onnxruntime has no CUDAExecutionProvider "
                           f"(available: {', '.join(available)}); pip install onnxruntime-gpu")
    providers: List[ProviderSpec] = []
    if options.use_tensorrt_provider and "TensorrtExecutionProvider" in available:
        trt = {"device_id": device_id, "trt_fp16_enable": options.fp16}
        if options.tensorrt_cache_dir:
            trt.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(options.tensorrt_cache_dir))
        providers.append(("TensorrtExecutionProvider", trt))
    providers.append(("CUDAExecutionProvider", {"device_id": device_id}))
    providers.append("CPUExecutionProvider")
    return providers


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, weights: Path, device: str = "cpu", **options):
        self.options = options_from_kwargs(OnnxRuntimeOptions, options, self.name)
        ort = import_onnxruntime()
        weights = Path(weights)
        if weights.suffix.lower() != ".onnx":
            raise ValueError(f"the onnxruntime backend loads an exported .onnx file, got {weights.name}; "
                             f"export one with `distillmatch export onnx --weights {weights} OUT.onnx`")
        session_options = ort.SessionOptions()
        if self.options.threads:
            session_options.intra_op_num_threads = int(self.options.threads)
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = select_providers(device, ort.get_available_providers(), self.options)
        try:
            self.session = ort.InferenceSession(str(weights), session_options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for corrupt files
            raise ValueError(f"onnxruntime cannot load {weights}: {type(exc).__name__}: {exc}") from None
        self.device = device
        self.providers = self.session.get_providers()
        self.info = ExportedModelInfo.from_properties(self.session.get_modelmeta().custom_metadata_map,
                                                      source=str(weights))
        self.config: ModelConfig = model_config_from_dict(self.info.model_config)
        self.input_size: Tuple[int, int] = self._graph_input_size(self.info)

    def _graph_input_size(self, info: ExportedModelInfo) -> Tuple[int, int]:
        """(H, W) from the graph's own input shapes; the metadata must agree with them."""
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if set(inputs) != set(INPUT_NAMES) or not set(OUTPUT_NAMES) <= outputs:
            raise ValueError(f"graph inputs {sorted(inputs)} / outputs {sorted(outputs)} are not DistillMatch's "
                             f"{list(INPUT_NAMES)} / {list(OUTPUT_NAMES)}")
        shape = inputs[INPUT_NAMES[0]]
        if len(shape) != 4 or not all(isinstance(d, int) for d in shape[2:]):
            raise ValueError(f"graph input shape {shape} is not static (1, 1, H, W)")
        size = (int(shape[2]), int(shape[3]))
        if size != tuple(info.input_size):
            raise ValueError(f"graph input size {size} disagrees with its metadata {tuple(info.input_size)}")
        return size

    def run(self, image0: np.ndarray, image1: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(1, 1, H, W) float32 canvases of ``input_size`` -> keypoints0/1 (N, 2) network pixels,
        confidence (N,), valid matches only."""
        expected = (1, 1) + tuple(self.input_size)
        for name, image in (("image0", image0), ("image1", image1)):
            if tuple(image.shape) != expected:
                raise ValueError(f"{name} has shape {tuple(image.shape)}; this static graph takes {expected} "
                                 "(Matcher.match fits images to it)")
        feeds = {INPUT_NAMES[0]: np.ascontiguousarray(image0, dtype=np.float32),
                 INPUT_NAMES[1]: np.ascontiguousarray(image1, dtype=np.float32)}
        k0, k1, conf, valid = self.session.run(list(OUTPUT_NAMES), feeds)
        keep = valid[0].astype(bool)
        return (k0[0][keep].astype(np.float32), k1[0][keep].astype(np.float32), conf[0][keep].astype(np.float32))
