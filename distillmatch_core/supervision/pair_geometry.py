"""Ground-truth geometry of a training pair: how a pixel of image 0 moves to image 1 and back.

Two kinds, one interface, so supervision and the sub-pixel loss never branch on the dataset:
``HomographyGeometry`` (planar / synthetic warps) and ``DepthGeometry`` (depth + intrinsics +
poses, MegaDepth-style). Points are (B, N, 2) pixels of the network input; every warp returns
the warped points and a (B, N) validity mask (inside the other image, and for depth, consistent).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from kornia.geometry.linalg import transform_points


class PairGeometry:
    batch_size: int
    # Units of subpixel_error: pixels^2 (homography) or normalised camera coordinates^2 (epipolar).
    error_in_pixels: bool = True

    def warp01(self, pts: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def warp01_matches(self, b_ids: torch.Tensor, pts: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Points grouped by match: b_ids (M,), pts (M, K, 2) -> warped (M, K, 2), valid (M, K)."""
        m, k = pts.shape[:2]
        warped = torch.zeros_like(pts)
        valid = torch.zeros(m, k, dtype=torch.bool, device=pts.device)
        for b in range(self.batch_size):
            sel = b_ids == b
            if not bool(sel.any()):
                continue
            # Geometries hold (B, ...) tensors: place this item's points in slot b of a full batch.
            full = pts.new_zeros(self.batch_size, int(sel.sum()) * k, 2)
            full[b] = pts[sel].reshape(-1, 2)
            w, ok = self.warp01(full)
            warped[sel] = w[b].reshape(-1, k, 2)
            valid[sel] = ok[b].reshape(-1, k)
        return warped, valid

    def warp10(self, pts: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def subpixel_error(self, b_ids: torch.Tensor, pts0: torch.Tensor, pts1: torch.Tensor) -> torch.Tensor:
        """(M,) squared geometric error of matches (M, 2)/(M, 2) of batch items ``b_ids``."""
        raise NotImplementedError

    def subpixel_error_cap(self, b_ids: torch.Tensor, pixels: float) -> torch.Tensor:
        """(M,) the error ``pixels`` of displacement amounts to, in subpixel_error's units."""
        return torch.full(b_ids.shape, float(pixels) ** 2, device=b_ids.device)


def inside(pts: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    h, w = size
    return (pts[..., 0] >= 0) & (pts[..., 0] <= w - 1) & (pts[..., 1] >= 0) & (pts[..., 1] <= h - 1)


class HomographyGeometry(PairGeometry):
    """H_0to1 (B, 3, 3) in network-input pixels; image sizes (H, W).

    content0/1 (B, H, W) bool, optional: pixels that show scene (not black warp borders);
    a correspondence is valid only if both of its ends do.
    """

    def __init__(self, H_0to1: torch.Tensor, size0: Tuple[int, int], size1: Tuple[int, int],
                 content0: Optional[torch.Tensor] = None, content1: Optional[torch.Tensor] = None):
        self.H = H_0to1.float()
        self.batch_size = self.H.shape[0]
        self.H_inv = torch.linalg.inv(self.H)
        self.size0, self.size1 = size0, size1
        self.content0, self.content1 = content0, content1

    def _warp(self, H, pts, size_dst, content_src, content_dst):
        out = transform_points(H, pts)
        ok = inside(out, size_dst) & torch.isfinite(out).all(-1)
        if content_src is not None:
            ok &= sample_depth(content_src.float(), pts) > 0
        if content_dst is not None:
            ok &= sample_depth(content_dst.float(), torch.nan_to_num(out, nan=-1.0)) > 0
        return out, ok

    def warp01(self, pts):
        return self._warp(self.H, pts, self.size1, self.content0, self.content1)

    def warp10(self, pts):
        return self._warp(self.H_inv, pts, self.size0, self.content1, self.content0)

    def subpixel_error(self, b_ids, pts0, pts1):
        """Symmetric transfer error ||H x0 - x1||^2 + ||H^-1 x1 - x0||^2 in pixels^2."""
        fwd = transform_points(self.H[b_ids], pts0[:, None])[:, 0]
        bwd = transform_points(self.H_inv[b_ids], pts1[:, None])[:, 0]
        return ((fwd - pts1) ** 2).sum(-1) + ((bwd - pts0) ** 2).sum(-1)


def sample_depth(depth: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """depth (B, H, W), pts (B, N, 2) -> (B, N) nearest-pixel depth, 0 outside."""
    b, h, w = depth.shape
    x = pts[..., 0].round().long()
    y = pts[..., 1].round().long()
    ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    flat = (y.clamp(0, h - 1) * w + x.clamp(0, w - 1))
    d = torch.gather(depth.reshape(b, -1), 1, flat)
    return torch.where(ok, d, torch.zeros_like(d))


def skew(t: torch.Tensor) -> torch.Tensor:
    z = torch.zeros_like(t[..., 0])
    return torch.stack([z, -t[..., 2], t[..., 1], t[..., 2], z, -t[..., 0], -t[..., 1], t[..., 0], z],
                       dim=-1).reshape(*t.shape[:-1], 3, 3)


class DepthGeometry(PairGeometry):
    """depth0/1 (B, H, W) metres (0 = unknown), K0/K1 (B, 3, 3), T_0to1 (B, 4, 4) camera0 -> camera1."""

    error_in_pixels = False

    def __init__(self, depth0, depth1, K0, K1, T_0to1, consistency: float = 0.2):
        self.depth0, self.depth1 = depth0.float(), depth1.float()
        self.K0, self.K1 = K0.float(), K1.float()
        self.T01 = T_0to1.float()
        self.batch_size = self.T01.shape[0]
        self.T10 = torch.linalg.inv(self.T01)
        self.consistency = consistency

    def _warp(self, pts, depth_src, depth_dst, K_src, K_dst, T):
        d = sample_depth(depth_src, pts)  # (B, N)
        ones = torch.ones_like(pts[..., :1])
        rays = (torch.linalg.inv(K_src)[:, None] @ torch.cat([pts, ones], -1)[..., None])[..., 0]
        xyz = rays * d[..., None]
        xyz_dst = (T[:, None, :3, :3] @ xyz[..., None])[..., 0] + T[:, None, :3, 3]
        z = xyz_dst[..., 2:3]
        uv = (K_dst[:, None] @ xyz_dst[..., None])[..., 0]
        out = uv[..., :2] / z.clamp(min=1e-6)
        d_dst = sample_depth(depth_dst, out)
        consistent = (d_dst > 0) & ((d_dst - z[..., 0]).abs() / d_dst.clamp(min=1e-6) < self.consistency)
        size = depth_dst.shape[-2:]
        return out, (d > 0) & (z[..., 0] > 0) & inside(out, size) & consistent

    def warp01(self, pts):
        return self._warp(pts, self.depth0, self.depth1, self.K0, self.K1, self.T01)

    def warp10(self, pts):
        return self._warp(pts, self.depth1, self.depth0, self.K1, self.K0, self.T10)

    def subpixel_error_cap(self, b_ids, pixels):
        """``pixels`` through the mean focal length of both cameras, in normalised coordinates^2."""
        f = (self.K0[b_ids, 0, 0] + self.K0[b_ids, 1, 1] + self.K1[b_ids, 0, 0] + self.K1[b_ids, 1, 1]) / 4
        return (float(pixels) / f) ** 2

    def subpixel_error(self, b_ids, pts0, pts1):
        """Symmetric epipolar distance (Eq. 8) in normalised camera coordinates."""
        E = skew(self.T01[b_ids, :3, 3]) @ self.T01[b_ids, :3, :3]  # x1^T E x0 = 0
        ones = torch.ones_like(pts0[:, :1])
        x0 = (torch.linalg.inv(self.K0[b_ids]) @ torch.cat([pts0, ones], -1)[..., None])[..., 0]
        x1 = (torch.linalg.inv(self.K1[b_ids]) @ torch.cat([pts1, ones], -1)[..., None])[..., 0]
        Ex0 = (E @ x0[..., None])[..., 0]
        Etx1 = (E.transpose(1, 2) @ x1[..., None])[..., 0]
        num = (x1 * Ex0).sum(-1) ** 2
        return num * (1.0 / (Ex0[:, :2] ** 2).sum(-1).clamp(min=1e-9) + 1.0 / (Etx1[:, :2] ** 2).sum(-1).clamp(min=1e-9))
