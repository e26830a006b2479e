"""One relative-pose test pair as listed by a dataset index (before any image is read)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import numpy as np


class PoseIndexError(ValueError):
    """An index file is missing, unreadable, or lacks the keys of its format."""


@dataclass(frozen=True)
class PosePairSpec:
    dataset: str  # table row name, e.g. the index file's stem
    pair_id: str
    image0_path: Path
    image1_path: Path
    K0: np.ndarray  # (3, 3) intrinsics of image0 as stored (original resolution, distorted)
    K1: np.ndarray  # (3, 3)
    distortion0: Optional[np.ndarray]  # OpenCV coefficients (k1, k2, p1, p2[, k3...]) or None
    distortion1: Optional[np.ndarray]
    T_0to1: np.ndarray  # (4, 4) camera0 -> camera1 (metric or up to scale)
    modality0: str = "visible"
    modality1: str = "visible"


def find_image_root(index_path: Path, relative_paths: Iterable[str]) -> Path:
    """The nearest folder, from the index's own folder upwards, under which the first image exists.

    Index files usually live in a sub-folder of the dataset (``<root>/index/...``) while their
    image paths are relative to ``<root>``; searching upwards finds it without an option.
    """
    first = next(iter(relative_paths), None)
    folder = Path(index_path).resolve().parent
    if first is None:
        return folder
    for candidate in (folder, *folder.parents):
        if (candidate / first).is_file():
            return candidate
    raise PoseIndexError(f"{index_path}: cannot find image {first!r} under the index folder or its parents; "
                         "pass --image-root")
