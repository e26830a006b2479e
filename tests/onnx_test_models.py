"""Small checkpoints, exports, real dev-pair canvases and a match-set comparison for the export/backend tests."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch

from distillmatch_core.checkpoint import load_model, save_checkpoint
from distillmatch_core.config import preset
from distillmatch_core.data.splits import default_data_root, load_split
from distillmatch_core.image_io import read_image
from distillmatch_core.image_preprocessing import prepare_pair
from distillmatch_core.model.distillmatch import DistillMatch
from distillmatch_core.thermal_normalization import ThermalNormalization

SHARED_MANIFEST = default_data_root() / "manifest.csv"
HAS_SHARED_DATA = SHARED_MANIFEST.is_file()


def make_checkpoint(path: Path, preset_name: str = "tiny", seed: int = 0) -> Path:
    torch.manual_seed(seed)
    cfg = preset(preset_name)
    save_checkpoint(path, DistillMatch(cfg).eval(), cfg)
    return path


def dev_pairs(count: int) -> List[Tuple[np.ndarray, np.ndarray]]:
    """The first ``count`` real RGB-thermal pairs of the dev split, as read from disk."""
    return [(read_image(p.visible_path), read_image(p.infrared_path)) for p in load_split("dev")[:count]]


def canvases(pair, input_size: Tuple[int, int]):
    """A real pair -> the two (1, 1, H, W) float32 canvases every backend receives."""
    c0, c1, _, _ = prepare_pair(pair[0], pair[1], ThermalNormalization(), fixed_size=input_size)
    return c0, c1


def make_calibrated_random_checkpoint(path: Path, pair, input_size: Tuple[int, int], seed: int = 0) -> Path:
    """Random-weights ``lite`` whose thresholds are lowered so that about a quarter of the
    mutual-nearest-neighbour candidates on ``pair`` pass both the coarse and the fine test.

    Random weights give confidences around 1/L^2, far below the trained theta_c; the median
    of the candidates' scores keeps the threshold inside the score distribution, so the
    validity mask really cuts (it is exercised, not all-true).
    """
    torch.manual_seed(seed)
    cfg = preset("lite")
    cfg.coarse.threshold = 0.0
    cfg.fine.threshold = 0.0
    model = DistillMatch(cfg).eval()
    c0, c1 = canvases(pair, input_size)
    with torch.no_grad():
        out = model(torch.from_numpy(c0), torch.from_numpy(c1))
    cfg.coarse.threshold = float(out["coarse_confidence"].median())
    cfg.fine.threshold = float(out["fine_score"].median())
    save_checkpoint(path, model, cfg)
    return path


@torch.no_grad()
def torch_static_matches(weights: Path, c0: np.ndarray, c1: np.ndarray, max_matches: int):
    """The reference: eager ``match_static`` on the same canvases -> valid keypoints0/1, confidence."""
    model, _, _ = load_model(weights, "cpu")
    k0, k1, conf, valid = model.match_static(torch.from_numpy(c0), torch.from_numpy(c1), max_matches)
    keep = valid[0]
    return k0[0][keep].numpy(), k1[0][keep].numpy(), conf[0][keep].numpy()


@dataclass
class MatchSetComparison:
    count_a: int
    count_b: int
    identical: int  # matches of a with a partner in b within tolerance (both keypoints)
    max_deviation: float  # largest coordinate deviation over the identical ones (px)
    index_a: np.ndarray = field(default_factory=lambda: np.zeros(0, int))  # the identical ones in a ...
    index_b: np.ndarray = field(default_factory=lambda: np.zeros(0, int))  # ... and their partners in b

    @property
    def identical_fraction(self) -> float:
        return self.identical / max(self.count_a, self.count_b, 1)


def compare_match_sets(a0: np.ndarray, a1: np.ndarray, b0: np.ndarray, b1: np.ndarray,
                       tolerance: float = 0.5) -> MatchSetComparison:
    """Order-free comparison: each match of a is paired with the nearest match of b (max-norm over the
    four coordinates); it is identical when that distance is within ``tolerance`` pixels."""
    if len(a0) == 0 or len(b0) == 0:
        return MatchSetComparison(len(a0), len(b0), 0, 0.0)
    a = np.concatenate([a0, a1], axis=1).astype(np.float64)
    b = np.concatenate([b0, b1], axis=1).astype(np.float64)
    all_pairs = np.abs(a[:, None, :] - b[None, :, :]).max(axis=2)
    nearest = all_pairs.argmin(axis=1)
    distance = all_pairs[np.arange(len(a)), nearest]
    close = distance <= tolerance
    return MatchSetComparison(len(a), len(b), int(close.sum()), float(distance[close].max()) if close.any() else 0.0,
                              np.flatnonzero(close), nearest[close])


def corner_error(H_a: np.ndarray, H_b: np.ndarray, size_hw: Tuple[int, int]) -> float:
    """Mean distance (px) between the image corners mapped by two homographies."""
    h, w = size_hw
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], dtype=np.float64).T
    pa, pb = H_a @ corners, H_b @ corners
    pa, pb = pa[:2] / pa[2], pb[:2] / pb[2]
    return float(np.linalg.norm(pa - pb, axis=0).mean())


def parity_weights() -> Optional[Path]:
    """A trained checkpoint for the parity test: $DISTILLMATCH_PARITY_WEIGHTS, else the packaged default."""
    import os

    from distillmatch_core.matcher import DEFAULT_WEIGHTS

    override = os.environ.get("DISTILLMATCH_PARITY_WEIGHTS")
    if override:
        return Path(override)
    return DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.is_file() else None
