"""training/probe_unshared_content.py: the conditions black out the right pixels; the run prints every row."""
import numpy as np
import torch

from distillmatch_core.checkpoint import save_checkpoint
from distillmatch_core.config import preset
from distillmatch_core.evaluation.geometric_errors import apply_homography
from distillmatch_core.evaluation.warped_pairs import WarpedPair
from distillmatch_core.model.distillmatch import DistillMatch
from training_scripts import load_training_script


def load_script():
    return load_training_script("probe_unshared_content")


def textured_case(H: np.ndarray) -> WarpedPair:
    rng = np.random.default_rng(0)
    image0 = rng.integers(1, 256, (60, 90), dtype=np.uint8)
    image1 = rng.integers(1, 256, (60, 90), dtype=np.uint8)  # no zero pixels: black means blacked out
    return WarpedPair("set", "p", image0, image1, H)


def test_conditions_black_out_unshared_content_only():
    script = load_script()
    shift = np.array([[1.0, 0, 6], [0, 1, 3], [0, 0, 1]])  # image 0 -> image 1: 6 px right, 3 down
    with_regions = script.condition_cases(textured_case(shift), textured_case(np.diag([1.5, 1.5, 1.0])), keep=0.5,
                                          margins=(0.0, 0.1))
    names = list(script.CONDITIONS) + [script.shared_view_condition(m) for m in (0.0, 0.1)]
    assert list(with_regions) == names and names[-1] == "infrared 1.5x, shared view +10 %"
    assert all(region is None for name, (_, region) in with_regions.items() if name in script.CONDITIONS)
    # Image 1 (90x60) magnified 1.5x about the origin shows image 0's pixels 0..59.3 x 0..39.3: columns 0..60.
    assert with_regions[names[-2]][1].as_tuple() == (0, 0, 61, 41)
    assert with_regions[names[-1]][1].as_tuple() == (0, 0, 67, 45)  # + 5.9 x 3.9 px
    cases = {name: case for name, (case, _) in with_regions.items()}
    centre = script.central_mask(60, 90, 0.5)
    assert centre.sum() == 30 * 45
    assert not (cases["infrared border black"].image1[~centre]).any()
    assert (cases["infrared border black"].image0 > 0).all()
    assert not (cases["visible border black"].image0[~centre]).any() and (cases["visible border black"].image1 > 0).all()
    shared = cases["only shared content"]
    ys, xs = np.nonzero(shared.image0)
    mapped = apply_homography(shift, np.stack([xs, ys], 1).astype(float))
    # every pixel left in image 0 maps into image 1's kept centre (rows 15-44, columns 22-67), and the region is full
    assert mapped[:, 0].min() >= 21 and mapped[:, 0].max() <= 68 and mapped[:, 1].min() >= 14
    assert mapped[:, 1].max() <= 45 and abs(len(xs) - centre.sum()) < 0.1 * centre.sum()
    unseen = cases["infrared 1.5x, unseen black"].image0
    assert unseen[:40, :60].all() and not unseen[:, 61:].any() and not unseen[41:, :].any()


def test_runs_on_a_dev_pair_and_rejects_bad_input(tmp_path, data_root, capsys):
    script = load_script()
    path = tmp_path / "tiny.pt"
    cfg = preset("tiny")
    cfg.coarse.threshold = cfg.fine.threshold = 0.0
    torch.manual_seed(0)
    save_checkpoint(path, DistillMatch(cfg), cfg, {"note": "test"})
    assert script.main(["--weights", str(path), "--size", "128", "--limit", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    for condition in script.CONDITIONS + ("infrared 1.5x, shared view +5 %",):
        assert condition in out
    assert "1 dev pairs, seed 0" in out
    assert script.main(["--weights", str(tmp_path / "missing.pt")]) == 2
    assert "probe_unshared_content: error:" in capsys.readouterr().err
    assert script.main(["--weights", str(path), "--keep", "1.0"]) == 2
    assert "--keep" in capsys.readouterr().err
    assert script.main(["--weights", str(path), "--margins", "0,-0.1"]) == 2
    assert "--margins" in capsys.readouterr().err
