"""Small frame folders and bags for the rosbag tests, made from real aligned pairs in ``../shared/data``."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import pytest

from distillmatch_core.cli.main import main as cli_main
from distillmatch_core.image_io import read_image, write_image

FRAME_SIZE = (160, 120)  # small keeps every test fast
RATE_HZ = 10.0
START_TIME_S = 1_700_000_000.0
CALIBRATION_YAML = """\
image_width: {w}
image_height: {h}
camera_name: {name}
camera_matrix: {{rows: 3, cols: 3, data: [{f}, 0, {cx}, 0, {f}, {cy}, 0, 0, 1]}}
distortion_model: plumb_bob
distortion_coefficients: {{rows: 1, cols: 5, data: [0, 0, 0, 0, 0]}}
rectification_matrix: {{rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}}
projection_matrix: {{rows: 3, cols: 4, data: [{f}, 0, {cx}, 0, 0, {f}, {cy}, 0, 0, 0, 1, 0]}}
"""


def dev_sequence(count: int):
    """The first ``count`` consecutive frames of one dev clip (a real recording, not independent scenes)."""
    from distillmatch_core.data.splits import load_split
    try:
        pairs = load_split("dev")
    except FileNotFoundError as exc:
        pytest.skip(f"shared data not available: {exc}")
    clip = [p for p in pairs if p.set_name.startswith("m3svd")]
    if len(clip) < count:
        pytest.skip("not enough consecutive dev frames in shared data")
    return clip[:count]


def write_frame_folders(root: Path, count: int = 6, names: Optional[Sequence[str]] = None) -> Tuple[Path, Path]:
    """root/rgb and root/thermal with ``count`` resized aligned pairs; returns the two folders."""
    rgb_dir, thermal_dir = root / "rgb", root / "thermal"
    for i, pair in enumerate(dev_sequence(count)):
        name = names[i] if names else f"{i:04d}.png"
        write_image(rgb_dir / name, cv2.resize(read_image(pair.visible_path), FRAME_SIZE, interpolation=cv2.INTER_AREA))
        write_image(thermal_dir / name,
                    cv2.resize(read_image(pair.infrared_path), FRAME_SIZE, interpolation=cv2.INTER_AREA))
    return rgb_dir, thermal_dir


def write_calibration(path: Path, name: str, size=FRAME_SIZE, focal: float = 150.0) -> Path:
    path.write_text(CALIBRATION_YAML.format(w=size[0], h=size[1], name=name, f=focal, cx=size[0] / 2,
                                            cy=size[1] / 2))
    return path


def make_bag_cli(rgb_dir: Path, thermal_dir: Path, out: Path, *options: str) -> Path:
    code = cli_main(["make-bag", str(rgb_dir), str(thermal_dir), str(out), "--rate", str(RATE_HZ), "--no-progress",
                     *options])
    assert code == 0
    return out


def expected_thermal_gray(path: Path) -> np.ndarray:
    """What make-bag stores for a thermal file before any 16-bit scaling."""
    image = read_image(path)
    if image.ndim == 3:
        same = np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])
        if same:
            return image[..., 0]
        from distillmatch_core.thermal_normalization import to_gray
        return to_gray(image)
    return image


def files_fingerprint(folder: Path) -> List[Tuple[str, int, float, bytes]]:
    """(name, size, mtime, content) of every file: proves a bag was not modified."""
    return [(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()]
