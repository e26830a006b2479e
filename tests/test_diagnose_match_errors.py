"""training/diagnose_match_errors.py: coarse anchors replace the fine keypoints; bad weights give one line."""
import importlib.util
from pathlib import Path

import torch

from distillmatch_core.checkpoint import save_checkpoint
from distillmatch_core.config import preset
from distillmatch_core.model.distillmatch import DistillMatch

SCRIPT = Path(__file__).resolve().parents[1] / "training" / "diagnose_match_errors.py"


def load_script():
    spec = importlib.util.spec_from_file_location("diagnose_match_errors", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    save_checkpoint(path, DistillMatch(preset("tiny")), preset("tiny"), {"note": "test"})
    assert script.main(["--weights", str(path), "--size", "128", "--limit", "1", "--strengths", "0",
                        "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "homography strength 0" in out and "  fine   all" in out and "  coarse all" in out
    assert script.main(["--weights", str(tmp_path / "missing.pt")]) == 2
    assert "error:" in capsys.readouterr().err
