"""The inference thread's per-frame work, its statistics and error throttling (no ROS)."""
from dataclasses import replace

import numpy as np
import pytest

from distillmatch_core.ros_interface.homography_filter import mean_corner_distance
from distillmatch_core.ros_interface.image_encoding import array_to_image_message
from distillmatch_core.ros_interface.log_throttle import LogThrottle
from distillmatch_core.ros_interface.message_factory import make_header, namespace_factory
from distillmatch_core.ros_interface.output_messages import correspondence_cloud_to_array, homography_from_message
from distillmatch_core.ros_interface.pipeline_statistics import (ERROR, OK, WARN, PipelineStatistics, RateMeter,
                                                                 diagnostic_summary)
from distillmatch_core.ros_interface.processing_pipeline import (FrameOutcome, FramePair, FrameProcessor,
                                                                 ProcessingConfig)
from distillmatch_core.thermal_normalization import normalize_to_uint8_gray
from fake_matchers import FakeHomographyMatcher, FakeStereoMatcher

make = namespace_factory
H_RGB_TO_THERMAL = np.array([[0.5, 0.01, 3.0], [-0.01, 0.5, 2.0], [0.0, 0.0, 1.0]])
RGB_SIZE, THERMAL_SIZE = (160, 120), (80, 60)


def frame_pair(rgb_encoding="rgb8", thermal_encoding="mono16", stamp=(100, 5), with_info=False):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, size=(120, 160, 3), dtype=np.uint8)
    if rgb_encoding == "bgr8":
        rgb = np.ascontiguousarray(rgb[..., ::-1])
    thermal = rng.integers(28000, 32000, size=(60, 80), dtype=np.uint16)
    rgb_msg = array_to_image_message(make, rgb, rgb_encoding, make_header(make, *stamp, "rgb_optical"))
    thermal_msg = array_to_image_message(make, thermal, thermal_encoding, make_header(make, *stamp, "thermal_optical"))
    infos = (None, None)
    if with_info:
        infos = (make("sensor_msgs/msg/CameraInfo", k=np.array([150.0, 0, 80, 0, 150.0, 60, 0, 0, 1])),
                 make("sensor_msgs/msg/CameraInfo", k=np.array([75.0, 0, 40, 0, 75.0, 30, 0, 0, 1])))
    return FramePair(rgb_msg, thermal_msg, *infos), rgb, thermal


def test_frame_produces_all_outputs_with_expected_values():
    matcher = FakeHomographyMatcher(H_RGB_TO_THERMAL, outlier_fraction=0.1)
    processor = FrameProcessor(matcher, make)
    pair, rgb, thermal = frame_pair()
    outcome = processor.process(pair)
    assert outcome.ok, outcome.error
    call = matcher.calls[0]
    assert (call["modality0"], call["modality1"]) == ("visible", "infrared")
    assert call["shape0"] == (120, 160, 3) and call["dtype0"] == np.uint8
    assert call["shape1"] == (60, 80) and call["dtype1"] == np.uint8  # thermal normalised to 8-bit gray
    assert (outcome.rgb_size, outcome.thermal_size) == (RGB_SIZE, THERMAL_SIZE)
    assert (outcome.num_matches, outcome.num_inliers) == (80, 72)
    H_thermal_to_rgb = np.linalg.inv(H_RGB_TO_THERMAL)
    assert mean_corner_distance(outcome.homography, H_thermal_to_rgb, *THERMAL_SIZE) < 0.05
    assert outcome.rgb_stamp_ns == outcome.thermal_stamp_ns == 100_000_000_005
    assert outcome.processing_time_s >= outcome.match_time_s > 0

    msgs = outcome.messages
    assert msgs.relative_pose is None and msgs.debug_image is None  # no camera_info, no overlay requested
    cloud = correspondence_cloud_to_array(msgs.correspondences)
    result = FakeHomographyMatcher(H_RGB_TO_THERMAL).match(np.zeros((120, 160, 3), np.uint8),
                                                           np.zeros((60, 80), np.uint8))
    np.testing.assert_allclose(cloud[:, 0:2], result.keypoints1, atol=1e-4)  # u/v_thermal
    np.testing.assert_allclose(cloud[:, 2:4], result.keypoints0, atol=1e-4)  # u/v_rgb
    np.testing.assert_allclose(cloud[:, 4], result.confidence, atol=1e-6)
    assert cloud[:, 5].sum() == 72 and set(np.unique(cloud[:, 5])) == {0.0, 1.0}
    assert msgs.correspondences.header.frame_id == "rgb_optical"
    np.testing.assert_allclose(homography_from_message(msgs.homography), outcome.homography)
    aligned = msgs.aligned_thermal
    assert (aligned.width, aligned.height, aligned.encoding) == (160, 120, "mono16")
    assert aligned.header.frame_id == "rgb_optical" and aligned.header.stamp.nanosec == 5
    warped = np.frombuffer(aligned.data.tobytes(), "<u2").reshape(120, 160)
    x_t, y_t, w = H_RGB_TO_THERMAL @ np.array([100.0, 50.0, 1.0])
    assert abs(int(warped[50, 100]) - int(thermal[int(round(y_t / w)), int(round(x_t / w))])) < 2500


