"""Ground truth: depth + pose correspondences agree with the analytic homography of a planar scene."""
import numpy as np
import torch

from distillmatch_core.supervision.coarse_supervision import coarse_ground_truth, dense_ground_truth
from distillmatch_core.supervision.fine_supervision import fine_ground_truth
from distillmatch_core.supervision.pair_geometry import DepthGeometry, HomographyGeometry


def planar_scene(h=96, w=128):
    """Plane z = 5 (camera 0 frame) seen by two cameras; returns depth maps, K, T and the plane homography."""
    K = torch.tensor([[100.0, 0, w / 2], [0, 100.0, h / 2], [0, 0, 1]])
    angle = 0.05
    R = torch.tensor([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]],
                     dtype=torch.float32)
    t = torch.tensor([0.3, 0.05, 0.0])
    T = torch.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    n, d = torch.tensor([0.0, 0.0, 1.0]), 5.0
    H = K @ (R + t[:, None] @ n[None] / d) @ torch.linalg.inv(K)  # x1 ~ H x0 for points on the plane
    depth0 = torch.full((1, h, w), 5.0)
    # Depth of the plane in camera 1: z1 = (R X + t)_z for X on the plane, sampled per camera-1 pixel.
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    pix1 = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(-1, 3)
    pix0 = (torch.linalg.inv(H) @ pix1.T).T
    pix0 = pix0 / pix0[:, 2:]
    X = (torch.linalg.inv(K) @ pix0.T).T * 5.0
    z1 = (R @ X.T).T[:, 2] + t[2]
    depth1 = z1.reshape(1, h, w)
    return depth0, depth1, K[None], T[None], H[None] / H[2, 2]


def test_depth_correspondences_match_the_plane_homography():
    depth0, depth1, K, T, H = planar_scene()
    geo_d = DepthGeometry(depth0, depth1, K, K, T)
    geo_h = HomographyGeometry(H, (96, 128), (96, 128))
    pts = torch.stack(torch.meshgrid(torch.arange(8, 120, 8.0), torch.arange(8, 88, 8.0), indexing="xy"), -1)
    pts = pts.reshape(1, -1, 2)
    wd, okd = geo_d.warp01(pts)
    wh, okh = geo_h.warp01(pts)
    both = okd & okh
    assert both.sum() > 0.8 * pts.shape[1]
    assert (wd[both] - wh[both]).norm(dim=-1).max() < 1e-2
    # The epipolar sub-pixel error vanishes on true correspondences and not off them.
    b = torch.zeros(int(both.sum()), dtype=torch.long)
    assert geo_d.subpixel_error(b, pts[both], wd[both]).max() < 1e-8
    assert geo_d.subpixel_error(b, pts[both], wd[both] + torch.tensor([0.0, 3.0])).min() > 1e-8


def test_depth_consistency_check_rejects_occluded_points():
    depth0, depth1, K, T, _ = planar_scene()
    depth1[:, :, :64] = 1.0  # an occluder in front of the plane in camera 1's left half
    _, ok = DepthGeometry(depth0, depth1, K, K, T).warp01(torch.tensor([[[20.0, 48.0], [100.0, 48.0]]]))
    assert ok.tolist() == [[False, True]]


def test_coarse_ground_truth_is_diagonal_for_identity_and_mutual():
    H = torch.eye(3)[None].repeat(2, 1, 1)
    geo = HomographyGeometry(H, (64, 80), (64, 80))
    b, i, j = coarse_ground_truth(geo, 2, (8, 10), (8, 10), "cpu")
    assert len(b) == 2 * 80 and torch.equal(i, j)
    dense = dense_ground_truth((b, i, j), 2, 80, 80, "cpu")
    assert torch.equal(dense[0], torch.eye(80))
    # Under a shift of exactly one cell, cell x matches cell x + 1.
    Hs = torch.tensor([[[1.0, 0, 8.0], [0, 1, 0], [0, 0, 1]]])
    b, i, j = coarse_ground_truth(HomographyGeometry(Hs, (64, 80), (64, 80)), 1, (8, 10), (8, 10), "cpu")
    assert torch.all(j == i + 1)


def test_fine_ground_truth_points_at_the_true_window_element():
    Hs = torch.tensor([[[1.0, 0, 2.0], [0, 1, -2.0], [0, 0, 1]]])  # +1 / -1 half-resolution step
    geo = HomographyGeometry(Hs, (64, 80), (64, 80))
    b, i, j = torch.tensor([0]), torch.tensor([35]), torch.tensor([35])
    gt, valid = fine_ground_truth(geo, b, i, j, 10, 10, 5)
    assert gt.shape == (1, 25, 25)
    a = 12  # window centre (2, 2) -> true position (3, 1) -> element 1 * 5 + 3 = 8
    assert gt[0, a].argmax() == 8 and gt[0, a].sum() == 1
    assert valid[0, a]
