"""Launch the DistillMatch RGB-thermal matcher node.

    ros2 launch distillmatch_ros matcher.launch.py
    ros2 launch distillmatch_ros matcher.launch.py rgb_topic:=/cam/color/image_raw \\
        thermal_topic:=/flir/image_raw weights:=/models/distillmatch.onnx backend:=onnxruntime

Parameters come from ``config_file`` (default: the package's config/matcher.yaml);
``weights``, ``backend`` and ``device`` override it only when given. The camera_info
topics are the image_transport siblings of the image topics (``/a/image_raw`` ->
``/a/camera_info``).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _camera_info_topic(image_topic: str) -> str:
    topic = image_topic.rstrip("/")
    parent = topic.rsplit("/", 1)[0] if "/" in topic else ""
    return f"{parent}/camera_info" if parent else "camera_info"


def _launch_node(context, *args, **kwargs):
    value = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    overrides = {name: value(name) for name in ("weights", "backend", "device") if value(name)}
    overrides["use_sim_time"] = value("use_sim_time").lower() in ("true", "1", "yes")
    rgb_topic, thermal_topic = value("rgb_topic"), value("thermal_topic")
    node = Node(
        package="distillmatch_ros",
        executable="matcher_node",
        name="matcher_node",
        namespace=value("namespace"),
        parameters=[value("config_file"), overrides],
        remappings=[
            ("rgb/image_raw", rgb_topic),
            ("thermal/image_raw", thermal_topic),
            ("rgb/camera_info", _camera_info_topic(rgb_topic)),
            ("thermal/camera_info", _camera_info_topic(thermal_topic)),
        ],
        output="screen",
        emulate_tty=True,
    )
    return [node]


def generate_launch_description():
    default_config = os.path.join(get_package_share_directory("distillmatch_ros"), "config", "matcher.yaml")
    arguments = [
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        DeclareLaunchArgument("config_file", default_value=default_config, description="parameter YAML file"),
        DeclareLaunchArgument("weights", default_value="",
                              description="model name or path; empty keeps the config file's value"),
        DeclareLaunchArgument("backend", default_value="",
                              description="torch | onnxruntime | tensorrt; empty keeps the config file's value"),
        DeclareLaunchArgument("device", default_value="",
                              description="cpu | cuda | cuda:N; empty keeps the config file's value"),
        DeclareLaunchArgument("rgb_topic", default_value="rgb/image_raw",
                              description="RGB image topic (relative names resolve in the namespace)"),
        DeclareLaunchArgument("thermal_topic", default_value="thermal/image_raw", description="thermal image topic"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag replay)"),
    ]
    return LaunchDescription(arguments + [OpaqueFunction(function=_launch_node)])
