"""``distillmatch eval pose`` on METU-VisTIR- and MegaDepth-format fixtures written here.

The scene is piecewise planar: a textured back wall and floor (a single plane would
leave the essential matrix two-fold ambiguous). Its "texture" encodes world
coordinates: channel 0 is the plane id (1 wall, 2 floor), channels 1-2 the point's
coordinates on that plane, rendered in float32 through each camera's intrinsics and
lens distortion. ``coordinate_matcher`` reads exact correspondences back out of the
pixels, so every step the protocol takes (undistortion, resizing, intrinsics
bookkeeping, pose composition, essential matrix) must be right for a near-perfect AUC.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from distillmatch_core.cli.main import main
from distillmatch_core.evaluation.pose_index import load_pose_index
from distillmatch_core.evaluation.pose_protocol import evaluate_pose
from distillmatch_core.image_io import write_image

WALL_Z, FLOOR_Y = 6.0, 1.2
WALL, FLOOR = 1.0, 2.0


def rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    y, p = math.radians(yaw_deg), math.radians(pitch_deg)
    R_yaw = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    R_pitch = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    return R_yaw @ R_pitch


def world_to_camera(yaw_deg: float, pitch_deg: float, centre) -> np.ndarray:
    """4x4 world-to-camera of a camera at ``centre`` whose camera-to-world rotation is (yaw, pitch)."""
    R_wc = rotation(yaw_deg, pitch_deg)
    T = np.eye(4)
    T[:3, :3] = R_wc.T
    T[:3, 3] = -R_wc.T @ np.asarray(centre, dtype=np.float64)
    return T


CAMERAS = [world_to_camera(0.0, 0.0, [0.0, 0.0, 0.0]),
           world_to_camera(7.0, -2.0, [0.7, 0.05, 0.3]),
           world_to_camera(-6.0, 1.5, [-0.6, -0.1, 0.5])]


def intrinsics(f: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[f, 0.0, cx], [0.0, f * 1.01, cy], [0.0, 0.0, 1.0]])


def render_coordinates(K, distortion, T_cw, width, height) -> np.ndarray:
    """(height, width, 3) float32: plane id and plane coordinates seen through each (distorted) pixel."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    pixels = np.stack([u.ravel(), v.ravel()], axis=1).reshape(-1, 1, 2)
    if distortion is not None and np.any(distortion):
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-14)
        normalized = cv2.undistortPoints(pixels, K, distortion, None, None, None, criteria).reshape(-1, 2)
    else:
        normalized = (pixels.reshape(-1, 2) - K[:2, 2]) / K[[0, 1], [0, 1]]
    R, t = T_cw[:3, :3], T_cw[:3, 3]
    centre = -R.T @ t
    directions = np.concatenate([normalized, np.ones((len(normalized), 1))], axis=1) @ R  # rows R^T d
    with np.errstate(divide="ignore", invalid="ignore"):
        s_wall = (WALL_Z - centre[2]) / directions[:, 2]
        s_floor = (FLOOR_Y - centre[1]) / directions[:, 1]
    s_floor = np.where(s_floor > 0, s_floor, np.inf)
    on_floor = s_floor < s_wall
    s = np.where(on_floor, s_floor, s_wall)
    points = centre + directions * s[:, None]
    image = np.stack([np.where(on_floor, FLOOR, WALL), points[:, 0], np.where(on_floor, points[:, 2], points[:, 1])],
                     axis=1)
    return image.reshape(height, width, 3).astype(np.float32)


def decode_planes(image: np.ndarray):
    """plane id -> (mask of pixels whose 3x3 neighbourhood lies on that plane only)."""
    masks = {}
    for plane in (WALL, FLOOR):
        exact = (np.abs(image[..., 0] - plane) < 1e-6).astype(np.uint8)
        masks[plane] = cv2.erode(exact, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT,
                                 borderValue=0).astype(bool)
    return masks


