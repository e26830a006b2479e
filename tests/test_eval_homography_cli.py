"""``distillmatch eval homography`` / ``zero-shot`` end to end, the validation entry point, and CLI errors."""
from __future__ import annotations

import csv
import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distillmatch_core.cli.main import main
from distillmatch_core.data.splits import default_data_root, load_pairs
from distillmatch_core.evaluation import evaluate_homography, evaluate_zero_shot, prepare_warped_pairs
from distillmatch_core.evaluation.classical_matchers import SiftRatioMatcher
from distillmatch_core.image_io import write_image
from synthetic_images import textured_image

SHARED_MANIFEST = default_data_root() / "manifest.csv"




@pytest.fixture
def aligned_folder(tmp_path) -> Path:
    """<tmp>/synthetic/{visible,infrared}: RGB 8-bit vs 16-bit single-channel of the same scene."""
    folder = tmp_path / "synthetic"
    for i in range(3):
        gray = textured_image(i)
        write_image(folder / "visible" / f"pair{i}.png", np.dstack([gray, gray, 255 - gray]))
        write_image(folder / "infrared" / f"pair{i}.png", (gray.astype(np.uint16) * 40 + 3000))
    return folder


def read_rows(path: Path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def run_cli(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.skipif(not SHARED_MANIFEST.is_file(), reason="shared developer data not available")
def test_homography_cli_on_three_real_dev_pairs(tmp_path, capsys):
    out = tmp_path / "eval"
    code, stdout, err = run_cli(["eval", "homography", "--method", "sift", "--method", "orb", "--limit", "3",
                                 "--out", str(out), "--no-progress"], capsys)
    assert code == 0, err
    rows = read_rows(out / "results.csv")
    methods = {r["method"] for r in rows}
    assert methods == {"sift", "orb"}
    all_rows = [r for r in rows if r["dataset"] == "all"]
    assert len(all_rows) == 2 and all(r["pairs"] == "3" for r in all_rows)
    for row in rows:
        for key in ("auc@3px", "auc@5px", "auc@10px", "auc@20px"):
            assert 0.0 <= float(row[key]) <= 100.0
    markdown = (out / "results.md").read_text()
    assert "distillmatch eval homography --method sift --method orb --split dev" in markdown
    assert "| sift |" in markdown and "| sift |" in stdout
    assert len(read_rows(out / "pairs.csv")) == 6
    plots = sorted(p.name for p in out.glob("curves_*.png"))
    assert "curves_all.png" in plots and all((out / p).stat().st_size > 1000 for p in plots)
    assert list((out / "matches").glob("*.png"))


def test_a_seed_list_pools_the_seeds(aligned_folder, tmp_path, capsys):
    from distillmatch_core.evaluation.auc import error_auc

    base = ["eval", "homography", "--method", "sift", "--data", str(aligned_folder), "--split", "all",
            "--size", "96", "--no-progress", "--visualizations", "1"]
    errors = {}
    for seed in ("1", "2", "1,2"):
        code, _, err = run_cli(base + ["--seed", seed, "--out", str(tmp_path / seed.replace(",", "_"))], capsys)
        assert code == 0, err
        errors[seed] = {r["pair_id"]: float(r["corner_error_px"])
                        for r in read_rows(tmp_path / seed.replace(",", "_") / "pairs.csv")}
    assert errors["1"] != errors["2"]  # the seeds warp differently
    # The pooled run is exactly the two single-seed runs, its pairs tagged with their seed ...
    assert errors["1,2"] == {**{f"{k}@seed1": v for k, v in errors["1"].items()},
                             **{f"{k}@seed2": v for k, v in errors["2"].items()}}
    # ... and its metrics are those of all six pairs together.
    pooled = tmp_path / "1_2"
    row = read_rows(pooled / "results.csv")[0]
    expected = error_auc(list(errors["1,2"].values()), [3, 5, 10, 20])
    assert row["pairs"] == "6"
    for threshold, auc in expected.items():
        assert float(row[f"auc@{threshold:g}px"]) == pytest.approx(auc)
    assert len(list((pooled / "matches").glob("*.png"))) == 1  # match images of the first seed only
    markdown = (pooled / "results.md").read_text()
    assert "seeds 1,2 pooled" in markdown and "--seed 1,2" in markdown


def test_a_fixed_scale_replaces_only_the_homographys_scale_term(aligned_folder, tmp_path, capsys):
    """--scale S: each pair's homography is the seed's draw with its scale set to S (the corner error of
    SIFT on same-scene pairs stays small at 1.5x), and the report names the setting."""
    from distillmatch_core.evaluation.random_homography import homography_from_parameters, sample_homography_parameters
    from distillmatch_core.evaluation.warped_pairs import pair_generator, prepare_warped_pair

    pair = load_pairs(aligned_folder)[0]
    case = prepare_warped_pair(pair, 320, 4, scale=1.5)
    height, width = case.image0.shape[:2]
    drawn = sample_homography_parameters(width, height, pair_generator(4, pair.key))
    assert drawn.scale != 1.5
    expected = homography_from_parameters(dataclasses.replace(drawn, scale=1.5), width, height)
    np.testing.assert_allclose(case.H_true, expected)
    np.testing.assert_allclose(prepare_warped_pair(pair, 320, 4).H_true,
                               homography_from_parameters(drawn, width, height))  # no --scale: the paper's draw

    out = tmp_path / "scaled"
    code, _, err = run_cli(["eval", "homography", "--method", "sift", "--data", str(aligned_folder), "--split", "all",
                            "--size", "320", "--seed", "4", "--scale", "1.5", "--no-progress", "--out", str(out)],
                           capsys)
    assert code == 0, err
    markdown = (out / "results.md").read_text()
    assert "--scale 1.5" in markdown and "scale fixed to 1.5" in markdown
    assert max(float(r["corner_error_px"]) for r in read_rows(out / "pairs.csv")) < 5.0


def test_evaluate_homography_is_near_perfect_for_same_scene_pairs(aligned_folder):
    pairs = load_pairs(aligned_folder)
    summary = evaluate_homography(SiftRatioMatcher(), pairs, size=320, seed=3, progress=False)
    assert summary["pairs"] == 3 and summary["failures"] == 0
    assert summary["auc@3px"] > 85.0 and summary["auc@10px"] > 95.0
    assert summary["median_inliers"] > 50
    # Prepared cases (what the training loop can cache) give the same numbers.
    cases = prepare_warped_pairs(pairs, size=320, seed=3)
    assert evaluate_homography(SiftRatioMatcher(), cases, progress=False)["auc@5px"] == pytest.approx(
        summary["auc@5px"])
    assert evaluate_homography(SiftRatioMatcher(), pairs, size=320, seed=3, limit=1, progress=False)["pairs"] == 1


def test_validation_entry_point_imports_no_plotting_or_torch(aligned_folder):
    code = (
        "import sys\n"
        "from distillmatch_core.data.splits import load_pairs\n"
        "from distillmatch_core.evaluation import evaluate_homography\n"
        "import numpy as np\n"
        f"m = evaluate_homography(lambda a, b: (np.zeros((0, 2)), np.zeros((0, 2))), load_pairs({str(aligned_folder)!r}), "
        "size=160, progress=False)\n"
        "assert m['failures'] == 3, m\n"
        "assert 'matplotlib' not in sys.modules and 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_zero_shot_cli_counts_correct_matches(aligned_folder, tmp_path, capsys):
    out = tmp_path / "zs"
    code, _, err = run_cli(["eval", "zero-shot", "--method", "sift", "--data", str(aligned_folder), "--size", "320",
                            "--out", str(out), "--no-progress", "--visualizations", "0"], capsys)
    assert code == 0, err
    (row,) = read_rows(out / "results.csv")
    assert row["dataset"] == "synthetic" and row["pairs"] == "3"
    assert float(row["mean_ncm"]) > 50 and float(row["mean_rmse_px"]) < 1.5
    assert int(row["pairs_without_correct"]) == 0
    assert not (out / "matches").exists()
    identity = evaluate_zero_shot(SiftRatioMatcher(), load_pairs(aligned_folder), size=320, progress=False)
    assert identity["mean_ncm"] > 50


# ----------------------------------------------------------------------------- plug-ins used by the error tests


def not_callable_factory():
    return 42


def malformed_output_factory():
    return lambda image0, image1: (np.zeros((5, 2)), np.zeros((4, 2)))


def failing_factory():
    raise RuntimeError("no GPU here")


def plugin(name: str) -> str:
    return f"{__name__}:{name}"


@pytest.mark.parametrize("extra, message", [
    (["--method", "surf"], "unknown method 'surf'"),
    (["--method", "no_such_module_xyz:factory"], "cannot import plug-in module"),
    (["--method", plugin("does_not_exist")], "has no callable"),
    (["--method", plugin("not_callable_factory")], "expected a match function"),
    (["--method", plugin("failing_factory")], "no GPU here"),
    (["--method", plugin("malformed_output_factory")], "must both be (N, 2)"),
    (["--method", "sift", "--limit", "0"], "--limit must be positive"),
    (["--method", "sift", "--size", "8"], "--size must be 0"),
    (["--method", "sift", "--strength", "2"], "--strength must be in [0, 1]"),
    (["--method", "sift", "--scale", "0"], "--scale must be in [0.1, 10]"),
    (["--method", "sift", "--scale", "nan"], "--scale must be in [0.1, 10]"),
    (["--method", "sift", "--method", "sift"], "only once"),
    (["--method", "sift", "--weights", "x.pt"], "--weights is only used by --method distillmatch"),
    (["--method", "distillmatch", "--weights", "/no/such/weights.pt"], "cannot load DistillMatch weights"),
    (["--method", "distillmatch", "--max-matches", "0"], "--max-matches 0 is invalid"),
    (["--method", "sift", "--seed", "1,x"], "--seed must be an integer or a comma list"),
    (["--method", "sift", "--seed", "1,2,1"], "names a seed twice"),
])
def test_cli_errors_are_one_line_without_traceback(aligned_folder, tmp_path, capsys, extra, message):
    code, _, err = run_cli(["eval", "homography", "--data", str(aligned_folder), "--split", "all",
                            "--out", str(tmp_path / "o"), "--no-progress", "--size", "160"] + extra, capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_data_errors(tmp_path, capsys):
    code, _, err = run_cli(["eval", "homography", "--data", str(tmp_path / "missing.csv")], capsys)
    assert code == 2 and "manifest not found" in err
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("set,pair_id,visible_path,infrared_path\nbroken,p0,a.png,b.png\n")
    code, _, err = run_cli(["eval", "zero-shot", "--data", str(manifest), "--no-progress",
                            "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "no such file" in err and "Traceback" not in err
    code, _, err = run_cli(["eval", "homography", "--data", str(manifest), "--split", "dev"], capsys)
    assert code == 2 and "no pairs in split 'dev'" in err
    code, _, err = run_cli(["eval"], capsys)
    assert code == 2 and "choose a protocol" in err
    code, _, err = run_cli(["eval", "pose", "--data", str(tmp_path / "nothing")], capsys)
    assert code == 2 and "no such index file or folder" in err
