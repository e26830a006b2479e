"""A size-1, drop-oldest hand-off between the synchroniser callback and the inference thread.

A matcher takes tens to hundreds of milliseconds per pair while cameras publish
at 10-60 Hz. Queueing would make latency grow without bound, so the callback
only ever replaces the pending pair and the inference thread always gets the
newest one; every replaced pair is counted as dropped (reported in
diagnostics).
"""
from __future__ import annotations

import threading
from typing import Generic, Optional, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Thread-safe slot holding at most one item; ``put`` never blocks, ``take`` waits."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: Optional[T] = None
        self._has_item = False
        self._closed = False
        self._put_count = 0
        self._dropped_count = 0
        self._taken_count = 0

    def put(self, item: T) -> bool:
        """Stores ``item``, replacing a pending one; returns True if a pending item was dropped."""
        with self._condition:
            if self._closed:
                return False
            dropped = self._has_item
            if dropped:
                self._dropped_count += 1
            self._item = item
            self._has_item = True
            self._put_count += 1
            self._condition.notify()
            return dropped

    def take(self, timeout: Optional[float] = None) -> Optional[T]:
        """The pending item (slot becomes empty), or None after ``timeout`` seconds or once closed."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._has_item or self._closed, timeout=timeout):
                return None
            if not self._has_item:
                return None
            item = self._item
            self._item = None
            self._has_item = False
            self._taken_count += 1
            return item

    def close(self) -> None:
        """Wakes a waiting consumer; later ``put`` calls are ignored (node shutdown)."""
        with self._condition:
            self._closed = True
            self._item = None
            self._has_item = False
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        with self._condition:
            return self._closed

    @property
    def put_count(self) -> int:
        with self._condition:
            return self._put_count

    @property
    def dropped_count(self) -> int:
        with self._condition:
            return self._dropped_count

    @property
    def taken_count(self) -> int:
        with self._condition:
            return self._taken_count
