"""``distillmatch export onnx``: static graph, no deployment-trap ops, checker, metadata, CLI and errors."""
from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from distillmatch_core.checkpoint import load_model
from distillmatch_core.cli.main import main
from distillmatch_core.config import model_config_from_dict
from distillmatch_core.export.attention_rewrite import MatmulLinearAttention, replace_linear_attention
from distillmatch_core.export.graph_audit import audit_graph, op_type_counts, topk_k_values
from distillmatch_core.export.onnx_export import (OnnxExportOptions, export_onnx, file_sha256,
                                                  read_exported_info)
from distillmatch_core.model.attention import LinearAttention
from distillmatch_core.version import CHECKPOINT_FORMAT_VERSION, __version__
from onnx_test_models import make_checkpoint

SIZE = (120, 160)  # (H, W)
SLOTS = 64


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    weights = make_checkpoint(folder / "tiny.pt", "tiny")
    checkpoint_bytes = weights.read_bytes()
    report = export_onnx(weights, folder / "tiny.onnx", OnnxExportOptions(input_size=SIZE, max_matches=SLOTS))
    assert weights.read_bytes() == checkpoint_bytes  # export never writes to the checkpoint
    return weights, report


def test_graph_has_no_trap_ops_and_passes_the_audit(tiny_export):
    _, report = tiny_export
    model = onnx.load(str(report.path))
    ops = op_type_counts(model)
    assert ops["Conv"] > 0 and ops["TopK"] >= 3  # a real network with TopK selection
    for op in ("NonZero", "ArgMax", "ArgMin", "If", "Loop"):
        assert op not in ops, f"{op} in the exported graph"
    assert all(n.op_type != "Einsum" or len(n.input) <= 2 for n in model.graph.node)
    assert audit_graph(model) == []
    assert max(topk_k_values(model)) <= 1024  # TensorRT 8.x TopK limit


def test_graph_is_static_checked_and_self_describing(tiny_export):
    weights, report = tiny_export
    model = onnx.load(str(report.path))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.output}
    assert [i.name for i in model.graph.input] == ["image0", "image1"]
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 1, *SIZE]
    assert dims == {"keypoints0": [1, SLOTS, 2], "keypoints1": [1, SLOTS, 2], "confidence": [1, SLOTS],
                    "valid": [1, SLOTS]}
    assert model.graph.output[3].type.tensor_type.elem_type == TensorProto.BOOL
    info = read_exported_info(report.path)
    assert info.input_size == SIZE and info.max_matches == SLOTS and info.opset == 17
    assert info.package_version == __version__ and info.checkpoint_format_version == CHECKPOINT_FORMAT_VERSION
    assert info.source_checkpoint_sha256 == file_sha256(weights)
    _, config, _ = load_model(weights)
    assert model_config_from_dict(info.model_config) == config


def test_match_slots_are_capped_by_the_coarse_grid(tmp_path):
    weights = make_checkpoint(tmp_path / "tiny.pt", "tiny")
    report = export_onnx(weights, tmp_path / "small.onnx", OnnxExportOptions(input_size=(48, 64), max_matches=5000))
    assert report.info.max_matches == 6 * 8  # (48/8) * (64/8) coarse cells
    with pytest.raises(ValueError, match="multiples of 8"):
        export_onnx(weights, tmp_path / "bad.onnx", OnnxExportOptions(input_size=(50, 64)))
    assert not (tmp_path / "bad.onnx").exists()


def test_attention_rewrite_is_exact_and_leaves_the_eager_model_alone(tmp_path):
    model, _, _ = load_model(make_checkpoint(tmp_path / "lite.pt", "lite"))  # lite uses linear attention
    rewritten = copy.deepcopy(model)
    assert replace_linear_attention(rewritten) > 0
    assert any(isinstance(m, LinearAttention) for m in model.modules())  # the original is untouched
    assert not any(isinstance(m, LinearAttention) for m in rewritten.modules())
    assert any(isinstance(m, MatmulLinearAttention) for m in rewritten.modules())
    assert list(rewritten.state_dict()) == list(model.state_dict())  # parameter names unchanged
    x0, x1 = torch.rand(1, 1, 64, 80), torch.rand(1, 1, 64, 80)
    with torch.no_grad():
        ref = model.coarse_confidence(model.extract(x0, x1))
        new = rewritten.coarse_confidence(rewritten.extract(x0, x1))
    assert torch.allclose(ref, new, rtol=1e-4, atol=1e-9)


def _graph(nodes, inputs, outputs, initializers=()):
    g = helper.make_graph(nodes, "t", inputs, outputs, initializer=list(initializers))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_audit_detects_each_known_trap():
    f = helper.make_tensor_value_info
    nonzero = _graph([helper.make_node("NonZero", ["x"], ["y"], name="nz")],
                     [f("x", TensorProto.FLOAT, [4])], [f("y", TensorProto.INT64, [1, None])])
    argmax = _graph([helper.make_node("ArgMax", ["x"], ["y"], axis=1, name="am")],
                    [f("x", TensorProto.FLOAT, [2, 8])], [f("y", TensorProto.INT64, [2, 1])])
    bool_max = _graph([helper.make_node("ReduceMax", ["x"], ["y"], keepdims=0, name="rm")],
                      [f("x", TensorProto.BOOL, [2, 8])], [f("y", TensorProto.BOOL, [])])
    k = helper.make_tensor("k", TensorProto.INT64, [1], [1])
    flat_topk = _graph([helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=1, name="tk")],
                       [f("x", TensorProto.FLOAT, [1, 4800 * 4800])],
                       [f("v", TensorProto.FLOAT, [1, 1]), f("i", TensorProto.INT64, [1, 1])], [k])
    einsum3 = _graph([helper.make_node("Einsum", ["a", "b", "c"], ["y"], equation="i,i,i->i", name="es")],
                     [f(n, TensorProto.FLOAT, [3]) for n in "abc"], [f("y", TensorProto.FLOAT, [3])])
    expected = {"NonZero": nonzero, "ArgMax": argmax, "ReduceMax": bool_max, "TopK": flat_topk, "Einsum": einsum3}
    for op, model in expected.items():
        findings = audit_graph(model)
        assert any(x.op_type == op for x in findings), (op, findings)
    assert any(x.op_type == "graph I/O" for x in audit_graph(nonzero))  # (1, None): data-dependent shape


