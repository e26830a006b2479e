"""Writes a frame's output messages to the topics and types the live node publishes."""
from __future__ import annotations

from typing import Any

from distillmatch_core.ros_interface.processing_pipeline import FrameMessages
from distillmatch_core.rosbag.bag_writer import MessageBagWriter
from distillmatch_core.rosbag.topic_names import DEFAULT_NODE_NAME, NODE_OUTPUT_TYPES, node_output_topic


class NodeOutputBag:
    """Topics ``/<namespace>/<node_name>/<output>`` with the node's message types."""

    def __init__(self, writer: MessageBagWriter, node_name: str = DEFAULT_NODE_NAME, namespace: str = ""):
        self.writer = writer
        self.topics = {output: node_output_topic(output, node_name, namespace) for output in NODE_OUTPUT_TYPES}

    def write_frame(self, messages: FrameMessages, timestamp_ns: int) -> None:
        for output, msg in messages.items():
            self.writer.write(self.topics[output], NODE_OUTPUT_TYPES[output], timestamp_ns, msg)

    def copy_input(self, topic: str, msgtype: str, timestamp_ns: int, raw: Any) -> None:
        """An input message, byte for byte (``--include-inputs``), so one bag drives downstream nodes."""
        self.writer.write_raw(topic, msgtype, timestamp_ns, raw)
