"""MegaDepth as preprocessed for LoFTR-family training (scene_info ``.npz`` + depth ``.h5``).

scene_info keys: ``image_paths`` (relative to the data root), ``depth_paths``, ``intrinsics``
(3x3 each), ``poses`` (4x4 world->camera each), ``pair_infos`` (rows of ((idx0, idx1), overlap, ...)).
Each scene file is opened lazily and only the two images and depth maps of a sample are read.

Augmentation as in the paper (Sec. 4.1): random HSV jitter; optionally one image of each pair
is rendered into another modality (pseudo-infrared / procedural) by the modality sampler.
Sample: image0/1 (1, H, W) float32 [0, 1] padded into ``image_size``; depth0/1 (H, W); K0/K1 (3, 3)
scaled to the resized image; T_0to1 (4, 4); modality0/1 () long.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from distillmatch_core.data.modality_sampler import ModalitySampler
from distillmatch_core.data.photometric_augmentation import PhotometricConfig, hsv_jitter
from distillmatch_core.evaluation.image_preparation import scale_intrinsics
from distillmatch_core.image_io import read_image
from distillmatch_core.thermal_normalization import to_gray
from distillmatch_core.training.sample_stream import epoch_position


@dataclass
class MegaDepthDataConfig:
    root: str = ""  # folder the image/depth paths are relative to
    index_dir: str = ""  # folder of scene_info .npz files
    image_size: Tuple[int, int] = (640, 640)  # (W, H) canvas; longer side fitted, rest padded
    min_overlap: float = 0.1
    max_overlap: float = 0.7
    pseudo_modality_probability: float = 0.5  # translate one image of the pair
    hsv_jitter: bool = True


def read_depth(path: Path) -> np.ndarray:
    path = Path(path)
    if path.suffix == ".h5":
        import h5py
        with h5py.File(path, "r") as fh:
            return np.asarray(fh["depth"], dtype=np.float32)
    if path.suffix == ".npy":
        return np.load(path).astype(np.float32)
    raise ValueError(f"unsupported depth file {path} (expected .h5 or .npy)")


class MegaDepthDataset(Dataset):
    def __init__(self, cfg: MegaDepthDataConfig, scene_files: Sequence[Path] | None = None, seed: int = 0,
                 sampler: ModalitySampler | None = None):
        self.cfg = cfg
        self.root = Path(cfg.root)
        files = list(scene_files) if scene_files is not None else sorted(Path(cfg.index_dir).glob("*.npz"))
        if not files:
            raise FileNotFoundError(f"no scene_info .npz files in {cfg.index_dir!r}")
        self.pairs: List[Tuple[int, int, int]] = []  # (scene, idx0, idx1): small, kept in memory
        self.scene_files = files
        for s, f in enumerate(files):
            with np.load(f, allow_pickle=True) as info:
                for row in info["pair_infos"]:
                    (i0, i1), overlap = row[0], row[1]
                    if cfg.min_overlap <= float(overlap) <= cfg.max_overlap:
                        self.pairs.append((s, int(i0), int(i1)))
        self.seed = seed
        self.sampler = sampler or ModalitySampler()
        self._scene_cache: Dict[int, dict] = {}

    def __len__(self) -> int:
        # Indices are global sample counters (see training/sample_stream.py).
        return 2 ** 62

    def _scene(self, s: int) -> dict:
        if s not in self._scene_cache:
            with np.load(self.scene_files[s], allow_pickle=True) as info:
                self._scene_cache = {s: {k: info[k] for k in ("image_paths", "depth_paths", "intrinsics", "poses")}}
        return self._scene_cache[s]

    def _load(self, scene: dict, idx: int, rng: np.random.Generator):
        image = read_image(self.root / str(scene["image_paths"][idx]))
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if self.cfg.hsv_jitter:
            image = hsv_jitter(image, rng, PhotometricConfig())
        depth = read_depth(self.root / str(scene["depth_paths"][idx]))
        K = np.asarray(scene["intrinsics"][idx], dtype=np.float64).copy()
        h, w = image.shape[:2]
        box_w, box_h = self.cfg.image_size
        s = min(box_w / w, box_h / h)
        nw, nh = int(round(w * s)), int(round(h * s))
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        depth = cv2.resize(depth, (nw, nh), interpolation=cv2.INTER_NEAREST)
        K = scale_intrinsics(K, (nw / w, nh / h))
        return image, depth, K

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, 13, int(index)])
        s, i0, i1 = self.pairs[epoch_position(index, len(self.pairs), self.seed)]
        scene = self._scene(s)
        img0, depth0, K0 = self._load(scene, i0, rng)
        img1, depth1, K1 = self._load(scene, i1, rng)
        gray0 = to_gray(img0)
        labels = ("visible", "visible")
        if rng.random() < self.cfg.pseudo_modality_probability:
            _, gray1, _, label1 = self.sampler.sample_pair(img1, None, rng)
            labels = ("visible", label1)
        else:
            gray1 = to_gray(img1)
        T0, T1 = np.asarray(scene["poses"][i0], np.float64), np.asarray(scene["poses"][i1], np.float64)
        T_0to1 = T1 @ np.linalg.inv(T0)
        box_w, box_h = self.cfg.image_size

        def canvas(a: np.ndarray, dtype) -> torch.Tensor:
            out = np.zeros((box_h, box_w), dtype=dtype)
            out[:a.shape[0], :a.shape[1]] = a
            return torch.from_numpy(out)

        return {
            "image0": (canvas(gray0, np.float32) / 255.0)[None],
            "image1": (canvas(gray1, np.float32) / 255.0)[None],
            "depth0": canvas(depth0, np.float32), "depth1": canvas(depth1, np.float32),
            "K0": torch.from_numpy(K0.astype(np.float32)), "K1": torch.from_numpy(K1.astype(np.float32)),
            "T_0to1": torch.from_numpy(T_0to1.astype(np.float32)),
            "modality0": torch.tensor(0 if labels[0] == "visible" else 1),
            "modality1": torch.tensor(0 if labels[1] == "visible" else 1),
            "index": torch.tensor(int(index)),
        }
