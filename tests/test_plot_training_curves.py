"""training/plot_training_curves.py: smoothing, missing columns, bad input as one-line errors."""
import numpy as np
import pytest
from training_scripts import load_training_script


@pytest.fixture(scope="module")
def script():
    return load_training_script("plot_training_curves")


def write_metrics(folder, header, rows):
    folder.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    (folder / "metrics.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_moving_average_is_centred_and_skips_nan(script):
    values = np.array([0.0, 3.0, np.nan, 3.0, 6.0])
    smoothed = script.moving_average(values, 3)
    assert smoothed[1] == pytest.approx(1.5)  # mean of 0 and 3; the NaN neighbour is not a zero
    assert smoothed[2] == pytest.approx(3.0)
    assert smoothed[4] == pytest.approx(4.5)  # shorter window at the end, no zero padding
    assert np.array_equal(script.moving_average(values, 1), values, equal_nan=True)


def test_plots_runs_and_notes_a_run_without_the_column(script, tmp_path):
    a = write_metrics(tmp_path / "alone", ["step", "loss", "coarse_nll"], [(20, 5.0, 4.0), (40, 4.0, 3.5)])
    b = write_metrics(tmp_path / "distilled", ["step", "loss", "mqd"], [(20, 6.0, 1.0), (40, 5.0, 0.9)])
    out = tmp_path / "curves.png"
    notes = script.plot_curves([a, b], ["loss", "coarse_nll"], out, labels=["alone", "distilled"], smooth=2)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert notes == ["distilled: no column 'coarse_nll', left out of that panel"]


def test_cli_errors_are_one_line(script, tmp_path, capsys):
    run = write_metrics(tmp_path / "run", ["step", "loss"], [(20, 5.0)])
    out = tmp_path / "x.png"
    assert script.main([str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "no metrics.csv" in capsys.readouterr().err
    assert script.main([str(run), "--columns", "mqd", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no run has a column 'mqd'" in err and "\n" not in err
    assert script.main([str(run), "--labels", "a,b", "--out", str(out)]) == 2
    assert "2 labels for 1 runs" in capsys.readouterr().err
    assert not out.exists()
    assert script.main([str(run), "--out", str(out)]) == 0 and out.exists()
