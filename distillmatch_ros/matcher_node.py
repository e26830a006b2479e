"""ROS 2 node: synchronised RGB + thermal images in; correspondences, homography, pose and aligned thermal out.

A thin rclpy shell over ``distillmatch_core.ros_interface`` (where all logic
and its tests live):

* subscriber callbacks only count messages and put the newest synchronised
  pair into a size-1 drop-oldest slot;
* one inference thread loads the model (so it owns any GPU context), takes
  the newest pair, runs ``FrameProcessor`` and publishes;
* a failure on one frame is logged (throttled) and counted; the node goes on.

Topics and parameters: docs/ros_node.md.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from diagnostic_updater import DiagnosticStatusWrapper, Updater
from geometry_msgs.msg import TransformStamped
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Float64MultiArray

import message_filters
from distillmatch_core.ros_interface.latest_pair_slot import LatestSlot
from distillmatch_core.ros_interface.log_throttle import LogThrottle
from distillmatch_core.ros_interface.message_factory import RclpyMessageFactory
from distillmatch_core.ros_interface.node_parameters import (PARAMETER_SPECS, SPECS_BY_NAME, MatcherNodeConfig,
                                                             ModelLoadConfig, ParameterSpec, check_runtime_change,
                                                             config_from_values)
from distillmatch_core.ros_interface.pipeline_statistics import PipelineStatistics, diagnostic_summary
from distillmatch_core.ros_interface.processing_pipeline import FrameOutcome, FramePair, FrameProcessor, PairMatcher

NODE_NAME = "matcher_node"
_DIAGNOSTIC_LEVELS = {0: DiagnosticStatus.OK, 1: DiagnosticStatus.WARN, 2: DiagnosticStatus.ERROR,
                      3: DiagnosticStatus.STALE}


class StartupError(RuntimeError):
    """The node cannot start (invalid parameters, model not loadable); reported without a traceback."""


def load_matcher(model: ModelLoadConfig) -> PairMatcher:
    """Imported lazily so parameter errors are reported before torch is imported."""
    from distillmatch_core import Matcher
    return Matcher.from_pretrained(model.weights, **model.matcher_options())


def _descriptor(spec: ParameterSpec) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(description=spec.description, read_only=not spec.dynamic)
    constraints = [spec.additional_constraints] if spec.additional_constraints else []
    if spec.choices:
        constraints.append("one of: " + ", ".join(spec.choices))
    if not spec.dynamic:
        constraints.append("set at start-up only")
    descriptor.additional_constraints = "; ".join(constraints)
    if spec.minimum is not None and spec.value_type is float:
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(spec.minimum),
                                                              to_value=float(spec.maximum), step=0.0)]
    elif spec.minimum is not None and spec.value_type is int:
        descriptor.integer_range = [IntegerRange(from_value=int(spec.minimum), to_value=int(spec.maximum), step=1)]
    return descriptor


def _topic_name(subscriber: message_filters.Subscriber) -> str:
    return str(getattr(subscriber.sub, "topic_name", subscriber.topic))


class MatcherNode(Node):
    def __init__(self, matcher_factory: Callable[[ModelLoadConfig], PairMatcher] = load_matcher,
                 **node_kwargs: Any):
        super().__init__(NODE_NAME, **node_kwargs)
        self._parameter_values = self._declare_parameters()
        try:
            self._node_config: MatcherNodeConfig = config_from_values(self._parameter_values)
        except ValueError as exc:
            raise StartupError(str(exc)) from None

        self._stats = PipelineStatistics()
        self._slot: LatestSlot[FramePair] = LatestSlot()
        self._make = RclpyMessageFactory()
        self._processor: Optional[FrameProcessor] = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._load_error: Optional[BaseException] = None
        self._error_throttle = LogThrottle()
        self._info_lock = threading.Lock()
        self._camera_infos: Dict[str, Optional[CameraInfo]] = {"rgb": None, "thermal": None}

        output_qos = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
        self._output_publishers = {
            "correspondences": self.create_publisher(PointCloud2, "~/correspondences", output_qos),
            "homography": self.create_publisher(Float64MultiArray, "~/homography", output_qos),
            "relative_pose": self.create_publisher(TransformStamped, "~/relative_pose", output_qos),
            "aligned_thermal": self.create_publisher(Image, "~/aligned_thermal", output_qos),
            "debug_image": self.create_publisher(Image, "~/debug_image", output_qos),
        }

        # The model loads in the thread that will use it (CUDA / TensorRT contexts are per thread).
        self._worker = threading.Thread(target=self._inference_loop, args=(matcher_factory,), name="matcher",
                                        daemon=True)
        self._worker.start()
        self._ready.wait()
        if self._load_error is not None:
            model = self._node_config.model
            raise StartupError(f"could not load the matcher (weights={model.weights!r}, backend={model.backend}, "
                               f"device={model.device}): {type(self._load_error).__name__}: {self._load_error}")

        self._subscribe()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._updater = Updater(self)
        self._updater.setHardwareID("distillmatch")
        self._updater.add("matcher", self._diagnose)
        model = self._node_config.model
        self.get_logger().info(
            f"ready: weights={model.weights!r} backend={model.backend} device={model.device} size={model.input_size}"
            + (" cpu_bf16" if model.cpu_bf16 else "") + "; "
            f"listening on {_topic_name(self._rgb_sub)} and {_topic_name(self._thermal_sub)} "
            f"({self._node_config.input_qos} QoS, slop {self._node_config.pairing.slop_s} s)"
            + ("; torch_compile: the first pair waits 1-2 minutes while the network compiles" if model.torch_compile
               else ""))

    # ------------------------------------------------------------------ parameters

    def _declare_parameters(self) -> Dict[str, Any]:
        values = {}
        for spec in PARAMETER_SPECS:
            try:
                values[spec.name] = self.declare_parameter(spec.name, spec.default, _descriptor(spec)).value
            except Exception as exc:  # noqa: BLE001 - rclpy raises several types for bad overrides
                raise StartupError(f"parameter {spec.name}: {type(exc).__name__}: {exc}") from None
        return values

    def _on_set_parameters(self, parameters: List[Parameter]) -> SetParametersResult:
        changes = {p.name: p.value for p in parameters if p.name in SPECS_BY_NAME}
        if not changes:
            return SetParametersResult(successful=True)
        reason = check_runtime_change(self._parameter_values, changes)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        self._parameter_values = {**self._parameter_values, **changes}
        self._node_config = config_from_values(self._parameter_values)
        if self._processor is not None:
            self._processor.set_config(self._node_config.processing)
        self.get_logger().info("parameters updated: " + ", ".join(f"{k}={v!r}" for k, v in changes.items()))
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ inputs

    def _subscribe(self) -> None:
        if self._node_config.input_qos == "reliable":
            qos = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
        else:
            # Best effort receives from reliable and best-effort publishers alike; thermal drivers
            # usually publish best effort, which a reliable subscriber would never match.
            qos = qos_profile_sensor_data
        self._rgb_sub = message_filters.Subscriber(self, Image, "rgb/image_raw", qos_profile=qos)
        self._thermal_sub = message_filters.Subscriber(self, Image, "thermal/image_raw", qos_profile=qos)
        # Counted before synchronisation so diagnostics can tell "no images" from "no pairs".
        self._rgb_sub.registerCallback(lambda _msg: self._stats.record_input("rgb", time.monotonic()))
        self._thermal_sub.registerCallback(lambda _msg: self._stats.record_input("thermal", time.monotonic()))
        pairing = self._node_config.pairing
        self._sync = message_filters.ApproximateTimeSynchronizer(
            [self._rgb_sub, self._thermal_sub], pairing.queue_size, pairing.slop_s)
        self._sync.registerCallback(self._on_pair)
        if self._node_config.use_camera_info:
            self._info_subs = [
                self.create_subscription(CameraInfo, f"{name}/camera_info",
                                         lambda msg, name=name: self._on_camera_info(name, msg),
                                         qos_profile_sensor_data)
                for name in ("rgb", "thermal")]

    def _on_camera_info(self, name: str, msg: CameraInfo) -> None:
        with self._info_lock:
            self._camera_infos[name] = msg

    def _on_pair(self, rgb: Image, thermal: Image) -> None:
        now = time.monotonic()
        with self._info_lock:
            rgb_info, thermal_info = self._camera_infos["rgb"], self._camera_infos["thermal"]
        dropped = self._slot.put(FramePair(rgb, thermal, rgb_info, thermal_info))
        self._stats.record_pair(now, dropped)

    # ------------------------------------------------------------------ inference thread

    def _inference_loop(self, matcher_factory: Callable[[ModelLoadConfig], PairMatcher]) -> None:
        try:
            matcher = matcher_factory(self._node_config.model)
            self._processor = FrameProcessor(matcher, self._make, self._node_config.processing)
        except BaseException as exc:  # noqa: BLE001 - reported by the constructor
            self._load_error = exc
            self._ready.set()
            return
        self._ready.set()
        while not self._stop.is_set():
            pair = self._slot.take(timeout=0.25)
            if pair is None:
                continue
            try:
                want_debug = self._output_publishers["debug_image"].get_subscription_count() > 0
                outcome = self._processor.process(pair, want_overlay=want_debug)
                self._publish(outcome)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any single frame
                self._stats.record_error(f"{type(exc).__name__}: {exc}", time.monotonic())
                self._log_error(f"inference loop: {type(exc).__name__}: {exc}")

    def _publish(self, outcome: FrameOutcome) -> None:
        try:
            for name, msg in outcome.messages.items():
                self._output_publishers[name].publish(msg)
        except Exception as exc:  # noqa: BLE001 - e.g. publishing during shutdown
            outcome.error = outcome.error or f"publish failed: {type(exc).__name__}: {exc}"
        latency = None
        if outcome.rgb_stamp_ns is not None:
            latency = (self.get_clock().now().nanoseconds - outcome.rgb_stamp_ns) / 1e9
        self._stats.record_outcome(outcome, time.monotonic(), latency)
        if outcome.error:
            self._log_error(f"frame failed: {outcome.error}")

    def _log_error(self, message: str) -> None:
        log, suppressed = self._error_throttle.should_log(time.monotonic(), self._node_config.error_log_throttle_s)
        if log:
            note = f" ({suppressed} similar errors not logged)" if suppressed else ""
            self.get_logger().error(message + note)

    # ------------------------------------------------------------------ diagnostics and shutdown

    def _diagnose(self, stat: DiagnosticStatusWrapper) -> DiagnosticStatusWrapper:
        level, message, values = diagnostic_summary(self._stats.snapshot(time.monotonic()))
        stat.summary(_DIAGNOSTIC_LEVELS[level], message)
        for key, value in values.items():
            stat.add(key, value)
        return stat

    def shutdown(self) -> None:
        self._stop.set()
        self._slot.close()
        if self._worker.is_alive():
            self._worker.join(timeout=5.0)


def main(args: Optional[List[str]] = None) -> int:
    rclpy.init(args=args)
    node: Optional[MatcherNode] = None
    exit_code = 0
    try:
        node = MatcherNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except StartupError as exc:
        rclpy.logging.get_logger(NODE_NAME).fatal(str(exc))
        exit_code = 1
    finally:
        if node is not None:
            node.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
