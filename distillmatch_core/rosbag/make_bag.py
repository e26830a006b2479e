"""Building a ROS 2 bag from two folders of RGB and thermal frames (``distillmatch make-bag``).

Frames are paired by sorted file name. When the folders share file stems,
frame k of the bag is the k-th stem of their sorted union and a stem present
in only one folder is written on that topic only (a dropped frame, as real
recordings have). When they share no stem (``rgb_001.png`` / ``ir_001.png``),
files are paired by position in sorted order and the counts must match.

Frame k is stamped ``start + k / rate``; the thermal stamp can be shifted by a
constant offset and uniform jitter to emulate unsynchronised cameras. Each
message is recorded at its header stamp, i.e. as if delivered instantly.

Thermal pixels: ``mono16`` keeps 16-bit files unchanged and maps 8-bit files
to 16 bits by ``v * 257`` (0 -> 0, 255 -> 65535); ``mono8`` keeps 8-bit files
and percentile-normalises 16-bit ones. Colour thermal files (pseudo-colour
renderings) are converted to luma first.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from distillmatch_core.image_io import ImageReadError, read_image
from distillmatch_core.ros_interface.image_encoding import array_to_image_fields
from distillmatch_core.ros_interface.message_factory import RosbagsMessageFactory, make_header, ns_to_sec_nanosec
from distillmatch_core.rosbag.atomic_output import atomic_output_path
from distillmatch_core.rosbag.bag_errors import FrameFolderError
from distillmatch_core.rosbag.bag_writer import MessageBagWriter
from distillmatch_core.rosbag.camera_calibration_yaml import (CalibrationFileError, CameraCalibration,
                                                              camera_info_message, load_camera_calibration)
from distillmatch_core.rosbag.topic_names import DEFAULT_RGB_TOPIC, DEFAULT_THERMAL_TOPIC, camera_info_topic_for
from distillmatch_core.rosbag.typestore_selection import DEFAULT_TYPESTORE, load_typestore
from distillmatch_core.thermal_normalization import normalize_to_uint8_gray, to_gray

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pgm", ".ppm")
THERMAL_ENCODINGS = ("mono16", "mono8")


@dataclass
class MakeBagConfig:
    rgb_dir: Path
    thermal_dir: Path
    output: Path
    rate_hz: float
    storage: str = "sqlite3"  # "sqlite3" | "mcap"
    thermal_encoding: str = "mono16"  # "mono16" | "mono8"
    rgb_topic: str = DEFAULT_RGB_TOPIC
    thermal_topic: str = DEFAULT_THERMAL_TOPIC
    rgb_frame_id: str = "rgb_camera"
    thermal_frame_id: str = "thermal_camera"
    compressed: bool = False  # CompressedImage: JPEG for RGB, lossless PNG for thermal
    rgb_calibration: Optional[Path] = None  # ROS calibration YAML -> CameraInfo on <rgb ns>/camera_info
    thermal_calibration: Optional[Path] = None
    start_time_s: float = 1_700_000_000.0
    thermal_offset_s: float = 0.0
    thermal_jitter_s: float = 0.0  # thermal stamps get uniform noise in [-jitter, +jitter]
    seed: int = 0
    typestore: str = DEFAULT_TYPESTORE
    overwrite: bool = False
    progress: bool = False


@dataclass
class FrameFiles:
    index: int
    rgb: Optional[Path]
    thermal: Optional[Path]


@dataclass
class MakeBagSummary:
    output: Path
    frames: int
    topics: Dict[str, int] = field(default_factory=dict)  # topic -> message count
    duration_s: float = 0.0


def list_images(folder: Path) -> List[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FrameFolderError(f"not a folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FrameFolderError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def collect_frame_files(rgb_dir: Path, thermal_dir: Path) -> List[FrameFiles]:
    """Pairs the two folders' files by sorted name (see the module docstring for the rule)."""
    rgb_files, thermal_files = list_images(rgb_dir), list_images(thermal_dir)
    rgb_by_stem = {p.stem: p for p in rgb_files}
    thermal_by_stem = {p.stem: p for p in thermal_files}
    if len(rgb_by_stem) != len(rgb_files) or len(thermal_by_stem) != len(thermal_files):
        raise FrameFolderError("two files share a name stem (e.g. a.png and a.jpg) in one folder")
    if set(rgb_by_stem) & set(thermal_by_stem):
        stems = sorted(set(rgb_by_stem) | set(thermal_by_stem))
        return [FrameFiles(i, rgb_by_stem.get(s), thermal_by_stem.get(s)) for i, s in enumerate(stems)]
    if len(rgb_files) != len(thermal_files):
        raise FrameFolderError(
            f"the folders share no file names, so frames are paired by position, but {rgb_dir} has "
            f"{len(rgb_files)} images and {thermal_dir} has {len(thermal_files)}")
    return [FrameFiles(i, r, t) for i, (r, t) in enumerate(zip(rgb_files, thermal_files))]


