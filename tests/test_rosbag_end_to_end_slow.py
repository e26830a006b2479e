"""bag-eval with the real ``Matcher.from_pretrained("default")`` on a bag of real aligned pairs (slow)."""
import json

import pytest

from distillmatch_core.rosbag.bag_eval import BagEvalConfig, run_bag_eval
from distillmatch_core.rosbag.bag_reader import InputBag
from distillmatch_core.rosbag.typestore_selection import load_typestore
from rosbag_test_frames import make_bag_cli, write_frame_folders


@pytest.mark.slow
def test_bag_eval_with_the_real_matcher(tmp_path):
    from distillmatch_core import Matcher
    from distillmatch_core.matcher import DEFAULT_WEIGHTS
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip(f"the default model is not packaged in this checkout ({DEFAULT_WEIGHTS})")

    def create_matcher():
        return Matcher.from_pretrained("default", device="cpu", size=320)

    rgb_dir, thermal_dir = write_frame_folders(tmp_path / "frames", count=3)
    bag = make_bag_cli(rgb_dir, thermal_dir, tmp_path / "bag", "--storage", "mcap")
    result = run_bag_eval(BagEvalConfig(input_bag=bag, out_dir=tmp_path / "eval", progress=False), create_matcher)
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["counts"]["pairs"] == 3
    assert report["counts"]["pairs_failed"] == 0, report["first_error"]
    assert all(r.num_matches > 0 for r in result.records)
    with InputBag(tmp_path / "eval" / "output_bag", load_typestore("humble")) as output:
        assert output.topics()["/matcher_node/correspondences"].count == 3


@pytest.mark.slow
def test_bag_eval_with_a_real_matcher_on_a_tiny_random_checkpoint(tmp_path):
    """Exercises the real Matcher -> FrameProcessor contract even before trained weights are shipped."""
    import torch

    from distillmatch_core import Matcher
    from distillmatch_core.checkpoint import save_checkpoint
    from distillmatch_core.config import preset
    from distillmatch_core.model.distillmatch import DistillMatch
    torch.manual_seed(0)
    config = preset("tiny")
    weights = tmp_path / "tiny.pt"
    save_checkpoint(weights, DistillMatch(config).eval(), config)

    rgb_dir, thermal_dir = write_frame_folders(tmp_path / "frames", count=2)
    bag = make_bag_cli(rgb_dir, thermal_dir, tmp_path / "bag")
    result = run_bag_eval(BagEvalConfig(input_bag=bag, out_dir=tmp_path / "eval", progress=False),
                          lambda: Matcher.from_pretrained(weights, device="cpu", backend="torch", size=160))
    assert result.report["counts"]["pairs"] == 2
    assert result.report["counts"]["pairs_failed"] == 0, result.report["first_error"]
