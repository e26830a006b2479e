"""``distillmatch make-bag``: bags from folders of real aligned RGB / thermal frames, read back and checked."""
from pathlib import Path

import numpy as np
import pytest

from distillmatch_core.cli.main import main as cli_main
from distillmatch_core.image_io import read_image
from distillmatch_core.ros_interface.image_encoding import decode_image_message
from distillmatch_core.ros_interface.message_factory import stamp_to_ns
from distillmatch_core.rosbag import make_bag as make_bag_module
from distillmatch_core.rosbag.bag_reader import InputBag
from distillmatch_core.rosbag.make_bag import collect_frame_files
from distillmatch_core.rosbag.typestore_selection import load_typestore
from rosbag_test_frames import (RATE_HZ, START_TIME_S, expected_thermal_gray, make_bag_cli, write_calibration,
                                write_frame_folders)

HUMBLE = load_typestore("humble")


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return write_frame_folders(tmp_path_factory.mktemp("frames"), count=5)


def read_all(bag_path, topics, typestore=HUMBLE):
    with InputBag(bag_path, typestore) as bag:
        return bag.topics(), list(bag.messages(topics)), bag.storage


@pytest.mark.parametrize("storage, suffix", [("sqlite3", ".db3"), ("mcap", ".mcap")])
def test_mono16_bag_round_trips_frames_and_stamps(frames, tmp_path, storage, suffix):
    rgb_dir, thermal_dir = frames
    bag = make_bag_cli(rgb_dir, thermal_dir, tmp_path / "bag", "--storage", storage)
    assert (bag / "metadata.yaml").is_file()
    assert [p.name for p in bag.iterdir() if p.suffix == suffix] == [f"bag{suffix}"]  # not a temporary name
    assert "version: 8" in (bag / "metadata.yaml").read_text()
    topics, messages, detected = read_all(bag, ["/rgb/image_raw", "/thermal/image_raw"])
    assert detected == storage
    assert {name: (t.msgtype, t.count) for name, t in topics.items()} == {
        "/rgb/image_raw": ("sensor_msgs/msg/Image", 5), "/thermal/image_raw": ("sensor_msgs/msg/Image", 5)}
    rgb_files, thermal_files = sorted(rgb_dir.iterdir()), sorted(thermal_dir.iterdir())
    log_times = [m.log_time_ns for m in messages]
    assert log_times == sorted(log_times)
    for message in messages:
        k = int(round((stamp_to_ns(message.msg.header.stamp) - START_TIME_S * 1e9) * RATE_HZ / 1e9))
        assert stamp_to_ns(message.msg.header.stamp) == int(START_TIME_S * 1e9) + k * 100_000_000
        assert message.log_time_ns == stamp_to_ns(message.msg.header.stamp)
        decoded = decode_image_message(message.msg)
        if message.topic == "/rgb/image_raw":
            assert message.msg.header.frame_id == "rgb_camera" and decoded.encoding == "rgb8"
            np.testing.assert_array_equal(decoded.array, read_image(rgb_files[k]))
        else:
            assert message.msg.header.frame_id == "thermal_camera" and decoded.encoding == "mono16"
            assert decoded.array.dtype == np.uint16 and message.msg.step == 2 * message.msg.width
            expected = expected_thermal_gray(thermal_files[k]).astype(np.uint16) * 257
            np.testing.assert_array_equal(decoded.array, expected)


def test_mono8_with_jazzy_typestore(frames, tmp_path):
    bag = make_bag_cli(*frames, tmp_path / "bag", "--thermal-encoding", "mono8", "--typestore", "jazzy")
    _, messages, _ = read_all(bag, ["/thermal/image_raw"], load_typestore("jazzy"))
    assert len(messages) == 5 and {m.msg.encoding for m in messages} == {"mono8"}


def test_compressed_bag_uses_image_transport_topics_and_lossless_thermal(frames, tmp_path):
    rgb_dir, thermal_dir = frames
    bag = make_bag_cli(rgb_dir, thermal_dir, tmp_path / "bag", "--compressed", "--storage", "mcap")
    topics, messages, _ = read_all(bag, ["/rgb/image_raw/compressed", "/thermal/image_raw/compressed"])
    assert {t.msgtype for t in topics.values()} == {"sensor_msgs/msg/CompressedImage"}
    thermal = [m for m in messages if m.topic.startswith("/thermal")]
    assert thermal[0].msg.format == "mono16; png compressed mono16"
    decoded = decode_image_message(thermal[0].msg)
    first_thermal = sorted(thermal_dir.iterdir())[0]
    np.testing.assert_array_equal(decoded.array, expected_thermal_gray(first_thermal).astype(np.uint16) * 257)
    rgb = [m for m in messages if m.topic.startswith("/rgb")][0]
    assert rgb.msg.format == "rgb8; jpeg compressed bgr8"
    assert decode_image_message(rgb.msg).array.shape == (120, 160, 3)


