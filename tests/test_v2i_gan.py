"""Tests of V2I-GAN: networks, losses, a training step, checkpoints, translation and the translate CLI."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from distillmatch_core.cli.main import main as cli_main
from distillmatch_core.data.modality_sampler import PSEUDO_INFRARED, ModalitySampler, ModalitySamplerConfig
from distillmatch_core.v2i_gan.checkpoint import V2IGanCheckpointError, load_generator, save_generator
from distillmatch_core.v2i_gan.config import (
    CYCLE,
    PAIRED,
    DiscriminatorConfig,
    GeneratorConfig,
    SemanticExtractorConfig,
    V2IGanTrainingConfig,
    load_training_config,
)
from distillmatch_core.v2i_gan.discriminator import PatchDiscriminator
from distillmatch_core.v2i_gan.generator import V2IGenerator, count_parameters
from distillmatch_core.v2i_gan.losses import (
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    structured_gradient_alignment_loss,
)
from distillmatch_core.v2i_gan.trainer import V2IGanTrainer
from distillmatch_core.v2i_gan.translator import V2IGanTranslator, default_generator_path

REPO = Path(__file__).resolve().parents[1]


def tiny_generator_config(**overrides) -> GeneratorConfig:
    cfg = GeneratorConfig(base_channels=4, num_residual_blocks=1, stfa_heads=2,
                          semantic=SemanticExtractorConfig(orientations=2, wavelengths=(4.0,)))
    return dataclasses.replace(cfg, **overrides)


def tiny_training_config(mode: str) -> V2IGanTrainingConfig:
    return V2IGanTrainingConfig(mode=mode, generator=tiny_generator_config(),
                                discriminator=DiscriminatorConfig(base_channels=4, num_layers=2),
                                batch_size=2, learning_rate=2e-3)


@pytest.fixture
def tiny_checkpoint(tmp_path) -> Path:
    torch.manual_seed(0)
    generator = V2IGenerator(tiny_generator_config())
    return save_generator(tmp_path / "tiny_generator.pt", generator, metadata={"training_long_side": 64})


# ----------------------------------------------------------------------------- networks


def test_generators_shapes_and_value_ranges():
    torch.manual_seed(0)
    g_vi = V2IGenerator(tiny_generator_config(in_channels=3, out_channels=1))
    g_iv = V2IGenerator(tiny_generator_config(in_channels=1, out_channels=3))
    visible = torch.rand(2, 3, 32, 48) * 2 - 1
    infrared = g_vi(visible)
    assert infrared.shape == (2, 1, 32, 48)
    assert infrared.min() >= -1 and infrared.max() <= 1 and torch.isfinite(infrared).all()
    back = g_iv(infrared)
    assert back.shape == (2, 3, 32, 48) and back.abs().max() <= 1
    with pytest.raises(ValueError, match="multiples of 4"):
        g_vi(torch.zeros(1, 3, 30, 48))


def test_generator_semantic_hook_and_frozen_extractor():
    g = V2IGenerator(tiny_generator_config())
    assert g.semantic_extractor is not None and g.semantic_aggregation is not None
    assert not any(p.requires_grad for p in g.semantic_extractor.parameters())

    class AddMeanSemantic(torch.nn.Module):
        """A stand-in aggregation with the STFA interface (texture, semantic) -> texture shape."""

        def forward(self, texture, semantic):
            return texture + semantic.mean(dim=1, keepdim=True).mean(dim=(2, 3), keepdim=True)

    g2 = V2IGenerator(tiny_generator_config(), semantic_aggregation=AddMeanSemantic())
    assert g2(torch.zeros(1, 3, 16, 16)).shape == (1, 1, 16, 16)
    g3 = V2IGenerator(tiny_generator_config(use_semantic_aggregation=False))
    assert g3.semantic_aggregation is None and g3(torch.zeros(1, 3, 16, 16)).shape == (1, 1, 16, 16)


def test_default_generator_is_small():
    cfg = load_training_config(REPO / "training" / "configs" / "v2i_gan.yaml")
    g = V2IGenerator(cfg.generator)
    size_bytes = 4 * (count_parameters(g) + sum(b.numel() for b in g.buffers()))
    assert size_bytes < 3 * 1024 * 1024


def test_patch_discriminator_shape():
    d = PatchDiscriminator(1, DiscriminatorConfig(base_channels=4, num_layers=3))
    scores = d(torch.zeros(2, 1, 64, 96))
    assert scores.dim() == 4 and scores.shape[:2] == (2, 1) and scores.shape[2] > 1 and scores.shape[3] > 1


# ----------------------------------------------------------------------------- losses


def test_lsgan_losses():
    ones, zeros = torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    assert lsgan_discriminator_loss(ones, zeros).item() == 0
    assert lsgan_generator_loss(ones).item() == 0
    assert lsgan_generator_loss(zeros).item() == 1


def _stripes(h: int = 32, w: int = 32, vertical: bool = True) -> torch.Tensor:
    x = torch.zeros(1, 1, h, w)
    if vertical:
        x[..., :, w // 2:] = 1
    else:
        x[..., h // 2:, :] = 1
    return x * 2 - 1


def test_structured_gradient_alignment_is_polarity_free_and_orientation_aware():
    src = _stripes()
    assert structured_gradient_alignment_loss(src, src).item() < 1e-4
    assert structured_gradient_alignment_loss(src, -src).item() < 1e-4  # polarity reversal is allowed
    assert structured_gradient_alignment_loss(src, 0.3 * src).item() < 1e-3  # so is a contrast change
    assert structured_gradient_alignment_loss(src, _stripes(vertical=False)).item() > 0.9
    assert structured_gradient_alignment_loss(src, torch.zeros_like(src)).item() > 0.9  # edges erased
    rgb = src.repeat(1, 3, 1, 1)
    assert structured_gradient_alignment_loss(rgb, src).item() < 1e-4  # channel counts may differ


def test_structured_gradient_alignment_with_segmentation_map():
    labels = torch.zeros(1, 32, 32, dtype=torch.long)
    labels[:, :, 16:] = 2  # class boundary at the vertical line x = 16
    flat_source = torch.zeros(1, 3, 32, 32)  # the segmentation, not the image, defines the structure
    aligned = structured_gradient_alignment_loss(flat_source, _stripes(), segmentation=labels)
    crossed = structured_gradient_alignment_loss(flat_source, _stripes(vertical=False), segmentation=labels)
    assert aligned.item() < 1e-3 and crossed.item() > 0.9


# ----------------------------------------------------------------------------- training step


@pytest.mark.parametrize("mode", [CYCLE, PAIRED])
def test_training_steps_reduce_losses_on_a_fixed_batch(mode):
    torch.manual_seed(0)
    trainer = V2IGanTrainer(tiny_training_config(mode))
    gen = torch.Generator().manual_seed(1)
    # A learnable fixed batch: smooth random scenes, infrared = a brightness-inverted mix of the channels.
    visible = torch.nn.functional.avg_pool2d(torch.rand(2, 3, 16, 16, generator=gen), 5, 1, 2) * 2 - 1
    infrared = -visible.mean(1, keepdim=True)
    keys = V2IGanTrainer.content_loss_keys(mode)
    history = [trainer.step(visible, infrared) for _ in range(8)]
    before = sum(history[0][k] for k in keys if k in history[0])
    after = sum(np.mean([h[k] for h in history[-3:]]) for k in keys if k in history[0])
    assert after < 0.8 * before, (before, after)
    first_d = history[0]["d_i"]
    assert all(np.isfinite(list(h.values())).all() for h in history) and first_d > 0


# ----------------------------------------------------------------------------- checkpoints and translation


def test_generator_checkpoint_round_trip_weights_only(tiny_checkpoint):
    raw = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    assert raw["direction"] == "visible_to_infrared" and raw["format_version"] == 1
    generator, info = load_generator(tiny_checkpoint)
    assert not generator.training and info["metadata"]["training_long_side"] == 64
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    reference = V2IGenerator(generator.cfg)
    reference.load_state_dict(raw["state_dict"])
    reference.eval()
    assert torch.equal(generator(x), reference(x))


def test_loading_a_wrong_file_raises(tmp_path):
    bogus = tmp_path / "bogus.pt"
    torch.save({"weights": torch.zeros(3)}, bogus)
    with pytest.raises(V2IGanCheckpointError, match="not a V2I-GAN"):
        load_generator(bogus)
    with pytest.raises(V2IGanCheckpointError, match="not found"):
        load_generator(tmp_path / "missing.pt")


def test_translation_is_deterministic_and_keeps_size(tiny_checkpoint):
    translator = V2IGanTranslator.from_checkpoint(tiny_checkpoint)
    assert translator.max_side == 64  # the training scale recorded in the checkpoint
    rgb = np.random.default_rng(0).integers(0, 256, size=(75, 101, 3), dtype=np.uint8)
    first = translator(rgb)
    assert first.shape == (75, 101) and first.dtype == np.uint8
    assert np.array_equal(first, translator(rgb))
    assert np.array_equal(first, V2IGanTranslator.from_checkpoint(tiny_checkpoint)(rgb))
    gray = translator(rgb[..., 0])
    assert gray.shape == (75, 101)
    assert translator(rgb[:3, :5]).shape == (3, 5)  # tiny inputs are padded, not rejected


def test_translator_plugs_into_the_modality_sampler(tiny_checkpoint):
    cfg = ModalitySamplerConfig(weights={PSEUDO_INFRARED: 1.0}, pseudo_infrared_generator=str(tiny_checkpoint))
    sampler = ModalitySampler(cfg)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(40, 52, 3), dtype=np.uint8)
    s = sampler.sample_pair_detailed(rgb, None, rng)
    assert s.modality1 == PSEUDO_INFRARED and s.label1 == "infrared" and s.image1.shape == (40, 52)


@pytest.mark.skipif(not default_generator_path().is_file(), reason="no shipped generator yet")
def test_shipped_generator_loads_and_is_small():
    path = default_generator_path()
    assert path.stat().st_size < 3 * 1024 * 1024
    translator = V2IGanTranslator.from_checkpoint(path)
    out = translator(np.full((48, 64, 3), 128, np.uint8))
    assert out.shape == (48, 64) and out.dtype == np.uint8


# ----------------------------------------------------------------------------- translate CLI


def test_translate_cli_folder_with_an_unreadable_file(tmp_path, tiny_checkpoint, capsys):
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(src / "a.png"), rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8))
    cv2.imwrite(str(src / "b.jpg"), rng.integers(0, 256, size=(21, 33), dtype=np.uint8))
    (src / "broken.png").write_bytes(b"this is not a png")
    (src / "notes.txt").write_text("ignored: not an image suffix")
    rc = cli_main(["translate", "--to", "infrared", str(src), str(dst), "--checkpoint", str(tiny_checkpoint)])
    captured = capsys.readouterr()
    assert rc == 0
    assert sorted(p.name for p in dst.iterdir()) == ["a.png", "b.jpg"]
    assert cv2.imread(str(dst / "a.png"), cv2.IMREAD_UNCHANGED).shape == (30, 40)
    assert cv2.imread(str(dst / "b.jpg"), cv2.IMREAD_UNCHANGED).shape == (21, 33)
    assert "skipping" in captured.err and "broken.png" in captured.err
    assert "translated 2 of 3" in captured.out and "skipped 1" in captured.out
    assert "Traceback" not in captured.err


def test_translate_cli_single_file_and_expected_errors(tmp_path, tiny_checkpoint, capsys):
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), np.zeros((16, 24, 3), np.uint8))
    out = tmp_path / "scene_ir.png"
    assert cli_main(["translate", "--to", "infrared", str(image), str(out), "--checkpoint",
                     str(tiny_checkpoint)]) == 0
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape == (16, 24)
    capsys.readouterr()
    rc = cli_main(["translate", "--to", "infrared", str(image), str(out), "--checkpoint",
                   str(tmp_path / "missing.pt")])
    err = capsys.readouterr().err
    assert rc == 2 and "not found" in err and "Traceback" not in err
    rc = cli_main(["translate", "--to", "infrared", str(tmp_path / "nope"), str(out), "--checkpoint",
                   str(tiny_checkpoint)])
    assert rc == 2 and "input not found" in capsys.readouterr().err
