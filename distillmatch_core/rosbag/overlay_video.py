"""MP4 of match overlays (``bag-eval --video``) through OpenCV's VideoWriter."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import cv2
import numpy as np


class OverlayVideoWriter:
    """Frame size is fixed by the first frame; later frames of another size are letterboxed to it."""

    def __init__(self, path: Path, fps: float):
        self.path = Path(path)
        self.fps = float(fps)
        self._writer: Optional[cv2.VideoWriter] = None
        self._size: Optional[Tuple[int, int]] = None
        self.frames_written = 0
        self.error: Optional[str] = None

    def write(self, rgb_frame: np.ndarray) -> None:
        """(H, W, 3) uint8 RGB."""
        if self.error:
            return
        if self._writer is None:
            height, width = rgb_frame.shape[:2]
            # Many H.264 encoders need even dimensions; mp4v does not, but players prefer them.
            self._size = (width + width % 2, height + height % 2)
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self._size)
            if not self._writer.isOpened():
                self.error = "OpenCV could not open an MP4 (mp4v) writer; this OpenCV build lacks a video backend"
                self._writer = None
                return
        self._writer.write(self._fit(cv2.cvtColor(rgb_frame, cv2.COLOR_RGB2BGR)))
        self.frames_written += 1

    def _fit(self, frame: np.ndarray) -> np.ndarray:
        width, height = self._size
        if frame.shape[1] == width and frame.shape[0] == height:
            return frame
        scale = min(1.0, width / frame.shape[1], height / frame.shape[0])
        resized = cv2.resize(frame, (max(1, int(frame.shape[1] * scale)), max(1, int(frame.shape[0] * scale))),
                             interpolation=cv2.INTER_AREA)
        canvas = np.zeros((height, width, 3), dtype=np.uint8)
        canvas[: resized.shape[0], : resized.shape[1]] = resized
        return canvas

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self.frames_written == 0 and self.path.exists():
            self.path.unlink()  # an empty container would look like a finished video
