import numpy as np
import pytest

from common.torch_pickle import TorchFileError, read_torch_state_dict

torch = pytest.importorskip("torch", reason="torch (test-only oracle) is not installed")


@pytest.mark.parametrize("zip_format", [True, False])
def test_reads_torch_files_without_torch(tmp_path, zip_format):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Linear(5, 2))
    net[1].running_mean.uniform_()
    sd = net.state_dict()
    sd["strided"] = torch.arange(24.0).reshape(4, 6).t()  # non-contiguous view
    sd["half"] = torch.ones(3, dtype=torch.float16)
    path = tmp_path / "w.pth"
    torch.save({"state_dict": sd, "epoch": 3}, path, _use_new_zipfile_serialization=zip_format)
    out = read_torch_state_dict(path)
    assert list(out) == list(sd)
    for k, v in sd.items():
        np.testing.assert_array_equal(out[k], v.numpy())
        assert out[k].dtype == v.numpy().dtype


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "x.pth"
    p.write_bytes(b"garbage")
    with pytest.raises(TorchFileError, match="x.pth"):
        read_torch_state_dict(p)


def test_convert_torch_cli_maps_batchnorm_and_loads_strictly(tmp_path):
    """A torch module with the same structure as TinyNet converts and loads strictly."""
    import subprocess
    import sys

    from common.checkpoint import load_weights, state_dict
    from tests.engine_utils import TinyNet

    tnet = torch.nn.Module()
    tnet.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    tnet.bn = torch.nn.BatchNorm2d(4)
    tnet.fc = torch.nn.Linear(4, 2)
    for p in tnet.parameters():
        torch.nn.init.normal_(p)
    tnet.bn.running_var.uniform_(0.5, 2.0)
    src = tmp_path / "tiny.pth"
    torch.save(tnet.state_dict(), src)
    dst = tmp_path / "tiny.ckpt"
    proc = subprocess.run([sys.executable, "-m", "common.tools.convert_torch", "--src", str(src),
                           "--dst", str(dst)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    net = TinyNet()
    report = load_weights(net, dst)
    assert report.ok
    got = state_dict(net)
    np.testing.assert_array_equal(got["bn.moving_variance"], tnet.bn.running_var.numpy())
    np.testing.assert_array_equal(got["bn.gamma"], tnet.bn.weight.detach().numpy())
    np.testing.assert_array_equal(got["fc.weight"], tnet.fc.weight.detach().numpy())
