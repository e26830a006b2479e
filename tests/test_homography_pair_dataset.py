"""The training pairs' geometry: homographies from the data config's ranges (data.homography.ranges) and the
optional crops of different field of view (data.homography.field_of_view)."""
import cv2
import numpy as np
import pytest

from distillmatch_core.data.homography_pair_dataset import (HomographyPairDataConfig, HomographyPairDataset,
                                                            items_from_photos)
from distillmatch_core.data.field_of_view_crops import FieldOfViewConfig, crop_resize
from distillmatch_core.data.photometric_augmentation import PhotometricConfig
from distillmatch_core.pixel_region import Region
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


def field_of_view_dataset(tmp_path, fov: FieldOfViewConfig) -> HomographyPairDataset:
    """Pairs without homographies or per-pixel noise, so only the two crops relate the images."""
    write_blurred_photos(tmp_path, 2, 150, 200)
    still = HomographyRanges(translation_fraction=0.0, rotation_deg=0.0, scale_delta=0.0, shear=0.0, perspective=0.0)
    cfg = HomographyPairDataConfig(image_size=(64, 48), modality=inverted_only_modalities(), ranges=still,
                                   curriculum_start=1.0, field_of_view=fov, aligned_counterparts=True,
                                   photometric=PhotometricConfig(noise_std=0.0, blur_probability=0.0))
    return HomographyPairDataset(items_from_photos(tmp_path), cfg, seed=5)


def test_field_of_view_crops_give_exact_ground_truth_and_both_scale_directions(tmp_path):
    pairs = field_of_view_dataset(tmp_path, FieldOfViewConfig(probability=1.0, ratio_max=1.7, centre_shift=0.25))
    scales, errors, baseline = [], [], []
    for index in range(12):
        sample = pairs[index]
        H = sample["H_0to1"].numpy().astype(np.float64)
        scales.append(relative_scale(H))
        # counterpart1 is image 0's rendering in image 1's crop: sampling it at H(p) must give image 0 at p.
        image0 = sample["image0"][0].numpy()
        other = sample["counterpart1"][0].numpy()
        h, w = image0.shape
        ys, xs = np.mgrid[4:h - 4, 4:w - 4].astype(np.float32)
        mapped = cv2.perspectiveTransform(np.stack([xs, ys], -1).reshape(-1, 1, 2), H).reshape(ys.shape + (2,))
        inside = (mapped[..., 0] > 1) & (mapped[..., 0] < w - 2) & (mapped[..., 1] > 1) & (mapped[..., 1] < h - 2)
        if inside.mean() < 0.1:
            continue
        resampled = cv2.remap(other, mapped[..., 0], mapped[..., 1], cv2.INTER_LINEAR)
        errors.append(np.abs(resampled - image0[4:h - 4, 4:w - 4])[inside].mean())
        unmapped = cv2.remap(other, xs, ys, cv2.INTER_LINEAR)
        baseline.append(np.abs(unmapped - image0[4:h - 4, 4:w - 4])[inside].mean())
    assert len(errors) >= 8
    # Resampling (area-averaged crops at two scales) leaves a small residual; the wrong map leaves a large one.
    assert np.median(errors) < 0.02 and np.median(errors) < 0.25 * np.median(baseline)
    assert min(scales) < 0.85 and max(scales) > 1.15  # image 1 sees a wider and a narrower field


def test_field_of_view_is_drawn_for_its_share_of_samples_only(tmp_path):
    pairs = field_of_view_dataset(tmp_path, FieldOfViewConfig(probability=0.5))
    shared = [np.allclose(pairs[i]["H_0to1"].numpy(), np.eye(3), atol=1e-6) for i in range(40)]
    assert 8 <= sum(shared) <= 32


@pytest.mark.parametrize("kwargs", [{"probability": 1.5}, {"ratio_max": 0.9}, {"centre_shift": -0.1}])
def test_field_of_view_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match="field_of_view"):
        FieldOfViewConfig(**kwargs)


@pytest.mark.parametrize("box, out", [(Region(10, 7, 40, 30), (64, 48)), (Region(3, 5, 128, 96), (64, 48)),
                                      (Region(0, 0, 90, 70), (64, 48))])
def test_crop_pixel_map_matches_the_resize(box, out):
    """A coordinate ramp cut and resized holds at each output pixel the source coordinate pixel_map gives it
    (a half-pixel convention error would be 0.2-0.5 px off)."""
    ys, xs = np.mgrid[0:120, 0:160].astype(np.float32)
    mapping = box.pixel_map(*out)
    for axis, ramp in ((0, xs), (1, ys)):
        resized = crop_resize(ramp, box, *out)[2:-2, 2:-2]
        grid = np.mgrid[2:out[1] - 2, 2:out[0] - 2][::-1].astype(np.float64)  # (x, y) of the output pixels
        expected = mapping[axis, 0] * grid[0] + mapping[axis, 1] * grid[1] + mapping[axis, 2]
        np.testing.assert_allclose(resized, expected, atol=0.1)  # INTER_AREA at ratio 1.4: within 0.09 px
