"""ROS-free logic of the ROS 2 node, shared with rosbag evaluation.

Messages are duck-typed: functions read the attributes ROS messages have
(``msg.height``, ``msg.header.stamp.sec``...) and build messages through a
``MessageFactory`` (``message_factory.py``), so the same code serves real rclpy
messages in the node, ``rosbags`` messages in bag tools and
``types.SimpleNamespace`` objects in tests. Nothing here imports rclpy.
"""
