"""scripts/benchmark.py and common/bench: the ONNX MAC counter against hand-computed counts, the
table / summary / README writers, input errors, the authors' PyTorch backends (table, --torch-src,
loader; without torch), and one real run (slow) and one PyTorch worker run (extended); and
scripts/kernel_repro.py on one shrunk case."""
import importlib.util
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from common.bench import authors_torch, report
from common.bench.machine import cpu_model, peak_rss_mb
from common.bench.macs import count_macs
from common.bench.suite import (
    BenchInputError,
    Suite,
    build_parser,
    parse_backends,
    resolve_models,
    synthetic_args,
)
from common.bench.torch_measure import stand_in_loss
from common.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "benchmark.py"
KERNEL_REPRO = REPO_ROOT / "scripts" / "kernel_repro.py"


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
    (["--torch-src", "u2net"], "--torch-src 'u2net': expected FOLDER=PATH"),
    (["--torch-src", "u2net=/no/such/clone"], "'u2net=/no/such/clone': /no/such/clone is not a folder"),
    (["--models", "ddrnet23_slim", "--backends", "graph,torch"], "--torch-src ddrnet=PATH"),
], ids=["model", "backend", "batch", "repeat", "size", "torch-src-malformed", "torch-src-missing-path",
        "torch-without-source"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, message, tmp_path):
    out = tmp_path / "out"
    proc = _bench(*args, "--out", out)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""
    assert not out.exists()


# ---------------------------------------------------------------- the authors' PyTorch backends

def test_torch_backends_are_known_but_not_default():
    default = build_parser().parse_args([]).backends
    assert parse_backends(default) == ["graph", "pynative", "mindir", "onnx", "train", "data"]
    assert parse_backends("torch_train,data,torch,graph,train") == ["graph", "torch", "train", "torch_train",
                                                                     "data"]
    assert report.BACKENDS["torch"] == "authors' PyTorch"
    assert report.BACKENDS["torch_train"] == "authors' PyTorch train step"


def test_authors_table_covers_every_registered_model_or_says_why_not():
    import models

    names = set(models.list_models())
    assert set(authors_torch.ENTRIES) | set(authors_torch.UNSUPPORTED) == names
    assert not set(authors_torch.ENTRIES) & set(authors_torch.UNSUPPORTED)
    assert all(len(reason) > 20 for reason in authors_torch.UNSUPPORTED.values())
    for name, entry in authors_torch.ENTRIES.items():
        assert entry.folder == models.model_info(name)["folder"], name
        assert entry.file.endswith(".py") and not entry.file.startswith("/") and entry.attr
        assert not entry.kwargs.get("pretrained") and not entry.kwargs.get("imagenet"), name  # no downloads
        assert not entry.classes or entry.classes in entry.kwargs, name
    assert set(authors_torch.TRAIN_SIZE_KEYS) == {models.model_info(n)["folder"] for n in names}


def test_build_job_swaps_only_a_settable_number_of_classes():
    assert authors_torch.build_job("refinenet101", "/r", classes=4) == {
        "root": "/r", "file": "models/resnet.py", "attr": "rf101",
        "kwargs": {"num_classes": 4, "imagenet": False, "pretrained": False}}
    assert authors_torch.build_job("refinenet101", "/r")["kwargs"]["num_classes"] == 21
    assert authors_torch.build_job("ddrnet23", "/r", classes=10)["kwargs"] == {}
    assert authors_torch.build_job("refinedet320_vgg16", "/r", classes=4)["kwargs"]["num_classes"] == 21
    assert authors_torch.ENTRIES["u2netp"].kwargs == {"in_ch": 3, "out_ch": 1}  # the table never changes


FOLDERS = {"u2net", "ddrnet", "ras", "refinedet", "refinenet"}


def test_torch_src_parsing(tmp_path):
    (tmp_path / "U-2-Net").mkdir()
    (tmp_path / "DDRNet").mkdir()
    text = f" u2net={tmp_path / 'U-2-Net'} , ddrnet = {tmp_path / 'DDRNet'}"
    assert authors_torch.parse_torch_src(text, FOLDERS) == {"u2net": (tmp_path / "U-2-Net").resolve(),
                                                            "ddrnet": (tmp_path / "DDRNet").resolve()}
    assert authors_torch.parse_torch_src(None, FOLDERS) == {}
    for bad, message in [("u2net", "--torch-src 'u2net': expected FOLDER=PATH"),
                         (f"={tmp_path}", "expected FOLDER=PATH"), ("u2net=", "expected FOLDER=PATH"),
                         (f"u2nett={tmp_path}", "unknown model folder 'u2nett': expected one of ddrnet, ras"),
                         (f"u2net={tmp_path / 'nope'}", f"{tmp_path / 'nope'} is not a folder"),
                         (f"u2net={tmp_path},u2net={tmp_path}", "u2net is given twice")]:
        with pytest.raises(authors_torch.TorchSourceError, match=re.escape(message)):
            authors_torch.parse_torch_src(bad, FOLDERS)