def coordinate_matcher(image0: np.ndarray, image1: np.ndarray):
    """Exact correspondences: the plane coordinates of image0's grid pixels, located in image1
    through the per-plane homography (plane coords -> pixels) fitted on image1's own pixels."""
    masks0, masks1 = decode_planes(image0), decode_planes(image1)
    height1, width1 = image1.shape[:2]
    keypoints0, keypoints1 = [], []
    for plane in (WALL, FLOOR):
        y1, x1 = np.nonzero(masks1[plane])
        y0, x0 = np.nonzero(masks0[plane])
        if len(x1) < 50 or len(x0) == 0:
            continue
        take = slice(None, None, max(1, len(x1) // 4000))
        coords1 = image1[y1[take], x1[take], 1:].astype(np.float64)
        H, _ = cv2.findHomography(coords1, np.stack([x1[take], y1[take]], 1).astype(np.float64), 0)
        grid = (x0 % 6 == 0) & (y0 % 6 == 0)
        x0, y0 = x0[grid], y0[grid]
        projected = cv2.perspectiveTransform(image0[y0, x0, 1:].astype(np.float64)[None], H)[0]
        col, row = np.round(projected[:, 0]).astype(int), np.round(projected[:, 1]).astype(int)
        inside = (col >= 0) & (col < width1) & (row >= 0) & (row < height1)
        visible = np.zeros_like(inside)
        visible[inside] = masks1[plane][row[inside], col[inside]]
        keypoints0.append(np.stack([x0, y0], 1)[visible].astype(np.float64))
        keypoints1.append(projected[visible])
    return np.concatenate(keypoints0), np.concatenate(keypoints1)


def coordinate_matcher_factory():
    return coordinate_matcher


def plugin_spec() -> str:
    # This module's importable name (pytest may import it as a top-level or a package module).
    return f"{__name__}:coordinate_matcher_factory"


VIS_SIZE, THERMAL_SIZE = (400, 300), (320, 256)
K_VIS = intrinsics(330.0, 199.2, 150.4)
K_THERMAL = intrinsics(285.0, 161.0, 126.3)
D_VIS = np.array([-0.08, 0.012, 0.0006, -0.0004, 0.0])
D_THERMAL = np.array([-0.05, 0.004, 0.0, 0.0, 0.0])
PAIRS = [(0, 1), (1, 2), (0, 2)]


def write_metu_fixture(root: Path) -> Path:
    """<root>/images/*.tiff and <root>/index/scene_cloud_cloud.npz (paths relative to <root>)."""
    image_paths = []
    for i, T in enumerate(CAMERAS):
        vis, thermal = f"images/visible_{i}.tiff", f"images/thermal_{i}.tiff"
        write_image(root / vis, render_coordinates(K_VIS, D_VIS, T, *VIS_SIZE))
        write_image(root / thermal, render_coordinates(K_THERMAL, D_THERMAL, T, *THERMAL_SIZE))
        image_paths.append([vis, thermal])
    index = root / "index" / "scene_cloud_cloud.npz"
    index.parent.mkdir(parents=True)
    n = len(CAMERAS)
    np.savez(index, pair_infos=np.array(PAIRS), image_paths=np.array(image_paths, dtype=object),
             intrinsics=np.array([[K_VIS, K_THERMAL]] * n), distortion_coefs=np.array([[D_VIS, D_THERMAL]] * n),
             poses=np.stack(CAMERAS))
    return index


def write_megadepth_fixture(root: Path) -> Path:
    """LoFTR-style scene_info: an unused image without a path, pair_infos ((i, j), overlap, matches)."""
    Ks = [intrinsics(300.0, 160.3, 119.8), intrinsics(270.0, 158.0, 121.0), intrinsics(320.0, 161.5, 118.2)]
    image_paths, depth_paths = [], []
    for i, (T, K) in enumerate(zip(CAMERAS, Ks)):
        path = f"Undistorted_SfM/0015/images/{i:04d}.tiff"
        write_image(root / path, render_coordinates(K, None, T, 320, 240))
        image_paths.append(path)
        depth_paths.append(f"phoenix/S6/zl548/MegaDepth_v1/0015/dense0/depths/{i:04d}.h5")
    index = root / "scene_info" / "0015_0.1_0.3.npz"
    index.parent.mkdir(parents=True)
    pair_infos = np.empty(len(PAIRS), dtype=object)
    for k, pair in enumerate(PAIRS):
        pair_infos[k] = (pair, 0.5, np.zeros(2))
    np.savez(index, image_paths=np.array(image_paths + [None], dtype=object),
             depth_paths=np.array(depth_paths + [None], dtype=object),
             intrinsics=np.stack(Ks + [np.eye(3)]), poses=np.stack(CAMERAS + [np.eye(4)]), pair_infos=pair_infos)
    return index


def read_rows(path: Path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_metu_vistir_index_reading(tmp_path):
    index = write_metu_fixture(tmp_path / "metu")
    specs = load_pose_index(index)  # image root found by searching upwards from index/
    assert len(specs) == 3 and specs[0].dataset == "scene_cloud_cloud"
    assert specs[0].image0_path == tmp_path / "metu" / "images" / "visible_0.tiff"
    assert specs[0].image1_path == tmp_path / "metu" / "images" / "thermal_1.tiff"
    assert (specs[0].modality0, specs[0].modality1) == ("visible", "infrared")
    np.testing.assert_allclose(specs[1].T_0to1, CAMERAS[2] @ np.linalg.inv(CAMERAS[1]))
    np.testing.assert_allclose(specs[0].distortion1, D_THERMAL)


def test_eval_pose_on_metu_vistir_fixture_is_near_perfect(tmp_path, capsys):
    index = write_metu_fixture(tmp_path / "metu")
    out = tmp_path / "out"
    code = main(["eval", "pose", "--method", plugin_spec(), "--data", str(index.parent), "--size", "320",
                 "--out", str(out), "--no-progress", "--visualizations", "1"])
    assert code == 0, capsys.readouterr().err
    rows = read_rows(out / "results.csv")
    assert len(rows) == 1 and rows[0]["dataset"] == "scene_cloud_cloud" and rows[0]["pairs"] == "3"
    assert float(rows[0]["auc@5deg"]) > 97.0
    assert float(rows[0]["auc@20deg"]) > 99.0
    assert int(rows[0]["failures"]) == 0
    assert float(rows[0]["precision_percent"]) > 99.0
    pairs = read_rows(out / "pairs.csv")
    assert max(float(p["pose_error_deg"]) for p in pairs) < 0.2
    assert (out / "curves_scene_cloud_cloud.png").is_file()
    assert len(list((out / "matches").glob("*.png"))) == 1


def test_eval_pose_on_megadepth_fixture_is_near_perfect(tmp_path, capsys):
    index = write_megadepth_fixture(tmp_path / "megadepth")
    out = tmp_path / "out"
    code = main(["eval", "pose", "--method", plugin_spec(), "--data", str(index), "--size", "320",
                 "--estimator", "ransac", "--ransac-threshold", "0.5", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    rows = read_rows(out / "results.csv")
    assert [r["dataset"] for r in rows] == ["0015_0.1_0.3"]
    assert float(rows[0]["auc@5deg"]) > 97.0 and int(rows[0]["failures"]) == 0


def test_evaluate_pose_api_and_failures_count(tmp_path):
    specs = load_pose_index(write_megadepth_fixture(tmp_path / "megadepth"))
    summary = evaluate_pose(coordinate_matcher, specs, size=320, progress=False)
    assert summary["pairs"] == 3 and summary["auc@10deg"] > 98.0
    nothing = evaluate_pose(lambda a, b: (np.zeros((0, 2)), np.zeros((0, 2))), specs, size=320, limit=2,
                            progress=False)
    assert nothing["pairs"] == 2 and nothing["failures"] == 2 and nothing["auc@20deg"] == 0.0


@pytest.mark.parametrize("keys", [("pair_infos", "image_paths", "intrinsics")])
def test_index_without_required_keys_is_a_cli_error(tmp_path, capsys, keys):
    index = tmp_path / "broken.npz"
    np.savez(index, **{k: np.zeros(2) for k in keys})
    code = main(["eval", "pose", "--method", "sift", "--data", str(index), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "missing keys" in err and "Traceback" not in err
