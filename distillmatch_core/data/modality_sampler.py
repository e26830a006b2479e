"""Per-pair random choice of image modalities for cross-modal matcher training (the data engine).

For one training sample (a visible RGB image and, for aligned RGB-thermal pairs, its
thermal image) the sampler renders

* image 0, the visible side: usually the visible image itself (grayscale), sometimes a
  procedural modality (``visible_side_weights``);
* image 1, the infrared side: real thermal when the pair has it, V2I-GAN pseudo-infrared
  when a generator is available, or a procedural modality (``weights``).

Both outputs are uint8 (H, W) of the input size and purely photometric transforms of their
source, so the caller's geometric warp and matching ground truth stay exact (apply the warp
before or after the sampler, to the image and the keypoints alike).

Leak prevention: if the two rendered images are pixel-identical (e.g. grayscale on both
sides), image 0 is redrawn without that modality unless ``allow_identical_pair`` - a
matcher must never learn the trivial identity match from such pairs.

Frequencies: image 1's modality follows ``weights`` restricted to the modalities available
for the sample (``real_thermal`` needs a thermal image, ``pseudo_infrared`` a generator) and
renormalised. Image 0's modality follows ``visible_side_weights`` conditioned on not producing
an identical pair.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import cv2
import numpy as np

from distillmatch_core.data.procedural_modalities import (
    INFRARED,
    PROCEDURAL_MODALITIES,
    thermal_sensor_model,
)
from distillmatch_core.thermal_normalization import normalize_to_uint8_gray

REAL_THERMAL = "real_thermal"
PSEUDO_INFRARED = "pseudo_infrared"
# The modality used when every weighted choice for image 0 would leak: its sensor noise
# guarantees an image different from anything deterministic.
LEAK_FALLBACK_MODALITY = "thermal_sim"

# A visible->infrared translator: uint8 (H, W, 3) RGB -> (H, W) or (h, w) gray image.
# ``distillmatch_core.v2i_gan.translator.V2IGanTranslator`` is one.
VisibleToInfrared = Callable[[np.ndarray], np.ndarray]


def _default_infrared_side_weights() -> Dict[str, float]:
    return {REAL_THERMAL: 1.0, "grayscale": 1.0, "inverted": 0.5, "sketch": 0.5, "thermal_sim": 1.0,
            PSEUDO_INFRARED: 1.0}


def _default_visible_side_weights() -> Dict[str, float]:
    return {"grayscale": 8.0, "sketch": 1.0, "inverted": 0.5, "thermal_sim": 0.5}


@dataclass
class ModalitySamplerConfig:
    # Image 1 (infrared side): relative weight per modality name.
    weights: Dict[str, float] = field(default_factory=_default_infrared_side_weights)
    # Image 0 (visible side): relative weight per modality name.
    visible_side_weights: Dict[str, float] = field(default_factory=_default_visible_side_weights)
    allow_identical_pair: bool = False
    # V2I-GAN generator for "pseudo_infrared": "" = none, "default" = the packaged
    # distillmatch_core/assets/v2i_gan_generator.pt when present, or a checkpoint path.
    # Ignored when a generator object is passed to ModalitySampler.
    pseudo_infrared_generator: str = "default"
    # The GAN runs on the image downscaled to at most this long side and is resized back
    # (geometry is kept); 0 = the scale the generator was trained at (from its checkpoint).
    pseudo_infrared_max_side: int = 0


@dataclass
class SampledPair:
    image0: np.ndarray  # (H, W) uint8, visible side
    image1: np.ndarray  # (H, W) uint8, infrared side
    label0: str  # "visible" | "infrared": what the CEFG classifier should predict
    label1: str
    modality0: str  # the modality name that produced image0, e.g. "grayscale"
    modality1: str


def modality_label(name: str) -> str:
    """Modality name -> CEFG class ("visible" or "infrared")."""
    if name in (REAL_THERMAL, PSEUDO_INFRARED):
        return INFRARED
    try:
        return PROCEDURAL_MODALITIES[name].label
    except KeyError:
        raise ValueError(f"unknown modality {name!r}; known: {sorted(known_modalities())}") from None


def known_modalities() -> Tuple[str, ...]:
    return (REAL_THERMAL, PSEUDO_INFRARED, *PROCEDURAL_MODALITIES)


class ModalitySampler:
    """Renders a (visible side, infrared side) pair of uint8 gray images of unchanged geometry."""

    def __init__(self, config: Optional[ModalitySamplerConfig] = None,
                 generator: Optional[VisibleToInfrared] = None):
        self.config = config or ModalitySamplerConfig()
        for side, weights in (("weights", self.config.weights),
                              ("visible_side_weights", self.config.visible_side_weights)):
            for name, weight in weights.items():
                modality_label(name)  # raises on unknown names
                if not np.isfinite(weight) or weight < 0:
                    raise ValueError(f"ModalitySamplerConfig.{side}[{name!r}] must be >= 0, got {weight}")
        self.generator = generator
        if self.generator is None and self._wants(PSEUDO_INFRARED):
            self.generator = self._load_configured_generator()

    # ------------------------------------------------------------------ public API

    def sample_pair(self, visible_rgb: np.ndarray, thermal: Optional[np.ndarray],
                    rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, str, str]:
        """visible_rgb uint8 (H, W, 3) or (H, W); thermal (H, W[, C]) any depth or None
        -> (image0 uint8 (H, W), image1 uint8 (H, W), label0, label1)."""
        s = self.sample_pair_detailed(visible_rgb, thermal, rng)
        return s.image0, s.image1, s.label0, s.label1

    def sample_pair_detailed(self, visible_rgb: np.ndarray, thermal: Optional[np.ndarray],
                             rng: np.random.Generator) -> SampledPair:
        """As ``sample_pair`` but also returns the modality names that were drawn."""
        visible_rgb = np.asarray(visible_rgb)
        if visible_rgb.dtype != np.uint8:
            raise ValueError(f"visible image must be uint8, got {visible_rgb.dtype}")
        if visible_rgb.ndim not in (2, 3):
            raise ValueError(f"visible image must be (H, W) or (H, W, 3), got shape {visible_rgb.shape}")
        thermal_gray = None
        if thermal is not None:
            thermal = np.asarray(thermal)
            if thermal.shape[:2] != visible_rgb.shape[:2]:
                raise ValueError(f"thermal {thermal.shape[:2]} and visible {visible_rgb.shape[:2]} sizes differ; "
                                 "the sampler needs pixel-aligned pairs")
            thermal_gray = normalize_to_uint8_gray(thermal)

        weights1 = self.available_weights(self.config.weights, has_thermal=thermal_gray is not None)
        if not weights1:
            raise ValueError("no modality is available for the infrared side: every weighted choice needs a "
                             "thermal image or a V2I-GAN generator that this sample/sampler does not have")
        name1 = _draw(weights1, rng)
        image1 = self._render(name1, visible_rgb, thermal_gray, rng)

        weights0 = self.available_weights(self.config.visible_side_weights, has_thermal=thermal_gray is not None)
        if not weights0:
            raise ValueError("no modality is available for the visible side (visible_side_weights)")
        while True:
            if not weights0:
                name0 = LEAK_FALLBACK_MODALITY
                image0 = thermal_sensor_model(visible_rgb, rng)
                break
            name0 = _draw(weights0, rng)
            image0 = self._render(name0, visible_rgb, thermal_gray, rng)
            if self.config.allow_identical_pair or not np.array_equal(image0, image1):
                break
            del weights0[name0]
        return SampledPair(image0, image1, modality_label(name0), modality_label(name1), name0, name1)

    def available_weights(self, weights: Dict[str, float], has_thermal: bool) -> Dict[str, float]:
        """The positive weights whose modality can be rendered for a sample (not normalised)."""
        out = {}
        for name, weight in weights.items():
            if weight <= 0:
                continue
            if name == REAL_THERMAL and not has_thermal:
                continue
            if name == PSEUDO_INFRARED and self.generator is None:
                continue
            out[name] = float(weight)
        return out

    # ------------------------------------------------------------------ internals

    def _wants(self, name: str) -> bool:
        return (self.config.weights.get(name, 0) > 0) or (self.config.visible_side_weights.get(name, 0) > 0)

    def _render(self, name: str, visible_rgb: np.ndarray, thermal_gray: Optional[np.ndarray],
                rng: np.random.Generator) -> np.ndarray:
        if name == REAL_THERMAL:
            assert thermal_gray is not None
            return thermal_gray
        if name == PSEUDO_INFRARED:
            return self._pseudo_infrared(visible_rgb)
        return PROCEDURAL_MODALITIES[name].apply(visible_rgb, rng)

    def _pseudo_infrared(self, visible_rgb: np.ndarray) -> np.ndarray:
        rgb = visible_rgb if visible_rgb.ndim == 3 else np.repeat(visible_rgb[..., None], 3, axis=2)
        out = np.asarray(self.generator(np.ascontiguousarray(rgb[..., :3])))
        out = normalize_to_uint8_gray(out) if (out.dtype != np.uint8 or out.ndim == 3) else out
        h, w = visible_rgb.shape[:2]
        if out.shape != (h, w):
            # A pure rescale of the whole frame: pixel centres map back exactly.
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(out)

    def _load_configured_generator(self) -> Optional[VisibleToInfrared]:
        spec = self.config.pseudo_infrared_generator
        if not spec:
            reason = "no generator configured (pseudo_infrared_generator is empty)"
        else:
            path = default_generator_path() if spec == "default" else Path(spec)
            if not path.is_file():
                reason = f"generator checkpoint not found: {path}"
            else:
                try:
                    from distillmatch_core.v2i_gan.translator import V2IGanTranslator
                    max_side = self.config.pseudo_infrared_max_side or None
                    return V2IGanTranslator.from_checkpoint(path, max_side=max_side)
                except Exception as exc:  # a broken generator must not stop matcher training
                    reason = f"could not load the V2I-GAN generator {path}: {exc}"
        warnings.warn(f"ModalitySampler: 'pseudo_infrared' is skipped from the modality mix: {reason}",
                      RuntimeWarning, stacklevel=3)
        return None


def default_generator_path() -> Path:
    """The V2I-GAN visible->infrared generator shipped with the package (same path as
    v2i_gan.translator.default_generator_path, repeated so this module does not import torch)."""
    return Path(__file__).resolve().parents[1] / "assets" / "v2i_gan_generator.pt"


def _draw(weights: Dict[str, float], rng: np.random.Generator) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]