def test_torch_sources_are_checked_against_the_selected_models(tmp_path):
    clone = tmp_path / "DDRNet"
    (clone / "classification").mkdir(parents=True)
    (clone / "classification" / "DDRNet_23_slim.py").write_text("")
    sources = {"ddrnet": clone}
    # a model without an entry needs no source: it is reported, not measured
    assert authors_torch.check_sources(["ddrnet23_slim", "ras"], sources) == {
        "ras": authors_torch.UNSUPPORTED["ras"]}
    with pytest.raises(authors_torch.TorchSourceError, match=r"--torch-src u2net=PATH .*Net\) for u2netp"):
        authors_torch.check_sources(["ddrnet23_slim", "u2netp"], sources)
    with pytest.raises(authors_torch.TorchSourceError, match="no classification/DDRNet_23.py there"):
        authors_torch.check_sources(["ddrnet23"], sources)
    # without a torch backend --torch-src is only parsed
    assert authors_torch.resolve_sources(None, FOLDERS, ["u2netp"], []) == ({}, {})


def _fake_clone(root):
    """An authors' repository: model/net.py imports a module of the root and one of its folder."""
    (root / "model").mkdir(parents=True)
    (root / "helper_mod.py").write_text("SCALE = 3\n")
    (root / "model" / "sibling.py").write_text("OFFSET = 4\n")
    (root / "model" / "net.py").write_text(
        "import sys\nfrom helper_mod import SCALE\nfrom sibling import OFFSET\n\n"
        "class Net:\n    def __init__(self, width):\n        self.value = width * SCALE + OFFSET\n"
        "        self.path_seen = list(sys.path)\n\n"
        "def make_net(width=1):\n    return Net(width)\n\n"
        "def broken():\n    raise RuntimeError('the factory failed')\n")


def test_loader_imports_the_authors_file_and_restores_sys_path_and_modules(tmp_path, monkeypatch):
    import types

    root = tmp_path / "clone"
    _fake_clone(root)
    other = types.ModuleType("helper_mod")  # a module of the same name imported from elsewhere
    monkeypatch.setitem(sys.modules, "helper_mod", other)
    path_before = list(sys.path)
    job = {"root": str(root), "file": "model/net.py", "attr": "make_net", "kwargs": {"width": 5}}
    net = authors_torch.build_authors_model(job)
    assert type(net).__name__ == "Net" and net.value == 5 * 3 + 4  # the clone's helper_mod, not ``other``
    assert net.path_seen[:2] == [str(root / "model"), str(root)]
    assert sys.path == path_before
    assert sys.modules["helper_mod"] is other and "sibling" not in sys.modules
    files = {k: getattr(m, "__file__", None) or "" for k, m in sys.modules.items()}
    assert not [k for k, f in files.items() if f.startswith(str(root))]
    with pytest.raises(RuntimeError, match="the factory failed"):
        authors_torch.build_authors_model({**job, "attr": "broken", "kwargs": {}})
    assert sys.path == path_before and sys.modules["helper_mod"] is other


def test_stand_in_loss_sums_the_mean_of_every_nested_output():
    class Fake:  # what the loss needs of a tensor
        def __init__(self, mean):
            self._mean = mean

        def float(self):
            return self

        def mean(self):
            return self._mean

    assert stand_in_loss((Fake(1.0), [Fake(2.0), (Fake(3.0),)], {"a": Fake(4.0)})) == 10.0
    assert stand_in_loss(Fake(0.5)) == 0.5


