"""MatchResult -> output message field values (PointCloud2, Float64MultiArray, TransformStamped, Image)."""
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from distillmatch_core.ros_interface.message_factory import (RclpyMessageFactory, RosbagsMessageFactory,
                                                             make_header, namespace_factory)
from distillmatch_core.ros_interface.output_messages import (CORRESPONDENCE_FIELD_NAMES, aligned_thermal_message,
                                                             camera_matrix_from_info, correspondence_cloud_message,
                                                             correspondence_cloud_to_array, homography_from_message,
                                                             homography_message, relative_pose_message,
                                                             rotation_matrix_to_quaternion,
                                                             thermal_pose_in_rgb_frame, warp_thermal_to_rgb)

make = namespace_factory
HEADER = make_header(make, 1_700_000_000, 250_000_000, "rgb_optical")


def rotation(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def cloud_inputs(n=5):
    kp_thermal = np.arange(2 * n, dtype=np.float32).reshape(n, 2) + 0.25
    kp_rgb = kp_thermal * 2
    scores = np.linspace(0.1, 0.9, n)
    inliers = np.arange(n) % 2 == 0
    return kp_thermal, kp_rgb, scores, inliers


def test_correspondence_cloud_fields_and_layout():
    kp_thermal, kp_rgb, scores, inliers = cloud_inputs()
    msg = correspondence_cloud_message(make, HEADER, kp_thermal, kp_rgb, scores, inliers)
    assert msg._msgtype == "sensor_msgs/msg/PointCloud2"
    assert [f.name for f in msg.fields] == list(CORRESPONDENCE_FIELD_NAMES)
    assert [f.offset for f in msg.fields] == [0, 4, 8, 12, 16, 20]
    assert all(f.datatype == 7 and f.count == 1 for f in msg.fields)  # FLOAT32
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (1, 5, 24, 120)
    assert msg.is_bigendian is False and msg.is_dense is True
    assert len(msg.data) == 120 and msg.data.dtype == np.uint8
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == \
        (1_700_000_000, 250_000_000, "rgb_optical")
    values = np.frombuffer(msg.data.tobytes(), dtype="<f4").reshape(5, 6)
    np.testing.assert_array_equal(values[:, 0:2], kp_thermal)
    np.testing.assert_array_equal(values[:, 2:4], kp_rgb)
    np.testing.assert_allclose(values[:, 4], scores, rtol=1e-6)
    np.testing.assert_array_equal(values[:, 5], inliers.astype(np.float32))


def test_correspondence_cloud_round_trip_and_empty_cloud():
    inputs = cloud_inputs(7)
    back = correspondence_cloud_to_array(correspondence_cloud_message(make, HEADER, *inputs))
    assert back.shape == (7, 6)
    np.testing.assert_array_equal(back[:, 5], inputs[3].astype(np.float32))
    empty = correspondence_cloud_message(make, HEADER, np.zeros((0, 2)), np.zeros((0, 2)), [], [])
    assert (empty.width, empty.row_step, len(empty.data)) == (0, 0, 0)
    assert correspondence_cloud_to_array(empty).shape == (0, 6)


def test_correspondence_cloud_length_mismatch():
    kp_thermal, kp_rgb, scores, _ = cloud_inputs()
    with pytest.raises(ValueError, match="same length"):
        correspondence_cloud_message(make, HEADER, kp_thermal, kp_rgb, scores, np.ones(4, bool))


def test_homography_layout_is_row_major_and_labelled():
    H = np.arange(1, 10, dtype=np.float64).reshape(3, 3)
    msg = homography_message(make, H)
    assert msg._msgtype == "std_msgs/msg/Float64MultiArray"
    assert [(d.label, d.size, d.stride) for d in msg.layout.dim] == [("rows", 3, 9), ("cols", 3, 3)]
    assert msg.layout.data_offset == 0
    np.testing.assert_array_equal(msg.data, np.arange(1, 10))  # H[i, j] = data[3 * i + j]
    np.testing.assert_array_equal(homography_from_message(msg), H)


@pytest.mark.parametrize("axis, angle", [((0, 0, 1), 0.3), ((1, 2, 3), 2.0), ((1, 0, 0), np.pi),
                                         ((0, 1, 0), np.pi - 1e-9), ((1, 1, 0), 0.0)])
def test_quaternion_matches_rotation(axis, angle):
    x, y, z, w = rotation_matrix_to_quaternion(rotation(axis, angle))
    q_axis = np.asarray(axis, float) / np.linalg.norm(axis)
    expected = np.append(q_axis * np.sin(angle / 2), np.cos(angle / 2))
    got = np.array([x, y, z, w])
    assert np.linalg.norm(got) == pytest.approx(1.0)
    assert min(np.linalg.norm(got - expected), np.linalg.norm(got + expected)) < 1e-6
    assert w >= 0


def test_relative_pose_is_thermal_camera_in_rgb_frame():
    # recoverPose convention: x_thermal = R x_rgb + t.
    R = rotation((0, 1, 0), 0.1)
    t = np.array([0.6, 0.0, 0.8])
    R_tf, t_tf = thermal_pose_in_rgb_frame(R, t)
    point_rgb = np.array([0.3, -0.2, 4.0])
    point_thermal = R @ point_rgb + t
    np.testing.assert_allclose(R_tf @ point_thermal + t_tf, point_rgb)  # TF: x_parent = R' x_child + t'
    msg = relative_pose_message(make, HEADER, "thermal_optical", R_tf, t_tf)
    assert msg._msgtype == "geometry_msgs/msg/TransformStamped"
    assert (msg.header.frame_id, msg.child_frame_id) == ("rgb_optical", "thermal_optical")
    tr = msg.transform.translation
    np.testing.assert_allclose([tr.x, tr.y, tr.z], t_tf)
    assert np.linalg.norm([tr.x, tr.y, tr.z]) == pytest.approx(1.0)  # unit length: scale is unobservable
    q = msg.transform.rotation
    assert (q.x, q.y, q.z, q.w) == pytest.approx(rotation_matrix_to_quaternion(R_tf))


def test_camera_matrix_from_info():
    info = make("sensor_msgs/msg/CameraInfo", k=np.array([500.0, 0, 320, 0, 510.0, 240, 0, 0, 1]))
    np.testing.assert_array_equal(camera_matrix_from_info(info)[1], [0, 510, 240])
    with pytest.raises(ValueError, match="calibrated"):
        camera_matrix_from_info(make("sensor_msgs/msg/CameraInfo", k=np.zeros(9)))


def test_aligned_thermal_warps_into_rgb_plane_keeping_dtype():
    thermal = (np.arange(40 * 50, dtype=np.uint16).reshape(40, 50) * 13 + 20000).astype(np.uint16)
    H = np.array([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 1.0]])  # thermal is half the RGB resolution
    msg = aligned_thermal_message(make, HEADER, thermal, "mono16", H, (100, 80))
    assert (msg.width, msg.height, msg.encoding, msg.step) == (100, 80, "mono16", 200)
    assert msg.header.frame_id == "rgb_optical"  # lives in the RGB image plane
    warped = np.frombuffer(msg.data.tobytes(), "<u2").reshape(80, 100)
    assert warped[10, 20] == thermal[5, 10]
    translated = warp_thermal_to_rgb(thermal, np.array([[1, 0, 10], [0, 1, 0], [0, 0, 1.0]]), (50, 40))
    assert translated[0, 5] == 0 and translated[3, 15] == thermal[3, 5]  # outside -> 0


