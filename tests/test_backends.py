"""ONNX Runtime and TensorRT backends behind ``Matcher``: parity with torch on real RGB-thermal pairs,
static-size fitting, provider choice, clear errors, and the TensorRT engine cache / precision policy."""
from __future__ import annotations

import builtins
import importlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from distillmatch_core.backends.onnxruntime_backend import OnnxRuntimeBackend, OnnxRuntimeOptions, select_providers
from distillmatch_core.backends.tensorrt_backend import layers_kept_in_fp32
from distillmatch_core.backends.tensorrt_engine_cache import (EngineBuildSettings, EngineCache, EngineKey,
                                                              default_cache_dir, read_sidecar)
from distillmatch_core.export.onnx_export import OnnxExportOptions, export_onnx
from distillmatch_core.matcher import Matcher
from distillmatch_core.robust_geometry import estimate_homography
from onnx_test_models import (HAS_SHARED_DATA, canvases, compare_match_sets, corner_error, dev_pairs,
                              make_calibrated_random_checkpoint, make_checkpoint, parity_weights,
                              torch_static_matches)

needs_data = pytest.mark.skipif(not HAS_SHARED_DATA, reason="shared RGB-thermal data (../shared/data) not available")
ENGINE_SIZE = (120, 160)  # (H, W) of the small static graphs
PARITY_SIZE = (240, 320)
PARITY_SLOTS = 1024
PARITY_PAIRS = 3


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ort")
    weights = make_checkpoint(folder / "tiny.pt", "tiny")
    return export_onnx(weights, folder / "tiny.onnx", OnnxExportOptions(input_size=ENGINE_SIZE, max_matches=64)).path


# ---------------------------------------------------------------------------------------------- parity


def assert_parity(weights: Path, onnx_path: Path, pairs, size, min_matches: int, common_only: bool) -> None:
    """ORT vs torch match_static on the same canvases: >= 95 % identical matches within 0.5 px, and
    MAGSAC++ homographies (same seed) within 1 px mean corner error.

    ``common_only``: fit both homographies on the matches the two sets share (each side's own
    coordinates). Random weights give outlier-only matches, on which one extra match anywhere
    reshuffles RANSAC's samples; the shared subset still tests that the coordinate differences
    do not move the geometry. A trained model's sets are compared whole.
    """
    backend = OnnxRuntimeBackend(onnx_path, threads=1)
    for index, pair in enumerate(pairs):
        c0, c1 = canvases(pair, size)
        t0, t1, _ = torch_static_matches(weights, c0, c1, PARITY_SLOTS)
        o0, o1, _ = backend.run(c0, c1)
        assert len(t0) >= min_matches, f"pair {index}: only {len(t0)} torch matches, parity not exercised"
        comparison = compare_match_sets(t0, t1, o0, o1, tolerance=0.5)
        assert comparison.identical_fraction >= 0.95, (index, comparison)
        if common_only:
            t0, t1 = t0[comparison.index_a], t1[comparison.index_a]
            o0, o1 = o0[comparison.index_b], o1[comparison.index_b]
        cv2.setRNGSeed(0)
        h_torch = estimate_homography(t0, t1)
        cv2.setRNGSeed(0)
        h_ort = estimate_homography(o0, o1)
        assert (h_torch is None) == (h_ort is None), index
        if h_torch is not None:
            assert corner_error(h_torch.H, h_ort.H, size) < 1.0, index


@needs_data
def test_parity_random_lite_with_lowered_thresholds_on_real_pairs(tmp_path):
    pairs = dev_pairs(PARITY_PAIRS)
    weights = make_calibrated_random_checkpoint(tmp_path / "lite_random.pt", pairs[0], PARITY_SIZE)
    onnx_path = export_onnx(weights, tmp_path / "lite_random.onnx",
                            OnnxExportOptions(input_size=PARITY_SIZE, max_matches=PARITY_SLOTS)).path
    assert_parity(weights, onnx_path, pairs, PARITY_SIZE, min_matches=20, common_only=True)


