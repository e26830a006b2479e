"""ROS 2 bag tools without ROS, on the pure-Python ``rosbags`` library.

``make_bag`` turns folders of RGB and thermal frames into a bag; ``bag_eval``
replays a recorded bag through the same per-frame pipeline as the live node
(``distillmatch_core.ros_interface``) and reports.
"""
