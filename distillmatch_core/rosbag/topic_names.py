"""Topic naming conventions shared by make-bag, bag-eval and the docs."""
from __future__ import annotations

from typing import Dict

DEFAULT_RGB_TOPIC = "/rgb/image_raw"
DEFAULT_THERMAL_TOPIC = "/thermal/image_raw"
DEFAULT_NODE_NAME = "matcher_node"

# The node's outputs ("~/<name>") and their message types.
NODE_OUTPUT_TYPES: Dict[str, str] = {
    "correspondences": "sensor_msgs/msg/PointCloud2",
    "homography": "std_msgs/msg/Float64MultiArray",
    "relative_pose": "geometry_msgs/msg/TransformStamped",
    "aligned_thermal": "sensor_msgs/msg/Image",
    "debug_image": "sensor_msgs/msg/Image",
}


def node_output_topic(output: str, node_name: str = DEFAULT_NODE_NAME, namespace: str = "") -> str:
    """``~/<output>`` of a node called ``node_name`` in ``namespace`` as an absolute topic name."""
    namespace = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{namespace}/{node_name}/{output}"


def camera_info_topic_for(image_topic: str) -> str:
    """image_transport's convention: ``/cam/image_raw[/compressed]`` -> ``/cam/camera_info``."""
    topic = image_topic.rstrip("/")
    for suffix in ("/compressed", "/compressedDepth"):
        if topic.endswith(suffix):
            topic = topic[: -len(suffix)]
    parent = topic.rsplit("/", 1)[0] if "/" in topic else ""
    return f"{parent}/camera_info"
