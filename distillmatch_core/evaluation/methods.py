"""The method abstraction of the benchmarks, and resolution of ``--method`` specs.

A method is any callable ``match(image0, image1) -> (keypoints0, keypoints1)``:
numpy images (H, W) / (H, W, C) of any depth in, two (N, 2) arrays of x/y pixel
coordinates in the images as given out. Built-ins are ``sift``, ``orb`` and
``distillmatch``; anything else of the form ``package.module:factory`` is
imported and ``factory()`` must return such a callable, so a new matcher can be
benchmarked without editing this package.
"""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Tuple

import numpy as np

MatchFunction = Callable[[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]

BUILTIN_METHODS = ("sift", "orb", "distillmatch")


class MethodError(ValueError):
    """A ``--method`` spec cannot be resolved, or a matcher returned malformed output."""


@dataclass(frozen=True)
class MethodOptions:
    """What the built-in DistillMatch method needs; classical methods ignore it."""

    weights: str = "default"
    backend: Optional[str] = None  # None: the Matcher's rule (matcher.default_backend)
    device: str = "cpu"
    size: Optional[int] = None  # the Matcher's longer side; None: the model's inference size, 0: as given
    max_matches: Optional[int] = None  # torch backend: the N most confident matches; None: every match
    cpu_bf16: bool = False  # torch backend on a CPU: TorchBackend's cpu_bf16 (bfloat16 where it pays)
    modality0: str = "visible"
    modality1: str = "infrared"


@dataclass
class EvaluationMethod:
    name: str  # as shown in result tables
    match: MatchFunction


@dataclass
class TimedMatches:
    keypoints0: np.ndarray  # (N, 2) float64 pixels of image0
    keypoints1: np.ndarray  # (N, 2) float64 pixels of image1
    seconds: float  # wall time of the matcher call alone


def resolve_method(spec: str, options: MethodOptions = MethodOptions()) -> EvaluationMethod:
    """``sift`` | ``orb`` | ``distillmatch`` | ``module.path:factory`` -> a named match function."""
    spec = spec.strip()
    if spec == "sift":
        from distillmatch_core.evaluation.classical_matchers import SiftRatioMatcher
        return EvaluationMethod("sift", SiftRatioMatcher())
    if spec == "orb":
        from distillmatch_core.evaluation.classical_matchers import OrbRatioMatcher
        return EvaluationMethod("orb", OrbRatioMatcher())
    if spec == "distillmatch":
        from distillmatch_core.evaluation.distillmatch_method import distillmatch_match_function
        from distillmatch_core.matcher import default_backend
        backend = options.backend or default_backend(options.weights)
        name = f"distillmatch ({Path(options.weights).name}, {backend})"
        return EvaluationMethod(name, distillmatch_match_function(options))
    if ":" in spec:
        return EvaluationMethod(spec, load_plugin_method(spec))
    raise MethodError(f"unknown method {spec!r}; use one of {', '.join(BUILTIN_METHODS)} or module.path:factory")


def load_plugin_method(spec: str) -> MatchFunction:
    """Import ``module.path:factory`` and return ``factory()``, checked to be callable."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise MethodError(f"plug-in method {spec!r} must look like package.module:factory")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MethodError(f"cannot import plug-in module {module_name!r}: {exc}") from None
    factory = getattr(module, attribute, None)
    if factory is None or not callable(factory):
        raise MethodError(f"plug-in module {module_name!r} has no callable {attribute!r}")
    try:
        match_fn = factory()
    except Exception as exc:  # a plug-in boundary: report its failure as one line, like any bad spec
        raise MethodError(f"{spec}() failed: {type(exc).__name__}: {exc}") from None
    if not callable(match_fn):
        raise MethodError(f"{spec}() returned {type(match_fn).__name__}, expected a match function")
    return match_fn


def as_keypoint_arrays(output: object) -> Tuple[np.ndarray, np.ndarray]:
    """A matcher's output -> two (N, 2) float64 arrays; accepts a pair or a MatchResult-like object."""
    if hasattr(output, "keypoints0") and hasattr(output, "keypoints1"):
        raw0, raw1 = output.keypoints0, output.keypoints1
    elif isinstance(output, (tuple, list)) and len(output) >= 2:
        raw0, raw1 = output[0], output[1]
    else:
        raise MethodError(f"a match function must return (keypoints0, keypoints1), got {type(output).__name__}")
    keypoints0 = np.asarray(raw0, dtype=np.float64)
    keypoints1 = np.asarray(raw1, dtype=np.float64)
    if keypoints0.size == 0 and keypoints1.size == 0:
        return np.zeros((0, 2)), np.zeros((0, 2))
    if keypoints0.ndim != 2 or keypoints0.shape[1] != 2 or keypoints0.shape != keypoints1.shape:
        raise MethodError(f"keypoint arrays must both be (N, 2); got {keypoints0.shape} and {keypoints1.shape}")
    return keypoints0, keypoints1


def run_matcher(match_fn: MatchFunction, image0: np.ndarray, image1: np.ndarray) -> TimedMatches:
    """Call the matcher once, validate its output and time it."""
    start = time.perf_counter()
    output = match_fn(image0, image1)
    seconds = time.perf_counter() - start
    keypoints0, keypoints1 = as_keypoint_arrays(output)
    return TimedMatches(keypoints0, keypoints1, seconds)
