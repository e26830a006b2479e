"""training/package_model.py: how a calibration row is chosen."""
from training_scripts import load_training_script


def load_script():
    return load_training_script("package_model")


def row(size, auc5, auc10, auc20, median):
    return {"size": size, "auc@5px": auc5, "auc@10px": auc10, "auc@20px": auc20, "median_corner_error_px": median}


def test_auc_differences_below_one_pair_are_ties():
    key = load_script().selection_key
    steady = row(320, 0.0, 1.0, 6.5, 34.0)
    lucky = row(416, 0.5, 1.5, 6.4, 53.0)  # 0.5 AUC@10 points: less than one of 120 pairs (0.83)
    assert max([lucky, steady], key=lambda r: key(r, 120)) is steady
    # With 12 pairs one pair is worth 8.3 points: the same gap is a tie there too, a 9-point one is not.
    assert max([lucky, steady], key=lambda r: key(r, 12)) is steady
    better = row(416, 0.0, 10.0, 6.4, 53.0)
    assert max([steady, better], key=lambda r: key(r, 12)) is better


def test_ranks_auc_at_10_before_auc_at_20_before_the_median_error():
    key = load_script().selection_key
    a = row(320, 0.0, 5.0, 10.0, 40.0)
    b = row(320, 0.0, 0.0, 30.0, 20.0)
    assert max([a, b], key=lambda r: key(r, 100)) is a
    c = row(320, 0.0, 5.0, 10.0, 30.0)
    assert max([a, c], key=lambda r: key(r, 100)) is c
