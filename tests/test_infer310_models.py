"""The 310 flow of every registered model through the real C++ app on MindSpore Lite (CPU), in
the old ports' one call ``run_infer_310.sh MODEL ONNX DATA_PATH 0 lite_cpu`` (preprocess.py, the
app, postprocess.py). The app's raw outputs equal the MindSpore network's on the same input
files, and its scores equal eval.py's (slow tier)."""
import json

import numpy as np
import pytest
from mindspore import Tensor

from common.checkpoint import save_checkpoint
from common.infer310 import iter_tensors, read_outputs
from common.runner.args import parse
from common.runner.commands import load_network
from common.tasks import get_task
from models import model_info
from tests.tiny_runs import METRIC_KEYS, every_model, metrics, run, tiny

pytestmark = pytest.mark.slow


@pytest.mark.own_process
@pytest.mark.parametrize("name", every_model())
def test_310_flow_through_lite_equals_mindspore(name, tmp_path, run_infer_310_model):
    import mindspore as ms

    spec, _, argv = tiny(name, tmp_path)
    _, cfg = parse(spec, "eval", [*argv, "--ckpt_file", str(tmp_path / "w.ckpt")])
    ms.set_seed(0)
    ckpt = save_checkpoint(spec.build_net(cfg), tmp_path / "w.ckpt")  # initial weights, as the authors'
    run("eval", spec, [*argv, "--ckpt_file", ckpt])
    onnx = tmp_path / f"{name}.onnx"
    run("export", spec, [*argv, "--ckpt_file", ckpt, "--file_format", "ONNX", "--file_name", onnx])

    # the old ports' one call: MODEL FILE DATA_PATH DEVICE_ID BACKEND, plus the tiny run's overrides
    assert argv[0] == "--config"
    data_path = get_task(spec.task).data_path(cfg)
    proc = run_infer_310_model(model_info(name)["folder"], onnx, data_path, tmp_path, argv[1], argv[2:],
                               tmp_path / "in")
    assert "postprocess" in proc.stdout and (tmp_path / "acc.log").is_file()

    inputs, outputs = dict(iter_tensors(tmp_path / "in")), read_outputs(tmp_path / "result_Files")
    assert inputs and sorted(outputs) == sorted(inputs)
    net = load_network(spec, cfg, ckpt)
    for sample, arrays in inputs.items():
        want = net(*[Tensor(a) for a in arrays])
        want = [w.asnumpy() for w in (want if isinstance(want, (tuple, list)) else [want])]
        assert len(outputs[sample]) == len(want), sample
        for k, (got, ref) in enumerate(zip(outputs[sample], want)):
            # 1e-4, widened with the output's magnitude as the export check is (float32 over 100+
            # layers: untrained RefineNet logits reach ~200 and differ by ~1e-3)
            np.testing.assert_allclose(got.reshape(ref.shape), ref, rtol=0,
                                       atol=1e-4 + 1e-5 * float(np.abs(ref).max()),
                                       err_msg=f"{name} {sample} output {k}")

    ms_result = metrics(tmp_path / "run/eval_results.json", spec.task)
    app_result = json.loads((tmp_path / "run/eval_results_310.json").read_text())
    for key in METRIC_KEYS[spec.task]:
        if isinstance(ms_result[key], float):
            assert app_result[key] == pytest.approx(ms_result[key], abs=2e-3), key
