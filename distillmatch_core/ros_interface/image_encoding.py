"""sensor_msgs/Image and sensor_msgs/CompressedImage <-> numpy, without cv_bridge.

cv_bridge's Python side needs a compiled ROS extension, breaks with NumPy 2 on
Humble and with OpenCV 5's changed type codes, so the node and the bag tools
share this pure-numpy conversion instead.

Arrays at this boundary keep the channel order of the encoding (a ``bgr8``
message decodes to a BGR array) and are always native-endian, C-contiguous
copies that do not alias the message buffer (the node hands them to another
thread). ``to_matcher_rgb`` / ``to_matcher_thermal`` then produce what the
matcher takes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import cv2
import numpy as np

from distillmatch_core.ros_interface.message_factory import MessageFactory, copy_header
from distillmatch_core.thermal_normalization import ThermalNormalization, normalize_to_uint8_gray


class ImageEncodingError(ValueError):
    """A message whose encoding, size or payload cannot be turned into an array."""


@dataclass(frozen=True)
class EncodingInfo:
    dtype: np.dtype  # element type of one channel
    channels: int
    color_order: Optional[str]  # "rgb" / "bgr" for colour encodings, None for single channel


# REP 118 / sensor_msgs/image_encodings names. 8UC1 is what several thermal drivers
# publish for 8-bit AGC output; it is the same layout as mono8.
ENCODINGS: Dict[str, EncodingInfo] = {
    "rgb8": EncodingInfo(np.dtype(np.uint8), 3, "rgb"),
    "bgr8": EncodingInfo(np.dtype(np.uint8), 3, "bgr"),
    "rgba8": EncodingInfo(np.dtype(np.uint8), 4, "rgb"),
    "bgra8": EncodingInfo(np.dtype(np.uint8), 4, "bgr"),
    "mono8": EncodingInfo(np.dtype(np.uint8), 1, None),
    "8UC1": EncodingInfo(np.dtype(np.uint8), 1, None),
    "mono16": EncodingInfo(np.dtype(np.uint16), 1, None),
    "16UC1": EncodingInfo(np.dtype(np.uint16), 1, None),
    "32FC1": EncodingInfo(np.dtype(np.float32), 1, None),
}


def encoding_info(encoding: str) -> EncodingInfo:
    try:
        return ENCODINGS[encoding]
    except KeyError:
        raise ImageEncodingError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(ENCODINGS)}") from None


def _message_bytes(data: Any) -> np.ndarray:
    """The ``data`` field (numpy array, bytes, array.array or list) -> 1-D uint8 view or copy."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8) if data.dtype.itemsize == 1 else \
            np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8)


@dataclass
class DecodedImage:
    """An image taken out of a message: ``array`` is (H, W) or (H, W, C) in ``encoding``'s layout."""

    array: np.ndarray
    encoding: str


def image_message_to_array(msg: Any) -> np.ndarray:
    """sensor_msgs/Image -> (H, W) for 1-channel, (H, W, C) otherwise; native-endian copy.

    Honours ``step`` (rows may be padded past ``width * bytes_per_pixel``) and
    ``is_bigendian`` (only meaningful for multi-byte encodings).
    """
    info = encoding_info(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageEncodingError(f"empty image ({width}x{height}, encoding {msg.encoding})")
    row_bytes = width * info.channels * info.dtype.itemsize
    if step < row_bytes:
        raise ImageEncodingError(
            f"step {step} is smaller than width*bytes_per_pixel = {row_bytes} ({width}px {msg.encoding})")
    raw = _message_bytes(msg.data)
    if raw.size < height * step:
        raise ImageEncodingError(
            f"image data holds {raw.size} bytes, expected height*step = {height}*{step} = {height * step}")
    rows = raw[: height * step].reshape(height, step)[:, :row_bytes]
    dtype = info.dtype
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">" if int(msg.is_bigendian) else "<")
    # A copy both drops the row padding and detaches from the message buffer.
    pixels = np.ascontiguousarray(rows).view(dtype).astype(info.dtype, copy=True)
    if info.channels == 1:
        return pixels.reshape(height, width)
    return pixels.reshape(height, width, info.channels)


