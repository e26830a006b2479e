"""Reading and writing image files with clear errors (used by the CLI, eval and data loaders)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class ImageReadError(ValueError):
    """A file is missing, unreadable, empty or of an unsupported depth."""


SUPPORTED_DTYPES = (np.uint8, np.uint16, np.float32)


def read_image(path: str | Path) -> np.ndarray:
    """File -> (H, W) or (H, W, 3) array in RGB order, uint8/uint16/float32, unchanged depth."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"no such file: {path}")
    if not path.is_file():
        raise ImageReadError(f"not a file: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        raise ImageReadError(f"empty file: {path}")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageReadError(f"cannot decode image: {path}")
    if image.size == 0 or min(image.shape[:2]) == 0:
        raise ImageReadError(f"zero-size image: {path}")
    if image.dtype not in SUPPORTED_DTYPES:
        raise ImageReadError(f"unsupported pixel depth {image.dtype} in {path}; use 8-bit, 16-bit or 32-bit float")
    if image.ndim == 3:
        if image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
        elif image.shape[2] == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        elif image.shape[2] == 1:
            image = image[..., 0]
        else:
            raise ImageReadError(f"unsupported channel count {image.shape[2]} in {path}")
    return image


def write_image(path: str | Path, image: np.ndarray) -> None:
    """(H, W) or (H, W, 3) RGB array -> file; parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = image
    if image.ndim == 3 and image.shape[2] == 3:
        out = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    try:
        ok = cv2.imwrite(str(path), out)
    except cv2.error as exc:  # e.g. an extension OpenCV has no encoder for
        raise OSError(f"could not write image {path}: {exc.err or exc}") from None
    if not ok:
        raise OSError(f"could not write image {path}")
