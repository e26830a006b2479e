"""Typed configuration of the DistillMatch model.

One ``ModelConfig`` describes a whole network. Defaults reproduce the paper
(Sec. 3.1-3.4, 4.1); ``preset("lite")`` and ``preset("slim")`` are the CPU/Jetson
sizes the package ships; ``preset("tiny")`` exists for tests.

Configs round-trip through plain dicts (``to_dict``/``from_dict``), which is
how checkpoints store them and how YAML files load them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple, Type, TypeVar

import yaml

T = TypeVar("T")


@dataclass
class TextureBackboneConfig:
    """Multi-scale ResNet: F_Res at 1/2, 1/4, 1/8 (paper: 128/196/256 channels)."""

    channels: Tuple[int, int, int] = (128, 196, 256)
    blocks_per_stage: Tuple[int, int, int] = (2, 2, 2)
    stem_channels: int = 64


@dataclass
class TeacherConfig:
    """Frozen vision foundation model used only as a distillation target."""

    enabled: bool = True
    # timm model names: DINOv2 ViT-S/14 with registers, or DINOv3 ViT-S/16.
    model_name: str = "vit_small_patch14_reg4_dinov2"
    # A local weights file (safetensors or torch state dict); empty -> timm's hub path.
    weights_path: str = ""
    pretrained: bool = True
    # Input is resized by patch/8 (7/8 for /14) so the patch grid lands on the 1/8 grid.
    embed_dim: int = 384


@dataclass
class StudentConfig:
    """Lightweight ViT that replaces the teacher at inference (outputs C4 = 384 channels)."""

    embed_dim: int = 384
    out_dim: int = 384
    patch_size: int = 8
    encoder_depth: int = 4
    decoder_depth: int = 2
    num_heads: int = 6
    mlp_ratio: float = 4.0
    attention: str = "softmax"  # "softmax" | "linear"
    # Training only (0 = the paper): shift each image's positional-encoding coordinates by an
    # independent uniform offset in +-this many patches, so the absolute encoding cannot tell the
    # network that matches sit at the same place in both images (positional_encoding.py).
    train_pe_jitter: float = 0.0


@dataclass
class CEFGConfig:
    """Category-enhanced feature guidance (Sec. 3.2)."""

    enabled: bool = True
    num_transformer_layers: int = 2
    num_heads: int = 8
    attention: str = "softmax"
    modalities: Tuple[str, ...] = ("visible", "infrared")
    # One Transfer block for both images instead of the paper's non-shared TransferA / TransferB.
    # Non-shared blocks can learn a relative spatial shift between the two feature maps: the
    # shipped lite model's did (about 0.4 coarse cells, even on identical inputs; model card).
    shared_transfer: bool = False
    # Grid of CEFG's tokens: 8, the paper's (the 1/8 grid), or 16 (the 1/8 map 2x2-average-pooled, a quarter of
    # the tokens; the guidance is upsampled back to 1/8 before the fusion convolutions). For CPU budgets.
    token_stride: int = 8


@dataclass
class STFAConfig:
    """Semantic / texture feature aggregation: CAA then SAA (Sec. 3.3)."""

    enabled: bool = True
    num_heads: int = 8
    # SAA attends over all H/8 x W/8 positions; "linear" keeps it O(N) for CPU configs.
    spatial_attention: str = "softmax"


@dataclass
class CoarseMatchingConfig:
    """LoFTR-style coarse matching at 1/8 (Sec. 3.4)."""

    d_model: int = 256
    num_heads: int = 8
    layer_names: Tuple[str, ...] = ("self", "cross") * 4
    temperature: float = 0.1
    match_type: str = "softmax"  # paper: row softmax; "dual_softmax" selectable
    threshold: float = 0.3  # theta_c
    border_rm: int = 2
    # Training only (0 = LoFTR / the paper): as StudentConfig.train_pe_jitter, in coarse cells, for
    # the encoding added before the coarse attention layers.
    train_pe_jitter: float = 0.0
    # Training: fraction of GT matches padded into the fine stage (as LoFTR).
    train_coarse_percent: float = 0.3
    train_pad_num_gt_min: int = 200


@dataclass
class FineMatchingConfig:
    """Fine matching on 1/2 and 1/4 windows plus sub-pixel refinement (Sec. 3.4)."""

    d_model: int = 128
    num_heads: int = 4
    num_layers: int = 1  # each layer = self + cross over the concatenated windows (see ``attention``)
    # What each fine layer is. "self_cross" (the paper): self-attention over the concatenated 1x1 / 3x3 / 5x5
    # windows, then cross-attention to the other image's. "cross": cross-attention only (the 1/2 window's
    # tokens query the other image's windows). "cross_one_way": only image 1's window queries image 0's (image 0's
    # tokens are used as projected). "none": no attention; each 1/2-window token gets its cell's
    # coarse token added and passes ``num_layers`` pointwise MLP blocks, and the 1/4 window is not used.
    # The cheaper choices are for CPU budgets: the stage's cost grows with the number of matches
    # (docs/benchmarks.md has the measured times).
    attention: str = "self_cross"
    window_size: int = 5  # 5x5 at 1/2; 3x3 at 1/4; 1x1 at 1/8
    threshold: float = 0.1  # theta_f
    subpixel_hidden: int = 64
    # "double_softmax" (the paper): the best (a, b) pair of the two 5x5 windows, then SRM offsets.
    # "expectation" (LoFTR's, not the paper's): image 0 keeps the cell anchor, image 1 gets the
    # expectation of the anchor's heatmap over window 1; no SRM (see fine_matching.py).
    head: str = "double_softmax"
    # Inference only (True = the paper): False skips the fine stage when matching, and the keypoints
    # are the coarse matches' cell anchors; it is still trained. A speed / accuracy trade: the stage's
    # cost grows with the number of matches and is the largest single stage of a 640x480 pair on a CPU;
    # the shipped lite loses 6.9 dev AUC@10 points without it (model card).
    refine: bool = True


@dataclass
class ModelConfig:
    texture: TextureBackboneConfig = field(default_factory=TextureBackboneConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    cefg: CEFGConfig = field(default_factory=CEFGConfig)
    stfa: STFAConfig = field(default_factory=STFAConfig)
    coarse: CoarseMatchingConfig = field(default_factory=CoarseMatchingConfig)
    fine: FineMatchingConfig = field(default_factory=FineMatchingConfig)
    # Extra input channels (3DG-STFM style privileged teacher: depth/aligned thermal).
    extra_input_channels: int = 0
    # Longer image side the inference API resizes to when the caller gives no size: the resolution
    # the model was trained / calibrated for (the paper tests at 640).
    inference_size: int = 640

    @property
    def coarse_stride(self) -> int:
        return 8


@dataclass
class LossConfig:
    """Loss weights; defaults are the paper's (Sec. 4.1)."""

    lambda_kd: float = 0.1
    lambda_ce: float = 0.1
    lambda_c: float = 0.5
    lambda_f: float = 0.3
    lambda_sub: float = 1.0e4
    # L_KD = alpha*MSE + beta*Gram + gamma*KL (Eq. 4)
    kd_alpha: float = 100.0
    kd_beta: float = 0.5
    kd_gamma: float = 0.25
    kl_temperature: float = 1.0
    # Coarse focal loss (Eq. 6): alpha/gamma of FL and the two balancing weights.
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    coarse_pos_weight: float = 1.0
    coarse_neg_weight: float = 1.0
    coarse_weight_0: float = 0.25  # lambda_ac^vis
    coarse_weight_1: float = 0.25  # lambda_ac^ir
    fine_pos_weight: float = 1.0
    fine_neg_weight: float = 1.0
    # Not in the paper (0 reproduces it): weights of un-focused negative log-likelihood terms on the
    # GT coarse matches and fine window correspondences (matching_losses.coarse_nll / fine_nll).
    coarse_nll_weight: float = 0.0
    fine_nll_weight: float = 0.0
    # The paper's lambda_sub = 1e4 multiplies an epipolar distance in normalised camera coordinates;
    # pixel^2 transfer errors (homography data) are converted by ~1/f^2, f ~ 500 px.
    subpixel_pixel_scale: float = 4.0e-6


