"""Multiply-accumulates of an ONNX graph, counted per image from its shapes.

Counted ops (the rest of a CNN is a small fraction): Conv ``N*Cout*Ho*Wo * Cin/g*kh*kw``,
ConvTranspose ``N*Cin*H*W * Cout/g*kh*kw``, Gemm and MatMul ``prod(output) * K``. Symbolic input
dimensions (a dynamic batch axis) are fixed to 1 before ``onnx.shape_inference`` runs, so the
count is for one image; a graph exported with a fixed batch B is divided by B.
"""
import math

COUNTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


class MacCountError(ValueError):
    """A counted node whose shapes shape inference could not determine."""


def _dims(value_info):
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else None for d in dims]


def _fix_symbolic_inputs(model):
    """Copy of ``model`` whose symbolic input dims are 1; returns (model, fixed batch size)."""
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    initializers = {i.name for i in fixed.graph.initializer}
    batch = 1
    for inp in fixed.graph.input:
        if inp.name in initializers:
            continue
        dims = inp.type.tensor_type.shape.dim
        for i, d in enumerate(dims):
            if not d.HasField("dim_value") or d.dim_value <= 0:
                d.dim_value = 1  # setting dim_value clears dim_param (oneof)
            elif i == 0:
                batch = d.dim_value
    return fixed, batch


def _shapes(model):
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    graph = inferred.graph
    shapes = {vi.name: _dims(vi) for vi in [*graph.input, *graph.value_info, *graph.output]}
    shapes.update({init.name: list(init.dims) for init in graph.initializer})
    return inferred, shapes


def _need(shapes, name, node):
    dims = shapes.get(name)
    if dims is None or any(d is None for d in dims):
        raise MacCountError(f"{node.op_type} node '{node.name}': shape of '{name}' unknown after "
                            f"shape inference ({dims})")
    return dims


def _node_macs(node, shapes):
    if node.op_type == "Conv":
        weight = _need(shapes, node.input[1], node)
        return math.prod(_need(shapes, node.output[0], node)) * math.prod(weight[1:])
    if node.op_type == "ConvTranspose":
        weight = _need(shapes, node.input[1], node)
        return math.prod(_need(shapes, node.input[0], node)) * math.prod(weight[1:])
    a = _need(shapes, node.input[0], node)
    out = _need(shapes, node.output[0], node)
    if node.op_type == "Gemm":
        trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
        return math.prod(out) * (a[0] if trans_a else a[1])
    return math.prod(out) * a[-1]  # MatMul: (..., M, K) x (..., K, N)


def count_macs(model):
    """Per-image MACs of ``model`` (an ``onnx.ModelProto`` or a path) and {op type: MACs}."""
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    fixed, batch = _fix_symbolic_inputs(model)
    inferred, shapes = _shapes(fixed)
    per_op = dict.fromkeys(COUNTED_OPS, 0)
    for node in inferred.graph.node:
        if node.op_type in per_op:
            per_op[node.op_type] += _node_macs(node, shapes)
    per_op = {k: v // batch for k, v in per_op.items()}
    return sum(per_op.values()), per_op
