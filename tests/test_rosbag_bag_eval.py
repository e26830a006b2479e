"""``distillmatch bag-eval`` on bags made by make-bag from real aligned pairs, with a fake matcher.

The pairs are aligned, so the fake matcher's correspondences follow the
identity homography; every number in the outputs is therefore predictable.
"""
import json

import cv2
import numpy as np
import pytest

from distillmatch_core.cli import bag_eval_command
from distillmatch_core.cli.main import main as cli_main
from distillmatch_core.ros_interface.approximate_time_pairing import PairingPolicy
from distillmatch_core.ros_interface.homography_filter import mean_corner_distance
from distillmatch_core.ros_interface.image_encoding import decode_image_message
from distillmatch_core.ros_interface.message_factory import stamp_to_ns
from distillmatch_core.ros_interface.output_messages import correspondence_cloud_to_array, homography_from_message
from distillmatch_core.rosbag.bag_eval import BagEvalConfig, run_bag_eval
from distillmatch_core.rosbag.bag_reader import InputBag
from distillmatch_core.rosbag.eval_report import read_pairs_csv
from distillmatch_core.rosbag.typestore_selection import load_typestore
from fake_matchers import FakeHomographyMatcher, FakeStereoMatcher
from rosbag_test_frames import make_bag_cli, write_calibration, write_frame_folders

HUMBLE = load_typestore("humble")
OUTPUT_TOPICS = {
    "/matcher_node/correspondences": "sensor_msgs/msg/PointCloud2",
    "/matcher_node/homography": "std_msgs/msg/Float64MultiArray",
    "/matcher_node/aligned_thermal": "sensor_msgs/msg/Image",
}


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return write_frame_folders(tmp_path_factory.mktemp("frames"), count=6)


@pytest.fixture(scope="module")
def bags(frames, tmp_path_factory):
    root = tmp_path_factory.mktemp("bags")
    rgb_dir, thermal_dir = frames
    missing_thermal = root / "thermal_missing"
    missing_thermal.mkdir()
    for i, path in enumerate(sorted(thermal_dir.iterdir())):
        if i != 3:
            (missing_thermal / path.name).write_bytes(path.read_bytes())
    return {
        "sqlite3": make_bag_cli(rgb_dir, thermal_dir, root / "sqlite3_bag", "--storage", "sqlite3"),
        "mcap": make_bag_cli(rgb_dir, thermal_dir, root / "mcap_bag", "--storage", "mcap"),
        "jitter_missing": make_bag_cli(rgb_dir, missing_thermal, root / "jitter_bag", "--thermal-jitter-ms", "8",
                                       "--seed", "5"),
        "compressed": make_bag_cli(rgb_dir, thermal_dir, root / "compressed_bag", "--compressed", "--storage",
                                   "mcap"),
    }


def evaluate(bag, out, matcher=None, **kwargs):
    config = BagEvalConfig(input_bag=bag, out_dir=out, progress=False, **kwargs)
    matcher = matcher or FakeHomographyMatcher()
    return run_bag_eval(config, lambda: matcher)


