"""scripts/benchmark.py and common/bench: the ONNX MAC counter against hand-computed counts, the
table / summary / README writers, input errors, and one real run (slow)."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from common.bench import report
from common.bench.machine import cpu_model, peak_rss_mb
from common.bench.macs import count_macs
from common.bench.suite import BenchInputError, parse_backends, resolve_models, synthetic_args
from common.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "benchmark.py"


def _bench(*args, timeout=120):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)


# ---------------------------------------------------------------- MACs

def _tiny_graph(batch):
    """x (batch, 3, 8, 8) -> Conv 3x3 pad 1 (4 ch) -> grouped Conv 3x3/2 (g=2) -> ConvTranspose
    2x2/2 (2 ch) -> MatMul by (6, 7); the grouped conv's output also -> Flatten -> Gemm (10)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def weight(name, *shape):
        return numpy_helper.from_array(np.zeros(shape, np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["y1"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["y1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["y2"], group=2, strides=[2, 2], kernel_shape=[3, 3]),
        helper.make_node("ConvTranspose", ["y2", "w3"], ["y3"], strides=[2, 2], kernel_shape=[2, 2]),
        helper.make_node("MatMul", ["y3", "m"], ["y4"]),
        helper.make_node("Flatten", ["y2"], ["f"]),
        helper.make_node("Gemm", ["f", "g"], ["y5"], transB=1),
    ]
    inits = [weight("w1", 4, 3, 3, 3), weight("w2", 4, 2, 3, 3), weight("w3", 4, 2, 2, 2),
             weight("m", 6, 7), weight("g", 10, 36)]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
        [helper.make_tensor_value_info("y4", TensorProto.FLOAT, [batch, 2, 6, 7]),
         helper.make_tensor_value_info("y5", TensorProto.FLOAT, [batch, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


# per image, by hand:
#   Conv 4 out ch x 8x8 positions x (3 in ch x 3x3)             = 256 x 27  = 6912
#   grouped Conv 4 out ch x 3x3 positions x (4/2 in ch x 3x3)    = 36 x 18   = 648
#   ConvTranspose 4 in ch x 3x3 inputs x (2 out ch x 2x2)        = 36 x 8    = 288
#   MatMul (2, 6, 6) x (6, 7): 2 x 6 x 7 outputs x K 6           = 84 x 6    = 504
#   Gemm (1, 36) x (36, 10): 10 outputs x K 36                   = 360
HAND_COUNTED = {"Conv": 6912 + 648, "ConvTranspose": 288, "Gemm": 360, "MatMul": 504}


@pytest.mark.parametrize("batch", ["N", 3], ids=["dynamic-batch", "fixed-batch-3"])
def test_mac_counter_gives_the_hand_computed_counts_per_image(batch, tmp_path):
    import onnx

    path = tmp_path / "tiny.onnx"
    onnx.save(_tiny_graph(batch), str(path))
    total, per_op = count_macs(path)
    assert per_op == HAND_COUNTED
    assert total == 8712


# ---------------------------------------------------------------- report

def _row(**kw):
    return {"model": "m", "backend": "graph", "batch": 1, "input": [320, 320], **kw}


def test_compute_columns_use_macs_batch_and_latency():
    row = report.add_compute(_row(batch=2, ms=100.0), macs=1.5e9, peak_gflops=200.0)
    # 2 FLOP per MAC x 1.5e9 MACs x 2 images / 0.1 s = 60 GFLOP/s = 30 % of 200
    assert row["gmacs"] == pytest.approx(1.5)
    assert row["gflops"] == pytest.approx(60.0)
    assert row["peak_pct"] == pytest.approx(30.0)


def test_markdown_table_rows_and_failed_measurements():
    rows = [_row(model="u2netp", batch=8, ms=812.34, images_per_s=9.848, gmacs=19.8, gflops=390.04,
                 peak_pct=61.23, rss_mb=950.4),
            _row(model="ras", backend="onnx", error="exit 1 | killed", rss_mb=None)]
    lines = report.markdown_table(rows).splitlines()
    assert lines[0] == ("| model | backend | batch | input | ms | images/s | GMACs/img | GFLOP/s | "
                        "% of peak | peak RSS MB | note |")
    assert lines[2] == "| u2netp | MindSpore graph | 8 | 320x320 | 812.3 | 9.8 | 19.80 | 390.0 | 61.2 | 950 | - |"
    assert lines[3] == "| ras | ONNX Runtime | 1 | 320x320 | failed | - | - | - | - | - | exit 1 / killed |"
    assert {line.count("|") for line in lines} == {12}


def test_summary_is_the_geometric_mean_of_graph_over_onnx():
    rows = [_row(batch=1, ms=30.0), _row(batch=1, backend="onnx", ms=10.0),
            _row(batch=8, ms=80.0), _row(batch=8, backend="onnx", ms=10.0),
            _row(model="other", ms=50.0),                                  # no ONNX partner
            _row(model="bad", ms=99.0), _row(model="bad", backend="onnx", error="x")]
    ratio, pairs = report.graph_onnx_ratio(rows)
    assert pairs == 2
    assert ratio == pytest.approx(24 ** 0.5)  # sqrt(30/10 x 80/10)
    line = report.summary_line(rows, 123.4)
    assert "4.90x (geometric mean of 2 model-batch pairs)" in line
    assert "FP32 peak 123.4 GFLOP/s" in line and "1 measurement failed" in line
    assert "\n" not in line


def test_readme_block_rewrite_keeps_the_rest_and_is_repeatable(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# T\n\nintro\n\n## Performance\n\n<!-- benchmark:start -->\nold | table\n"
                      "<!-- benchmark:end -->\n\n## Next\nkeep\n")
    want = ("# T\n\nintro\n\n## Performance\n\n<!-- benchmark:start -->\nheader\n\n| a |\n"
            "<!-- benchmark:end -->\n\n## Next\nkeep\n")
    report.rewrite_readme_block(readme, "\nheader\n\n| a |\n")
    assert readme.read_text() == want
    report.rewrite_readme_block(readme, "header\n\n| a |")
    assert readme.read_text() == want


@pytest.mark.parametrize("text", ["# T\nno markers\n", "<!-- benchmark:end -->\n<!-- benchmark:start -->\n",
                                  "<!-- benchmark:start -->\n<!-- benchmark:start -->\n<!-- benchmark:end -->\n"])
def test_readme_without_one_ordered_marker_pair_is_refused_untouched(text, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(text)
    with pytest.raises(report.ReadmeBlockError, match="benchmark:start"):
        report.rewrite_readme_block(readme, "table")
    assert readme.read_text() == text


def test_project_readme_has_the_block_in_its_performance_section():
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("\n## Performance\n", 1)[1].split("\n## ", 1)[0]
    assert section.index(report.START) < section.index(report.END)
    assert "## Inference speed" not in text


# ---------------------------------------------------------------- machine, arguments

def test_cpu_model_and_peak_rss_read_proc_files(tmp_path):
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nvendor_id\t: GenuineIntel\n"
                                      "model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz\n"
                                      "processor\t: 1\nmodel name\t: other\n")
    assert cpu_model(tmp_path / "cpuinfo") == "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    (tmp_path / "status").write_text("VmPeak:\t 9999999 kB\nVmHWM:\t  204800 kB\nVmRSS:\t 1024 kB\n")
    assert peak_rss_mb(tmp_path / "status") == 200.0


def test_backends_and_models_resolve_in_a_fixed_order():
    import models

    assert parse_backends("onnx, graph,data") == ["graph", "onnx", "data"]
    with pytest.raises(BenchInputError, match="unknown backend 'tensorrt'"):
        parse_backends("graph,tensorrt")
    assert resolve_models("refinedet,ddrnet23", models) == [
        "ddrnet23", "refinedet320_resnet101", "refinedet320_vgg16", "refinedet512_resnet101",
        "refinedet512_vgg16"]
    with pytest.raises(BenchInputError, match="Did you mean"):
        resolve_models("u2netpp", models)


def test_synthetic_arguments_shrink_the_quick_set():
    args = ("--format", "coco", "--num", "600", "--num-val", "60", "--size", "128")
    assert synthetic_args(args, 32) == ["--format", "coco", "--num", "32", "--num-val", "1", "--size", "128"]
    assert synthetic_args(("--format", "sod"), 16) == ["--format", "sod", "--num", "16", "--num-val", "1"]


@pytest.mark.parametrize("args, message", [
    (["--models", "u2netpp"], "unknown model 'u2netpp'"),
    (["--backends", "graph,tensorrt"], "unknown backend 'tensorrt'"),
    (["--batch", "1,x"], "--batch '1,x'"),
    (["--repeat", "0"], "--repeat 0"),
    (["--size", "abc"], "--size: invalid int value"),
], ids=["model", "backend", "batch", "repeat", "size"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, message, tmp_path):
    out = tmp_path / "out"
    proc = _bench(*args, "--out", out)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""
    assert not out.exists()


# ---------------------------------------------------------------- one real run

@pytest.mark.slow
def test_real_run_of_the_smallest_model(tmp_path):
    readme_before = (REPO_ROOT / "README.md").read_text()
    out = tmp_path / "out"
    proc = _bench("--models", "ddrnet23_slim", "--backends", "graph,onnx", "--batch", "1", "--repeat", "1",
                  "--out", out, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((out / "benchmark.json").read_text())
    rows = {r["backend"]: r for r in data["rows"]}
    assert sorted(rows) == ["graph", "onnx"]
    for row in rows.values():
        assert row["input"] == [224, 224] and row["batch"] == 1 and not row.get("error")
        assert row["ms"] > 0 and row["images_per_s"] == pytest.approx(1000.0 / row["ms"])
        # DESIGN.md's compute table (measured from the authors' code): DDRNet-23-slim 0.97 GMACs
        assert row["gmacs"] == pytest.approx(0.97, abs=0.01)
    # the ONNX Runtime worker never loads MindSpore (about 400 MB by itself)
    assert rows["onnx"]["rss_mb"] < rows["graph"]["rss_mb"] - 200
    assert float(rows["onnx"]["note"].split()[-1]) < 1e-3  # export parity
    assert data["peak_gflops"] == max(data["peak_runs_gflops"]) and len(data["peak_runs_gflops"]) == 2
    assert data["compute"]["ddrnet23_slim"]["macs_per_op"]["Gemm"] == 1024 * 1000  # the fc 1024 -> 1000
    assert rows["graph"]["gflops"] == pytest.approx(2 * rows["graph"]["gmacs"] / (rows["graph"]["ms"] / 1000))
    assert data["machine"]["cores"] >= 1
    assert data["command"] == ("python scripts/benchmark.py --models ddrnet23_slim --backends graph,onnx "
                               f"--batch 1 --repeat 1 --out {out}")
    progress = [ln for ln in proc.stderr.splitlines() if re.match(r"\[(\d+/\d+|peak|export)\] ", ln)]
    assert [ln.split(":")[0] for ln in progress] == [
        "[peak] start", "[export] ddrnet23_slim 224x224", "[1/2] ddrnet23_slim graph batch 1",
        "[2/2] ddrnet23_slim onnx batch 1", "[peak] end"]
    lines = proc.stdout.strip().splitlines()
    assert "| ddrnet23_slim | ONNX Runtime | 1 | 224x224 |" in proc.stdout
    assert lines[-1].startswith("MindSpore graph / ONNX Runtime latency ")
    assert "| ddrnet23_slim | MindSpore graph | 1 | 224x224 |" in (out / "benchmark.md").read_text()
    assert (out / "benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (REPO_ROOT / "README.md").read_text() == readme_before
