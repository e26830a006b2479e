"""DistillMatch as a benchmark method, loaded lazily through the public ``Matcher`` API.

Importing this module does not import torch; the model is loaded on first use
and cached, so the same checkpoint serves every dataset and modality pair of a run.
"""
from __future__ import annotations

import functools
from typing import Any, Optional, Tuple

import numpy as np

from distillmatch_core.evaluation.methods import MatchFunction, MethodError, MethodOptions


@functools.lru_cache(maxsize=2)
def load_matcher(weights: str, backend: Optional[str], device: str, size: Optional[int],
                 max_matches: Optional[int] = None, cpu_bf16: bool = False) -> Any:
    """``Matcher.from_pretrained`` with load failures turned into ``MethodError``."""
    try:
        from distillmatch_core import Matcher
    except ImportError as exc:
        raise MethodError(f"the DistillMatch matcher is not available in this installation: {exc}") from None
    try:
        return Matcher.from_pretrained(weights, backend=backend, device=device, size=size, max_matches=max_matches,
                                       cpu_bf16=cpu_bf16)  # False is no problem for exported backends
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as exc:
        raise MethodError(f"cannot load DistillMatch weights {weights!r} with backend {backend or 'auto'} "
                          f"on {device!r}: {exc}") from None


def distillmatch_match_function(options: MethodOptions) -> MatchFunction:
    """A match function running the checkpoint with the modalities of the benchmark's images."""
    matcher = load_matcher(options.weights, options.backend, options.device, options.size, options.max_matches,
                           options.cpu_bf16)

    def match(image0: np.ndarray, image1: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        result = matcher.match(image0, image1, modality0=options.modality0, modality1=options.modality1)
        return result.keypoints0, result.keypoints1

    return match
