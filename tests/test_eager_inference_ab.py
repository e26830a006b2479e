"""benchmarks/eager_inference_ab.py: the torch backend's eager path against the plain dense path (and its bf16
variant)."""
import re

from training_scripts import load_benchmark_script


def test_eager_and_plain_paths_find_the_same_matches(data_root, capsys):
    """On real descriptors the blockwise selection's log-confidences are small differences of terms in the tens;
    a mutual-match check with a tolerance relative to the result lost 3 of 279 matches here."""
    bench = load_benchmark_script("eager_inference_ab")
    assert bench.main(["--size", "224x160", "--rounds", "2", "--threads", "1", "--sift", "224x160", "--bf16"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\| SIFT \+ ratio test at 224x160 \| [\d.]+ \| [\d.]+ \| \d+ \|$", out, flags=re.M)
    for name in ("plain", "eager"):  # a time per round of each path against SIFT's in the same round
        assert re.search(rf"^{name}: [\d.]+x SIFT \(median of per-round ratios; range [\d.]+-[\d.]+\)$", out,
                         flags=re.M)
    rows = dict(re.findall(r"^\| (plain|eager) \|.*\| (\d+) \|$", out, flags=re.M))
    assert rows.keys() == {"plain", "eager"} and int(rows["plain"]) > 20
    shared = int(re.search(r"matches in both: (\d+)", out).group(1))
    assert shared == int(rows["plain"]) == int(rows["eager"])
    assert float(re.search(r"difference among them: (\S+) px", out).group(1)) < 1e-2
    # --bf16: the eager path with cpu_bf16 in the same rounds, compared with the float32 one.
    assert re.search(r"^eager bf16: [\d.]+x SIFT", out, flags=re.M)
    bf16_shared = int(re.search(r"^eager bf16 / eager: [\d.]+; matches in both: (\d+)", out, flags=re.M).group(1))
    assert bf16_shared >= 0.8 * int(rows["eager"])
