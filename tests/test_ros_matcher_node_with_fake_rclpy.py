"""Wiring of ``distillmatch_ros/matcher_node.py`` against minimal stand-ins for rclpy and friends.

ROS 2 cannot be installed here, so these fakes reproduce only the API
surface the node calls (declare_parameter, publishers, message_filters,
diagnostic_updater...). They check the node's own control flow: parameter
declaration and validation, model loading in the inference thread, pairs
flowing from the synchroniser callback to published messages, runtime
parameter changes, diagnostics and shutdown. Behaviour of real ROS is
covered by test_ros_node_launch.py on a ROS machine.
"""
import importlib
import sys
import threading
import time
import types
from types import SimpleNamespace

import numpy as np
import pytest

from distillmatch_core.ros_interface.approximate_time_pairing import ApproximateTimePairer, PairingPolicy
from distillmatch_core.ros_interface.image_encoding import array_to_image_message
from distillmatch_core.ros_interface.message_factory import make_header, namespace_factory, stamp_to_ns
from fake_matchers import FakeHomographyMatcher


def _message_class(full_name):
    class Message(SimpleNamespace):
        _type = full_name
    Message.__name__ = full_name.rsplit("/", 1)[-1]
    return Message


class FakeParameter:
    def __init__(self, name, value):
        self.name, self.value = name, value


class FakePublisher:
    def __init__(self, topic):
        self.topic, self.messages, self.subscribers = topic, [], 0

    def publish(self, msg):
        self.messages.append(msg)

    def get_subscription_count(self):
        return self.subscribers


class FakeLogger:
    def __init__(self):
        self.lines = []

    def __getattr__(self, level):
        return lambda message, **kwargs: self.lines.append((level, message))


class FakeNode:
    overrides = {}

    def __init__(self, name, **kwargs):
        self.name = name
        self.parameters = {}
        self.created_publishers = {}
        self.subscriptions = {}
        # rclpy's Node keeps these private lists itself; a subclass must not overwrite them.
        self._publishers = []
        self._subscriptions = []
        self.parameter_callbacks = []
        self.logger = FakeLogger()

    def declare_parameter(self, name, value, descriptor=None):
        value = self.overrides.get(name, value)
        self.parameters[name] = (value, descriptor)
        return FakeParameter(name, value)

    def add_on_set_parameters_callback(self, callback):
        self.parameter_callbacks.append(callback)

    def create_publisher(self, msg_type, topic, qos):
        self.created_publishers[topic] = FakePublisher(topic)
        self._publishers.append(self.created_publishers[topic])
        return self.created_publishers[topic]

    def create_subscription(self, msg_type, topic, callback, qos):
        self.subscriptions[topic] = callback
        return SimpleNamespace(topic_name=topic)

    def get_clock(self):
        return SimpleNamespace(now=lambda: SimpleNamespace(nanoseconds=time.time_ns()))

    def get_logger(self):
        return self.logger

    def destroy_node(self):
        for publisher in self._publishers:
            assert isinstance(publisher, FakePublisher)


class FakeSubscriber:
    def __init__(self, node, msg_type, topic, qos_profile=None):
        self.topic, self.qos = topic, qos_profile
        self.sub = SimpleNamespace(topic_name="/" + topic)
        self.callbacks = []

    def registerCallback(self, callback):
        self.callbacks.append(callback)

    def deliver(self, msg):
        for callback in self.callbacks:
            callback(msg)


class FakeSynchronizer:
    """Delegates to the core's re-implementation of the rclpy synchroniser policy."""

    def __init__(self, subscribers, queue_size, slop):
        self.pairer = ApproximateTimePairer(PairingPolicy(slop_s=slop, queue_size=queue_size))
        self.callbacks = []
        for index, subscriber in enumerate(subscribers):
            subscriber.registerCallback(lambda msg, index=index: self._add(index, msg))

    def registerCallback(self, callback):
        self.callbacks.append(callback)

    def _add(self, index, msg):
        pair = self.pairer.add(index, stamp_to_ns(msg.header.stamp), msg)
        if pair:
            for callback in self.callbacks:
                callback(*pair)


class FakeStatus:
    def __init__(self):
        self.level, self.message, self.values = None, None, {}

    def summary(self, level, message):
        self.level, self.message = level, message

    def add(self, key, value):
        self.values[key] = value


class FakeUpdater:
    def __init__(self, node):
        self.tasks = {}

    def setHardwareID(self, hardware_id):
        self.hardware_id = hardware_id

    def add(self, name, task):
        self.tasks[name] = task


def _module(name, **attributes):
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


