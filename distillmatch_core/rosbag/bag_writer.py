"""Writing ROS 2 bags: topics created on first use, messages serialized with an explicit typestore.

Bags are written in rosbag2 format version 8, the newest one Humble's
rosbag2 reads (Jazzy reads it too), so one file replays on both.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from rosbags.rosbag2 import StoragePlugin, Writer

ROSBAG_FORMAT_VERSION = 8
STORAGE_PLUGINS: Dict[str, StoragePlugin] = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}


class MessageBagWriter:
    """Context manager; ``path`` must not exist (rosbags creates it)."""

    def __init__(self, path: Path, typestore: Any, storage: str = "sqlite3"):
        if storage not in STORAGE_PLUGINS:
            raise ValueError(f"unknown storage {storage!r}; choose one of {', '.join(STORAGE_PLUGINS)}")
        self.path = Path(path)
        self.typestore = typestore
        self.storage = storage
        self._writer = Writer(self.path, version=ROSBAG_FORMAT_VERSION, storage_plugin=STORAGE_PLUGINS[storage])
        self._connections: Dict[str, Any] = {}
        self.counts: Dict[str, int] = {}
        self.types: Dict[str, str] = {}

    def __enter__(self) -> "MessageBagWriter":
        self._writer.open()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._writer.close()

    def _connection(self, topic: str, msgtype: str) -> Any:
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=self.typestore)
            self._connections[topic] = connection
            self.types[topic] = msgtype
            self.counts[topic] = 0
        elif self.types[topic] != msgtype:
            raise ValueError(f"topic {topic} already holds {self.types[topic]}, not {msgtype}")
        return connection

    def write(self, topic: str, msgtype: str, timestamp_ns: int, msg: Any) -> None:
        self.write_raw(topic, msgtype, timestamp_ns, self.typestore.serialize_cdr(msg, msgtype))

    def write_raw(self, topic: str, msgtype: str, timestamp_ns: int, raw: bytes | memoryview) -> None:
        connection = self._connection(topic, msgtype)
        self._writer.write(connection, int(timestamp_ns), raw)
        self.counts[topic] += 1