def test_rosbags_factory_builds_serializable_messages():
    typestore = get_typestore(Stores.ROS2_JAZZY)
    rb = RosbagsMessageFactory(typestore)
    header = make_header(rb, 5, 6, "rgb")
    messages = {
        "sensor_msgs/msg/PointCloud2": correspondence_cloud_message(rb, header, *cloud_inputs()),
        "std_msgs/msg/Float64MultiArray": homography_message(rb, np.eye(3)),
        "geometry_msgs/msg/TransformStamped": relative_pose_message(rb, header, "th", np.eye(3), [1.0, 0, 0]),
        "sensor_msgs/msg/Image": aligned_thermal_message(rb, header, np.ones((4, 4), np.uint16), "mono16",
                                                         np.eye(3), (4, 4)),
    }
    for msgtype, msg in messages.items():
        back = typestore.deserialize_cdr(typestore.serialize_cdr(msg, msgtype), msgtype)
        assert back.__msgtype__ == msgtype
    with pytest.raises(KeyError, match="not in the selected typestore"):
        rb("nonexistent_msgs/msg/Thing")


def test_rclpy_factory_converts_arrays_to_typed_array_array():
    # The conversion is ROS-free; only the class lookup needs rclpy.
    from distillmatch_core.ros_interface.message_factory import _to_rclpy_field
    converted = _to_rclpy_field(np.arange(5, dtype=np.uint8))
    assert converted.typecode == "B" and list(converted) == [0, 1, 2, 3, 4]
    assert _to_rclpy_field(np.array([1.5, 2.5])).typecode == "d"
    assert _to_rclpy_field(np.array([1, 2], dtype=">u2")).tolist() == [1, 2]
    assert _to_rclpy_field("text") == "text"
    assert isinstance(RclpyMessageFactory(), RclpyMessageFactory)
