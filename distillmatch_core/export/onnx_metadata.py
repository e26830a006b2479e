"""What an exported DistillMatch ONNX file says about itself (ONNX ``metadata_props``).

The exporter writes these string properties and every deployment backend reads
them back, so a ``.onnx`` (or a TensorRT engine built from it, which keeps them in
a sidecar JSON) is self-describing: the model config, the static input size and
the number of match slots travel with the weights instead of being guessed.

Reading needs only a ``{key: value}`` mapping, which both ``onnx`` (``metadata_props``)
and ``onnxruntime`` (``get_modelmeta().custom_metadata_map``) provide, so a runtime
that has onnxruntime but not the ``onnx`` package can still read it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Tuple

# Version of the graph interface below (input/output names, shapes, meaning). Bumped when
# a backend written for an older interface would misread a newer file.
GRAPH_INTERFACE_VERSION = 1
KEY_PREFIX = "distillmatch."

INPUT_NAMES = ("image0", "image1")  # (1, 1, H, W) float32 in [0, 1]
# keypoints0/1 (1, K, 2) float32 network-input pixels; confidence (1, K) float32; valid (1, K) bool.
OUTPUT_NAMES = ("keypoints0", "keypoints1", "confidence", "valid")


class OnnxMetadataError(ValueError):
    """The file is not a DistillMatch export, or its metadata is incomplete or from a newer interface."""


@dataclass(frozen=True)
class ExportedModelInfo:
    input_size: Tuple[int, int]  # (H, W) of the static network input
    max_matches: int  # K, the number of match slots in the graph's outputs
    model_config: Dict[str, Any]  # ModelConfig as a plain dict (config.to_dict)
    package_version: str
    checkpoint_format_version: int
    source_checkpoint_sha256: str
    opset: int
    graph_interface_version: int = GRAPH_INTERFACE_VERSION

    def to_properties(self) -> Dict[str, str]:
        values = {
            "graph_interface_version": str(self.graph_interface_version),
            "package_version": self.package_version,
            "checkpoint_format_version": str(self.checkpoint_format_version),
            "model_config": json.dumps(self.model_config, sort_keys=True),
            "input_height": str(self.input_size[0]),
            "input_width": str(self.input_size[1]),
            "max_matches": str(self.max_matches),
            "source_checkpoint_sha256": self.source_checkpoint_sha256,
            "opset": str(self.opset),
            "inputs": ",".join(INPUT_NAMES),
            "outputs": ",".join(OUTPUT_NAMES),
        }
        return {KEY_PREFIX + k: v for k, v in values.items()}

    @classmethod
    def from_properties(cls, props: Mapping[str, str], source: str = "model") -> "ExportedModelInfo":
        def get(key: str) -> str:
            try:
                return props[KEY_PREFIX + key]
            except KeyError:
                raise OnnxMetadataError(
                    f"{source} is not a DistillMatch export (metadata {KEY_PREFIX + key!r} missing); "
                    "export checkpoints with `distillmatch export onnx`") from None

        try:
            version = int(get("graph_interface_version"))
            if version > GRAPH_INTERFACE_VERSION:
                raise OnnxMetadataError(f"{source} uses graph interface {version}; this package reads up to "
                                        f"{GRAPH_INTERFACE_VERSION}: upgrade distillmatch")
            return cls(
                input_size=(int(get("input_height")), int(get("input_width"))),
                max_matches=int(get("max_matches")),
                model_config=json.loads(get("model_config")),
                package_version=get("package_version"),
                checkpoint_format_version=int(get("checkpoint_format_version")),
                source_checkpoint_sha256=get("source_checkpoint_sha256"),
                opset=int(get("opset")),
                graph_interface_version=version,
            )
        except (ValueError, TypeError) as exc:
            if isinstance(exc, OnnxMetadataError):
                raise
            raise OnnxMetadataError(f"{source}: unreadable DistillMatch metadata: {exc}") from None