def read_output_bag(out_dir, typestore=HUMBLE):
    with InputBag(out_dir / "output_bag", typestore) as bag:
        topics = bag.topics()
        messages = list(bag.messages(topics))
    return topics, messages


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_full_evaluation_outputs_are_consistent(bags, tmp_path, storage):
    out = tmp_path / "eval"
    result = evaluate(bags[storage], out)
    report = json.loads((out / "report.json").read_text())
    assert report == json.loads(json.dumps(result.report))
    assert report["input"]["storage"] == storage and report["input"]["typestore"] == "humble"
    counts = report["counts"]
    assert counts == {"rgb_messages": 6, "thermal_messages": 6, "pairs": 6, "unpaired_rgb": 0, "unpaired_thermal": 0,
                      "pairs_succeeded": 6, "pairs_failed": 0, "pairs_with_homography": 6,
                      "pairs_with_relative_pose": 0}
    assert report["summary"]["matches"]["median"] == 80 and report["summary"]["inliers"]["median"] == 72
    assert report["summary"]["homography_stability"]["corner_drift_px"]["max"] < 0.01
    assert report["pairing"]["slop_s"] == 0.05
    for name in report["files"]["plots"]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {p.name for p in (out / "plots").iterdir()} == {"matches_inliers.png", "processing_time.png",
                                                           "homography_stability.png"}

    rows = read_pairs_csv(out / "pairs.csv")
    assert len(rows) == 6
    assert all(row["homography_ok"] == "1" and row["error"] == "" for row in rows)

    topics, messages = read_output_bag(out)
    assert {name: t.msgtype for name, t in topics.items()} == OUTPUT_TOPICS
    assert all(t.count == 6 for t in topics.values())
    assert report["output_bag"]["topics"] == {name: {"type": t.msgtype, "count": 6} for name, t in topics.items()}
    assert "version: 8" in (out / "output_bag" / "metadata.yaml").read_text()

    by_topic = {name: [m for m in messages if m.topic == name] for name in OUTPUT_TOPICS}
    for i, row in enumerate(rows):
        rgb_stamp = int(row["rgb_stamp_ns"])
        cloud_msg = by_topic["/matcher_node/correspondences"][i]
        assert stamp_to_ns(cloud_msg.msg.header.stamp) == rgb_stamp == cloud_msg.log_time_ns
        cloud = correspondence_cloud_to_array(cloud_msg.msg)
        assert len(cloud) == int(row["num_matches"]) and int(cloud[:, 5].sum()) == int(row["num_inliers"])
        H = homography_from_message(by_topic["/matcher_node/homography"][i].msg)
        assert by_topic["/matcher_node/homography"][i].log_time_ns == rgb_stamp
        np.testing.assert_allclose(H.ravel(), [float(row[f"h{r}{c}"]) for r in range(3) for c in range(3)],
                                   rtol=1e-8, atol=1e-9)
        assert mean_corner_distance(H, np.eye(3), 160, 120) < 0.01  # aligned pairs: identity
        aligned = by_topic["/matcher_node/aligned_thermal"][i].msg
        assert stamp_to_ns(aligned.header.stamp) == rgb_stamp and aligned.header.frame_id == "rgb_camera"
        assert (aligned.encoding, aligned.width, aligned.height) == ("mono16", 160, 120)


def test_missing_frame_and_jitter_pair_like_the_node(bags, tmp_path):
    result = evaluate(bags["jitter_missing"], tmp_path / "eval")
    counts = result.report["counts"]
    assert (counts["rgb_messages"], counts["thermal_messages"], counts["pairs"]) == (6, 5, 5)
    assert counts["unpaired_rgb"] == 1 and counts["unpaired_thermal"] == 0
    rows = read_pairs_csv(tmp_path / "eval" / "pairs.csv")
    frame_index = [round((int(r["rgb_stamp_ns"]) - int(rows[0]["rgb_stamp_ns"])) / 1e8) for r in rows]
    assert frame_index == [0, 1, 2, 4, 5]  # frame 3 had no thermal partner
    differences = [abs(float(r["stamp_difference_s"])) for r in rows]
    assert max(differences) <= 0.008 and max(differences) > 0
    assert result.report["summary"]["stamp_difference_s"]["count"] == 5
    # A slop tighter than the jitter pairs fewer frames, exactly as the live synchroniser would.
    tight = evaluate(bags["jitter_missing"], tmp_path / "tight",
                     pairing=PairingPolicy(slop_s=min(differences) + 1e-4, queue_size=10))
    assert 1 <= tight.report["counts"]["pairs"] < 5


