"""The node's output messages, built from match results through a ``MessageFactory``, and read back.

Conventions (documented in docs/ros_node.md):

* ``correspondences`` (sensor_msgs/PointCloud2): one point per match, height 1,
  little-endian float32 fields ``u_thermal, v_thermal, u_rgb, v_rgb, score,
  inlier`` (pixel coordinates of the ORIGINAL images; ``inlier`` is 1.0 or
  0.0 for the homography fit), header of the RGB frame.
* ``homography`` (std_msgs/Float64MultiArray): 3x3 thermal -> RGB, row-major,
  layout dims ``rows`` (size 3, stride 9) and ``cols`` (size 3, stride 3),
  normalised so H[2, 2] = 1. Float64MultiArray has no header: in a bag its
  record timestamp is the RGB stamp.
* ``relative_pose`` (geometry_msgs/TransformStamped): pose of the thermal
  camera in the RGB camera frame (``header.frame_id`` = RGB frame,
  ``child_frame_id`` = thermal frame), translation of unit length because
  two views give it only up to scale.
* ``aligned_thermal`` (sensor_msgs/Image): the thermal frame warped into the
  RGB image plane, RGB size and header, thermal encoding (radiometric 16-bit
  values are preserved, not normalised).
"""
from __future__ import annotations

from typing import Any, Tuple

import cv2
import numpy as np

from distillmatch_core.ros_interface.image_encoding import array_to_image_message
from distillmatch_core.ros_interface.message_factory import MessageFactory, copy_header

CORRESPONDENCE_FIELD_NAMES = ("u_thermal", "v_thermal", "u_rgb", "v_rgb", "score", "inlier")
POINTFIELD_FLOAT32 = 7  # sensor_msgs/PointField.FLOAT32
CORRESPONDENCE_POINT_DTYPE = np.dtype([(name, "<f4") for name in CORRESPONDENCE_FIELD_NAMES])


def correspondence_cloud_message(make: MessageFactory, header: Any, keypoints_thermal: np.ndarray,
                                 keypoints_rgb: np.ndarray, scores: np.ndarray, inliers: np.ndarray) -> Any:
    """(N, 2) thermal and RGB pixels, (N,) scores and (N,) bool inliers -> PointCloud2 of N points."""
    keypoints_thermal = np.asarray(keypoints_thermal, dtype=np.float32).reshape(-1, 2)
    keypoints_rgb = np.asarray(keypoints_rgb, dtype=np.float32).reshape(-1, 2)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    inliers = np.asarray(inliers, dtype=bool).reshape(-1)
    n = len(keypoints_thermal)
    if not (len(keypoints_rgb) == len(scores) == len(inliers) == n):
        raise ValueError("keypoints, scores and inliers must have the same length")
    points = np.empty(n, dtype=CORRESPONDENCE_POINT_DTYPE)
    points["u_thermal"], points["v_thermal"] = keypoints_thermal[:, 0], keypoints_thermal[:, 1]
    points["u_rgb"], points["v_rgb"] = keypoints_rgb[:, 0], keypoints_rgb[:, 1]
    points["score"] = scores
    points["inlier"] = inliers.astype(np.float32)
    fields = [make("sensor_msgs/msg/PointField", name=name, offset=4 * i, datatype=POINTFIELD_FLOAT32, count=1)
              for i, name in enumerate(CORRESPONDENCE_FIELD_NAMES)]
    point_step = CORRESPONDENCE_POINT_DTYPE.itemsize
    return make("sensor_msgs/msg/PointCloud2", header=copy_header(make, header), height=1, width=n,
                fields=fields, is_bigendian=False, point_step=point_step, row_step=point_step * n,
                data=points.view(np.uint8).reshape(-1), is_dense=True)


def correspondence_cloud_to_array(msg: Any) -> np.ndarray:
    """PointCloud2 written by ``correspondence_cloud_message`` -> (N, 6) float32 in field order."""
    names = [f.name for f in msg.fields]
    if tuple(names) != CORRESPONDENCE_FIELD_NAMES:
        raise ValueError(f"not a correspondence cloud: fields {names}")
    n = int(msg.width) * int(msg.height)
    data = msg.data
    raw = np.frombuffer(data if not isinstance(data, np.ndarray) else np.ascontiguousarray(data).tobytes(),
                        dtype=np.uint8)
    byte_order = ">" if msg.is_bigendian else "<"
    dtype = np.dtype({"names": list(names), "formats": [byte_order + "f4"] * len(names),
                      "offsets": [int(f.offset) for f in msg.fields], "itemsize": int(msg.point_step)})
    points = raw[: n * int(msg.point_step)].view(dtype)
    return np.stack([points[name].astype(np.float32) for name in names], axis=1).reshape(n, len(names))