def rgb_frame_to_pixels(image: np.ndarray) -> Tuple[np.ndarray, str]:
    """read_image output -> (array, encoding): (H, W, 3) uint8 'rgb8' or (H, W) uint8 'mono8'."""
    if image.dtype == np.uint16:
        image = np.clip(np.rint(image / 257.0), 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise FrameFolderError(f"RGB frames must be 8- or 16-bit, got {image.dtype}")
    if image.ndim == 2:
        return image, "mono8"
    return np.ascontiguousarray(image[..., :3]), "rgb8"


def thermal_frame_to_pixels(image: np.ndarray, encoding: str) -> np.ndarray:
    """read_image output -> (H, W) array of the requested thermal encoding."""
    if image.dtype not in (np.uint8, np.uint16):
        raise FrameFolderError(f"thermal frames must be 8- or 16-bit, got {image.dtype}")
    if image.ndim == 3:
        # Pseudo-colour or gray stored as RGB: identical channels are taken as they are.
        same = np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])
        image = image[..., 0] if same else to_gray(image)
    if encoding == "mono16":
        return image if image.dtype == np.uint16 else image.astype(np.uint16) * np.uint16(257)
    if encoding == "mono8":
        return image if image.dtype == np.uint8 else normalize_to_uint8_gray(image)
    raise FrameFolderError(f"unknown thermal encoding {encoding!r}; choose one of {', '.join(THERMAL_ENCODINGS)}")


def _compressed_fields(array: np.ndarray, encoding: str, lossless: bool) -> Dict[str, Any]:
    """Array -> CompressedImage fields in image_transport's format string convention."""
    if array.ndim == 3:
        to_encode = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
        transport_encoding = "bgr8"
    else:
        to_encode, transport_encoding = array, encoding
    extension, codec = (".png", "png") if lossless or array.dtype != np.uint8 else (".jpg", "jpeg")
    ok, buffer = cv2.imencode(extension, to_encode)
    if not ok:
        raise FrameFolderError(f"could not encode a {encoding} frame as {codec}")
    return {"format": f"{encoding}; {codec} compressed {transport_encoding}", "data": buffer.reshape(-1)}


def _read(path: Path) -> np.ndarray:
    try:
        return read_image(path)
    except ImageReadError as exc:
        raise FrameFolderError(str(exc)) from None


def _load_calibration(path: Optional[Path]) -> Optional[CameraCalibration]:
    if path is None:
        return None
    try:
        return load_camera_calibration(path)
    except CalibrationFileError as exc:
        raise FrameFolderError(str(exc)) from None