# ----------------------------------------------------------------------------- presets


def paper_config() -> ModelConfig:
    return ModelConfig()


def lite_config() -> ModelConfig:
    """CPU / Jetson size: compute spent at 1/8, a thin 1/2 path (see docs/benchmarks.md)."""
    return ModelConfig(
        texture=TextureBackboneConfig(channels=(16, 32, 64), blocks_per_stage=(1, 1, 1), stem_channels=16),
        teacher=TeacherConfig(enabled=False),
        student=StudentConfig(embed_dim=64, out_dim=384, patch_size=16, encoder_depth=2, decoder_depth=1,
                              num_heads=4, mlp_ratio=2.0, attention="softmax"),
        cefg=CEFGConfig(num_transformer_layers=1, num_heads=4, attention="linear"),
        stfa=STFAConfig(num_heads=4, spatial_attention="linear"),
        coarse=CoarseMatchingConfig(d_model=64, num_heads=4, layer_names=("self", "cross") * 2,
                                    match_type="dual_softmax", temperature=0.05),
        fine=FineMatchingConfig(d_model=32, num_heads=4, num_layers=1, subpixel_hidden=32),
    )


def slim_config() -> ModelConfig:
    """3DG-STFM compression target: half of lite's coarse attention layers, narrower 1/8 path."""
    cfg = lite_config()
    cfg.texture = TextureBackboneConfig(channels=(16, 24, 48), blocks_per_stage=(1, 1, 1), stem_channels=8)
    cfg.student = StudentConfig(embed_dim=48, out_dim=384, patch_size=16, encoder_depth=1, decoder_depth=1,
                                num_heads=4, mlp_ratio=2.0)
    cfg.cefg = CEFGConfig(num_transformer_layers=1, num_heads=4, attention="linear")
    cfg.coarse = CoarseMatchingConfig(d_model=48, num_heads=4, layer_names=("self", "cross"),
                                      match_type="dual_softmax", temperature=0.05)
    cfg.fine = FineMatchingConfig(d_model=32, num_heads=4, num_layers=1, subpixel_hidden=32)
    return cfg