def test_bgr_input_reaches_the_matcher_in_rgb_order():
    class Recorder(FakeHomographyMatcher):
        def match(self, image0, image1, **kwargs):
            self.image0 = image0.copy()
            return super().match(image0, image1, **kwargs)

    matcher = Recorder(H_RGB_TO_THERMAL)
    pair, bgr, _ = frame_pair(rgb_encoding="bgr8")
    FrameProcessor(matcher, make).process(pair)
    np.testing.assert_array_equal(matcher.image0, bgr[..., ::-1])


def test_thermal_goes_through_core_normalisation():
    class Recorder(FakeHomographyMatcher):
        def match(self, image0, image1, **kwargs):
            self.image1 = image1.copy()
            return super().match(image0, image1, **kwargs)

    matcher = Recorder(H_RGB_TO_THERMAL)
    pair, _, thermal = frame_pair()
    FrameProcessor(matcher, make).process(pair)
    np.testing.assert_array_equal(matcher.image1, normalize_to_uint8_gray(thermal))


def test_frame_error_is_caught_and_next_frame_works():
    processor = FrameProcessor(FakeHomographyMatcher(H_RGB_TO_THERMAL, fail_on_calls=(0,)), make)
    first = processor.process(frame_pair()[0])
    assert not first.ok and "RuntimeError: simulated matcher failure" in first.error
    assert list(first.messages.items()) == []
    second = processor.process(frame_pair()[0])
    assert second.ok and second.homography is not None


def test_unsupported_encoding_is_a_frame_error_not_an_exception():
    pair, _, _ = frame_pair()
    pair.thermal.encoding = "yuv422"
    outcome = FrameProcessor(FakeHomographyMatcher(), make).process(pair)
    assert "ImageEncodingError" in outcome.error and "yuv422" in outcome.error


def test_too_few_inliers_gives_correspondences_but_no_homography():
    config = ProcessingConfig(min_inliers=100)
    outcome = FrameProcessor(FakeHomographyMatcher(H_RGB_TO_THERMAL), make, config).process(frame_pair()[0])
    assert outcome.ok and outcome.homography is None and outcome.homography_estimate is None
    names = [name for name, _ in outcome.messages.items()]
    assert names == ["correspondences"]


def test_runtime_config_change_applies_to_next_frame():
    processor = FrameProcessor(FakeHomographyMatcher(H_RGB_TO_THERMAL), make)
    assert processor.process(frame_pair()[0]).num_matches == 80
    processor.set_config(replace(processor.config, match_confidence_threshold=0.75, publish_aligned_thermal=False))
    outcome = processor.process(frame_pair()[0])
    assert outcome.num_matches == 40  # confidences are linspace(1.0, 0.5, 80)
    assert outcome.messages.aligned_thermal is None and outcome.messages.homography is not None


def test_filter_smooths_and_disabled_filter_publishes_raw_estimate():
    processor = FrameProcessor(FakeHomographyMatcher(H_RGB_TO_THERMAL), make)
    outcomes = [processor.process(frame_pair()[0]) for _ in range(3)]
    assert [o.filter_accepted for o in outcomes] == [True, True, True]
    config = replace(processor.config, homography_filter=replace(processor.config.homography_filter, enabled=False))
    processor.set_config(config)
    outcome = processor.process(frame_pair()[0])
    assert outcome.filter_accepted is None
    np.testing.assert_allclose(outcome.homography, outcome.homography_estimate)


def test_overlay_requested_gives_debug_image():
    outcome = FrameProcessor(FakeHomographyMatcher(H_RGB_TO_THERMAL), make).process(frame_pair()[0],
                                                                                     want_overlay=True)
    debug = outcome.messages.debug_image
    assert outcome.overlay.shape == (120, 240, 3)
    assert (debug.encoding, debug.width, debug.height) == ("rgb8", 240, 120)


def test_relative_pose_published_when_both_camera_infos_present():
    angle = 0.05
    R = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    t = np.array([-0.3, 0.0, 0.05])  # x_thermal = R x_rgb + t
    pair, _, _ = frame_pair(with_info=True)
    K_rgb = pair.rgb_camera_info.k.reshape(3, 3)
    K_thermal = pair.thermal_camera_info.k.reshape(3, 3)
    outcome = FrameProcessor(FakeStereoMatcher(R, t, K_rgb, K_thermal), make).process(pair)
    assert outcome.ok, outcome.error
    msg = outcome.messages.relative_pose
    assert (msg.header.frame_id, msg.child_frame_id) == ("rgb_optical", "thermal_optical")
    R_tf, t_tf = outcome.relative_pose
    np.testing.assert_allclose(R_tf, R.T, atol=1e-3)
    expected_t = -R.T @ t
    np.testing.assert_allclose(t_tf, expected_t / np.linalg.norm(expected_t), atol=1e-2)
    tr = msg.transform.translation
    np.testing.assert_allclose([tr.x, tr.y, tr.z], t_tf)


