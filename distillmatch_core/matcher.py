"""The inference API: ``Matcher.from_pretrained(...).match(image0, image1)`` -> MatchResult.

Everything between a caller's numpy images and the network lives here: intensity
normalisation (16-bit thermal included), resizing to a longer side, padding to
the stride or fitting a static engine's input, modality routing, and mapping the
keypoints back to ORIGINAL pixels.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

from distillmatch_core.config import modality_index
from distillmatch_core.image_preprocessing import prepare_pair
from distillmatch_core.match_result import MatchResult
from distillmatch_core.pixel_region import Region
from distillmatch_core.thermal_normalization import ThermalNormalization

ASSETS = Path(__file__).resolve().parent / "assets"
DEFAULT_WEIGHTS = ASSETS / "distillmatch_lite.pt"
BACKENDS = ("torch", "onnxruntime", "tensorrt")
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")  # serialized TensorRT engines


def default_backend(weights: Union[str, Path]) -> str:
    """The backend a weights file implies: onnxruntime for .onnx, tensorrt for engines, torch otherwise."""
    suffix = Path(str(weights)).suffix.lower()
    if suffix == ".onnx":
        return "onnxruntime"
    return "tensorrt" if suffix in ENGINE_SUFFIXES else "torch"


def resolve_weights(name_or_path: Union[str, Path]) -> Path:
    if str(name_or_path) == "default":
        if not DEFAULT_WEIGHTS.is_file():
            raise FileNotFoundError(
                f"the packaged default model is missing ({DEFAULT_WEIGHTS}); pass weights explicitly, "
                "e.g. Matcher.from_pretrained('path/to/model.pt') or --weights path/to/model.pt")
        return DEFAULT_WEIGHTS
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    return path


def max_matches_problem(backend: str, max_matches: Optional[int]) -> Optional[str]:
    """Why ``max_matches`` cannot go with ``backend``, or None. An exported graph's slot count is fixed."""
    if max_matches and backend in ("onnxruntime", "tensorrt"):
        return (f"applies to the torch backend only; a {backend} model keeps the number of matches it was "
                "exported with (distillmatch export onnx --max-matches K)")
    return None


# Switches of the torch backend alone (TorchBackend): an exported graph is compiled, and its precision chosen, by
# its runtime.
TORCH_ONLY_SWITCHES = ("torch_compile", "cpu_bf16")


def torch_only_switch_problem(backend: str, name: str, value: Optional[bool]) -> Optional[str]:
    """Why torch-only switch ``name`` (TORCH_ONLY_SWITCHES) set to ``value`` cannot go with ``backend``, or None:
    only True is refused, False and None ask for nothing."""
    if value and backend in ("onnxruntime", "tensorrt"):
        return f"applies to the torch backend only; {backend} optimises the exported graph itself"
    return None


def create_backend(backend: str, weights: Path, device: str, max_matches: Optional[int] = None, **options):
    """``max_matches``: torch only (None = every match); other ``options`` go to the backend as they are."""
    problem = max_matches_problem(backend, max_matches)
    if problem:
        raise ValueError(f"max_matches {problem}")
    for name in TORCH_ONLY_SWITCHES:
        problem = torch_only_switch_problem(backend, name, options.get(name))
        if problem:
            raise ValueError(f"{name} {problem}")
        if backend != "torch":
            options.pop(name, None)  # False: nothing to refuse, and not an option of the exported backends
    if backend == "torch":
        from distillmatch_core.backends.torch_backend import TorchBackend
        return TorchBackend(weights, device, max_matches=max_matches, **options)
    if backend == "onnxruntime":
        from distillmatch_core.backends.onnxruntime_backend import OnnxRuntimeBackend
        return OnnxRuntimeBackend(weights, device, **options)
    if backend == "tensorrt":
        from distillmatch_core.backends.tensorrt_backend import TensorRTBackend
        return TensorRTBackend(weights, device, **options)
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


RegionLike = Union[Tuple[int, int, int, int], Region]


