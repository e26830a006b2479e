"""Synthetic test images shared by several test modules."""
import cv2
import numpy as np


def textured_image(seed: int, width: int = 320, height: int = 240) -> np.ndarray:
    """(H, W) uint8 blobs at several scales: plenty of structure for any matcher to lock onto."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width), np.float32)
    for sigma in (1.5, 4.0, 9.0):
        image += cv2.GaussianBlur(rng.normal(size=(height, width)).astype(np.float32), (0, 0), sigma) * sigma
    image = (image - image.min()) / (image.max() - image.min())
    return (image * 255).astype(np.uint8)
