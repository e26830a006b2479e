"""Reader of MegaDepth scene_info indices as preprocessed for LoFTR-family training and testing.

One ``.npz`` per scene with, per image index: ``image_paths`` (relative to the data root;
None for images outside the reconstruction), ``depth_paths`` (unused here),
``intrinsics`` (3x3), ``poses`` (4x4 world-to-camera); and ``pair_infos`` whose rows are
``((idx0, idx1), overlap_score, central_matches)`` (or plain (idx0, idx1)).
Images are already undistorted (D2-Net preprocessing).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np

from distillmatch_core.evaluation.pose_pair_spec import PoseIndexError, PosePairSpec, find_image_root
from distillmatch_core.evaluation.scene_index_file import load_index_npz, pair_indices

MEGADEPTH_KEYS = ("pair_infos", "image_paths", "intrinsics", "poses")


def read_megadepth_scene_info(index_path: Path, image_root: Optional[Path] = None) -> List[PosePairSpec]:
    """-> one ``PosePairSpec`` (RGB idx0, RGB idx1) per row of ``pair_infos``."""
    index_path = Path(index_path)
    info = load_index_npz(index_path, MEGADEPTH_KEYS)
    image_paths = info["image_paths"]
    pairs = pair_indices(info["pair_infos"], index_path)
    if image_root is None:
        image_root = find_image_root(index_path, (str(image_paths[i]) for i, _ in pairs[:1]))
    specs = []
    for number, (i, j) in enumerate(pairs):
        if image_paths[i] is None or image_paths[j] is None:
            raise PoseIndexError(f"{index_path}: pair ({i}, {j}) refers to an image without a path")
        try:
            T_0to1 = np.asarray(info["poses"][j], np.float64) @ np.linalg.inv(np.asarray(info["poses"][i], np.float64))
            specs.append(PosePairSpec(
                dataset=index_path.stem,
                pair_id=f"{number:05d}_{i}_{j}",
                image0_path=Path(image_root) / str(image_paths[i]),
                image1_path=Path(image_root) / str(image_paths[j]),
                K0=np.asarray(info["intrinsics"][i], dtype=np.float64).reshape(3, 3),
                K1=np.asarray(info["intrinsics"][j], dtype=np.float64).reshape(3, 3),
                distortion0=None,
                distortion1=None,
                T_0to1=T_0to1,
            ))
        except (IndexError, ValueError, np.linalg.LinAlgError) as exc:
            raise PoseIndexError(f"{index_path}: malformed entry for pair ({i}, {j}): {exc}") from None
    return specs
