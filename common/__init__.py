"""Shared library of the model zoo. Nothing here imports from ``models``."""
import os

# oneDNN in MindSpore 2.10 falls back to its reference kernel (about 50-100x slower) for 3x3
# convolutions on CPUs with AVX-512/AMX; capping the ISA at AVX2 selects the JIT kernels and
# changes nothing on AVX2-only CPUs. oneDNN reads it before the first convolution, and every
# entry point imports ``common`` first. A value already in the environment wins.
USER_ONEDNN_MAX_CPU_ISA = os.environ.get("ONEDNN_MAX_CPU_ISA")  # the benchmark's PyTorch runs keep it
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
