"""ONNX Runtime sessions without importing MindSpore (for processes that only run ONNX files,
e.g. the benchmark's ONNX Runtime worker, whose peak memory must not include MindSpore's).
:mod:`common.export` re-exports :func:`onnx_session`."""
from pathlib import Path


def onnx_session(path, threads=None, providers=None):
    """ONNX Runtime session for ``path``: CUDA when available, else CPU; ``threads`` intra-op."""
    import onnxruntime as ort

    if not Path(path).is_file():
        raise FileNotFoundError(f"ONNX file not found: {path}")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    if providers is None:
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    return ort.InferenceSession(str(path), sess_options=options, providers=list(providers))