def array_to_image_fields(array: np.ndarray, encoding: str) -> Dict[str, Any]:
    """(H, W) / (H, W, C) array -> Image field values (height, width, encoding, is_bigendian, step, data).

    Data is written little-endian and unpadded (``step = width * bytes_per_pixel``),
    which is what every ROS 2 publisher on common hardware produces.
    """
    info = encoding_info(encoding)
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1 and info.channels == 1:
        array = array[..., 0]
    expected_ndim = 2 if info.channels == 1 else 3
    if array.ndim != expected_ndim or (expected_ndim == 3 and array.shape[2] != info.channels):
        raise ImageEncodingError(f"array of shape {array.shape} does not fit encoding {encoding} "
                                 f"({info.channels} channel(s))")
    if array.dtype != info.dtype:
        raise ImageEncodingError(f"array dtype {array.dtype} does not fit encoding {encoding} ({info.dtype})")
    height, width = array.shape[:2]
    data = np.ascontiguousarray(array, dtype=info.dtype.newbyteorder("<")).reshape(-1).view(np.uint8)
    return {
        "height": int(height),
        "width": int(width),
        "encoding": encoding,
        "is_bigendian": 0,
        "step": int(width * info.channels * info.dtype.itemsize),
        "data": data,
    }


def array_to_image_message(make: MessageFactory, array: np.ndarray, encoding: str, header: Any) -> Any:
    """Builds a sensor_msgs/Image with a copy of ``header``'s stamp and frame id."""
    return make("sensor_msgs/msg/Image", header=copy_header(make, header), **array_to_image_fields(array, encoding))


# compressed_depth_image_transport prepends a 12-byte ConfigHeader (int32 format enum and
# two float32 depth quantisation parameters) to the PNG of a 16UC1 depth-like image.
_COMPRESSED_DEPTH_HEADER_BYTES = 12


def compressed_image_to_array(msg: Any) -> DecodedImage:
    """sensor_msgs/CompressedImage (jpeg/png, image_transport or compressedDepth) -> DecodedImage.

    Colour images decode to ``bgr8``/``bgra8`` (OpenCV's order), gray to
    ``mono8`` or ``mono16`` by bit depth.
    """
    fmt = str(getattr(msg, "format", "") or "")
    raw = _message_bytes(msg.data)
    if "compresseddepth" in fmt.lower():
        if fmt.split(";")[0].strip() == "32FC1":
            raise ImageEncodingError("compressedDepth 32FC1 (quantised inverse depth) is not supported; "
                                     "record thermal as 16UC1/mono16")
        raw = raw[_COMPRESSED_DEPTH_HEADER_BYTES:]
    if raw.size == 0:
        raise ImageEncodingError(f"empty CompressedImage payload (format {fmt!r})")
    image = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageEncodingError(f"cannot decode CompressedImage payload (format {fmt!r})")
    if image.ndim == 2:
        if image.dtype == np.uint8:
            return DecodedImage(image, "mono8")
        if image.dtype == np.uint16:
            return DecodedImage(image, "mono16")
    elif image.ndim == 3 and image.dtype == np.uint8:
        if image.shape[2] == 3:
            return DecodedImage(image, "bgr8")
        if image.shape[2] == 4:
            return DecodedImage(image, "bgra8")
    raise ImageEncodingError(f"CompressedImage decoded to an unsupported layout {image.shape} {image.dtype}")


def is_compressed_image(msg: Any) -> bool:
    """CompressedImage has ``format`` and no ``encoding``; Image has ``encoding``."""
    return hasattr(msg, "format") and not hasattr(msg, "encoding")


def decode_image_message(msg: Any) -> DecodedImage:
    """Image or CompressedImage -> DecodedImage (dispatch on the message's fields)."""
    if is_compressed_image(msg):
        return compressed_image_to_array(msg)
    return DecodedImage(image_message_to_array(msg), str(msg.encoding))


def to_matcher_rgb(decoded: DecodedImage, normalization: ThermalNormalization | None = None) -> np.ndarray:
    """Colour camera frame -> (H, W, 3) uint8 RGB, or (H, W) uint8 for a mono camera.

    16-bit or float "RGB" frames (rare: a mono16 visible camera) are stretched
    to 8 bits like thermal frames, since the matcher is trained on 8-bit input.
    """
    info = encoding_info(decoded.encoding)
    image = decoded.array
    if info.channels == 1:
        if info.dtype == np.uint8:
            return image
        return normalize_to_uint8_gray(image, normalization)
    if info.color_order == "bgr":
        image = image[..., 2::-1]
    return np.ascontiguousarray(image[..., :3])


def to_matcher_thermal(decoded: DecodedImage, normalization: ThermalNormalization | None = None) -> np.ndarray:
    """Thermal frame of any supported encoding -> (H, W) uint8 gray via percentile normalisation.

    A linear /65535 scale would leave radiometric counts (a narrow band of the
    16-bit range) almost black, hence the core's percentile stretch.
    """
    info = encoding_info(decoded.encoding)
    image = decoded.array
    if info.color_order == "bgr":
        image = image[..., 2::-1]
    if info.channels == 4:
        image = image[..., :3]
    return normalize_to_uint8_gray(image, normalization)


def image_size(decoded: DecodedImage) -> Tuple[int, int]:
    """(width, height) of a decoded image."""
    return int(decoded.array.shape[1]), int(decoded.array.shape[0])
