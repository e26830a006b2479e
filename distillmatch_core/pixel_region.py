"""An axis-aligned rectangle of whole pixels: where a training crop was cut, or where the Matcher matches."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np


@dataclass(frozen=True)
class Region:
    """Columns x..x+width-1, rows y..y+height-1 of an image."""

    x: int
    y: int
    width: int
    height: int

    def as_tuple(self) -> Tuple[int, int, int, int]:
        return self.x, self.y, self.width, self.height

    def cut(self, image: np.ndarray) -> np.ndarray:
        """The (height, width[, C]) view of ``image`` inside this region."""
        return image[self.y:self.y + self.height, self.x:self.x + self.width]

    def union(self, other: "Region") -> "Region":
        x, y = min(self.x, other.x), min(self.y, other.y)
        return Region(x, y, max(self.x + self.width, other.x + other.width) - x,
                      max(self.y + self.height, other.y + other.height) - y)

    def within(self, outer: "Region", size: Tuple[int, int]) -> "Region":
        """This region in the pixels of ``outer`` resized to ``size`` (W, H), edges rounded to whole pixels."""
        sx, sy = size[0] / outer.width, size[1] / outer.height
        x0, y0 = round((self.x - outer.x) * sx), round((self.y - outer.y) * sy)
        x1 = min(size[0], round((self.x + self.width - outer.x) * sx))
        y1 = min(size[1], round((self.y + self.height - outer.y) * sy))
        return Region(x0, y0, max(1, x1 - x0), max(1, y1 - y0))

    def pixel_map(self, out_w: int, out_h: int) -> np.ndarray:
        """(3, 3): pixels of this region resized to (out_w, out_h) -> pixels of the image it was cut from
        (cv2.resize's pixel-centre convention)."""
        sx, sy = self.width / out_w, self.height / out_h
        return np.array([[sx, 0.0, self.x + 0.5 * sx - 0.5], [0.0, sy, self.y + 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
