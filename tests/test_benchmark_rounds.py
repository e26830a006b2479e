"""benchmarks/benchmark_backends.py --rounds: ratios are taken to each round's own SIFT time."""
from training_scripts import load_benchmark_script


def test_rounds_table_takes_each_ratio_to_the_same_rounds_sift():
    bench = load_benchmark_script("benchmark_backends")
    size = (480, 640)

    def row(method, ms):
        return bench.Measurement(method, "m", size, ms, ms, None, 0.0, 100.0 if method == "sift" else 500.0, 10)

    # The machine is 2x slower in round 2: SIFT and the network both doubled, the ratio did not move.
    rounds = [[row("sift", 100.0), row("torch", 300.0)],
              [row("sift", 200.0), row("torch", 600.0)],
              [row("sift", 100.0), row("torch", 250.0)]]
    table = bench.format_rounds_table(rounds).splitlines()
    torch_row = [c.strip() for c in table[3].strip("|").split("|")]
    assert torch_row[2] == "300.0"  # median of 300, 600, 250
    assert torch_row[3] == "3.00"  # median of 3.0, 3.0, 2.5 (a ratio to the first SIFT only would give 3.0, 6.0, 2.5)
    assert torch_row[4] == "2.50-3.00"
    assert torch_row[5] == "500"