def test_coarse_only_export_leaves_the_fine_stage_out(tmp_path, capsys):
    import onnxruntime as ort

    weights = make_checkpoint(tmp_path / "tiny.pt", "tiny")
    out = tmp_path / "coarse.onnx"
    code = main(["export", "onnx", "--weights", str(weights), "--size", "64x48", "--coarse-only", str(out)])
    assert code == 0 and "(coarse only)" in capsys.readouterr().out
    assert read_exported_info(out).model_config["fine"]["refine"] is False
    assert not [n for n in onnx.load(str(out)).graph.node if n.name.startswith("/fine/")]
    full = export_onnx(weights, tmp_path / "full.onnx", OnnxExportOptions(input_size=(48, 64))).path
    assert [n for n in onnx.load(str(full)).graph.node if n.name.startswith("/fine/")]
    assert load_model(weights)[1].fine.refine  # the checkpoint keeps its own setting
    rng = np.random.default_rng(0)
    feed = {"image0": rng.random((1, 1, 48, 64), dtype=np.float32),
            "image1": rng.random((1, 1, 48, 64), dtype=np.float32)}
    k0, k1, _, _ = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, feed)
    # Every slot (valid or not; random weights match little) holds a pair of cell anchors.
    assert k0.shape == (1, 48, 2) and np.array_equal(k0 % 8, 0 * k0) and np.array_equal(k1 % 8, 0 * k1)


@pytest.mark.parametrize("attention,cefg_stride,size", [
    ("cross", 8, (96, 128)), ("cross_one_way", 8, (96, 128)), ("none", 8, (96, 128)),
    ("cross_one_way", 16, (104, 136))])  # CEFG on the 1/16 grid, pooled from an odd 13x17 grid
def test_cheaper_configurations_export_and_match_eager(tmp_path, attention, cefg_stride, size):
    """The CPU-budget options (fine.attention, cefg.token_stride) export, and ONNX Runtime gives eager
    match_static's keypoints (coarse threshold 0, so random weights still fill the slots)."""
    import onnxruntime as ort
    from distillmatch_core.checkpoint import save_checkpoint
    from distillmatch_core.config import preset
    from distillmatch_core.model.distillmatch import DistillMatch
    from onnx_test_models import compare_match_sets, torch_static_matches

    torch.manual_seed(0)
    cfg = preset("tiny")
    cfg.fine.attention, cfg.coarse.threshold, cfg.fine.threshold = attention, 0.0, 0.0
    cfg.cefg.token_stride = cefg_stride
    name = f"{attention}_cefg{cefg_stride}"
    weights = tmp_path / f"{name}.pt"
    save_checkpoint(weights, DistillMatch(cfg).eval(), cfg)
    h, w = size
    out = export_onnx(weights, tmp_path / f"{name}.onnx", OnnxExportOptions(input_size=size)).path
    rng = np.random.default_rng(0)
    c0, c1 = (rng.random((1, 1, h, w), dtype=np.float32) for _ in range(2))
    t0, t1, _ = torch_static_matches(weights, c0, c1, (h // 8) * (w // 8))
    o0, o1, _, valid = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        None, {"image0": c0, "image1": c1})
    comparison = compare_match_sets(t0, t1, o0[0][valid[0]], o1[0][valid[0]], tolerance=1e-3)
    assert len(t0) >= 10 and comparison.identical >= 0.95 * len(t0), comparison


def test_cli_export_and_one_line_errors(tmp_path, capsys):
    weights = make_checkpoint(tmp_path / "tiny.pt", "tiny")
    out = tmp_path / "cli.onnx"
    code = main(["export", "onnx", "--weights", str(weights), "--size", "64x48", "--max-matches", "16", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "16 match slots" in captured.out and out.is_file()
    assert read_exported_info(out).input_size == (48, 64)

    for argv, message in (
            (["--weights", str(tmp_path / "missing.pt"), str(tmp_path / "x.onnx")], "not found"),
            (["--weights", str(weights), "--size", "60x48", str(tmp_path / "x.onnx")], "multiples of 8"),
            (["--weights", str(out), str(tmp_path / "x.onnx")], "already an ONNX"),
            (["--weights", str(weights), str(tmp_path / "x.txt")], "should end in .onnx")):
        code = main(["export", "onnx"] + argv)
        err = capsys.readouterr().err
        assert code == 2 and message in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
    not_a_checkpoint = tmp_path / "junk.pt"
    not_a_checkpoint.write_bytes(np.arange(10).tobytes())
    code = main(["export", "onnx", "--weights", str(not_a_checkpoint), str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot export" in err and err.count("\n") == 1