def test_torch_rows_take_the_export_macs_the_quick_recipe_and_skip_unsupported(tmp_path, monkeypatch):
    import models

    args = build_parser().parse_args(["--batch", "1,2", "--train-batch", "3", "--out", str(tmp_path / "out")])
    suite = Suite(args, ["no-worker"], tmp_path)
    suite.sources = {"refinenet": tmp_path / "rn", "refinedet": tmp_path / "rd"}
    suite.unsupported = {"ras": "why not"}
    jobs = []

    def run_worker(job):
        jobs.append(job)
        if job["kind"] == "export":
            return {"macs": 2e9, "macs_per_op": {}, "onnx_max_diff": 0.0, "dynamic_batch": True, "files": {}}
        return {"rows": [{"batch": b, "ms": 10.0, "images_per_s": 100.0 * b} for b in job["batches"]],
                "peak_rss_mb": 100.0}

    monkeypatch.setattr(suite, "run_worker", run_worker)
    rows = suite.model_rows("refinenet101", models, ["onnx", "torch", "torch_train"], [1, 2])
    assert [(r["backend"], r["batch"]) for r in rows] == [
        ("onnx", 1), ("onnx", 2), ("torch", 1), ("torch", 2), ("torch_train", 3)]
    torch_job, train_job = jobs[-2:]
    assert torch_job["authors"]["root"] == str(tmp_path / "rn") and torch_job["size"] == [513, 513]
    assert all(r["macs"] == 2e9 and r["input"] == [513, 513] for r in rows[2:4])
    assert train_job["size"] == [96, 96] and train_job["batch"] == 3  # the quick recipe's crop, --train-batch
    assert train_job["authors"]["kwargs"]["num_classes"] == 4          # and its classes
    assert "macs" not in rows[4] and "quick-recipe crop, 4 classes, stand-in loss" in rows[4]["note"]

    jobs.clear()
    rows = suite.model_rows("refinedet320_vgg16", models, ["onnx", "torch"], [1])
    assert "macs" not in rows[1] and "21 classes" in rows[1]["note"]  # not our 81-class export's layers
    rows = suite.model_rows("ras", models, ["torch", "torch_train"], [1, 2])
    assert [(r["backend"], r["batch"], r["note"]) for r in rows] == [
        ("torch", 1, "not measured: why not"), ("torch", 2, "not measured: why not"),
        ("torch_train", 3, "not measured: why not")]
    assert not [j for j in jobs if j["kind"].startswith("torch") and j.get("model") == "ras"]


def test_summary_compares_graph_and_train_with_the_authors_pytorch_per_model():
    rows = [_row(model="a", batch=1, ms=20.0), _row(model="a", backend="torch", batch=1, ms=10.0),
            _row(model="a", batch=8, ms=80.0), _row(model="a", backend="torch", batch=8, ms=10.0),
            _row(model="b", ms=30.0), _row(model="b", backend="torch", ms=60.0),
            _row(model="a", backend="train", batch=4, input=[96, 96], ms=300.0),
            _row(model="a", backend="torch_train", batch=4, input=[96, 96], ms=100.0),
            _row(model="b", backend="train", batch=4, input=[96, 96], ms=300.0),      # another input:
            _row(model="b", backend="torch_train", batch=4, input=[320, 320], ms=100.0),  # no pair
            _row(model="c", backend="torch", note="not measured: no clone")]
    line = report.summary_line(rows, None)
    assert "MindSpore graph / authors' PyTorch latency: a 4.00x, b 0.50x" in line  # sqrt(2 x 8) for a
    assert "train step / authors' PyTorch train step latency: a 3.00x" in line and " b 3.00x" not in line
    assert "failed" not in line and "\n" not in line
    assert "| c | authors' PyTorch | 1 | 320x320 | - |" in report.markdown_table(rows)


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


# ---------------------------------------------------------------- one PyTorch worker run

