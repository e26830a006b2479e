"""Reading ROS 2 bags (sqlite3 or MCAP storage) with clear errors.

``path`` may be the bag folder (with ``metadata.yaml``) or a single ``.db3``
/ ``.mcap`` file. The bag is only ever opened for reading.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, Optional, Sequence

from rosbags.rosbag2 import Reader, ReaderError

from distillmatch_core.rosbag.bag_errors import BagOpenError, BagTopicError

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"


@dataclass(frozen=True)
class TopicSummary:
    name: str
    msgtype: str
    count: int


@dataclass
class BagMessage:
    topic: str
    log_time_ns: int  # when the recorder received it
    msg: Any  # deserialized rosbags message


def detect_storage(path: Path) -> str:
    """"sqlite3" or "mcap" from the file names (rosbags hides the metadata's storage identifier)."""
    path = Path(path)
    files = [path] if path.is_file() else list(path.iterdir())
    suffixes = {p.suffix for p in files}
    if ".mcap" in suffixes:
        return "mcap"
    if ".db3" in suffixes:
        return "sqlite3"
    return "unknown"


class InputBag:
    """Context manager: ``with InputBag(path, typestore) as bag: ...``."""

    def __init__(self, path: Path, typestore: Any):
        self.path = Path(path)
        self.typestore = typestore
        self._reader: Optional[Reader] = None

    def __enter__(self) -> "InputBag":
        self.open()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def open(self) -> None:
        if not self.path.exists():
            raise BagOpenError(f"no such bag: {self.path}")
        if self.path.is_dir() and not (self.path / "metadata.yaml").is_file():
            raise BagOpenError(f"{self.path} is a folder without metadata.yaml, so not a ROS 2 bag; "
                               "pass the bag folder or its .db3/.mcap file")
        try:
            reader = Reader(self.path)
            reader.open()
        except (ReaderError, OSError, ValueError, KeyError) as exc:
            raise BagOpenError(f"cannot read bag {self.path}: {exc}") from None
        self._reader = reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    @property
    def reader(self) -> Reader:
        if self._reader is None:
            raise RuntimeError("bag is not open")
        return self._reader

    @property
    def storage(self) -> str:
        return detect_storage(self.path)

    @property
    def message_count(self) -> int:
        return int(self.reader.message_count)

    def topics(self) -> Dict[str, TopicSummary]:
        return {name: TopicSummary(name, info.msgtype, int(info.msgcount or 0))
                for name, info in sorted(self.reader.topics.items())}

    def describe_topics(self) -> str:
        topics = self.topics()
        if not topics:
            return "the bag has no topics"
        return "the bag has: " + ", ".join(f"{t.name} [{t.msgtype}, {t.count} msgs]" for t in topics.values())

    def require_topic(self, name: str, allowed_types: Sequence[str]) -> TopicSummary:
        """The topic's summary; BagTopicError listing the bag's topics if missing or of a wrong type."""
        topic = self.topics().get(name)
        if topic is None:
            raise BagTopicError(f"topic {name} not found; {self.describe_topics()}")
        if topic.msgtype not in allowed_types:
            raise BagTopicError(f"topic {name} has type {topic.msgtype}, expected "
                                f"{' or '.join(allowed_types)}; {self.describe_topics()}")
        return topic

    def messages(self, topics: Iterable[str]) -> Iterator[BagMessage]:
        """Deserialized messages of ``topics`` in recorded (log time) order."""
        for connection, log_time, raw in self.raw_messages(topics):
            try:
                msg = self.typestore.deserialize_cdr(raw, connection.msgtype)
            except Exception as exc:  # noqa: BLE001 - rosbags raises several types for corrupt data
                raise BagOpenError(f"cannot deserialize a {connection.msgtype} message on {connection.topic} "
                                   f"at {log_time} ns: {exc}") from None
            yield BagMessage(connection.topic, int(log_time), msg)

    def raw_messages(self, topics: Iterable[str]) -> Iterator[tuple]:
        """(connection, log_time_ns, raw CDR bytes) of ``topics`` without deserializing."""
        wanted = set(topics)
        connections = [c for c in self.reader.connections if c.topic in wanted]
        if not connections:
            return
        iterator = self.reader.messages(connections=connections)
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001 - sqlite3, mcap and rosbags errors for damaged files
                raise BagOpenError(f"bag {self.path} is damaged or truncated: {type(exc).__name__}: {exc}") from None
            yield item
