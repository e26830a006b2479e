"""sensor_msgs/Image and CompressedImage <-> numpy for every supported encoding."""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from distillmatch_core.ros_interface.image_encoding import (ENCODINGS, DecodedImage, ImageEncodingError,
                                                            array_to_image_fields, array_to_image_message,
                                                            compressed_image_to_array, decode_image_message,
                                                            image_message_to_array, to_matcher_rgb,
                                                            to_matcher_thermal)
from distillmatch_core.ros_interface.message_factory import make_header, namespace_factory
from distillmatch_core.thermal_normalization import normalize_to_uint8_gray

RNG = np.random.default_rng(7)


def random_image(encoding: str, height: int = 5, width: int = 7) -> np.ndarray:
    info = ENCODINGS[encoding]
    shape = (height, width) if info.channels == 1 else (height, width, info.channels)
    if info.dtype == np.float32:
        return RNG.normal(300.0, 20.0, size=shape).astype(np.float32)
    return RNG.integers(0, np.iinfo(info.dtype).max, size=shape, endpoint=True).astype(info.dtype)


def image_msg(array, encoding, step=None, big_endian=False, data=None):
    """A duck-typed Image with explicit control over step padding and byte order."""
    info = ENCODINGS[encoding]
    height, width = array.shape[:2]
    row_bytes = width * info.channels * info.dtype.itemsize
    step = row_bytes if step is None else step
    dtype = info.dtype.newbyteorder(">" if big_endian else "<")
    rows = np.ascontiguousarray(array, dtype=dtype).reshape(height, -1).view(np.uint8)
    padded = np.full((height, step), 0xAB, dtype=np.uint8)  # padding bytes must be ignored
    padded[:, :row_bytes] = rows
    return SimpleNamespace(height=height, width=width, encoding=encoding, is_bigendian=int(big_endian), step=step,
                           data=padded.tobytes() if data is None else data,
                           header=SimpleNamespace(stamp=SimpleNamespace(sec=1, nanosec=2), frame_id="cam"))


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_round_trip_every_encoding(encoding):
    array = random_image(encoding)
    fields = array_to_image_fields(array, encoding)
    assert fields["step"] == array.shape[1] * ENCODINGS[encoding].channels * ENCODINGS[encoding].dtype.itemsize
    assert fields["is_bigendian"] == 0 and fields["encoding"] == encoding
    msg = SimpleNamespace(**fields)
    back = image_message_to_array(msg)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_padded_rows_are_dropped(encoding):
    array = random_image(encoding, height=4, width=3)
    info = ENCODINGS[encoding]
    msg = image_msg(array, encoding, step=3 * info.channels * info.dtype.itemsize + 13)
    np.testing.assert_array_equal(image_message_to_array(msg), array)


@pytest.mark.parametrize("encoding", ["mono16", "16UC1", "32FC1"])
@pytest.mark.parametrize("padding", [0, 6])
def test_big_endian_multibyte_data(encoding, padding):
    array = random_image(encoding)
    info = ENCODINGS[encoding]
    msg = image_msg(array, encoding, step=array.shape[1] * info.dtype.itemsize + padding, big_endian=True)
    back = image_message_to_array(msg)
    assert back.dtype.isnative
    np.testing.assert_array_equal(back, array)


def test_big_endian_flag_ignored_for_8bit():
    array = random_image("rgb8")
    msg = image_msg(array, "rgb8")
    msg.is_bigendian = 1
    np.testing.assert_array_equal(image_message_to_array(msg), array)


def test_decoded_array_does_not_alias_message_buffer():
    array = random_image("mono8")
    buffer = bytearray(array.tobytes())
    msg = SimpleNamespace(height=5, width=7, encoding="mono8", is_bigendian=0, step=7, data=buffer)
    decoded = image_message_to_array(msg)
    buffer[0] ^= 0xFF
    assert decoded[0, 0] == array[0, 0]
    assert decoded.flags.c_contiguous and decoded.flags.writeable


@pytest.mark.parametrize("data_kind", ["bytes", "ndarray", "list", "memoryview"])
def test_data_field_container_types(data_kind):
    array = random_image("mono16")
    raw = np.ascontiguousarray(array, dtype="<u2").view(np.uint8).reshape(-1)
    data = {"bytes": raw.tobytes(), "ndarray": raw, "list": raw.tolist(), "memoryview": memoryview(raw.tobytes())}
    msg = SimpleNamespace(height=5, width=7, encoding="mono16", is_bigendian=0, step=14, data=data[data_kind])
    np.testing.assert_array_equal(image_message_to_array(msg), array)


def test_unknown_encoding_lists_supported():
    msg = SimpleNamespace(height=1, width=1, encoding="yuv422", is_bigendian=0, step=2, data=b"\0\0")
    with pytest.raises(ImageEncodingError, match="yuv422.*rgb8"):
        image_message_to_array(msg)


