"""Benchmark of the registered models (``scripts/benchmark.py``): inference latency of MindSpore
graph mode, PyNative, the exported MINDIR and ONNX Runtime, a training step through the engine,
the training data pipeline, peak memory, MACs and the machine's FP32 peak.

``macs``    MACs of an ONNX graph (Conv, ConvTranspose, Gemm, MatMul) from shape inference
``machine`` CPU, versions, the FP32 matmul peak, peak RSS of this process
``measure`` one measurement per worker process (export, inference, train step, data pipeline)
``report``  rows -> markdown table, JSON, PNG chart, README block, one-line summary
``suite``   command line, one worker process per model x backend, progress

Nothing here imports ``models``: the script resolves the specs and hands them in.
"""