@pytest.mark.extended
def test_torch_worker_times_a_tiny_authors_network(tmp_path):
    """Extended tier (CI does not run it; it needs torch): the worker process of the torch and
    torch_train backends on a 2-layer conv net that a fake authors' repository defines; the net
    records whether MindSpore was loaded in the worker that built it."""
    root = tmp_path / "clone"
    (root / "nets").mkdir(parents=True)
    (root / "nets" / "tiny.py").write_text(
        "import sys\nimport torch.nn as nn\n\n"
        "class Tiny(nn.Module):\n"
        "    def __init__(self, width=4):\n        super().__init__()\n"
        "        self.a = nn.Conv2d(3, width, 3, padding=1)\n        self.b = nn.Conv2d(width, 1, 1)\n"
        "        self.mindspore_loaded = 'mindspore' in sys.modules\n\n"
        "    def forward(self, x):\n        y = self.a(x).relu()\n        return self.b(y), [y]\n\n"
        "def build(width):\n    net = Tiny(width)\n"
        "    assert not net.mindspore_loaded, 'the torch worker imported MindSpore'\n    return net\n")
    authors = {"root": str(root), "file": "nets/tiny.py", "attr": "build", "kwargs": {"width": 4}}
    jobs = {"torch": {"batches": [1, 2], "size": [16, 16]},
            "torch_train": {"batches": [3], "batch": 3, "size": [8, 8]}}
    for kind, job in jobs.items():
        job_file, result = tmp_path / f"{kind}.job.json", tmp_path / f"{kind}.result.json"
        job_file.write_text(json.dumps({**job, "kind": kind, "model": "tiny", "authors": authors,
                                        "threads": 1, "repeat": 2, "result": str(result)}))
        proc = subprocess.run([sys.executable, str(SCRIPT), "--worker", str(job_file)], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        data = json.loads(result.read_text())
        assert [r["batch"] for r in data["rows"]] == job["batches"]
        for row in data["rows"]:
            assert row["ms"] > 0 and row["images_per_s"] == pytest.approx(1000.0 * row["batch"] / row["ms"])
        assert data["peak_rss_mb"] > 0
    assert data["rows"][0]["input"] == [8, 8] and np.isfinite(data["rows"][0]["loss"])


def test_the_authors_pytorch_runs_without_the_mindspore_isa_cap(tmp_path, monkeypatch):
    import common
    from common.bench import suite as bench_suite
    from common.bench.torch_measure import UNCAP_ENV, uncap_isa

    args = bench_suite.build_parser().parse_args([])
    s = bench_suite.Suite(args, ["true"], tmp_path)
    monkeypatch.setattr(common, "USER_ONEDNN_MAX_CPU_ISA", None)
    assert s.worker_env("torch")[UNCAP_ENV] == "1" and s.worker_env("torch_train")[UNCAP_ENV] == "1"
    assert UNCAP_ENV not in s.worker_env("graph")
    environ = dict(s.worker_env("torch"), ONEDNN_MAX_CPU_ISA="AVX2")
    uncap_isa(environ)
    assert "ONEDNN_MAX_CPU_ISA" not in environ and UNCAP_ENV not in environ
    monkeypatch.setattr(common, "USER_ONEDNN_MAX_CPU_ISA", "AVX2")  # the user's own cap is kept
    assert UNCAP_ENV not in s.worker_env("torch")
    environ = {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    uncap_isa(environ)
    assert environ == {"ONEDNN_MAX_CPU_ISA": "AVX2"}


# ---------------------------------------------------------------- scripts/kernel_repro.py

KERNEL_COLUMNS = ("case", "shape", "GFLOP", "MS fwd ms", "MS bwd ms", "MS matmul ms", "PT fwd ms",
                  "PT bwd ms", "PT matmul ms", "MS/PT fwd", "MS/PT bwd")


def _kernel_repro(*args, timeout=120):
    return subprocess.run([sys.executable, str(KERNEL_REPRO), *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_kernel_repro_times_one_quick_case(tmp_path):
    # u2net_stage5_d2 is 4x256x20x20 -> 256 channels, k3 s1 p2 d2; --quick makes N 1 and H, W 20 // 8 = 2
    n, c_in, h, c_out, k, stride, pad, dilation = 1, 256, 20 // 8, 256, 3, 1, 2, 2
    h_out = (h + 2 * pad - dilation * (k - 1) - 1) // stride + 1  # 2
    want_gflop = 2 * n * h_out * h_out * c_out * c_in * k * k / 1e9
    out = tmp_path / "tmp"
    proc = _kernel_repro("--quick", "--cases", "u2net_stage5_d2", "--repeat", "1", "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[1/1] mindspore u2net_stage5_d2: fwd" in proc.stderr  # progress
    lines = proc.stdout.splitlines()
    assert "MindSpore 2.10" in lines[0] and "--cases u2net_stage5_d2" in lines[0]
    head = lines.index("| " + " | ".join(KERNEL_COLUMNS) + " |")
    cells = [c.strip() for c in lines[head + 2].strip("|").split("|")]
    assert cells[:2] == ["u2net_stage5_d2", "1x256x2x2 -> 256, k3 s1 p2 d2"]
    assert float(cells[2]) == pytest.approx(want_gflop, rel=1e-3)
    assert all(float(v) > 0 for v in cells[3:6])
    with_torch = importlib.util.find_spec("torch") is not None
    assert all((float(v) > 0) if with_torch else v == "-" for v in cells[6:])
    assert lines[-1].startswith("geometric mean MS/PT over 1 cases" if with_torch else "no MS/PT ratios")
    data = json.loads((out / "kernel_repro.json").read_text())
    assert [r["name"] for r in data["rows"]] == ["u2net_stage5_d2"]
    assert data["rows"][0]["gflop"] == pytest.approx(want_gflop)
    assert (out / "kernel_repro.md").read_text() == proc.stdout


def test_kernel_repro_unknown_case_exits_2_naming_it_and_the_known_ones(tmp_path):
    proc = _kernel_repro("--cases", "vgg16_fc6,resnet_conv", "--out", tmp_path / "tmp")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "unknown case 'resnet_conv'" in proc.stderr and "vgg16_conv1_2" in proc.stderr
    assert not (tmp_path / "tmp").exists()