@needs_data
def test_parity_trained_model_on_real_pairs(tmp_path):
    weights = parity_weights()
    if weights is None:
        pytest.skip("no trained model: the packaged default distillmatch_core/assets/distillmatch_lite.pt is not "
                    "there yet (set DISTILLMATCH_PARITY_WEIGHTS=path/to/checkpoint.pt to use another)")
    onnx_path = export_onnx(weights, tmp_path / "trained.onnx",
                            OnnxExportOptions(input_size=PARITY_SIZE, max_matches=PARITY_SLOTS)).path
    assert_parity(weights, onnx_path, dev_pairs(PARITY_PAIRS), PARITY_SIZE, min_matches=8, common_only=False)


def test_torch_backend_caps_matches_like_the_exported_graph(tmp_path):
    from distillmatch_core.backends.torch_backend import TorchBackend
    pair = dev_pairs(1)[0]
    weights = make_calibrated_random_checkpoint(tmp_path / "lite_random.pt", pair, ENGINE_SIZE)
    c0, c1 = canvases(pair, ENGINE_SIZE)
    _, _, every_conf = TorchBackend(weights).run(c0, c1)
    k = len(every_conf) // 2
    assert k >= 5, "too few matches to exercise the cap"
    k0, k1, conf = TorchBackend(weights, max_matches=k).run(c0, c1)
    s0, s1, _ = torch_static_matches(weights, c0, c1, k)  # the ONNX graph's computation with K = k slots
    assert 0 < len(k0) == len(s0) <= k
    assert compare_match_sets(k0, k1, s0, s1, tolerance=1e-4).identical_fraction == 1.0
    assert conf.min() >= np.sort(every_conf)[::-1][k - 1] - 1e-6  # the most confident ones are kept
    with pytest.raises(ValueError, match="max_matches"):
        TorchBackend(weights, max_matches=0)


def test_torch_backend_refine_option_overrides_the_checkpoint(tmp_path):
    from distillmatch_core.backends.torch_backend import TorchBackend
    pair = dev_pairs(1)[0]
    weights = make_calibrated_random_checkpoint(tmp_path / "lite_random.pt", pair, ENGINE_SIZE)
    c0, c1 = canvases(pair, ENGINE_SIZE)
    refined0, _, refined_conf = TorchBackend(weights, fine_threshold=0.0).run(c0, c1)
    anchors0, anchors1, anchor_conf = TorchBackend(weights, refine=False).run(c0, c1)
    assert len(anchor_conf) == len(refined_conf) > 0  # the same coarse matches, every one kept
    assert np.array_equal(anchors0 % 8, np.zeros_like(anchors0)) and np.array_equal(anchors1 % 8, anchors1 * 0)
    assert not np.array_equal(refined0 % 8, np.zeros_like(refined0))  # the fine stage moves them


def test_max_matches_on_an_exported_graph_is_refused_clearly(tiny_onnx):
    with pytest.raises(ValueError, match="export onnx --max-matches"):
        Matcher.from_pretrained(tiny_onnx, max_matches=16)


# ---------------------------------------------------------------------------------------------- Matcher API


def test_matcher_loads_onnx_and_reports_static_size(tiny_onnx):
    matcher = Matcher.from_pretrained(tiny_onnx, threads=1)  # .onnx -> onnxruntime by default
    assert matcher.backend.name == "onnxruntime" and matcher.backend.input_size == ENGINE_SIZE
    assert matcher.backend.providers == ["CPUExecutionProvider"]
    assert matcher.model_config.coarse.d_model == 16  # the tiny preset, read from the metadata
    with pytest.raises(ValueError, match="static graph"):
        matcher.backend.run(np.zeros((1, 1, 64, 64), np.float32), np.zeros((1, 1, 64, 64), np.float32))


