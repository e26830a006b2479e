"""The training pairs' homographies come from the data config's ranges (data.homography.ranges)."""
import numpy as np

from distillmatch_core.data.homography_pair_dataset import (HomographyPairDataConfig, HomographyPairDataset,
                                                            items_from_photos)
from distillmatch_core.evaluation.random_homography import HomographyRanges
from synthetic_images import inverted_only_modalities, write_blurred_photos


def dataset(tmp_path, ranges: HomographyRanges) -> HomographyPairDataset:
    write_blurred_photos(tmp_path, 2, 90, 120)
    cfg = HomographyPairDataConfig(image_size=(64, 48), modality=inverted_only_modalities(), ranges=ranges,
                                   curriculum_start=1.0)
    return HomographyPairDataset(items_from_photos(tmp_path), cfg, seed=3)


def relative_scale(H: np.ndarray) -> float:
    """Area scale of the affine part, as a linear factor."""
    return float(np.sqrt(abs(np.linalg.det(H[:2, :2] / H[2, 2]))))


def test_zero_ranges_give_aligned_pairs(tmp_path):
    still = HomographyRanges(translation_fraction=0.0, rotation_deg=0.0, scale_delta=0.0, shear=0.0, perspective=0.0)
    aligned = dataset(tmp_path, still)
    for index in range(4):
        np.testing.assert_allclose(aligned[index]["H_0to1"].numpy(), np.eye(3), atol=1e-6)


def test_a_wide_log_uniform_scale_reaches_the_training_pairs(tmp_path):
    def scales(ranges: HomographyRanges):
        pairs = dataset(tmp_path, ranges)
        return [relative_scale(pairs[i]["H_0to1"].numpy().astype(np.float64)) for i in range(40)]

    paper = scales(HomographyRanges())
    wide = scales(HomographyRanges(scale_delta=0.7, scale_log_uniform=True))
    # The paper's ranges: image 1 in 0.8-1.2, image 0 in 0.93-1.07, so the ratio stays within about 0.75-1.3.
    assert 0.7 < min(paper) and max(paper) < 1.35
    assert min(wide) < 0.7 and max(wide) > 1.4
