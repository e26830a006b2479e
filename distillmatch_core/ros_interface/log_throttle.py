"""Throttling of repeated error logs, with a count of what was suppressed.

rclpy's own ``throttle_duration_sec`` is fixed per call site (changing it
raises ValueError), but the node's throttle period is a run-time parameter,
so the node throttles with this instead.
"""
from __future__ import annotations

import threading
from typing import Optional, Tuple


class LogThrottle:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_logged: Optional[float] = None
        self._suppressed = 0

    def should_log(self, now: float, period_s: float) -> Tuple[bool, int]:
        """(log it?, messages suppressed since the last logged one); ``now`` in monotonic seconds."""
        with self._lock:
            if self._last_logged is None or now - self._last_logged >= period_s:
                suppressed, self._suppressed = self._suppressed, 0
                self._last_logged = now
                return True, suppressed
            self._suppressed += 1
            return False, 0
