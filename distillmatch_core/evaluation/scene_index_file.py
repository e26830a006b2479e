"""Loading the ``.npz`` scene indices shared by the METU-VisTIR and MegaDepth formats."""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from distillmatch_core.evaluation.pose_pair_spec import PoseIndexError


def load_index_npz(index_path: Path, required_keys: Sequence[str]) -> Dict[str, np.ndarray]:
    """All arrays of the file (object arrays allowed: these indices store lists and tuples)."""
    index_path = Path(index_path)
    if not index_path.is_file():
        raise PoseIndexError(f"index file not found: {index_path}")
    try:
        with np.load(index_path, allow_pickle=True) as npz:
            info = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise PoseIndexError(f"cannot read index {index_path}: {exc}") from None
    missing = [key for key in required_keys if key not in info]
    if missing:
        raise PoseIndexError(f"{index_path}: missing keys {missing} (has {sorted(info)})")
    return info


def pair_indices(pair_infos: np.ndarray, index_path: Path) -> List[Tuple[int, int]]:
    """Rows ``(idx0, idx1)`` or ``((idx0, idx1), score, ...)`` -> [(idx0, idx1)]."""
    pairs = []
    for row in pair_infos:
        first = row[0]
        indices = first if np.ndim(first) == 1 and len(first) == 2 else row
        try:
            i, j = int(indices[0]), int(indices[1])
        except (TypeError, ValueError, IndexError):
            raise PoseIndexError(f"{index_path}: cannot read an image index pair from pair_infos row {row!r}") from None
        pairs.append((i, j))
    return pairs