def test_compressed_images_are_evaluated(bags, tmp_path):
    result = evaluate(bags["compressed"], tmp_path / "eval", rgb_topic="/rgb/image_raw/compressed",
                      thermal_topic="/thermal/image_raw/compressed")
    assert result.report["counts"]["pairs_succeeded"] == 6
    _, messages = read_output_bag(tmp_path / "eval")
    aligned = [m.msg for m in messages if m.topic.endswith("aligned_thermal")]
    assert aligned[0].encoding == "mono16"  # the lossless PNG kept 16 bits


def test_reference_homography_and_video(bags, tmp_path):
    out = tmp_path / "eval"
    reference = np.array([[1.0, 0, 2.0], [0, 1.0, 0.0], [0, 0, 1.0]])  # 2 px off the true (identity) alignment
    result = evaluate(bags["sqlite3"], out, reference_homography=reference, reference_homography_source="H.txt",
                      video=True, video_fps=5.0)
    error = result.report["reference"]["corner_error_px"]
    assert error["count"] == 6 and error["median"] == pytest.approx(2.0, abs=0.01)
    assert (out / "plots" / "reference_error.png").is_file()
    rows = read_pairs_csv(out / "pairs.csv")
    assert float(rows[0]["reference_corner_error_px"]) == pytest.approx(2.0, abs=0.01)
    assert result.report["files"]["video"] == "overlay.mp4"
    capture = cv2.VideoCapture(str(out / "overlay.mp4"))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames == 6


def test_include_inputs_and_mcap_output(bags, tmp_path):
    evaluate(bags["sqlite3"], tmp_path / "eval", include_inputs=True, output_storage="mcap", node_name="fusion_matcher",
             namespace="robot1")
    assert list((tmp_path / "eval" / "output_bag").glob("*.mcap"))
    topics, _ = read_output_bag(tmp_path / "eval")
    assert topics["/rgb/image_raw"].count == 6 and topics["/thermal/image_raw"].count == 6
    assert topics["/robot1/fusion_matcher/homography"].msgtype == "std_msgs/msg/Float64MultiArray"


def test_relative_pose_with_camera_info(frames, tmp_path):
    rgb_cal = write_calibration(tmp_path / "rgb.yaml", "rgb", focal=150.0)
    thermal_cal = write_calibration(tmp_path / "thermal.yaml", "thermal", focal=150.0)
    bag = make_bag_cli(*frames, tmp_path / "bag", "--rgb-calibration", str(rgb_cal), "--thermal-calibration",
                       str(thermal_cal))
    K = np.array([[150.0, 0, 80], [0, 150.0, 60], [0, 0, 1]])
    R = np.eye(3)
    t = np.array([-0.2, 0.0, 0.0])
    result = evaluate(bag, tmp_path / "eval", matcher=FakeStereoMatcher(R, t, K, K, points=80))
    assert result.report["input"]["rgb_camera_info_topic"] == "/rgb/camera_info"
    assert result.report["counts"]["pairs_with_relative_pose"] == 6
    topics, messages = read_output_bag(tmp_path / "eval")
    assert topics["/matcher_node/relative_pose"].msgtype == "geometry_msgs/msg/TransformStamped"
    pose = [m.msg for m in messages if m.topic == "/matcher_node/relative_pose"][0]
    assert (pose.header.frame_id, pose.child_frame_id) == ("rgb_camera", "thermal_camera")
    translation = np.array([pose.transform.translation.x, pose.transform.translation.y, pose.transform.translation.z])
    np.testing.assert_allclose(translation, [1.0, 0.0, 0.0], atol=0.02)  # thermal camera sits at +x of RGB
    ignored = evaluate(bag, tmp_path / "eval_no_info", matcher=FakeStereoMatcher(R, t, K, K, points=80),
                       rgb_camera_info_topic="")
    assert ignored.report["counts"]["pairs_with_relative_pose"] == 0


