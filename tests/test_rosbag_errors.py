"""bag-eval error paths: clear one-line errors, no tracebacks, never a modified input or a half-written output."""
import numpy as np
import pytest

import distillmatch_core
from distillmatch_core.cli import bag_eval_command
from distillmatch_core.cli.main import main as cli_main
from distillmatch_core.ros_interface.message_factory import RosbagsMessageFactory, make_header
from distillmatch_core.rosbag.bag_errors import (BagEncodingError, BagOpenError, BagTopicError, EmptyBagError,
                                                 OutputExistsError)
from distillmatch_core.rosbag.bag_eval import BagEvalConfig, run_bag_eval
from distillmatch_core.rosbag.bag_writer import MessageBagWriter
from distillmatch_core.rosbag.typestore_selection import load_typestore
from fake_matchers import FakeHomographyMatcher
from rosbag_test_frames import files_fingerprint, make_bag_cli, write_frame_folders

HUMBLE = load_typestore("humble")


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    root = tmp_path_factory.mktemp("bag")
    return make_bag_cli(*write_frame_folders(root, count=4), root / "input_bag")


@pytest.fixture
def fake_cli_matcher(monkeypatch):
    monkeypatch.setattr(bag_eval_command, "_matcher_factory", lambda *a: (lambda: FakeHomographyMatcher()))


