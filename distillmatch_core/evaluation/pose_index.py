"""Finding relative-pose index files and reading them with the reader of their format."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from distillmatch_core.evaluation.megadepth_index import read_megadepth_scene_info
from distillmatch_core.evaluation.metu_vistir_index import read_metu_vistir_index
from distillmatch_core.evaluation.pose_pair_spec import PoseIndexError, PosePairSpec
from distillmatch_core.evaluation.scene_index_file import load_index_npz

INDEX_FORMATS = ("auto", "metu-vistir", "megadepth")


def detect_index_format(index_path: Path) -> str:
    """METU-VisTIR indices are the ones that carry distortion coefficients."""
    keys = load_index_npz(index_path, ("pair_infos",))
    return "metu-vistir" if "distortion_coefs" in keys else "megadepth"


def index_files(source: Path) -> List[Path]:
    """An ``.npz`` file, or every ``.npz`` directly inside a folder (sorted)."""
    source = Path(source)
    if source.is_file():
        return [source]
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix == ".npz" and p.is_file())
        if not files:
            raise PoseIndexError(f"no .npz index files in {source}")
        return files
    raise PoseIndexError(f"no such index file or folder: {source}")


def load_pose_index(source: Path, image_root: Optional[Path] = None, index_format: str = "auto"
                    ) -> List[PosePairSpec]:
    """All pairs of one index file or a folder of them; each file becomes its own dataset row."""
    if index_format not in INDEX_FORMATS:
        raise PoseIndexError(f"unknown index format {index_format!r}; use one of {', '.join(INDEX_FORMATS)}")
    specs: List[PosePairSpec] = []
    for path in index_files(source):
        file_format = detect_index_format(path) if index_format == "auto" else index_format
        reader = read_metu_vistir_index if file_format == "metu-vistir" else read_megadepth_scene_info
        specs.extend(reader(path, image_root))
    return specs