@pytest.fixture
def node_module(monkeypatch):
    message_modules = {
        "sensor_msgs.msg": ["Image", "CameraInfo", "PointCloud2", "PointField", "RegionOfInterest"],
        "std_msgs.msg": ["Float64MultiArray", "MultiArrayLayout", "MultiArrayDimension", "Header"],
        "geometry_msgs.msg": ["TransformStamped", "Transform", "Vector3", "Quaternion"],
        "builtin_interfaces.msg": ["Time"],
        "rcl_interfaces.msg": ["ParameterDescriptor", "FloatingPointRange", "IntegerRange", "SetParametersResult"],
    }
    fakes = {name: _module(name, **{cls: _message_class(f"{name.split('.')[0]}/msg/{cls}") for cls in classes})
             for name, classes in message_modules.items()}
    for name in message_modules:
        fakes[name.split(".")[0]] = _module(name.split(".")[0], msg=fakes[name])
    fakes["diagnostic_msgs"] = _module("diagnostic_msgs")
    fakes["diagnostic_msgs.msg"] = _module("diagnostic_msgs.msg", DiagnosticStatus=SimpleNamespace(
        OK=b"\x00", WARN=b"\x01", ERROR=b"\x02", STALE=b"\x03"))
    fakes["diagnostic_updater"] = _module("diagnostic_updater", Updater=FakeUpdater,
                                          DiagnosticStatusWrapper=FakeStatus)
    fakes["message_filters"] = _module("message_filters", Subscriber=FakeSubscriber,
                                       ApproximateTimeSynchronizer=FakeSynchronizer)
    logger = FakeLogger()
    fakes["rclpy"] = _module("rclpy", logging=SimpleNamespace(get_logger=lambda name: logger))
    fakes["rclpy.node"] = _module("rclpy.node", Node=FakeNode)
    fakes["rclpy.parameter"] = _module("rclpy.parameter", Parameter=FakeParameter)
    fakes["rclpy.executors"] = _module("rclpy.executors", ExternalShutdownException=type("ESE", (Exception,), {}))
    fakes["rclpy.qos"] = _module("rclpy.qos", QoSProfile=lambda **kw: SimpleNamespace(**kw),
                                 HistoryPolicy=SimpleNamespace(KEEP_LAST="keep_last"),
                                 ReliabilityPolicy=SimpleNamespace(RELIABLE="reliable"),
                                 qos_profile_sensor_data=SimpleNamespace(reliability="best_effort"))
    for name, module in fakes.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "distillmatch_ros.matcher_node", raising=False)
    module = importlib.import_module("distillmatch_ros.matcher_node")
    yield module
    sys.modules.pop("distillmatch_ros.matcher_node", None)
    FakeNode.overrides = {}


def image_pair(stamp_ns, size=(80, 60)):
    make = namespace_factory
    rng = np.random.default_rng(stamp_ns % 1000)
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    rgb = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    thermal = rng.integers(20000, 30000, (size[1], size[0]), dtype=np.uint16)
    return (array_to_image_message(make, rgb, "rgb8", make_header(make, sec, nanosec, "rgb")),
            array_to_image_message(make, thermal, "mono16", make_header(make, sec, nanosec, "thermal")))


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_node_declares_parameters_processes_pairs_and_publishes(node_module):
    node = node_module.MatcherNode(matcher_factory=lambda model: FakeHomographyMatcher())
    try:
        value, descriptor = node.parameters["slop"]
        assert value == 0.05 and descriptor.read_only is True
        assert descriptor.floating_point_range[0].from_value == 0.0001
        assert node.parameters["min_inliers"][1].integer_range[0].to_value == 100000
        assert node.parameters["min_inliers"][1].read_only is False
        assert "one of: auto, torch" in node.parameters["backend"][1].additional_constraints
        assert set(node.created_publishers) == {"~/correspondences", "~/homography", "~/relative_pose",
                                                "~/aligned_thermal", "~/debug_image"}
        assert node._rgb_sub.topic == "rgb/image_raw" and node._thermal_sub.topic == "thermal/image_raw"
        assert node._rgb_sub.qos.reliability == "best_effort"
        assert set(node.subscriptions) == {"rgb/camera_info", "thermal/camera_info"}

        node.created_publishers["~/debug_image"].subscribers = 1  # someone watches: overlay is computed
        rgb, thermal = image_pair(1_700_000_000_000_000_000)
        node._rgb_sub.deliver(rgb)
        node._thermal_sub.deliver(thermal)
        assert wait_until(lambda: node.created_publishers["~/homography"].messages)
        assert wait_until(lambda: node.created_publishers["~/debug_image"].messages)
        cloud = node.created_publishers["~/correspondences"].messages[0]
        assert cloud.width == 80 and [f.name for f in cloud.fields][0] == "u_thermal"
        assert cloud.data.typecode == "B"  # array.array, the fast path of rclpy's setters
        aligned = node.created_publishers["~/aligned_thermal"].messages[0]
        assert (aligned.encoding, aligned.width, aligned.height) == ("mono16", 80, 60)
        assert stamp_to_ns(aligned.header.stamp) == 1_700_000_000_000_000_000
        assert node.created_publishers["~/relative_pose"].messages == []  # no camera_info yet

        status = node._updater.tasks["matcher"](FakeStatus())
        assert status.level == b"\x00" and status.values["frames processed"] == "1"
    finally:
        node.shutdown()
        node.destroy_node()
    assert not node._worker.is_alive()