def homography_message(make: MessageFactory, H: np.ndarray) -> Any:
    """(3, 3) homography -> Float64MultiArray, row-major with labelled rows/cols dims."""
    H = np.asarray(H, dtype=np.float64).reshape(3, 3)
    dims = [make("std_msgs/msg/MultiArrayDimension", label="rows", size=3, stride=9),
            make("std_msgs/msg/MultiArrayDimension", label="cols", size=3, stride=3)]
    layout = make("std_msgs/msg/MultiArrayLayout", dim=dims, data_offset=0)
    return make("std_msgs/msg/Float64MultiArray", layout=layout, data=np.ascontiguousarray(H).reshape(-1))


def homography_from_message(msg: Any) -> np.ndarray:
    """Float64MultiArray from ``homography_message`` -> (3, 3) float64."""
    offset = int(msg.layout.data_offset)
    values = np.asarray(msg.data, dtype=np.float64)[offset:offset + 9]
    if values.size != 9:
        raise ValueError(f"homography message holds {values.size} values after offset {offset}, expected 9")
    return values.reshape(3, 3)


def rotation_matrix_to_quaternion(R: np.ndarray) -> Tuple[float, float, float, float]:
    """(3, 3) rotation -> unit quaternion (x, y, z, w) with w >= 0.

    Branches on the largest of trace / diagonal entries so the square root is
    never taken of a value near zero (numerically stable for 180-degree turns).
    """
    R = np.asarray(R, dtype=np.float64).reshape(3, 3)
    trace = R[0, 0] + R[1, 1] + R[2, 2]
    if trace > max(R[0, 0], R[1, 1], R[2, 2]):
        s = 2.0 * np.sqrt(1.0 + trace)
        w, x, y, z = 0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s
    elif R[0, 0] >= R[1, 1] and R[0, 0] >= R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        w, x, y, z = (R[2, 1] - R[1, 2]) / s, 0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s
    elif R[1, 1] >= R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        w, x, y, z = (R[0, 2] - R[2, 0]) / s, (R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s
    else:
        s = 2.0 * np.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        w, x, y, z = (R[1, 0] - R[0, 1]) / s, (R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s
    q = np.array([x, y, z, w])
    q /= np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    return float(q[0]), float(q[1]), float(q[2]), float(q[3])


def thermal_pose_in_rgb_frame(R_rgb_to_thermal: np.ndarray,
                              t_rgb_to_thermal: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Inverts the two-view pose convention into the TF convention.

    ``MatchResult.relative_pose`` (OpenCV ``recoverPose``) returns R, t with
    ``x_thermal = R x_rgb + t``; a TransformStamped from the RGB frame to the
    thermal frame must instead give ``x_rgb = R' x_thermal + t'``, i.e.
    ``R' = R^T`` and ``t' = -R^T t``. Returns ((3, 3), (3,)).
    """
    R = np.asarray(R_rgb_to_thermal, dtype=np.float64).reshape(3, 3)
    t = np.asarray(t_rgb_to_thermal, dtype=np.float64).reshape(3)
    return R.T, -R.T @ t


def relative_pose_message(make: MessageFactory, header: Any, child_frame_id: str, R: np.ndarray,
                          t: np.ndarray) -> Any:
    """TransformStamped (parent = ``header.frame_id``) from the child's (3, 3) rotation and (3,) translation."""
    qx, qy, qz, qw = rotation_matrix_to_quaternion(R)
    t = np.asarray(t, dtype=np.float64).reshape(3)
    translation = make("geometry_msgs/msg/Vector3", x=float(t[0]), y=float(t[1]), z=float(t[2]))
    rotation = make("geometry_msgs/msg/Quaternion", x=qx, y=qy, z=qz, w=qw)
    transform = make("geometry_msgs/msg/Transform", translation=translation, rotation=rotation)
    return make("geometry_msgs/msg/TransformStamped", header=copy_header(make, header),
                child_frame_id=child_frame_id, transform=transform)


def camera_matrix_from_info(info: Any) -> np.ndarray:
    """sensor_msgs/CameraInfo -> (3, 3) intrinsics (field ``k``)."""
    K = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError("camera_info has no valid intrinsics (fx or fy <= 0); is the camera calibrated?")
    return K


def warp_thermal_to_rgb(thermal: np.ndarray, H_thermal_to_rgb: np.ndarray, rgb_size: Tuple[int, int]) -> np.ndarray:
    """(h, w[, C]) thermal array, any supported dtype -> (H, W[, C]) in the RGB plane; outside pixels are 0.

    ``rgb_size`` is (W, H). Bilinear interpolation; the dtype (e.g. uint16
    radiometric counts) is kept.
    """
    width, height = int(rgb_size[0]), int(rgb_size[1])
    return cv2.warpPerspective(np.ascontiguousarray(thermal), np.asarray(H_thermal_to_rgb, dtype=np.float64),
                               (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=0)


def aligned_thermal_message(make: MessageFactory, header: Any, thermal: np.ndarray, encoding: str,
                            H_thermal_to_rgb: np.ndarray, rgb_size: Tuple[int, int]) -> Any:
    """Image of the thermal frame warped into the RGB plane, carrying the RGB ``header``."""
    warped = warp_thermal_to_rgb(thermal, H_thermal_to_rgb, rgb_size)
    return array_to_image_message(make, warped, encoding, header)
