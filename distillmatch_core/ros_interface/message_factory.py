"""How ROS-free code builds messages without knowing which message library is in use.

A ``MessageFactory`` is a callable ``make(msgtype, **fields) -> message`` where
``msgtype`` is the full ROS 2 type name (``"sensor_msgs/msg/Image"``). Three
implementations exist:

* ``namespace_factory``: ``types.SimpleNamespace`` objects (tests, debugging);
* ``RosbagsMessageFactory``: the dataclasses of a ``rosbags`` typestore (bag writing);
* ``RclpyMessageFactory``: the generated rclpy classes (the live node).

Array-valued fields are passed as numpy arrays; each factory converts them to
what its library wants.
"""
from __future__ import annotations

import array
import importlib
from types import SimpleNamespace
from typing import Any, Callable, Dict, Protocol

import numpy as np


class MessageFactory(Protocol):
    def __call__(self, msgtype: str, **fields: Any) -> Any: ...


def namespace_factory(msgtype: str, **fields: Any) -> SimpleNamespace:
    """Builds a SimpleNamespace carrying its type name in ``_msgtype`` (tests use it)."""
    return SimpleNamespace(_msgtype=msgtype, **fields)


class RosbagsMessageFactory:
    """Messages of a ``rosbags`` typestore (``rosbags.typesys.get_typestore(...)``)."""

    def __init__(self, typestore: Any):
        self.typestore = typestore

    def __call__(self, msgtype: str, **fields: Any) -> Any:
        try:
            cls = self.typestore.types[msgtype]
        except KeyError:
            raise KeyError(f"message type {msgtype!r} is not in the selected typestore") from None
        return cls(**fields)


# rclpy's generated setters store sequences of these element types as array.array; passing
# a numpy array or bytes instead makes the (debug-mode) setter validate every element in
# Python, which costs ~100 ms per VGA image. array.array with the right typecode is O(1).
_ARRAY_TYPECODES: Dict[np.dtype, str] = {
    np.dtype(np.uint8): "B",
    np.dtype(np.int8): "b",
    np.dtype(np.float32): "f",
    np.dtype(np.float64): "d",
    np.dtype(np.uint16): "H",
    np.dtype(np.int16): "h",
    np.dtype(np.uint32): "I",
    np.dtype(np.int32): "i",
}


def _to_rclpy_field(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        dtype = value.dtype.newbyteorder("=") if value.dtype.byteorder not in ("=", "|") else value.dtype
        typecode = _ARRAY_TYPECODES.get(np.dtype(dtype))
        if typecode is None:
            return value.tolist()
        return array.array(typecode, np.ascontiguousarray(value, dtype=dtype).tobytes())
    return value


class RclpyMessageFactory:
    """Generated rclpy message classes, imported on first use (``sensor_msgs.msg.Image``...)."""

    def __init__(self) -> None:
        self._classes: Dict[str, Callable[..., Any]] = {}

    def message_class(self, msgtype: str) -> Callable[..., Any]:
        cls = self._classes.get(msgtype)
        if cls is None:
            package, _, name = msgtype.split("/")
            cls = getattr(importlib.import_module(f"{package}.msg"), name)
            self._classes[msgtype] = cls
        return cls

    def __call__(self, msgtype: str, **fields: Any) -> Any:
        cls = self.message_class(msgtype)
        return cls(**{key: _to_rclpy_field(value) for key, value in fields.items()})


def make_header(make: MessageFactory, sec: int, nanosec: int, frame_id: str) -> Any:
    """std_msgs/Header built through ``make`` (never reuses a foreign library's object)."""
    stamp = make("builtin_interfaces/msg/Time", sec=int(sec), nanosec=int(nanosec))
    return make("std_msgs/msg/Header", stamp=stamp, frame_id=str(frame_id))


def copy_header(make: MessageFactory, header: Any, frame_id: str | None = None) -> Any:
    """A new Header with the stamp (and frame id unless overridden) of ``header``."""
    return make_header(make, header.stamp.sec, header.stamp.nanosec,
                       header.frame_id if frame_id is None else frame_id)


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_sec_nanosec(stamp_ns: int) -> tuple:
    """Integer nanoseconds -> (sec, nanosec) as builtin_interfaces/Time stores them."""
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return sec, nanosec
