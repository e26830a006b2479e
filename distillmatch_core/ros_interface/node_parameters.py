"""Every parameter of the matcher node: name, default, description, range, whether it may change at run time.

The node declares exactly these (with ``ParameterDescriptor`` ranges so
``ros2 param describe`` and rqt show them) and validates every change here;
``config/matcher.yaml`` is checked against them by the tests. Types are
strict like ROS 2's: a float parameter rejects an integer (write ``1.0``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from distillmatch_core.common_field_of_view import SharedViewConfig
from distillmatch_core.matcher import (BACKENDS as MATCHER_BACKENDS, TORCH_ONLY_SWITCHES, max_matches_problem,
                                      torch_only_switch_problem)
from distillmatch_core.ros_interface.approximate_time_pairing import PairingPolicy
from distillmatch_core.ros_interface.homography_filter import HomographyFilterConfig
from distillmatch_core.ros_interface.processing_pipeline import ProcessingConfig
from distillmatch_core.thermal_normalization import ThermalNormalization

BACKENDS = ("auto",) + MATCHER_BACKENDS
INPUT_QOS_CHOICES = ("sensor_data", "reliable")
_DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:\d+)?)$")


class ParameterValidationError(ValueError):
    """One or more parameter values are invalid; ``problems`` lists them all."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("invalid parameters: " + "; ".join(self.problems))


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    default: Any  # bool, int, float or str; its type is the parameter's type
    description: str
    minimum: Optional[float] = None  # inclusive
    maximum: Optional[float] = None  # inclusive
    choices: Tuple[str, ...] = ()
    dynamic: bool = False  # may change while the node runs
    additional_constraints: str = ""  # shown by `ros2 param describe`

    @property
    def value_type(self) -> type:
        return type(self.default)

    def check(self, value: Any) -> Optional[str]:
        """None if ``value`` is acceptable, else a one-line reason."""
        expected = self.value_type
        # bool is an int subclass in Python but a different parameter type in ROS.
        if type(value) is not expected:
            hint = " (write it with a decimal point, e.g. 1.0)" if expected is float and type(value) is int else ""
            return f"{self.name}: expected {expected.__name__}, got {type(value).__name__} {value!r}{hint}"
        if self.minimum is not None and value < self.minimum:
            return f"{self.name}: {value!r} is below the minimum {self.minimum}"
        if self.maximum is not None and value > self.maximum:
            return f"{self.name}: {value!r} is above the maximum {self.maximum}"
        if self.choices and value not in self.choices:
            return f"{self.name}: {value!r} is not one of {', '.join(self.choices)}"
        if self.name == "device" and not _DEVICE_PATTERN.match(value):
            return f"device: {value!r} is not cpu, cuda or cuda:N"
        return None


