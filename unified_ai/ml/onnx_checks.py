"""Limits of ONNX models and checking an ONNX file without running it.

What `unified_ai.ml.onnx_model` loads is parsed and checked here first: size, operator domains,
external data and the ONNX checker. onnx is imported inside functions only: importing this
module is cheap.
"""

from typing import Any

#: Stored file names of an ONNX-backed model (beside `card.json`). A scikit-learn model that
#: converts and verifies when it is stored keeps its ONNX form under the same two names beside
#: its `model.skops` (`unified_ai.ml.onnx_export.sklearn_onnx_files`).
ONNX_FILE = "model.onnx"
ONNX_PROBE = "onnx-probe.json"
#: Stored beside a scikit-learn model instead of the two files above: why it has no ONNX form.
ONNX_REFUSED = "onnx-refused.txt"
#: Largest ONNX model accepted (a hand-back, a stored file, an export).
MAX_ONNX_BYTES = 256 * 2**20
#: Largest stored probe file.
MAX_ONNX_PROBE_BYTES = 16 * 2**20
#: Probe rows a training script predicts and hands back: the head of the train split it reads.
ONNX_PROBE_ROWS = 100
#: Agreement between the ONNX model and the framework that trained it: onnxruntime computes in
#: float32, so a probability may differ by rounding; a value (regression) by a relative amount.
ABS_TOLERANCE = 1e-4
REL_TOLERANCE = 1e-4
#: Operator domains whose kernels ship with onnxruntime (the standard and the ML operators).
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})


class OnnxError(ValueError):
    """An ONNX model that is unsafe, unreadable, or disagrees with the model it stands for."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_onnx_bytes(data: bytes, *, where: str) -> Any:
    """Parse and check an ONNX model without running it; the `onnx.ModelProto`.

    Raises:
        OnnxError: a file over `MAX_ONNX_BYTES`, not ONNX, with a custom operator domain,
            external data, model-local functions, or one `onnx.checker` rejects.
    """
    if len(data) > MAX_ONNX_BYTES:
        raise OnnxError(
            f"{where}: ONNX model is {len(data)} bytes, over the {MAX_ONNX_BYTES} byte cap; "
            "refusing to load it"
        )
    import onnx

    try:
        model = onnx.load_model_from_string(bytes(data))
    except Exception as exc:  # a protobuf decode error
        raise OnnxError(
            f"{where}: not a readable ONNX model ({_first_line(exc)}); refusing to load it"
        ) from None
    if not model.HasField("graph") or not model.graph.node:
        raise OnnxError(f"{where}: ONNX model has no graph; refusing to load it")
    if len(model.functions):
        raise OnnxError(f"{where}: ONNX model defines local functions; refusing to load it")
    custom = sorted({o.domain for o in model.opset_import} - ALLOWED_DOMAINS)
    for graph in _graphs(model.graph):
        custom += [n.domain for n in graph.node if n.domain not in ALLOWED_DOMAINS]
        for tensor in _tensors(graph):
            if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
                raise OnnxError(
                    f"{where}: ONNX model tensor {tensor.name!r} refers to an external data "
                    "file; refusing to load it"
                )
    if custom:
        raise OnnxError(
            f"{where}: ONNX model uses custom operator domains {sorted(set(custom))} "
            f"(allowed: standard and ai.onnx.ml); refusing to load it"
        )
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx.checker.ValidationError and friends
        raise OnnxError(
            f"{where}: ONNX model fails the ONNX checker ({_first_line(exc)}); refusing to load it"
        ) from None
    return model


def _graphs(graph: Any) -> list[Any]:
    """The graph and every subgraph of its nodes' attributes (If, Loop, Scan bodies)."""
    found, pending = [], [graph]
    while pending:
        current = pending.pop()
        found.append(current)
        for node in current.node:
            for attribute in node.attribute:
                if attribute.HasField("g"):
                    pending.append(attribute.g)
                pending.extend(attribute.graphs)
    return found


def _tensors(graph: Any) -> list[Any]:
    """The initializers and constant tensors of one graph."""
    tensors = list(graph.initializer)
    tensors += [s.values for s in graph.sparse_initializer]
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                tensors.append(attribute.t)
            tensors.extend(attribute.tensors)
    return tensors