def make_bag(config: MakeBagConfig) -> MakeBagSummary:
    """Writes the bag (atomically: nothing appears at ``config.output`` unless it completes)."""
    if not config.rate_hz > 0:
        raise FrameFolderError(f"--rate must be > 0 Hz, got {config.rate_hz}")
    if config.thermal_encoding not in THERMAL_ENCODINGS:
        raise FrameFolderError(f"unknown thermal encoding {config.thermal_encoding!r}; "
                               f"choose one of {', '.join(THERMAL_ENCODINGS)}")
    frames = collect_frame_files(config.rgb_dir, config.thermal_dir)
    rgb_calibration = _load_calibration(config.rgb_calibration)
    thermal_calibration = _load_calibration(config.thermal_calibration)
    typestore = load_typestore(config.typestore)
    make = RosbagsMessageFactory(typestore)
    rng = np.random.default_rng(config.seed)
    image_type = "sensor_msgs/msg/CompressedImage" if config.compressed else "sensor_msgs/msg/Image"
    start_ns = int(round(config.start_time_s * 1e9))
    period_ns = 1e9 / config.rate_hz

    # (timestamp, topic, msgtype, message): collected per frame and written in time order, as a recorder would.
    def frame_messages(frame: FrameFiles) -> List[Tuple[int, str, str, Any]]:
        out = []
        rgb_stamp = start_ns + int(round(frame.index * period_ns))
        jitter = rng.uniform(-config.thermal_jitter_s, config.thermal_jitter_s) if config.thermal_jitter_s else 0.0
        thermal_stamp = rgb_stamp + int(round((config.thermal_offset_s + jitter) * 1e9))
        if frame.rgb is not None:
            pixels, encoding = rgb_frame_to_pixels(_read(frame.rgb))
            header = make_header(make, *ns_to_sec_nanosec(rgb_stamp), config.rgb_frame_id)
            out.append((rgb_stamp, config.rgb_topic, image_type,
                        _image_message(make, header, pixels, encoding, config.compressed, lossless=False)))
            if rgb_calibration is not None:
                out.append((rgb_stamp, camera_info_topic_for(config.rgb_topic), "sensor_msgs/msg/CameraInfo",
                            camera_info_message(make, header, rgb_calibration)))
        if frame.thermal is not None:
            pixels = thermal_frame_to_pixels(_read(frame.thermal), config.thermal_encoding)
            header = make_header(make, *ns_to_sec_nanosec(thermal_stamp), config.thermal_frame_id)
            out.append((thermal_stamp, config.thermal_topic, image_type,
                        _image_message(make, header, pixels, config.thermal_encoding, config.compressed,
                                       lossless=True)))
            if thermal_calibration is not None:
                out.append((thermal_stamp, camera_info_topic_for(config.thermal_topic),
                            "sensor_msgs/msg/CameraInfo", camera_info_message(make, header, thermal_calibration)))
        return out

    summary = MakeBagSummary(output=Path(config.output).absolute(), frames=len(frames))
    with atomic_output_path(config.output, overwrite=config.overwrite) as temporary:
        with MessageBagWriter(temporary, typestore, config.storage) as writer:
            # Jitter can reorder neighbouring frames' thermal messages, so a small look-behind
            # buffer keeps the written log times monotonic without holding the whole bag in memory.
            pending: List[Tuple[int, str, str, Any]] = []
            horizon_ns = int(2 * (abs(config.thermal_offset_s) + config.thermal_jitter_s) * 1e9) + 1
            for frame in tqdm(frames, desc="make-bag", unit="frame", disable=not config.progress):
                pending.extend(frame_messages(frame))
                pending.sort(key=lambda item: item[0])
                frame_start = start_ns + int(round(frame.index * period_ns))
                while pending and pending[0][0] < frame_start - horizon_ns:
                    stamp, topic, msgtype, msg = pending.pop(0)
                    writer.write(topic, msgtype, stamp, msg)
            for stamp, topic, msgtype, msg in pending:
                writer.write(topic, msgtype, stamp, msg)
            summary.topics = dict(writer.counts)
    summary.duration_s = (len(frames) - 1) / config.rate_hz if frames else 0.0
    return summary


def _image_message(make: RosbagsMessageFactory, header: Any, pixels: np.ndarray, encoding: str, compressed: bool,
                   lossless: bool) -> Any:
    if compressed:
        return make("sensor_msgs/msg/CompressedImage", header=header, **_compressed_fields(pixels, encoding, lossless))
    return make("sensor_msgs/msg/Image", header=header, **array_to_image_fields(pixels, encoding))