PARAMETER_SPECS: Tuple[ParameterSpec, ...] = (
    # --- model (loaded once at start-up)
    ParameterSpec("weights", "default", "Model name known to Matcher.from_pretrained, or a path to a checkpoint "
                  "(.pt), ONNX model (.onnx) or TensorRT engine."),
    ParameterSpec("backend", "auto", "Inference backend; auto: onnxruntime for .onnx, tensorrt for engines, torch otherwise.",
                  choices=BACKENDS),
    ParameterSpec("device", "cpu", "Inference device: cpu, cuda or cuda:N.",
                  additional_constraints="cpu | cuda | cuda:N"),
    ParameterSpec("input_size", 0, "Longer image side (pixels) the matcher resizes inputs to; smaller is faster. "
                  "0 = the model's own inference size.", minimum=0, maximum=4096),
    ParameterSpec("max_matches", 0, "torch backend: keep at most this many matches per frame, the most confident; "
                  "bounds the latency at large input sizes. 0 = every match. Exported models (onnxruntime, "
                  "tensorrt) have their own fixed count.", minimum=0, maximum=100000),
    ParameterSpec("torch_compile", False, "torch backend: compile the network with torch.compile (about 20 % "
                  "less time per frame on a CPU, needs a C++ compiler); the first frame waits 1-2 minutes for the "
                  "compiler. For long-running fixed-size streams."),
    ParameterSpec("cpu_bf16", False, "torch backend on a CPU with bfloat16 in hardware (AMX, AVX512-BF16): run "
                  "the texture ResNet, student ViT and coarse selection's normaliser pass in bfloat16 (about 0.9x "
                  "the time per frame there; matches within bf16 rounding, see docs/benchmarks.md). Ignored on CUDA, "
                  "which runs fp16."),
    # --- synchronisation and QoS (fixed once subscribed)
    ParameterSpec("queue_size", 10, "ApproximateTimeSynchronizer queue size per input (messages).",
                  minimum=1, maximum=1000),
    ParameterSpec("slop", 0.05, "Largest RGB/thermal header stamp difference (s) that still forms a pair.",
                  minimum=0.0001, maximum=10.0),
    ParameterSpec("input_qos", "sensor_data", "QoS of the image subscriptions: sensor_data (best effort, receives "
                  "from any publisher) or reliable.", choices=INPUT_QOS_CHOICES),
    ParameterSpec("use_camera_info", True, "Subscribe to rgb/camera_info and thermal/camera_info and publish "
                  "relative_pose when both have arrived."),
    # --- per-frame thresholds (changeable at run time)
    ParameterSpec("match_confidence_threshold", 0.0, "Matches with a lower confidence are discarded.",
                  minimum=0.0, maximum=1.0, dynamic=True),
    ParameterSpec("ransac_threshold_px", 3.0, "MAGSAC++ inlier threshold (pixels) for homography and pose.",
                  minimum=0.1, maximum=100.0, dynamic=True),
    ParameterSpec("min_inliers", 12, "Minimum homography inliers for a frame to produce a homography.",
                  minimum=4, maximum=100000, dynamic=True),
    ParameterSpec("publish_aligned_thermal", True, "Publish the thermal frame warped into the RGB image.",
                  dynamic=True),
    ParameterSpec("homography_filter.enabled", True, "Robust temporal average of the homography (rigid rigs).",
                  dynamic=True),
    ParameterSpec("homography_filter.window_size", 5, "Accepted homographies averaged by the filter.",
                  minimum=1, maximum=100, dynamic=True),
    ParameterSpec("homography_filter.outlier_corner_distance_px", 25.0, "An estimate whose mean thermal-corner "
                  "distance to the average exceeds this (RGB pixels) is rejected.",
                  minimum=0.1, maximum=100000.0, dynamic=True),
    ParameterSpec("homography_filter.max_consecutive_rejections", 10, "After this many rejections in a row the "
                  "filter restarts (the rig moved).", minimum=1, maximum=100000, dynamic=True),
    ParameterSpec("thermal_normalization.low_percentile", 1.0, "Percentile mapped to black when 16-bit/float "
                  "thermal is normalised to 8 bits.", minimum=0.0, maximum=100.0, dynamic=True),
    ParameterSpec("thermal_normalization.high_percentile", 99.0, "Percentile mapped to white.",
                  minimum=0.0, maximum=100.0, dynamic=True),
    ParameterSpec("thermal_normalization.clahe", False, "Apply CLAHE after normalisation.", dynamic=True),
    ParameterSpec("shared_view.enabled", True, "With both camera_info topics: match only inside the part of each "
                  "image that the other camera sees, predicted from the intrinsics as if the cameras shared their "
                  "optical centre and axis. For cameras of different field of view, where content that only one "
                  "image shows throws the matcher (model card).", dynamic=True),
    ParameterSpec("shared_view.margin", 0.05, "Fraction of the other camera's footprint added on each side of the "
                  "shared region, for the axes' misalignment and the baseline.", minimum=0.0, maximum=1.0,
                  dynamic=True),
    ParameterSpec("error_log_throttle_s", 5.0, "At most one log line per this many seconds for per-frame errors.",
                  minimum=0.0, maximum=3600.0, dynamic=True),
)

SPECS_BY_NAME: Dict[str, ParameterSpec] = {spec.name: spec for spec in PARAMETER_SPECS}


@dataclass(frozen=True)
class ModelLoadConfig:
    weights: str = "default"
    backend: str = "auto"
    device: str = "cpu"
    input_size: int = 0
    max_matches: int = 0  # 0 = every match (torch backend only)
    torch_compile: bool = False  # torch backend only
    cpu_bf16: bool = False  # torch backend only

    def matcher_options(self) -> Dict[str, Any]:
        """Keyword arguments of ``Matcher.from_pretrained`` besides the weights (0 values: the defaults)."""
        options: Dict[str, Any] = {"device": self.device, "backend": self.backend,
                                   "size": self.input_size or None,  # 0: the model's inference size
                                   "max_matches": self.max_matches or None}  # 0: every match
        for name in TORCH_ONLY_SWITCHES:
            if getattr(self, name):  # only switches turned on: the options name what differs from the defaults
                options[name] = True
        return options


@dataclass(frozen=True)
class MatcherNodeConfig:
    model: ModelLoadConfig
    pairing: PairingPolicy
    input_qos: str
    use_camera_info: bool
    processing: ProcessingConfig
    error_log_throttle_s: float


