"""The per-frame work of the node's inference thread, also run by offline bag evaluation.

One call of ``FrameProcessor.process`` turns a synchronised RGB/thermal
message pair into the node's output messages: decode -> match -> homography
(thermal -> RGB) -> temporal filter -> messages. Any exception on a frame is
caught and reported in the outcome, because one corrupt frame must never stop
a robot's perception.

The matcher is injected: anything with
``match(image0, image1, modality0=..., modality1=...) -> MatchResult`` works
(the real ``distillmatch_core.Matcher`` or a test double).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

import numpy as np

from distillmatch_core.common_field_of_view import SharedViewConfig, shared_regions
from distillmatch_core.match_result import MatchResult
from distillmatch_core.pixel_region import Region
from distillmatch_core.ros_interface.homography_filter import (HomographyFilterConfig, HomographyTemporalFilter,
                                                               normalize_homography)
from distillmatch_core.ros_interface.image_encoding import (array_to_image_message, decode_image_message,
                                                            image_size, to_matcher_rgb, to_matcher_thermal)
from distillmatch_core.match_drawing import binary_colors, render_matches
from distillmatch_core.ros_interface.message_factory import MessageFactory, stamp_to_ns
from distillmatch_core.ros_interface.output_messages import (aligned_thermal_message, camera_matrix_from_info,
                                                             correspondence_cloud_message, homography_message,
                                                             relative_pose_message, thermal_pose_in_rgb_frame)
from distillmatch_core.thermal_normalization import ThermalNormalization


class PairMatcher(Protocol):
    def match(self, image0: np.ndarray, image1: np.ndarray, modality0: str = "visible",
              modality1: str = "infrared", roi0: Optional[Region] = None,
              roi1: Optional[Region] = None) -> MatchResult: ...


@dataclass(frozen=True)
class ProcessingConfig:
    """Thresholds of the per-frame work; all may change while the node runs."""

    match_confidence_threshold: float = 0.0  # matches below are discarded before geometry
    ransac_threshold_px: float = 3.0  # MAGSAC++ threshold, pixels of the thermal image
    min_inliers: int = 12  # fewer homography inliers -> the frame produces no homography
    thermal_normalization: ThermalNormalization = field(default_factory=ThermalNormalization)
    homography_filter: HomographyFilterConfig = field(default_factory=HomographyFilterConfig)
    publish_aligned_thermal: bool = True
    shared_view: SharedViewConfig = field(default_factory=SharedViewConfig)


@dataclass
class FramePair:
    """One synchronised pair as the synchroniser delivered it (duck-typed messages)."""

    rgb: Any  # sensor_msgs/Image or CompressedImage
    thermal: Any
    rgb_camera_info: Any = None  # sensor_msgs/CameraInfo, latest seen, or None
    thermal_camera_info: Any = None


@dataclass
class FrameMessages:
    """Output messages of one frame; None where the frame produced nothing for that topic."""

    correspondences: Any = None
    homography: Any = None
    relative_pose: Any = None
    aligned_thermal: Any = None
    debug_image: Any = None

    def items(self):
        """(output name, message) for every message present, in a fixed order."""
        for name in ("correspondences", "homography", "relative_pose", "aligned_thermal", "debug_image"):
            msg = getattr(self, name)
            if msg is not None:
                yield name, msg


@dataclass
class FrameOutcome:
    rgb_stamp_ns: Optional[int]
    thermal_stamp_ns: Optional[int]
    rgb_size: Optional[tuple] = None  # (W, H) of the decoded RGB frame
    thermal_size: Optional[tuple] = None  # (w, h) of the decoded thermal frame
    num_matches: int = 0
    num_inliers: int = 0
    homography_estimate: Optional[np.ndarray] = None  # (3, 3) this frame's own thermal -> RGB fit
    homography: Optional[np.ndarray] = None  # (3, 3) published (temporally filtered) thermal -> RGB
    filter_accepted: Optional[bool] = None  # None when the frame had no estimate or the filter is off
    relative_pose: Optional[tuple] = None  # (R (3, 3), t (3,)) thermal camera in the RGB frame
    match_time_s: float = 0.0
    processing_time_s: float = 0.0
    messages: FrameMessages = field(default_factory=FrameMessages)
    overlay: Optional[np.ndarray] = None  # (H, W + w, 3) uint8 RGB side-by-side, only when requested
    match_regions: tuple = (None, None)  # (RGB, thermal) Region matched within, None for the whole image
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None


class FrameProcessor:
    """Owns the matcher and the homography filter; call ``process`` from one thread only."""

    def __init__(self, matcher: PairMatcher, make: MessageFactory, config: ProcessingConfig = ProcessingConfig()):
        self.matcher = matcher
        self.make = make
        self._config_lock = threading.Lock()
        self._config = config
        self._filter = HomographyTemporalFilter(config.homography_filter)

    @property
    def config(self) -> ProcessingConfig:
        with self._config_lock:
            return self._config

    def set_config(self, config: ProcessingConfig) -> None:
        """Safe from any thread (parameter callbacks); takes effect from the next frame."""
        with self._config_lock:
            self._config = config

    def process(self, pair: FramePair, want_overlay: bool = False) -> FrameOutcome:
        started = time.perf_counter()
        outcome = FrameOutcome(rgb_stamp_ns=_header_stamp_ns(pair.rgb), thermal_stamp_ns=_header_stamp_ns(pair.thermal))
        try:
            self._process(pair, outcome, want_overlay)
        except Exception as exc:  # noqa: BLE001 - a bad frame is reported, never fatal
            outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.processing_time_s = time.perf_counter() - started
        return outcome

    def _process(self, pair: FramePair, outcome: FrameOutcome, want_overlay: bool) -> None:
        config = self.config
        if self._filter.config != config.homography_filter:
            self._filter.set_config(config.homography_filter)
        make = self.make
        rgb = decode_image_message(pair.rgb)
        thermal = decode_image_message(pair.thermal)
        outcome.rgb_size, outcome.thermal_size = image_size(rgb), image_size(thermal)
        rgb_input = to_matcher_rgb(rgb, config.thermal_normalization)  # (H, W, 3) or (H, W) uint8
        thermal_input = to_matcher_thermal(thermal, config.thermal_normalization)  # (h, w) uint8

        regions = {}
        if config.shared_view.enabled and pair.rgb_camera_info is not None and pair.thermal_camera_info is not None:
            roi_rgb, roi_thermal = shared_regions(
                intrinsics_for_image(pair.rgb_camera_info, outcome.rgb_size), outcome.rgb_size,
                intrinsics_for_image(pair.thermal_camera_info, outcome.thermal_size), outcome.thermal_size,
                config.shared_view.margin)
            # Passed only when set, so matchers without regions (test doubles) serve rigs that need none.
            regions = {k: v for k, v in (("roi0", roi_rgb), ("roi1", roi_thermal)) if v is not None}
        outcome.match_regions = (regions.get("roi0"), regions.get("roi1"))
        match_started = time.perf_counter()
        result = self.matcher.match(rgb_input, thermal_input, modality0="visible", modality1="infrared", **regions)
        outcome.match_time_s = time.perf_counter() - match_started
        if config.match_confidence_threshold > 0:
            result = result.filter(result.confidence >= config.match_confidence_threshold)
        outcome.num_matches = len(result)

        inliers = np.zeros(len(result), dtype=bool)
        estimate = result.homography(ransac_threshold=config.ransac_threshold_px)
        if estimate is not None:
            inliers = estimate.inliers
            outcome.num_inliers = estimate.num_inliers
            if estimate.num_inliers >= config.min_inliers:
                # MatchResult's H maps image0 (RGB) -> image1 (thermal); outputs are thermal -> RGB.
                outcome.homography_estimate = normalize_homography(np.linalg.inv(estimate.H))
        if outcome.homography_estimate is not None:
            if config.homography_filter.enabled:
                filtered = self._filter.update(outcome.homography_estimate, image_size(thermal))
                outcome.filter_accepted = filtered.accepted
                outcome.homography = filtered.H
            else:
                outcome.homography = outcome.homography_estimate

        header = pair.rgb.header
        outcome.messages.correspondences = correspondence_cloud_message(
            make, header, result.keypoints1, result.keypoints0, result.confidence, inliers)
        if outcome.homography is not None:
            outcome.messages.homography = homography_message(make, outcome.homography)
            if config.publish_aligned_thermal:
                outcome.messages.aligned_thermal = aligned_thermal_message(
                    make, header, thermal.array, thermal.encoding, outcome.homography, image_size(rgb))
        if pair.rgb_camera_info is not None and pair.thermal_camera_info is not None:
            self._add_relative_pose(pair, result, config, outcome)
        if want_overlay:
            outcome.overlay = render_matches(rgb_input, thermal_input, result.keypoints0, result.keypoints1,
                                             binary_colors(inliers),
                                             caption=f"{len(result)} matches, {int(inliers.sum())} inliers")
            outcome.messages.debug_image = array_to_image_message(make, outcome.overlay, "rgb8", header)

    def _add_relative_pose(self, pair: FramePair, result: MatchResult, config: ProcessingConfig,
                           outcome: FrameOutcome) -> None:
        K_rgb = intrinsics_for_image(pair.rgb_camera_info, outcome.rgb_size)
        K_thermal = intrinsics_for_image(pair.thermal_camera_info, outcome.thermal_size)
        pose = result.relative_pose(K_rgb, K_thermal, ransac_threshold=config.ransac_threshold_px)
        if pose is None:
            return
        R, t = thermal_pose_in_rgb_frame(pose.R, pose.t)
        outcome.relative_pose = (R, t)
        child_frame = pair.thermal.header.frame_id or "thermal_camera"
        outcome.messages.relative_pose = relative_pose_message(self.make, pair.rgb.header, child_frame, R, t)


def intrinsics_for_image(info: Any, size: tuple) -> np.ndarray:
    """CameraInfo's K for an image of ``size`` (W, H): scaled when the calibration's width/height differ (a
    driver publishing a resized stream with the full-resolution calibration)."""
    K = camera_matrix_from_info(info)
    width, height = int(getattr(info, "width", 0) or 0), int(getattr(info, "height", 0) or 0)
    if width > 0 and height > 0 and (width, height) != tuple(size):
        K = np.diag([size[0] / width, size[1] / height, 1.0]) @ K
    return K


def _header_stamp_ns(msg: Any) -> Optional[int]:
    try:
        return stamp_to_ns(msg.header.stamp)
    except AttributeError:
        return None