def tiny_config() -> ModelConfig:
    """For unit tests only: every module present, a few thousand parameters each."""
    return ModelConfig(
        texture=TextureBackboneConfig(channels=(8, 12, 16), blocks_per_stage=(1, 1, 1), stem_channels=8),
        teacher=TeacherConfig(enabled=False),
        student=StudentConfig(embed_dim=16, out_dim=24, patch_size=8, encoder_depth=1, decoder_depth=1,
                              num_heads=2, mlp_ratio=2.0),
        cefg=CEFGConfig(num_transformer_layers=1, num_heads=2),
        stfa=STFAConfig(num_heads=2),
        coarse=CoarseMatchingConfig(d_model=16, num_heads=2, layer_names=("self", "cross"),
                                    train_pad_num_gt_min=8),
        fine=FineMatchingConfig(d_model=8, num_heads=2, num_layers=1, subpixel_hidden=8),
    )


PRESETS = {"paper": paper_config, "lite": lite_config, "slim": slim_config, "tiny": tiny_config}


def preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}") from None


# ----------------------------------------------------------------------------- dict / YAML


def to_dict(cfg: Any) -> Dict[str, Any]:
    """Dataclass -> plain dict of builtins (tuples become lists, YAML-safe)."""
    def convert(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: convert(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [convert(x) for x in v]
        return v
    return convert(cfg)


def from_dict(cls: Type[T], data: Dict[str, Any] | None) -> T:
    """Build dataclass ``cls`` from a (partial) dict; unknown keys are an error, missing keys default."""
    data = dict(data or {})
    hints = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(hints))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {unknown}; valid keys are {sorted(hints)}")
    default = cls()
    kwargs = {}
    for name, f in hints.items():
        if name not in data:
            continue
        value = data[name]
        current = getattr(default, name)
        if dataclasses.is_dataclass(current):
            value = from_dict(type(current), value)
        elif isinstance(current, tuple):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def model_config_from_dict(data: Dict[str, Any]) -> ModelConfig:
    """Accepts ``{"preset": "lite", ...overrides}`` or a full dict."""
    data = dict(data or {})
    base_name = data.pop("preset", None)
    if base_name is None:
        return from_dict(ModelConfig, data)
    merged = _deep_merge(to_dict(preset(base_name)), data)
    return from_dict(ModelConfig, merged)


def _deep_merge(base: Dict[str, Any], override: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def load_yaml(path: str | Path) -> Dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    with open(path, "r", encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def modality_index(cfg: ModelConfig, name: str) -> int:
    names: List[str] = list(cfg.cefg.modalities)
    aliases = {"rgb": "visible", "vis": "visible", "thermal": "infrared", "ir": "infrared"}
    key = aliases.get(name.lower(), name.lower())
    if key not in names:
        raise ValueError(f"unknown modality {name!r}; this model knows {names}")
    return names.index(key)