def default_values() -> Dict[str, Any]:
    return {spec.name: spec.default for spec in PARAMETER_SPECS}


def find_problems(values: Mapping[str, Any]) -> List[str]:
    """All problems of a complete set of values (unknown names, types, ranges, cross-parameter rules)."""
    problems = [f"{name}: unknown parameter" for name in values if name not in SPECS_BY_NAME]
    for spec in PARAMETER_SPECS:
        if spec.name not in values:
            problems.append(f"{spec.name}: missing")
            continue
        problem = spec.check(values[spec.name])
        if problem:
            problems.append(problem)
    low = values.get("thermal_normalization.low_percentile")
    high = values.get("thermal_normalization.high_percentile")
    if isinstance(low, float) and isinstance(high, float) and not low < high:
        problems.append(f"thermal_normalization: low_percentile ({low}) must be below high_percentile ({high})")
    problem = max_matches_problem(values.get("backend"), values.get("max_matches"))
    if problem:  # "auto" resolves at load time, where create_backend checks again
        problems.append(f"max_matches: {problem}")
    for name in TORCH_ONLY_SWITCHES:
        problem = torch_only_switch_problem(values.get("backend"), name, values.get(name))
        if problem:
            problems.append(f"{name}: {problem}")
    return problems


def config_from_values(values: Mapping[str, Any]) -> MatcherNodeConfig:
    """Complete, validated values -> typed config; raises ParameterValidationError listing every problem."""
    problems = find_problems(values)
    if problems:
        raise ParameterValidationError(problems)
    v = values
    return MatcherNodeConfig(
        model=ModelLoadConfig(weights=v["weights"], backend=v["backend"], device=v["device"],
                              input_size=v["input_size"], max_matches=v["max_matches"],
                              torch_compile=v["torch_compile"], cpu_bf16=v["cpu_bf16"]),
        pairing=PairingPolicy(slop_s=v["slop"], queue_size=v["queue_size"]),
        input_qos=v["input_qos"],
        use_camera_info=v["use_camera_info"],
        processing=ProcessingConfig(
            match_confidence_threshold=v["match_confidence_threshold"],
            ransac_threshold_px=v["ransac_threshold_px"],
            min_inliers=v["min_inliers"],
            thermal_normalization=ThermalNormalization(
                low_percentile=v["thermal_normalization.low_percentile"],
                high_percentile=v["thermal_normalization.high_percentile"],
                clahe=v["thermal_normalization.clahe"]),
            homography_filter=HomographyFilterConfig(
                enabled=v["homography_filter.enabled"],
                window_size=v["homography_filter.window_size"],
                outlier_corner_distance_px=v["homography_filter.outlier_corner_distance_px"],
                max_consecutive_rejections=v["homography_filter.max_consecutive_rejections"]),
            publish_aligned_thermal=v["publish_aligned_thermal"],
            shared_view=SharedViewConfig(enabled=v["shared_view.enabled"], margin=v["shared_view.margin"]),
        ),
        error_log_throttle_s=v["error_log_throttle_s"],
    )


def check_runtime_change(current: Mapping[str, Any], changes: Mapping[str, Any]) -> Optional[str]:
    """Reason to refuse a ``ros2 param set`` of ``changes`` on a running node, or None to accept it."""
    for name in changes:
        spec = SPECS_BY_NAME.get(name)
        if spec is None:
            continue  # not ours (use_sim_time, qos overrides...): ROS handles it
        if not spec.dynamic and changes[name] != current.get(name):
            return f"{name} cannot change while the node runs; restart the node with the new value"
    merged = {**current, **{k: v for k, v in changes.items() if k in SPECS_BY_NAME}}
    problems = find_problems(merged)
    return "; ".join(problems) if problems else None


def flatten_parameters(tree: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    """Nested YAML mapping -> dotted parameter names, as ROS 2 reads parameter files."""
    flat: Dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_parameters(value, name + "."))
        else:
            flat[name] = value
    return flat


def load_parameter_file(path: str | Path, node_name: str = "matcher_node") -> Dict[str, Any]:
    """Parameters a ROS 2 parameter file gives ``node_name`` (``/**`` first, then the node's own entry)."""
    with open(path, "r", encoding="utf-8") as fh:
        document = yaml.safe_load(fh) or {}
    values: Dict[str, Any] = {}
    for key in ("/**", node_name, f"/{node_name}", f"/**/{node_name}"):
        entry = document.get(key)
        if isinstance(entry, Mapping) and isinstance(entry.get("ros__parameters"), Mapping):
            values.update(flatten_parameters(entry["ros__parameters"]))
    return values
