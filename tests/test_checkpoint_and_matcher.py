"""Checkpoints (config, version, clear errors) and the Matcher API on real and synthetic images."""
import numpy as np
import pytest
import torch

from distillmatch_core.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from distillmatch_core.config import preset, to_dict
from distillmatch_core.matcher import Matcher
from distillmatch_core.model.distillmatch import DistillMatch


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    cfg = preset("tiny")
    cfg.coarse.threshold = 0.0  # random weights: keep every mutual nearest neighbour
    cfg.fine.threshold = 0.0
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, DistillMatch(cfg), cfg, {"note": "test"})
    return path


def test_checkpoint_roundtrip_keeps_config_version_and_weights(tiny_checkpoint):
    payload = read_checkpoint(tiny_checkpoint)
    assert payload["format_version"] == 1 and payload["lineage"]["note"] == "test"
    model, cfg, _ = load_model(tiny_checkpoint)
    assert to_dict(cfg)["coarse"]["threshold"] == 0.0
    assert not model.training


def test_corrupt_foreign_and_mismatched_checkpoints_are_rejected(tmp_path, tiny_checkpoint):
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match="cannot read"):
        read_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a DistillMatch checkpoint"):
        read_checkpoint(foreign)
    payload = read_checkpoint(tiny_checkpoint)
    payload["model_config"]["coarse"]["d_model"] = 32  # weights no longer fit the config
    mismatched = tmp_path / "mismatched.pt"
    torch.save(payload, mismatched)
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(mismatched)
    payload["format_version"] = 99
    torch.save(payload, mismatched)
    with pytest.raises(CheckpointError, match="format 99"):
        read_checkpoint(mismatched)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "missing.pt")


def test_pickled_code_is_not_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    path = tmp_path / "evil.pt"
    torch.save({"magic": Evil()}, path)
    with pytest.raises(CheckpointError):
        read_checkpoint(path)


def test_match_accepts_any_depth_and_maps_to_original_pixels(tiny_checkpoint):
    matcher = Matcher.from_pretrained(tiny_checkpoint, size=160)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    thermal16 = (7000 + rng.normal(0, 300, (256, 320))).astype(np.uint16)
    result = matcher.match(rgb, thermal16)
    assert result.image0_shape == (240, 320) and result.image1_shape == (256, 320)
    assert len(result) > 0
    assert result.keypoints0.dtype == np.float32
    assert np.all(result.keypoints0 >= -0.5) and np.all(result.keypoints0[:, 0] <= 319.5)
    assert np.all(result.keypoints1[:, 1] <= 255.5)
    assert np.all((result.confidence >= 0) & (result.confidence <= 1))
    for gray in (rgb[..., 0], rgb[..., :1], rgb[..., 0].astype(np.float32) / 255):
        matcher.match(gray, thermal16)


def test_modalities_given_in_reverse_order_are_swapped_back(tiny_checkpoint):
    matcher = Matcher.from_pretrained(tiny_checkpoint, size=128)
    rng = np.random.default_rng(1)
    a = rng.integers(0, 255, (96, 128), dtype=np.uint8)
    b = rng.integers(0, 255, (96, 128), dtype=np.uint8)
    forward = matcher.match(a, b, "visible", "infrared")
    reverse = matcher.match(b, a, "infrared", "visible")
    assert np.allclose(np.sort(forward.keypoints0, axis=0), np.sort(reverse.keypoints1, axis=0))
    with pytest.raises(ValueError, match="unknown modality"):
        matcher.match(a, b, "sonar", "infrared")


def test_default_model_missing_or_bad_input_gives_clear_errors(tmp_path, monkeypatch, tiny_checkpoint):
    import distillmatch_core.matcher as matcher_module
    monkeypatch.setattr(matcher_module, "DEFAULT_WEIGHTS", tmp_path / "absent.pt")
    with pytest.raises(FileNotFoundError, match="pass weights explicitly"):
        Matcher.from_pretrained("default")
    with pytest.raises(ValueError, match="unknown backend"):
        Matcher.from_pretrained(tiny_checkpoint, backend="magic")
    matcher = Matcher.from_pretrained(tiny_checkpoint, size=64)
    with pytest.raises(ValueError, match="empty"):
        matcher.match(np.zeros((0, 5), np.uint8), np.zeros((8, 8), np.uint8))
    with pytest.raises(TypeError):
        matcher.match([[1, 2]], np.zeros((8, 8), np.uint8))


def test_shipped_model_matches_an_image_with_itself_cell_to_cell():
    # The step-5300 weights displaced image 1's coarse features by about half a cell (non-shared CEFG Transfer
    # blocks); a shipped model must map the same image on both sides onto its own cells.
    from distillmatch_core.matcher import DEFAULT_WEIGHTS
    from synthetic_images import textured_image
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip("the default model is not packaged in this checkout")
    model, _, _ = load_model(DEFAULT_WEIGHTS)
    x = torch.from_numpy(textured_image(3)).float()[None, None] / 255.0  # (1, 1, 240, 320)
    with torch.no_grad():
        out = model(x, x.clone())
    assert out["i_ids"].numel() > 100
    assert float((out["i_ids"] == out["j_ids"]).float().mean()) >= 0.99


def test_cpu_bf16_is_off_by_default_and_warns_without_bf16_hardware(tiny_checkpoint, monkeypatch):
    from distillmatch_core.backends import torch_backend
    from distillmatch_core.model.inference_optimization import BFloat16Autocast

    assert not isinstance(torch_backend.TorchBackend(tiny_checkpoint).model.backbone, BFloat16Autocast)
    monkeypatch.setattr(torch_backend, "cpu_has_native_bfloat16", lambda: False)
    with pytest.warns(RuntimeWarning, match="no bfloat16 hardware"):
        backend = torch_backend.TorchBackend(tiny_checkpoint, cpu_bf16=True)
    assert backend.cpu_bf16 and isinstance(backend.model.backbone, BFloat16Autocast)


def test_torch_compile_wraps_the_network_and_torch_switches_are_refused_by_exported_backends(tiny_checkpoint, tmp_path):
    from distillmatch_core.matcher import create_backend

    eager = Matcher.from_pretrained(tiny_checkpoint)
    compiled = Matcher.from_pretrained(tiny_checkpoint, torch_compile=True)  # compiles lazily, at the first match
    assert "extract" not in vars(eager.backend.model)  # the class's method
    assert vars(compiled.backend.model)["extract"].__name__ == "extract"  # compile_for_inference's wrapper
    assert {"_tokens", "_match_windows"} <= set(vars(compiled.backend.model.fine))
    for switch in ("torch_compile", "cpu_bf16"):
        for backend in ("onnxruntime", "tensorrt"):
            with pytest.raises(ValueError, match=f"{switch} applies to the torch backend only"):
                create_backend(backend, tmp_path / "model.onnx", "cpu", **{switch: True})
        # False is no problem for an exported backend: the missing file is the only error.
        with pytest.raises(ValueError, match="cannot load .*model.onnx"):
            create_backend("onnxruntime", tmp_path / "model.onnx", "cpu", **{switch: False})
