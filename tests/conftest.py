"""Shared fixtures: a tiny model config, synthetic textured images, the shared data root."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from distillmatch_core.data.splits import default_data_root
from synthetic_images import textured_image

torch.set_num_threads(1)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: longer end-to-end cases (deselect with -m 'not slow')")


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = default_data_root()
    if not (root / "manifest.csv").is_file():
        pytest.skip(f"shared data not found at {root} (CI places ../shared beside the checkout)")
    return root




@pytest.fixture
def synthetic_homography_batch():
    """A 2-item batch as HomographyPairDataset produces it, 96x128, with a mild known homography."""
    import cv2
    from distillmatch_core.evaluation.random_homography import sample_homography
    images0, images1, hs = [], [], []
    rng = np.random.default_rng(0)
    for b in range(2):
        base = textured_image(b, width=128, height=96)
        H = sample_homography(128, 96, rng, strength=0.3)
        images0.append(base)
        images1.append(cv2.warpPerspective(base, H, (128, 96)))
        hs.append(H)
    ones = np.full((96, 128), 255, np.uint8)
    content1 = [cv2.warpPerspective(ones, H, (128, 96), flags=cv2.INTER_NEAREST) > 0 for H in hs]
    return {
        "image0": torch.from_numpy(np.stack(images0)).float()[:, None] / 255,
        "image1": torch.from_numpy(np.stack(images1)).float()[:, None] / 255,
        "H_0to1": torch.from_numpy(np.stack(hs)).float(),
        "content0": torch.ones(2, 96, 128, dtype=torch.bool),
        "content1": torch.from_numpy(np.stack(content1)),
        "modality0": torch.tensor([0, 0]),
        "modality1": torch.tensor([1, 1]),
    }