def test_failed_pairs_are_reported_and_evaluation_continues(bags, tmp_path):
    result = evaluate(bags["sqlite3"], tmp_path / "eval", matcher=FakeHomographyMatcher(fail_on_calls=(1, 4)))
    counts = result.report["counts"]
    assert (counts["pairs_failed"], counts["pairs_succeeded"]) == (2, 4)
    assert "simulated matcher failure" in result.report["first_error"]
    rows = read_pairs_csv(tmp_path / "eval" / "pairs.csv")
    assert [bool(r["error"]) for r in rows] == [False, True, False, False, True, False]
    topics, _ = read_output_bag(tmp_path / "eval")
    assert topics["/matcher_node/correspondences"].count == 4


def test_cli_with_node_parameter_file(bags, tmp_path, monkeypatch, capsys):
    matcher = FakeHomographyMatcher()
    seen = {}

    def fake_factory(model):
        seen.update(weights=model.weights, **model.matcher_options())
        return lambda: matcher

    monkeypatch.setattr(bag_eval_command, "_matcher_factory", fake_factory)
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    min_inliers: 100\n    slop: 0.02\n    device: cuda\n")
    reference = tmp_path / "H.txt"
    np.savetxt(reference, np.eye(3))
    code = cli_main(["bag-eval", str(bags["sqlite3"]), "--out", str(tmp_path / "eval"), "--params", str(params),
                     "--size", "320", "--max-matches", "256", "--compile", "--bf16", "--no-progress",
                     "--reference-homography", str(reference)])
    out = capsys.readouterr().out
    assert code == 0 and "pairs: 6" in out and "results in" in out
    assert seen == {"weights": "default", "backend": "auto", "device": "cuda", "size": 320, "max_matches": 256,
                    "torch_compile": True, "cpu_bf16": True}
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["processing"]["min_inliers"] == 100 and report["pairing"]["slop_s"] == 0.02
    assert report["counts"]["pairs_with_homography"] == 0  # 72 inliers < 100
    assert report["matcher"] == {"weights": "default", "backend": "auto", "device": "cuda", "size": 320,
                                "max_matches": 256, "torch_compile": True, "cpu_bf16": True}
    assert report["reference"]["corner_error_px"]["count"] == 0


def test_cli_default_output_folder_next_to_cwd(bags, tmp_path, monkeypatch):
    monkeypatch.setattr(bag_eval_command, "_matcher_factory", lambda *a: (lambda: FakeHomographyMatcher()))
    monkeypatch.chdir(tmp_path)
    assert cli_main(["bag-eval", str(bags["mcap"]), "--no-progress"]) == 0
    assert (tmp_path / "mcap_bag_eval" / "report.json").is_file()


def test_cli_exit_code_when_every_pair_fails(bags, tmp_path, monkeypatch, capsys):
    failing = FakeHomographyMatcher(fail_on_calls=tuple(range(10)))
    monkeypatch.setattr(bag_eval_command, "_matcher_factory", lambda *a: (lambda: failing))
    code = cli_main(["bag-eval", str(bags["sqlite3"]), "--out", str(tmp_path / "eval"), "--no-progress"])
    assert code == 1 and "every pair failed" in capsys.readouterr().out
    assert (tmp_path / "eval" / "report.json").is_file()


def test_aligned_thermal_in_output_bag_matches_input_thermal(bags, tmp_path):
    evaluate(bags["sqlite3"], tmp_path / "eval")
    with InputBag(bags["sqlite3"], HUMBLE) as bag:
        thermal_in = [decode_image_message(m.msg).array for m in bag.messages(["/thermal/image_raw"])]
    _, messages = read_output_bag(tmp_path / "eval")
    aligned = [decode_image_message(m.msg).array for m in messages if m.topic.endswith("aligned_thermal")]
    for before, after in zip(thermal_in, aligned):
        # Identity warp: interior pixels unchanged (the last row/column touch the border).
        np.testing.assert_allclose(after[:-1, :-1].astype(int), before[:-1, :-1].astype(int), atol=1)
