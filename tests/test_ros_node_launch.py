"""launch_testing test of the real node: publish a synchronised RGB / mono16 thermal pair, receive every output.

Needs a sourced ROS 2 (rclpy, launch_testing) and the package built with
colcon; elsewhere it is skipped at import. Run it with
``launch_test tests/test_ros_node_launch.py`` or ``colcon test``.
"""
import time
import unittest

import pytest

rclpy = pytest.importorskip("rclpy", reason="ROS 2 (rclpy) is not installed; this launch_testing test needs ROS 2")
launch = pytest.importorskip("launch")
launch_ros = pytest.importorskip("launch_ros")
launch_testing = pytest.importorskip("launch_testing")

import cv2  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import numpy as np  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image, PointCloud2  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from distillmatch_core.data.splits import load_split  # noqa: E402
from distillmatch_core.image_io import read_image  # noqa: E402
from distillmatch_core.ros_interface.image_encoding import array_to_image_message  # noqa: E402
from distillmatch_core.ros_interface.message_factory import RclpyMessageFactory, make_header  # noqa: E402

OUTPUTS = {"correspondences": PointCloud2, "homography": Float64MultiArray, "aligned_thermal": Image}
REQUIRED_MESSAGES = 2
TIMEOUT_S = 180.0  # includes model loading on a CPU-only machine


@pytest.mark.launch_test
def generate_test_description():
    node = launch_ros.actions.Node(package="distillmatch_ros", executable="matcher_node", name="matcher_node",
                                   output="screen")
    return launch.LaunchDescription([node, launch_testing.actions.ReadyToTest()]), {"matcher": node}


def _first_pair():
    pair = load_split("dev")[0]
    rgb = cv2.resize(read_image(pair.visible_path), (320, 240), interpolation=cv2.INTER_AREA)
    thermal = read_image(pair.infrared_path)
    if thermal.ndim == 3:
        thermal = thermal[..., 0]
    thermal = cv2.resize(thermal, (320, 240), interpolation=cv2.INTER_AREA)
    return rgb, thermal.astype(np.uint16) * np.uint16(257)  # 16-bit as a radiometric camera sends


class TestMatcherNodeOutputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rclpy.init()
        cls.node = rclpy.create_node("distillmatch_test_client")

    @classmethod
    def tearDownClass(cls):
        cls.node.destroy_node()
        rclpy.shutdown()

    def test_outputs_arrive_for_synchronised_pairs(self, proc_output):
        received = {name: [] for name in OUTPUTS}
        subscriptions = [self.node.create_subscription(msg_type, f"/matcher_node/{name}",
                                                       lambda msg, name=name: received[name].append(msg), 10)
                         for name, msg_type in OUTPUTS.items()]
        rgb_pub = self.node.create_publisher(Image, "/rgb/image_raw", qos_profile_sensor_data)
        thermal_pub = self.node.create_publisher(Image, "/thermal/image_raw", qos_profile_sensor_data)
        rgb, thermal = _first_pair()
        make = RclpyMessageFactory()
        deadline = time.monotonic() + TIMEOUT_S
        next_publish = 0.0
        try:
            while time.monotonic() < deadline and min(len(v) for v in received.values()) < REQUIRED_MESSAGES:
                if time.monotonic() >= next_publish:
                    stamp = self.node.get_clock().now().to_msg()
                    rgb_pub.publish(array_to_image_message(make, rgb, "rgb8",
                                                           make_header(make, stamp.sec, stamp.nanosec, "rgb")))
                    thermal_pub.publish(array_to_image_message(
                        make, thermal, "mono16", make_header(make, stamp.sec, stamp.nanosec, "thermal")))
                    next_publish = time.monotonic() + 0.5
                rclpy.spin_once(self.node, timeout_sec=0.05)
        finally:
            for subscription in subscriptions:
                self.node.destroy_subscription(subscription)
        for name, messages in received.items():
            self.assertGreaterEqual(len(messages), REQUIRED_MESSAGES, f"too few messages on {name}")
        self.assertEqual(len(received["homography"][-1].data), 9)
        self.assertEqual((received["aligned_thermal"][-1].width, received["aligned_thermal"][-1].height), (320, 240))
        self.assertEqual(received["aligned_thermal"][-1].encoding, "mono16")


@launch_testing.post_shutdown_test()
class TestMatcherNodeShutdown(unittest.TestCase):
    def test_no_traceback_and_clean_exit(self, proc_info, proc_output):
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -2, -15])
        for output in proc_output:
            text = output.text.decode(errors="replace") if isinstance(output.text, bytes) else output.text
            self.assertNotIn("Traceback", text)