def crop_to_region(image: np.ndarray, region: Optional[RegionLike], name: str) -> Tuple[np.ndarray, np.ndarray]:
    """-> (the image inside ``region``, (2,) float32 offset of its pixels in the whole image)."""
    if region is None:
        return image, np.zeros(2, np.float32)
    if not isinstance(region, Region):
        region = Region(*(int(v) for v in region))
    h, w = image.shape[:2]
    x, y, width, height = region.as_tuple()
    if width <= 0 or height <= 0 or x < 0 or y < 0 or x + width > w or y + height > h:
        raise ValueError(f"{name} {region.as_tuple()} (x, y, width, height) is not a non-empty region "
                         f"inside the {w}x{h} image")
    return region.cut(image), np.array([x, y], np.float32)


class Matcher:
    def __init__(self, backend, size: Optional[int] = None,
                 normalization: Optional[ThermalNormalization] = None):
        """``size``: longer side fed to the network; None = the model's ``inference_size`` (640 unless
        the checkpoint was calibrated for another), 0 = the caller's resolution. Static engines
        (ONNX / TensorRT) always fit their fixed input size instead."""
        self.backend = backend
        if size is None:
            size = getattr(getattr(backend, "config", None), "inference_size", 640)
        self.size = size or None
        self.normalization = normalization or ThermalNormalization()

    @classmethod
    def from_pretrained(cls, name_or_path: Union[str, Path] = "default", device: str = "cpu",
                        backend: Optional[str] = None, size: Optional[int] = None,
                        normalization: Optional[ThermalNormalization] = None, **backend_options) -> "Matcher":
        """``backend`` None or "auto": ``default_backend(weights)``."""
        weights = resolve_weights(name_or_path)
        if backend in (None, "auto"):
            backend = default_backend(weights)
        return cls(create_backend(backend, weights, device, **backend_options), size, normalization)

    @property
    def model_config(self):
        return getattr(self.backend, "config", None)

    def match(self, image0: np.ndarray, image1: np.ndarray, modality0: str = "visible",
              modality1: str = "infrared", roi0: Optional[RegionLike] = None,
              roi1: Optional[RegionLike] = None) -> MatchResult:
        """image0/1: (H, W) or (H, W, 1|3|4) uint8/uint16/float32 numpy arrays of any size.

        roi0/roi1: (x, y, width, height) or a ``pixel_region.Region``: match only inside that part of
        the image (the part the other camera sees, ``common_field_of_view.shared_regions``); keypoints stay in
        the whole image's pixels."""
        for name, image in (("image0", image0), ("image1", image1)):
            if not isinstance(image, np.ndarray):
                raise TypeError(f"{name} must be a numpy array, got {type(image).__name__}")
        shape0, shape1 = image0.shape[:2], image1.shape[:2]
        image0, offset0 = crop_to_region(image0, roi0, "roi0")
        image1, offset1 = crop_to_region(image1, roi1, "roi1")
        # The network routes its first input through TransferA (the visible side). If the caller
        # passes infrared first, swap for the network and swap the answer back.
        swap = self._is_infrared(modality0) and not self._is_infrared(modality1)
        if swap:
            image0, image1 = image1, image0
        t_start = time.perf_counter()
        fixed = getattr(self.backend, "input_size", None)
        canvas0, canvas1, info0, info1 = prepare_pair(image0, image1, self.normalization,
                                                      longer_side=self.size, fixed_size=fixed)
        t_prep = time.perf_counter()
        k0, k1, conf = self.backend.run(canvas0, canvas1)
        t_net = time.perf_counter()
        keep = info0.inside_resized(k0) & info1.inside_resized(k1)
        k0 = info0.to_original(k0[keep])
        k1 = info1.to_original(k1[keep])
        conf = np.clip(conf[keep], 0.0, 1.0)
        if swap:
            k0, k1 = k1, k0
        timings = {"preprocess": t_prep - t_start, "network": t_net - t_prep,
                   "total": time.perf_counter() - t_start}
        return MatchResult(k0 + offset0, k1 + offset1, conf, tuple(shape0), tuple(shape1), timings)

    def _is_infrared(self, modality: str) -> bool:
        cfg = self.model_config
        if cfg is not None:
            return modality_index(cfg, modality) != 0
        return modality.lower() in ("infrared", "thermal", "ir")
