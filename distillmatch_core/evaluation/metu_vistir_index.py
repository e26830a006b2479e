"""Reader of METU-VisTIR scene indices (the XoFTR layout).

One ``.npz`` per scene with, per image index ``i``:
``image_paths[i] = [visible_path, thermal_path]`` (relative to the data root),
``intrinsics[i] = [K_visible, K_thermal]``, ``distortion_coefs[i] = [d_visible, d_thermal]``,
``poses[i]`` a 4x4 world-to-camera transform; and ``pair_infos``, rows (idx0, idx1).
A pair matches the VISIBLE image of idx0 with the THERMAL image of idx1, and
T_0->1 = poses[idx1] @ inv(poses[idx0]).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np

from distillmatch_core.evaluation.pose_pair_spec import PoseIndexError, PosePairSpec, find_image_root
from distillmatch_core.evaluation.scene_index_file import load_index_npz, pair_indices

METU_VISTIR_KEYS = ("pair_infos", "image_paths", "intrinsics", "distortion_coefs", "poses")
VISIBLE, THERMAL = 0, 1


def _camera_pose(poses: np.ndarray, index: int, camera: int) -> np.ndarray:
    pose = np.asarray(poses[index], dtype=np.float64)
    # One pose per index is the documented layout; tolerate a per-camera [visible, thermal] pair too.
    if pose.shape == (2, 4, 4):
        pose = pose[camera]
    if pose.shape != (4, 4):
        raise PoseIndexError(f"expected 4x4 poses, got shape {pose.shape}")
    return pose


def read_metu_vistir_index(index_path: Path, image_root: Optional[Path] = None) -> List[PosePairSpec]:
    """-> one ``PosePairSpec`` (visible idx0, thermal idx1) per row of ``pair_infos``."""
    index_path = Path(index_path)
    info = load_index_npz(index_path, METU_VISTIR_KEYS)
    image_paths = info["image_paths"]
    pairs = pair_indices(info["pair_infos"], index_path)
    if image_root is None:
        image_root = find_image_root(index_path, (str(image_paths[i][VISIBLE]) for i, _ in pairs[:1]))
    specs = []
    for number, (i, j) in enumerate(pairs):
        try:
            T_0to1 = _camera_pose(info["poses"], j, THERMAL) @ np.linalg.inv(_camera_pose(info["poses"], i, VISIBLE))
            specs.append(PosePairSpec(
                dataset=index_path.stem,
                pair_id=f"{number:05d}_{i}_{j}",
                image0_path=Path(image_root) / str(image_paths[i][VISIBLE]),
                image1_path=Path(image_root) / str(image_paths[j][THERMAL]),
                K0=np.asarray(info["intrinsics"][i][VISIBLE], dtype=np.float64).reshape(3, 3),
                K1=np.asarray(info["intrinsics"][j][THERMAL], dtype=np.float64).reshape(3, 3),
                distortion0=np.asarray(info["distortion_coefs"][i][VISIBLE], dtype=np.float64).ravel(),
                distortion1=np.asarray(info["distortion_coefs"][j][THERMAL], dtype=np.float64).ravel(),
                T_0to1=T_0to1,
                modality0="visible",
                modality1="infrared",
            ))
        except (IndexError, ValueError, np.linalg.LinAlgError) as exc:
            raise PoseIndexError(f"{index_path}: malformed entry for pair ({i}, {j}): {exc}") from None
    return specs
