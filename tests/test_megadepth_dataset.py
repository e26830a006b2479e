"""MegaDepth (LoFTR scene_info + .h5 depth) loading: shapes, intrinsics under resize, exact depth ground truth."""
import cv2
import h5py
import numpy as np
import pytest
import torch

from distillmatch_core.data.megadepth_dataset import MegaDepthDataConfig, MegaDepthDataset
from distillmatch_core.data.modality_sampler import ModalitySampler, ModalitySamplerConfig
from distillmatch_core.supervision.pair_geometry import DepthGeometry


@pytest.fixture
def scene(tmp_path):
    """A fronto-parallel plane at z = 5 seen by camera 0, and by camera 1 shifted 0.4 m sideways."""
    h, w = 300, 400
    K = np.array([[300.0, 0, 199.5], [0, 300.0, 149.5], [0, 0, 1]])
    T0 = np.eye(4)
    T1 = np.eye(4)
    T1[0, 3] = -0.4  # world -> camera 1: x1 = x - 0.4
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    (tmp_path / "depths").mkdir()
    for i in range(2):
        img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(tmp_path / "images" / f"{i}.png"), img)
        with h5py.File(tmp_path / "depths" / f"{i}.h5", "w") as fh:
            fh["depth"] = np.full((h, w), 5.0, np.float32)
    index = tmp_path / "index"
    index.mkdir()
    np.savez(index / "scene.npz",
             image_paths=np.array(["images/0.png", "images/1.png"], dtype=object),
             depth_paths=np.array(["depths/0.h5", "depths/1.h5"], dtype=object),
             intrinsics=np.stack([K, K]), poses=np.stack([T0, T1]),
             pair_infos=np.array([((0, 1), 0.5, None), ((0, 1), 0.95, None)], dtype=object))
    return tmp_path, K


def test_sample_shapes_intrinsics_and_depth_ground_truth(scene):
    root, K = scene
    cfg = MegaDepthDataConfig(root=str(root), index_dir=str(root / "index"), image_size=(200, 200),
                              pseudo_modality_probability=0.0)
    sampler = ModalitySampler(ModalitySamplerConfig(pseudo_infrared_generator=""))
    ds = MegaDepthDataset(cfg, seed=0, sampler=sampler)
    assert len(ds.pairs) == 1  # the 0.95-overlap pair is outside [min_overlap, max_overlap]
    s = ds[0]
    assert s["image0"].shape == (1, 200, 200) and s["depth0"].shape == (200, 200)
    assert s["depth0"][150:].abs().sum() == 0  # padding below the 150-px-high resized image
    # 400x300 -> 200x150: focal halves, the principal point follows the pixel-centre rule.
    assert torch.allclose(s["K0"], torch.tensor([[150.0, 0, 99.5], [0, 150.0, 74.5], [0, 0, 1]]))
    geo = DepthGeometry(s["depth0"][None], s["depth1"][None], s["K0"][None], s["K1"][None], s["T_0to1"][None])
    pts = torch.tensor([[[100.0, 70.0], [150.0, 20.0]]])
    warped, ok = geo.warp01(pts)
    # A 0.4 m baseline at 5 m depth with f = 150 px shifts by 150 * 0.4 / 5 = 12 px to the left.
    assert ok.all()
    assert torch.allclose(warped, pts - torch.tensor([12.0, 0.0]), atol=1e-3)


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="scene_info"):
        MegaDepthDataset(MegaDepthDataConfig(root=str(tmp_path), index_dir=str(tmp_path)))
