"""The fixed train / dev split of the aligned RGB-thermal sets in ``shared/data``.

Frames that share a clip or scene are strongly correlated, so the split is by
clip for ``m3svd_val`` (20 consecutive frames per clip) and by a fixed stride
over sorted pair ids for the sets whose pairs are independent scenes. The rule
is code, not a list, so it also applies to a user's own manifest of the same
format; ``docs/dev_split.md`` documents it.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

# m3svd clips held out for validation (2 of 9: one day street, one night market).
M3SVD_DEV_CLIPS = ("0111_1803", "0115_1834")
# For sets of independent scenes every DEV_STRIDE-th pair (sorted by id) is dev.
DEV_STRIDE = 5


@dataclass(frozen=True)
class AlignedPair:
    set_name: str
    pair_id: str
    visible_path: Path
    infrared_path: Path

    @property
    def key(self) -> str:
        return f"{self.set_name}/{self.pair_id}"


def default_data_root() -> Path:
    """``../shared/data`` next to the repository checkout (where CI puts it)."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def read_manifest(manifest: Path) -> List[AlignedPair]:
    """Manifest CSV with columns set,pair_id,visible_path,infrared_path (paths relative to the CSV)."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(f"manifest not found: {manifest}")
    root = manifest.parent
    pairs = []
    with open(manifest, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"visible_path", "infrared_path"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{manifest}: missing columns {sorted(missing)}")
        for i, row in enumerate(reader):
            pairs.append(AlignedPair(
                set_name=row.get("set") or "pairs",
                pair_id=row.get("pair_id") or f"{i:06d}",
                visible_path=(root / row["visible_path"]).resolve(),
                infrared_path=(root / row["infrared_path"]).resolve(),
            ))
    return pairs


def read_pair_folder(folder: Path) -> List[AlignedPair]:
    """A folder with ``visible/`` and ``infrared/`` sub-folders holding files of the same stem."""
    folder = Path(folder)
    vis_dir, ir_dir = folder / "visible", folder / "infrared"
    if not vis_dir.is_dir() or not ir_dir.is_dir():
        raise FileNotFoundError(f"{folder}: expected sub-folders visible/ and infrared/")
    ir_by_stem = {p.stem: p for p in sorted(ir_dir.iterdir()) if p.is_file()}
    pairs = []
    for vis in sorted(vis_dir.iterdir()):
        if vis.is_file() and vis.stem in ir_by_stem:
            pairs.append(AlignedPair(folder.name, vis.stem, vis.resolve(), ir_by_stem[vis.stem].resolve()))
    return pairs


def load_pairs(source: Optional[Path] = None) -> List[AlignedPair]:
    """A manifest CSV, a visible/infrared folder, or (None) the shared data manifest."""
    if source is None:
        source = default_data_root() / "manifest.csv"
    source = Path(source)
    if source.is_dir():
        if (source / "manifest.csv").is_file():
            return read_manifest(source / "manifest.csv")
        return read_pair_folder(source)
    return read_manifest(source)


def is_dev(pair: AlignedPair, index_in_set: int) -> bool:
    if pair.set_name.startswith("m3svd"):
        return any(pair.pair_id.startswith(clip) for clip in M3SVD_DEV_CLIPS)
    return index_in_set % DEV_STRIDE == DEV_STRIDE - 1


def split_pairs(pairs: List[AlignedPair]) -> Dict[str, List[AlignedPair]]:
    """-> {"train": [...], "dev": [...]}, deterministic, disjoint."""
    by_set: Dict[str, List[AlignedPair]] = {}
    for p in pairs:
        by_set.setdefault(p.set_name, []).append(p)
    out: Dict[str, List[AlignedPair]] = {"train": [], "dev": []}
    for set_name in sorted(by_set):
        for i, p in enumerate(sorted(by_set[set_name], key=lambda q: q.pair_id)):
            out["dev" if is_dev(p, i) else "train"].append(p)
    return out


def load_split(split: str, source: Optional[Path] = None) -> List[AlignedPair]:
    if split not in ("train", "dev", "all"):
        raise ValueError(f"unknown split {split!r}; use train, dev or all")
    pairs = load_pairs(source)
    return pairs if split == "all" else split_pairs(pairs)[split]
