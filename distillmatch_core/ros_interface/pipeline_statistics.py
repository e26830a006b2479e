"""Counters, rates and latencies of the running node, turned into a diagnostics status.

Written to from the subscriber callbacks and the inference thread and read
by the diagnostics timer, hence one lock around everything. Times are taken
by the caller (``time.monotonic()``), which keeps this testable.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, Optional, Tuple

from distillmatch_core.ros_interface.processing_pipeline import FrameOutcome

# diagnostic_msgs/DiagnosticStatus levels
OK, WARN, ERROR, STALE = 0, 1, 2, 3


class RateMeter:
    """Events per second over the last ``window_s`` seconds (0 once a stream stops)."""

    def __init__(self, window_s: float = 5.0):
        self.window_s = window_s
        self._times: Deque[float] = deque()
        self._first_tick: Optional[float] = None

    def tick(self, now: float) -> None:
        if self._first_tick is None:
            self._first_tick = now
        self._times.append(now)
        self._expire(now)

    def rate(self, now: float) -> float:
        self._expire(now)
        if self._first_tick is None:
            return 0.0
        # Until a full window has passed, divide by the time observed so far (fencepost: the
        # first event opens the interval), afterwards by the window.
        observed = min(self.window_s, now - self._first_tick)
        young = observed < self.window_s
        events = len(self._times) - (1 if young else 0)
        if observed <= 0 or events <= 0:
            return 0.0
        return events / observed

    def _expire(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()


@dataclass
class StatisticsSnapshot:
    rgb_rate_hz: float
    thermal_rate_hz: float
    pair_rate_hz: float
    processed_rate_hz: float
    frames_processed: int
    frames_failed: int
    frames_dropped: int
    last_num_matches: int
    last_num_inliers: int
    last_processing_time_s: Optional[float]
    mean_processing_time_s: Optional[float]
    last_latency_s: Optional[float]  # publication time minus the RGB header stamp
    homography_rate: float  # fraction of recent processed frames that produced a homography
    last_error: str
    seconds_since_last_error: Optional[float]
    seconds_since_last_pair: Optional[float]
    seconds_since_last_input: Optional[float]


class PipelineStatistics:
    def __init__(self, window_s: float = 5.0, recent_frames: int = 50):
        self._lock = threading.Lock()
        self._rates: Dict[str, RateMeter] = {name: RateMeter(window_s) for name in
                                             ("rgb", "thermal", "pair", "processed")}
        self._processing_times: Deque[float] = deque(maxlen=recent_frames)
        self._homography_flags: Deque[bool] = deque(maxlen=recent_frames)
        self._frames_processed = 0
        self._frames_failed = 0
        self._frames_dropped = 0
        self._last: Tuple[int, int] = (0, 0)
        self._last_processing_time: Optional[float] = None
        self._last_latency: Optional[float] = None
        self._last_error = ""
        self._last_error_time: Optional[float] = None
        self._last_pair_time: Optional[float] = None
        self._last_input_time: Optional[float] = None

    def record_input(self, stream: str, now: float) -> None:
        """``stream``: "rgb" or "thermal" (a message arrived, synchronised or not)."""
        with self._lock:
            self._rates[stream].tick(now)
            self._last_input_time = now

    def record_pair(self, now: float, dropped_older: bool) -> None:
        with self._lock:
            self._rates["pair"].tick(now)
            self._last_pair_time = now
            if dropped_older:
                self._frames_dropped += 1

    def record_outcome(self, outcome: FrameOutcome, now: float, latency_s: Optional[float] = None) -> None:
        with self._lock:
            self._rates["processed"].tick(now)
            self._frames_processed += 1
            self._last_processing_time = outcome.processing_time_s
            self._processing_times.append(outcome.processing_time_s)
            self._last_latency = latency_s
            if outcome.ok:
                self._last = (outcome.num_matches, outcome.num_inliers)
                self._homography_flags.append(outcome.homography is not None)
            else:
                self._frames_failed += 1
                self._homography_flags.append(False)
                self._last_error = outcome.error or "unknown error"
                self._last_error_time = now

    def record_error(self, message: str, now: float) -> None:
        """An error outside frame processing (e.g. publishing failed)."""
        with self._lock:
            self._last_error = message
            self._last_error_time = now

    def snapshot(self, now: float) -> StatisticsSnapshot:
        with self._lock:
            times = list(self._processing_times)
            flags = list(self._homography_flags)
            return StatisticsSnapshot(
                rgb_rate_hz=self._rates["rgb"].rate(now),
                thermal_rate_hz=self._rates["thermal"].rate(now),
                pair_rate_hz=self._rates["pair"].rate(now),
                processed_rate_hz=self._rates["processed"].rate(now),
                frames_processed=self._frames_processed,
                frames_failed=self._frames_failed,
                frames_dropped=self._frames_dropped,
                last_num_matches=self._last[0],
                last_num_inliers=self._last[1],
                last_processing_time_s=self._last_processing_time,
                mean_processing_time_s=sum(times) / len(times) if times else None,
                last_latency_s=self._last_latency,
                homography_rate=sum(flags) / len(flags) if flags else 0.0,
                last_error=self._last_error,
                seconds_since_last_error=None if self._last_error_time is None else now - self._last_error_time,
                seconds_since_last_pair=None if self._last_pair_time is None else now - self._last_pair_time,
                seconds_since_last_input=None if self._last_input_time is None else now - self._last_input_time,
            )


def diagnostic_summary(snap: StatisticsSnapshot, stale_after_s: float = 5.0,
                       error_recent_s: float = 10.0) -> Tuple[int, str, Dict[str, str]]:
    """Snapshot -> (level, message, key/value pairs) for a DiagnosticStatus."""
    values = {
        "rgb rate (Hz)": f"{snap.rgb_rate_hz:.2f}",
        "thermal rate (Hz)": f"{snap.thermal_rate_hz:.2f}",
        "synchronised pair rate (Hz)": f"{snap.pair_rate_hz:.2f}",
        "processed rate (Hz)": f"{snap.processed_rate_hz:.2f}",
        "frames processed": str(snap.frames_processed),
        "frames failed": str(snap.frames_failed),
        "frames dropped (matcher busy)": str(snap.frames_dropped),
        "matches (last frame)": str(snap.last_num_matches),
        "inliers (last frame)": str(snap.last_num_inliers),
        "frames with homography (recent)": f"{100.0 * snap.homography_rate:.0f}%",
        "processing time (last, s)": _fmt(snap.last_processing_time_s),
        "processing time (mean, s)": _fmt(snap.mean_processing_time_s),
        "latency stamp->output (last, s)": _fmt(snap.last_latency_s),
        "last error": snap.last_error or "none",
    }
    if snap.seconds_since_last_input is None or snap.seconds_since_last_input > stale_after_s:
        return WARN, "no input images", values
    if snap.seconds_since_last_pair is None or snap.seconds_since_last_pair > stale_after_s:
        return WARN, "images arrive but none synchronise (check stamps and slop)", values
    if snap.seconds_since_last_error is not None and snap.seconds_since_last_error < error_recent_s:
        return ERROR if snap.processed_rate_hz == 0 or snap.homography_rate == 0 else WARN, \
            f"frame errors: {snap.last_error}", values
    if snap.frames_processed and snap.homography_rate == 0:
        return WARN, "no homography in recent frames (too few inliers)", values
    return OK, "matching", values


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3f}"
