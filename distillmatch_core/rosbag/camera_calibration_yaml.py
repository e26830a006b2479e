"""ROS camera calibration YAML files (camera_calibration / camera_info_manager format) -> CameraInfo."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from distillmatch_core.ros_interface.message_factory import MessageFactory


class CalibrationFileError(ValueError):
    """A calibration YAML is missing, malformed or lacks a required matrix."""


@dataclass
class CameraCalibration:
    width: int
    height: int
    K: np.ndarray  # (3, 3) intrinsics
    D: np.ndarray  # (n,) distortion coefficients
    R: np.ndarray  # (3, 3) rectification
    P: np.ndarray  # (3, 4) projection
    distortion_model: str = "plumb_bob"
    camera_name: str = ""


def _matrix(document: dict, key: str, shape: tuple, path: Path, default: Any = None) -> np.ndarray:
    entry = document.get(key)
    if entry is None:
        if default is not None:
            return default
        raise CalibrationFileError(f"{path}: missing {key}")
    data = entry.get("data") if isinstance(entry, dict) else entry
    values = np.asarray(data, dtype=np.float64).reshape(-1)
    if shape != (-1,) and values.size != int(np.prod(shape)):
        raise CalibrationFileError(f"{path}: {key} has {values.size} values, expected {int(np.prod(shape))}")
    return values.reshape(shape)


def load_camera_calibration(path: str | Path) -> CameraCalibration:
    path = Path(path)
    if not path.is_file():
        raise CalibrationFileError(f"calibration file not found: {path}")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CalibrationFileError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise CalibrationFileError(f"{path}: expected a mapping with camera_matrix, image_width, ...")
    try:
        width, height = int(document["image_width"]), int(document["image_height"])
    except (KeyError, TypeError, ValueError):
        raise CalibrationFileError(f"{path}: image_width and image_height are required integers") from None
    K = _matrix(document, "camera_matrix", (3, 3), path)
    D = _matrix(document, "distortion_coefficients", (-1,), path, default=np.zeros(5))
    R = _matrix(document, "rectification_matrix", (3, 3), path, default=np.eye(3))
    P = _matrix(document, "projection_matrix", (3, 4), path, default=np.hstack([K, np.zeros((3, 1))]))
    return CameraCalibration(width, height, K, D, R, P, str(document.get("distortion_model", "plumb_bob")),
                             str(document.get("camera_name", "")))


def camera_info_message(make: MessageFactory, header: Any, calibration: CameraCalibration) -> Any:
    roi = make("sensor_msgs/msg/RegionOfInterest", x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return make("sensor_msgs/msg/CameraInfo", header=header, height=calibration.height, width=calibration.width,
                distortion_model=calibration.distortion_model, d=np.asarray(calibration.D, dtype=np.float64),
                k=calibration.K.reshape(-1).astype(np.float64), r=calibration.R.reshape(-1).astype(np.float64),
                p=calibration.P.reshape(-1).astype(np.float64), binning_x=0, binning_y=0, roi=roi)