@needs_data
def test_other_input_sizes_are_fitted_and_mapped_back(tmp_path):
    """A 240x360 gray pair through a 120x160 graph must give exactly the matches of the same pair
    pre-shrunk to its fitted size (107x160), scaled back to original pixels; nothing falls outside."""
    pair = dev_pairs(1)[0]
    weights = make_calibrated_random_checkpoint(tmp_path / "lite.pt", pair, ENGINE_SIZE)
    onnx_path = export_onnx(weights, tmp_path / "lite.onnx", OnnxExportOptions(input_size=ENGINE_SIZE)).path
    matcher = Matcher.from_pretrained(onnx_path, backend="onnxruntime", threads=1)
    big = [cv2.resize(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), (360, 240), interpolation=cv2.INTER_AREA) for im in pair]
    fitted_w, fitted_h = 160, 107  # 360x240 scaled by min(120/240, 160/360) = 4/9
    small = [cv2.resize(im, (fitted_w, fitted_h), interpolation=cv2.INTER_AREA) for im in big]
    result_big = matcher.match(big[0], big[1])
    result_small = matcher.match(small[0], small[1])
    assert len(result_big) > 0 and len(result_big) == len(result_small)
    for kp_big, kp_small in ((result_big.keypoints0, result_small.keypoints0),
                             (result_big.keypoints1, result_small.keypoints1)):
        expected = (kp_small + 0.5) * np.array([360 / fitted_w, 240 / fitted_h]) - 0.5
        np.testing.assert_allclose(kp_big, expected, atol=1e-3)
        assert (kp_big >= -0.5).all() and (kp_big[:, 0] <= 359.5).all() and (kp_big[:, 1] <= 239.5).all()
    assert result_big.image0_shape == (240, 360)


# ---------------------------------------------------------------------------------------------- errors


def test_missing_onnxruntime_is_one_clear_error(tiny_onnx, monkeypatch):
    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime" or name.startswith("onnxruntime."):
            raise ModuleNotFoundError("No module named 'onnxruntime'", name="onnxruntime")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    with pytest.raises(ImportError, match="pip install onnxruntime"):
        Matcher.from_pretrained(tiny_onnx, backend="onnxruntime")


def test_backend_option_and_file_errors(tiny_onnx, tmp_path):
    with pytest.raises(ValueError, match="unknown onnxruntime backend option"):
        Matcher.from_pretrained(tiny_onnx, backend="onnxruntime", thread=1)
    checkpoint = make_checkpoint(tmp_path / "tiny.pt", "tiny")
    with pytest.raises(ValueError, match="export one"):
        Matcher.from_pretrained(checkpoint, backend="onnxruntime")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a graph")
    with pytest.raises(ValueError, match="cannot load"):
        Matcher.from_pretrained(junk)


def test_provider_selection():
    options = OnnxRuntimeOptions()
    assert select_providers("cpu", ["CPUExecutionProvider"], options) == ["CPUExecutionProvider"]
    with pytest.raises(RuntimeError, match="onnxruntime-gpu"):
        select_providers("cuda", ["CPUExecutionProvider"], options)
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    chosen = select_providers("cuda:1", gpu, options)
    assert [p[0] if isinstance(p, tuple) else p for p in chosen] == gpu
    assert chosen[1][1]["device_id"] == 1
    no_trt = select_providers("cuda", gpu, OnnxRuntimeOptions(use_tensorrt_provider=False))
    assert [p[0] if isinstance(p, tuple) else p for p in no_trt] == gpu[1:]


def test_tensorrt_unavailable_here_is_one_clear_error(tiny_onnx):
    try:
        importlib.import_module("tensorrt")
        import torch
        if torch.cuda.is_available():
            pytest.skip("tensorrt and a GPU are present: the real backend is tested below")
        expected = (RuntimeError, "CUDA GPU")
    except ImportError:
        expected = (ImportError, "pip install tensorrt")
    with pytest.raises(expected[0], match=expected[1]):
        Matcher.from_pretrained(tiny_onnx, backend="tensorrt", device="cuda")


# ---------------------------------------------------------------------------------------------- TensorRT


def _tensorrt_gpu_skip_reason():
    try:
        importlib.import_module("tensorrt")
    except ImportError:
        return "tensorrt is not installed (pip install tensorrt; on Jetson JetPack's python3-libnvinfer)"
    import torch
    if not torch.cuda.is_available():
        return "no CUDA GPU visible to torch"
    return None


