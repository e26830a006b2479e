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


def write_blurred_photos(folder, count: int, height: int, width: int) -> None:
    """``count`` smooth random RGB photos p0.png, p1.png, ... in ``folder`` (sources of HomographyPairDataset)."""
    rng = np.random.default_rng(0)
    for k in range(count):
        photo = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (0, 0), 3)
        cv2.imwrite(str(folder / f"p{k}.png"), photo)


def inverted_only_modalities():
    """A data-engine config that always renders image 1 inverted and image 0 gray, without a V2I-GAN."""
    from distillmatch_core.data.modality_sampler import ModalitySamplerConfig

    return ModalitySamplerConfig(weights={"inverted": 1.0}, visible_side_weights={"grayscale": 1.0},
                                 pseudo_infrared_generator="")
