"""Static checks of an exported graph against the known deployment traps of LoFTR-family exports.

Each trap below was reported against exporters of detector-free matchers:

* ``NonZero`` (``torch.nonzero`` / one-argument ``torch.where``): data-dependent output
  shape; TensorRT cannot build a static engine around it.
* ``ArgMax`` / ``ArgMin``: ONNX Runtime's CUDA provider falls back to the CPU for them
  (a copy of the whole score matrix per frame); ``TopK(k=1)`` gives the same answer on GPU.
* Boolean ``ReduceMax`` / ``ReduceMin`` (``any``/``all`` on masks): not accepted by TensorRT.
* Dynamic dimensions on the graph inputs or outputs: the engines here are static.
* Reductions or gathers over an axis longer than 65504 (a flattened L0*L1 pair index: an
  80x60 coarse grid gives 4800^2): such indices are not representable once TensorRT
  runs the surrounding arithmetic in fp16.
* Control flow (``If``/``Loop``/``Scan``), which a Python branch on a tensor can leave behind.
* ``Einsum`` with more than two operands, which older TensorRT parsers reject.
* ``TopK`` with k above TensorRT's limit (1024 up to TensorRT 8.6, 3840 from 10.x).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

FORBIDDEN_OPS = {
    "NonZero": "data-dependent output shape",
    "ArgMax": "falls back to the CPU in ONNX Runtime's CUDA provider; use TopK(k=1)",
    "ArgMin": "falls back to the CPU in ONNX Runtime's CUDA provider; use TopK(k=1)",
    "If": "control flow left by a Python branch on a tensor",
    "Loop": "control flow left by a Python loop over a tensor",
    "Scan": "control flow",
    "Compress": "data-dependent output shape",
    "Unique": "data-dependent output shape",
}
FP16_INDEX_LIMIT = 65504  # largest finite fp16 value
TENSORRT_TOPK_LIMIT = 3840  # TensorRT 10.x; 8.x allowed 1024
TENSORRT8_TOPK_LIMIT = 1024


@dataclass(frozen=True)
class GraphFinding:
    node: str  # node name, or the graph input/output name
    op_type: str
    problem: str

    def __str__(self) -> str:
        return f"{self.op_type} {self.node!r}: {self.problem}"


def iter_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of ``graph`` including those inside subgraph attributes (If/Loop bodies)."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from iter_nodes(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from iter_nodes(sub)


def op_type_counts(model: onnx.ModelProto) -> Counter:
    """op_type -> number of nodes in the exported graph."""
    return Counter(node.op_type for node in iter_nodes(model.graph))


def _value_infos(model: onnx.ModelProto) -> Dict[str, onnx.TypeProto]:
    inferred = shape_inference.infer_shapes(model)
    g = inferred.graph
    return {vi.name: vi.type for vi in list(g.value_info) + list(g.input) + list(g.output)}


def _shape(t: Optional[onnx.TypeProto]) -> Optional[List[Optional[int]]]:
    if t is None or not t.tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in t.tensor_type.shape.dim]


def _constant_values(model: onnx.ModelProto) -> Dict[str, np.ndarray]:
    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def audit_graph(model: onnx.ModelProto) -> List[GraphFinding]:
    """-> every trap found (empty list: clean). Uses ONNX shape inference for types and shapes."""
    findings: List[GraphFinding] = []
    types = _value_infos(model)
    constants = _constant_values(model)
    for io in list(model.graph.input) + list(model.graph.output):
        dims = _shape(io.type)
        if dims is None or any(d is None or d <= 0 for d in dims):
            findings.append(GraphFinding(io.name, "graph I/O", f"not a static shape: {dims}"))
    for node in iter_nodes(model.graph):
        name = node.name or (node.output[0] if node.output else "?")
        if node.op_type in FORBIDDEN_OPS:
            findings.append(GraphFinding(name, node.op_type, FORBIDDEN_OPS[node.op_type]))
        first_input = types.get(node.input[0]) if node.input else None
        if node.op_type in ("ReduceMax", "ReduceMin") and first_input is not None \
                and first_input.tensor_type.elem_type == onnx.TensorProto.BOOL:
            findings.append(GraphFinding(name, node.op_type, "reduction over a boolean tensor"))
        if node.op_type == "Einsum" and len(node.input) > 2:
            findings.append(GraphFinding(name, node.op_type, f"{len(node.input)} operands (TensorRT 8 takes 2)"))
        if node.op_type in ("TopK", "ArgMax", "ArgMin", "Gather", "GatherElements"):
            findings.extend(_index_range_findings(node, name, types))
        if node.op_type == "TopK" and len(node.input) > 1 and node.input[1] in constants:
            k = int(np.asarray(constants[node.input[1]]).reshape(-1)[0])
            if k > TENSORRT_TOPK_LIMIT:
                findings.append(GraphFinding(name, node.op_type, f"k={k} exceeds TensorRT's limit "
                                                                  f"{TENSORRT_TOPK_LIMIT}"))
    return findings


def _index_range_findings(node: onnx.NodeProto, name: str, types: Dict[str, onnx.TypeProto]) -> List[GraphFinding]:
    """Index-producing or index-consuming nodes whose indexed axis exceeds the fp16 range."""
    dims = _shape(types.get(node.input[0]))
    if not dims:
        return []
    axis = -1 if node.op_type == "TopK" else 0
    for attr in node.attribute:
        if attr.name == "axis":
            axis = attr.i
    length = dims[axis]
    if length is not None and length > FP16_INDEX_LIMIT:
        return [GraphFinding(name, node.op_type, f"indexes an axis of length {length} > {FP16_INDEX_LIMIT} "
                                                 "(flattened pair indices overflow under fp16)")]
    return []


def topk_k_values(model: onnx.ModelProto) -> List[int]:
    """k of every TopK whose k is a constant (all of them in a static export)."""
    constants = _constant_values(model)
    return [int(np.asarray(constants[n.input[1]]).reshape(-1)[0]) for n in iter_nodes(model.graph)
            if n.op_type == "TopK" and len(n.input) > 1 and n.input[1] in constants]