@pytest.mark.skipif(_tensorrt_gpu_skip_reason() is not None, reason=str(_tensorrt_gpu_skip_reason()))
def test_tensorrt_engine_builds_caches_and_matches_onnxruntime(tiny_onnx, tmp_path):
    from distillmatch_core.backends.tensorrt_backend import TensorRTBackend

    first = TensorRTBackend(tiny_onnx, "cuda", cache_dir=str(tmp_path), fp16=False)
    assert first.built_engine and first.engine_path.is_file()
    second = TensorRTBackend(tiny_onnx, "cuda", cache_dir=str(tmp_path), fp16=False)
    assert not second.built_engine and second.engine_path == first.engine_path
    from_engine = TensorRTBackend(first.engine_path, "cuda")
    assert from_engine.input_size == ENGINE_SIZE
    rng = np.random.default_rng(0)
    c0, c1 = (rng.random((1, 1) + ENGINE_SIZE, dtype=np.float32) for _ in range(2))
    t0, t1, _ = first.run(c0, c1)
    o0, o1, _ = OnnxRuntimeBackend(tiny_onnx).run(c0, c1)
    assert compare_match_sets(o0, o1, t0, t1).identical_fraction >= 0.95 or len(o0) == len(t0) == 0


def test_engine_cache_key_store_and_reload(tmp_path, monkeypatch):
    base = EngineKey("a" * 64, "10.3.0", "Orin", EngineBuildSettings())
    variants = [EngineKey("b" * 64, "10.3.0", "Orin", EngineBuildSettings()),
                EngineKey("a" * 64, "8.6.1", "Orin", EngineBuildSettings()),
                EngineKey("a" * 64, "10.3.0", "RTX 4090", EngineBuildSettings()),
                EngineKey("a" * 64, "10.3.0", "Orin", EngineBuildSettings(fp16=False))]
    assert len({base.digest} | {v.digest for v in variants}) == 5
    cache = EngineCache(tmp_path)
    path = cache.engine_path(Path("/models/lite_640x480.onnx"), base)
    assert path.parent == tmp_path and path.name.startswith("lite_640x480-") and path.suffix == ".engine"
    assert cache.load(path, base) is None
    cache.store(path, b"serialized", base, {"distillmatch.max_matches": "1024"})
    assert cache.load(path, base) == b"serialized"
    assert read_sidecar(path)["metadata"] == {"distillmatch.max_matches": "1024"}
    assert cache.load(path, variants[2]) is None  # same file name, other key: never reuse
    json.loads(path.with_suffix(".json").read_text())
    monkeypatch.setenv("DISTILLMATCH_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c" / "tensorrt"


def test_fp16_policy_pins_output_arithmetic_not_matmuls():
    """conv -> matmul -> exp -> div -> topk -> output; norm elsewhere; int layers never pinned."""
    def tensor(name, dtype="float"):
        return SimpleNamespace(name=name, dtype=dtype)

    def layer(kind, inputs, outputs):
        return SimpleNamespace(type=kind, num_inputs=len(inputs), get_input=lambda i: inputs[i],
                               num_outputs=len(outputs), get_output=lambda i: outputs[i])

    t = {n: tensor(n) for n in ("img", "feat", "sim", "e", "p", "score", "side", "normed")}
    t["idx"] = tensor("idx", "int32")
    layers = [layer("CONV", [t["img"]], [t["feat"]]),  # 0
              layer("MATMUL", [t["feat"], t["feat"]], [t["sim"]]),  # 1
              layer("UNARY", [t["sim"]], [t["e"]]),  # 2
              layer("ELEMENTWISE", [t["e"], t["e"]], [t["p"]]),  # 3
              layer("TOPK", [t["p"]], [t["score"], t["idx"]]),  # 4
              layer("CAST", [t["idx"]], [tensor("idx64", "int64")]),  # 5: int only
              layer("NORMALIZATION", [t["feat"]], [t["normed"]])]  # 6: off the output path
    pinned = layers_kept_in_fp32(layers, ["score", "idx64"], {"CONV", "MATMUL"}, {"NORMALIZATION"}, {"float"})
    assert pinned == [2, 3, 4, 6]