def test_missing_thermal_frame_and_jittered_stamps(frames, tmp_path):
    rgb_dir, thermal_dir = frames
    thermal_copy = tmp_path / "thermal"
    thermal_copy.mkdir()
    for i, path in enumerate(sorted(thermal_dir.iterdir())):
        if i != 2:
            (thermal_copy / path.name).write_bytes(path.read_bytes())
    bag = make_bag_cli(rgb_dir, thermal_copy, tmp_path / "bag", "--thermal-jitter-ms", "4", "--seed", "3")
    topics, messages, _ = read_all(bag, ["/rgb/image_raw", "/thermal/image_raw"])
    assert topics["/rgb/image_raw"].count == 5 and topics["/thermal/image_raw"].count == 4
    thermal_frames = []
    for m in messages:
        if m.topic == "/thermal/image_raw":
            offset_ns = stamp_to_ns(m.msg.header.stamp) - int(START_TIME_S * 1e9)
            k = int(round(offset_ns / 1e8))
            thermal_frames.append(k)
            jitter = offset_ns - k * 100_000_000
            assert 0 < abs(jitter) <= 4_000_000
    assert thermal_frames == [0, 1, 3, 4]
    log_times = [m.log_time_ns for m in messages]
    assert log_times == sorted(log_times)


def test_camera_info_from_calibration_yaml(frames, tmp_path):
    rgb_cal = write_calibration(tmp_path / "rgb.yaml", "rgb", focal=150.0)
    thermal_cal = write_calibration(tmp_path / "thermal.yaml", "thermal", focal=140.0)
    bag = make_bag_cli(*frames, tmp_path / "bag", "--rgb-calibration", str(rgb_cal), "--thermal-calibration",
                       str(thermal_cal))
    topics, messages, _ = read_all(bag, ["/rgb/camera_info", "/thermal/camera_info", "/rgb/image_raw"])
    assert topics["/rgb/camera_info"].msgtype == "sensor_msgs/msg/CameraInfo"
    assert topics["/thermal/camera_info"].count == 5
    info = next(m.msg for m in messages if m.topic == "/thermal/camera_info")
    assert info.k[0] == 140.0 and (info.width, info.height) == (160, 120) and info.header.frame_id == "thermal_camera"
    rgb_stamps = [stamp_to_ns(m.msg.header.stamp) for m in messages if m.topic == "/rgb/image_raw"]
    info_stamps = [stamp_to_ns(m.msg.header.stamp) for m in messages if m.topic == "/rgb/camera_info"]
    assert rgb_stamps == info_stamps


def test_files_without_common_names_pair_by_position(tmp_path):
    rgb, thermal = tmp_path / "rgb", tmp_path / "ir"
    rgb.mkdir(), thermal.mkdir()
    for i in range(3):
        (rgb / f"vis_{i}.png").touch()
        (thermal / f"ir_{i}.png").touch()
    frames = collect_frame_files(rgb, thermal)
    assert [(f.rgb.name, f.thermal.name) for f in frames] == [("vis_0.png", "ir_0.png"), ("vis_1.png", "ir_1.png"),
                                                              ("vis_2.png", "ir_2.png")]
    (thermal / "ir_3.png").touch()
    with pytest.raises(make_bag_module.FrameFolderError, match="paired by position"):
        collect_frame_files(rgb, thermal)


def test_refuses_to_overwrite_unless_told(frames, tmp_path, capsys):
    bag = make_bag_cli(*frames, tmp_path / "bag")
    before = (bag / "metadata.yaml").read_text()
    code = cli_main(["make-bag", str(frames[0]), str(frames[1]), str(bag), "--rate", "5", "--no-progress"])
    assert code == 2 and "exists; pass --overwrite" in capsys.readouterr().err
    assert (bag / "metadata.yaml").read_text() == before
    make_bag_cli(*frames, bag, "--overwrite", "--storage", "mcap")
    assert list(bag.glob("*.mcap")) and not list(bag.glob("*.db3"))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_interrupted_run_leaves_no_bag(frames, tmp_path, monkeypatch):
    calls = {"n": 0}
    real_read = make_bag_module.read_image

    def read_then_interrupt(path):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_read(path)

    monkeypatch.setattr(make_bag_module, "read_image", read_then_interrupt)
    code = cli_main(["make-bag", str(frames[0]), str(frames[1]), str(tmp_path / "bag"), "--rate", "10",
                     "--no-progress"])
    assert code == 130
    assert list(tmp_path.iterdir()) == []  # neither the bag nor a hidden partial folder


@pytest.mark.parametrize("args, message", [
    (["missing_rgb", "{thermal}", "out", "--rate", "10"], "not a folder"),
    (["{empty}", "{thermal}", "out", "--rate", "10"], "no images"),
    (["{rgb}", "{thermal}", "out", "--rate", "0"], "--rate must be > 0"),
    (["{rgb}", "{thermal}", "out", "--rate", "10", "--rgb-calibration", "nope.yaml"], "calibration file not found"),
])
def test_clear_errors(frames, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    formatted = [a.format(rgb=frames[0], thermal=frames[1], empty=tmp_path / "empty") for a in args]
    code = cli_main(["make-bag", *formatted, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not Path(tmp_path / "out").exists()
