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