@pytest.mark.parametrize("change, pattern", [
    ({"step": 6}, "step 6 is smaller"),
    ({"data": b"\0" * 10}, "expected height\\*step"),
    ({"height": 0}, "empty image"),
])
def test_inconsistent_messages_are_rejected(change, pattern):
    fields = array_to_image_fields(random_image("rgb8", 2, 3), "rgb8")
    fields.update(change)
    with pytest.raises(ImageEncodingError, match=pattern):
        image_message_to_array(SimpleNamespace(**fields))


def test_array_encoding_mismatch_is_rejected():
    with pytest.raises(ImageEncodingError, match="does not fit"):
        array_to_image_fields(np.zeros((2, 2), np.uint8), "mono16")
    with pytest.raises(ImageEncodingError, match="does not fit"):
        array_to_image_fields(np.zeros((2, 2, 3), np.uint8), "rgba8")


def test_array_to_image_message_copies_header():
    make = namespace_factory
    header = make_header(make, 12, 34, "rgb_optical")
    msg = array_to_image_message(make, random_image("bgr8"), "bgr8", header)
    assert msg._msgtype == "sensor_msgs/msg/Image"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (12, 34, "rgb_optical")
    assert msg.header is not header


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_to_matcher_rgb_returns_rgb_order(encoding):
    rgb = random_image("rgb8")
    array = rgb.copy()
    if encoding.startswith("bgr"):
        array = array[..., ::-1]
    if encoding.endswith("a8"):
        array = np.concatenate([array, np.full(array.shape[:2] + (1,), 255, np.uint8)], axis=2)
    out = to_matcher_rgb(DecodedImage(np.ascontiguousarray(array), encoding))
    assert out.shape == rgb.shape and out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb)


def test_to_matcher_thermal_uses_percentile_normalisation_not_linear_scale():
    # Radiometric counts in a narrow band: a /65535 scale would give an almost black image.
    counts = np.linspace(29000, 31000, 20 * 30).reshape(20, 30).astype(np.uint16)
    out = to_matcher_thermal(DecodedImage(counts, "mono16"))
    assert out.dtype == np.uint8 and out.shape == counts.shape
    np.testing.assert_array_equal(out, normalize_to_uint8_gray(counts))
    assert out.max() == 255 and out.min() == 0
    assert (counts / 65535.0 * 255).max() < 125  # what the linear scale would have produced


@pytest.mark.parametrize("encoding", ["mono16", "16UC1", "32FC1", "mono8", "8UC1", "bgr8", "rgba8"])
def test_to_matcher_thermal_gives_uint8_gray(encoding):
    out = to_matcher_thermal(DecodedImage(random_image(encoding), encoding))
    assert out.dtype == np.uint8 and out.shape == (5, 7)


def compressed(array, extension, fmt, prefix=b""):
    ok, buffer = cv2.imencode(extension, array)
    assert ok
    return SimpleNamespace(format=fmt, data=np.frombuffer(prefix + buffer.tobytes(), np.uint8),
                           header=SimpleNamespace(stamp=SimpleNamespace(sec=0, nanosec=0), frame_id=""))


def test_compressed_png_mono16_is_lossless():
    array = random_image("mono16", 16, 20)
    decoded = compressed_image_to_array(compressed(array, ".png", "mono16; png compressed mono16"))
    assert decoded.encoding == "mono16"
    np.testing.assert_array_equal(decoded.array, array)


def test_compressed_jpeg_colour_decodes_to_bgr8():
    bgr = np.zeros((16, 16, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV order
    decoded = decode_image_message(compressed(bgr, ".jpg", "rgb8; jpeg compressed bgr8"))
    assert decoded.encoding == "bgr8"
    assert abs(int(decoded.array[8, 8, 0]) - 200) < 8
    assert to_matcher_rgb(decoded)[8, 8, 2] > 190  # blue is the last channel in RGB order


def test_compressed_depth_header_is_skipped():
    array = random_image("16UC1", 8, 8)
    msg = compressed(array, ".png", "16UC1; compressedDepth png", prefix=b"\0" * 12)
    decoded = compressed_image_to_array(msg)
    assert decoded.encoding == "mono16"
    np.testing.assert_array_equal(decoded.array, array)


def test_compressed_garbage_and_empty_payloads_raise():
    with pytest.raises(ImageEncodingError, match="cannot decode"):
        compressed_image_to_array(SimpleNamespace(format="jpeg", data=np.arange(50, dtype=np.uint8)))
    with pytest.raises(ImageEncodingError, match="empty"):
        compressed_image_to_array(SimpleNamespace(format="png", data=b""))
