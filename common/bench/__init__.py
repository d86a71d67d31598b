"""Benchmark of the registered models (``scripts/benchmark.py``): inference latency of MindSpore
graph mode, PyNative, the exported MINDIR, ONNX Runtime and (on request) the authors' PyTorch code,
a training step through the engine (and the authors' PyTorch one), the training data pipeline,
peak memory, MACs and the machine's FP32 peak.

``macs``    MACs of an ONNX graph (Conv, ConvTranspose, Gemm, MatMul) from shape inference
``machine`` CPU, versions, the FP32 matmul peak, peak RSS of this process
``measure`` one measurement per worker process (export, inference, train step, data pipeline)
``authors_torch`` which file of the authors' PyTorch repositories builds each model, ``--torch-src``
``torch_measure`` the authors' PyTorch network: inference and a train step (never MindSpore)
``report``  rows -> markdown table, JSON, PNG chart, README block, one-line summary
``suite``   command line, one worker process per model x backend, progress

Nothing here imports ``models``: the script resolves the specs and hands them in.
"""