def run_cli(capsys, *args):
    code = cli_main(["bag-eval", *map(str, args), "--no-progress"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err.strip()


def evaluate(bag_path, out, matcher_factory=None, **kwargs):
    config = BagEvalConfig(input_bag=bag_path, out_dir=out, progress=False, **kwargs)
    return run_bag_eval(config, matcher_factory or (lambda: FakeHomographyMatcher()))


def test_missing_topic_lists_the_bags_topics_and_types(bag, tmp_path, capsys, fake_cli_matcher):
    code, err = run_cli(capsys, bag, "--rgb-topic", "/camera/color/image_raw", "--out", tmp_path / "eval")
    assert code == 2 and err.count("\n") == 0
    assert "topic /camera/color/image_raw not found" in err
    assert "/rgb/image_raw [sensor_msgs/msg/Image, 4 msgs]" in err
    assert "/thermal/image_raw [sensor_msgs/msg/Image, 4 msgs]" in err
    assert not (tmp_path / "eval").exists()


def test_wrong_message_type_on_topic(tmp_path):
    path = tmp_path / "wrong_type"
    with MessageBagWriter(path, HUMBLE) as writer:
        writer.write("/rgb/image_raw", "std_msgs/msg/String", 1, HUMBLE.types["std_msgs/msg/String"](data="x"))
        writer.write("/thermal/image_raw", "std_msgs/msg/String", 1, HUMBLE.types["std_msgs/msg/String"](data="x"))
    with pytest.raises(BagTopicError, match="has type std_msgs/msg/String, expected sensor_msgs/msg/Image or"):
        evaluate(path, tmp_path / "eval")


def test_same_topic_for_both_inputs(bag, tmp_path):
    with pytest.raises(BagTopicError, match="both /rgb/image_raw"):
        evaluate(bag, tmp_path / "eval", thermal_topic="/rgb/image_raw")


def image_bag(path, encoding="rgb8", thermal_offset_ns=0, count=2):
    make = RosbagsMessageFactory(HUMBLE)
    with MessageBagWriter(path, HUMBLE) as writer:
        for k in range(count):
            for topic, offset in (("/rgb/image_raw", 0), ("/thermal/image_raw", thermal_offset_ns)):
                stamp = 1_000_000_000 + k * 100_000_000 + offset
                msg = make("sensor_msgs/msg/Image", header=make_header(make, *divmod(stamp, 10**9), "cam"),
                           height=2, width=2, encoding=encoding if topic.startswith("/rgb") else "mono16",
                           is_bigendian=0, step=8, data=np.zeros(16, np.uint8))
                writer.write(topic, "sensor_msgs/msg/Image", stamp, msg)
    return path


def test_unknown_encoding(tmp_path, capsys, fake_cli_matcher):
    path = image_bag(tmp_path / "yuv", encoding="yuv422")
    with pytest.raises(BagEncodingError, match="'yuv422' is not supported; supported: rgb8"):
        evaluate(path, tmp_path / "eval")
    code, err = run_cli(capsys, path, "--out", tmp_path / "eval")
    assert code == 2 and "yuv422" in err


def test_empty_bag(tmp_path, capsys, fake_cli_matcher):
    path = tmp_path / "empty"
    with MessageBagWriter(path, HUMBLE):
        pass
    code, err = run_cli(capsys, path, "--out", tmp_path / "eval")
    assert code == 2 and "holds no messages" in err


def test_no_pairs_within_slop_explains_the_gap(tmp_path):
    path = image_bag(tmp_path / "offset", thermal_offset_ns=300_000_000, count=1)
    with pytest.raises(EmptyBagError, match=r"closer than slop = 0.05 s; the closest RGB/thermal stamps are 0.300000"):
        evaluate(path, tmp_path / "eval")


def _missing(tmp):
    return tmp / "does_not_exist"


def _plain_folder(tmp):
    (tmp / "plain_folder").mkdir()
    return tmp / "plain_folder"


def _garbage_file(name, content):
    def make(tmp):
        (tmp / name).write_bytes(content)
        return tmp / name
    return make


@pytest.mark.parametrize("make_input, pattern", [
    (_missing, "no such bag"),
    (_plain_folder, "without metadata.yaml"),
    (_garbage_file("garbage.db3", b"not a database at all" * 10), "cannot read bag"),
    (_garbage_file("garbage.mcap", b"\x89MCAP0\r\n" + b"\0" * 40), "cannot read bag"),
])
def test_unreadable_inputs(tmp_path, capsys, fake_cli_matcher, make_input, pattern):
    path = make_input(tmp_path)
    with pytest.raises(BagOpenError, match=pattern):
        evaluate(path, tmp_path / "eval")
    code, err = run_cli(capsys, path, "--out", tmp_path / "eval")
    assert code == 2 and pattern in err


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_truncated_bag(tmp_path, storage):
    path = image_bag(tmp_path / "bag", count=30) if storage == "sqlite3" else None
    if path is None:
        path = tmp_path / "bag"
        make = RosbagsMessageFactory(HUMBLE)
        with MessageBagWriter(path, HUMBLE, storage="mcap") as writer:
            for k in range(30):
                msg = make("sensor_msgs/msg/Image", header=make_header(make, 1, k, "cam"), height=8, width=8,
                           encoding="mono8", is_bigendian=0, step=8, data=np.zeros(64, np.uint8))
                writer.write("/rgb/image_raw", "sensor_msgs/msg/Image", k, msg)
                writer.write("/thermal/image_raw", "sensor_msgs/msg/Image", k, msg)
    storage_file = next(p for p in path.iterdir() if p.suffix in (".db3", ".mcap"))
    storage_file.write_bytes(storage_file.read_bytes()[: storage_file.stat().st_size // 2])
    with pytest.raises(BagOpenError, match="cannot read bag|damaged or truncated"):
        evaluate(path, tmp_path / "eval")
    assert not (tmp_path / "eval").exists()


def test_refuses_to_overwrite_and_overwrite_replaces_atomically(bag, tmp_path, capsys, fake_cli_matcher):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code, err = run_cli(capsys, bag, "--out", out)
    assert code == 2 and "exists; pass --overwrite" in err
    assert (out / "notes.txt").read_text() == "keep me"
    code, _ = run_cli(capsys, bag, "--out", out, "--overwrite")
    assert code == 0 and (out / "report.json").is_file() and not (out / "notes.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval"]  # no .partial / .old leftovers


def test_empty_existing_output_folder_is_fine(bag, tmp_path):
    (tmp_path / "eval").mkdir()
    evaluate(bag, tmp_path / "eval")
    assert (tmp_path / "eval" / "report.json").is_file()


def test_output_inside_input_bag_is_refused_even_with_overwrite(bag):
    with pytest.raises(OutputExistsError, match="inside the input"):
        evaluate(bag, bag / "eval", overwrite=True)
    with pytest.raises(OutputExistsError, match="overwrite or sit inside the input"):
        evaluate(bag, bag, overwrite=True)


def test_input_bag_is_never_modified(bag, tmp_path):
    before = files_fingerprint(bag)
    evaluate(bag, tmp_path / "eval", include_inputs=True, video=True)
    assert files_fingerprint(bag) == before


def test_interrupted_run_leaves_nothing_that_looks_complete(bag, tmp_path, capsys, monkeypatch):
    class InterruptingMatcher(FakeHomographyMatcher):
        def match(self, *args, **kwargs):
            if len(self.calls) == 2:
                raise KeyboardInterrupt  # Ctrl-C half-way; a per-frame Exception would be caught
            return super().match(*args, **kwargs)

    monkeypatch.setattr(bag_eval_command, "_matcher_factory", lambda *a: (lambda: InterruptingMatcher()))
    before = files_fingerprint(bag)
    code = cli_main(["bag-eval", str(bag), "--out", str(tmp_path / "eval"), "--no-progress", "--video"])
    assert code == 130 and "interrupted" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no output folder, no hidden partial folder
    assert files_fingerprint(bag) == before


def test_interrupt_during_overwrite_keeps_the_previous_result(bag, tmp_path):
    out = tmp_path / "eval"
    evaluate(bag, out)
    previous = (out / "report.json").read_text()

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(bag, out, matcher_factory=interrupted, overwrite=True)
    assert (out / "report.json").read_text() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval"]


@pytest.mark.parametrize("content, pattern", [
    ("1 0 0\n0 1 0\n", "expected 9 finite numbers"),
    ("1 0 0\n0 1 0\n0 0 nan\n", "expected 9 finite numbers"),
    ("0 0 0\n0 0 0\n0 0 0\n", "singular"),
    ("a b c\n", "not a whitespace-separated 3x3 matrix"),
])
def test_bad_reference_homography(bag, tmp_path, capsys, fake_cli_matcher, content, pattern):
    reference = tmp_path / "H.txt"
    reference.write_text(content)
    code, err = run_cli(capsys, bag, "--out", tmp_path / "eval", "--reference-homography", reference)
    assert code == 2 and pattern in err and not (tmp_path / "eval").exists()


def test_bad_parameter_file_and_values(bag, tmp_path, capsys, fake_cli_matcher):
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    minimum_inliers: 3\n")
    code, err = run_cli(capsys, bag, "--out", tmp_path / "eval", "--params", params)
    assert code == 2 and "unknown parameters minimum_inliers" in err
    params.write_text("/**:\n  ros__parameters:\n    slop: 1\n")
    code, err = run_cli(capsys, bag, "--out", tmp_path / "eval", "--params", params)
    assert code == 2 and "slop: expected float" in err
    code, err = run_cli(capsys, bag, "--out", tmp_path / "eval", "--slop", "-1")
    assert code == 2 and "slop" in err and "below the minimum" in err
    code, err = run_cli(capsys, bag, "--out", tmp_path / "eval", "--params", tmp_path / "missing.yaml")
    assert code == 2 and "parameter file not found" in err


def test_missing_model_weights_are_a_clear_error(bag, tmp_path, capsys, monkeypatch):
    class MissingWeightsMatcher:
        @classmethod
        def from_pretrained(cls, name_or_path, device="cpu", backend="torch", size=640, max_matches=None):
            raise FileNotFoundError(f"no weights at {name_or_path}")

    monkeypatch.setattr(distillmatch_core, "Matcher", MissingWeightsMatcher, raising=False)
    code, err = run_cli(capsys, bag, "--out", tmp_path / "eval", "--weights", "/models/none.pt")
    assert code == 2 and "model weights not found ('/models/none.pt')" in err
    assert not (tmp_path / "eval").exists()
