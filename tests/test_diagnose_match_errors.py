"""training/diagnose_match_errors.py: coarse anchors replace the fine keypoints, the same-image check, bad weights."""
import numpy as np
import torch

from distillmatch_core.checkpoint import save_checkpoint
from distillmatch_core.config import preset
from distillmatch_core.model.distillmatch import DistillMatch
from training_scripts import load_training_script


def load_script():
    return load_training_script("diagnose_match_errors")


def test_coarse_anchor_keypoints_are_the_matched_cells_anchors():
    torch.manual_seed(0)
    model = DistillMatch(preset("tiny")).eval()
    model.cfg.coarse.threshold = 0.0
    wrapped = load_script().CoarseAnchorKeypoints(model)
    with torch.no_grad():
        out = wrapped(torch.rand(1, 1, 64, 96), torch.rand(1, 1, 64, 96))
    grid_w = 96 // 8
    assert out["keypoints0"].shape[0] > 0 and bool(out["match_valid"].all())
    assert torch.equal(out["keypoints0"][:, 0], (out["i_ids"] % grid_w).float() * 8)
    assert torch.equal(out["keypoints1"][:, 1], torch.div(out["j_ids"], grid_w, rounding_mode="floor").float() * 8)


def test_runs_on_a_dev_pair_and_rejects_bad_weights(tmp_path, data_root, capsys):
    script = load_script()
    path = tmp_path / "tiny.pt"
    cfg = preset("tiny")
    cfg.coarse.threshold = cfg.fine.threshold = 0.0  # random weights: keep every mutual nearest neighbour
    cfg.cefg.shared_transfer = True  # a symmetric network: the same image must match cell to cell
    torch.manual_seed(0)
    save_checkpoint(path, DistillMatch(cfg), cfg, {"note": "test"})
    plot = tmp_path / "offsets.png"
    assert script.main(["--weights", str(path), "--size", "128", "--limit", "1", "--strengths", "0",
                        "--threads", "1", "--plot", str(plot)]) == 0
    assert plot.stat().st_size > 0
    out = capsys.readouterr().out
    assert "homography strength 0" in out and "  fine   all" in out and "  coarse all" in out
    assert "mean offset" in out and "same image: 100.0 % of coarse matches on their own cell" in out
    assert "one-cell shift:" in out and "aligned (mean over 1 pairs" in out
    assert script.main(["--weights", str(tmp_path / "missing.pt")]) == 2
    assert "error:" in capsys.readouterr().err


def test_cell_offset_shares_bins_whole_cells_and_clips_far_ones():
    script = load_script()
    offsets = [np.array([[0.0, 0.0], [16.0, -16.0], [7.0, 0.0], [500.0, 0.0]]), np.array([[np.inf, 0.0]])]
    shares = script.cell_offset_shares(offsets, cell_px=16.0)
    r = script.PLOT_RADIUS
    assert shares.shape == (2 * r + 1, 2 * r + 1)
    assert shares[r, r] == 50.0  # (0, 0) and (7, 0): under half a cell
    assert shares[r - 1, r + 1] == 25.0  # one cell right, one up (row = dy)
    assert shares[r, 2 * r] == 25.0  # far offsets clip to the edge; the non-finite one is dropped


def test_right_cell_share_counts_matches_that_follow_the_shift():
    script = load_script()

    class Result:
        def __init__(self, k0, k1):
            self.keypoints0, self.keypoints1 = np.float32(k0), np.float32(k1)

    class Matcher:  # moves every keypoint by the shift, except the third one, which stays put
        def match(self, image0, image1):
            moved = np.argwhere(image1 > 0)[0][::-1] - np.argwhere(image0 > 0)[0][::-1]
            k0 = np.array([[0.0, 0.0], [16.0, 16.0], [32.0, 32.0], [60.0, 8.0]])
            k1 = k0 + moved
            k1[2] = k0[2]
            return Result(k0, k1)  # the last one moves out of the 64-px image when shifted: not counted

    image = np.zeros((64, 64), np.uint8)
    image[8, 8] = 255
    assert script.right_cell_share(Matcher(), image, image, 16.0, 16.0) == 2 / 3
    assert script.right_cell_share(Matcher(), image, image, 0.0, 16.0) == 1.0  # unmoved: all four count