def test_no_relative_pose_with_one_camera_info():
    pair, _, _ = frame_pair(with_info=True)
    pair.thermal_camera_info = None
    outcome = FrameProcessor(FakeHomographyMatcher(H_RGB_TO_THERMAL), make).process(pair)
    assert outcome.relative_pose is None and outcome.messages.relative_pose is None


# ----------------------------------------------------------------------------- statistics and logging


def test_rate_meter():
    meter = RateMeter(window_s=2.0)
    for i in range(21):
        meter.tick(i * 0.1)  # 10 Hz for 2 s
    assert meter.rate(2.0) == pytest.approx(10.0, rel=0.06)
    assert meter.rate(10.0) == 0.0  # stream stopped
    young = RateMeter(window_s=5.0)
    young.tick(0.0)
    young.tick(0.5)
    assert young.rate(0.5) == pytest.approx(2.0)


def test_statistics_and_diagnostic_levels():
    stats = PipelineStatistics(window_s=5.0)
    level, message, _ = diagnostic_summary(stats.snapshot(0.0))
    assert (level, message) == (WARN, "no input images")
    for i in range(10):
        stats.record_input("rgb", i * 0.1)
        stats.record_input("thermal", i * 0.1)
    level, message, _ = diagnostic_summary(stats.snapshot(1.0))
    assert level == WARN and "none synchronise" in message
    ok = FrameOutcome(rgb_stamp_ns=1, thermal_stamp_ns=1, num_matches=50, num_inliers=40,
                      homography=np.eye(3), processing_time_s=0.2)
    stats.record_pair(1.0, dropped_older=False)
    stats.record_pair(1.05, dropped_older=True)
    stats.record_outcome(ok, 1.2, latency_s=0.3)
    level, message, values = diagnostic_summary(stats.snapshot(1.3))
    assert level == OK, message
    assert values["frames dropped (matcher busy)"] == "1" and values["inliers (last frame)"] == "40"
    assert values["latency stamp->output (last, s)"] == "0.300"
    failed = FrameOutcome(rgb_stamp_ns=1, thermal_stamp_ns=1, error="ValueError: bad frame")
    stats.record_outcome(failed, 1.4)
    level, message, values = diagnostic_summary(stats.snapshot(1.5))
    assert level == WARN and "bad frame" in message and values["frames failed"] == "1"
    for i in range(60):
        stats.record_outcome(failed, 1.5 + i * 0.01)
    assert diagnostic_summary(stats.snapshot(2.2))[0] == ERROR  # nothing but failures lately


def test_log_throttle_counts_suppressed_messages():
    throttle = LogThrottle()
    assert throttle.should_log(0.0, 5.0) == (True, 0)
    assert throttle.should_log(1.0, 5.0) == (False, 0)
    assert throttle.should_log(2.0, 5.0) == (False, 0)
    assert throttle.should_log(5.0, 5.0) == (True, 2)
    assert throttle.should_log(5.1, 0.0) == (True, 0)  # period changed at run time


def test_cameras_of_different_field_of_view_are_matched_inside_the_shared_view():
    matcher = FakeHomographyMatcher(H_RGB_TO_THERMAL)
    pair, _, _ = frame_pair(with_info=True)
    # The thermal camera 1.5x narrower than the RGB one (same image sizes as before, longer focal length).
    pair.thermal_camera_info.k = np.array([112.5, 0, 40, 0, 112.5, 30, 0, 0, 1])
    processor = FrameProcessor(matcher, make)
    outcome = processor.process(pair)
    assert outcome.ok, outcome.error
    roi_rgb, roi_thermal = matcher.calls[0]["roi0"], matcher.calls[0]["roi1"]
    assert roi_thermal is None and outcome.match_regions == (roi_rgb, None)
    # The thermal corners land at x 26.7..132, y 20..98.7 of the 160x120 RGB image; 5 % margin on each side.
    x, y, w, h = roi_rgb.as_tuple()
    assert 20 <= x <= 22 and 14 <= y <= 16 and 115 <= w <= 118 and 88 <= h <= 92
    processor.set_config(replace(ProcessingConfig(), shared_view=replace(ProcessingConfig().shared_view,
                                                                         enabled=False)))
    processor.process(pair)
    assert matcher.calls[1]["roi0"] is None and matcher.calls[1]["roi1"] is None


def test_cameras_of_equal_field_of_view_are_matched_whole():
    matcher = FakeHomographyMatcher(H_RGB_TO_THERMAL)
    outcome = FrameProcessor(matcher, make).process(frame_pair(with_info=True)[0])
    assert outcome.ok and matcher.calls[0]["roi0"] is None and matcher.calls[0]["roi1"] is None


def test_intrinsics_follow_a_resized_stream():
    from distillmatch_core.ros_interface.processing_pipeline import intrinsics_for_image
    info = make("sensor_msgs/msg/CameraInfo", k=np.array([600.0, 0, 320, 0, 600.0, 240, 0, 0, 1]), width=640,
                height=480)
    np.testing.assert_allclose(intrinsics_for_image(info, (320, 240)),
                               [[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    np.testing.assert_allclose(intrinsics_for_image(info, (640, 480)), info.k.reshape(3, 3))