def test_runtime_parameter_changes(node_module):
    node = node_module.MatcherNode(matcher_factory=lambda model: FakeHomographyMatcher())
    try:
        callback = node.parameter_callbacks[0]
        result = callback([FakeParameter("min_inliers", 200)])
        assert result.successful and node._processor.config.min_inliers == 200
        result = callback([FakeParameter("ransac_threshold_px", 0.0)])
        assert not result.successful and "below the minimum" in result.reason
        result = callback([FakeParameter("queue_size", 3)])
        assert not result.successful and "restart" in result.reason
        assert callback([FakeParameter("use_sim_time", True)]).successful
        rgb, thermal = image_pair(5_000_000_000)
        node._rgb_sub.deliver(rgb)
        node._thermal_sub.deliver(thermal)
        assert wait_until(lambda: node.created_publishers["~/correspondences"].messages)
        assert node.created_publishers["~/homography"].messages == []  # 72 inliers < 200
    finally:
        node.shutdown()


def test_frame_errors_are_logged_throttled_and_the_node_keeps_running(node_module):
    matcher = FakeHomographyMatcher(fail_on_calls=(0, 1, 2))
    node = node_module.MatcherNode(matcher_factory=lambda model: matcher)
    try:
        for k in range(4):
            rgb, thermal = image_pair(10_000_000_000 + k * 100_000_000)
            node._rgb_sub.deliver(rgb)
            node._thermal_sub.deliver(thermal)
            assert wait_until(lambda: len(matcher.calls) > k)
        assert wait_until(lambda: node.created_publishers["~/homography"].messages)
        errors = [line for level, line in node.logger.lines if level == "error"]
        assert len(errors) == 1 and "simulated matcher failure" in errors[0]  # throttled: 5 s period
        snapshot = node._stats.snapshot(time.monotonic())
        assert snapshot.frames_failed == 3 and snapshot.frames_processed == 4
    finally:
        node.shutdown()


def test_model_load_failure_is_a_clear_startup_error(node_module):
    def missing(model):
        raise FileNotFoundError(f"no weights at {model.weights}")

    with pytest.raises(node_module.StartupError, match="could not load the matcher.*FileNotFoundError"):
        node_module.MatcherNode(matcher_factory=missing)


def test_invalid_parameter_override_is_a_clear_startup_error(node_module):
    FakeNode.overrides = {"backend": "caffe", "slop": 0.0}
    with pytest.raises(node_module.StartupError, match="backend.*not one of.*slop.*below the minimum"):
        node_module.MatcherNode(matcher_factory=lambda model: FakeHomographyMatcher())


def test_model_is_loaded_in_the_inference_thread(node_module):
    loaded_in = []
    node = node_module.MatcherNode(
        matcher_factory=lambda model: loaded_in.append(threading.current_thread().name) or FakeHomographyMatcher())
    node.shutdown()
    assert loaded_in == ["matcher"]


def test_torch_switches_reach_the_matcher_and_the_start_up_log(node_module):
    """The first pair waits for the compiler: the node says so at start-up rather than seeming to hang."""
    FakeNode.overrides = {"torch_compile": True, "cpu_bf16": True}
    options = []
    node = node_module.MatcherNode(
        matcher_factory=lambda model: options.append(model.matcher_options()) or FakeHomographyMatcher())
    try:
        assert options == [{"device": "cpu", "backend": "auto", "size": None, "max_matches": None,
                            "torch_compile": True, "cpu_bf16": True}]
        ready = [message for level, message in node.logger.lines if message.startswith("ready:")]
        assert len(ready) == 1 and "first pair waits 1-2 minutes while the network compiles" in ready[0]
        assert " cpu_bf16;" in ready[0]
    finally:
        node.shutdown()
